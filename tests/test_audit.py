"""The audit trail: drafts and feedback survive in SQLite, are read back, bad input is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import AuditLog
from assistant.drafting import Citation, Draft, DraftRequest
from assistant.errors import AuditError


def make_draft(draft_id: str, *, user: str = "agent1", abstained: bool = False) -> Draft:
    cited = Citation(
        1, "deliberations/a.pdf", 2, "", "Délibération A", "passage", "exemple", 0.7, True
    )
    unused = Citation(2, "lois/cgct.md", None, "", "CGCT", "autre", "exemple", 0.5)
    return Draft(
        id=draft_id,
        request=DraftRequest(
            request="Rédige un courrier",
            doc_type="courrier",
            fields={"objet": "Salle des fêtes", "destinataire": "Mme Émilie Durand"},
            collections=["exemple"],
            user=user,
        ),
        answer="Madame, … [1]\n\n— mention",
        abstained=abstained,
        citations=[] if abstained else [cited],
        unused_sources=[] if abstained else [unused],
        invalid_citations=[4],
        model="qwen.gguf",
        timings={"retrieval_s": 0.1, "total_s": 3.2, "prompt_tokens": 900, "cached_tokens": 600},
    )


def test_a_draft_is_recorded_with_its_sources_and_read_back(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "sub" / "audit.sqlite3")
    log.record_draft(make_draft("d1"))
    again = AuditLog(tmp_path / "sub" / "audit.sqlite3")  # survives a restart
    [rec] = again.recent(5)
    assert rec.id == "d1" and rec.user == "agent1" and rec.doc_type == "courrier"
    assert rec.fields["destinataire"] == "Mme Émilie Durand"
    assert rec.collections == ["exemple"]
    assert [(s["n"], s["source"], s["page"], s["used"]) for s in rec.sources] == [
        (1, "deliberations/a.pdf", 2, True),
        (2, "lois/cgct.md", None, False),
    ]
    assert rec.timings["cached_tokens"] == 600
    assert rec.invalid_citations == [4]
    assert rec.abstained is False and rec.stopped is False
    assert rec.as_json()["feedback"] == []


def test_recent_is_newest_first_limited_and_filtered_by_user(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    for i in range(5):
        log.record_draft(make_draft(f"d{i}", user="alice" if i % 2 else "bob"))
    assert [r.id for r in log.recent(3)] == ["d4", "d3", "d2"]
    assert [r.id for r in log.recent(10, user="alice")] == ["d3", "d1"]


def test_explicit_user_wins_over_the_request_user(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.record_draft(make_draft("d1", user="anonyme"), user="claire")
    assert log.get("d1").user == "claire"


def test_feedback_is_attached_to_its_draft(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.record_draft(make_draft("d1"))
    log.record_feedback("d1", 1, "Très utile", user="alice")
    log.record_feedback("d1", -1, "  Une source manque  ", user="bob")
    rec = log.get("d1")
    assert [(f.rating, f.comment, f.user) for f in rec.feedback] == [
        (1, "Très utile", "alice"),
        (-1, "Une source manque", "bob"),
    ]


@pytest.mark.parametrize("rating", [0, 2, -5])
def test_a_rating_other_than_plus_or_minus_one_is_refused(tmp_path: Path, rating: int) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    log.record_draft(make_draft("d1"))
    with pytest.raises(AuditError, match=r"\+1"):
        log.record_feedback("d1", rating)


def test_feedback_on_an_unknown_draft_is_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")
    with pytest.raises(AuditError, match="inconnu"):
        log.record_feedback("nope", 1)
    with pytest.raises(AuditError, match="inconnu"):
        log.get("nope")
    with sqlite3.connect(tmp_path / "audit.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite3")

    def write(worker: int) -> None:
        for i in range(10):
            log.record_draft(make_draft(f"w{worker}-{i}"))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log.recent(100)) == 40


def test_an_unwritable_place_gives_a_french_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "fichier"
    blocker.write_text("x")
    with pytest.raises(AuditError, match="data_dir"):
        AuditLog(blocker / "audit.sqlite3")


# --- for the DPO: hash chain, text kept or not, export, retention --------------------------------


def test_the_draft_text_is_kept_only_when_configured(tmp_path: Path) -> None:
    import hashlib

    draft = make_draft("d1")
    plain = AuditLog(tmp_path / "a.sqlite3")
    plain.record_draft(draft)
    rec = plain.get("d1")
    assert rec.answer == "" and "Madame" not in (tmp_path / "a.sqlite3").read_bytes().decode(
        "utf-8", "replace"
    )
    assert rec.answer_sha256 == hashlib.sha256(draft.answer.encode()).hexdigest()
    kept = AuditLog(tmp_path / "b.sqlite3", store_text=True, settings={"temperature": 0.2})
    kept.record_draft(draft)
    assert kept.get("d1").answer == draft.answer
    assert kept.get("d1").settings == {"temperature": 0.2}


def _tamper(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("UPDATE drafts SET user = 'quelquun' WHERE id = 'd1'", "d1 modifié"),
        ("UPDATE drafts SET sources = '[]' WHERE id = 'd2'", "d2 modifié"),
        ("DELETE FROM drafts WHERE id = 'd1'", "d1 supprimé"),
        ("UPDATE feedback SET rating = 1", "modifié"),
        ("DELETE FROM chain WHERE seq = 2", "supprimés"),
        ("UPDATE chain SET row_hash = 'x' WHERE seq = 1", "empreinte modifiée"),
        (
            "INSERT INTO drafts (id, created_at, user, doc_type, request, fields, collections, "
            "sources, answer, model, timings, abstained) VALUES "
            "('faux', '2026', 'x', 'courrier', 'r', '{}', '[]', '[]', '', 'm', '{}', 0)",
            "faux absent de la chaîne",
        ),
    ],
)
def test_any_alteration_is_detected(tmp_path: Path, sql: str, expected: str) -> None:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(path)
    log.record_draft(make_draft("d1"))
    log.record_draft(make_draft("d2", user="bob"))
    log.record_feedback("d2", -1, "source manquante", user="bob")
    assert log.verify().ok
    _tamper(path, sql)
    report = log.verify()
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


def test_purge_keeps_the_chain_verifiable(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    log = AuditLog(tmp_path / "audit.sqlite3")
    for i in range(3):
        log.record_draft(make_draft(f"d{i}"))
    log.record_feedback("d1", 1)
    assert log.purge(365) == 0  # nothing is a year old (and nothing recorded)
    assert log.verify().records == 4
    assert log.purge(0) == 0  # 0 = keep forever
    future = datetime.now(UTC) + timedelta(days=366)
    assert log.purge(365, now=future) == 3  # a year later, all three go
    assert log.recent(10) == []
    report = log.verify()
    assert report.ok, report.problems
    log.record_draft(make_draft("new"))
    assert log.verify().ok
    assert [r.id for r in log.recent(10)] == ["new"]
    with sqlite3.connect(tmp_path / "audit.sqlite3") as db:  # the purge left its trace
        kinds = [r[0] for r in db.execute("SELECT kind FROM chain ORDER BY seq")]
    assert kinds[-2:] == ["purge", "draft"]


def test_export_csv_and_jsonl_with_filters(tmp_path: Path) -> None:
    import csv
    import io
    import json

    log = AuditLog(tmp_path / "audit.sqlite3", settings={"chat_model": "smollm2.gguf"})
    log.record_draft(make_draft("d1", user="alice"))
    log.record_draft(make_draft("d2", user="bob"))
    log.record_feedback("d2", 1, "bien", user="bob")
    lines = list(log.export("jsonl", since="2000-01-01T00:00:00+00:00"))
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == ["d1", "d2"]
    d2 = rows[1]
    assert d2["user"] == "bob" and d2["doc_type"] == "courrier" and d2["model"] == "qwen.gguf"
    assert d2["sources"][0] == {
        "n": 1, "source": "deliberations/a.pdf", "page": 2, "cited": True, "collection": "exemple",
    }  # fmt: skip
    assert d2["sources"][1]["cited"] is False and d2["cited"] == [1]
    assert d2["settings"] == {"chat_model": "smollm2.gguf"} and len(d2["answer_sha256"]) == 64
    assert d2["feedback"][0]["rating"] == 1
    only_alice = list(log.export("csv", since="2000-01-01", user="alice"))
    table = list(csv.DictReader(io.StringIO("".join(only_alice))))
    assert [r["id"] for r in table] == ["d1"] and table[0]["request"] == "Rédige un courrier"
    assert "deliberations/a.pdf" in table[0]["sources"]
    assert list(log.export("jsonl", since="2999-01-01")) == []
    with pytest.raises(AuditError, match="csv ou jsonl"):
        list(log.export("xml"))


def test_audit_cli_export_verify_purge(
    settings: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import json

    from assistant.audit import build_audit
    from assistant.cli import main

    log = build_audit(settings)
    log.record_draft(make_draft("d1", user="alice"))
    data = ["--data-dir", str(settings.data_dir)]

    def run(*args: str) -> tuple[int, str]:
        try:
            main([*data, *args])
            code = 0
        except SystemExit as exit_info:
            code = int(exit_info.code or 0)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, out = run("audit", "export", "--since", "2000-01-01", "--format", "jsonl")
    assert code == 0 and json.loads(out.splitlines()[0])["user"] == "alice"
    target = tmp_path / "export.csv"
    code, out = run("audit", "export", "--since", "2000-01-01", "-o", str(target))
    assert code == 0 and "1 projet(s)" in out and "alice" in target.read_text()
    code, out = run("audit", "export", "--since", "hier")
    assert code != 0 and "AAAA-MM-JJ" in out
    code, out = run("audit", "verify")
    assert code == 0 and "intact" in out
    _tamper(settings.audit_path, "UPDATE drafts SET request = 'autre'")
    code, out = run("audit", "verify")
    assert code == 1 and "altéré" in out
    code, out = run("audit", "purge", "--days", "30")
    assert code == 0 and "0 projet(s)" in out
