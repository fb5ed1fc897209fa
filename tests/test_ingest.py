"""Folder sync: adds, changes, deletions, bad files, interruptions, crash repair, CLI.

Fast tests use the FakeEmbedder with real Chroma and SQLite in temp dirs; tests marked slow use
the real GGUF embedder, the shared corpus and a real SIGKILL of the CLI process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import assistant.ingest as ingest_mod
from assistant.cli import app, main
from assistant.config import Settings
from assistant.ingest import IngestReport, sync_folder
from assistant.store import Index, build_index
from tests import badfiles
from tests.conftest import REPO, require_model, shared_corpus
from tests.fakes import FakeEmbedder

CIMETIERE = (
    "# Règlement du cimetière\n\n## Article 1\n\nLes concessions trentenaires sont renouvelables."
)
VOIRIE = "# Voirie communale\n\n## Article 2\n\nLe stationnement est interdit place de la mairie."
BUDGET = "# Budget\n\nLe conseil municipal adopte le budget primitif 2024, délibération n° 2024-12."


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_consistent(index: Index, collection: str) -> None:
    """Every ready document has exactly the same chunk ids in Chroma and in FTS5, no more."""
    docs = index.documents(collection)
    all_ids = index.chunk_ids(collection)
    assert len(all_ids["chroma"]) == len(set(all_ids["chroma"]))  # no duplicate
    assert sorted(all_ids["chroma"]) == sorted(all_ids["lexical"])
    assert len(all_ids["chroma"]) == sum(d.chunks for d in docs.values())
    for source, record in docs.items():
        assert record.status == "ready"
        ids = index.chunk_ids(collection, source)
        assert sorted(ids["chroma"]) == sorted(ids["lexical"])
        assert len(ids["chroma"]) == record.chunks > 0
        assert all(record.doc_hash[:12] in i for i in ids["chroma"])


@pytest.fixture
def index(settings: Settings) -> Index:
    return build_index(settings)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    write(folder, "cimetiere.md", CIMETIERE)
    write(folder, "voirie/stationnement.md", VOIRIE)
    badfiles.write_text_pdf(folder, "budget.pdf")
    return folder


def sync(folder: Path, index: Index, **kwargs: Any) -> IngestReport:
    kwargs.setdefault("ocr", False)
    embedder = kwargs.pop("embedder", None) or FakeEmbedder()
    return sync_folder(folder, "mairie", index, embedder, **kwargs)


def test_first_sync_indexes_everything(docs: Path, index: Index) -> None:
    report = sync(docs, index)
    assert sorted(report.added) == ["budget.pdf", "cimetiere.md", "voirie/stationnement.md"]
    assert report.failed == [] and report.unchanged == 0
    assert report.pages == 3 + 1 + 1 and report.chunks >= 3
    assert_consistent(index, "mairie")
    hits = index.lexical_search(["mairie"], "concession trentenaire", 3)
    assert hits[0].source == "cimetiere.md" and hits[0].page is None
    pdf_hits = index.lexical_search(["mairie"], "budget primitif", 5)
    assert {h.page for h in pdf_hits if h.source == "budget.pdf"} <= {1, 2, 3}


def test_resync_adds_changes_and_removes(docs: Path, index: Index) -> None:
    sync(docs, index)
    write(docs, "cimetiere.md", CIMETIERE.replace("trentenaires", "cinquantenaires"))
    (docs / "voirie" / "stationnement.md").unlink()
    write(docs, "budget.md", BUDGET)
    report = sync(docs, index)
    assert (report.added, report.updated, report.removed) == (
        ["budget.md"],
        ["cimetiere.md"],
        ["voirie/stationnement.md"],
    )
    assert report.unchanged == 1  # budget.pdf
    assert_consistent(index, "mairie")
    assert set(index.documents("mairie")) == {"budget.pdf", "budget.md", "cimetiere.md"}
    assert index.lexical_search(["mairie"], "trentenaires", 5) == []
    assert index.lexical_search(["mairie"], "stationnement", 5) == []
    assert [h.source for h in index.lexical_search(["mairie"], "cinquantenaire", 5)] == [
        "cimetiere.md"
    ]
    assert [h.source for h in index.lexical_search(["mairie"], "2024-12", 5)] == ["budget.md"]


def test_unchanged_rerun_reads_no_file(
    docs: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(docs, index)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an unchanged file was read")

    monkeypatch.setattr(ingest_mod, "load_document", forbidden)
    monkeypatch.setattr(ingest_mod, "file_sha256", forbidden)
    embedder = FakeEmbedder()
    report = sync(docs, index, embedder=embedder)
    assert report.unchanged == 3 and not (report.added or report.updated or report.removed)
    assert embedder.calls == []


def test_touched_file_with_same_content_is_hashed_not_reindexed(
    docs: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(docs, index)
    path = docs / "cimetiere.md"
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    monkeypatch.setattr(ingest_mod, "load_document", lambda *a, **k: pytest.fail("reloaded"))
    report = sync(docs, index)
    assert report.unchanged == 3 and report.updated == []
    assert index.documents("mairie")["cimetiere.md"].mtime_ns == path.stat().st_mtime_ns


def test_no_delete_keeps_documents_of_missing_files(docs: Path, index: Index) -> None:
    sync(docs, index)
    (docs / "cimetiere.md").unlink()
    report = sync(docs, index, delete=False)
    assert report.removed == []
    assert "cimetiere.md" in index.documents("mairie")
    assert sync(docs, index).removed == ["cimetiere.md"]


def test_dry_run_changes_nothing(docs: Path, index: Index) -> None:
    sync(docs, index)
    before = index.chunk_ids("mairie")
    write(docs, "cimetiere.md", CIMETIERE + "\n\nArticle 3 : horaires.")
    (docs / "budget.pdf").unlink()
    write(docs, "nouveau.md", BUDGET)
    report = sync(docs, index, dry_run=True)
    assert (report.added, report.updated, report.removed) == (
        ["nouveau.md"],
        ["cimetiere.md"],
        ["budget.pdf"],
    )
    assert report.chunks == 0 and report.as_json()["dry_run"] is True
    assert index.chunk_ids("mairie") == before


def test_dry_run_on_a_new_collection_creates_nothing(docs: Path, index: Index) -> None:
    report = sync(docs, index, dry_run=True)
    assert len(report.added) == 3
    assert index.collections() == []


def test_bad_files_are_reported_and_never_half_indexed(
    tmp_path: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mixte"
    folder.mkdir()
    write(folder, "bon.md", CIMETIERE)
    badfiles.write_encrypted_pdf(folder)
    badfiles.write_garbage_pdf(folder)
    badfiles.write_truncated_pdf(folder)
    badfiles.write_scanned_pdf(folder)
    badfiles.write_png_named_pdf(folder)
    badfiles.write_empty(folder)
    badfiles.write_blank(folder)
    badfiles.write_huge(folder, size=3 * 1024 * 1024)
    badfiles.write_unsupported(folder)
    write(folder, ".cache/cache.md", "caché")  # hidden folders are ignored
    os.symlink("boucle.md", folder / "boucle.md")  # a symlink loop (points at itself)
    os.symlink("absent.md", folder / "casse.md")  # dangling
    os.symlink(folder, folder / "lien_dossier")  # a directory link: not followed

    report = sync(folder, index, max_bytes=2 * 1024 * 1024)
    failed = {f["source"]: f for f in report.failed}
    assert report.added == ["bon.md"]
    assert set(failed) == {
        "chiffre.pdf",
        "illisible.pdf",
        "tronque.pdf",
        "scan.pdf",
        "pas_un_pdf.pdf",
        "vide.txt",
        "blanc.md",
        "enorme.pdf",
        "boucle.md",
        "casse.md",
    }
    assert failed["chiffre.pdf"]["kind"] == "chiffré"
    assert failed["scan.pdf"]["kind"] == "scanné"
    assert failed["enorme.pdf"]["kind"] == "trop volumineux"
    assert "boucle" in failed["boucle.md"]["reason"]
    assert "cassé" in failed["casse.md"]["reason"]
    assert all(f["reason"] and " : " in f["reason"] for f in report.failed)  # reason: fix
    skipped = {s["source"]: s["reason"] for s in report.skipped}
    assert set(skipped) == {"tableau.xlsx", "lien_dossier"}
    assert "non pris en charge" in skipped["tableau.xlsx"]
    assert set(index.documents("mairie")) == {"bon.md"}
    assert_consistent(index, "mairie")
    assert json.loads(json.dumps(report.as_json()))["failed"]

    # Unchanged bad files are not read again, and still reported.
    monkeypatch.setattr(ingest_mod, "load_document", lambda *a, **k: pytest.fail("re-read"))
    again = sync(folder, index, max_bytes=2 * 1024 * 1024)
    assert {f["source"] for f in again.failed} == set(failed)
    assert again.unchanged == 1


def test_unreadable_file_is_reported_and_keeps_its_indexed_version(
    docs: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(docs, index)
    write(docs, "cimetiere.md", CIMETIERE + " Modifié.")
    real = ingest_mod.file_sha256

    def locked(path: Path) -> str:
        if path.name == "cimetiere.md":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(ingest_mod, "file_sha256", locked)
    report = sync(docs, index)
    assert report.failed[0]["source"] == "cimetiere.md"
    assert "droits" in report.failed[0]["reason"]
    assert "cimetiere.md" in index.documents("mairie") and report.removed == []


def test_file_replaced_by_a_bad_version_loses_its_old_chunks(docs: Path, index: Index) -> None:
    sync(docs, index)
    badfiles.write_encrypted_pdf(docs, "budget.pdf")
    report = sync(docs, index)
    assert [f["source"] for f in report.failed] == ["budget.pdf"]
    assert report.removed == ["budget.pdf"]
    assert "budget.pdf" not in index.documents("mairie")
    assert_consistent(index, "mairie")


def test_failure_of_one_document_does_not_stop_the_batch(
    docs: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_mod.chunk_document

    def explode(doc: Any, collection: str, **kw: Any) -> Any:
        if doc.source == "cimetiere.md":
            raise RecursionError("parser bug")
        return real(doc, collection, **kw)

    monkeypatch.setattr(ingest_mod, "chunk_document", explode)
    report = sync(docs, index)
    assert sorted(report.added) == ["budget.pdf", "voirie/stationnement.md"]
    assert report.failed[0]["source"] == "cimetiere.md"
    assert "RecursionError" in report.failed[0]["reason"]
    assert_consistent(index, "mairie")


def test_embeddings_are_batched_across_documents(tmp_path: Path, index: Index) -> None:
    folder = tmp_path / "petits"
    for n in range(6):
        write(folder, f"note{n}.md", f"Note de service numéro {n} sur la cantine.")
    embedder = FakeEmbedder()
    report = sync(folder, index, embedder=embedder, batch_size=4)
    assert len(report.added) == 6
    assert embedder.calls[0] >= 4  # several documents' chunks in one backend call
    assert sum(embedder.calls) == report.chunks


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_reading_ahead_changes_nothing_in_the_index(
    tmp_path: Path, settings: Settings, prefetch: int
) -> None:
    folder = tmp_path / "notes"
    for n in range(7):
        write(folder, f"note{n}.md", f"# Note {n}\n\nLa cantine ouvre à {n} heures. " * (n + 1))
    write(folder, "vide.md", "   ")  # a bad file among them
    index = build_index(settings.model_copy(update={"data_dir": tmp_path / f"data{prefetch}"}))
    report = sync(folder, index, prefetch=prefetch, batch_size=3)
    assert sorted(report.added) == [f"note{n}.md" for n in range(7)]
    assert [f["source"] for f in report.failed] == ["vide.md"]
    assert_consistent(index, "mairie")
    ids = sorted(index.chunk_ids("mairie")["lexical"])
    again = build_index(settings.model_copy(update={"data_dir": tmp_path / "sequential"}))
    sync(folder, again, prefetch=0, batch_size=3)
    assert sorted(again.chunk_ids("mairie")["lexical"]) == ids


def test_an_error_in_the_reader_thread_reaches_the_caller(
    docs: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: Any, item: Any) -> Any:
        raise MemoryError("plus de mémoire")

    monkeypatch.setattr(ingest_mod._Syncer, "_load", crash)
    with pytest.raises(MemoryError):
        sync(docs, index, prefetch=2)


def test_stop_request_finishes_current_documents_then_resumes(docs: Path, index: Index) -> None:
    seen: list[str] = []

    def progress(state: Any) -> None:
        if state.phase == "index" and state.source and state.source not in seen:
            seen.append(state.source)

    report = sync(docs, index, batch_size=1, progress=progress, stop=lambda: len(seen) >= 2)
    assert report.interrupted and len(report.added) == 2
    assert_consistent(index, "mairie")
    assert index.collections()[0].last_sync is None  # an interrupted sync is not a sync
    rest = sync(docs, index)
    assert len(rest.added) == 1 and rest.unchanged == 2 and not rest.interrupted
    assert_consistent(index, "mairie")


def test_crash_leftovers_are_repaired_and_reindexed(docs: Path, index: Index) -> None:
    sync(docs, index)
    # A crash after the pending mark and the new vectors, before the SQLite step.
    index._db.execute("UPDATE documents SET status = 'pending' WHERE source = 'cimetiere.md'")
    report = sync(docs, index)
    assert report.repaired == ["cimetiere.md"]
    assert report.added == ["cimetiere.md"]
    assert_consistent(index, "mairie")


class OtherEmbedder(FakeEmbedder):
    name = "other-32"


def test_another_embedder_is_refused_until_reindex(docs: Path, index: Index) -> None:
    from assistant.errors import EmbedderMismatchError
    from assistant.retrieval import Retriever

    sync(docs, index)
    before = index.collections()[0].chunks
    # Ingesting with another embedder would mix incomparable vectors: refused, nothing lost.
    with pytest.raises(EmbedderMismatchError, match="--reindex") as err:
        sync(docs, index, embedder=OtherEmbedder(dim=32))
    assert "fake-bow-64" in str(err.value) and "other-32" in str(err.value)
    assert index.collections()[0].chunks == before
    # Searching it with the other embedder is refused too (lexical search needs no vectors).
    other = Retriever(index=index, embedder=OtherEmbedder(dim=32), default_collections=["mairie"])
    with pytest.raises(EmbedderMismatchError, match="assistant ingest"):
        other.search("concession trentenaire")
    assert other.search("concession trentenaire", mode="lexical")
    # One call re-indexes everything with the new embedder; then searching works.
    report = sync(docs, index, embedder=OtherEmbedder(dim=32), reindex=True)
    assert report.rebuilt and len(report.added) == 3
    assert index.collection_embedder("mairie") == "other-32"
    assert_consistent(index, "mairie")
    assert other.search("concession trentenaire")


def test_same_name_other_file_is_another_embedder(docs: Path, index: Index) -> None:
    from assistant.embeddings import same_embedder
    from assistant.errors import EmbedderMismatchError

    class Pinned(FakeEmbedder):
        fingerprint = "aaaaaaaaaaaa"

    class Replaced(FakeEmbedder):
        fingerprint = "bbbbbbbbbbbb"

    sync(docs, index, embedder=Pinned())
    assert index.collection_embedder("mairie") == "fake-bow-64#aaaaaaaaaaaa"
    with pytest.raises(EmbedderMismatchError):
        sync(docs, index, embedder=Replaced())
    assert sync(docs, index, embedder=Pinned()).unchanged == 3
    # An index written before fingerprints were recorded compares by file name only.
    assert same_embedder("fake-bow-64", "fake-bow-64#aaaaaaaaaaaa")
    assert not same_embedder("other.gguf", "fake-bow-64#aaaaaaaaaaaa")


# --- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    import assistant.cli.ingest as cli_ingest

    monkeypatch.setattr(cli_ingest, "build_embedder", lambda s: FakeEmbedder())
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args])

    return run


def test_cli_ingest_list_search_remove(cli: Any, docs: Path) -> None:
    result = cli("ingest", str(docs), "--collection", "mairie", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("collection", "added", "updated", "removed", "unchanged", "skipped", "failed"):
        assert key in report
    assert report["added"] == 3 and report["collection"] == "mairie"
    assert {"pages", "chunks", "seconds"} <= set(report)

    listed = json.loads(cli("ingest", "--list", "--json").stdout)["collections"]
    assert [(c["name"], c["documents"]) for c in listed] == [("mairie", 3)]
    assert listed[0]["last_sync"]

    found = json.loads(
        cli("search", "concessions trentenaires", "-c", "mairie", "-k", "2", "--json").stdout
    )
    first = found["results"][0]
    assert {"source", "page", "heading", "score", "text"} <= set(first)
    assert first["source"] == "cimetiere.md" and first["page"] is None
    assert "Article 1" in first["heading"]
    for mode in ("dense", "lexical"):
        out = cli("search", "budget primitif", "-c", "mairie", "--mode", mode, "--json")
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["results"]

    text = cli("ingest", str(docs), "--collection", "mairie")
    assert text.exit_code == 0 and "Inchangés" in text.stdout

    assert cli("ingest", "--remove", "mairie").exit_code == 0
    assert json.loads(cli("ingest", "--list", "--json").stdout)["collections"] == []
    missing = cli("search", "budget", "-c", "mairie")
    assert missing.exit_code != 0


def test_cli_reindex_after_a_model_change(cli: Any, docs: Path) -> None:
    assert (
        cli("--embedding-model", "ancien.gguf", "ingest", str(docs), "-c", "mairie").exit_code == 0
    )
    refused = cli("--embedding-model", "nouveau.gguf", "ingest", str(docs), "-c", "mairie")
    assert refused.exit_code != 0  # main() prints the message; the runner keeps the error
    assert "--reindex" in str(refused.exception) and "ancien.gguf" in str(refused.exception)
    searched = cli("--embedding-model", "nouveau.gguf", "search", "budget", "-c", "mairie")
    assert searched.exit_code != 0 and "--reindex" in str(searched.exception)
    done = cli(
        "--embedding-model",
        "nouveau.gguf",
        "ingest",
        str(docs),
        "-c",
        "mairie",
        "--reindex",
        "--json",
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["rebuilt"] is True and json.loads(done.stdout)["added"] == 3
    found = cli("--embedding-model", "nouveau.gguf", "search", "budget", "-c", "mairie", "--json")
    assert found.exit_code == 0 and json.loads(found.stdout)["results"]


def test_cli_dry_run_and_usage_errors(cli: Any, docs: Path) -> None:
    result = cli("ingest", str(docs), "-c", "mairie", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ingest"], 2, "Indiquez le dossier"),
        (["ingest", "{docs}", "-c", "état civil"], 1, "Nom de collection invalide"),
        (["ingest", "{docs}/absent", "-c", "mairie"], 1, "Dossier introuvable"),
        (["ingest", "--remove", "inconnue"], 1, "n'existe pas"),
    ],
)
def test_cli_errors_are_french_with_exit_codes(
    settings: Settings,
    docs: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    argv = ["--data-dir", str(settings.data_dir), *(a.format(docs=docs) for a in args)]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == code
    assert message in capsys.readouterr().err


# --- real embedder, real corpus, real kill ------------------------------------------------
def _small_corpus(dest: Path, count: int) -> list[str]:
    """A copy of the smallest Markdown and text-PDF files of the shared corpus."""
    corpus = shared_corpus()
    files = sorted(
        (p for p in corpus.rglob("*") if p.suffix in {".md", ".pdf"} and "SCAN" not in p.name),
        key=lambda p: p.stat().st_size,
    )
    picked = [p for p in files if p.suffix == ".md"][: count // 2]
    picked += [p for p in files if p.suffix == ".pdf"][: count - len(picked)]
    for path in picked:
        target = dest / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return sorted(p.relative_to(corpus).as_posix() for p in picked)


def _cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["ASSISTANT_DATA_DIR"] = str(data_dir)
    env["ASSISTANT_MODELS_DIR"] = str(REPO / "models")
    return env


def _ready_count(lexical: Path) -> int:
    if not lexical.exists():
        return 0
    try:
        with sqlite3.connect(lexical, timeout=1) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM documents WHERE status='ready'").fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_leaves_no_duplicate_or_gap(
    tmp_path: Path, settings: Settings
) -> None:
    require_model("all-minilm-l6-v2-f32.gguf")
    folder = tmp_path / "corpus"
    sources = _small_corpus(folder, 8)
    data_dir = settings.data_dir
    command = [sys.executable, "-m", "assistant", "ingest", str(folder), "-c", "kill", "--json"]
    env = _cli_env(data_dir)
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lexical = data_dir / "lexical.sqlite3"
    deadline = time.monotonic() + 600
    while _ready_count(lexical) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sync finished before it could be killed: use more files"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= _ready_count(lexical) < len(sources)

    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["failed"] == []
    assert report["unchanged"] >= 2  # the documents finished before the kill were kept

    index = build_index(settings)
    assert sorted(index.documents("kill")) == sources
    assert_consistent(index, "kill")
    # And a third run has nothing to do.
    again = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert json.loads(again.stdout)["unchanged"] == len(sources)


@pytest.mark.slow
def test_real_embedder_search_finds_the_right_article(tmp_path: Path, settings: Settings) -> None:
    require_model("all-minilm-l6-v2-f32.gguf")
    from assistant.embeddings import build_embedder

    corpus = shared_corpus()
    folder = tmp_path / "loi"
    folder.mkdir()
    shutil.copy2(corpus / "textes_de_loi" / "cgct_L2121_conseil_municipal.md", folder)
    index = build_index(settings)
    embedder = build_embedder(settings)
    report = sync_folder(folder, "loi", index, embedder, ocr=False)
    assert report.added == ["cgct_L2121_conseil_municipal.md"] and report.chunks > 10
    assert_consistent(index, "loi")
    hits = index.lexical_search(["loi"], "article L. 2121-17", 3)
    assert "L2121-17" in hits[0].heading
    dense = index.dense_search(["loi"], embedder.embed_query("quorum du conseil municipal"), 5)
    assert dense and 0 < dense[0].score <= 1.0


def test_progress_bar_renders_files_pages_chunks(
    cli: Any, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    import assistant.cli.ingest as cli_ingest

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    monkeypatch.setattr(cli_ingest, "err_console", console)
    result = cli("ingest", str(docs), "-c", "mairie")
    assert result.exit_code == 0, result.output
    shown = screen.getvalue()
    assert "3/3 fichiers" in shown and "pages" in shown and "passages" in shown
    assert "Ajoutés" in result.stdout and "pages/s" in result.stdout


@pytest.mark.slow
def test_ctrl_c_stops_after_current_documents_with_exit_130(
    tmp_path: Path, settings: Settings
) -> None:
    require_model("all-minilm-l6-v2-f32.gguf")
    folder = tmp_path / "corpus"
    sources = _small_corpus(folder, 10)
    command = [sys.executable, "-m", "assistant", "ingest", str(folder), "-c", "stop", "--json"]
    env = _cli_env(settings.data_dir)
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lexical = settings.data_dir / "lexical.sqlite3"
    deadline = time.monotonic() + 600
    while _ready_count(lexical) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sync finished before Ctrl-C: use more files"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True
    assert 1 <= report["added"] < len(sources)
    index = build_index(settings)
    assert index.pending("stop") == []  # stopped between documents, nothing half-written
    assert_consistent(index, "stop")
