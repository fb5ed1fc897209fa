"""Ingestion benchmark: throughput, no-change re-run, and overhead over the unavoidable work.

    python scripts/bench_ingest.py                       # the whole shared corpus
    python scripts/bench_ingest.py --limit 20 --json     # the first 20 files (quicker)

Measured in one run, on the same files and the same chunks:

1. ``ingest``: a full sync into an empty data directory (real GGUF embedder, real Chroma and
   SQLite), model load excluded; pages/s and chunks/s.
2. ``rerun``: the same sync again with nothing changed, in-process; and the whole CLI command
   (``python -m assistant ingest``, process start and imports included).
3. The two unavoidable parts: pypdf text extraction of the same PDF files (plain file reads
   for the other formats), and llama.cpp embedding of the same chunk texts (read back from the
   index). ``ratio`` = ingest seconds / (extraction + embedding); the target is <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.config import Settings  # noqa: E402  (after the path setup above)
from assistant.embeddings import build_embedder  # noqa: E402
from assistant.ingest import DEFAULT_PREFETCH, sync_folder  # noqa: E402
from assistant.loaders import is_supported  # noqa: E402
from assistant.store import build_index  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"


def pick_files(
    corpus: Path, limit: int | None, work: Path, preferred: Sequence[str] = ()
) -> Path:
    """The corpus itself, or a copy of ``limit`` supported files: the ``preferred`` ones
    (paths relative to ``corpus``, e.g. the files the benchmark's questions need) first, then
    the others in sorted order."""
    if limit is None:
        return corpus
    folder = work / "corpus"
    every = sorted(p for p in corpus.rglob("*") if p.is_file() and is_supported(p))
    wanted = [corpus / f for f in dict.fromkeys(preferred) if (corpus / f) in set(every)]
    files = (wanted + [p for p in every if p not in wanted])[:limit]
    for path in files:
        target = folder / path.relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return folder


def extraction_seconds(folder: Path) -> float:
    """pypdf extraction of every PDF page (plain reads for the other formats)."""
    from pypdf import PdfReader

    started = time.perf_counter()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not is_supported(path):
            continue
        if path.suffix.lower() == ".pdf":
            try:
                for page in PdfReader(path).pages:
                    page.extract_text()
            except Exception:  # the same bad files the sync reports
                continue
        else:
            path.read_bytes().decode("utf-8", errors="replace")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N files.")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--prefetch",
        type=int,
        default=DEFAULT_PREFETCH,
        help="Documents read ahead while embedding (0: one after the other).",
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        folder = pick_files(args.corpus, args.limit, work)
        settings = Settings(
            data_dir=work / "data", models_dir=args.models_dir, threads=args.threads
        )
        t0 = time.perf_counter()
        embedder = build_embedder(settings)
        load_s = time.perf_counter() - t0
        index = build_index(settings)

        report = sync_folder(
            folder, "bench", index, embedder, batch_size=args.batch_size, prefetch=args.prefetch
        )
        ingest_s = report.seconds
        rerun = sync_folder(folder, "bench", index, embedder, batch_size=args.batch_size)

        env = {**os.environ, "PYTHONPATH": str(REPO), "ASSISTANT_DATA_DIR": str(work / "data")}
        env["ASSISTANT_MODELS_DIR"] = str(args.models_dir)
        t0 = time.perf_counter()
        cli = subprocess.run(
            [sys.executable, "-m", "assistant", "ingest", str(folder), "-c", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        cli_s = time.perf_counter() - t0
        cli_unchanged = json.loads(cli.stdout)["unchanged"] if cli.returncode == 0 else None

        extract_s = extraction_seconds(folder)
        with sqlite3.connect(settings.lexical_path) as db:
            texts = [r[0] for r in db.execute("SELECT text FROM chunks ORDER BY rowid")]
        t0 = time.perf_counter()
        embedder.embed(texts, batch_size=args.batch_size)
        embed_s = time.perf_counter() - t0

    figures = {
        "files": len(report.added) + len(report.failed) + len(report.skipped),
        "indexed": len(report.added),
        "failed": len(report.failed),
        "pages": report.pages,
        "chunks": report.chunks,
        "model_load_s": round(load_s, 2),
        "ingest_s": round(ingest_s, 2),
        "pages_per_s": round(report.pages / ingest_s, 2),
        "chunks_per_s": round(report.chunks / ingest_s, 2),
        "rerun_unchanged_s": round(rerun.seconds, 3),
        "rerun_unchanged_files": rerun.unchanged,
        "rerun_cli_s": round(cli_s, 2),
        "rerun_cli_unchanged_files": cli_unchanged,
        "extraction_s": round(extract_s, 2),
        "embedding_s": round(embed_s, 2),
        "ratio": round(ingest_s / (extract_s + embed_s), 3),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "prefetch": args.prefetch,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"Fichiers indexés : {figures['indexed']} ({figures['failed']} en échec)")
    print(f"Pages : {report.pages}, passages : {report.chunks}")
    print(
        f"Ingestion : {ingest_s:.1f} s — {figures['pages_per_s']} pages/s, "
        f"{figures['chunks_per_s']} passages/s (chargement du modèle : {load_s:.1f} s à part)"
    )
    print(f"Relance sans changement : {rerun.seconds:.3f} s ; commande complète : {cli_s:.2f} s")
    print(
        f"Extraction pypdf : {extract_s:.1f} s ; embeddings llama.cpp : {embed_s:.1f} s ; "
        f"ratio ingestion / (extraction + embeddings) : {figures['ratio']} (cible <= 1.2)"
    )


if __name__ == "__main__":
    main()
