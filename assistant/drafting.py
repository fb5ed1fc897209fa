"""The one drafting use case shared by the UI and the CLI: retrieve -> prompt -> stream -> cite.

``DraftingService.stream(request)`` yields :class:`DraftEvent` s: ``status`` texts, ``sources``
(the numbered passages, before generation), ``queue`` positions while another request holds the
model, ``token`` s, and a final ``done`` carrying the :class:`Draft`. Closing the generator (the
user pressed "stop") releases the model and records a partial draft.

Context budget: the prompt's fixed part (preamble + the template's instructions) is the same for
every request of a type, so llama.cpp keeps it cached; only the variable part (sources, fields,
request) is paid for at each request. ``Template.budget_tokens`` (``settings.context_budget`` for
``question``) bounds that variable part: the tokens llama.cpp evaluates beyond the cached fixed
part, chat-template markup included, counted with the model's own tokenizer and chat template
(:meth:`ChatModel.uncached_tokens`). The best sources are kept whole, long ones are trimmed to the
sentences around the match, and the budget is never exceeded. ``settings.context_budget = 0``
turns the budget off (the "naive" context, for comparison: the first ``NAIVE_TOP_K`` passages
retrieved, whole, without the relevance filter; bounded only by the context window). A
follow-up ("plus court") sends the previous conversation as its prefix, so almost all of its
prompt is already cached.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from assistant.errors import AssistantError, DraftingError
from assistant.evidence import (
    Line,
    Reference,
    asked_kinds,
    best_references,
    clean_lines,
    evidence_query,
    figure_words,
    key_sentence,
    questions_of,
    references_of,
    share_evidence,
)
from assistant.llm import ChatModel, GenerationStats, Message
from assistant.prompts import (
    CommonText,
    SourceBlock,
    Template,
    Templates,
    escape_data,
    neutralise_instructions,
    render_footer,
    render_header,
    render_plain,
    render_source,
    render_system,
    render_user,
)
from assistant.schema import Hit
from assistant.structure import (
    MAX_VISAS,
    Part,
    Structure,
    about_itself,
    address_reader,
    asks_only,
    considerant_line,
    contrary_decision,
    drop_asked,
    drop_filler,
    drop_repeats,
    drop_scaffold,
    drop_source_talk,
    drop_title_questions,
    drop_unfinished_tail,
    filler_only,
    inline_visa,
    is_legal_text,
    law_visas,
    parse_partial,
    quoted_part,
    reference_visa,
    render,
    resident_possessives,
    resident_statements,
    restated_instruction,
    restated_questions,
    schema_for,
    self_decided,
    strip_article_head,
    structure_of,
    visa_line,
    with_legal_basis,
)
from assistant.textnorm import fold, light_terms, with_equivalents
from assistant.verify import (
    QUOTE_MAX_WORDS,
    UNIT_SEP,
    Issue,
    check_paragraph,
    differing_figures,
    figure_keys,
    french_quotes,
    missing_sources,
    quote_copy,
)
from assistant.verify import apply as apply_issues

if TYPE_CHECKING:
    from assistant.audit import AuditLog
    from assistant.config import Settings

log = logging.getLogger(__name__)

# Below this many tokens of room for evidence, a request is refused as too long for its budget.
MIN_SOURCE_TOKENS = 60
# Merged passages (one a document page) whose sentences compete for the evidence's room.
MAX_EVIDENCE_SOURCES = 5
VISA_TO_COMPLETE = "Vu [À COMPLÉTER : texte visé] ;"
# Chunks each side of a hit read for its document's « Références » (a fiche has a few).
DOCUMENT_SPAN = 200
# Without a budget (settings.context_budget = 0): the naive context, this many whole passages.
NAIVE_TOP_K = 5
# Tokens kept free in the context window besides the answer (chat-template markup).
CONTEXT_MARGIN = 48
# A retrieved passage is a source only if its relevance is at least this share of the best
# one's (see DraftingService._search; the naive context keeps every passage).
MIN_SHARE_OF_BEST_RELEVANCE = 0.5
# Warning when the model said that part of the request is not covered, beside an answer.
PARTLY_COVERED = (
    "Le modèle a signalé qu'une partie de la demande n'est pas couverte par les documents : "
    "vérifiez que la réponse est complète."
)
# The model declined, the evidence holding the sentence with the figure asked for: the draft
# is that sentence, quoted (see DraftingService._finish).
KEY_SENTENCE_ONLY = (
    "Le modèle n'a pas rédigé de réponse : le projet cite la phrase des sources qui porte le "
    "chiffre demandé. Vérifiez qu'elle répond à la demande et complétez le texte."
)
# The model reached its token limit: the unfinished end of its last part was taken out.
LENGTH_REACHED = (
    "Le projet a atteint sa longueur maximale : la fin inachevée du dernier paragraphe a été "
    "retirée (ou marquée […] quand c'était le seul). Complétez-le si besoin."
)
# The model wrote nothing usable from relevant sources (only "…", empty parts): not an
# abstention (the documents may well answer), a failed generation the agent can run again.
EMPTY_DRAFT = (
    "[À COMPLÉTER : le modèle n'a rien rédigé d'exploitable à partir des sources retenues ; "
    "relancez la rédaction ou précisez la demande]"
)
EMPTY_DRAFT_WARNING = (
    "Le modèle n'a produit aucun texte exploitable : les sources retenues sont listées, "
    "relancez la rédaction ou précisez la demande."
)
# Used when neither the settings nor the retriever give a calibrated threshold.
DEFAULT_ABSTAIN_THRESHOLD = 0.35
# The fields that say what a request is about (the others address or frame the document).
TOPIC_FIELDS = ("objet", "sujet")
# A refusal names the request, cut to this many characters (never a pasted letter).
ABSTENTION_ECHO_CHARS = 160


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
    # The collections this user may read (None: no restriction); see assistant.auth.
    allowed_collections: list[str] | None = None
    # A resident's pasted letter, apart from the agent's request: retrieval searches its
    # questions, the prompt shows them (not the whole letter), a refusal never echoes it.
    letter: str = ""


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
    raw_answer: str = ""  # the model's text as generated (what a follow-up sends back)
    parent_id: str | None = None  # the draft this one revises
    stopped: bool = False  # the user stopped the generation: the answer is partial
    warnings: list[str] = field(default_factory=list)  # French notes for the agent
    header: str = (
        ""  # the template's header filled from the fields (written before the model's text)
    )
    footer: str = ""  # the template's footer filled from the fields (written after it)
    # Failed checks of the model's text (see assistant.verify), each also marked in ``answer``
    # as "[À VÉRIFIER : reason]": {"partie": index, "type": kind, "detail": French reason}.
    checks: list[dict[str, Any]] = field(default_factory=list)
    structured: bool = False  # the model's part was generated under the JSON schema
    schema: dict[str, Any] | None = None  # that schema, as given to the engine (None: free text)

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
            "parent_id": self.parent_id,
            "stopped": self.stopped,
            "warnings": self.warnings,
            "points_a_verifier": len(self.checks),
            "verification": self.checks,
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


class SearchBackend(Protocol):
    """What the service needs from :class:`assistant.retrieval.Retriever`."""

    def search(
        self,
        query: str,
        collections: list[str] | None = None,
        k: int = 6,
        doc_types: list[str] | None = None,
        mode: Any = "hybrid",
        allowed: Sequence[str] | None = None,
    ) -> list[Hit]: ...


# --- pure helpers (tested directly) ---------------------------------------------------------------

# "[1]", "[1, 2]", "[1 et 3]", "[1-3]", "[source 2]", "[Source n° 2]".
_CITE = re.compile(
    r"\[\s*(?:(?:sources?|r[ée]f(?:[ée]rences?)?\.?)\s*(?:n[°o]\s*)?)?"
    r"(\d{1,3}(?:\s*(?:,|;|et|and|-|–)\s*\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
# A source header echoed by the model, "[SOURCE 2 — fichier.pdf, page 3]": becomes "[2]".
_ECHO_HEADER = re.compile(
    r"(?:<<|‹‹|\[)\s*SOURCE\s+(\d{1,3})\b[^\]>›\n]{0,320}(?:>>|››|\])", re.IGNORECASE
)
_ECHO_END = re.compile(r"(?:<<|‹‹)\s*FIN\s+SOURCE\s+\d{1,3}\s*(?:>>|››)", re.IGNORECASE)


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:,|;|\bet\b|\band\b)\s*", group):
        bounds = re.split(r"\s*[-–]\s*", part.strip())
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            a, b = int(bounds[0]), int(bounds[1])
            out.extend(range(a, b + 1) if 0 < b - a < 10 else (a, b))
        elif part.strip().isdigit():
            out.append(int(part))
    return out


def map_citations(text: str, valid: Sequence[int]) -> tuple[str, list[int], list[int]]:
    """Normalise the citations of ``text`` to ``[n]`` marks, drop the ones matching no source.

    Returns ``(text, cited, invalid)``: ``cited`` in order of first use, ``invalid`` sorted.
    """
    allowed = set(valid)
    cited: dict[int, None] = {}
    invalid: set[int] = set()
    text = _ECHO_END.sub("", text)
    text = re.sub(r"\[\[(\d{1,3})\]\]", r"[\1]", text)  # "[[2]]" written by the model
    text = _ECHO_HEADER.sub(lambda m: f"[{m.group(1)}]", text)

    def fix(match: re.Match[str]) -> str:
        numbers = _numbers(match.group(1))
        keep = [n for n in dict.fromkeys(numbers) if n in allowed]
        invalid.update(n for n in numbers if n not in allowed)
        for n in keep:
            cited.setdefault(n, None)
        return "".join(f"[{n}]" for n in keep) or "\x00"

    text = _CITE.sub(fix, text)
    text = re.sub(r"[ \t]*\x00", "", text)  # a mark with no valid source goes, with its space
    return text, list(cited), sorted(invalid)


def search_queries(request: DraftRequest) -> list[str]:
    """What retrieval searches for a request: the request with its ``objet``/``sujet``, the
    ``objet`` alone, then, with a pasted letter, each of the letter's questions
    (:func:`questions_of`), each with the codes' names for its terms
    (:func:`assistant.textnorm.with_equivalents`). The hits are merged, each passage keeping
    its best relevance."""
    subject = " ".join(
        request.fields.get(name, "") for name in TOPIC_FIELDS if request.fields.get(name)
    )
    queries = [f"{request.request} {subject}".strip()]
    if subject:  # the topic alone: the request's own words ("Répondre à M. X qui…") are noise
        queries.append(subject)
    if request.letter.strip():
        queries += [f"{q} {subject}".strip() for q in questions_of(request.letter)]
    # Each with the codes' names for the terms it uses (« préfet »: « représentant de l'État »).
    return [with_equivalents(q) for q in dict.fromkeys(queries) if q]


_HEADING_ARTICLE = re.compile(r"Article\s+[LRD]\.?\s?\d+(?:-\d+)+")


def merge_passages(hits: Sequence[Hit]) -> list[Hit]:
    """The hits of one document page as one passage: their texts joined in the document's order
    (``chunk_index``, a text given twice kept once), placed where its best hit ranked. The
    evidence is then chosen across the page's retrieved chunks at once (the key sentence of a
    fiche is often in another chunk than the one that ranked first), each document costs one
    source header, and it gets one
    number."""
    groups: dict[tuple[str, str, int | None], list[Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.collection, hit.source, hit.page), []).append(hit)
    merged: list[Hit] = []

    def order(h: Hit) -> int:
        value = h.metadata.get("chunk_index")
        return int(value) if isinstance(value, int) else 1 << 30

    for group in groups.values():
        seen: set[str] = set()
        texts: list[str] = []
        for h in sorted(group, key=order):
            if h.text in seen:
                continue
            seen.add(h.text)
            text = h.text
            first = text.split("\n", 1)[0].strip()
            # A chunk opens with its section's title as a plain line: marked as a title, so
            # that the evidence counts its words for the lines under it and does not show it.
            titled = first and h.heading and h.heading.strip().endswith(first)
            path = (h.heading or "").strip()
            if (
                " > " in path
                and h.metadata.get("doc_type") != LEGAL_DOC_TYPE
                and not _HEADING_ARTICLE.search(path)
            ):
                # A fiche's section under its case (« Vous avez une lettre de radiation >
                # Recours »): the whole path is the lines' title, so that the case's words
                # count for them. K14's « radié » reply was given the « lettre de refus »
                # case's delays, whose lines share as many words with the request.
                body = text.partition("\n")[2] if titled else text
                text = f"### {path}\n{body}" if body else f"### {path}"
            elif titled and len(first) < 120 and not _HEADING_ARTICLE.match(first):
                text = "### " + text
            # A chunk cut inside a code article keeps its number (its heading holds it): without
            # it, its lines would take the previous chunk's article once joined.
            article = _HEADING_ARTICLE.search(h.heading or "")
            if article and not re.match(r"\W*Article\b", text):
                text = f"{article.group(0)}\n{text}"
            texts.append(text)
        # The heading that applies to the joined text's first lines is its first chunk's (in
        # the document's order), not the best hit's: the front matter of a code merged with
        # « Article L411-2 » took that number (and was shown as the article's first sentence).
        lead = min(group, key=order).heading
        meta = {**group[0].metadata, "lead_heading": lead}
        merged.append(replace(group[0], text="\n".join(texts), metadata=meta))
    return merged


# The legal basis of an act or a note (see DraftingService._with_legal_basis): the document
# type of the legal texts (assistant.loaders.guess_doc_type), how many of their passages are
# searched, and how many of the best one's document are kept (merged: one source).
LEGAL_DOC_TYPE = "loi"
LEGAL_BASIS_K = 3
LEGAL_BASIS_PASSAGES = 2
# Neighbouring chunks read around each retrieved one (see DraftingService._with_neighbours).
NEIGHBOUR_SPAN = 2
NEIGHBOUR_DOCUMENTS = 3


def _form(template: Template) -> str:
    return "acte" if template.form == "acte" else "prose"


def _decision(template: Template) -> str:
    return template.decision or "DÉCIDE :"


def _relevance(hit: Hit) -> float:
    value = hit.metadata.get("relevance")
    return float(value) if isinstance(value, int | float) else float(hit.score)


def states_figures(sentence: str, texts: Sequence[str]) -> bool | None:
    """Whether ``texts`` state a figure of ``sentence``: one of its numbers (by
    :func:`assistant.verify.figure_keys`, units aside) or one of its figures in words
    (« majorité », « gratuit »). ``None`` when ``sentence`` holds no figure."""
    numbers = {k for k in figure_keys([sentence]) if k.startswith("n:") and UNIT_SEP not in k}
    words = figure_words(sentence)
    if not numbers and not words:
        return None
    if numbers & figure_keys(texts):
        return True
    folded = fold(" ".join(texts))
    return any(w in folded for w in words)


def source_texts(sources: Sequence[Citation]) -> dict[int, str]:
    """Each source's title and shown text by its number (``{n: "title\\ntext"}``): what a
    paragraph's figures are checked against. A source's figures include its title's: D01 named
    « la délibération n°2014/137 », whose number only its source's title (« … n2014-137
    modification nombre adjoints ») gives, and was marked as unsupported; D05's « articles
    L. 2123-1 et suivants » is the CGCT chapter's title. ``assistant eval drafts`` scores
    with the same texts, or it counts what the draft rightly left unmarked."""
    return {c.n: f"{c.title}\n{c.text}" for c in sources}


def with_key_part(
    structure: Structure, key: tuple[int, Line] | None
) -> tuple[Structure, Part | None]:
    """``structure`` with the key sentence quoted as its last paragraph (or considérant) when
    its parts leave the sentence's figures out, and that part; ``(structure, None)`` when there
    is no key sentence, when the parts state one of its figures, or when no part has text (an
    empty draft stays empty). Added to 7 of the 59 drafts of the ninth pass; in 3 of them it
    states the 4 expected facts the model had left out or miswritten (docs/eval/drafts.md)."""
    if key is None:
        return structure, None
    texts = [p.text for p in structure.parts() if p.text.strip(" .…")]
    if not texts or states_figures(key[1].text, texts) is not False:
        return structure, None
    part = quoted_part(key[0], key[1].text, key[1].article, structure.form)
    if structure.form == "acte":
        return replace(structure, considerants=[*structure.considerants, part]), part
    return replace(structure, paragraphs=[*structure.paragraphs, part]), part


def without_filler(structure: Structure, key_part: Part | None = None) -> Structure:
    """``structure`` without its paragraphs made only of filler (:func:`filler_only`: « il est
    important de comprendre… », « Voici les informations… »), when a paragraph that says
    something remains (the quoted key sentence ``key_part`` counts): R01's reply opened with
    such a paragraph above the quoted rate. An act's parts and a draft made only of filler are
    returned as they are (:func:`assistant.structure.drop_filler` then keeps the text)."""
    if structure.form == "acte":
        return structure
    kept = [p for p in structure.paragraphs if p is key_part or not filler_only(p.text)]
    if len(kept) == len(structure.paragraphs) or not kept:
        return structure
    return replace(structure, paragraphs=kept)


def against_key(text: str, key: tuple[int, Line]) -> list[Issue]:
    """A part's figures that the key sentence contradicts: same unit, another number (« 3 000
    € » where the sentence says « 23 000 € »), in a part sharing at least two terms with it. The
    figure may be in another source shown (Q03's « 3 000 € », a subsidy of a council's list),
    so the check of cited sources lets it through; the agent is told which figure the key
    sentence gives."""
    n, line = key
    # Words, not numbers: D04's « la subvention de 75 000 € est soumise au code » shared
    # « subvention » and « 000 » with « Lorsque la subvention dépasse 23 000 €… » and was
    # marked, though 75 000 € is the subsidy its source grants, not the threshold.
    # Nor the figure's unit: K14's « pourvoi en cassation … dans un délai de 10 jours » shared
    # only « décision » and « jours » with the registration case's « dans les 7 jours », and
    # its right « 10 jours » was marked.
    theirs_terms = {t for t in light_terms(line.text) if t.isalpha()} - _UNIT_TERMS
    issues: list[Issue] = []
    # Sentence by sentence: the demo's « Pour une location de la vaisselle (par couvert), le
    # coût est de 1,20 € » was marked against « Dépôt de garantie : 800 € » because another
    # sentence of its paragraph spoke of the deposit.
    for sentence in _SENTENCES_OF_PART.split(text):
        if len(set(light_terms(sentence)) & theirs_terms) < 2:
            continue
        for written, theirs in differing_figures(sentence, line.text):
            if all(i.value != written for i in issues):
                detail = f"« {written} » : la source n° {n} indique « {theirs} »"
                issues.append(Issue("chiffre", detail, written))
    return issues


# The units a figure is counted in: words a part shares with the key sentence because both hold
# a figure, not because they state the same thing.
_UNIT_TERMS = frozenset(
    light_terms("jour jours mois an ans année années semaine semaines heure heures euro euros")
)
# Sentence ends within a part, for :func:`against_key` (a decimal comma or « 1,20 € » is no end).
_SENTENCES_OF_PART = re.compile(r"(?<=[.!?;])\s+(?=[A-ZÀ-Ý«])")


_GAP = "[…]"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " […]"


def cited_excerpt(answer: str, citation: Citation, limit: int) -> str:
    """What to show under a cited source: its lines that the paragraphs of ``answer`` citing
    it (``[n]``; the program writes a part's marks at its end) restate best, by shared
    :func:`assistant.textnorm.light_terms`, in their order in the source, joined by « […] »,
    within ``limit`` characters, none sharing under half the best one's terms; the start of
    the source text when no line shares a term. The demo's first answer (« Le quorum du
    conseil municipal est de quatorze membres [1]. ») had its source shown as « […] Article
    10 – Présidence Le maire… », the passage's start, and not the line that says « soit
    quatorze conseillers ».

    ``citation.text``: the evidence shown to the model, a sentence a line, gaps as « […] »
    (:func:`assistant.evidence.render_lines`). Returns one line of text."""
    mark = f"[{citation.n}]"
    terms = {t for par in answer.splitlines() if mark in par for t in light_terms(par)}
    lines = [" ".join(ln.split()) for ln in citation.text.splitlines()]
    lines = [ln for ln in lines if ln and ln != _GAP]
    shared = [len(terms & set(light_terms(ln))) for ln in lines]
    if not lines or max(shared) == 0:
        return _clip(" ".join(citation.text.split()), limit)
    chosen: list[int] = []
    size = 0
    best = max(shared)
    for i in sorted(range(len(lines)), key=lambda i: (-shared[i], i)):
        # A line sharing under half the best line's terms is incidental (the demo's « Les
        # demandes d'autorisation d'urbanisme… » under a letter on the salle des fêtes).
        if 2 * shared[i] < best or (chosen and size + len(lines[i]) + 5 > limit):
            break
        chosen.append(i)
        size += len(lines[i]) + 5
    chosen.sort()
    text = _clip(" […] ".join(lines[i] for i in chosen), limit)
    if chosen[0] > 0 or citation.text.lstrip().startswith(_GAP):
        text = f"{_GAP} {text}"
    if chosen[-1] < len(lines) - 1 and not text.endswith(_GAP):
        text = f"{text} {_GAP}"
    return text


def _citation(n: int, hit: Hit, text: str) -> Citation:
    return Citation(
        n=n,
        source=hit.source,
        page=hit.page,
        heading=hit.heading,
        title=hit.title,
        text=text,
        collection=hit.collection,
        score=_relevance(hit),
    )


def _injection_warning(n: int, source: str, removed: int) -> str:
    return (
        f"La source [{n}] ({source}) contient {removed} passage(s) ressemblant à une consigne "
        "adressée à l'assistant : ils ont été retirés et n'ont pas été suivis."
    )


def _block(c: Citation) -> SourceBlock:
    return SourceBlock(n=c.n, source=c.source, page=c.page, title=c.title, text=c.text)


_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_HEADING = re.compile(r"^(?:#{1,6}\s+|>\s?)", re.MULTILINE)  # "## Titre", "> À noter"


def plain_text(text: str) -> str:
    """Drop Markdown emphasis and heading marks that small models add despite the rules: an
    administrative document is plain text (and goes to DOCX/ODT as such)."""
    return _HEADING.sub("", _BOLD.sub(r"\2", text))


def drop_echo(body: str, header: str, label: str) -> str:
    """Remove, at the start of the model's text, a copy of the header the program already wrote
    and of the request line ("Demande (Courrier) : ..."): small models echo their prompt."""
    text = body.lstrip()
    flat = " ".join(header.split())
    if flat and " ".join(text.split()).startswith(flat):
        # Cut after as many characters as the header's words take in ``text``.
        words = len(flat.split())
        for seen, match in enumerate(re.finditer(r"\S+", text), start=1):
            if seen == words:
                text = text[match.end() :].lstrip()
                break
    prefix = f"Demande ({label}) :"
    if text.startswith(prefix):
        text = text.split("\n", 1)[1].lstrip() if "\n" in text else ""
    return text


# Parts of a document the program writes itself (header/footer of the template). A small model
# writes them again anyway (a politeness formula under the salutation, a second signature):
# a body line of one of these kinds is dropped when the frame already holds a line of that kind.
# Hand-written: these are fixed formulas of French administrative writing, no library has them.
_FRAME_KINDS = {
    "salutation": re.compile(
        r"^(?:madame|monsieur|mesdames|messieurs|cher|chere|chers|cheres)\b[^.;:]{0,80},$"
    ),
    "politeness": re.compile(
        r"(?:vous prie|vous prions|veuillez)\s+d'agreer|salutations distinguees"
        r"|l'assurance de (?:ma|mes|notre|nos) |^(?:bien |tres )?cordialement\b"
        r"|^je vous remercie (?:de|pour) votre attention"
        r"|^avec (?:mes|nos) (?:sinceres )?salutations"
    ),
    "signature": re.compile(
        r"^(?:\[?signature\]?|(?:p\.?\s?o\.?\s+)?(?:le|la)\s+(?:\w+\s+){0,2}?"
        r"(?:maire|president|presidente|adjoint|adjointe|directeur|directrice)\b[^.]{0,40})$"
    ),
    "vote": re.compile(r"^(?:vote|resultat du vote)\s*:"),
    "done_at": re.compile(r"^fait\s+(?:et delibere|a\b|le\b)"),
    "execution": re.compile(r"charge[es]?\b.{0,80}\bexecution\b"),
    "recourse": re.compile(r"faire l'objet d'un recours|\bdelais? de recours\b"),
}


def _frame_line(line: str) -> str:
    return " ".join(fold(line).replace("’", "'").split()).strip(" *_")


def drop_frame(body: str, header: str, footer: str) -> str:
    """Remove from the model's body the lines the program writes itself: a copy of a header or
    footer line, and any salutation, politeness formula, vote, "Fait à" or signature line when
    the frame already holds one. Blank-line structure of the rest is kept."""
    frame = [_frame_line(ln) for ln in f"{header}\n{footer}".splitlines() if ln.strip()]
    if not frame:
        return body
    kinds = [k for k, rx in _FRAME_KINDS.items() if any(rx.search(ln) for ln in frame)]
    exact = set(frame)
    lines = body.splitlines()
    if "signature" in kinds:  # a signature block near the end goes with the names under it
        tail = [i for i, ln in enumerate(lines) if ln.strip()][-4:]
        sign = next(
            (i for i in tail if _FRAME_KINDS["signature"].search(_frame_line(lines[i]))), None
        )
        if sign is not None:
            lines = lines[:sign]
    kept: list[str] = []
    for line in lines:
        folded = _frame_line(line)
        if folded and (
            folded in exact
            or any(len(folded) < 300 and _FRAME_KINDS[k].search(folded.rstrip(" .")) for k in kinds)
        ):
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


_NUMBERED_ITEM = re.compile(r"^\s*(?:\d{1,2}|[a-z])[.)]\s+(?=\S)")
_BULLET_ITEM = re.compile(r"^\s*[-*•–]\s+(?=\S)")


def drop_paragraphs_with(body: str, phrase: str) -> tuple[str, bool]:
    """``body`` without its paragraphs (blank-line separated) that contain ``phrase``."""
    paragraphs = re.split(r"\n\s*\n", body)
    kept = [p for p in paragraphs if fold(phrase) not in fold(p)]
    return "\n\n".join(kept).strip(), len(kept) < len(paragraphs)


_ORDINAL = re.compile(
    r"^(\s*Article\s+)(\d{1,2})(?:st|nd|rd|th|er|ère|e|ème|eme|°)?(?=\s*[:.\-–])", re.IGNORECASE
)
_EMPTY_VISA = re.compile(r"^\s*Vu\s*((?:\[\d{1,3}\]\s*)*)[;,.]?\s*$")
_INTRO = re.compile(r"^\s*(Vu|Considérant(?: que)?)\s*:?\s*$", re.IGNORECASE)


_FILE_NAME = re.compile(r"\ble texte de\s+|\b[\w./-]+\.(?:md|pdf|txt|docx?|odt|html?)\b", re.I)
_NO_ARTICLE = re.compile(r"\b(notamment (?:son|ses) articles?)\s*(?=\[\d|;|$)")


def _visa_gaps(line: str) -> str:
    """A visa names a text: a file name the model took from a source header, an article
    without its number or a copied "…" is marked to complete instead."""
    if _FILE_NAME.search(line):
        marks = " ".join(re.findall(r"\[\d{1,3}\]", line))
        return f"Vu [À COMPLÉTER : texte visé]{' ' + marks if marks else ''} ;"
    line = line.replace("…", "[À COMPLÉTER]")
    return _NO_ARTICLE.sub(r"\1 [À COMPLÉTER] ", line).replace("]  [", "] [")


def as_act(body: str) -> str:
    """Visas, considérants and articles in their French form: "Article 2 :" (the coder model
    writes "Article 2nd"), "Article 1er :", a visa without a text becomes one to complete,
    and a "Considérant que :" list becomes one "Considérant que … ;" line per item."""
    out: list[str] = []
    intro = ""
    for line in body.splitlines():
        head = _INTRO.match(line)
        if head:
            intro = "Vu" if head.group(1).lower() == "vu" else "Considérant que"
            continue
        bullet = _BULLET_ITEM.match(line)
        if bullet and intro:
            item = line[bullet.end() :].strip().rstrip(" ;.,")
            if intro == "Considérant que" and item[:1].isupper() and not item.split()[0].isupper():
                item = item[0].lower() + item[1:]
            out.append(f"{intro} {item} ;")
            continue
        if line.strip():
            intro = ""
        visa = _EMPTY_VISA.match(line)
        if visa:
            marks = visa.group(1).strip()
            line = f"Vu [À COMPLÉTER : texte visé]{' ' + marks if marks else ''} ;"
        elif line.lstrip().startswith("Vu "):
            line = _visa_gaps(line)
        article = _ORDINAL.match(line)
        if article:
            number = "1er" if article.group(2) == "1" else article.group(2)
            line = article.group(1) + number + line[article.end() :]
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def as_prose(body: str) -> str:
    """A letter is prose: numbered items become paragraphs, and bullet items are folded into
    the sentence that introduces them ("pour : a, b, ou c."). The 1.5B model copies the lists
    of its sources despite the instructions; a letter with bullets is not sendable."""
    out: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if not items:
            return
        joined = ""
        for item in items:  # "pour : a, b, ou c." (no comma after a colon)
            sep = "" if not joined else " " if joined.endswith(":") else ", "
            joined += sep + item.rstrip(" ,;.")
        joined += "" if joined.endswith(":") else "."
        intro = next((i for i in range(len(out) - 1, -1, -1) if out[i].strip()), None)
        if intro is not None and (out[intro].rstrip().endswith(":") or out[-1].strip()):
            del out[intro + 1 :]  # "incluent :" + blank line + items = one sentence
            out[intro] = out[intro].rstrip() + " " + joined
        else:
            out.append(joined)
        out.append("")  # the list was a paragraph of its own
        items.clear()

    for line in body.splitlines():
        bullet = _BULLET_ITEM.match(line)
        if bullet:
            items.append(line[bullet.end() :].strip())
            continue
        if items and not line.strip():
            continue  # a blank line inside a list
        flush()
        numbered = _NUMBERED_ITEM.match(line)
        if numbered:
            line = line[numbered.end() :]
            intro = next((i for i in range(len(out) - 1, -1, -1) if out[i].strip()), None)
            if intro is not None and out[intro].rstrip().endswith(":"):
                del out[intro + 1 :]  # "Voici les conditions :" + first item = one sentence
                out[intro] = out[intro].rstrip() + " " + line.strip()
                continue
            if out and out[-1].strip():
                out.append("")
        out.append(line)
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _strip_mentions(text: str, common: CommonText) -> str:
    for mention in (common.mention_ia, common.mention_sans_sources):
        text = text.replace(mention, "")
    return text.strip()


# --- the service ------------------------------------------------------------------------------


@dataclass
class _Plan:
    """Everything decided before generation."""

    request: DraftRequest
    template: Template | None
    messages: list[Message]
    sources: list[Citation]
    max_tokens: int
    budget: int = 0
    context_tokens: int = 0
    retrieval_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    parent_id: str | None = None
    header: str = ""
    footer: str = ""
    # The JSON schema the model's part is generated under (None: free text, e.g. no retrieval).
    schema: dict[str, Any] | None = None
    # The evidence's sentence holding the figure asked for, and its source's number: quoted in
    # the draft when the model leaves its figures out (:func:`with_key_part`).
    key: tuple[int, Line] | None = None
    # Whether the request asks for a kind of figure (a delay, an amount, a count): only then
    # does the key sentence answer it when the model declines (K11, « Le maire peut-il refuser
    # de célébrer lui-même un mariage ? », got « … votre livret de famille en cas de mariage
    # ou de naissance du 1er enfant »: any figure, when none is asked).
    asks_figure: bool = False
    # Each shown source's lines, with their code article and the source's title, by number:
    # the legal basis a prose part restates (:func:`assistant.structure.with_legal_basis`).
    evidence: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)


class DraftingService:
    """Retrieve, fit the context, prompt, stream and cite. One instance serves all users."""

    def __init__(
        self,
        settings: Settings,
        chat_model: ChatModel,
        retriever: SearchBackend | None,
        templates: Templates,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.chat_model = chat_model
        self.retriever = retriever
        self.templates = templates
        self.audit = audit

    # -- figures ---------------------------------------------------------------------------------

    @property
    def abstain_threshold(self) -> float:
        if self.settings.abstain_threshold > 0:
            return self.settings.abstain_threshold
        value = getattr(self.retriever, "abstain_threshold", None)
        return float(value) if isinstance(value, int | float) else DEFAULT_ABSTAIN_THRESHOLD

    def budget_for(self, template: Template) -> int:
        """Max uncached prompt tokens (the variable part) for ``template``; 0 = no budget
        (``settings.context_budget = 0`` turns every type's budget off)."""
        if self.settings.context_budget == 0:
            return 0
        return template.budget_tokens or self.settings.context_budget

    def _n_ctx(self) -> int:
        value = getattr(self.chat_model, "n_ctx", None)
        return int(value) if isinstance(value, int) else self.settings.n_ctx

    def _count(self, text: str) -> int:
        return self.chat_model.count_tokens(text)

    # -- public ----------------------------------------------------------------------------------

    def draft(self, request: DraftRequest) -> Draft:
        """Run :meth:`stream` to the end and return the final draft."""
        final: Draft | None = None
        for event in self.stream(request):
            if event.kind == "done":
                final = event.draft
        if final is None:  # pragma: no cover - stream always ends with "done"
            raise RuntimeError("drafting stream ended without a draft")
        return final

    def check_limits(self, request: DraftRequest) -> None:
        """Refuse a request or a field longer than ``max_request_chars`` (French message)."""
        limit = self.settings.max_request_chars
        if len(request.request) > limit:
            raise DraftingError(
                f"Demande trop longue : {len(request.request)} caractères, au plus {limit}. "
                "Raccourcissez-la (les documents de référence n'ont pas à y être recopiés : "
                "l'assistant les cherche lui-même)."
            )
        for name, value in request.fields.items():
            if len(value) > limit:
                raise DraftingError(
                    f"Champ « {name} » trop long : {len(value)} caractères, au plus {limit}. "
                    "Raccourcissez-le."
                )

    def stream(self, request: DraftRequest) -> Generator[DraftEvent, None, None]:
        self.check_limits(request)
        start = time.monotonic()
        draft_id = uuid.uuid4().hex[:12]
        if request.previous is not None:
            if request.new_sources:
                yield DraftEvent("status", text="Nouvelle recherche dans les documents…")
            plan = self._plan_revision(request)
        elif not request.retrieval:
            plan = self._plan_plain(request)
        else:
            yield DraftEvent("status", text="Recherche dans les documents…")
            template = self.templates.get(request.doc_type).for_request(
                request.request, request.letter, request.fields.get("references", "")
            )
            missing = template.check_fields(request.fields)
            hits, retrieval_s = self._search(request, template)
            relevant = [h for h in hits if _relevance(h) >= self.abstain_threshold]
            if not relevant:
                draft = self._abstention(draft_id, request, hits, retrieval_s, start)
                self._record(draft)
                yield DraftEvent("done", text=draft.answer, draft=draft)
                return
            # The naive context (no budget) takes the first passages as retrieved, unfiltered.
            budgeted = self.budget_for(template) > 0
            if budgeted:
                relevant = self._with_legal_basis(request, template, relevant)
                relevant = self._with_neighbours(relevant)
            plan = self._plan_fresh(request, template, relevant if budgeted else hits)
            plan.retrieval_s = retrieval_s
            plan.warnings[:0] = [
                f"Champ « {f.label} » non renseigné : le projet le laisse à compléter."
                for f in missing
            ]
        if plan.sources:
            yield DraftEvent(
                "sources",
                text=f"{len(plan.sources)} passage(s) retenu(s)",
                sources=list(plan.sources),
            )
        yield DraftEvent("status", text="Rédaction en cours…")
        yield from self._generate(draft_id, plan, start)

    def warm_up(self, doc_types: Sequence[str] | None = None) -> None:
        """Let the retriever prepare what its first search would (the query bank's embedding),
        then evaluate each template's fixed part once so that its first request is fast (with
        a prompt cache, see :func:`enable_prompt_cache`). Measured with the default models on
        2 cores (docs/eval/drafts.md, sixth pass): 29 s for the seven types, after which the
        first courrier's first token came after 8.5 s instead of 13.3 s, the first
        délibération's after 8.9 s instead of 12.0 s. Raises what the embedder and the chat
        model raise (:class:`AssistantError` subclasses)."""
        self._warm_retriever()
        self._warm_templates(doc_types)

    def warm_up_in_background(self) -> threading.Thread:
        """:meth:`warm_up` for a server: the retriever's part now, in the caller's thread (the
        embedder serves one thread at a time, and the first search needs it), a failure (no
        embedder) left for that search to explain on the agent's screen; the templates' part in
        a daemon thread, so that the server answers at once. A request arriving meanwhile waits
        for the model like any other (the chat model's queue), at most one template's fixed
        part. A failure there (a missing model) is logged and left for the first request to
        explain. Returns the started thread."""
        with contextlib.suppress(AssistantError):
            self._warm_retriever()

        def run() -> None:
            try:
                self._warm_templates()
            except Exception as err:  # a warm-up never stops the server
                log.warning("template warm-up stopped: %s", err)

        thread = threading.Thread(target=run, name="warm-up", daemon=True)
        thread.start()
        return thread

    def _warm_retriever(self) -> None:
        warm = getattr(self.retriever, "warm_up", None)
        if warm is not None:
            warm()

    def _warm_templates(self, doc_types: Sequence[str] | None = None) -> None:
        for name in doc_types or self.templates.names():
            template = self.templates.get(name)
            messages = [
                {"role": "system", "content": render_system(template, self.templates.common)},
                {"role": "user", "content": self.templates.common.entete_sources},
            ]
            for _ in self.chat_model.stream(messages, max_tokens=1, temperature=0.0):
                pass

    # -- planning --------------------------------------------------------------------------------

    def _search(self, request: DraftRequest, template: Template) -> tuple[list[Hit], float]:
        """Hits for the request (and its ``objet``); with a pasted letter, also for each of the
        letter's questions, within the documents the request found, merged (a passage keeps
        its best relevance), best first."""
        if self.retriever is None:
            raise DraftingError(
                "La recherche documentaire n'est pas disponible dans ce mode. Relancez sans "
                "--no-retrieval."
            )
        t0 = time.monotonic()
        best: dict[tuple[str, int | None, str], Hit] = {}
        # The agent's request and objet say what the reply is about; a question of the
        # resident's letter chooses passages within the documents they found (« Quels papiers
        # faut-il apporter à la mairie ? » alone finds the attestation d'accueil's fiche).
        agents = set(search_queries(replace(request, letter="")))
        topic: set[tuple[str, str]] = set()
        for query in search_queries(request):
            for hit in self.retriever.search(
                query,
                collections=request.collections or None,
                k=self.settings.top_k,
                allowed=request.allowed_collections,
            ):
                document = (hit.collection, hit.source)
                if query in agents:
                    topic.add(document)
                elif document not in topic:
                    continue
                key = (hit.source, hit.page, hit.text[:200])
                if key not in best or _relevance(hit) > _relevance(best[key]):
                    best[key] = hit
        hits = sorted(best.values(), key=_relevance, reverse=True)
        if hits and self.budget_for(template) > 0:  # the naive context keeps every passage
            # A passage far less relevant than the best one is what the small model turns
            # into an unrelated paragraph (a considérant taken from another deliberation's
            # closing words). Measured on the 24 drafting requests, expected facts present in
            # the prompt: 35/43 with no cut, at 0.5 and at 0.6 of the best (3 and 4 sources
            # fewer), 33/43 at 0.7. Before the neighbours are added: a cut after them
            # (neighbours carry their passage's relevance) measured 33/43 at 0.5.
            floor = _relevance(hits[0]) * MIN_SHARE_OF_BEST_RELEVANCE
            hits = [h for h in hits if _relevance(h) >= floor]
        return hits, time.monotonic() - t0

    def _with_legal_basis(
        self, request: DraftRequest, template: Template, hits: list[Hit]
    ) -> list[Hit]:
        """``hits`` with, for a type that rests on a legal text (``template.legal_basis``: acts,
        notes), the best passages of the legal texts for the request second, after the best hit
        (moved there when the search had them lower). The general search ranks a fiche or
        another town's deliberation above the code article an act must cite (« réglementer le
        bruit la nuit » finds the fiche, and L. 2212-2 falls under the relevance cut), and a
        visa is written only from a legal text the evidence holds.

        Searched with the request's first query among the passages of type
        :data:`LEGAL_DOC_TYPE`; kept when relevant themselves (the abstention threshold: no
        code article for a request the codes do not cover), at most
        :data:`LEGAL_BASIS_PASSAGES` of the best one's document (another code's article is
        more often noise: « délégation de fonctions » also finds the adjoints' allowances).
        Called after the abstention decision: a legal text never makes an off-corpus request
        answerable. A failed search leaves ``hits`` as they are (the legal basis is a bonus)."""
        if not template.legal_basis or self.retriever is None:
            return hits
        queries = search_queries(request)
        if not queries:  # nothing to search for (an empty request)
            return hits
        try:
            found = self.retriever.search(
                queries[0],
                collections=request.collections or None,
                k=LEGAL_BASIS_K,
                doc_types=[LEGAL_DOC_TYPE],
                allowed=request.allowed_collections,
            )
        except AssistantError as exc:
            log.warning("legal basis search failed: %s", exc)
            return hits
        found = [h for h in found if _relevance(h) >= self.abstain_threshold]
        if not found:
            return hits
        best = (found[0].collection, found[0].source)
        legal = [h for h in found if (h.collection, h.source) == best][:LEGAL_BASIS_PASSAGES]
        ids = {h.id for h in legal}
        first = [h for h in hits[:1] if h.id not in ids]
        return first + legal + [h for h in hits[1:] if h.id not in ids]

    def _with_neighbours(self, hits: list[Hit]) -> list[Hit]:
        """``hits`` with, for the passages of the first :data:`NEIGHBOUR_DOCUMENTS` documents,
        the chunks around them on the same page (:data:`NEIGHBOUR_SPAN` each side), at the
        relevance of the passage they surround. A fiche's answer often sits in the section next
        to the one that matched ("Durée de la concession" beside "Qu'est-ce qu'une
        concession"); the evidence (assistant.evidence) then picks the lines across them, so the
        prompt does not grow. Only with an index that gives neighbours (the local store)."""
        index = getattr(self.retriever, "index", None)
        fetch = getattr(index, "neighbours", None)
        if fetch is None:
            return hits
        out = list(hits)
        known = {h.id for h in hits}
        documents: list[tuple[str, str]] = []
        for hit in hits:
            key = (hit.collection, hit.source)
            if key not in documents:
                if len(documents) >= NEIGHBOUR_DOCUMENTS:
                    continue
                documents.append(key)
            centre = hit.metadata.get("chunk_index")
            if not isinstance(centre, int):
                continue
            try:
                around = fetch(hit.collection, hit.source, centre, NEIGHBOUR_SPAN)
            except Exception:  # the neighbours are a bonus: without them, the hits as retrieved
                return hits
            for near in around:
                if near.id in known or near.page != hit.page:
                    continue
                known.add(near.id)
                near.metadata.setdefault("relevance", _relevance(hit))
                near.score = hit.score
                out.append(near)
        return out

    def _fixed_and_limits(self, template: Template) -> tuple[str, int, int, int]:
        """The fixed system text, the answer's max tokens, the bound of the variable part (the
        template's budget, or the context window's room when there is no budget) and that
        room."""
        system = render_system(template, self.templates.common)
        max_tokens = min(template.max_tokens, self.settings.max_tokens)
        room = self._n_ctx() - self._count(system) - max_tokens - CONTEXT_MARGIN
        wanted = self.budget_for(template)
        return system, max_tokens, min(wanted, room) if wanted else room, room

    def _uncached(self, messages: list[Message], system: str) -> int:
        """Tokens of ``messages`` beyond the cached fixed part (the system message)."""
        return self.chat_model.uncached_tokens(messages, [{"role": "system", "content": system}])

    def _plan_fresh(
        self,
        request: DraftRequest,
        template: Template,
        hits: Sequence[Hit] = (),
        sources: Sequence[Citation] | None = None,
        current_draft: str | None = None,
    ) -> _Plan:
        """A new prompt: fixed system part, then the sources that fit the budget."""
        common = self.templates.common
        system, max_tokens, budget, room = self._fixed_and_limits(template)
        questions = questions_of(request.letter) if request.letter.strip() else []
        topic = " ".join(request.fields.get(n, "") for n in TOPIC_FIELDS).strip()
        addressing = [v for k, v in request.fields.items() if k not in TOPIC_FIELDS]
        query = evidence_query(request.request, topic, addressing, questions)
        warnings: list[str] = []

        def messages_for(
            blocks: list[SourceBlock], asked: Sequence[str] = questions
        ) -> list[Message]:
            user = render_user(
                template,
                common,
                blocks,
                request.request,
                request.fields,
                current_draft,
                letter_questions=asked,
            )
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]

        naive = self.budget_for(template) == 0
        base = self._uncached(messages_for([]), system)
        if questions and not naive:
            # A resident's questions do not come out of the evidence: the budget is that of
            # the request without them, plus their tokens, within the context window (three
            # long questions left a reply 194 tokens of evidence instead of about 400).
            without = self._uncached(messages_for([], ()), system)
            budget = min(room, budget + base - without)
        if base + MIN_SOURCE_TOKENS > budget:
            # The agent reads this first (a 3,417-character reply request was told to raise
            # « budget_tokens »); the administrator's setting comes after, in brackets.
            raise DraftingError(
                "La demande est trop longue : il ne resterait pas de place pour les extraits "
                f"des documents (type « {template.label} »). Résumez-la en quelques phrases ; "
                "le courrier d'un usager se colle dans le champ « Courrier de l'usager », "
                "dont l'assistant ne garde que les questions. (Administrateur : "
                f"budget_tokens dans prompts/{template.name}.toml, ou n_ctx ; {budget} "
                "jetons aujourd'hui.)"
            )
        key: tuple[int, Line] | None = None
        evidence: dict[int, list[tuple[str, str, str]]] = {}
        if sources is None:
            sources, key, evidence = self._select(
                hits, query, budget - base, warnings, naive=naive, legal_basis=template.legal_basis
            )
        chosen = list(sources)
        messages = messages_for([_block(c) for c in chosen])
        uncached = self._uncached(messages, system)
        # The per-source counts are close, not exact (markup, token merges at the joins): the
        # real total decides, and the last sources go until it fits.
        while chosen and uncached > budget:
            chosen.pop()
            messages = messages_for([_block(c) for c in chosen])
            uncached = self._uncached(messages, system)
        return _Plan(
            request=replace(request, doc_type=template.name),
            template=template,
            messages=messages,
            sources=chosen,
            max_tokens=max_tokens,
            budget=0 if naive else budget,
            context_tokens=uncached,
            warnings=warnings,
            header=render_header(template, request.fields),
            footer=render_footer(template, request.fields),
            schema=(
                schema_for(
                    template.form,
                    [c.n for c in chosen],
                    template.min_paragraphs,
                    template.article_openings,
                )
                if chosen
                else None
            ),
            key=key if key and key[0] <= len(chosen) and current_draft is None else None,
            asks_figure=bool(asked_kinds(query)),
            evidence={n: lines for n, lines in evidence.items() if n <= len(chosen)},
        )

    def _select(
        self,
        hits: Sequence[Hit],
        query: str,
        room: int,
        warnings: list[str],
        *,
        naive: bool = False,
        legal_basis: bool = False,
    ) -> tuple[list[Citation], tuple[int, Line] | None, dict[int, list[tuple[str, str, str]]]]:
        """The sources shown to the model, numbered from 1: the evidence of the best merged
        passages (:func:`assistant.evidence.share_evidence`) within ``room`` tokens, a passage
        left without evidence dropped; the key sentence of that evidence with its source's
        number (:func:`assistant.evidence.key_sentence`), or None; and each source's shown
        lines as (text, code article label, source title), by number. ``naive`` (no budget):
        the first ``NAIVE_TOP_K`` passages whole, no key sentence, no lines. A passage's
        sentences addressed to the assistant are removed, with a warning in ``warnings``.
        ``legal_basis`` (a type that rests on a legal text): the first passage of a legal text
        keeps its best sentence whatever the others score (``required`` of
        :func:`assistant.evidence.share_evidence`)."""
        if naive:
            return self._select_whole(hits, warnings), None, {}
        hits = merge_passages(hits)[:MAX_EVIDENCE_SOURCES]
        cleaned = [neutralise_instructions(hit.text) for hit in hits]
        # What a source's header costs (its number does not change the count noticeably).
        overheads = [
            self._count(render_source(SourceBlock(k + 1, h.source, h.page, h.title, ""))) + 2
            for k, h in enumerate(hits)
        ]
        passages = [
            clean_lines(
                escape_data(clean),
                str(hit.metadata.get("lead_heading", hit.heading)),
                hit.title,
            )
            for hit, (clean, _) in zip(hits, cleaned, strict=True)
        ]
        legal = [k for k, h in enumerate(hits) if h.metadata.get("doc_type") == LEGAL_DOC_TYPE]
        required = legal[:1] if legal_basis else []
        # An act or a note with no code article among its passages: the code articles its
        # first shown fiche names as its basis, as that source's last line (the visa is
        # written from it, :func:`assistant.structure.reference_visa`). Its room is kept
        # before the sentences share the rest.
        references: dict[int, str] = {}
        if legal_basis and not legal:
            for k, hit in enumerate(hits):
                if refs := self._references(hit):
                    references[k] = best_references(refs, query)[0].line()
        reserve = max((self._count(r) + 1 for r in references.values()), default=0)
        texts = share_evidence(passages, query, room - reserve, self._count, overheads, required)
        for k, text in enumerate(texts):
            if text and k in references:
                texts[k] = f"{text}\n{references[k]}"
                break
        found = key_sentence(passages, texts, query, QUOTE_MAX_WORDS)
        chosen: list[Citation] = []
        key: tuple[int, Line] | None = None
        lines: dict[int, list[tuple[str, str, str]]] = {}
        for k, (hit, (_, removed), text) in enumerate(zip(hits, cleaned, texts, strict=True)):
            if not text.strip():
                continue
            n = len(chosen) + 1
            if removed:
                warnings.append(_injection_warning(n, hit.source, removed))
            chosen.append(_citation(n, hit, text))
            lines[n] = [(ln.text, ln.article, hit.title) for ln in passages[k] if ln.text in text]
            if found and found[0] == k:
                key = (n, found[1])
        return chosen, key, lines

    def _references(self, hit: Hit) -> list[Reference]:
        """The code articles the document of ``hit`` names in its « Références » section
        (:func:`assistant.evidence.references_of`), read from all of its chunks; ``[]`` for a
        legal text itself, or with an index that cannot give a document's chunks (a remote
        one)."""
        if hit.metadata.get("doc_type") == LEGAL_DOC_TYPE:
            return []
        fetch = getattr(getattr(self.retriever, "index", None), "neighbours", None)
        centre = hit.metadata.get("chunk_index")
        if fetch is None or not isinstance(centre, int):
            return references_of(hit.text)
        try:
            chunks = fetch(hit.collection, hit.source, centre, DOCUMENT_SPAN)
        except Exception:  # the references are a bonus: without them, the visa to complete
            return references_of(hit.text)
        found = [r for c in chunks for r in references_of(f"{c.heading}\n{c.text}")]
        return list(dict.fromkeys(found))

    def _select_whole(self, hits: Sequence[Hit], warnings: list[str]) -> list[Citation]:
        """The first ``NAIVE_TOP_K`` passages whole; the caller drops what overflows the
        context window."""
        chosen: list[Citation] = []
        for hit in hits[:NAIVE_TOP_K]:
            n = len(chosen) + 1
            clean, removed = neutralise_instructions(hit.text)
            text = escape_data(clean)
            if not text.strip():
                continue
            if removed:
                warnings.append(_injection_warning(n, hit.source, removed))
            chosen.append(_citation(n, hit, text))
        return chosen

    def _plan_plain(self, request: DraftRequest) -> _Plan:
        common = self.templates.common
        text = request.request
        if request.fields:
            text += "\n" + "\n".join(f"- {k} : {v}" for k, v in request.fields.items())
        messages = render_plain(common, text)
        return _Plan(
            request=request,
            template=None,
            messages=messages,
            sources=[],
            max_tokens=self.settings.max_tokens,
            context_tokens=self._count(messages[-1]["content"]),
            warnings=["Réponse produite sans recherche dans les documents de la commune."],
        )

    def _plan_revision(self, request: DraftRequest) -> _Plan:
        previous = request.previous
        assert previous is not None  # checked by the caller
        base = previous.request
        merged = replace(
            request,
            doc_type=base.doc_type,
            fields={**base.fields, **request.fields},
            collections=request.collections or base.collections,
            retrieval=base.retrieval,
            previous=None,
        )
        if not base.retrieval:  # a plain answer: continue the conversation as is
            return self._continue(merged, previous, None, [])
        template = self.templates.get(base.doc_type).for_request(
            base.request, base.letter, merged.fields.get("references", "")
        )
        if request.new_sources:
            search_req = replace(merged, request=f"{base.request} {request.request}")
            hits, retrieval_s = self._search(search_req, template)
            relevant = [h for h in hits if _relevance(h) >= self.abstain_threshold] or hits[:1]
            if self.budget_for(template) > 0:  # as for a new draft
                relevant = self._with_legal_basis(search_req, template, relevant)
            plan = self._plan_fresh(
                replace(merged, request=self._revision_text(request.request)),
                template,
                relevant,
                current_draft=previous.answer
                if previous.structured
                else (previous.raw_answer or previous.answer),
            )
            plan.retrieval_s = retrieval_s
            plan.parent_id = previous.id
            return plan
        return self._continue(merged, previous, template, previous.sources)

    def _revision_text(self, demand: str) -> str:
        return self.templates.common.revision.format(demande=demand.strip())

    def _continue(
        self,
        request: DraftRequest,
        previous: Draft,
        template: Template | None,
        sources: list[Citation],
    ) -> _Plan:
        """Revise with the same sources: the previous conversation is the prompt's prefix, so
        llama.cpp reuses everything it already evaluated."""
        sources = [replace(c, used=False) for c in sources]
        revision = {"role": "user", "content": self._revision_text(request.request)}
        messages = [
            *previous.prompt,
            {"role": "assistant", "content": previous.raw_answer or previous.answer},
            revision,
        ]
        max_tokens = min(
            template.max_tokens if template else self.settings.max_tokens, self.settings.max_tokens
        )
        total = self.chat_model.count_prompt_tokens(messages)
        if total + max_tokens + CONTEXT_MARGIN <= self._n_ctx() or template is None:
            return _Plan(
                request=request,
                template=template,
                messages=messages,
                sources=sources,
                max_tokens=max_tokens,
                budget=self.budget_for(template) if template else 0,
                context_tokens=self.chat_model.uncached_tokens(messages, messages[:-1]),
                parent_id=previous.id,
                header=previous.header,
                footer=previous.footer,
                schema=(
                    schema_for(
                        template.form,
                        [c.n for c in sources],
                        article_openings=template.article_openings,
                    )
                    if template is not None and sources and previous.structured
                    else None
                ),
            )
        # The conversation no longer fits: start a new prompt that carries the current draft.
        plan = self._plan_fresh(
            replace(request, request=self._revision_text(request.request)),
            template,
            sources=sources,
            current_draft=previous.answer
            if previous.structured
            else (previous.raw_answer or previous.answer),
        )
        plan.parent_id = previous.id
        return plan

    # -- generation ------------------------------------------------------------------------------

    def _model_events(
        self, plan: _Plan, stats: GenerationStats
    ) -> Generator[tuple[str, Any], None, None]:
        """The model's events for ``plan``: ``("queue", position)`` while waiting for the model,
        then ``("token", piece)``. Runs in the caller's thread: closing this generator leaves
        the queue, or stops the generation at its next token and frees the model.

        Not a model thread handing tokens over a queue: on 2 cores the extra thread woken at
        every token slowed generation by ~0.55 s per 48 tokens (2.67 s against 2.11 s for the
        same draft from a cached prompt, median of 7 runs; `assistant bench`'s drafting ratio)."""
        return self.chat_model.events(
            plan.messages,
            max_tokens=plan.max_tokens,
            temperature=self.settings.temperature,
            stats=stats,
            response_format=plan.schema,
        )

    def _generate(self, draft_id: str, plan: _Plan, start: float) -> Iterator[DraftEvent]:
        stats = GenerationStats()
        pieces: list[str] = []
        first_token: float | None = None
        last_position = -1
        timed_out = False
        deadline = time.monotonic() + self.settings.request_timeout_s
        shown = ""  # structured: the preview already sent
        model_events = self._model_events(plan, stats)
        if plan.header:  # written by the program: shown at once, the model continues after it
            yield DraftEvent("token", text=plan.header + "\n\n")
        try:
            for kind, value in model_events:
                if kind == "queue":
                    # The time limit counts from the moment the model takes the request.
                    deadline = time.monotonic() + self.settings.request_timeout_s
                    if value != last_position:
                        last_position = value
                        yield DraftEvent(
                            "queue", text=f"En attente du modèle : position {value}", position=value
                        )
                    continue
                pieces.append(value)
                if time.monotonic() > deadline:
                    timed_out = True
                    model_events.close()
                    break
                if plan.schema is not None and not "".join(pieces).strip():
                    continue  # leading blanks before the JSON
                if plan.schema is None or not "".join(pieces).lstrip().startswith("{"):
                    if first_token is None:
                        first_token = time.monotonic() - start
                    yield DraftEvent("token", text=value)
                    continue
                # Structured: show the document the JSON describes so far, as it grows. The
                # preview only ever grows; the final text (checked, marked) replaces it at "done".
                preview = self._preview(plan, "".join(pieces))
                if preview.startswith(shown) and len(preview) > len(shown):
                    if first_token is None:  # the first visible word, not the first brace
                        first_token = time.monotonic() - start
                    yield DraftEvent("token", text=preview[len(shown) :])
                    shown = preview
        except GeneratorExit:
            model_events.close()
            draft = self._finish(
                draft_id, plan, "".join(pieces), stats, start, first_token, stopped=True
            )
            self._record(draft)
            raise
        if plan.footer:  # written by the program after the model's text
            yield DraftEvent("token", text="\n\n" + plan.footer)
        if first_token is None and pieces:
            # The preview never showed a word (a one-word text, all of it still "the word being
            # written"): the agent first reads the model's words in the final text, now.
            first_token = time.monotonic() - start
        draft = self._finish(
            draft_id, plan, "".join(pieces), stats, start, first_token, stopped=timed_out
        )
        if timed_out:
            draft.warnings.append(
                f"Rédaction arrêtée après {self.settings.request_timeout_s:.0f} s (temps maximal "
                "par demande, réglage request_timeout_s) : le texte est incomplet."
            )
        self._record(draft)
        yield DraftEvent("done", text=draft.answer, draft=draft)

    def _finish(
        self,
        draft_id: str,
        plan: _Plan,
        raw: str,
        stats: GenerationStats,
        start: float,
        first_token: float | None,
        *,
        stopped: bool,
    ) -> Draft:
        common = self.templates.common
        warnings = list(plan.warnings)
        data = parse_partial(raw) if plan.schema is not None else None
        checks: list[dict[str, Any]] = []
        cited: list[int] = []
        invalid: list[int] = []
        structured = data is not None and plan.template is not None
        if structured:
            assert data is not None and plan.template is not None
            structure = structure_of(data, _form(plan.template), [c.n for c in plan.sources])
            structure = drop_repeats(structure, plan.template.article_openings)
            letter = plan.request.letter
            asked = questions_of(letter) + resident_statements(letter) if letter.strip() else []
            if structure.form != "acte" and asked:
                # A paragraph that only gives the resident's questions (or own words) back
                # answers nothing;
                # a reply made only of them is an empty draft, to run again.
                structure = replace(
                    structure,
                    paragraphs=[p for p in structure.paragraphs if not asks_only(p.text, asked)],
                )
            if not stopped and stats.completion_tokens >= plan.max_tokens:
                structure, trimmed = drop_unfinished_tail(structure)
                if trimmed:
                    warnings.append(LENGTH_REACHED)
            parts = structure.parts()
            phrase = fold(common.phrase_abstention)
            declined = bool(parts) and all(phrase in fold(p.text) for p in parts)
            if declined and plan.key is not None and plan.asks_figure and structure.form != "acte":
                # The model declined although the evidence holds the sentence with the figure
                # asked for (Q02: « Dans les communes de moins de 3 500 habitants, la
                # convocation est adressée trois jours francs au moins avant celui de la
                # réunion », shown first): the draft quotes that sentence, cited, and says so.
                n, line = plan.key
                quoted = quoted_part(n, line.text, line.article, structure.form)
                structure = replace(structure, paragraphs=[quoted])
                warnings.append(KEY_SENTENCE_ONLY)
                body, cited, checks = self._render_checked(plan, structure, quoted)
            elif declined:
                body = common.phrase_abstention  # the model declined: no sources
            else:
                # As for free text below: a letter that answers does not carry "the documents
                # do not allow…" as one of its paragraphs; the agent gets the doubt as a warning.
                answering = [p for p in structure.paragraphs if phrase not in fold(p.text)]
                if len(answering) < len(structure.paragraphs):
                    structure = replace(structure, paragraphs=answering)
                    warnings.append(PARTLY_COVERED)
                structure, added = with_key_part(structure, plan.key)
                structure = without_filler(structure, added)
                body, cited, checks = self._render_checked(plan, structure, added)
            if not body.strip() and not stopped:
                body = EMPTY_DRAFT
                warnings.append(EMPTY_DRAFT_WARNING)
            if checks:
                warnings.append(
                    f"{len(checks)} point(s) à vérifier, marqués « À VÉRIFIER » dans le texte."
                )
        else:
            body, cited, invalid = map_citations(raw, [c.n for c in plan.sources])
            body = plain_text(_strip_mentions(body, common))
        if plan.template is not None and not structured:
            body = drop_echo(body, plan.header, plan.template.label)
            body = drop_frame(body, plan.header, plan.footer)
            if plan.template.form == "acte":
                body = as_act(body)
            if plan.template.form == "prose":
                body = as_prose(body)
                # A letter that answers does not end on "the documents do not allow...": the
                # agent gets the model's doubt as a warning instead.
                rest, dropped = drop_paragraphs_with(body, common.phrase_abstention)
                still_cited = [n for n in cited if f"[{n}]" in rest]
                if dropped and still_cited:
                    body, cited = rest, still_cited
                    warnings.append(PARTLY_COVERED)
        if invalid:
            marks = ", ".join(f"[{n}]" for n in invalid)
            warnings.append(f"Références sans source retirées du texte : {marks}.")
        abstained = (
            bool(plan.sources) and not cited and fold(common.phrase_abstention) in fold(body)
        )
        if stopped:
            warnings.append("Rédaction interrompue : le projet est incomplet.")
        tail = common.mention_ia
        if not plan.request.retrieval:
            tail = f"{common.mention_sans_sources}\n{tail}"
        if plan.footer and not stopped:
            body = f"{body}\n\n{plan.footer}".strip()
        if plan.header:
            body = f"{plan.header}\n\n{body}".strip()
        answer = f"{body}\n\n{tail}" if body else tail
        by_n = {c.n: c for c in plan.sources}
        citations = [replace(by_n[n], used=True) for n in cited]
        unused = [replace(c, used=False) for c in plan.sources if c.n not in set(cited)]
        timings = self._timings(stats, start, first_token, plan)
        return Draft(
            id=draft_id,
            request=plan.request,
            answer=answer,
            abstained=abstained,
            citations=citations,
            unused_sources=unused,
            invalid_citations=invalid,
            model=self.chat_model.name,
            timings=timings,
            prompt=plan.messages,
            raw_answer=raw,
            parent_id=plan.parent_id,
            stopped=stopped,
            warnings=warnings,
            header=plan.header,
            footer=plan.footer,
            checks=checks,
            structured=structured,
            schema=plan.schema,
        )

    def _preview(self, plan: _Plan, raw: str) -> str:
        """The body the partial JSON ``raw`` describes, for display while it streams: complete
        parts rendered, the part being written as its whole words so far (no marks yet)."""
        data = parse_partial(raw)
        if data is None or plan.template is None:
            return ""
        form = _form(plan.template)
        structure = structure_of(data, form, [c.n for c in plan.sources])
        parts = structure.parts()
        if not parts:
            return ""
        last = parts[-1]
        words = last.text.split(" ")
        writing = " ".join(words[:-1]).rstrip(".;,: ")  # the last word may be unfinished
        if form == "acte":
            # Only the visas the model named: the preview must not change what it showed.
            visas = (
                self._visa_lines(plan, structure, fallback=False) if "considerants" in data else []
            )
            decision = _decision(plan.template)
            if structure.articles:
                done = replace(structure, articles=structure.articles[:-1])
                body = render(done, visas, decision)
                if not done.articles:
                    body += "\n\n" + decision.strip()
                number = len(structure.articles)
                label = "1er" if number == 1 else str(number)
                text = strip_article_head(writing) if len(words) > 3 else ""
                sep = "\n" if done.articles else "\n\n"
                return f"{body}{sep}Article {label} : {text}" if text else body
            done = replace(structure, considerants=structure.considerants[:-1])
            body = render(done, visas, decision)
            line = considerant_line(writing, []).removesuffix(" ;") if len(words) > 3 else ""
            sep = "\n" if done.considerants else "\n\n" if body else ""
            return f"{body}{sep}{line}" if line else body
        done = replace(structure, paragraphs=structure.paragraphs[:-1])
        body = render(done)
        if not writing:
            return body
        return f"{body}\n\n{writing}" if body else writing

    def _visa_lines(self, plan: _Plan, structure: Structure, *, fallback: bool = True) -> list[str]:
        """The visas of an act, written from the cited legal texts: the sources the model named
        as visas and (``fallback``) the legal texts its considérants and articles cite, each
        only when its title names the text. With ``fallback``, when the model cited no legal
        text: the first legal text among the sources shown (the legal basis the program
        searched for the act, :meth:`_with_legal_basis`), so that K05's délibération on the
        élus' travel costs is « Vu le code général des collectivités territoriales, notamment
        son article L. 2123-18 [2] ; » rather than a visa to complete; with none shown, the
        legal basis a fiche names (:func:`reference_visa`), then a code's article a shown
        sentence names (:func:`inline_visa`); with none of them, one visa to complete, tied
        to no source. Then, up to :data:`MAX_VISAS`, the laws, decrees and ordinances the cited
        sources that are not codes name in their evidence (:func:`law_visas`)."""
        by_n = {c.n: c for c in plan.sources}
        cited = [n for p in structure.parts() for n in p.sources]
        # The legal texts the considérants and articles rest on are visas too (fallback).
        named = [*structure.visas, *cited] if fallback else structure.visas
        numbers = [n for n in dict.fromkeys(named) if n in by_n]
        # A source whose title names a text (a code) is its own visa.
        own = {n: visa_line(by_n[n].title, by_n[n].text, n) for n in numbers}
        lines: list[str] = []
        for n in numbers:
            if own[n] and is_legal_text(by_n[n].title, by_n[n].source) and own[n] not in lines:
                lines.append(own[n])
        if not lines and fallback:
            lines = self._fallback_visa(plan, cited)
        # The laws and decrees the cited sources' sentences rest on (« en application de
        # l'article 3-3 de la loi du 26 janvier 1984 modifiée »), after the codes' visas.
        # A code's own text is its visa; the laws its articles mention are not the act's basis.
        for n in numbers:
            if own[n]:
                continue
            for line in law_visas(by_n[n].text, n):
                if len(lines) < MAX_VISAS and line not in lines:
                    lines.append(line)
        if len(lines) > 1:
            lines = [ln for ln in lines if ln != VISA_TO_COMPLETE]
        return lines

    def _fallback_visa(self, plan: _Plan, cited: list[int]) -> list[str]:
        """The one visa of an act whose model cited no legal text (:meth:`_visa_lines`)."""
        by_n = {c.n: c for c in plan.sources}
        for c in plan.sources:
            line = visa_line(c.title, c.text, c.n) if is_legal_text(c.title, c.source) else ""
            if line:
                return [line]
        # No legal text shown: the code articles a cited fiche names as its basis (H06's
        # arrêté on the presentation of household waste read « Vu [À COMPLÉTER] » with
        # F31960 « Code général des collectivités territoriales : articles L2224-13 à
        # L2224-17-1 » in the evidence). The parts' sources first, then any shown.
        for n in dict.fromkeys([*cited, *by_n]):
            if n in by_n and (line := reference_visa(by_n[n].text, n)):
                return [line]
        # Then a code's article that a shown sentence names (L04: another council's
        # délibération « conformément aux dispositions de l'article D 1411-5 du code
        # général des collectivités territoriales »).
        for n in dict.fromkeys([*cited, *by_n]):
            if n in by_n and (line := inline_visa(by_n[n].text, n)):
                return [line]
        return [VISA_TO_COMPLETE]

    def _render_checked(
        self,
        plan: _Plan,
        structure: Structure,
        key_added: Part | None = None,
    ) -> tuple[str, list[int], list[dict[str, Any]]]:
        """The body rendered from the structure after each part is checked against its sources
        (:func:`assistant.verify.check_paragraph`) and, when the key sentence was quoted (the
        part ``key_added``), against that sentence (:func:`against_key`); returns (body, cited
        numbers in order of first use, checks)."""
        by_n = {c.n: c for c in plan.sources}
        shown = [c.text for c in plan.sources]
        request = plan.request
        agent = [request.request, request.letter, *request.fields.values()]
        checks: list[dict[str, Any]] = []
        texts = source_texts(plan.sources)
        # The resident's questions and first-person sentences are theirs, not the reply's.
        letter = request.letter
        asked = questions_of(letter) + resident_statements(letter) if letter.strip() else []
        titles = [c.title for c in plan.sources]
        assert plan.template is not None
        # The letter's recipient (the field its salutation is written from) is « vous » in it.
        reader = next(
            (
                request.fields.get(f.salutation_from, "")
                for f in plan.template.fields
                if f.salutation_from
            ),
            "",
        )
        for index, part in enumerate(structure.parts(), start=1):
            part.text = french_quotes(part.text)  # « … », the only quotation the checks know
            part.text = drop_scaffold(drop_asked(part.text, asked), plan.template.instructions)
            part.text = drop_source_talk(part.text)
            if structure.form != "acte":
                part.text = drop_filler(drop_title_questions(part.text, titles))
                if reader:
                    part.text = address_reader(part.text, reader)
                if letter.strip():
                    part.text = resident_possessives(part.text, letter)
            # A figure taken from another shown source: that source is cited too.
            part.sources += missing_sources(part.text, part.sources, texts, agent)
            cited_texts = [by_n[n].text for n in part.sources if n in by_n]
            part.text = quote_copy(part.text, cited_texts or shown)
            cited_with_titles = [texts[n] for n in part.sources if n in texts]
            if structure.form != "acte" and part is not key_added:
                # After the copy check: the reference is not part of a copied run (« …
                # rejetés (article » where the evidence's next line opens « Article L411-3 »).
                basis = [line for n in part.sources for line in plan.evidence.get(n, [])]
                part.text = with_legal_basis(part.text, basis)
            issues = check_paragraph(part.text, cited_with_titles, shown, agent)
            # An act's article too, without the opening the grammar gave it (the act's words,
            # not the agent's): L05's « Le Conseil municipal décide de préparer la délibération
            # qui reconduit… » was the agent's « Préparer la délibération… ».
            is_article = any(part is a for a in structure.articles)
            opening = next(
                (o for o in plan.template.article_openings if part.text.startswith(o)), ""
            )
            own = part.text[len(opening) :] if is_article else part.text
            restated = (
                restated_instruction(own, [request.request, *request.fields.values()])
                or restated_questions(own, request.request)
                if structure.form != "acte" or is_article
                else ""
            )
            if restated:
                start = " ".join(restated.split()[:4])
                issues.append(
                    Issue("demande", f"« {start}… » reprend la consigne de la demande : à réécrire")
                )
            if structure.articles and part is structure.articles[0]:
                topics = [request.fields.get(n, "") for n in TOPIC_FIELDS]
                if word := contrary_decision(part.text, [request.request, *topics]):
                    issues.append(
                        Issue("decision", f"« {word} » : la demande décide l'inverse ; à corriger")
                    )
            if any(part is c for c in structure.considerants) and (own := about_itself(part.text)):
                issues.append(
                    Issue("motif", f"« {own} » : parle de l'acte, pas de son motif ; à réécrire")
                )
            if is_article and (itself := self_decided(part.text)):
                issues.append(
                    Issue(
                        "decision",
                        f"« {itself} » : décision adressée à son propre auteur ; à réécrire",
                    )
                )
            if key_added is not None and plan.key is not None and part is not key_added:
                flagged = {i.value for i in issues}
                issues += [i for i in against_key(part.text, plan.key) if i.value not in flagged]
            part.text = apply_issues(part.text, issues)
            checks.extend(
                {"partie": index, "type": issue.kind, "detail": issue.detail} for issue in issues
            )
        visas = self._visa_lines(plan, structure) if structure.form == "acte" else []
        body = render(structure, visas, _decision(plan.template))
        _, cited, _ = map_citations(body, [c.n for c in plan.sources])
        return body, cited, checks

    def _timings(
        self, stats: GenerationStats | None, start: float, first_token: float | None, plan: _Plan
    ) -> dict[str, Any]:
        s = stats or GenerationStats()
        return {
            "retrieval_s": round(plan.retrieval_s, 3),
            "queue_s": round(s.queue_s, 3),
            "first_token_s": None if first_token is None else round(first_token, 3),
            "total_s": round(time.monotonic() - start, 3),
            "tokens_per_s": round(s.tokens_per_s, 2),
            "prompt_tokens": s.prompt_tokens,
            "cached_tokens": s.cached_tokens,
            "completion_tokens": s.completion_tokens,
            "context_tokens": plan.context_tokens,
            "budget_tokens": plan.budget,
        }

    def _abstention(
        self,
        draft_id: str,
        request: DraftRequest,
        hits: Sequence[Hit],
        retrieval_s: float,
        start: float,
    ) -> Draft:
        common = self.templates.common
        collections = request.collections or [self.settings.default_collection]
        demand = " ".join(request.request.split())
        if len(demand) > ABSTENTION_ECHO_CHARS:
            demand = demand[: ABSTENTION_ECHO_CHARS - 1].rstrip() + "…"
        text = common.abstention.format(
            demande=demand,
            collections=", ".join(f"« {c} »" for c in collections),
        )
        plan = _Plan(
            request=request,
            template=None,
            messages=[],
            sources=[],
            max_tokens=0,
            retrieval_s=retrieval_s,
        )
        best = max((_relevance(h) for h in hits), default=0.0)
        return Draft(
            id=draft_id,
            request=request,
            answer=f"{text.strip()}\n\n{common.mention_ia}",
            abstained=True,
            citations=[],
            unused_sources=[],
            invalid_citations=[],
            model=self.chat_model.name,
            timings=self._timings(None, start, None, plan),
            warnings=[
                f"Pertinence du meilleur passage : {best:.2f}, sous le seuil de "
                f"{self.abstain_threshold:.2f}."
            ],
        )

    def _record(self, draft: Draft) -> None:
        if self.audit is not None:
            self.audit.record_draft(draft)


