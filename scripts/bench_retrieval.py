"""Retrieval benchmark: latency (p50/p95) at the corpus size and on a synthetic large index,
and the calibration of the abstention threshold.

Examples (run from the repository, venv active)::

    # latency on an ingested collection (e.g. the one `assistant eval` built)
    python scripts/bench_retrieval.py latency --data-dir /tmp/eval-data --collection eval-corpus \
        --questions ../shared/eval/dev_questions.jsonl

    # latency at 100,000 synthetic chunks (texts recombined from a collection, random vectors)
    python scripts/bench_retrieval.py synthetic --data-dir /tmp/eval-data --collection eval-corpus \
        --questions ../shared/eval/dev_questions.jsonl --chunks 100000 --work-dir /tmp/bench-100k

    # relevance of in-corpus questions vs out-of-corpus questions (abstention threshold)
    python scripts/bench_retrieval.py calibrate --data-dir /tmp/eval-data --collection eval-corpus \
        --questions ../shared/eval/dev_questions.jsonl

Query latency includes the query embedding (the real embedder), the dense and lexical
searches, fusion, de-duplication and merging; the stages are also timed separately.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.config import Settings  # noqa: E402
from assistant.embeddings import Embedder, build_embedder  # noqa: E402
from assistant.evaluation import load_questions  # noqa: E402
from assistant.retrieval import ABSTAIN_THRESHOLD, Retriever, build_retriever  # noqa: E402
from assistant.schema import Chunk  # noqa: E402
from assistant.store import Index, build_index  # noqa: E402

# Questions a commune's agent might type that the corpus cannot answer (abstention calibration).
OUT_OF_CORPUS = [
    "Quelle est la recette de la tarte tatin ?",
    "Quels sont les résultats du championnat de football de Ligue 1 ?",
    "Comment régler le carburateur d'une tondeuse à gazon ?",
    "Quelle est la capitale de l'Australie ?",
    "Quel temps fera-t-il demain à Brest ?",
    "Comment soigner une otite chez un chat ?",
    "Qui a gagné le Tour de France en 1998 ?",
    "Quelle est la meilleure façon d'apprendre le piano ?",
    "Comment installer une pompe à chaleur air-eau dans une maison ?",
    "Quel est le cours de l'action Airbus aujourd'hui ?",
    "Combien de calories contient une banane ?",
    "Comment configurer un routeur wifi pour jouer en ligne ?",
]


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pct(p: float) -> float:
        if not ordered:
            return 0.0
        idx = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[idx]

    return {
        "p50_ms": round(pct(50) * 1000, 1),
        "p95_ms": round(pct(95) * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else 0.0,
        "n": len(ordered),
    }


def settings_for(data_dir: Path, models_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, models_dir=models_dir)


def time_queries(
    retriever: Retriever,
    embedder: Embedder,
    index: Index,
    collection: str,
    queries: list[str],
    repeat: int,
) -> dict[str, Any]:
    total: list[float] = []
    embed: list[float] = []
    dense: list[float] = []
    lexical: list[float] = []
    retriever.search(queries[0], collections=[collection])  # warm-up (caches, HNSW load)
    for _ in range(repeat):
        for q in queries:
            t0 = time.perf_counter()
            retriever.search(q, collections=[collection], k=6)
            total.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            vec = embedder.embed_query(q)
            t1 = time.perf_counter()
            index.dense_search([collection], vec, 40)
            t2 = time.perf_counter()
            index.lexical_search([collection], q, 40)
            t3 = time.perf_counter()
            embed.append(t1 - t0)
            dense.append(t2 - t1)
            lexical.append(t3 - t2)
    return {
        "search": percentiles(total),
        "embed_query": percentiles(embed),
        "dense": percentiles(dense),
        "lexical": percentiles(lexical),
    }


def cmd_latency(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_for(args.data_dir, args.models_dir)
    index = build_index(settings)
    embedder = build_embedder(settings)
    retriever = build_retriever(settings, index=index, embedder=embedder)
    chunks = next((c.chunks for c in index.collections() if c.name == args.collection), 0)
    queries = [q.question for q in load_questions(args.questions)]
    out = time_queries(retriever, embedder, index, args.collection, queries, args.repeat)
    return {"collection": args.collection, "chunks": chunks, **out}


def _words_pool(index: Index, collection: str) -> list[str]:
    """Sentences of the real collection, to recombine into synthetic chunks."""
    rows = index._query("SELECT text FROM chunks WHERE collection = ?", (collection,))
    sentences: list[str] = []
    for row in rows:
        sentences.extend(s.strip() for s in row["text"].split(". ") if len(s.strip()) > 20)
    if not sentences:
        raise SystemExit(f"collection {collection} vide : ingérez-la d'abord (assistant eval ...)")
    return sentences


def cmd_synthetic(args: argparse.Namespace) -> dict[str, Any]:
    """Build (once) a collection of ``--chunks`` synthetic chunks, then time queries on it."""
    source_settings = settings_for(args.data_dir, args.models_dir)
    source_index = build_index(source_settings)
    work = settings_for(args.work_dir, args.models_dir)
    index = build_index(work)
    name = f"synthetic-{args.chunks}"
    embedder = build_embedder(work)
    dim = len(embedder.embed_query("dimension"))
    existing = next((c.chunks for c in index.collections() if c.name == name), 0)
    build_s = None
    if existing < args.chunks:
        if index.has_collection(name):
            index.drop_collection(name)
        index.ensure_collection(name, embedder=embedder.name, dimension=dim)
        rng = random.Random(7)
        pool = _words_pool(source_index, args.collection)
        per_doc = 100
        t0 = time.perf_counter()
        for d in range(0, args.chunks, per_doc):
            source = f"synth/doc_{d // per_doc:05d}.md"
            chunks: list[Chunk] = []
            vectors: list[list[float]] = []
            for i in range(min(per_doc, args.chunks - d)):
                text = ". ".join(rng.sample(pool, 6)) + "."
                chunks.append(
                    Chunk(
                        id=f"{name}:{source}:{i}",
                        text=text,
                        metadata={
                            "source": source,
                            "chunk_index": i,
                            "heading": f"Article {i}",
                            "title": source,
                            "doc_type": rng.choice(["loi", "deliberation", "fiche"]),
                        },
                    )
                )
                v = [rng.gauss(0.0, 1.0) for _ in range(dim)]
                norm = sum(x * x for x in v) ** 0.5
                vectors.append([x / norm for x in v])
            index.replace_document(name, source, f"{d:064d}", chunks, vectors, title=source)
        build_s = round(time.perf_counter() - t0, 1)
    retriever = build_retriever(work, index=index, embedder=embedder)
    queries = [q.question for q in load_questions(args.questions)]
    out = time_queries(retriever, embedder, index, name, queries, args.repeat)
    return {"collection": name, "chunks": args.chunks, "build_s": build_s, **out}


def cmd_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_for(args.data_dir, args.models_dir)
    retriever = build_retriever(settings)
    inside = [q.question for q in load_questions(args.questions)]

    features: dict[str, list[tuple[float, float | None, float]]] = {"in": [], "out": []}

    def top(queries: list[str], key: str) -> list[float]:
        out = []
        for q in queries:
            hits = retriever.search(q, collections=[args.collection])
            best = max(hits, key=lambda h: h.metadata["relevance"]) if hits else None
            if best is not None:
                features[key].append(
                    (best.metadata["relevance"], best.metadata["cosine"], best.metadata["coverage"])
                )
            out.append(round(retriever.relevance(hits), 3))
        return out

    rel_in, rel_out = top(inside, "in"), top(OUT_OF_CORPUS, "out")
    # The threshold halfway between the weakest in-corpus and the strongest out-of-corpus
    # question when they separate; otherwise the value that misclassifies the fewest.
    candidates = sorted(set(rel_in + rel_out))
    best = min(
        candidates,
        key=lambda t: sum(r < t for r in rel_in) + sum(r >= t for r in rel_out),
    )
    separated = min(rel_in) > max(rel_out)
    suggested = round((min(rel_in) + max(rel_out)) / 2, 3) if separated else best
    return {
        "in_corpus": sorted(rel_in),
        "out_of_corpus": sorted(rel_out),
        "separated": separated,
        "suggested_threshold": suggested,
        "current_threshold": ABSTAIN_THRESHOLD,
        "best_hit_relevance_cosine_coverage": features,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("latency", "synthetic", "calibrate"):
        p = sub.add_parser(name)
        p.add_argument("--data-dir", type=Path, required=True)
        p.add_argument("--models-dir", type=Path, default=REPO / "models")
        p.add_argument("--collection", required=True)
        p.add_argument("--questions", type=Path, required=True)
        p.add_argument("--repeat", type=int, default=3)
        if name == "synthetic":
            p.add_argument("--chunks", type=int, default=100_000)
            p.add_argument("--work-dir", type=Path, default=Path("/tmp/bench-retrieval-synthetic"))
    args = parser.parse_args(argv)
    handler = {"latency": cmd_latency, "synthetic": cmd_synthetic, "calibrate": cmd_calibrate}
    print(json.dumps(handler[args.command](args), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
