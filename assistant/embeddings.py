"""Embedders: a GGUF model in llama.cpp (several sequences per call) or an OpenAI-compatible server.

Subclasses implement :meth:`Embedder.embed_batch`; batching and normalisation are built on top.
"""

from __future__ import annotations

import math
import threading
import time
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
    """A GGUF embedder (e.g. all-MiniLM-L6-v2, multilingual-e5) run by llama.cpp.

    Throughput comes from packing several sequences into each llama.cpp call: the texts are
    tokenized once, truncated as token lists (the closing special token kept), sorted by length
    and packed first-fit into micro-batches of at most ``EMBED_BATCH_TOKENS`` tokens and
    ``n_seq_max`` sequences; one ``llama_decode`` per micro-batch computes them all and the
    pooled vector of each sequence is read with ``llama_get_embeddings_seq``. Works for any
    llama.cpp embedding GGUF whose pooling is mean, CLS or last (``bert``, ``nomic-bert``...).
    """

    def __init__(self, settings: Settings, llama: Any | None = None) -> None:
        from assistant.models import embedder_needs

        path = settings.embedding_model_path
        self.name = path.name
        self.apply_needs(embedder_needs(path))
        self.fingerprint = embedder_fingerprint(path)
        self._lock = threading.Lock()
        if llama is not None:
            self._llama = llama
            self._setup()
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
            # Flash attention: the packed sequences' attention is computed in tiles instead of
            # a full masked n_ubatch x n_ubatch product. Measured on 2 cores (e5-small Q4_0,
            # 200 corpus passages of ~200 tokens, scripts/bench.py --only embedding): about
            # 860 -> 3,300 tokens/s, vectors unchanged (cosine >= 0.99995). No gain for the
            # chat model (prompt 103 vs 105 tokens/s), so only here. A model or build that
            # cannot run it is opened again without it.
            self._llama = self._open(settings, path, flash_attn=True)
        except (ValueError, RuntimeError):
            try:
                self._llama = self._open(settings, path, flash_attn=False)
            except (ValueError, RuntimeError) as err:
                raise EmbeddingError(
                    f"llama.cpp n'a pas pu charger l'embedder {path.name} ({err}). "
                    "Vérifiez le fichier avec « assistant models list »."
                ) from err
        self._setup()

    @staticmethod
    def _open(settings: Settings, path: Path, flash_attn: bool) -> Any:
        return open_llama(
            settings,
            model_path=str(path),
            embedding=True,
            n_ctx=EMBED_BATCH_TOKENS,
            n_batch=EMBED_BATCH_TOKENS,
            n_ubatch=EMBED_BATCH_TOKENS,
            n_threads=settings.threads,
            n_threads_batch=settings.threads,
            flash_attn=flash_attn,
            verbose=False,
        )

    def _setup(self) -> None:
        """Limits and special tokens, read once from the model."""
        llama = self._llama
        has_train_ctx = hasattr(llama, "n_ctx_train")
        train = int(llama.n_ctx_train()) if has_train_ctx else EMBED_BATCH_TOKENS
        self._budget = int(getattr(llama, "n_batch", EMBED_BATCH_TOKENS) or EMBED_BATCH_TOKENS)
        self._max_tokens = min(train, self._budget, EMBED_BATCH_TOKENS)
        # What tokenize() adds around any text (e.g. [CLS] ... [SEP], <s> ... </s>): a
        # truncated text keeps its closing special token, as the model saw in training.
        empty = list(llama.tokenize(b"", add_bos=True)) if hasattr(llama, "tokenize") else []
        self._suffix = empty[1:] if len(empty) >= 2 else []
        self._native = _is_llama(llama)
        self._n_seq_max = 1
        if self._native:
            import llama_cpp

            self._n_seq_max = max(1, int(llama.context_params.n_seq_max))
            self._n_embd = int(llama.n_embd())
            pooling = int(llama_cpp.llama_pooling_type(llama.ctx))
            if pooling == llama_cpp.LLAMA_POOLING_TYPE_NONE:
                # No per-sequence vector to read: llama-cpp-python's own path pools nothing.
                raise EmbeddingError(
                    f"L'embedder {self.name} ne regroupe pas ses vecteurs (pooling « none ») : "
                    "choisissez un GGUF d'embeddings (pooling mean, cls ou last)."
                )
            self._batch = llama_cpp.llama_batch_init(self._budget, 0, self._n_seq_max)
            self._threads = ThreadChooser(int(getattr(llama, "n_threads", 1) or 1))

    def __del__(self) -> None:
        batch = getattr(self, "_batch", None)
        if batch is not None:
            import llama_cpp

            llama_cpp.llama_batch_free(batch)
            self._batch = None

    def tokens(self, text: str) -> list[int]:
        """The token ids embedded for ``text`` (specials included), truncated to the model's
        limit (at most ``EMBED_BATCH_TOKENS``), keeping the closing special token."""
        tokens = list(self._llama.tokenize(text.encode("utf-8"), add_bos=True))
        if len(tokens) <= self._max_tokens:
            return tokens
        return tokens[: self._max_tokens - len(self._suffix)] + self._suffix

    def _truncate(self, text: str) -> str:
        """A text whose tokens fit the limit (for backends that take strings)."""
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=True)
        if len(tokens) <= self._max_tokens:
            return text
        return self._llama.detokenize(tokens[1 : self._max_tokens - 1]).decode(
            "utf-8", errors="ignore"
        )

    def embed_batch(self, texts: list[str]) -> list[Vector]:
        if not texts:
            return []
        with self._lock:
            try:
                if not self._native:
                    vectors = self._llama.embed([self._truncate(t) for t in texts], normalize=False)
                    return [list(map(float, v)) for v in vectors]
                return self._embed_tokens([self.tokens(t) for t in texts])
            except (RuntimeError, ValueError) as err:
                raise EmbeddingError(f"Échec du calcul des embeddings : {err}") from err

    def pack(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices of the sequences grouped per llama.cpp call: first-fit decreasing by length
        into bins of ``budget`` tokens and ``n_seq_max`` sequences (fewer calls, less padding
        than packing in the given order)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        bins: list[list[int]] = []
        room: list[int] = []
        for i in order:
            for b, free in enumerate(room):
                if lengths[i] <= free and len(bins[b]) < self._n_seq_max:
                    bins[b].append(i)
                    room[b] -= lengths[i]
                    break
            else:
                bins.append([i])
                room.append(self._budget - lengths[i])
        return bins

    def _embed_tokens(self, seqs: list[list[int]]) -> list[Vector]:
        """One llama_decode per packed micro-batch; the pooled vector of each sequence."""
        import llama_cpp

        ctx = self._llama.ctx
        batch = self._batch
        out: list[Vector | None] = [None] * len(seqs)
        for group in self.pack([len(s) for s in seqs]):
            n = 0
            for seq_id, i in enumerate(group):
                for pos, token in enumerate(seqs[i]):
                    batch.token[n] = token
                    batch.pos[n] = pos
                    batch.n_seq_id[n] = 1
                    batch.seq_id[n][0] = seq_id
                    batch.logits[n] = True
                    n += 1
            batch.n_tokens = n
            memory = llama_cpp.llama_get_memory(ctx)
            if memory:  # encoder-only models keep no cache between calls
                llama_cpp.llama_memory_clear(memory, True)
            threads = self._threads.pick()
            llama_cpp.llama_set_n_threads(ctx, threads, threads)
            started = time.perf_counter()
            code = llama_cpp.llama_decode(ctx, batch)
            self._threads.record(threads, n, time.perf_counter() - started)
            if code != 0:
                raise RuntimeError(f"llama_decode a renvoyé {code}")
            for seq_id, i in enumerate(group):
                ptr = llama_cpp.llama_get_embeddings_seq(ctx, seq_id)
                if not ptr:
                    raise RuntimeError("pas de vecteur pour une séquence (pooling du modèle ?)")
                out[i] = ptr[: self._n_embd]
        return [v for v in out if v is not None]


class ThreadChooser:
    """Picks the thread count of each llama.cpp call from the speeds measured so far.

    llama.cpp's worker threads wait for each other at every operation of the graph by spinning:
    when the cores are shared (other services, other jobs), a thread that loses its core holds
    up the others, and ``threads = cores`` can be several times slower than fewer threads
    (measured on 2 cores under a load average of 15: 55 tokens/s with 2 threads, 236 with 1).
    So the configured count and 1 (and half of it, with more than 3) are tried in turn, then
    the fastest recent one is used, with one call in ``explore`` spent re-measuring another:
    the best count follows the machine's load. Speeds are tokens per second per call,
    smoothed (exponential average, weight ``alpha`` for the newest call).
    """

    def __init__(self, configured: int, explore: int = 12, alpha: float = 0.3) -> None:
        self.candidates = sorted({max(1, configured), 1, max(1, configured // 2)}, reverse=True)
        self.explore = explore
        self.alpha = alpha
        self.speed: dict[int, float] = {}
        self.calls = 0

    def pick(self) -> int:
        """The thread count for the next call."""
        self.calls += 1
        untried = [c for c in self.candidates if c not in self.speed]
        if untried:
            return untried[0]
        best = max(self.candidates, key=lambda c: self.speed[c])
        if len(self.candidates) > 1 and self.calls % self.explore == 0:
            others = [c for c in self.candidates if c != best]
            return others[(self.calls // self.explore) % len(others)]
        return best

    def record(self, threads: int, tokens: int, seconds: float) -> None:
        """Account one call of ``tokens`` tokens that took ``seconds`` with ``threads``."""
        if tokens <= 0 or seconds <= 0:
            return
        rate = tokens / seconds
        old = self.speed.get(threads)
        self.speed[threads] = rate if old is None else (1 - self.alpha) * old + self.alpha * rate


def _is_llama(obj: Any) -> bool:
    """A real llama-cpp-python model (the packed path needs its context), not an injected fake."""
    try:
        from llama_cpp import Llama
    except ImportError:  # pragma: no cover - llama-cpp-python is a dependency
        return False
    return isinstance(obj, Llama)


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
