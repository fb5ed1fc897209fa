"""Drafts to files an agent can put in the parapheur: DOCX (python-docx), ODT (odfpy), plain text.

The answer text is first parsed into a list of :class:`Block` laid out per document type
(:func:`layout`): a letter gets its sender and recipient addresses, place and date, objet,
references, body and signature block; an act (délibération, arrêté) gets its visas, considérants,
decision formula and articles. The three writers render the same blocks, so the DOCX, the ODT and
the clipboard text never disagree. Every output carries the mention that an AI assistant prepared
the draft and an annex listing the sources cited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import IO, Literal

from assistant.drafting import Citation, Draft, cited_excerpt
from assistant.textnorm import fold
from assistant.verify import MARK_PATTERN

BlockKind = Literal[
    "sender",  # expéditeur (letter), top left
    "recipient",  # destinataire (letter), indented to the right
    "place_date",  # "À Lyon, le 3 mars 2025"
    "title",  # DÉLIBÉRATION, ARRÊTÉ, NOTE ...
    "subject",  # "Objet : ..."
    "references",  # "Réf. : ..."
    "heading",  # a section heading inside the body
    "paragraph",
    "bullet",
    "visa",  # "Vu ..."
    "considerant",  # "Considérant ..."
    "decision",  # "DÉCIDE :" / "ARRÊTE :"
    "article",  # "Article 1er" heading; its text follows as paragraphs
    "signature",
    "annex_title",
    "annex_item",
    "annex_excerpt",
]


@dataclass(frozen=True)
class Block:
    """One laid-out piece of a document."""

    kind: BlockKind
    text: str


FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip

AI_MENTION = (
    "Brouillon préparé avec l'aide d'un assistant d'intelligence artificielle, "
    "à relire et valider par un agent avant toute signature."
)

_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_HEADING_MD = re.compile(r"^#{1,6}\s+(.*)$")
_NUMBERED_HEADING = re.compile(r"^(?:\d+|[IVX]+)[.)]\s+[A-ZÀ-Ý][^.;:!?\[]{0,60}$")
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d+[.)])\s+(.*)$")
_ARTICLE = re.compile(
    r"^article\s+(?:(?:\d+|premier|unique)(?:er|e)?)\b\s*[.:\-–]?\s*(.*)$", re.IGNORECASE
)
_DECISION = re.compile(r"(?:^|[\s,])(decide|arrete|delibere|decident|arretent)\s*(:?)\s*$")
_UPPER_DECISION = re.compile(r"(D[ÉE]CIDENT|D[ÉE]CIDE|ARR[ÊE]TENT|ARR[ÊE]TE|D[ÉE]LIB[ÈE]RE)\s*$")
_LEADING_FIELD = re.compile(
    r"^(objet|references?|ref\.?|v/ref\.?|n/ref\.?)\s*:\s*(.*)$", re.IGNORECASE
)


def citation_numbers(text: str) -> list[int]:
    """The source numbers cited in ``text`` ("[2]", "[1, 3]"), in order of first appearance."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            seen.setdefault(int(part), None)
    return list(seen)


def cited_sources(draft: Draft) -> list[Citation]:
    """Sources whose number still appears in the (possibly edited) answer, in number order."""
    numbers = set(citation_numbers(draft.answer))
    return [c for c in draft.sources if c.n in numbers]


