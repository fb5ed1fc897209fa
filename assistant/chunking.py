"""French, article-aware splitting of a :class:`~assistant.schema.LoadedDocument` into chunks.

Two passes:

1. **Structure.** Each page is read line by line; lines that open a division of a French
   administrative text start a new segment and update a heading path such as
   ``"CHAPITRE Ier > Section 4 : Fonctionnement > Article L2121-17"``. Recognised: Markdown
   headings (``#``, produced by the loaders for DOCX/ODT/HTML too), ``Livre``/``Titre``/
   ``Chapitre``/``Section``/``Sous-section``, ``Article L2121-17``/``Article R. 2121-3``/
   ``Article 1er``/``Art. 2``, the blocks of a decision (``Vu …`` → "Visas", ``Considérant …``
   → "Considérants", ``DÉCIDE``/``ARRÊTE`` → the operative part), and short numbered titles
   (``1. Objet``, ``II. Dispositions financières``).
2. **Size.** Each segment is cut with LangChain's ``RecursiveCharacterTextSplitter`` (paragraphs,
   then sentence ends, then clauses, then spaces: never inside a word) to ``max_chars`` with
   ``overlap``.

A chunk never spans two pages, so its ``page`` is exact. Because a sentence cut by a page break
would otherwise be found in no chunk, the unfinished sentence at the end of a page (at most
``overlap`` characters) is repeated at the start of the next page's first chunk; that chunk
keeps the next page's number, where its main text is.

The chunk text is the document's own text (whitespace normalised, hyphenation at line ends
repaired, Markdown heading markers removed); the heading path is in ``metadata["heading"]``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.dehyphen import dehyphenate, vocabulary
from assistant.nontext import strip_non_text
from assistant.schema import Chunk, LoadedDocument
from assistant.textnorm import DIVISION_HEADING

# ---------------------------------------------------------------------------------------------
# text normalisation

_SPACES = re.compile(r"[ \t\f\v\u00a0\u2007\u2009\u202f\u200b]+")
_LOWER = "a-zà-öø-ÿœæ"


def normalise_text(text: str, vocab: Counter[str] | None = None) -> str:
    """Collapse runs of spaces, trim lines, resolve hyphens at line ends the French way (typographic
    breaks joined, compounds such as ``sous-préfecture`` kept whole: see
    :mod:`assistant.dehyphen`; ``vocab`` is the document's word counts, default this text's),
    and keep at most one blank line between paragraphs."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    text = dehyphenate("\n".join(lines), vocab)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def fold_whitespace(text: str) -> str:
    """All whitespace runs to one space (to compare a quotation with a chunk)."""
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# structure

_DIVISION_RANKS = {
    "livre": 1.0, "titre": 2.0, "chapitre": 3.0, "section": 4.0, "sous-section": 5.0,
    "paragraphe": 5.5,
}
BLOCK_RANK = 6.0  # Visas, Considérants, DÉCIDE: above the articles of the operative part
ARTICLE_RANK = 7.0

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_BOLD_LINE = re.compile(r"^(\*\*|__)(.+)\1\s*:?$")
_ARTICLE = re.compile(
    r"^(?:Article|ARTICLE|Art\.)\s*"
    r"(?P<ref>(?:(?:LO|L|R|D|A)\s?\.?\s?\*?)?\d+(?:\s?[-‑–.]\s?\d+)*"
    r"(?:\s?(?:er|ère|bis|ter|quater|quinquies))?|premier|PREMIER|unique|UNIQUE)"
    r"(?![\w-])"
)
_VISA = re.compile(
    r"^(?:Vu|VU)\s+(?:les?|la|l['’]|du|des|son|sa|ses|notre|nos|mon|ma|leur|ledit|ladite|"
    r"[A-Z])"
)
_CONSIDERANT = re.compile(r"^(?:Considérant|CONSIDÉRANT|CONSIDERANT|Considerant)\b")
_OPERATIVE = re.compile(
    r"(?:^|\s)(?P<word>D[ÉE]CIDE|ARR[ÊE]TE|ARR[ÊE]TONS|D[ÉE]CIDONS|D[ÉE]LIB[ÈE]RE|"
    r"Décide|Arrête|Délibère)\s*:?\s*$"
)
_OPERATIVE_LABELS = {"decid": "DÉCIDE", "arret": "ARRÊTE", "delib": "DÉLIBÈRE"}
_NUMBERED = re.compile(r"^(?P<num>[IVX]+|\d{1,2})\s*[.)]\s*(?:[-–—]\s*)?(?P<rest>\S.*)$")
# A line may open a division only after a paragraph break or a finished sentence/heading
# (a PDF line wrap can start with "Article L. 2121-17 du code…" in the middle of a sentence).
_ENDS_UNIT = re.compile(r"[.:;!?»)”]$")
_LABEL_MAX = 90


