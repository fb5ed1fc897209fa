"""Drafting benchmark: time to first token and prompt-cache reuse, measured by llama.cpp.

Runs, in one process (as the web UI does), a sequence of requests against an ingested
collection and prints for each one: prompt tokens, cached tokens (reused from llama.cpp's
prefix / RAM cache), uncached tokens, retrieval time, time to first token, total time and
generation speed.

    python scripts/bench_drafting.py --data-dir /tmp/data --collection corpus \
        [--chat-model qwen2.5-coder-1.5b-instruct-q4_k_m.gguf] [--warm-up] [--max-tokens 200]

Sequence: a question; the same question's "plus court" revision; a courrier; a second
question (back to the first type, its fixed part should come from the cache); a délibération.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from assistant.config import Settings  # noqa: E402
from assistant.drafting import Draft, DraftRequest, build_service  # noqa: E402

STEPS: list[tuple[str, DraftRequest | None]] = [
    ("question", DraftRequest("Quel est le quorum pour que le conseil municipal délibère ?")),
    ("plus court (révision)", None),
    (
        "courrier",
        DraftRequest(
            "Répondre à une association qui demande une subvention",
            doc_type="courrier",
            fields={"objet": "Demande de subvention", "destinataire": "Association du quartier"},
        ),
    ),
    ("question (retour)", DraftRequest("Dans quel délai le conseil municipal est-il convoqué ?")),
    (
        "délibération",
        DraftRequest(
            "Délibération fixant les indemnités de fonction des élus",
            doc_type="deliberation",
            fields={"objet": "Indemnités de fonction des élus"},
        ),
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--chat-model", default=None)
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--warm-up", action="store_true", help="evaluate the fixed parts first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    overrides = {"chat_model": args.chat_model} if args.chat_model else {}
    settings = Settings(
        data_dir=args.data_dir,
        models_dir=args.models_dir,
        default_collection=args.collection,
        max_tokens=args.max_tokens,
        **overrides,
    )
    service = build_service(settings)
    if args.warm_up:
        service.warm_up(["question", "courrier", "deliberation"])
    rows = []
    previous: Draft | None = None
    for label, request in STEPS:
        req = request or DraftRequest("plus court", previous=previous)
        draft = service.draft(req)
        previous = draft
        t = draft.timings
        row = {
            "step": label,
            "abstained": draft.abstained,
            "prompt_tokens": t["prompt_tokens"],
            "cached_tokens": t["cached_tokens"],
            "uncached_tokens": t["prompt_tokens"] - t["cached_tokens"],
            "cached_ratio": round(t["cached_tokens"] / t["prompt_tokens"], 3)
            if t["prompt_tokens"]
            else None,
            "retrieval_s": t["retrieval_s"],
            "first_token_s": t["first_token_s"],
            "total_s": t["total_s"],
            "tokens_per_s": t["tokens_per_s"],
        }
        rows.append(row)
        if not args.json:
            print(
                f"{label:24} invite {row['prompt_tokens']:5} dont cache {row['cached_tokens']:5} "
                f"({row['cached_ratio']}) | recherche {row['retrieval_s']:.2f} s | 1er jeton "
                f"{row['first_token_s']} s | total {row['total_s']} s | {row['tokens_per_s']} j/s",
                flush=True,
            )
    if args.json:
        print(json.dumps({"model": service.chat_model.name, "steps": rows}, indent=2))


if __name__ == "__main__":
    main()
