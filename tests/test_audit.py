"""The audit trail: drafts and feedback survive in SQLite, are read back, bad input is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

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
