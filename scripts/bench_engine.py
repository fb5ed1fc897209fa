#!/usr/bin/env python3
"""Raw speed of the installed llama.cpp build: prompt and generated tokens per second.

Loads a chat GGUF, evaluates a ~300-token French prompt in one batch, then generates greedily
token by token (each token evaluated once: no re-evaluation of the prompt, which would halve the
apparent speed, see ../shared/MODELS.md), and prints one JSON line. Run it with the Python of the
build to measure (e.g. a venv with a `-march=native` build beside the project's), the same model
and threads, to compare builds side by side.

Usage: python scripts/bench_engine.py MODEL.gguf [--threads 2] [--tokens 64] [--runs 3]
       [--extra-buffers on|off]
Standard library + llama_cpp + numpy only (it must run in a bare venv holding another build).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

PROMPT = (
    "Le conseil municipal règle par ses délibérations les affaires de la commune. Il donne son "
    "avis toutes les fois que cet avis est requis par les lois et règlements, ou qu'il est "
    "demandé par le représentant de l'État dans le département. Le conseil municipal se réunit "
    "au moins une fois par trimestre. Le maire est tenu de le convoquer dans un délai maximal de "
    "trente jours quand la demande motivée lui en est faite par le représentant de l'État dans le "
    "département ou par le tiers au moins des membres du conseil municipal en exercice dans les "
    "communes de 1 000 habitants et plus. Toute convocation est faite par le maire. Elle indique "
    "les questions portées à l'ordre du jour. Elle est mentionnée au registre des délibérations, "
    "affichée ou publiée. Elle est transmise de manière dématérialisée ou, si les conseillers "
    "municipaux en font la demande, adressée par écrit à leur domicile ou à une autre adresse. "
    "Dans les communes de moins de 3 500 habitants, la convocation est adressée trois jours "
    "francs au moins avant celui de la réunion. En cas d'urgence, le délai peut être abrégé par "
    "le maire sans pouvoir être toutefois inférieur à un jour franc. Le conseil municipal ne "
    "délibère valablement que lorsque la majorité de ses membres en exercice est présente. "
    "Résumez ces règles pour un nouvel élu :"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--extra-buffers", choices=["on", "off"], default="on")
    opts = parser.parse_args()

    import llama_cpp
    import llama_cpp.llama_cpp as binding
    import numpy as np
    from llama_cpp import Llama

    if opts.extra_buffers == "off":  # same mechanism as assistant.engine._model_params
        original = binding.llama_model_default_params

        def params():  # type: ignore[no-untyped-def]
            value = original()
            value.use_extra_bufts = False
            return value

        binding.llama_model_default_params = params
    llm = Llama(model_path=opts.model, n_ctx=1024, n_batch=512, n_threads=opts.threads,
                n_threads_batch=opts.threads, verbose=False)
    tokens = llm.tokenize(PROMPT.encode("utf-8"), add_bos=True)
    prompt_rates, gen_rates = [], []
    for _ in range(opts.runs):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        prompt_rates.append(len(tokens) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for _ in range(opts.tokens):
            ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
            row = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))
            llm.eval([int(row.argmax())])
        gen_rates.append(opts.tokens / (time.perf_counter() - t0))
    print(json.dumps({
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "extra_buffers": opts.extra_buffers, "threads": opts.threads,
        "prompt_tokens": len(tokens),
        "prompt_tokens_per_s": round(statistics.median(prompt_rates), 1),
        "generated_tokens_per_s": round(statistics.median(gen_rates), 1),
        "runs": opts.runs,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