# --- factory ------------------------------------------------------------------------------------


def enable_prompt_cache(chat_model: ChatModel, capacity_bytes: int = 1 << 30) -> bool:
    """Give an in-process llama.cpp model a fresh store of its prompts' fixed-part states
    (:class:`assistant.llm.PromptStates`, at most ``capacity_bytes``).

    llama.cpp already reuses the longest common prefix with the *previous* request; the store
    also keeps each document type's fixed part, so switching between types finds its own
    template's prefix instead of evaluating it again. Returns False for other backends
    (a llama.cpp server manages its own cache with ``cache_prompt``).
    """
    from assistant.llm import LocalChatModel, PromptStates

    if not isinstance(chat_model, LocalChatModel):
        return False
    chat_model.prompt_states = PromptStates(capacity_bytes=capacity_bytes)
    return True


def build_service(
    settings: Settings, *, retrieval: bool = True, worker: bool = False
) -> DraftingService:
    """The one factory of the drafting service (``retrieval=False``: no index is opened;
    ``worker``: the chat model runs in a restartable child process, for `serve`)."""
    from assistant.audit import build_audit
    from assistant.llm import build_chat_model
    from assistant.prompts import load_templates

    templates = load_templates(settings.templates_dir)
    chat_model = build_chat_model(settings, worker=worker)
    enable_prompt_cache(chat_model)
    retriever: SearchBackend | None = None
    if retrieval:
        from assistant.retrieval import build_retriever

        retriever = build_retriever(settings)
    return DraftingService(settings, chat_model, retriever, templates, build_audit(settings))
