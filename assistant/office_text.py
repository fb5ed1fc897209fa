"""The text a reader sees in a DOCX or ODT file: the final version, nothing else.

Both walkers follow one rule: **accepted insertions in, deletions out; the content of content
controls, fields, frames, text boxes, SmartArt, imported chunks and list/heading numbers in;
reviewers' comments, revision metadata, field codes, placeholders, generated tables of contents
and hidden text out.** Footnotes and endnotes, which a reader sees at the foot of the
page, are added after the body; headers and footers, which a reader sees on every page, are added
once each at the very end (page-number-only lines dropped), so that a letterhead's "Arrêté n°…" is
searchable without repeating on every chunk.

Why our own XML walk rather than the libraries' text properties: python-docx (1.x) exposes only
the direct ``w:p``/``w:tbl`` children of the body and the direct runs/hyperlinks of a paragraph,
so everything inside ``w:sdt`` (content controls), ``w:ins`` (tracked insertions), ``w:smartTag``,
``w:customXml``, ``w:fldSimple`` and text boxes is silently lost; odfpy's ``teletype.extractText``
returns the text of every descendant, so deleted text stored under ``text:tracked-changes``,
``office:annotation`` comments and the bodies of footnotes are mixed into the sentence. We still
use the libraries to open and validate the packages and for their metadata.

Sources for the element semantics: ECMA-376 Part 1 (WordprocessingML, §17.13 revisions, §17.16
fields, §17.5.2 structured document tags) and Part 3 (markup compatibility,
``mc:AlternateContent``); OASIS OpenDocument 1.2 Part 1 (§5.5 change tracking, §14
annotations, §6.3 notes, §6.1.3 spaces, §16.30 list styles).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------------
# shared

_PAGE_FURNITURE = re.compile(
    r"^\s*(?:page\s*)?\d*\s*(?:/|sur|of|de)?\s*\d*\s*$", re.IGNORECASE
)


def _collapse(text: str) -> str:
    """Spaces and tabs to one space per run, lines trimmed (line breaks kept)."""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def table_text(rows: list[list[str]]) -> str:
    """Rows of cell texts as ``a | b`` lines; repeated merged-cell text kept once."""
    lines = []
    for cells in rows:
        kept: list[str] = []
        for cell in cells:
            cell = re.sub(r"\s+", " ", cell).strip()
            if cell and (not kept or kept[-1] != cell):
                kept.append(cell)
        if kept:
            lines.append(" | ".join(kept))
    return "\n".join(lines)


def _furniture_blocks(blocks: Iterable[str], seen: set[str]) -> list[str]:
    """Header/footer blocks worth indexing once: distinct, not a bare page number."""
    out = []
    for block in blocks:
        key = " ".join(block.split())
        if not key or _PAGE_FURNITURE.match(key) or key in seen:
            continue
        seen.add(key)
        out.append(block)
    return out


# ---------------------------------------------------------------------------------------------
# DOCX (WordprocessingML)

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_W = "{" + W + "}"
_MC = "{" + MC + "}"
_M = "{" + M + "}"

# Inline containers whose children are read as if they were the paragraph's own.
_DOCX_INLINE_DESCEND = frozenset(
    _W + t for t in ("hyperlink", "smartTag", "customXml", "ins", "moveTo", "dir", "bdo",
                     "fldSimple")
)
# Revisions of removed content: never part of the final text.
_DOCX_REMOVED = frozenset(_W + t for t in ("del", "moveFrom"))
# Fields whose result is navigation generated from the text itself (a table of contents would
# repeat every heading with page numbers, and its "Article 1 …… 3" lines would open false
# divisions in the chunker).
_GENERATED_FIELDS = ("TOC", "INDEX", "TOA")

CT_HEADER = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"
CT_FOOTER = "application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"
CT_FOOTNOTES = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
CT_ENDNOTES = "application/vnd.openxmlformats-officedocument.wordprocessingml.endnotes+xml"
# SmartArt keeps its text in a diagram data part (the diagram drawing part repeats it: not read).
CT_DIAGRAM = "application/vnd.openxmlformats-officedocument.drawingml.diagramData+xml"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


@dataclass
class _Field:
    instruction: list[str] = field(default_factory=list)
    in_result: bool = False

    def hidden(self) -> bool:
        words = "".join(self.instruction).split()
        return bool(words) and words[0].upper() in _GENERATED_FIELDS


@dataclass
class DocxText:
    """Blocks of a DOCX: ``body`` (Markdown headings ``#``), ``notes``, ``furniture``."""

    body: list[str]
    notes: list[str]
    furniture: list[str]

    def text(self) -> str:
        return join_parts(self.body, self.notes, self.furniture)


NOTES_HEADING = "## Notes"
FURNITURE_HEADING = "## En-tête et pied de page"


def join_parts(body: list[str], notes: list[str], furniture: list[str]) -> str:
    """The document's text: body, then notes and headers/footers under headings of their own
    (so that their passages are not filed under the body's last article)."""
    blocks = list(body)
    if notes:
        blocks += [NOTES_HEADING, *notes]
    if furniture:
        blocks += [FURNITURE_HEADING, *furniture]
    return "\n\n".join(blocks)


def _choose_alternate(node: Any) -> Any | None:
    """The one branch of ``mc:AlternateContent`` a consumer renders: the first ``mc:Choice``
    (Word writes the modern DrawingML text box there), else ``mc:Fallback`` (the VML copy of
    the same text box). Reading both would double the text."""
    for child in node:
        if child.tag == _MC + "Choice":
            return child
    for child in node:
        if child.tag == _MC + "Fallback":
            return child
    return None


def _roman(n: int) -> str:
    values = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
              (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))
    out = []
    for value, letters in values:
        while n >= value:
            out.append(letters)
            n -= value
    return "".join(out)