@dataclass(frozen=True)
class _Heading:
    kind: str
    rank: float
    label: str
    full: str = ""  # the whole heading text (the label may be shortened)


@dataclass
class _Segment:
    page: int | None
    path: tuple[str, ...]
    lines: list[str] = field(default_factory=list)
    opened_by_heading: bool = False

    def text(self) -> str:
        if self.opened_by_heading and len(self.lines) > 1:
            # A title stays glued to its first paragraph (no blank line for the splitter).
            body = "\n".join(self.lines[1:]).strip("\n")
            return f"{self.lines[0]}\n{body}".strip()
        return "\n".join(self.lines).strip()

    def heading_only(self) -> bool:
        """Opened by a title line (not a sentence) and nothing under it yet."""
        if not self.opened_by_heading or any(line.strip() for line in self.lines[1:]):
            return False
        return not self.lines[0].rstrip().endswith((".", ";", ","))


def _label(text: str) -> str:
    text = " ".join(text.split()).strip(" :-–—")
    if len(text) <= _LABEL_MAX:
        return text
    cut = text[:_LABEL_MAX].rsplit(" ", 1)[0]
    return cut + "…"


def _strip_markup(line: str) -> tuple[str, int]:
    """(line without Markdown heading/bold markers, Markdown heading level or 0)."""
    m = _MD_HEADING.match(line)
    if m:
        inner = m.group(2)
        bold = _BOLD_LINE.match(inner)
        return (bold.group(2).strip() if bold else inner), len(m.group(1))
    bold = _BOLD_LINE.match(line)
    if bold:
        return bold.group(2).strip(), 0
    return line, 0


def _detect(line: str, previous: str) -> _Heading | None:
    """The heading a (markup-free) line opens, if any, given the previous non-blank line
    ("" after a blank line or at the start)."""
    if not line:
        return None
    after_comma = False
    if previous and not _ENDS_UNIT.search(previous):
        if not previous.endswith(","):
            return None
        after_comma = True  # "Le conseil municipal," / "La maire de X," introduce the visas
    if _VISA.match(line):
        return _Heading("visas", BLOCK_RANK, "Visas")
    if _CONSIDERANT.match(line):
        return _Heading("considerants", BLOCK_RANK, "Considérants")
    if after_comma:
        return None
    m = DIVISION_HEADING.match(line)
    if m and line[0].isupper() and len(line) <= 140:
        return _Heading(m.group(1).lower(), _DIVISION_RANKS[m.group(1).lower()], _label(line))
    m = _ARTICLE.match(line)
    if m:
        rest = line[m.end():]
        if not rest.strip() or re.match(r"^\s*[:\-–—.)]", rest) or len(line) <= 80:
            ref = " ".join(m.group("ref").split())
            title_like = len(line) <= 80 and not line.endswith((".", ";", ","))
            label = _label(line) if title_like else f"Article {ref}"
            return _Heading("article", ARTICLE_RANK, label)
    m = _OPERATIVE.search(line)
    if m and len(line) <= 160:
        return _Heading("operative", BLOCK_RANK, _OPERATIVE_LABELS.get(
            _fold(m.group("word"))[:5], m.group("word").upper()))
    m = _NUMBERED.match(line)
    if (
        m
        and len(line) <= 100
        and m.group("rest")[0].isupper()
        and not line.endswith((".", ";", ","))
    ):
        kind = "roman" if m.group("num")[0] in "IVX" else "arabic"
        return _Heading(kind, 0.0, _label(line))
    return None


