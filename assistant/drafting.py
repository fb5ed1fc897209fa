"""The one drafting use case shared by the UI and the CLI: retrieve -> prompt -> stream -> cite.

Data shapes are fixed here first so that the UI, the CLI and the service agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class DraftRequest:
    """What an agent asks for."""

    request: str
    doc_type: str = "question"
    fields: dict[str, str] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)  # empty = the default collection
    previous: Draft | None = None  # set for a follow-up ("plus court") that revises a draft
    new_sources: bool = False  # a follow-up that asks to search again
    retrieval: bool = True  # False: no retrieval at all (plain model answer, marked as such)
    user: str = "anonyme"


@dataclass
class Citation:
    """A numbered source ``[n]`` of a draft, down to the page and passage."""

    n: int
    source: str
    page: int | None
    heading: str
    title: str
    text: str
    collection: str
    score: float = 0.0
    used: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "heading": self.heading,
            "title": self.title,
            "collection": self.collection,
            "text": self.text,
            "score": round(self.score, 6),
        }


@dataclass
class Draft:
    """A finished (or stopped) draft with its sources and figures."""

    id: str
    request: DraftRequest
    answer: str
    abstained: bool
    citations: list[Citation]  # sources cited in the answer
    unused_sources: list[Citation]  # sources given to the model but not cited
    invalid_citations: list[int]  # [n] in the text that match no source (removed from answer)
    model: str
    timings: dict[str, Any]
    prompt: list[dict[str, str]] = field(default_factory=list)

    @property
    def sources(self) -> list[Citation]:
        return sorted(self.citations + self.unused_sources, key=lambda c: c.n)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.request.doc_type,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.as_json() for c in self.citations],
            "unused_sources": [c.as_json() for c in self.unused_sources],
            "invalid_citations": self.invalid_citations,
            "model": self.model,
            "timings": self.timings,
        }


EventKind = Literal["queue", "status", "sources", "token", "done"]


@dataclass
class DraftEvent:
    """Streamed to the UI: queue position, status text, the sources, tokens, the final draft."""

    kind: EventKind
    text: str = ""
    position: int = 0
    sources: list[Citation] = field(default_factory=list)
    draft: Draft | None = None


class DraftingService:
    """Implemented in the drafting issue: ``stream(request)`` yields :class:`DraftEvent`."""

    def stream(self, request: DraftRequest) -> Iterator[DraftEvent]:  # pragma: no cover
        raise NotImplementedError

    def draft(self, request: DraftRequest) -> Draft:
        """Run :meth:`stream` to the end and return the final draft."""
        final: Draft | None = None
        for event in self.stream(request):
            if event.kind == "done":
                final = event.draft
        if final is None:  # pragma: no cover - stream always ends with "done"
            raise RuntimeError("drafting stream ended without a draft")
        return final