def _letters(n: int) -> str:
    # Word repeats the letter past z: 27 -> "aa"
    return chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)


def _format_number(n: int, fmt: str) -> str:
    """A list counter in a ``w:numFmt`` (ECMA-376 §17.18.59); unknown formats as decimal."""
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt == "lowerLetter":
        return _letters(n)
    if fmt == "upperLetter":
        return _letters(n).upper()
    if fmt == "lowerRoman":
        return _roman(n)
    if fmt == "upperRoman":
        return _roman(n).upper()
    if fmt == "ordinal":  # as Word writes it in French
        return "1er" if n == 1 else f"{n}e"
    if fmt == "none":
        return ""
    return str(n)


class DocxNumbering:
    """Labels of numbered paragraphs ("Article 1 :", "2.", "a)"), which Word draws from
    ``numbering.xml`` and which python-docx does not render: a reader sees them, and the
    chunker needs "Article 3" to find the articles of a decision."""

    def __init__(self, numbering: Any | None, style_numbering: dict[str, tuple[str, int]]):
        self.levels: dict[str, dict[int, tuple[int, str, str]]] = {}  # abstractNumId -> lvl
        self.nums: dict[str, tuple[str, dict[int, int]]] = {}  # numId -> (abstract, starts)
        self.style_numbering = style_numbering
        self.counters: dict[str, list[int]] = {}
        if numbering is None:
            return
        for abstract in numbering.iter(_W + "abstractNum"):
            levels: dict[int, tuple[int, str, str]] = {}
            for lvl in abstract.iter(_W + "lvl"):
                levels[int(lvl.get(_W + "ilvl") or 0)] = (
                    int(self._val(lvl, "start") or 1),
                    self._val(lvl, "numFmt") or "decimal",
                    self._val(lvl, "lvlText") or "",
                )
            self.levels[abstract.get(_W + "abstractNumId") or ""] = levels
        for num in numbering.iter(_W + "num"):
            starts = {}
            for override in num.iter(_W + "lvlOverride"):
                start = self._val(override, "startOverride")
                if start is not None:
                    starts[int(override.get(_W + "ilvl") or 0)] = int(start)
            self.nums[num.get(_W + "numId") or ""] = (self._val(num, "abstractNumId") or "",
                                                      starts)

    @staticmethod
    def _val(node: Any, child: str) -> str | None:
        found = node.find(_W + child)
        return None if found is None else found.get(_W + "val")

    def label(self, props: Any | None, style_id: str) -> str:
        """The label of a paragraph (its ``w:pPr``, its style id), counting it; "" if none."""
        num_id, level = None, 0
        numpr = props.find(_W + "numPr") if props is not None else None
        if numpr is not None:
            num_id = self._val(numpr, "numId")
            level = int(self._val(numpr, "ilvl") or 0)
        elif style_id in self.style_numbering:
            num_id, level = self.style_numbering[style_id]
        if not num_id or num_id == "0" or num_id not in self.nums:
            return ""
        abstract, starts = self.nums[num_id]
        levels = self.levels.get(abstract, {})
        if level not in levels:
            return ""
        counts = self.counters.setdefault(num_id, [0] * 10)
        level = min(level, 9)
        counts[level] += 1
        for deeper in range(level + 1, 10):
            counts[deeper] = 0
        _, fmt, template = levels[level]
        if fmt == "bullet":
            return "-"

        def number(m: re.Match[str]) -> str:
            i = int(m.group(1)) - 1
            lvl_start, lvl_fmt, _ = levels.get(i, (1, "decimal", ""))
            lvl_start = starts.get(i, lvl_start)
            return _format_number(lvl_start + max(counts[i], 1) - 1, lvl_fmt)

        return re.sub(r"%([1-9])", number, template).strip()


