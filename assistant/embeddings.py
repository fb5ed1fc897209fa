"""Embedders: a GGUF model in llama.cpp (several sequences per call) or an OpenAI-compatible server.

Subclasses implement :meth:`Embedder.embed_batch`; batching and normalisation are built on top.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.engine import open_llama
from assistant.errors import EmbeddingError, ModelNotFoundError

Vector = list[float]
# Tokens per llama.cpp micro-batch for embeddings, and the longest text embedded (tokens).
EMBED_BATCH_TOKENS = 512


def normalise(vector: Sequence[float]) -> Vector:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


def embedder_fingerprint(path: Path) -> str:
    """First 12 hex digits of the model file's sha256 (cached beside the models), or ``""``."""
    from assistant.models import ChecksumCache, file_sha256

    try:
        return file_sha256(path, ChecksumCache(path.parent))[:12] if path.is_file() else ""
    except OSError:
        return ""


def same_embedder(stored: str | None, identity: str) -> bool:
    """Whether a collection recorded as built by ``stored`` can be searched with ``identity``.

    Identities are ``file[#sha12]``; a record without a fingerprint (older index) compares by
    name only. An empty or missing record matches anything (nothing indexed yet).
    """
    if not stored:
        return True
    if "#" in stored and "#" in identity:
        return stored == identity
    return stored.split("#", 1)[0] == identity.split("#", 1)[0]


def mismatch_message(collection: str, stored: str, identity: str) -> str:
    """French refusal for a collection indexed with another embedder, with the one-command fix."""
    return (
        f"La collection « {collection} » a été indexée avec le modèle d'embeddings "
        f"{stored.split('#', 1)[0]}, mais le modèle configuré est {identity.split('#', 1)[0]} : "
        "leurs vecteurs ne sont pas comparables. Réindexez-la en une commande : "
        f"« assistant ingest DOSSIER --collection {collection} --reindex » (ou remettez "
        "l'ancien modèle dans le réglage embedding_model)."
    )


class Embedder(ABC):
    """Turns texts into unit vectors. ``name`` identifies the model in the index metadata.

    ``query_prefix`` / ``passage_prefix`` / ``nfkc`` are the model's needs (its catalogue entry,
    see :func:`assistant.models.embedder_needs`), applied here at the two public entry points:
    :meth:`embed` (passages) and :meth:`embed_query` (questions). ``fingerprint`` (a short
    sha256 of the model file, or ``""``) tells two files of the same name apart.
    """

    name: str = "embedder"
    query_prefix: str = ""
    passage_prefix: str = ""
    nfkc: bool = False
    fingerprint: str = ""

    @property
    def identity(self) -> str:
        """What a collection records of the embedder that built it: ``name[#sha12]``."""
        return f"{self.name}#{self.fingerprint}" if self.fingerprint else self.name

    def apply_needs(self, needs: Any) -> None:
        """Take the prefixes and normalisation of an :class:`~assistant.models.EmbedderNeeds`."""
        self.query_prefix = needs.query_prefix
        self.passage_prefix = needs.passage_prefix
        self.nfkc = needs.nfkc

    def prepare(self, text: str, *, query: bool) -> str:
        """The text as the model expects it: NFKC if needed, then the query/passage prefix."""
        if self.nfkc:
            text = unicodedata.normalize("NFKC", text)
        return (self.query_prefix if query else self.passage_prefix) + text

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> list[Vector]:
        """Embed texts in one backend call (the caller bounds the batch size)."""

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> list[Vector]:
        """Embed passages, in batches, as unit vectors."""
        out: list[Vector] = []
        for start in range(0, len(texts), batch_size):
            batch = [self.prepare(t, query=False) for t in texts[start : start + batch_size]]
            out.extend(normalise(v) for v in self.embed_batch(batch))
        return out

    def embed_query(self, text: str) -> Vector:
        """Embed a question as a unit vector."""
        return normalise(self.embed_batch([self.prepare(text, query=True)])[0])

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        """Embed several questions in one backend call (sub-queries of a long request)."""
        if not texts:
            return []
        return [
            normalise(v) for v in self.embed_batch([self.prepare(t, query=True) for t in texts])
        ]


