"""Fresh reads across processes: what a cron ``assistant ingest`` commits (additions, updates,
deletions) is seen by a long-running process holding a retriever (as ``assistant serve`` does),
in both indexes, without a restart. Two real processes, the real embedder, real Chroma."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.config import DEFAULT_EMBEDDING_MODEL
from tests.conftest import REPO, require_model

# The reader: one long-lived process, one Retriever (one Index, one Chroma client), queried
# through stdin/stdout with JSON lines, like the web server between two page loads.
READER = r"""
import json, sys
from assistant.config import load_settings
from assistant.retrieval import build_retriever
retriever = build_retriever(load_settings())
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    hits = retriever.search(ask["q"], ["fraiche"], k=3, mode=ask["mode"])
    print(json.dumps([
        {"source": h.source, "text": h.text, "cosine": h.metadata.get("cosine")} for h in hits
    ]), flush=True)
"""

CANTINE = "Le tarif du repas à la cantine scolaire est de 3,20 euros par enfant."
PISCINE = "La piscine municipale ouvre le samedi de 9 heures à 19 heures pour les nageurs."
CANTINE_NEW = "Le tarif du repas à la cantine scolaire passe à 4,10 euros par enfant en septembre."


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_DATA_DIR=str(data_dir),
        ASSISTANT_MODELS_DIR=str(REPO / "models"),
        ASSISTANT_THREADS="1",
        PYTHONPATH=str(REPO),
    )
    return env


class Reader:
    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", READER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(data_dir),
            cwd=data_dir.parent,
        )
        assert self.proc.stdout is not None
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def search(self, query: str, mode: str) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"q": query, "mode": mode}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the reader process died"
        result: list[dict[str, Any]] = json.loads(line)
        return result

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def ingest(folder: Path, data_dir: Path) -> None:
    """``assistant ingest`` in its own process, as cron runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(folder), "-c", "fraiche", "--json"],
        env=_env(data_dir),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def reader_and_folder(tmp_path: Path) -> Iterator[tuple[Reader, Path, Path]]:
    require_model(DEFAULT_EMBEDDING_MODEL)
    folder, data_dir = tmp_path / "docs", tmp_path / "data"
    folder.mkdir()
    (folder / "cantine.md").write_text(f"# Cantine\n\n{CANTINE}\n", encoding="utf-8")
    ingest(folder, data_dir)
    reader = Reader(data_dir)
    try:
        yield reader, folder, data_dir
    finally:
        reader.close()


def _sources(hits: list[dict[str, Any]]) -> list[str]:
    return [h["source"] for h in hits]


@pytest.mark.slow
def test_ingest_in_another_process_is_seen_at_the_next_query(
    reader_and_folder: tuple[Reader, Path, Path],
) -> None:
    reader, folder, data_dir = reader_and_folder
    question_b = "horaires d'ouverture de la piscine municipale le samedi"
    assert _sources(reader.search("tarif du repas à la cantine", "dense"))[0] == "cantine.md"
    assert "piscine.md" not in _sources(reader.search(question_b, "dense"))

    # Addition: a new document, committed by another process.
    (folder / "piscine.md").write_text(f"# Piscine\n\n{PISCINE}\n", encoding="utf-8")
    ingest(folder, data_dir)
    committed = time.monotonic()
    dense = reader.search(question_b, "dense")
    seen_after = time.monotonic() - committed
    assert dense and dense[0]["source"] == "piscine.md", dense
    assert dense[0]["cosine"] > 0.5  # the real similarity, not a stale near-zero score
    assert _sources(reader.search(question_b, "lexical"))[0] == "piscine.md"
    print(f"\nvisible in the reader {seen_after:.3f} s after the ingest process ended")
    assert seen_after < 5.0

    # Update: the new text replaces the old one in both indexes.
    (folder / "cantine.md").write_text(f"# Cantine\n\n{CANTINE_NEW}\n", encoding="utf-8")
    ingest(folder, data_dir)
    for mode in ("dense", "lexical", "hybrid"):
        hits = [h for h in reader.search("tarif du repas à la cantine", mode)
                if h["source"] == "cantine.md"]  # fmt: skip
        assert hits, mode
        assert "4,10" in hits[0]["text"] and "3,20" not in hits[0]["text"], mode

    # Deletion: gone from both indexes.
    (folder / "piscine.md").unlink()
    ingest(folder, data_dir)
    for mode in ("dense", "lexical", "hybrid"):
        assert "piscine.md" not in _sources(reader.search(question_b, mode)), mode


HOLDER = r"""
import sys, time
from pathlib import Path
from assistant.store import _directory_lock
with _directory_lock(Path(sys.argv[1])).hold():
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_chroma_work_waits_for_another_process_holding_the_directory(tmp_path: Path) -> None:
    """chromadb's local mode writes its files even when it only reads (it applies and persists
    its log), so every process takes the directory's lock around Chroma work."""
    from assistant.config import Settings
    from assistant.store import build_index

    settings = Settings(data_dir=tmp_path / "data")
    index = build_index(settings)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.data_dir / "chroma.lock"), "1.5"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    assert index.vector_count("absente") == 0
    waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert waited > 0.8  # it waited for the other process