class DocxWalker:
    """Walks WordprocessingML elements (lxml, as loaded by python-docx) into text blocks."""

    def __init__(
        self, heading_styles: dict[str, int], numbering: DocxNumbering | None = None,
        alt_chunk: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.heading_styles = heading_styles  # styleId -> heading level
        self.numbering = numbering
        self.alt_chunk = alt_chunk  # relationship id -> blocks of an imported file
        self.fields: list[_Field] = []  # complex fields open at this point (they span runs)

    # --- blocks --------------------------------------------------------------------------
    def blocks(self, container: Any) -> list[str]:
        """Text blocks of a block container (body, cell, text box, note, header)."""
        out: list[str] = []
        carry = ""  # text of paragraphs whose paragraph mark was deleted (merged into next)
        for kind, value in self._block_items(container):
            if kind == "p":
                text, merged, boxes = value
                if carry and not merged:
                    text = _collapse(carry + text)
                if merged:
                    carry += text
                else:
                    carry = ""
                    if text.strip():
                        out.append(text)
                out.extend(boxes)
            else:
                if carry.strip():
                    out.append(_collapse(carry))
                carry = ""
                out.append(value)
        if carry.strip():
            out.append(_collapse(carry))
        return out

    def _block_items(self, container: Any) -> Iterator[tuple[str, Any]]:
        for child in container:
            tag = child.tag
            if tag == _W + "p":
                yield "p", self.paragraph(child)
            elif tag == _W + "tbl":
                table = self.table(child)
                if table:
                    yield "t", table
            elif tag == _W + "sdt":
                if self._placeholder(child):
                    continue
                content = child.find(_W + "sdtContent")
                if content is not None:
                    yield from self._block_items(content)
            elif tag in (_W + "customXml", _W + "ins", _W + "moveTo"):
                yield from self._block_items(child)
            elif tag == _MC + "AlternateContent":
                branch = _choose_alternate(child)
                if branch is not None:
                    yield from self._block_items(branch)
            elif tag == _W + "altChunk" and self.alt_chunk is not None:
                # an imported file (HTML, text, DOCX) that Word shows in place
                rel = child.get("{http://schemas.openxmlformats.org/officeDocument/2006/"
                                "relationships}id") or ""
                for block in self.alt_chunk(rel):
                    yield "t", block
            # w:del / w:moveFrom (removed), w:sectPr, bookmarks and unknown elements: no text

    @staticmethod
    def _placeholder(sdt: Any) -> bool:
        """A content control still showing its prompt ("Cliquez ici pour entrer du texte")."""
        props = sdt.find(_W + "sdtPr")
        return props is not None and props.find(_W + "showingPlcHdr") is not None

    def table(self, tbl: Any) -> str:
        rows: list[list[str]] = []
        for tr in self._rows(tbl):
            props = tr.find(_W + "trPr")
            if props is not None and props.find(_W + "del") is not None:
                continue  # a deleted row
            cells = [" ".join(self.blocks(tc)) for tc in self._cells(tr)]
            rows.append(cells)
        return table_text(rows)

    def _rows(self, node: Any) -> Iterator[Any]:
        for child in node:
            if child.tag == _W + "tr":
                yield child
            elif child.tag in (_W + "sdt", _W + "customXml"):
                content = child.find(_W + "sdtContent") if child.tag == _W + "sdt" else child
                if content is not None:
                    yield from self._rows(content)

    def _cells(self, node: Any) -> Iterator[Any]:
        for child in node:
            if child.tag == _W + "tc":
                yield child
            elif child.tag in (_W + "sdt", _W + "customXml"):
                content = child.find(_W + "sdtContent") if child.tag == _W + "sdt" else child
                if content is not None:
                    yield from self._cells(content)

    # --- paragraphs ----------------------------------------------------------------------
    def paragraph(self, p: Any) -> tuple[str, bool, list[str]]:
        """(text with ``#`` heading marker, paragraph mark deleted?, text-box blocks)."""
        parts: list[str] = []
        boxes: list[str] = []
        self._inline(p, parts, boxes)
        raw = "".join(parts)
        text = _collapse(raw)
        props = p.find(_W + "pPr")
        merged = False
        level = 0
        style_id = ""
        if props is not None:
            mark = props.find(_W + "rPr")
            if mark is not None and (
                mark.find(_W + "del") is not None or mark.find(_W + "moveFrom") is not None
            ):
                merged = True  # its paragraph mark was deleted: it runs into the next one
            style = props.find(_W + "pStyle")
            style_id = (style.get(_W + "val") or "") if style is not None else ""
            level = self.heading_styles.get(style_id, 0)
            outline = props.find(_W + "outlineLvl")
            if not level and outline is not None:
                value = outline.get(_W + "val") or ""
                if value.isdigit() and int(value) < 6:
                    level = int(value) + 1
        if self.numbering is not None and text and not merged:
            label = self.numbering.label(props, style_id)
            if label:
                text = f"{label} {text}"
        if merged:
            return raw, True, boxes  # not trimmed: it is glued to the next paragraph's text
        if level and text:
            text = f"{'#' * level} {' '.join(text.split())}"
        return text, merged, boxes

    def _emitting(self) -> bool:
        """Whether text at this point is shown: not a field code, not a generated field."""
        return all(f.in_result and not f.hidden() for f in self.fields)

    def _inline(self, node: Any, parts: list[str], boxes: list[str]) -> None:
        for child in node:
            tag = child.tag
            if tag == _W + "r":
                self._run(child, parts, boxes)
            elif tag in _DOCX_INLINE_DESCEND:
                if tag == _W + "fldSimple":
                    words = (child.get(_W + "instr") or "").split()
                    if words and words[0].upper() in _GENERATED_FIELDS:
                        continue
                self._inline(child, parts, boxes)
            elif tag == _W + "sdt":
                if self._placeholder(child):
                    continue
                content = child.find(_W + "sdtContent")
                if content is not None:
                    self._inline(content, parts, boxes)
            elif tag in _DOCX_REMOVED:
                continue
            elif tag == _MC + "AlternateContent":
                branch = _choose_alternate(child)
                if branch is not None:
                    self._inline(branch, parts, boxes)
            elif tag in (_M + "oMath", _M + "oMathPara") and self._emitting():
                parts.append("".join(t.text or "" for t in child.iter(_M + "t")))
            # w:pPr (with its revision marks), bookmarks, comment ranges, w:proofErr: no text

    def _run(self, run: Any, parts: list[str], boxes: list[str]) -> None:
        props = run.find(_W + "rPr")
        hidden = props is not None and (
            props.find(_W + "vanish") is not None or props.find(_W + "specVanish") is not None
        )
        for child in run:
            tag = child.tag
            if tag == _W + "fldChar":
                kind = child.get(_W + "fldCharType")
                if kind == "begin":
                    self.fields.append(_Field())
                elif kind == "separate" and self.fields:
                    self.fields[-1].in_result = True
                elif kind == "end" and self.fields:
                    self.fields.pop()
                continue
            if tag == _W + "instrText":
                if self.fields and not self.fields[-1].in_result:
                    self.fields[-1].instruction.append(child.text or "")
                continue
            if tag in (_W + "drawing", _W + "pict", _W + "object", _MC + "AlternateContent"):
                # Text boxes and frames: their paragraphs become blocks after this paragraph.
                for content in self._text_boxes(child):
                    boxes.extend(self.blocks(content))
                continue
            if hidden or not self._emitting():
                continue
            if tag == _W + "t":
                parts.append(child.text or "")
            elif tag in (_W + "tab", _W + "ptab"):
                parts.append("\t")
            elif tag in (_W + "br", _W + "cr"):
                parts.append("\n")
            elif tag == _W + "noBreakHyphen":
                parts.append("-")
            elif tag == _W + "sym":
                code = child.get(_W + "char") or ""
                with contextlib.suppress(ValueError):
                    parts.append(chr(int(code, 16)))
            # w:delText, w:delInstrText (deleted), w:softHyphen (invisible unless the line
            # breaks there), w:footnoteReference (the note follows the body),
            # w:commentReference (comments are not the document's text), w:rPr: no text

    def _text_boxes(self, node: Any) -> Iterator[Any]:
        """``w:txbxContent`` elements under a drawing, reading one branch of each
        ``mc:AlternateContent`` only."""
        if node.tag == _MC + "AlternateContent":
            node = _choose_alternate(node)
            if node is None:
                return
        for child in node:
            if child.tag == _MC + "AlternateContent":
                branch = _choose_alternate(child)
                if branch is not None:
                    yield from self._text_boxes(branch)
            elif child.tag == _W + "txbxContent":
                yield child
            else:
                yield from self._text_boxes(child)


def _style_outline_level(style: Any) -> int | None:
    """Heading level (1-6) a paragraph style gives through ``w:outlineLvl`` (0-based)."""
    element = getattr(style, "element", None)
    found = element.find(f"{_W}pPr/{_W}outlineLvl") if element is not None else None
    value = found.get(_W + "val") if found is not None else None
    return int(value) + 1 if value is not None and value.isdigit() and int(value) < 6 else None


def docx_heading_styles(document: Any) -> dict[str, int]:
    """styleId -> heading level for a python-docx ``Document`` ("Heading 2"/"Titre 2" -> 2,
    "Title"/"Titre" -> 1, a style with an outline level), following ``basedOn`` one level for
    custom heading styles."""
    levels: dict[str, int] = {}
    based: dict[str, str] = {}
    for style in document.styles:
        style_id = getattr(style, "style_id", None)
        name = (getattr(style, "name", "") or "").strip()
        if not style_id:
            continue
        m = re.match(r"^(?:heading|titre)\s*(\d)$", name, flags=re.IGNORECASE)
        if m:
            levels[style_id] = max(1, min(6, int(m.group(1))))
        elif name.lower() in {"title", "titre"}:
            levels[style_id] = 1
        elif (outline := _style_outline_level(style)) is not None:
            levels[style_id] = outline
        else:
            base = getattr(style, "base_style", None)
            if base is not None and getattr(base, "style_id", None):
                based[style_id] = base.style_id
    for style_id, base_id in based.items():
        if base_id in levels:
            levels[style_id] = levels[base_id]
    return levels


def _docx_numbering(document: Any) -> DocxNumbering | None:
    """The numbering definitions of a python-docx ``Document`` (None when it has none)."""
    try:
        numbering = document.part.numbering_part.element
    except (KeyError, NotImplementedError, AttributeError):
        numbering = None
    style_numbering: dict[str, tuple[str, int]] = {}
    try:
        styles = document.styles.element
    except Exception:  # a broken styles part: numbering by direct formatting only
        styles = None
    if styles is not None:
        for style in styles.iter(_W + "style"):
            numpr = style.find(f"{_W}pPr/{_W}numPr")
            if numpr is None:
                continue
            num = numpr.find(_W + "numId")
            ilvl = numpr.find(_W + "ilvl")
            if num is not None:
                style_numbering[style.get(_W + "styleId") or ""] = (
                    num.get(_W + "val") or "",
                    int((ilvl.get(_W + "val") if ilvl is not None else None) or 0),
                )
    if numbering is None:
        return None
    return DocxNumbering(numbering, style_numbering)


def _alt_chunk_reader(document: Any) -> Callable[[str], list[str]]:
    """Blocks of a ``w:altChunk`` target (ECMA-376 §17.17.2.1): HTML, plain text or DOCX;
    other formats (RTF, MHT) give nothing."""

    def read(rel_id: str) -> list[str]:
        try:
            part = document.part.related_parts[rel_id]
            blob, content_type = part.blob, part.content_type
        except Exception:  # a dangling relationship
            return []
        if "html" in content_type:
            from assistant.loaders import html_text

            text = html_text(blob)[0]
            return [text] if text.strip() else []
        if content_type.startswith("text/plain"):
            from assistant.loaders import _decode

            text = _decode(blob).strip()
            return [text] if text else []
        if "wordprocessingml.document" in content_type:
            import io

            import docx

            try:
                return docx_text(docx.Document(io.BytesIO(blob))).body
            except Exception:  # a broken embedded document must not lose the host
                return []
        return []

    return read


def docx_text(document: Any) -> DocxText:
    """The reader's text of a python-docx ``Document`` (see the module docstring)."""
    from lxml import etree

    try:
        headings = docx_heading_styles(document)
    except Exception:  # a broken styles part loses the heading levels, not the text
        headings = {}
    try:
        numbering = _docx_numbering(document)
    except Exception:  # likewise for a broken numbering part
        numbering = None
    walker = DocxWalker(headings, numbering, _alt_chunk_reader(document))
    body = walker.blocks(document.element.body)
    notes: list[str] = []
    furniture: list[str] = []
    seen: set[str] = set()
    for part in document.part.package.iter_parts():
        content_type = getattr(part, "content_type", "")
        if content_type not in (CT_HEADER, CT_FOOTER, CT_FOOTNOTES, CT_ENDNOTES, CT_DIAGRAM):
            continue
        try:
            root = etree.fromstring(part.blob)
        except Exception:  # a broken note or header part must not lose the body
            continue
        walker.fields = []
        if content_type == CT_DIAGRAM:
            for paragraph in root.iter(_A + "p"):
                text = _collapse("".join(t.text or "" for t in paragraph.iter(_A + "t")))
                if text:
                    body.append(text)
        elif content_type in (CT_FOOTNOTES, CT_ENDNOTES):
            for note in root:
                # separator / continuationSeparator notes are the rule above the notes
                if note.get(_W + "type") not in (None, "normal"):
                    continue
                text = " ".join(walker.blocks(note))
                if text.strip():
                    notes.append(text)
        else:
            furniture.extend(_furniture_blocks(walker.blocks(root), seen))
    return DocxText(body, notes, furniture)


# ---------------------------------------------------------------------------------------------
# ODT (OpenDocument text, read through odfpy's DOM)

TEXTNS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
OFFICENS = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
TABLENS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
DRAWNS = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
STYLENS = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"

# Block-level elements skipped whole: revision storage (the deleted text of tracked changes),
# declarations, forms, and generated indexes (a table of contents repeats the headings).
_ODT_SKIP_BLOCKS = frozenset(
    (TEXTNS, t) for t in (
        "tracked-changes", "sequence-decls", "variable-decls", "user-field-decls",
        "dde-connection-decls", "alphabetical-index-auto-mark-file", "table-of-content",
        "illustration-index", "table-index", "object-index", "user-index",
        "alphabetical-index", "bibliography",
    )
) | {(OFFICENS, "forms"), (OFFICENS, "annotation"), (OFFICENS, "annotation-end")}
# Inline elements with no text of the final document: comments and their end marks, change
# marks (the deleted text is in text:tracked-changes), bookmarks, placeholders ("<Nom>" prompts),
# hidden text, ruby annotations.
_ODT_SKIP_INLINE = frozenset(
    (TEXTNS, t) for t in (
        "change", "change-start", "change-end", "bookmark", "bookmark-start", "bookmark-end",
        "reference-mark", "reference-mark-start", "reference-mark-end", "placeholder",
        "hidden-text", "hidden-paragraph", "soft-page-break", "toc-mark", "toc-mark-start",
        "toc-mark-end", "alphabetical-index-mark", "user-index-mark", "ruby-text",
        "sequence-ref", "tracked-changes",
    )
) | {(OFFICENS, "annotation"), (OFFICENS, "annotation-end")}


def _qname(node: Any) -> tuple[str, str] | None:
    return getattr(node, "qname", None)


def _attr(node: Any, ns: str, name: str) -> str:
    try:
        return str(node.getAttrNS(ns, name) or "")
    except Exception:  # odfpy raises on attributes not allowed for the element
        return ""


@dataclass(frozen=True)
class _OdfLevel:
    fmt: str  # style:num-format ("1", "a", "A", "i", "I", "" for none); "bullet" for bullets
    prefix: str = ""
    suffix: str = ""
    start: int = 1
    display: int = 1  # text:display-levels: how many levels the label shows ("1.2.")


def _odf_format(n: int, fmt: str) -> str:
    return {"1": str(n), "a": _letters(n), "A": _letters(n).upper(), "i": _roman(n),
            "I": _roman(n).upper()}.get(fmt, "" if not fmt else str(n))


def _odf_levels(style: Any) -> dict[int, _OdfLevel]:
    levels: dict[int, _OdfLevel] = {}
    for child in getattr(style, "childNodes", []):
        qname = _qname(child)
        if qname is None or qname[0] != TEXTNS:
            continue
        level = _attr(child, TEXTNS, "level")
        if not level.isdigit():
            continue
        if qname[1] == "list-level-style-bullet":
            levels[int(level)] = _OdfLevel("bullet")
        elif qname[1] in ("list-level-style-number", "outline-level-style"):
            start = _attr(child, TEXTNS, "start-value")
            display = _attr(child, TEXTNS, "display-levels")
            levels[int(level)] = _OdfLevel(
                _attr(child, STYLENS, "num-format"),
                _attr(child, STYLENS, "num-prefix"),
                _attr(child, STYLENS, "num-suffix"),
                int(start) if start.isdigit() else 1,
                int(display) if display.isdigit() else 1,
            )
    return levels


class _OdfCounter:
    """Counters of one numbered list or of the heading outline."""

    def __init__(self, levels: dict[int, _OdfLevel]) -> None:
        self.levels = levels
        self.counts = [0] * 11

    def next(self, level: int, start: int | None = None) -> str:
        """Count an item at ``level`` (1-based) and return its label ("" when unnumbered)."""
        spec = self.levels.get(level)
        if spec is None or level > 10:
            return ""
        if spec.fmt == "bullet":
            return "-"
        self.counts[level] = (start - 1 if start else self.counts[level]) + 1
        for deeper in range(level + 1, 11):
            self.counts[deeper] = 0
        if not spec.fmt:
            return (spec.prefix + spec.suffix).strip()
        numbers = []
        for lvl in range(max(1, level - spec.display + 1), level + 1):
            lvl_spec = self.levels.get(lvl, spec)
            numbers.append(_odf_format(lvl_spec.start + max(self.counts[lvl], 1) - 1,
                                       lvl_spec.fmt or "1"))
        return f"{spec.prefix}{'.'.join(numbers)}{spec.suffix}".strip()


class OdtWalker:
    """Walks an odfpy DOM into text blocks (see the module docstring for the rules).

    List and heading labels ("1.", "a)", "Article 3 :") are computed from the list styles and
    the outline style, as LibreOffice draws them, unless the file stores them (``text:number``).
    """

    def __init__(
        self, list_styles: dict[str, dict[int, _OdfLevel]] | None = None,
        outline: dict[int, _OdfLevel] | None = None,
    ) -> None:
        self.notes: list[str] = []
        self.list_styles = list_styles or {}
        self.lists: dict[str, _OdfCounter] = {}
        self.outline = _OdfCounter(outline or {})

    def _list(self, node: Any, depth: int, style: str) -> list[str]:
        style = _attr(node, TEXTNS, "style-name") or style
        if depth == 0 and _attr(node, TEXTNS, "continue-numbering") != "true" \
                and not _attr(node, TEXTNS, "continue-list"):
            self.lists.pop(style, None)
        counter = self.lists.setdefault(style, _OdfCounter(self.list_styles.get(style, {})))
        out: list[str] = []
        for item in getattr(node, "childNodes", []):
            qname = _qname(item)
            if qname not in ((TEXTNS, "list-item"), (TEXTNS, "list-header")):
                continue
            label = ""
            if qname[1] == "list-item":
                start = _attr(item, TEXTNS, "start-value")
                label = counter.next(depth + 1, int(start) if start.isdigit() else None)
                if not counter.levels:
                    label = "-"
            blocks = self.blocks(item, depth + 1, style)
            if blocks and label and not self._stored_number(item):
                blocks[0] = f"{label} {blocks[0]}"
            out.extend(blocks)
        return out

    @staticmethod
    def _stored_number(node: Any) -> bool:
        for child in getattr(node, "childNodes", []):
            if _qname(child) in ((TEXTNS, "p"), (TEXTNS, "h")):
                return any(_qname(c) == (TEXTNS, "number") for c in child.childNodes)
        return False

    def blocks(self, container: Any, list_depth: int = 0, list_style: str = "") -> list[str]:
        out: list[str] = []
        for child in getattr(container, "childNodes", []):
            qname = _qname(child)
            if qname is None or qname in _ODT_SKIP_BLOCKS:
                continue
            ns, tag = qname
            if ns == TEXTNS and tag in ("p", "h"):
                if self._hidden_paragraph(child):
                    continue
                boxes: list[str] = []
                text = _collapse(self.inline(child, boxes))
                if text:
                    if tag == "h":
                        level = _attr(child, TEXTNS, "outline-level")
                        level_n = int(level) if level.isdigit() else 1
                        stored = any(_qname(c) == (TEXTNS, "number") for c in child.childNodes)
                        if _attr(child, TEXTNS, "is-list-header") != "true" and not stored:
                            label = self.outline.next(level_n)
                            text = f"{label} {text}" if label else text
                        out.append(f"{'#' * max(1, min(6, level_n))} {' '.join(text.split())}")
                    else:
                        out.append(text)
                out.extend(boxes)
            elif ns == TEXTNS and tag == "list":
                out.extend(self._list(child, list_depth, list_style))
            elif ns == TEXTNS and tag == "section":
                if _attr(child, TEXTNS, "display") == "none":
                    continue  # a hidden section
                out.extend(self.blocks(child, list_depth, list_style))
            elif ns == TABLENS and tag == "table":
                table = self.table(child)
                if table:
                    out.append(table)
            elif ns == DRAWNS and tag in ("frame", "text-box", "a", "g"):
                out.extend(self.blocks(child))
            else:  # table rows outside tables, unknown wrappers
                out.extend(self.blocks(child, list_depth, list_style))
        return out

    @staticmethod
    def _hidden_paragraph(p: Any) -> bool:
        for child in getattr(p, "childNodes", []):
            if _qname(child) == (TEXTNS, "hidden-paragraph"):
                return _attr(child, TEXTNS, "is-hidden") == "true"
        return False

    def table(self, table: Any) -> str:
        rows: list[list[str]] = []
        for row in self._descendants(table, (TABLENS, "table-row")):
            cells = [
                " ".join(self.blocks(cell))
                for cell in row.childNodes
                if _qname(cell) == (TABLENS, "table-cell")
            ]
            rows.append(cells)
        return table_text(rows)

    def _descendants(self, node: Any, wanted: tuple[str, str]) -> Iterator[Any]:
        for child in getattr(node, "childNodes", []):
            qname = _qname(child)
            if qname is None:
                continue
            if qname == wanted:
                yield child
            elif qname != (TABLENS, "table"):  # nested tables are read inside their cell
                yield from self._descendants(child, wanted)

    def inline(self, node: Any, boxes: list[str]) -> str:
        parts: list[str] = []
        for child in getattr(node, "childNodes", []):
            qname = _qname(child)
            if qname is None:
                if getattr(child, "nodeType", None) == child.TEXT_NODE:
                    parts.append(str(child.data))
                continue
            if qname in _ODT_SKIP_INLINE:
                continue
            ns, tag = qname
            if ns == TEXTNS and tag == "s":
                count = _attr(child, TEXTNS, "c")
                parts.append(" " * (int(count) if count.isdigit() else 1))
            elif ns == TEXTNS and tag == "tab":
                parts.append("\t")
            elif ns == TEXTNS and tag == "line-break":
                parts.append("\n")
            elif ns == TEXTNS and tag == "note":
                for body in child.childNodes:
                    if _qname(body) == (TEXTNS, "note-body"):
                        text = " ".join(self.blocks(body))
                        if text.strip():
                            self.notes.append(text)
            elif ns == DRAWNS:
                # frames, text boxes, shapes: their paragraphs become blocks of their own
                boxes.extend(self.blocks(child))
            else:  # spans, links, fields (their content is the value shown), ruby bases
                parts.append(self.inline(child, boxes))
        return "".join(parts)


def odt_text(document: Any) -> tuple[list[str], list[str], list[str]]:
    """(body blocks, note blocks, header/footer blocks) of an odfpy ``OpenDocument``."""
    list_styles: dict[str, dict[int, _OdfLevel]] = {}
    outline: dict[int, _OdfLevel] = {}
    for container in (getattr(document, "styles", None),
                      getattr(document, "automaticstyles", None)):
        for style in getattr(container, "childNodes", []):
            qname = _qname(style)
            if qname == (TEXTNS, "list-style"):
                list_styles[_attr(style, STYLENS, "name")] = _odf_levels(style)
            elif qname == (TEXTNS, "outline-style"):
                outline = _odf_levels(style)
    walker = OdtWalker(list_styles, outline)
    body = walker.blocks(document.text)
    furniture: list[str] = []
    seen: set[str] = set()
    masters = getattr(document, "masterstyles", None)
    for master in getattr(masters, "childNodes", []):
        for part in getattr(master, "childNodes", []):
            qname = _qname(part)
            if qname and qname[0] == STYLENS and qname[1].startswith(("header", "footer")):
                furniture.extend(_furniture_blocks(walker.blocks(part), seen))
    return body, walker.notes, furniture
