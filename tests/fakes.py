"""Shared test doubles. Each fake subclasses the real interface it stands for."""

from __future__ import annotations

import hashlib

from assistant.embeddings import Embedder, Vector
from assistant.textnorm import lexical_terms


class FakeEmbedder(Embedder):
    """Deterministic bag-of-words embedder: each French term (stemmed, folded) is hashed into one
    of ``dim`` buckets, so texts sharing words are close in cosine space. ``calls`` records the
    size of each backend call (to check batching)."""

    name = "fake-bow-64"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls: list[int] = []

    def embed_batch(self, texts: list[str]) -> list[Vector]:
        self.calls.append(len(texts))
        return [self._vector(t) for t in texts]

    def _vector(self, text: str) -> Vector:
        vector = [0.0] * self.dim
        for term in lexical_terms(text):
            digest = hashlib.blake2b(term.encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dim] += 1.0
        if not any(vector):
            vector[0] = 1.0  # an empty text still gets a valid (non-zero) vector
        return vector