def french_date(day: date) -> str:
    """``date(2025, 3, 1)`` -> "1er mars 2025"."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def _doc_family(doc_type: str) -> str:
    key = fold(doc_type).replace("-", "_").replace(" ", "_")
    if key.startswith("deliberation"):
        return "deliberation"
    if key.startswith("arrete"):
        return "arrete"
    if key.startswith(("courrier", "lettre", "reponse")):
        return "letter"
    if key.startswith("note"):
        return "note"
    if key.startswith("synthese"):
        return "synthese"
    return "question"


TITLES = {
    "deliberation": "Délibération du conseil municipal",
    "arrete": "Arrêté",
    "note": "Note",
    "synthese": "Synthèse",
    "question": "Réponse documentée",
}


def _field(fields: dict[str, str], *names: str) -> str:
    """A request field by any of its usual names (accents, case and separators ignored)."""
    folded = {fold(k).replace("-", "_").replace(" ", "_"): v for k, v in fields.items()}
    for name in names:
        value = folded.get(name, "").strip()
        if value:
            return value
    return ""


# The prompt's own source delimiters ("<<SOURCE 1 — …>>", "<<FIN SOURCE 1>>"): never in a file.
_PROMPT_MARKUP = re.compile(r"<<[^<>\n]{0,300}>>|‹‹[^‹›\n]{0,300}››")


def _clean(line: str) -> str:
    """Markdown emphasis and prompt delimiters removed (a model may write **Objet :** or echo
    a source header; an edited text may hold anything)."""
    return _PROMPT_MARKUP.sub("", _MARKDOWN_EMPHASIS.sub(r"\2", line)).strip()


def _body_lines(answer: str) -> list[str]:
    return [_clean(line) for line in answer.replace("\r\n", "\n").split("\n")]


def _generic_blocks(lines: Iterable[str]) -> list[Block]:
    """Paragraphs, headings and bullets of a body. Each line is its own paragraph: the model
    writes one paragraph per line, and joining lines would merge visas or "Madame, Monsieur,"."""
    blocks: list[Block] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        heading = _HEADING_MD.match(line)
        bullet = _BULLET.match(line)
        if heading:
            blocks.append(Block("heading", heading.group(1).strip()))
        elif _NUMBERED_HEADING.match(line):
            blocks.append(Block("heading", line))
        elif bullet:
            blocks.append(Block("bullet", bullet.group(1).strip()))
        else:
            blocks.append(Block("paragraph", line))
    return blocks


def _is_decision(text: str) -> bool:
    """ "DÉCIDE :", "Après en avoir délibéré, DÉCIDE :", "ARRÊTE" (upper case or colon)."""
    match = _DECISION.search(fold(text))
    if not match or len(text) > 160:
        return False
    return bool(match.group(2)) or bool(_UPPER_DECISION.search(text))


def _act_blocks(lines: Iterable[str]) -> list[Block]:
    """Visas, considérants, decision formula and articles of a délibération or an arrêté."""
    blocks: list[Block] = []
    for block in _generic_blocks(lines):
        if block.kind not in ("paragraph", "bullet"):
            blocks.append(block)
            continue
        text = block.text
        folded = fold(text)
        article = _ARTICLE.match(text)
        if folded.startswith("vu ") or folded.startswith("vu,"):
            blocks.append(Block("visa", text))
        elif folded.startswith("considerant"):
            blocks.append(Block("considerant", text))
        elif _is_decision(text):
            blocks.append(Block("decision", text.rstrip(" :") + " :"))
        elif article:
            head = text[: len(text) - len(article.group(1))].strip().rstrip(".:-– ")
            blocks.append(Block("article", head))
            if article.group(1).strip():
                blocks.append(Block("paragraph", article.group(1).strip()))
        else:
            blocks.append(block)
    return blocks


def _annex(draft: Draft) -> list[Block]:
    sources = cited_sources(draft)
    blocks = [Block("annex_title", "Annexe — Sources utilisées")]
    if not sources:
        blocks.append(Block("paragraph", "Aucune source n'est citée dans ce brouillon."))
        return blocks
    for c in sources:
        where = [c.title or c.source, f"{c.collection} / {c.source}"]
        if c.page is not None:
            where.append(f"page {c.page}")
        if c.heading:
            where.append(c.heading)
        blocks.append(Block("annex_item", f"[{c.n}] " + " — ".join(where)))
        excerpt = cited_excerpt(draft.answer, c, 400)
        blocks.append(Block("annex_excerpt", f"« {excerpt} »"))
    return blocks


_SALUTATION = re.compile(
    r"^(madame|monsieur|mesdames|messieurs|cher|chere|chers|cheres)\b[^.]{0,60},\s*$"
)
_SIGNATORY = re.compile(
    r"^(?:p\.?\s?o\.?\s+|pour\s+)?(?:le|la|l')\s*(?:\w+\s+){0,3}?"
    r"(maire|president|presidente|adjoint|adjointe|directeur|directrice|secretaire)\b"
)
_DATE_LINE = re.compile(r"(?:^|,\s*)le\s+(?:\d|\[|1er)", re.IGNORECASE)
_HEADER_FIELD = re.compile(
    r"^(objet|references?|ref\.?|v/ref\.?|n/ref\.?|de|date|seance|rapporteur|"
    r"a l'attention de|destinataire)\s*:\s*(.*)$"
)


def _is_ai_mention(line: str) -> bool:
    folded = fold(line)
    return line.lstrip().startswith(("—", "-", "–")) and (
        "assistant d'ia" in folded or "intelligence artificielle" in folded
    )


def _header_field(line: str) -> tuple[str, str] | None:
    match = _HEADER_FIELD.match(fold(line).strip())
    if not match:
        return None
    key = match.group(1)
    if key.startswith(("ref", "v/ref", "n/ref")):
        key = "references"
    value = line.split(":", 1)[1].strip()
    return key, value


def _is_title(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return (
        len(line) <= 140
        and len(letters) >= 4
        and sum(c.isupper() for c in letters) > 0.8 * len(letters)
    )


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """The signature block (“Le Maire,” and the lines after it) taken off the end of the body."""
    for i in range(len(lines) - 1, max(-1, len(lines) - 6), -1):
        if _SIGNATORY.match(fold(lines[i]).strip()) and len(lines[i]) <= 80:
            return lines[:i], [ln for ln in lines[i:] if ln]
    return lines, []


def _has_placeholder(text: str) -> bool:
    return bool(re.search(r"\[[^\]\d][^\]]*\]", text))


def _letter(draft: Draft, lines: list[str], ctx: _Context) -> list[Block]:
    salutation = next((i for i, ln in enumerate(lines) if _SALUTATION.match(fold(ln))), None)
    if salutation is None:
        header, body = [], lines
    else:
        header, body = lines[:salutation], lines[salutation:]
    found: dict[str, str] = {}
    before_date: list[str] = []
    after_date: list[str] = []
    date_line = ""
    for line in header:
        if not line:
            continue
        field = _header_field(line)
        if field:
            found.setdefault(field[0], field[1])
        elif not date_line and _DATE_LINE.search(line):
            date_line = line
        elif date_line:
            after_date.append(line)
        else:
            before_date.append(line)
    if salutation is None:  # no header written: only leading "Objet :" lines are taken
        while body and (not body[0] or _header_field(body[0])):
            field = _header_field(body[0]) if body[0] else None
            if field:
                found.setdefault(field[0], field[1])
            body = body[1:]
    body, signature = _split_signature(body)
    signatory = ctx.field("signataire")
    if not signature and signatory:  # "Le service de l'état civil" written by the template footer
        last = max((i for i, ln in enumerate(body) if ln.strip()), default=-1)
        if last >= 0 and fold(body[last]).strip() == fold(signatory).strip():
            body, signature = body[:last], [body[last]]
    sender = ctx.field("expediteur", "emetteur", "service", "de") or "\n".join(before_date)
    recipient = ctx.field("destinataire", "usager", "demandeur") or "\n".join(after_date)
    subject = ctx.field("objet", "sujet") or found.get("objet", "")
    references = ctx.field("references", "reference", "ref") or found.get("references", "")
    if not ctx.place and date_line and not _has_placeholder(date_line):
        place_date = date_line
    else:
        place_date = ctx.place_date
    blocks: list[Block] = []
    if sender and not _has_placeholder(sender):
        blocks.append(Block("sender", sender))
    if recipient:
        blocks.append(Block("recipient", recipient))
    blocks.append(Block("place_date", place_date))
    if subject:
        blocks.append(Block("subject", f"Objet : {subject}"))
    if references:
        blocks.append(Block("references", f"Réf. : {references}"))
    demande = ctx.field("date_demande")
    if demande:
        blocks.append(Block("references", f"Votre demande du {demande}"))
    blocks.extend(_generic_blocks(body))
    blocks.append(Block("signature", ctx.signature("\n".join(signature))))
    return blocks


def _act(draft: Draft, lines: list[str], ctx: _Context) -> list[Block]:
    blocks: list[Block] = []
    rest = list(lines)
    while rest and not rest[0]:
        rest.pop(0)
    titles: list[str] = []
    while rest and rest[0] and _is_title(rest[0]):
        titles.append(rest.pop(0))
    blocks.append(Block("title", "\n".join(titles) or TITLES[ctx.family].upper()))
    subject = ctx.field("objet", "sujet")
    header: list[Block] = []
    while rest:
        line = rest[0]
        if not line:
            rest.pop(0)
            continue
        field = _header_field(line)
        if not field:
            break
        rest.pop(0)
        if field[0] == "objet":
            subject = subject or field[1]
        else:
            header.append(Block("references", line))
    if subject:
        blocks.append(Block("subject", f"Objet : {subject}"))
    blocks.extend(header)
    body, signature = _split_signature(rest)
    fait = next((i for i, ln in enumerate(body) if fold(ln).startswith("fait ")), None)
    closing: list[Block] = []
    if fait is not None:
        closing = [Block("place_date", ln) for ln in body[fait:] if ln]
        body = body[:fait]
    else:
        closing = [Block("place_date", "Fait " + ctx.place_date[0].lower() + ctx.place_date[1:])]
    blocks.extend(_act_blocks(body))
    blocks.extend(closing)
    blocks.append(Block("signature", ctx.signature("\n".join(signature))))
    return blocks


def _other(draft: Draft, lines: list[str], ctx: _Context) -> list[Block]:
    rest = list(lines)
    while rest and not rest[0]:
        rest.pop(0)
    title = ""
    if rest and (_is_title(rest[0]) or fold(rest[0]).startswith(("synthese", "note"))):
        title = rest.pop(0)
    blocks = [Block("title", title or TITLES[ctx.family].upper())]
    subject = ctx.field("objet", "sujet")
    seen_subject = False
    header: list[Block] = []
    while rest:
        if not rest[0]:
            rest.pop(0)
            continue
        field = _header_field(rest[0])
        if not field:
            break
        line = rest.pop(0)
        if field[0] == "objet":
            seen_subject = True
            header.append(Block("subject", f"Objet : {subject or field[1]}"))
        else:
            header.append(Block("references", line))
    if not title:
        recipient = ctx.field("destinataire")
        if recipient:
            blocks.append(Block("references", f"À l'attention de : {recipient}"))
    if subject and not seen_subject and fold(subject) not in fold(title):
        blocks.append(Block("subject", f"Objet : {subject}"))
    blocks.extend(header)
    blocks.extend(_generic_blocks(rest))
    return blocks


@dataclass
class _Context:
    """What every layout needs besides the text: fields, place, date, family."""

    fields: dict[str, str]
    family: str
    today: date

    def field(self, *names: str) -> str:
        return _field(self.fields, *names)

    @property
    def place(self) -> str:
        return self.field("lieu", "commune", "ville")

    @property
    def place_date(self) -> str:
        when = french_date(self.today)
        return f"À {self.place}, le {when}" if self.place else f"Le {when}"

    def signature(self, written: str) -> str:
        """The signatory field first, else what the model wrote (placeholders kept visible so
        that the agent fills them in), else the usual "Le Maire,"."""
        return self.field("signataire") or written or "Le Maire,"


def layout(draft: Draft, *, today: date | None = None) -> list[Block]:
    """The draft as blocks, laid out for its document type, annex of sources included.

    The model writes the whole document (headers included) following its template; the
    request's fields win over what it wrote, and what it did not write is added.
    """
    family = _doc_family(draft.request.doc_type)
    ctx = _Context(draft.request.fields, family, today or date.today())
    lines = [ln for ln in _body_lines(draft.answer) if not _is_ai_mention(ln)]
    if family == "letter":
        blocks = _letter(draft, lines, ctx)
    elif family in ("deliberation", "arrete"):
        blocks = _act(draft, lines, ctx)
    else:
        blocks = _other(draft, lines, ctx)
    return blocks + _annex(draft)


def footer_text(draft: Draft) -> str:
    """The mention printed at the foot of every page."""
    model = f" (modèle local {draft.model})" if draft.model else ""
    return (
        f"Brouillon n° {draft.id} préparé avec l'aide d'un assistant d'intelligence "
        f"artificielle{model}, à relire et valider par un agent avant toute signature."
    )


def document_title(draft: Draft) -> str:
    subject = _field(draft.request.fields, "objet", "sujet")
    kind = TITLES.get(_doc_family(draft.request.doc_type), "Courrier")
    return f"{kind} — {subject}" if subject else kind


GROUPED = ("subject", "references", "visa", "considerant", "sender", "place_date")

# --- plain text ---------------------------------------------------------------------------------


def draft_to_text(draft: Draft, *, today: date | None = None) -> str:
    """Plain text for the clipboard: the same layout, the sources and the AI mention."""
    out: list[str] = []
    for block in layout(draft, today=today):
        text = block.text
        if block.kind == "bullet":
            text = f"- {text}"
        elif block.kind == "recipient":
            text = "\n".join("\t\t\t" + line for line in text.splitlines())
        elif block.kind in ("title", "annex_title"):
            text = text.upper()
            out.append("")
        elif block.kind == "signature":
            out.append("")
        out.append(text)
        if block.kind not in ("annex_item",):
            out.append("")
    out.append("—")
    out.append(footer_text(draft))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


# --- DOCX ---------------------------------------------------------------------------------------


def draft_to_docx(
    draft: Draft, target: str | Path | IO[bytes], *, today: date | None = None
) -> None:
    """Write the draft as a Word document to a path or a binary buffer."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_COLOR_INDEX
    from docx.shared import Cm, Pt, RGBColor

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "Arial"
    normal.font.size = Pt(11)
    normal.paragraph_format.space_after = Pt(6)
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)
    section.left_margin = section.right_margin = Cm(2.2)
    section.top_margin, section.bottom_margin = Cm(2.0), Cm(2.0)
    doc.core_properties.title = document_title(draft)
    doc.core_properties.comments = AI_MENTION
    doc.core_properties.author = draft.request.user

    footer = section.footer.paragraphs[0]
    footer.text = footer_text(draft)
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for run in footer.runs:
        run.font.size = Pt(8)
        run.font.color.rgb = RGBColor(0x3A, 0x3A, 0x3A)

    annex_started = False
    previous = ""
    for block in layout(draft, today=today):
        # A blank line's worth of space where the kind of content changes (after the objet,
        # between the visas and the considérants...), as in a typed act or letter.
        gap = previous != block.kind and previous in GROUPED
        previous = block.kind
        if block.kind == "annex_title" and not annex_started:
            doc.add_page_break()
            annex_started = True
        if block.kind == "bullet":
            para = doc.add_paragraph(block.text, style="List Bullet")
            continue
        if block.kind in ("heading", "annex_title"):
            para = doc.add_heading(block.text, level=2 if block.kind == "heading" else 1)
            for run in para.runs:  # Word's default heading blue and font clash with the page
                run.font.name = "Arial"
                run.font.color.rgb = RGBColor(0x00, 0x00, 0x91)
            continue
        para = doc.add_paragraph()
        lines = block.text.split("\n")
        for i, line in enumerate(lines):
            # A verification mark is highlighted, as on screen, so that nobody sends it.
            pieces = [p for p in re.split(f"({MARK_PATTERN.pattern})", line) if p] or [""]
            for j, piece in enumerate(pieces):
                run = para.add_run(piece)
                if MARK_PATTERN.fullmatch(piece):
                    run.font.highlight_color = WD_COLOR_INDEX.YELLOW
                    run.bold = True
                if i < len(lines) - 1 and j == len(pieces) - 1:
                    run.add_break()
                if block.kind in ("title", "decision", "article", "subject"):
                    run.bold = True
                if block.kind == "title":
                    run.font.size = Pt(14)
                if block.kind == "annex_excerpt":
                    run.italic = True
                    run.font.size = Pt(9)
        fmt = para.paragraph_format
        if gap:
            fmt.space_before = Pt(12)
        if block.kind in ("title", "decision"):
            para.alignment = WD_ALIGN_PARAGRAPH.CENTER
            fmt.space_before = Pt(12)
            fmt.space_after = Pt(12)
        elif block.kind in ("recipient", "place_date", "signature"):
            fmt.left_indent = Cm(9.5)
            if block.kind == "recipient":
                fmt.space_before, fmt.space_after = Pt(18), Pt(18)
            if block.kind == "signature":
                fmt.space_before = Pt(24)
        elif block.kind == "paragraph":
            para.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        elif block.kind == "article":
            fmt.space_before = Pt(10)
            fmt.keep_with_next = True
        elif block.kind in ("visa", "considerant"):
            para.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
            fmt.space_after = Pt(4)
        elif block.kind == "annex_excerpt":
            fmt.left_indent = Cm(0.8)
    doc.save(str(target) if isinstance(target, Path) else target)


