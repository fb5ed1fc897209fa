"""Cost of the JSON-schema grammar on generation speed, on this machine.

Runs the configured chat model on one fixed courrier prompt (evidence + request), ``--tokens``
tokens at a time, alternately free and under the draft schema (:mod:`assistant.structure`),
``--rounds`` times each, and prints the generated tokens per second (first token excluded: the
prompt is evaluated once and cached, so both modes pay the same prompt).

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_grammar.py --tokens 60 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import time

from assistant.config import Settings
from assistant.llm import GenerationStats, build_chat_model
from assistant.structure import schema_for

PROMPT = [
    {
        "role": "system",
        "content": "Tu es l'assistant de rédaction d'une commune. Tu réponds en JSON : chaque "
        "paragraphe indique ses sources puis son texte.",
    },
    {
        "role": "user",
        "content": "<<SOURCE 1 — F10003.md — Occupation du domaine public par un commerce>>\n"
        "Une terrasse nécessite une autorisation d'occupation temporaire (AOT) du domaine "
        "public, qui prend la forme d'un arrêté, et entraîne le paiement d'une redevance.\n"
        "Sans réponse dans les 2 mois, la demande est considérée comme refusée.\n"
        "<<FIN SOURCE 1>>\n\nDemande (Courrier) : répondre au président de l'association des "
        "commerçants sur les terrasses. Écris deux paragraphes. Réponds en JSON : "
        '{"paragraphes": [{"sources": [1], "texte": "…"}]}.',
    },
]


def run(model: object, tokens: int, schema: dict[str, object] | None) -> float:
    stats = GenerationStats()
    start = time.monotonic()
    first: float | None = None
    for _ in model.stream(  # type: ignore[attr-defined]
        PROMPT, max_tokens=tokens, temperature=0.2, stats=stats, response_format=schema
    ):
        if first is None:
            first = time.monotonic()
    end = time.monotonic()
    if first is None or stats.completion_tokens < 2:
        return 0.0
    _ = start
    return (stats.completion_tokens - 1) / (end - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = Settings()
    model = build_chat_model(settings)
    schema = schema_for("prose", [1])
    run(model, 2, None)  # evaluate and cache the prompt once
    free: list[float] = []
    constrained: list[float] = []
    for _ in range(args.rounds):
        free.append(run(model, args.tokens, None))
        constrained.append(run(model, args.tokens, schema))
    f, c = statistics.median(free), statistics.median(constrained)
    print(f"modèle {model.name}, {settings.threads} fils, {args.tokens} jetons × {args.rounds}")
    print(
        f"sans grammaire : {f:.1f} jetons/s ; avec le schéma JSON : {c:.1f} jetons/s "
        f"({(c / f - 1) * 100 if f else 0:+.0f} %)"
    )


if __name__ == "__main__":
    main()