class _Structure:
    """Heading stack while walking a document (one instance per document)."""

    def __init__(self, title: str) -> None:
        self._stack: list[_Heading] = []
        self._title = _fold(title)
        self._seen_heading = False
        self._title_heading: _Heading | None = None

    def top_kind(self) -> str | None:
        return self._stack[-1].kind if self._stack else None

    def push(self, heading: _Heading) -> None:
        if heading.kind == "md1" and not self._seen_heading:
            # The document's opening "# ..." line is its title, already in metadata["title"].
            self._title_heading = heading
        self._seen_heading = True
        if heading.kind in {"roman", "arabic"}:
            # Numbered titles nest under whatever is open; a sibling replaces its sibling.
            same = [i for i, h in enumerate(self._stack) if h.kind == heading.kind]
            if same:
                del self._stack[same[-1]:]
            parent = self._stack[-1].rank if self._stack else 0.0
            heading = _Heading(heading.kind, parent + 0.5, heading.label, heading.full)
        else:
            while self._stack and self._stack[-1].rank >= heading.rank:
                self._stack.pop()
        self._stack.append(heading)

    def path(self) -> tuple[str, ...]:
        return tuple(
            h.label
            for h in self._stack
            if h is not self._title_heading and _fold(h.full or h.label) != self._title
        )


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", " ".join(text.split()).lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _segments(doc: LoadedDocument, overlap: int) -> list[_Segment]:
    structure = _Structure(doc.title)
    segments: list[_Segment] = []
    pending: list[str] = []  # heading lines whose body starts later (next segment or page)
    previous_page_text = ""
    vocab = vocabulary("\n".join(_SPACES.sub(" ", p.text) for p in doc.pages))
    for page in doc.pages:
        text = normalise_text(strip_non_text(page.text)[0], vocab)
        if not text:
            continue
        carry = _page_tail(previous_page_text, overlap) if page.number is not None else ""
        previous_page_text = text
        current = _Segment(page.number, structure.path())
        page_segments = [current]
        previous_line = ""
        for raw in text.split("\n"):
            line, md_level = _strip_markup(raw)
            if md_level:
                heading: _Heading | None = _Heading(
                    f"md{md_level}", float(md_level), _label(line), line
                )
            else:
                # a bold line stands on its own, whatever precedes it
                heading = _detect(line, "" if raw != line else previous_line)
                if heading and heading.kind in {"visas", "considerants"} and (
                    structure.top_kind() == heading.kind
                ):
                    heading = None  # the next "Vu"/"Considérant" of the same block
            if heading is not None:
                structure.push(heading)
                current = _Segment(page.number, structure.path(), [line], True)
                page_segments.append(current)
            else:
                current.lines.append(line)
            previous_line = line if line.strip() else ""
            if heading is not None:
                previous_line = line + ("" if _ENDS_UNIT.search(line) else ":")

        first = True
        for segment in page_segments:
            if not segment.text():
                continue
            if first and carry:
                _prepend(segment, carry)
            first = False
            heading_only = segment.heading_only()
            if pending:
                segment.lines[0:0] = [*pending, ""]
                pending = []
            if heading_only:
                pending = [segment.text()]
                continue
            segments.append(segment)
        if pending and page.number is not None:
            # A title at the foot of a page stays on its page (page numbers must be exact):
            # it closes the page's last passage rather than opening the next page's first.
            if segments and segments[-1].page == page.number:
                segments[-1].lines.extend(["", *pending])
            else:
                segments.append(_Segment(page.number, structure.path(), pending))
            pending = []
    if pending:
        if segments:
            segments[-1].lines.extend(["", *pending])
        else:
            segments.append(_Segment(doc.pages[-1].number, (), pending))
    return segments


_SENTENCE_END = re.compile(r"[.!?…:;](?:[»”\")\]]+)?(?=\s)")


def _page_tail(text: str, overlap: int) -> str:
    """The unfinished sentence at the end of a page (at most ``overlap`` characters)."""
    if overlap <= 0 or not text or re.search(r"[.!?…:;»”\")]$", text):
        return ""
    window = text[-overlap:]
    ends = list(_SENTENCE_END.finditer(window + " "))
    if ends:
        tail = window[ends[-1].end():]
    elif len(text) > overlap:
        tail = window.split(None, 1)[1] if len(window.split(None, 1)) > 1 else ""
    else:
        tail = window
    return tail.strip()