# --- ODT ----------------------------------------------------------------------------------------


def draft_to_odt(
    draft: Draft, target: str | Path | IO[bytes], *, today: date | None = None
) -> None:
    """Write the draft as an OpenDocument text (LibreOffice) to a path or a binary buffer."""
    from odf.opendocument import OpenDocumentText
    from odf.style import (
        Footer,
        MasterPage,
        PageLayout,
        PageLayoutProperties,
        ParagraphProperties,
        Style,
        TextProperties,
    )
    from odf.text import LineBreak, List, ListItem, P, Span

    doc = OpenDocumentText()
    doc.meta.addElement(_odf_title(document_title(draft)))

    layout_style = PageLayout(name="A4")
    layout_style.addElement(
        PageLayoutProperties(
            pagewidth="21cm",
            pageheight="29.7cm",
            margintop="2cm",
            marginbottom="1.5cm",
            marginleft="2.2cm",
            marginright="2.2cm",
            printorientation="portrait",
        )
    )
    doc.automaticstyles.addElement(layout_style)

    def pstyle(name: str, *, align: str = "start", bold: bool = False, italic: bool = False,
               size: str = "11pt", indent: str = "0cm", before: str = "0cm",
               after: str = "0.2cm", family: str = "paragraph") -> Style:  # fmt: skip
        style = Style(name=name, family=family)
        style.addElement(
            ParagraphProperties(
                textalign=align, marginleft=indent, margintop=before, marginbottom=after
            )
        )
        text_props = {"fontsize": size, "fontfamily": "Arial", "fontname": "Arial"}
        if bold:
            text_props["fontweight"] = "bold"
        if italic:
            text_props["fontstyle"] = "italic"
        style.addElement(TextProperties(**text_props))
        doc.styles.addElement(style)
        return style

    styles = {
        "sender": pstyle("Expediteur"),
        "recipient": pstyle("Destinataire", indent="9.5cm", before="0.6cm", after="0.6cm"),
        "place_date": pstyle("LieuDate", indent="9.5cm"),
        "title": pstyle(
            "TitreActe", align="center", bold=True, size="14pt", before="0.4cm", after="0.4cm"
        ),
        "subject": pstyle("Objet", bold=True),
        "references": pstyle("References"),
        "heading": pstyle("Intertitre", bold=True, size="12pt", before="0.3cm"),
        "paragraph": pstyle("Corps", align="justify"),
        "bullet": pstyle("Puce"),
        "visa": pstyle("Visa", align="justify", after="0.1cm"),
        "considerant": pstyle("Considerant", align="justify", after="0.1cm"),
        "decision": pstyle("Decision", align="center", bold=True, before="0.4cm", after="0.4cm"),
        "article": pstyle("Article", bold=True, before="0.3cm"),
        "signature": pstyle("Signature", indent="9.5cm", before="0.8cm"),
        "annex_title": pstyle("TitreAnnexe", bold=True, size="13pt", before="0.4cm"),
        "annex_item": pstyle("SourceAnnexe", before="0.2cm", after="0.05cm"),
        "annex_excerpt": pstyle("ExtraitAnnexe", italic=True, size="9pt", indent="0.8cm"),
    }
    footer_style = pstyle("PiedDePage", align="center", size="8pt")
    page_break = Style(name="SautDePage", family="paragraph")
    page_break.addElement(ParagraphProperties(breakbefore="page"))
    doc.automaticstyles.addElement(page_break)

    master = MasterPage(name="Standard", pagelayoutname=layout_style)
    foot = Footer()
    foot.addElement(P(stylename=footer_style, text=footer_text(draft)))
    master.addElement(foot)
    doc.masterstyles.addElement(master)

    bullets: List | None = None
    for block in layout(draft, today=today):
        if block.kind == "bullet":
            if bullets is None:
                bullets = List()
                doc.text.addElement(bullets)
            item = ListItem()
            item.addElement(P(stylename=styles["bullet"], text="• " + block.text))
            bullets.addElement(item)
            continue
        bullets = None
        if block.kind == "annex_title":
            doc.text.addElement(P(stylename=page_break, text=""))
        para = P(stylename=styles[block.kind])
        for i, line in enumerate(block.text.split("\n")):
            if i:
                para.addElement(LineBreak())
            para.addElement(Span(text=line))
        doc.text.addElement(para)
    doc.save(target)


def _odf_title(title: str) -> object:
    from odf.dc import Title

    return Title(text=title)


def draft_to_bytes(
    draft: Draft, fmt: Literal["docx", "odt"], *, today: date | None = None
) -> bytes:
    """The exported file's bytes (for a download)."""
    buffer = BytesIO()
    if fmt == "docx":
        draft_to_docx(draft, buffer, today=today)
    else:
        draft_to_odt(draft, buffer, today=today)
    return buffer.getvalue()
