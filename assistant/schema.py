"""Plain data shared by the layers (loaders -> chunking -> store -> retrieval -> drafting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Page:
    """Text of one page; ``number`` is 1-based, ``None`` for formats without pages."""

    number: int | None
    text: str


@dataclass
class LoadedDocument:
    """A document read from disk, before chunking."""

    source: str  # path relative to the ingested folder, with forward slashes
    title: str
    pages: list[Page]
    content_hash: str  # sha256 of the file bytes
    doc_type: str | None = None  # deliberation, arrete, loi, fiche, courrier, ... when known
    date: str | None = None  # ISO date found in the document, if any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """A passage to index. ``metadata`` holds only str/int/float/bool values (Chroma's rule)."""

    id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class Hit:
    """A retrieved passage with its provenance and score (higher is better)."""

    id: str
    text: str
    source: str
    page: int | None
    heading: str
    title: str
    collection: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "page": self.page,
            "heading": self.heading,
            "title": self.title,
            "collection": self.collection,
            "score": round(self.score, 6),
            "text": self.text,
        }
