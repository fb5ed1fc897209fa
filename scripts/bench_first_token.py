"""First-token benchmark: the context budget against a naive top-5 context, in one run.

    python scripts/bench_first_token.py --data-dir /tmp/ft-data --collection eval-corpus \
        --questions ../shared/eval/dev_questions.jsonl [--chat-model ...] [--max-tokens 48]

One process, one model (the default chat model unless ``--chat-model``), one index. Each
question of the file is drafted as a ``question`` twice: with the budget (``context_budget``,
default 800 uncached tokens) and with the naive context (``context_budget = 0``: the first 5
passages as retrieved, whole, unfiltered). Per mode, the script prints the medians of
``prompt_tokens``, ``cached_tokens`` (both measured by llama.cpp: the tokens it was given, and
those it did not evaluate again), uncached tokens, retrieval time and first-token time
(retrieval included: what the agent waits for), then a "plus court" revision of the mode's
last draft with its cached / prompt ratio.

Fairness: the modes run one after the other, each from the same state: a fresh prompt-state
cache (llama-cpp-python's RAM cache, as the server uses) holding only the warmed-up fixed part
of the ``question`` template. Within a mode, what llama.cpp already read for an earlier
question is reused, as in real use. Answers are cut at ``--max-tokens`` (48 by default) to keep
the run short: the first-token time does not depend on it, the total time does.

Measured (2026-11-26, 2 shared cores, qwen2.5-coder-1.5b q4_k_m, 10 dev questions, 9 drafted,
1 abstention; 5 min for the run), medians budget 800 / naive top-5:
prompt_tokens 1206 / 1787, cached_tokens 492 / 492, uncached 709 / 1225 (max 757 / 3327),
first word 8.2 s / 15.4 s; "plus court" revision: cached / prompt 0.955 (1266 / 1325).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.config import Settings  # noqa: E402  (after the path setup above)
from assistant.drafting import (  # noqa: E402
    Draft,
    DraftingService,
    DraftRequest,
    build_service,
    enable_prompt_cache,
)
from assistant.evaluation import load_questions  # noqa: E402

MODES = ("budget", "naive")


def _row(question_id: str, draft: Draft) -> dict[str, Any]:
    t = draft.timings
    return {
        "id": question_id,
        "abstained": draft.abstained and not draft.prompt,  # no model call
        "sources": len(draft.sources),
        "prompt_tokens": t["prompt_tokens"],
        "cached_tokens": t["cached_tokens"],
        "uncached_tokens": t["prompt_tokens"] - t["cached_tokens"],
        "budget_tokens": t["budget_tokens"],
        "retrieval_s": t["retrieval_s"],
        "first_token_s": t["first_token_s"],
        "total_s": t["total_s"],
        "completion_tokens": t["completion_tokens"],
    }


def _medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    drafted = [r for r in rows if not r["abstained"] and r["first_token_s"] is not None]
    out: dict[str, Any] = {"questions": len(rows), "drafted": len(drafted)}
    for key in (
        "prompt_tokens",
        "cached_tokens",
        "uncached_tokens",
        "sources",
        "retrieval_s",
        "first_token_s",
    ):
        values = [r[key] for r in drafted]
        out[f"median_{key}"] = round(statistics.median(values), 3) if values else None
    out["max_uncached_tokens"] = max((r["uncached_tokens"] for r in drafted), default=None)
    return out


def run_mode(
    service: DraftingService, questions: list[Any], collection: str, echo: bool
) -> dict[str, Any]:
    """Draft every question, then revise the last draft ("plus court")."""
    if enable_prompt_cache(service.chat_model):  # a fresh state cache: no carry-over
        service.warm_up(["question"])
    rows = []
    last: Draft | None = None
    last_id = ""
    for q in questions:
        draft = service.draft(DraftRequest(q.question, collections=[collection], user="bench"))
        row = _row(q.id, draft)
        rows.append(row)
        if not row["abstained"]:
            last, last_id = draft, q.id
        if echo:
            print(
                f"  {q.id:5} invite {row['prompt_tokens']:5} dont cache {row['cached_tokens']:5}"
                f" (non lus avant : {row['uncached_tokens']:4}) | {row['sources']} sources | "
                f"recherche {row['retrieval_s']:.2f} s | premier mot {row['first_token_s']} s",
                flush=True,
            )
    revision: dict[str, Any] | None = None
    if last is not None:
        revised = service.draft(DraftRequest("plus court", previous=last, user="bench"))
        t = revised.timings
        revision = {
            "of": last_id,
            "prompt_tokens": t["prompt_tokens"],
            "cached_tokens": t["cached_tokens"],
            "cached_ratio": round(t["cached_tokens"] / t["prompt_tokens"], 3)
            if t["prompt_tokens"]
            else None,
            "first_token_s": t["first_token_s"],
        }
    return {"summary": _medians(rows), "revision": revision, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--questions", type=Path, required=True, help="JSONL of the project")
    parser.add_argument("--chat-model", default=None, help="default: the default chat model")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--budget", type=int, default=None, help="default: context_budget")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, default=None, help="also write the JSON report")
    args = parser.parse_args(argv)

    overrides: dict[str, Any] = {"chat_model": args.chat_model} if args.chat_model else {}
    if args.budget is not None:
        overrides["context_budget"] = args.budget
    settings = Settings(
        data_dir=args.data_dir,
        models_dir=args.models_dir,
        default_collection=args.collection,
        max_tokens=args.max_tokens,
        **overrides,
    )
    questions = load_questions(args.questions)[: args.limit]
    budgeted = build_service(settings)
    budgeted.audit = None  # a benchmark is not an agent's work: nothing in the audit trail
    naive = DraftingService(
        settings.model_copy(update={"context_budget": 0}),
        budgeted.chat_model,
        budgeted.retriever,
        budgeted.templates,
    )
    echo = not args.json
    if echo:
        print(
            f"Modèle {budgeted.chat_model.name}, {len(questions)} questions, réponses coupées à "
            f"{args.max_tokens} jetons (le premier mot n'en dépend pas), {settings.threads} fils."
        )
    results: dict[str, Any] = {}
    for mode, service in zip(MODES, (budgeted, naive), strict=True):
        if echo:
            label = (
                f"budget {settings.context_budget} jetons"
                if mode == "budget"
                else "naïf (5 passages entiers)"
            )
            print(f"\n== {label}", flush=True)
        results[mode] = run_mode(service, questions, args.collection, echo)

    report = {
        "model": budgeted.chat_model.name,
        "max_tokens": args.max_tokens,
        "threads": settings.threads,
        "context_budget": settings.context_budget,
        **results,
    }
    if args.save is not None:
        args.save.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    print(f"\n{'':24}{'budget':>12}{'naïf':>12}")
    lines = [
        ("médiane invite (jetons)", "median_prompt_tokens"),
        ("médiane en cache", "median_cached_tokens"),
        ("médiane non lus avant", "median_uncached_tokens"),
        ("max non lus avant", "max_uncached_tokens"),
        ("médiane sources", "median_sources"),
        ("médiane recherche (s)", "median_retrieval_s"),
        ("médiane premier mot (s)", "median_first_token_s"),
    ]
    for label, key in lines:
        values = [results[m]["summary"][key] for m in MODES]
        print(f"{label:24}" + "".join(f"{v!s:>12}" for v in values))
    for mode in MODES:
        rev = results[mode]["revision"]
        if rev:
            print(
                f"révision « plus court » ({mode}) : invite {rev['prompt_tokens']} dont cache "
                f"{rev['cached_tokens']} (ratio {rev['cached_ratio']}), premier mot "
                f"{rev['first_token_s']} s"
            )


if __name__ == "__main__":
    main()
