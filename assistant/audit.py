"""Audit trail: who drafted what, from which sources, with which model; and the agents' feedback.

One SQLite file (``settings.audit_path``). A connection per operation keeps it safe to use from
the UI's worker threads; WAL lets readers and one writer work together.

For the DPO:

- **Append-only, tamper-evident.** Every write (a draft, a feedback, a purge) also appends a
  record to the ``chain`` table: ``hash = sha256(prev_hash | seq | kind | key | sha256(row))``,
  where ``row`` is the canonical JSON of the draft or feedback row as written. :meth:`verify`
  recomputes the chain and compares every draft and feedback row with its last chain record: an
  altered, inserted or deleted record is reported. (A writer with full access to the file can
  still rebuild the whole chain; the head hash printed by ``assistant audit verify`` can be kept
  elsewhere to detect that too.)
- **Minimal data.** The draft's text is kept only with ``audit_store_text = true``; its sha256
  is always kept (a copy in hand can be proved to be the one drafted).
- **Retention.** :meth:`purge` deletes what is older than ``audit_retention_days`` and records
  the purge in the chain (the chain then starts from the purge's anchor).
- **Export.** :meth:`export_rows` -> CSV or JSON lines (``assistant audit export``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
CREATE TABLE IF NOT EXISTS chain (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('draft', 'feedback', 'purge')),
    key TEXT NOT NULL,             -- draft id, feedback id, or the purge's cut-off date
    row_hash TEXT NOT NULL,        -- sha256 of the row's canonical JSON (purge: of its details)
    details TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""
# Columns added after the first release (added to older files on open).
_NEW_DRAFT_COLUMNS = {
    "answer_sha256": "TEXT NOT NULL DEFAULT ''",
    "settings": "TEXT NOT NULL DEFAULT '{}'",
}
GENESIS = "0" * 64


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
    answer_sha256: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "feedback"}
        data["feedback"] = [f.__dict__ for f in self.feedback]
        return data


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(row: sqlite3.Row | dict[str, Any]) -> str:
    data = dict(row)
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _link(prev_hash: str, seq: int, kind: str, key: str, row_hash: str) -> str:
    return sha256_text(f"{prev_hash}|{seq}|{kind}|{key}|{row_hash}")


def parse_since(text: str) -> str:
    """``AAAA-MM-JJ`` (or a full ISO date-time) -> an ISO string comparable with ``created_at``.

    Raises :class:`AuditError` with the expected format."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise AuditError(
            f"Date invalide : « {text} ». Donnez-la sous la forme AAAA-MM-JJ (par exemple "
            "2026-01-31)."
        ) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass
class VerifyReport:
    """What :meth:`AuditLog.verify` found: ``problems`` empty means the log is intact."""

    records: int
    head: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "head": self.head,
                "problems": self.problems}  # fmt: skip


EXPORT_COLUMNS = (
    "id", "created_at", "user", "doc_type", "request", "fields", "collections", "sources",
    "cited", "model", "settings", "answer_sha256", "abstained", "stopped", "parent_id",
    "feedback", "answer",
)  # fmt: skip


