"""Shared test doubles. Each fake subclasses the real interface it stands for."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assistant.drafting import Citation, Draft, DraftEvent, DraftingService, DraftRequest
from assistant.embeddings import Embedder, Vector
from assistant.llm import ChatModel, GenerationStats, Message
from assistant.schema import Hit
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


# --- drafting doubles (chat model, retriever) ---------------------------------------------------


class FakeChatModel(ChatModel):
    """A chat model that answers from a script: ``reply`` is a fixed text or a function of the
    messages. It records every prompt (``prompts``), streams word by word, fills the figures
    like llama.cpp would (cached tokens = common prefix with the previous prompt) and can be held
    mid-stream with ``hold`` (an Event that must be set to go on after the first token)."""

    name = "fake-chat"

    def __init__(
        self,
        reply: str | Callable[[list[Message]], str] = "Réponse [1].",
        max_waiting: int = 20,
        hold: threading.Event | None = None,
    ) -> None:
        super().__init__(max_waiting=max_waiting)
        self.reply = reply
        self.hold = hold
        self.prompts: list[list[Message]] = []
        self.schemas: list[dict[str, Any] | None] = []  # the schema of each call (None: free)
        self.started = threading.Event()
        self.produced = 0
        self._previous = ""

    def _flat(self, messages: list[Message]) -> str:
        turns = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
        return turns + "<assistant>"

    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stats: GenerationStats,
        schema: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        self.schemas.append(schema)
        flat = self._flat(messages)
        common = 0
        for a, b in zip(flat, self._previous, strict=False):
            if a != b:
                break
            common += 1
        stats.prompt_tokens = self.count_tokens(flat)
        stats.cached_tokens = common // 3
        text = self.reply(messages) if callable(self.reply) else self.reply
        self.started.set()
        words = text.split(" ")
        for i, word in enumerate(words[:max_tokens]):
            if i == 1 and self.hold is not None:
                self.hold.wait(timeout=10)
            self.produced += 1
            stats.completion_tokens += 1
            yield word if i == 0 else " " + word
        self._previous = flat + text


class FakeRetriever:
    """Returns the given hits (best first) whatever the query; records the calls.
    Mirrors :class:`assistant.retrieval.Retriever`'s ``search`` and ``abstain_threshold``;
    ``doc_types`` keeps the hits whose ``metadata["doc_type"]`` is one of them."""

    def __init__(self, hits: list[Hit], abstain_threshold: float = 0.35) -> None:
        self.hits = hits
        self.abstain_threshold = abstain_threshold
        self.calls: list[dict[str, object]] = []

    def search(
        self,
        query: str,
        collections: list[str] | None = None,
        k: int = 6,
        doc_types: list[str] | None = None,
        mode: str = "hybrid",
        allowed: list[str] | None = None,
    ) -> list[Hit]:
        self.calls.append(
            {
                "query": query,
                "collections": collections,
                "k": k,
                "allowed": allowed,
                "doc_types": doc_types,
            }
        )
        hits = [
            h
            for h in self.hits
            if (allowed is None or h.collection in allowed)
            and (doc_types is None or h.metadata.get("doc_type") in doc_types)
        ]
        return hits[:k]


def make_hit(
    n: int,
    text: str,
    relevance: float = 0.8,
    source: str | None = None,
    page: int | None = 1,
    collection: str = "exemple",
) -> Hit:
    """A retrieved passage with a given relevance, as the retriever returns it."""
    return Hit(
        id=f"hit-{n}",
        text=text,
        source=source or f"doc{n}.pdf",
        page=page,
        heading="",
        title=f"Document {n}",
        collection=collection,
        score=relevance,
        metadata={"relevance": relevance, "chunk_index": 0},
    )


class FakeDraftingService(DraftingService):
    """Streams canned events like the real service: optional queue positions, a status, the
    sources, the answer token by token (``delay`` seconds apart), then the final draft.

    ``templates`` are the real ones (``assistant.prompts``) unless given; ``requests`` records
    what the UI asked; ``answer_for(request)`` may replace the canned answer; ``checked(text)``
    gives the final text from the streamed one.
    """

    def __init__(
        self,
        sources: list[Citation],
        *,
        templates: object | None = None,
        answer_for: Callable[[DraftRequest], str] | None = None,
        queue: tuple[int, ...] = (),
        delay: float = 0.0,
        queue_delay: float | None = None,
        model: str = "fake-model",
        checked: Callable[[str], str] | None = None,
    ) -> None:
        if templates is None:
            from assistant.prompts import load_templates

            templates = load_templates(Path(__file__).resolve().parent.parent / "prompts")
        self.templates = templates
        self.sources = sources
        self.answer_for = answer_for or self.canned_answer
        self.queue = queue
        self.delay = delay
        self.queue_delay = delay if queue_delay is None else queue_delay
        self.model = model
        # The final text from the streamed one, as the real service's checks change it at the
        # end (« À VÉRIFIER » marks); None: the same text.
        self.checked = checked
        self.requests: list[DraftRequest] = []
        self.closed = 0  # streams closed before their end (stop button)

    @staticmethod
    def canned_answer(request: DraftRequest) -> str:
        if request.previous is not None:
            return f"Version révisée ({request.request}) : " + request.previous.answer
        return (
            "Madame,\n\nVous nous avez interrogés sur ce point : " + request.request + " [1].\n\n"
            "Le règlement prévoit une réponse sous deux mois [2].\n\n"
            "Je vous prie d'agréer, Madame, l'expression de mes salutations distinguées.\n\n"
            "Le Maire,"
        )

    def stream(self, request: DraftRequest) -> Iterator[DraftEvent]:
        self.requests.append(request)
        finished = False
        try:
            for position in self.queue:
                yield DraftEvent("queue", position=position)
                time.sleep(self.queue_delay)
            yield DraftEvent("status", text="Recherche dans les documents…")
            yield DraftEvent("sources", sources=list(self.sources))
            answer = self.answer_for(request)
            for piece in re.findall(r"\S+\s*|\s+", answer):
                yield DraftEvent("token", text=piece)
                time.sleep(self.delay)
            if self.checked is not None:
                answer = self.checked(answer)
            numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer)}
            draft = Draft(
                id=f"fake{len(self.requests):04d}",
                request=request,
                answer=answer,
                abstained=False,
                citations=[c for c in self.sources if c.n in numbers],
                unused_sources=[c for c in self.sources if c.n not in numbers],
                invalid_citations=[],
                model=self.model,
                timings={
                    "total_s": 0.0,
                    "prompt_tokens": 812,
                    "cached_tokens": 640,
                    "first_token_s": 3.1,
                    "tokens_per_s": 18.0,
                },
            )
            finished = True
            yield DraftEvent("done", draft=draft)
        finally:
            if not finished:
                self.closed += 1


# --- worker-process targets (module level: the spawn start method imports them by name) --------


def worker_that_hangs_on(conn, settings) -> None:  # type: ignore[no-untyped-def]
    """A chat worker (see assistant.worker) that answers, except that it hangs forever on a
    prompt containing "HANG" and crashes (SIGSEGV, in native code) on one containing "CRASH"."""
    import ctypes
    import time

    conn.send(("ready", {"n_ctx": 512}))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request.get("op") != "stream":
            continue
        text = request["messages"][-1]["content"]
        if "HANG" in text:
            time.sleep(3600)
        if "CRASH" in text:
            conn.send(("piece", "Début "))
            time.sleep(0.2)
            ctypes.string_at(0)
        for word in ("Réponse ", "complète."):
            conn.send(("piece", word))
        conn.send(("end", {"prompt_tokens": 3, "cached_tokens": 0, "completion_tokens": 2}))