def _prepend(segment: _Segment, carry: str) -> None:
    first = segment.lines[0] if segment.lines else ""
    if re.search(rf"[{_LOWER}]-$", carry) and first[:1].islower():
        # a word hyphenated across the page break: the same French rule as at a line end
        segment.lines[0] = dehyphenate(f"{carry}\n{first}")
    else:
        segment.lines[0] = f"{carry}\n{first}".strip()


# ---------------------------------------------------------------------------------------------
# size

# Sentence end: a period after a lower-case letter or digit (not "L. 2121-17", "M. Durand")
# followed by something that is not lower case.
_SENTENCE = r"(?<=[a-zà-öø-ÿ0-9)\]»”\"%][.!?…])\s+(?=[^\sa-zà-öø-ÿ])"
_CLAUSE = r"(?<=[;:])\s+"
_COMMA = r"(?<=,)\s+"
_SPACE = r"\s+"
# PDF lines are visual wraps: prefer sentence ends to line breaks. Elsewhere a line is a
# paragraph or a list item.
# The last resort "" cuts between characters: a run without any space (a long URL) must not
# make a chunk longer than max_chars.
PAGED_SEPARATORS = ["\n\n", _SENTENCE, "\n", _CLAUSE, _COMMA, _SPACE, ""]
FLOW_SEPARATORS = ["\n\n", "\n", _SENTENCE, _CLAUSE, _COMMA, _SPACE, ""]


def _absorb_small(pieces: list[str], max_chars: int, min_chars: int) -> list[str]:
    """Join a very short piece to its neighbour when both fit in ``max_chars``.

    The recursive splitter leaves a short piece alone when the next paragraph is too long to
    merge (e.g. a table title before a long table); alone it is a poor search result. Pieces
    that already overlap (the splitter repeated the end of one at the start of the other) are
    left as they are.
    """
    result: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if result:
            last = result[-1]
            small = len(piece) < min_chars or len(last) < min_chars
            fits = len(last) + 1 + len(piece) <= max_chars
            overlapping = last[-40:] in piece[: len(last) + 40]
            if small and fits and not overlapping:
                result[-1] = f"{last}\n{piece}"
                continue
        result.append(piece)
    return result


# The longest passage the chunker makes, in characters (the synthetic indexes of the bench
# keep to it too).
MAX_CHARS = 1200


def chunk_document(
    doc: LoadedDocument, collection: str, *, max_chars: int = MAX_CHARS, overlap: int = 150
) -> list[Chunk]:
    """Split ``doc`` into chunks of at most about ``max_chars`` characters.

    ``id`` is ``"{collection}:{source}:{hash[:12]}:{index}"``; ``metadata`` holds only str/int/
    float/bool values (``page`` and ``date`` are left out when unknown).
    """
    if max_chars < 100:
        raise ValueError("max_chars must be at least 100")
    overlap = max(0, min(overlap, max_chars // 2))
    paged = any(p.number is not None for p in doc.pages)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_chars,
        chunk_overlap=overlap,
        separators=PAGED_SEPARATORS if paged else FLOW_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        strip_whitespace=True,
    )
    chunks: list[Chunk] = []
    prefix = doc.content_hash[:12]
    for segment in _segments(doc, overlap):
        heading = " > ".join(segment.path)
        pieces = [p.strip() for p in splitter.split_text(segment.text())]
        for text in _absorb_small(pieces, max_chars, min_chars=max(60, max_chars // 6)):
            if sum(c.isalnum() for c in text) < 2:
                continue
            index = len(chunks)
            metadata: dict[str, str | int | float | bool] = {
                "collection": collection,
                "source": doc.source,
                "title": doc.title,
                "heading": heading,
                "doc_hash": doc.content_hash,
                "chunk_index": index,
                "doc_type": doc.doc_type or "",
                "char_count": len(text),
            }
            if segment.page is not None:
                metadata["page"] = segment.page
            if doc.date:
                metadata["date"] = doc.date
            chunks.append(
                Chunk(id=f"{collection}:{doc.source}:{prefix}:{index}", text=text,
                      metadata=metadata)
            )
    return chunks