class AuditLog:
    """The audit trail in one SQLite file.

    ``store_text``: keep each draft's text (else only its sha256); ``settings``: the drafting
    settings recorded with each draft (model, temperature, top_k...)."""

    def __init__(
        self,
        path: Path,
        *,
        store_text: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.store_text = store_text
        self.settings = dict(settings or {})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                have = {r["name"] for r in db.execute("PRAGMA table_info(drafts)")}
                for column, decl in _NEW_DRAFT_COLUMNS.items():
                    if column not in have:
                        db.execute(f"ALTER TABLE drafts ADD COLUMN {column} {decl}")
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

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (BEGIN IMMEDIATE): two writers never read the same
        chain head."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @staticmethod
    def _append(
        db: sqlite3.Connection,
        kind: str,
        key: str,
        row_hash: str,
        details: str = "{}",
        created_at: str | None = None,
    ) -> str:
        """Append one chain record (inside the caller's write transaction); its hash."""
        last = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
        prev = last["hash"] if last else GENESIS
        cur = db.execute(
            "INSERT INTO chain (created_at, kind, key, row_hash, details, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, '')",
            (created_at or _now(), kind, key, row_hash, details, prev),
        )
        seq = int(cur.lastrowid or 0)
        digest = _link(prev, seq, kind, key, row_hash)
        db.execute("UPDATE chain SET hash = ? WHERE seq = ?", (digest, seq))
        return digest

    def record_draft(self, draft: Draft, user: str | None = None) -> None:
        """Record (or update, for the same id) a finished, abstained or stopped draft."""
        req = draft.request
        sources = [
            {"n": c.n, "source": c.source, "page": c.page, "used": c.used, "title": c.title,
             "collection": c.collection}
            for c in draft.sources
        ]  # fmt: skip
        row = (
            draft.id,
            _now(),
            user or req.user,
            req.doc_type,
            req.request,
            json.dumps(req.fields, ensure_ascii=False),
            json.dumps(req.collections, ensure_ascii=False),
            json.dumps(sources, ensure_ascii=False),
            draft.answer if self.store_text else "",
            draft.model,
            json.dumps(draft.timings, ensure_ascii=False),
            int(draft.abstained),
            draft.parent_id,
            int(draft.stopped),
            json.dumps(draft.invalid_citations),
            sha256_text(draft.answer),
            json.dumps(self.settings, ensure_ascii=False, sort_keys=True),
        )
        try:
            with self._write() as db:
                db.execute(
                    "INSERT OR REPLACE INTO drafts (id, created_at, user, doc_type, request, "
                    "fields, collections, sources, answer, model, timings, abstained, parent_id, "
                    "stopped, invalid_citations, answer_sha256, settings) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
                written = db.execute("SELECT * FROM drafts WHERE id = ?", (draft.id,)).fetchone()
                self._append(
                    db, "draft", draft.id, sha256_text(_canonical(written)), created_at=row[1]
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
            with self._write() as db:
                exists = db.execute("SELECT 1 FROM drafts WHERE id = ?", (draft_id,)).fetchone()
                if exists is None:
                    raise AuditError(
                        f"Projet inconnu dans le journal : {draft_id}. Vérifiez l'identifiant "
                        "(voir les projets récents)."
                    )
                stamp = _now()
                cur = db.execute(
                    "INSERT INTO feedback (draft_id, rating, comment, created_at, user) "
                    "VALUES (?,?,?,?,?)",
                    (draft_id, rating, comment.strip(), stamp, user),
                )
                written = db.execute(
                    "SELECT * FROM feedback WHERE id = ?", (cur.lastrowid,)
                ).fetchone()
                key = f"{draft_id}:{cur.lastrowid}"
                self._append(
                    db, "feedback", key, sha256_text(_canonical(written)), created_at=stamp
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
            answer_sha256=row["answer_sha256"],
            settings=json.loads(row["settings"] or "{}"),
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


    # -- for the DPO ----------------------------------------------------------------------------

    def records(self, since: str | None = None, user: str | None = None) -> list[AuditRecord]:
        """Drafts since ``since`` (ISO, see :func:`parse_since`), of ``user`` if given, oldest
        first, with their feedback."""
        query = "SELECT * FROM drafts WHERE 1 = 1"
        args: list[Any] = []
        if since:
            query += " AND created_at >= ?"
            args.append(since)
        if user is not None:
            query += " AND user = ?"
            args.append(user)
        query += " ORDER BY created_at, rowid"
        with self._connect() as db:
            rows = db.execute(query, args).fetchall()
            feedback = self._feedback(db, [r["id"] for r in rows])
        return [self._record(r, feedback[r["id"]]) for r in rows]

    @staticmethod
    def export_row(rec: AuditRecord) -> dict[str, Any]:
        """One draft as a flat export row (keys: :data:`EXPORT_COLUMNS`)."""
        return {
            "id": rec.id,
            "created_at": rec.created_at,
            "user": rec.user,
            "doc_type": rec.doc_type,
            "request": rec.request,
            "fields": rec.fields,
            "collections": rec.collections,
            "sources": [
                {
                    "n": s.get("n"),
                    "source": s.get("source"),
                    "page": s.get("page"),
                    "cited": bool(s.get("used")),
                    "collection": s.get("collection"),
                }
                for s in rec.sources
            ],
            "cited": [s.get("n") for s in rec.sources if s.get("used")],
            "model": rec.model,
            "settings": rec.settings,
            "answer_sha256": rec.answer_sha256,
            "abstained": rec.abstained,
            "stopped": rec.stopped,
            "parent_id": rec.parent_id,
            "feedback": [f.__dict__ for f in rec.feedback],
            "answer": rec.answer,
        }

    def export(
        self, fmt: str, since: str | None = None, user: str | None = None
    ) -> Iterator[str]:
        """The drafts as CSV (one header line, then one line a draft; lists and objects as
        JSON in their cell) or JSON lines. Raises :class:`AuditError` for another format."""
        if fmt not in ("csv", "jsonl"):
            raise AuditError(f"Format inconnu : {fmt}. Choisissez csv ou jsonl.")
        rows = (self.export_row(r) for r in self.records(since, user))
        if fmt == "jsonl":
            for row in rows:
                yield json.dumps(row, ensure_ascii=False) + "\n"
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        yield buffer.getvalue()
        for row in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                {k: v if isinstance(v, str | int | float | type(None)) else
                 json.dumps(v, ensure_ascii=False) for k, v in row.items()}
            )  # fmt: skip
            yield buffer.getvalue()

    def purge(self, days: int, *, now: datetime | None = None) -> int:
        """Delete drafts (and their feedback) older than ``days`` days; returns how many drafts.
        ``days = 0`` keeps everything. The purge itself is recorded in the chain."""
        if days <= 0:
            return 0
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(
            timespec="seconds"
        )
        with self._write() as db:
            old = [r["id"] for r in db.execute(
                "SELECT id FROM drafts WHERE created_at < ?", (cutoff,)
            )]  # fmt: skip
            for start in range(0, len(old), 500):
                part = old[start : start + 500]
                marks = ",".join("?" * len(part))
                db.execute(f"DELETE FROM feedback WHERE draft_id IN ({marks})", part)
                db.execute(f"DELETE FROM drafts WHERE id IN ({marks})", part)
            # Chain records older than the cut-off go too; the purge record keeps the anchor
            # (the hash the first kept record links to) so that verification still holds.
            first = db.execute(
                "SELECT seq, prev_hash FROM chain WHERE created_at >= ? ORDER BY seq LIMIT 1",
                (cutoff,),
            ).fetchone()
            if first is None:
                last = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1")
                row = last.fetchone()
                first_seq, anchor = (row["seq"] + 1, row["hash"]) if row else (1, GENESIS)
            else:
                first_seq, anchor = first["seq"], first["prev_hash"]
            oldest = db.execute("SELECT MIN(seq) FROM chain").fetchone()[0]
            if not old and (oldest is None or oldest >= first_seq):
                return 0  # nothing to purge: nothing recorded either
            details = json.dumps(
                {"before": cutoff, "drafts": len(old), "first_seq": first_seq, "anchor": anchor},
                sort_keys=True,
            )
            self._append(db, "purge", cutoff, sha256_text(details), details)
            db.execute("DELETE FROM chain WHERE seq < ?", (first_seq,))
        return len(old)

    def verify(self) -> VerifyReport:
        """Recompute the hash chain and compare every draft and feedback row with it."""
        problems: list[str] = []
        with self._connect() as db:
            chain = db.execute("SELECT * FROM chain ORDER BY seq").fetchall()
            drafts = {r["id"]: r for r in db.execute("SELECT * FROM drafts")}
            feedback = {
                f"{r['draft_id']}:{r['id']}": r for r in db.execute("SELECT * FROM feedback")
            }
        anchors = {
            json.loads(r["details"])["first_seq"]: json.loads(r["details"])["anchor"]
            for r in chain
            if r["kind"] == "purge"
        }
        prev = GENESIS
        expected_seq = chain[0]["seq"] if chain else 1
        if chain and expected_seq != 1:
            if expected_seq not in anchors:
                problems.append(
                    f"Les enregistrements 1 à {expected_seq - 1} manquent sans purge consignée."
                )
            prev = anchors.get(expected_seq, chain[0]["prev_hash"])
        last_of: dict[tuple[str, str], str] = {}
        for rec in chain:
            seq = rec["seq"]
            if seq != expected_seq:
                problems.append(f"Enregistrements {expected_seq} à {seq - 1} supprimés.")
            expected_seq = seq + 1
            if rec["prev_hash"] != prev:
                problems.append(f"Enregistrement {seq} : chaînage rompu (précédent modifié).")
            if rec["kind"] == "purge" and sha256_text(rec["details"]) != rec["row_hash"]:
                problems.append(f"Enregistrement {seq} (purge) : détails modifiés.")
            digest = _link(rec["prev_hash"], seq, rec["kind"], rec["key"], rec["row_hash"])
            if digest != rec["hash"]:
                problems.append(f"Enregistrement {seq} : empreinte modifiée.")
            prev = rec["hash"]
            if rec["kind"] in ("draft", "feedback"):
                last_of[(rec["kind"], rec["key"])] = rec["row_hash"]
        for kind, rows in (("draft", drafts), ("feedback", feedback)):
            label = "projet" if kind == "draft" else "avis"
            for key, row in rows.items():
                expected = last_of.get((kind, key))
                if expected is None:
                    problems.append(f"{label.capitalize()} {key} absent de la chaîne (ajouté "
                                    "hors de l'application).")  # fmt: skip
                elif sha256_text(_canonical(row)) != expected:
                    problems.append(f"{label.capitalize()} {key} modifié après enregistrement.")
            for k, key in last_of:
                if k != kind or key in rows:
                    continue
                # Feedback kept in the chain whose draft a purge removed went with its draft.
                if kind == "feedback" and anchors and key.split(":")[0] not in drafts:
                    continue
                problems.append(f"{label.capitalize()} {key} supprimé hors purge.")
        return VerifyReport(len(chain), prev, problems)


def settings_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings that shape a draft, recorded with it."""
    return {
        "chat_model": settings.chat_model,
        "embedding_model": settings.embedding_model,
        "reranker_model": settings.reranker_model,
        "temperature": settings.temperature,
        "seed": settings.seed,
        "max_tokens": settings.max_tokens,
        "top_k": settings.top_k,
        "context_budget": settings.context_budget,
        "n_ctx": settings.n_ctx,
        "abstain_threshold": settings.abstain_threshold,
    }


def build_audit(settings: Settings) -> AuditLog:
    """The audit log configured by ``settings`` (text kept or not, settings recorded)."""
    return AuditLog(
        settings.audit_path,
        store_text=settings.audit_store_text,
        settings=settings_snapshot(settings),
    )
