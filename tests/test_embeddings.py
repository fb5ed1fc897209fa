"""LocalEmbedder: several sequences per llama.cpp call give the same vectors as one at a time.

The packing rule is checked on a stand-in model (it only needs a tokenizer); the vectors with
the real GGUF embedder(s) found in models/ (the test set's all-MiniLM-L6-v2, and the default
multilingual-e5-small when installed).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.embeddings import EMBED_BATCH_TOKENS, LocalEmbedder, ThreadChooser
from tests.conftest import MODELS_DIR, require_model


class WordModel:
    """A stand-in for llama_cpp.Llama: one token per word, [CLS]=1 ... [SEP]=2."""

    n_batch = EMBED_BATCH_TOKENS

    def n_ctx_train(self) -> int:
        return 512

    def tokenize(self, data: bytes, add_bos: bool = True) -> list[int]:
        return [1, *(100 + len(w) for w in data.decode().split()), 2]

    def detokenize(self, tokens: list[int]) -> bytes:
        return " ".join("x" * (t - 100) for t in tokens).encode()

    def embed(self, texts: list[str], normalize: bool = False) -> list[list[float]]:
        return [[float(len(t.split())), 1.0] for t in texts]


def stand_in(settings: Settings) -> LocalEmbedder:
    return LocalEmbedder(settings, llama=WordModel())


def test_long_texts_are_cut_to_the_limit_keeping_the_closing_token(settings: Settings) -> None:
    emb = stand_in(settings)
    tokens = emb.tokens("mot " * 2000)
    assert len(tokens) == min(EMBED_BATCH_TOKENS, 512)
    assert tokens[0] == 1 and tokens[-1] == 2
    assert emb.tokens("les mots") == [1, 103, 104, 2]


@pytest.mark.parametrize("seed", range(5))
def test_packing_covers_every_sequence_once_within_the_limits(
    settings: Settings, seed: int
) -> None:
    emb = stand_in(settings)
    emb._n_seq_max = 7
    rng = random.Random(seed)
    lengths = [rng.choice([3, 20, 150, 300, 512]) for _ in range(rng.randint(1, 80))]
    bins = emb.pack(lengths)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= emb._budget and len(b) <= 7 for b in bins)
    # First-fit decreasing: no two bins could have been merged.
    loads = sorted(sum(lengths[i] for i in b) for b in bins)
    if len(loads) >= 2 and all(len(b) < 7 for b in bins):
        assert loads[0] + loads[1] > emb._budget


def test_an_injected_model_without_a_llama_context_still_embeds(settings: Settings) -> None:
    emb = stand_in(settings)
    vectors = emb.embed(["un deux trois", "quatre"])
    assert len(vectors) == 2 and all(math.isclose(sum(x * x for x in v), 1.0) for v in vectors)
    assert emb.embed([]) == []


def test_thread_count_follows_the_measured_speed() -> None:
    """Under contention fewer threads can be faster; when the load goes, more win again."""
    chooser = ThreadChooser(4, explore=5)
    assert chooser.candidates == [4, 2, 1]
    speed = {4: 100.0, 2: 150.0, 1: 300.0}  # a busy machine: 1 thread is fastest

    def run(calls: int) -> list[int]:
        picked = []
        for _ in range(calls):
            t = chooser.pick()
            chooser.record(t, 300, 300 / speed[t])
            picked.append(t)
        return picked

    first = run(40)
    assert first[:3] == [4, 2, 1]  # each count measured once
    assert first[3:].count(1) >= 0.75 * len(first[3:])  # then mostly the fastest
    speed.update({4: 900.0, 2: 500.0})  # the load is gone
    later = run(60)[-20:]
    assert later.count(4) >= 15
    assert ThreadChooser(1).candidates == [1]


# --- the real llama.cpp path --------------------------------------------------------------------


def installed_embedders() -> list[str]:
    names = ["all-minilm-l6-v2-f32.gguf"]
    names += sorted(p.name for p in MODELS_DIR.glob("*e5*.gguf"))
    return names


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


TEXTS = [
    "Le conseil municipal se réunit au moins une fois par trimestre.",
    "Quorum",
    "Article L. 2121-17 : le conseil municipal ne délibère valablement que lorsque la majorité "
    "de ses membres en exercice est présente. " * 6,
    "Tarifs de la cantine scolaire pour l'année 2024 : 3,20 € par repas.",
    "Délibération n° 2024-031 portant approbation du budget primitif. " * 60,  # > 512 tokens
    "La convocation est adressée trois jours francs au moins avant la séance.",
] + [f"Arrêté municipal n° {n} réglementant le stationnement rue {n}." for n in range(30)]


@pytest.mark.slow
@pytest.mark.parametrize("model", installed_embedders())
def test_packed_calls_give_the_vectors_of_one_call_per_text(
    settings: Settings, model: str, tmp_path: Path
) -> None:
    require_model(model)
    emb = LocalEmbedder(settings.model_copy(update={"embedding_model": model}))
    assert emb._native and emb._n_seq_max > 1
    packed = emb.embed(TEXTS, batch_size=len(TEXTS))
    # Several sequences really shared calls (otherwise this test would prove nothing).
    lengths = [len(emb.tokens(emb.passage_prefix + t)) for t in TEXTS]
    assert len(emb.pack(lengths)) < len(TEXTS) / 3
    assert max(lengths) == min(EMBED_BATCH_TOKENS, emb._max_tokens)  # one text was cut
    for text, vector in zip(TEXTS, packed, strict=True):
        alone = emb.embed([text], batch_size=1)[0]
        assert cosine(vector, alone) > 1 - 1e-4, text[:40]
    # The query path is the same model: a question is closest to its own passage.
    q = emb.embed_query("tarifs de la cantine scolaire en 2024")
    assert max(range(len(TEXTS)), key=lambda i: cosine(q, packed[i])) == 3


@pytest.mark.slow
def test_llama_cpp_own_embed_agrees_with_the_packed_path(settings: Settings) -> None:
    """The former path (llama-cpp-python's embed on strings) is the reference of the new one."""
    require_model("all-minilm-l6-v2-f32.gguf")
    emb = LocalEmbedder(settings)
    llama: Any = emb._llama
    theirs = llama.embed([emb._truncate(t) for t in TEXTS[:6]], normalize=False)
    mine = emb.embed_batch(TEXTS[:6])
    for a, b in zip(mine, theirs, strict=True):
        assert cosine(a, b) > 1 - 1e-4
