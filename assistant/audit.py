"""Audit trail: who drafted what, from which sources, with which model; and the agents' feedback.

One SQLite file (``settings.audit_path``). A connection per operation keeps it safe to use from
the UI's worker threads; WAL lets readers and one writer work together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AuditError

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.drafting import Draft

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drafts (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    user TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    request TEXT NOT NULL,
    fields TEXT NOT NULL,          -- JSON object
    collections TEXT NOT NULL,     -- JSON list
    sources TEXT NOT NULL,         -- JSON list of {n, source, page, used}
    answer TEXT NOT NULL,
    model TEXT NOT NULL,
    timings TEXT NOT NULL,         -- JSON object
    abstained INTEGER NOT NULL,
    parent_id TEXT,                -- the draft a follow-up revised
    stopped INTEGER NOT NULL DEFAULT 0,
    invalid_citations TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS drafts_created ON drafts(created_at);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    draft_id TEXT NOT NULL REFERENCES drafts(id),
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    user TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_draft ON feedback(draft_id);
"""


@dataclass
class FeedbackRecord:
    draft_id: str
    rating: int
    comment: str
    created_at: str
    user: str


@dataclass
class AuditRecord:
    """A recorded draft, as read back from the log."""

    id: str
    created_at: str
    user: str
    doc_type: str
    request: str
    fields: dict[str, str]
    collections: list[str]
    sources: list[dict[str, Any]]
    answer: str
    model: str
    timings: dict[str, Any]
    abstained: bool
    parent_id: str | None
    stopped: bool
    invalid_citations: list[int]
    feedback: list[FeedbackRecord] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "feedback"}
        data["feedback"] = [f.__dict__ for f in self.feedback]
        return data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class AuditLog:
    """The audit trail in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise AuditError(
                f"Impossible d'ouvrir le journal d'audit {self.path} ({err}). Vérifiez les droits "
                "d'écriture sur le dossier des données (réglage data_dir)."
            ) from err

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # commit on success, roll back on error
                yield db
        finally:
            db.close()

    def record_draft(self, draft: Draft, user: str | None = None) -> None:
        """Record (or update, for the same id) a finished, abstained or stopped draft."""
        req = draft.request
        sources = [
            {"n": c.n, "source": c.source, "page": c.page, "used": c.used, "title": c.title}
            for c in draft.sources
        ]
        row = (
            draft.id,
            _now(),
            user or req.user,
            req.doc_type,
            req.request,
            json.dumps(req.fields, ensure_ascii=False),
            json.dumps(req.collections, ensure_ascii=False),
            json.dumps(sources, ensure_ascii=False),
            draft.answer,
            draft.model,
            json.dumps(draft.timings, ensure_ascii=False),
            int(draft.abstained),
            draft.parent_id,
            int(draft.stopped),
            json.dumps(draft.invalid_citations),
        )
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT OR REPLACE INTO drafts (id, created_at, user, doc_type, request, "
                    "fields, collections, sources, answer, model, timings, abstained, parent_id, "
                    "stopped, invalid_citations) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
        except sqlite3.Error as err:
            raise AuditError(
                f"Le projet n'a pas pu être enregistré dans le journal d'audit {self.path} "
                f"({err}). Vérifiez l'espace disque et les droits d'écriture."
            ) from err

    def record_feedback(
        self, draft_id: str, rating: int, comment: str = "", user: str = "anonyme"
    ) -> None:
        """Record an agent's opinion of a draft: ``rating`` is +1 (useful) or -1 (not useful)."""
        if rating not in (1, -1):
            raise AuditError(f"Note invalide : {rating}. Donnez +1 (utile) ou -1 (pas utile).")
        try:
            with self._connect() as db:
                exists = db.execute("SELECT 1 FROM drafts WHERE id = ?", (draft_id,)).fetchone()
                if exists is None:
                    raise AuditError(
                        f"Projet inconnu dans le journal : {draft_id}. Vérifiez l'identifiant "
                        "(voir les projets récents)."
                    )
                db.execute(
                    "INSERT INTO feedback (draft_id, rating, comment, created_at, user) "
                    "VALUES (?,?,?,?,?)",
                    (draft_id, rating, comment.strip(), _now(), user),
                )
        except sqlite3.Error as err:
            raise AuditError(
                f"L'avis n'a pas pu être enregistré ({err}). Vérifiez le journal {self.path}."
            ) from err

    def _record(self, row: sqlite3.Row, feedback: list[FeedbackRecord]) -> AuditRecord:
        return AuditRecord(
            id=row["id"],
            created_at=row["created_at"],
            user=row["user"],
            doc_type=row["doc_type"],
            request=row["request"],
            fields=json.loads(row["fields"]),
            collections=json.loads(row["collections"]),
            sources=json.loads(row["sources"]),
            answer=row["answer"],
            model=row["model"],
            timings=json.loads(row["timings"]),
            abstained=bool(row["abstained"]),
            parent_id=row["parent_id"],
            stopped=bool(row["stopped"]),
            invalid_citations=json.loads(row["invalid_citations"]),
            feedback=feedback,
        )

    def _feedback(
        self, db: sqlite3.Connection, draft_ids: list[str]
    ) -> dict[str, list[FeedbackRecord]]:
        out: dict[str, list[FeedbackRecord]] = {i: [] for i in draft_ids}
        if not draft_ids:
            return out
        marks = ",".join("?" * len(draft_ids))
        for f in db.execute(
            f"SELECT draft_id, rating, comment, created_at, user FROM feedback "
            f"WHERE draft_id IN ({marks}) ORDER BY id",
            draft_ids,
        ):
            out[f["draft_id"]].append(FeedbackRecord(**dict(f)))
        return out

    def recent(self, n: int = 20, user: str | None = None) -> list[AuditRecord]:
        """The ``n`` latest drafts (newest first), with their feedback."""
        query = "SELECT * FROM drafts"
        args: list[Any] = []
        if user is not None:
            query += " WHERE user = ?"
            args.append(user)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(n)
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
            feedback = self._feedback(db, [r["id"] for r in rows])
        return [self._record(r, feedback[r["id"]]) for r in rows]

    def get(self, draft_id: str) -> AuditRecord:
        with self._connect() as db:
            row = db.execute("SELECT * FROM drafts WHERE id = ?", (draft_id,)).fetchone()
            if row is None:
                raise AuditError(
                    f"Projet inconnu dans le journal : {draft_id}. Vérifiez l'identifiant."
                )
            feedback = self._feedback(db, [draft_id])
        return self._record(row, feedback[draft_id])


def build_audit(settings: Settings) -> AuditLog:
    return AuditLog(settings.audit_path)