class LocalEmbedder(Embedder):
    """A GGUF embedder (e.g. all-MiniLM-L6-v2, multilingual-e5) run by llama.cpp."""

    def __init__(self, settings: Settings, llama: Any | None = None) -> None:
        from assistant.models import embedder_needs

        path = settings.embedding_model_path
        self.name = path.name
        self.apply_needs(embedder_needs(path))
        self.fingerprint = embedder_fingerprint(path)
        self._lock = threading.Lock()
        if llama is not None:
            self._llama = llama
            return
        if not path.is_file():
            raise ModelNotFoundError(
                f"Modèle d'embeddings introuvable : {path}. Installez les modèles avec "
                "« assistant models install » ou réglez embedding_model sur un GGUF présent."
            )
        try:
            # Non-causal models need a whole sequence in one micro-batch (n_ubatch = n_batch,
            # >= the 512-token truncation below). Not more: the sequences packed in a
            # micro-batch share one attention mask, quadratic in its size. Measured on 2 cores
            # (MiniLM-L6, 24 chunks of ~280 tokens): 512 -> ~400-500 tokens/s, 1024 -> 300,
            # 2048 -> 160, 4096 -> 96. embed() still takes several sequences per call.
            self._llama = open_llama(
                settings,
                model_path=str(path),
                embedding=True,
                n_ctx=EMBED_BATCH_TOKENS,
                n_batch=EMBED_BATCH_TOKENS,
                n_ubatch=EMBED_BATCH_TOKENS,
                n_threads=settings.threads,
                n_threads_batch=settings.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as err:
            raise EmbeddingError(
                f"llama.cpp n'a pas pu charger l'embedder {path.name} ({err}). "
                "Vérifiez le fichier avec « assistant models list »."
            ) from err
        has_train_ctx = hasattr(self._llama, "n_ctx_train")
        self._max_tokens = int(self._llama.n_ctx_train()) if has_train_ctx else 512

    def _truncate(self, text: str) -> str:
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=True)
        limit = min(getattr(self, "_max_tokens", EMBED_BATCH_TOKENS), EMBED_BATCH_TOKENS)
        if len(tokens) <= limit:
            return text
        return self._llama.detokenize(tokens[1 : limit - 1]).decode("utf-8", errors="ignore")

    def embed_batch(self, texts: list[str]) -> list[Vector]:
        if not texts:
            return []
        with self._lock:
            try:
                vectors = self._llama.embed([self._truncate(t) for t in texts], normalize=False)
            except (RuntimeError, ValueError) as err:
                raise EmbeddingError(f"Échec du calcul des embeddings : {err}") from err
        return [list(map(float, v)) for v in vectors]


class ServerEmbedder(Embedder):
    """``POST {embedding_url}/embeddings`` of an OpenAI-compatible server."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        import httpx

        assert settings.embedding_url is not None  # checked by Settings
        from assistant.models import embedder_needs

        self.url = settings.embedding_url.rstrip("/")
        self.name = settings.embedding_model
        self.apply_needs(embedder_needs(Path(self.name)))
        self._client = client or httpx.Client(base_url=self.url, timeout=300.0)

    def embed_batch(self, texts: list[str]) -> list[Vector]:
        import httpx

        try:
            response = self._client.post("/embeddings", json={"model": self.name, "input": texts})
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise EmbeddingError(
                f"Serveur d'embeddings injoignable ({self.url}) : {err}. "
                "Vérifiez qu'il est démarré et le réglage embedding_url."
            ) from err
        data = sorted(response.json()["data"], key=lambda d: d["index"])
        return [list(map(float, d["embedding"])) for d in data]


def build_embedder(settings: Settings) -> Embedder:
    """The one place where the embedding backend is chosen."""
    match settings.embedding_backend:
        case "local":
            return LocalEmbedder(settings)
        case "server":
            return ServerEmbedder(settings)
    raise AssertionError(settings.embedding_backend)  # pragma: no cover
