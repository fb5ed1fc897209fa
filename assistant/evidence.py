"""Evidence, not documents: the sentences of the retrieved passages that bear on a request.

A small model paraphrases a sentence it is given well; it fails when asked to find the point in
three pages. So the program finds it: each retrieved passage is cleaned of what is not content
(front matter, URLs, navigation and heading marks, table pipes), cut into sentences, and the
sentences that share the most terms with the request (and those holding figures) are kept, with
a neighbour when a kept sentence introduces a list or continues one. What the model sees is a few
numbered lines per source, in document order, under the document's title and page.

Also here: :func:`questions_of`, which reads a resident's pasted letter for its questions (the
retrieval searches those, not the whole letter). Hand-written: no library in the stack splits
French administrative text into sentences with its list structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from assistant.textnorm import DIVISION_HEADING, fold, light_terms

# Lines that are not content: metadata and navigation of the guides, separators.
_NOISE_LINE = re.compile(
    r"^\s*(?:source\s*:|résumé\s*:|auteur\s*:|vérifié le|mis à jour|modifi(?:é|ed)\b|"
    r"direction de l'information légale|voir aussi|textes? de référence|services? en ligne|"
    r"pour en savoir plus|sommaire|imprimer|partager|accueil\s*[>›]|---+|\|?\s*-{3,}|"
    r"\[?cerfa|formulaire\s*$|"
    # The stamp of an act sent to the prefecture through @ctes, printed on the deliberation's
    # first page: « Acte Certifié exécutoire » stood alone as N02's evidence for « exécutoire »
    # and the note wrote it as a paragraph.
    r"acte certifi[ée] ex[ée]cutoire|envoi pr[ée]fecture|r[ée]ception en pr[ée]fecture|"
    r"accus[ée] de r[ée]ception\s*[–-]\s*minist[èe]re)",
    re.IGNORECASE,
)
# Sections of a fiche that list references, links or online services, not rules.
_NOISE_SECTION = re.compile(
    r"^\s*(?:r[ée]f[ée]rences?|textes? de r[ée]f[ée]rence|pour en savoir plus|voir aussi|"
    r"services? en ligne|sites? (?:internet|utiles)|questions? r[ée]ponses?|o[uù] s'adresser)\b",
    re.IGNORECASE,
)
# A sentence that leans on the one before it ("Elle nécessite…", "Toutefois…").
_LEANS_BACK = re.compile(
    r"^(?:elle|elles|il|ils|celle-ci|celui-ci|ceux-ci|cette|ce|ces|cela|ceci|toutefois|"
    r"cependant|dans ce cas|en revanche|mais|sauf|de plus|en outre)\b",
    re.IGNORECASE,
)
_URL = re.compile(r"\(?\bhttps?://[^\s)]+\)?|\bwww\.[^\s)]+")
_MD_HEADING = re.compile(r"^\s*#{1,6}\s*")
_MD_EMPH = re.compile(r"(\*\*|__)(.+?)\1")
_ARTICLE_HEAD = re.compile(
    r"^\s*(?:\*\*)?\s*(Article\s+[LRD]?\.?\s?[\d\-]+(?:\s?\w{0,3})?)\s*(?:\*\*)?\s*$"
)
# A line that opens with its own article label: "Article 2 : Le tarif…", "Article 1er - …",
# "Article L2121-17 : …" (deliberations and arrêtés write their articles inline).
_INLINE_ARTICLE = re.compile(
    r"^\s*(Article\s+(?:LO|[LRD])?\.?\s?\d+(?:-\d+)*(?:\s?er)?)\s*[:.–—-]\s*\S"
)
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d{1,2}°|\d{1,2}[.)])\s+")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[A-ZÀ-Ý«(])")
_HAS_FIGURE = re.compile(r"\d")


@dataclass
class Line:
    """A sentence or list item of a passage, in document order."""

    text: str
    article: str = ""  # the code article it belongs to ("Article L2121-17"), when known
    bullet: bool = False
    intro: bool = False  # ends with ":" (introduces what follows)
    section: str = ""  # the Markdown heading the line sits under ("Durée de la concession")
    title: str = ""  # the title of the document it comes from (its source header)


# Longer than this, a line opening with « Section 2 » is a sentence, not a heading.
_DIVISION_MAX = 160
_OPEN_END = re.compile(r"[^.!?:;»)\]]$")
_CONTINUES = re.compile(r"^[a-zà-ÿœæ(]")
# A line ending on a word that never ends a French sentence (a preposition, an article, a
# determiner, a conjunction) goes on in the next one, whatever that one starts with: a figure
# (« … pour une longueur totale d'environ » + « 840 mètres linéaires ; »), a name (« … de la
# Ville de » + « Montpellier »), a table cell (« Quotient familial de » + « 0 à 370€ »). 184
# such breaks in the shared corpus' PDF passages, all continuations on a reading of 45.
_DANGLING = re.compile(
    r"(?:^|[\s'’])(?:de|du|des|à|au|aux|le|la|les|un|une|en|par|pour|sur|avec|entre|et|ou|"
    r"dont|que|son|sa|ses|leur|leurs|ce|cette|ces|environ|soit)$|\b(?:[dlq]u?|qu)['’]$",
    re.IGNORECASE,
)
_NOT_CONTINUED = re.compile(r"^(?:[#|>*•–-]|\d{1,2}[°.)]\s|Article\b)")


def _unwrap(raw: Sequence[str]) -> list[str]:
    """Lines of a PDF page joined where the page, not the text, broke them: a line that does
    not end a sentence followed by one that starts in lower case ("… (Communauté" + "d'agglo…"),
    or by any line but an item or a heading when it ends on a word no sentence ends with
    (:data:`_DANGLING`: « … d'environ » + « 840 mètres linéaires ; »).
    A Markdown fiche (one paragraph a line, headings, items) is left as it is."""
    out: list[str] = []
    for line in raw:
        stripped = line.strip()
        prev = out[-1].rstrip() if out else ""
        if (
            prev
            and stripped
            and _OPEN_END.search(prev)
            and (
                _CONTINUES.match(stripped)
                or (_DANGLING.search(prev) and not _NOT_CONTINUED.match(stripped))
            )
            and not prev.lstrip().startswith(("#", "|"))
        ):
            out[-1] = f"{prev} {stripped}"
        else:
            out.append(line)
    return out


def clean_lines(text: str, heading: str = "", title: str = "") -> list[Line]:
    """The content of a passage as sentences and list items, without noise.

    ``heading``: the passage's heading path; an article heading in it applies to the first
    lines (a chunk cut inside an article keeps its number), until a line names its own article
    (« Article 2 : … »). A sentence given twice under one article (chunks overlap; a merged
    passage joins them) is kept once. ``title``: the document's title; a line repeating it
    (the front matter of a first chunk) is not content, the source's header already shows it.
    A division heading (« CHAPITRE Ier : … », « Section 4 : Fonctionnement ») is a section
    title, not a sentence: otherwise it would stand as the first sentence of the article that
    follows, the one shown with any line of that article (:func:`readable`)."""
    article = ""
    m = re.search(r"Article\s+[LRD]?\.?\s?\d[\d\-]*", heading or "")
    if m:
        article = m.group(0)
    out: list[Line] = []
    emitted: set[tuple[str, str, str]] = set()
    section = ""
    title_key = fold(title) if title.strip() else ""
    for raw in _unwrap(text.splitlines()):
        line = raw.strip()
        if not line or _NOISE_LINE.match(line):
            continue
        bare = line.lstrip("#").strip()
        if title_key and fold(bare) == title_key:
            continue
        if (
            DIVISION_HEADING.match(bare)
            and bare[0].isupper()  # as the chunker reads them: « section 2 » is in a sentence
            and len(bare) <= _DIVISION_MAX
            and not bare.endswith(".")
        ):
            section = bare  # its words count for the lines under it, like a Markdown title
            continue
        head = _ARTICLE_HEAD.match(bare)
        if head:
            article = head.group(1).strip()
            continue
        inline = _INLINE_ARTICLE.match(line)
        if inline:  # its own label wins over the heading's (merged chunks of one document)
            article = inline.group(1).strip()
        if line.startswith("#"):
            # A section title is not shown; its words count for the lines under it ("Durée de
            # la concession" over "- Concession trentenaire : 30 ans").
            section = line.lstrip("#").strip()
            continue
        if _NOISE_SECTION.match(section):
            continue  # the references, links and services of a fiche: not evidence
        line = _URL.sub("", line)
        line = (
            _MD_EMPH.sub(r"\2", line).replace("> ", "", 1)
            if line.startswith(">")
            else (_MD_EMPH.sub(r"\2", line))
        )
        if line.startswith("|"):  # a table row: cells joined as a sentence
            cells = [c.strip() for c in line.strip("|").split("|") if c.strip()]
            if not cells or all(set(c) <= set("-: ") for c in cells):
                continue
            line = " : ".join(cells)
        bullet = bool(_BULLET.match(line))
        line = _BULLET.sub("", line) if bullet else line
        line = " ".join(line.split())
        if len(line) < 3:
            continue
        pieces = [line] if bullet else _SENTENCE.split(line)
        for piece in pieces:
            piece = piece.strip()
            # Once per article and section: a fiche's cases repeat their steps word for word
            # (« Vous avez une lettre de refus » / « … de radiation »), and the copy under the
            # request's case is the one whose section words count.
            key = (article, fold(section), fold(piece))
            if len(piece) >= 3 and key not in emitted:
                emitted.add(key)
                out.append(
                    Line(piece, article, bullet, piece.rstrip().endswith(":"), section, title)
                )
    return out


# What a request asks for, by its words, and the figures that answer it. A line holding the
# kind of figure asked (a delay for "délai", an amount for "combien coûte") ranks first: the
# small model states what its evidence puts in front of it, and drops the rest.
_ASKED = {
    "delay": re.compile(
        r"\b(?:d[ée]lais?|dur[ée]es?|combien de temps|quand|avant|validit[ée]|date|p[ée]riode|"
        r"moment|convoc\w*|pr[ée]avis|renouvel\w*)\b",
        re.IGNORECASE,
    ),
    "amount": re.compile(
        r"\b(?:montants?|co[uû]ts?|co[uû]te|prix|tarifs?|frais|combien|seuils?|redevances?|"
        r"taux|subventions?|indemnit[ée]s?|somme|payer|euros?)\b",
        re.IGNORECASE,
    ),
    "count": re.compile(
        r"\b(?:nombre|combien|quorum|majorit[ée]|fois|limite|maximum|minimum|au plus|au moins)\b",
        re.IGNORECASE,
    ),
}
_FIGURE_OF = {
    "delay": re.compile(
        r"\b(?:\d+|un|une|deux|trois|quatre|cinq|six|huit|dix|quinze|trente)\s+"
        r"(?:jours?|mois|ans?|années?|semaines?|heures?)\b|\bjours? francs\b",
        re.IGNORECASE,
    ),
    "amount": re.compile(
        r"\d[\d\s\u00a0\u202f.,]*\s?(?:€|euros?\b|%)|\bgratuit\w*|\bsans frais\b", re.IGNORECASE
    ),
    "count": re.compile(
        r"\b\d+\s?%|\b(?:majorit[ée]|tiers|moiti[ée]|quart)\b|\b\d+\s+(?:fois|membres|"
        r"conseillers|adjoints|autorisations)\b",
        re.IGNORECASE,
    ),
}
# A number with the noun it counts: « un seul pouvoir », « trois séances consécutives », « 5
# membres titulaires ». A line holding one answers a « count » request when the noun is one of
# the request's terms (« Combien de pouvoirs… ? »): « combien » alone cannot tell which count is
# asked (« un seul pouvoir » is no answer to « Quel est le quorum ? »).
_COUNTED = re.compile(
    r"(?<![\d.,/-])\b(?:\d{1,3}|un seul|une seule|deux|trois|quatre|cinq|six|sept|huit|neuf|"
    r"dix|douze|quinze|vingt|trente|cinquante|cent)\s+([^\W\d_]{4,})",
    re.IGNORECASE,
)


def _counts_asked(text: str, terms: AbstractSet[str]) -> list[str]:
    """The counts of ``text`` (:data:`_COUNTED`, as written) whose noun is one of ``terms``."""
    return [m.group(0) for m in _COUNTED.finditer(text) if set(light_terms(m.group(1))) & terms]


# Bonus of a line holding a figure of the kind asked (about two matching words), and of any
# other figure (an amount, a delay, a rate: the facts a clerk checks).
ASKED_FIGURE_BONUS = 2.0
FIGURE_BONUS = 0.75


# A whole number as French writes it, its thousands apart or not (« 3 500 », « 3.500 », « 400 »).
_WHOLE = r"(\d{1,3}(?:[\s\u00a0\u202f.]\d{3})+|\d+)"
# The population a rule of the code applies to (« dans les communes de moins de 3 500
# habitants », « de 1 000 habitants et plus ») and the one a request names (« une commune de
# 2 000 habitants »). The code splits many rules by such thresholds, and a line for the other
# side shares almost every word of the request: Q02 (« moins de 3 500 habitants ») was
# answered from L. 2121-7's rule for communes « de 3 500 habitants et plus ».
_POPULATION = rf"{_WHOLE}\s+habitants"
_BELOW = re.compile(rf"\b(?:moins\s+de|en[\s-]dessous\s+de)\s+{_POPULATION}", re.IGNORECASE)
_ABOVE = re.compile(
    rf"(?:\b(?:plus\s+de|au\s+moins|au[\s-]dessus\s+de)\s+{_POPULATION})"
    rf"|(?:{_POPULATION}\s+(?:et|ou)\s+plus)",
    re.IGNORECASE,
)
_EXACT = re.compile(rf"\b{_POPULATION}", re.IGNORECASE)
# Score taken from a line whose population condition excludes the request's: more than its
# figure bonus, so that the line for the request's side comes first.
CONTRARY_POPULATION_PENALTY = 3.0


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def population_range(text: str, *, exact: bool = False) -> tuple[float, float] | None:
    """The populations ``text`` speaks of, as [low, high): « moins de 3 500 habitants » →
    (0, 3500); « 3 500 habitants et plus », « plus de 3 500 habitants », « au moins 3 500
    habitants » → (3500, inf); with ``exact`` (a request), « 2 000 habitants » → (2000, 2001).
    None when there is no condition, or conditions on both sides (a line comparing them)."""
    below, above = _BELOW.search(text), _ABOVE.search(text)
    if below and above:
        return None
    if below:
        return (0.0, float(_number(below.group(1))))
    if above:
        return (float(_number(above.group(1) or above.group(2))), float("inf"))
    if exact and (found := _EXACT.search(text)):
        n = _number(found.group(1))
        return (float(n), float(n + 1))
    return None


# A table's bracket (« Q 6: de 336 € à 458 € 3,21 € 3,55 € », a tariff by quotient familial)
# and the amount a request gives (« avec un quotient familial de 400 € »): the row shares no
# word with the request, only its bracket says it is the one (L14, session 29).
_AMOUNT = rf"{_WHOLE}(?:,\d+)?\s*(?:€|euros?)"
_BRACKET = re.compile(
    rf"\b(?:de|entre)\s+{_AMOUNT}\s+(?:à|et)\s+{_AMOUNT}",
    re.IGNORECASE,
)
_GIVEN_AMOUNT = re.compile(_AMOUNT, re.IGNORECASE)
# What a line whose bracket holds the request's amount adds to its score: as much as three of
# the request's terms. No-model proxy (expected facts in the prompt, the four request files):
# 2: no change (L14's row ranks third in its passage and loses the room to other passages'
# lines); 3 and 4: L14 0/2 -> 2/2, no other request changes (docs/eval/drafts.md, fifteenth
# pass).
BRACKET_WEIGHT = 3.0


def amounts_of(text: str) -> list[int]:
    """The whole amounts in euros ``text`` gives (« 400 € », « 1 200 euros »), in order."""
    return [_number(m.group(1)) for m in _GIVEN_AMOUNT.finditer(text)]


def in_bracket(line: str, amounts: Sequence[int]) -> bool:
    """Whether a bracket of ``line`` (« de 336 € à 458 € », « entre 500 € et 800 € ») holds
    one of ``amounts`` (bounds included)."""
    return any(
        _number(m.group(1)) <= a <= _number(m.group(2))
        for m in _BRACKET.finditer(line)
        for a in amounts
    )


def asked_kinds(query: str) -> set[str]:
    """The kinds of figure ``query`` asks for: ``delay``, ``amount``, ``count``."""
    return {kind for kind, rx in _ASKED.items() if rx.search(query)}


def _words(line: Line) -> set[str]:
    words = set(light_terms(line.text))
    if line.article:
        words.update(light_terms(line.article))
    if line.section:
        words.update(light_terms(line.section))
    return words


def _score(
    line: Line,
    terms: set[str],
    kinds: AbstractSet[str] = frozenset(),
    population: tuple[float, float] | None = None,
    amounts: Sequence[int] = (),
) -> float:
    overlap: float = len(terms & _words(line))
    if amounts and in_bracket(line.text, amounts):
        overlap += BRACKET_WEIGHT
    if not overlap:
        return 0.0
    applies = population_range(line.text) if population is not None else None
    if population and applies and (applies[1] <= population[0] or population[1] <= applies[0]):
        return max(0.01, overlap - CONTRARY_POPULATION_PENALTY - len(line.text) / 2000)
    bonus = 0.0
    if any(_FIGURE_OF[k].search(line.text) for k in kinds) or (
        "count" in kinds and _counts_asked(line.text, terms)
    ):
        bonus = ASKED_FIGURE_BONUS
    elif any(rx.search(line.text) for rx in _FIGURE_OF.values()):
        bonus = FIGURE_BONUS
    elif _HAS_FIGURE.search(line.text):
        bonus = 0.25
    return overlap + bonus - len(line.text) / 2000


# Words of a drafting request that say what to write, not what it is about.
_TASK_WORDS = frozenset(
    light_terms(
        "répondre réponse rappeler informer indiquer expliquer préciser rédiger courrier lettre "
        "note délibération arrêté projet habitant habitante usager administré famille"
    )
)


# The addressee a request opens with, before what it is about: « Note au maire sur … »,
# « Répondre à M. Petit sur … » (at most six words, none a relative pronoun: « Répondre à un
# habitant qui veut contester le permis affiché sur le terrain » names no addressee).
_ADDRESSEE = re.compile(
    r"^\s*\w+\s+(?:au|aux|à la|à l'|à)\s*(?:(?!qui\b|que\b|qu'|dont\b)\S+\s+){0,5}?"
    r"(?:sur|concernant|relati(?:f|ve|fs|ves) à|à propos d(?:e|u|es)|au sujet d(?:e|u|es))\s+",
    re.IGNORECASE,
)


def evidence_query(
    request: str, topic: str = "", addressing: Sequence[str] = (), questions: Sequence[str] = ()
) -> str:
    """What the evidence is chosen for: the request, its topic (``objet``) and the resident's
    questions, without the words that only address or frame it: the recipient's name and
    title ("Monsieur le Président de l'association des commerçants": a sentence about
    associations is not evidence about terraces), the addressee the request opens with (« Note
    au maire sur … »: « maire » is on every line of the code) and the task's own verbs
    ("Répondre à…"). A word of the topic is always kept."""
    keep = set(light_terms(topic))
    drop = {t for text in addressing for t in light_terms(text)} | _TASK_WORDS
    drop -= keep

    def cleaned(text: str) -> str:
        words = text.split()
        return " ".join(
            w
            for k, w in enumerate(words)
            # « habitants » after a number is a population (« moins de 3 500 habitants »), not
            # the request's addressee (« Répondre à un habitant »).
            if not (set(light_terms(w)) & drop)
            or (k > 0 and words[k - 1][-1:].isdigit() and w.lower().startswith("habitant"))
        )

    about = _ADDRESSEE.sub("", request, count=1)
    return " ".join(p for p in (cleaned(about), topic, *map(cleaned, questions)) if p.strip())


# What each of the request's terms in a document's title adds to the score of each of its lines
# that shares a term with the request (see ranked_lines).
TITLE_WEIGHT = 1.0


def ranked_lines(lines: Sequence[Line], query: str) -> list[tuple[float, int]]:
    """``(score, index)`` of the lines sharing a term with ``query``, best first (ties: in
    document order). Score: the request's terms the line holds, plus a bonus for a figure
    (more for one of the kind asked), minus a little for length, plus :data:`TITLE_WEIGHT` for
    each of the request's terms in the line's document title (:attr:`Line.title`).

    The title's part is the same for every line of a document: it does not change their order
    inside it, it weighs a document whose title names the request's subject against one whose
    lines merely share its words. K13 (« Comment est composée la commission d'appel d'offres
    … ? ») was shown the code's chapter on the council and not the « 5 membres titulaires »
    of the délibération titled « commission appel offres election »; H08's note on the
    commissions municipales lost « huit jours » the same way. Measured with no model on the
    three request files (expected facts in the prompt): 50 / 17 / 28 without it; weight 0.5:
    50 / 17 / 29; 1: 51 / 18 / 29; 1.5 and 2: the same. Adding the title's terms to each
    line's own words instead (a line lacking them gains them) flattens the order inside a
    document: 50 / 20 / 27, K14 losing two facts (``docs/eval/drafts.md``, fourteenth pass).

    Counted, not weighted by rarity. Measured on the evidence of the 24 drafting requests
    (expected facts present in the prompt, no model run): unweighted 35/43; inverse frequency
    over the passage's lines 30/43 (a fiche's topic word is on every line, so incidental
    words outweighed it); inverse frequency over the whole index 35/43 (other facts lost:
    lines holding the delay asked for lost to lines holding rare words), damped 33/43."""
    terms = set(light_terms(query))
    kinds = asked_kinds(query)
    population = population_range(query, exact=True)
    amounts = amounts_of(query)
    titled = {title: len(terms & set(light_terms(title))) for title in {ln.title for ln in lines}}
    return sorted(
        (
            (s + TITLE_WEIGHT * titled[line.title], i)
            for i, line in enumerate(lines)
            if (s := _score(line, terms, kinds, population, amounts)) > 0
        ),
        key=lambda x: (-x[0], x[1]),
    )


# How the loaders write a table's cells (loaders.py: a row a line, cells joined by " | ").
_TABLE_CELL = " | "


def readable(
    lines: Sequence[Line], i: int, first_of_article: dict[str, int] | None = None
) -> set[int]:
    """Indices of line ``i`` with the neighbours that make it readable: its article's first
    sentence (which states the rule: « Le conseil municipal ne délibère valablement que
    lorsque… » before « Si … ce quorum n'est pas atteint… »), the introduction of a list item,
    the first item after an introduction, the sentence it leans on and the one leaning on it;
    for a row of a table (cells joined by « | »), the table's first row, which names the
    columns: the demo's « Week-end (vendredi 18 h – lundi 9 h) | 320 € | 650 € » was shown
    without « Location | Habitants de la commune | Personnes extérieures », and which price is
    whose was left to guess.
    ``first_of_article``: :func:`_first_of_article` of ``lines``, when the caller has it."""
    if first_of_article is None:
        first_of_article = _first_of_article(lines)
    out = {i}
    line = lines[i]
    if _TABLE_CELL in line.text:
        j = i
        while j > 0 and _TABLE_CELL in lines[j - 1].text:
            j -= 1
        out.add(j)
    head = first_of_article.get(line.article, i) if line.article else i
    out.add(head)
    if line.bullet:  # its introduction
        j = i - 1
        while j >= 0 and lines[j].bullet:
            j -= 1
        if j >= 0 and lines[j].intro:
            out.add(j)
    if line.intro and i + 1 < len(lines):
        out.add(i + 1)
    if i > 0 and not line.bullet and _LEANS_BACK.match(line.text):
        out.add(i - 1)
    if i + 1 < len(lines) and not lines[i + 1].bullet and _LEANS_BACK.match(lines[i + 1].text):
        out.add(i + 1)
    return out


def _first_of_article(lines: Sequence[Line]) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.article:
            first.setdefault(line.article, i)
    return first


def render_lines(lines: Sequence[Line], keep: Sequence[int]) -> str:
    """The kept lines as text, one a line, "[…]" where lines were skipped (before, between,
    after), article numbers written once before their first line."""
    out: list[str] = ["[…]"] if keep and keep[0] > 0 else []
    last = -1
    article = ""
    for i in keep:
        line = lines[i]
        if last >= 0 and i > last + 1:
            out.append("[…]")
        prefix = ""
        if line.article and line.article != article:
            article = line.article
            # Not when the line already opens with its number ("Article 2 : Le tarif…").
            if not fold(line.text).startswith(fold(article)):
                prefix = f"{article} : "
        out.append(f"{prefix}{'- ' if line.bullet else ''}{line.text}")
        last = i
    if keep and keep[-1] < len(lines) - 1:
        out.append("[…]")
    return "\n".join(out)


# Most sentences of one source chosen for the request (their neighbours come with them).
MAX_LINES_PER_SOURCE = 6
# A source whose best sentence scores at least this share of the best one's gets that sentence
# before the room follows the scores (no-model proxy on the three request files, facts in the
# prompt / expected source in the prompt: 0.3: 88/121, 56/59; 0.5: 89, 56; 0.7: 90, 54; none:
# 91, 55; docs/eval/drafts.md, eighth pass).
SOURCE_FLOOR_SHARE = 0.5


def share_evidence(
    passages: Sequence[Sequence[Line]],
    query: str,
    room: int,
    count: Callable[[str], int],
    overheads: Sequence[int] = (),
    required: Collection[int] = (),
) -> list[str]:
    """The evidence of each passage for ``query``, all of it within ``room`` tokens (``count``
    measures; ``overheads[k]``: what passage ``k``'s header costs when it is shown). ``""`` for
    a passage left out. Passages are in retrieval order, best first.

    A passage of ``required`` (an act's legal basis) has its best sentence shown first, however
    it scores against the others, or its first lines when no sentence shares a word with the
    query: a délibération's rates outscored L. 2123-18 on its own subject (K05), and the act
    was left with a visa to complete.

    The room is shared by the sentences' scores (:func:`ranked_lines`), across passages: first
    the best sentence of each passage that scores at least :data:`SOURCE_FLOOR_SHARE` of the
    best one's, then the best sentences of all the passages, a tie to the better-ranked
    passage, each with its neighbours (:func:`readable`), at most
    :data:`MAX_LINES_PER_SOURCE` a passage; a sentence that does not fit is passed over for
    shorter ones. A passage whose sentences all lose is left out, so that a fiche's second
    relevant sentence (« dix-huit jours » after the rule that states the right) is shown rather
    than a third source's incidental one. Replaces an even split (a third of the room a
    source); measured in ``docs/eval/drafts.md``, eighth pass.

    A passage sharing no word with the query was retrieved for a reason its words do not show
    (by meaning): its first lines are shown if room remains. Nothing fitting whole, the first
    passage's best line is cut to whole words (with its article number: a visa is written from
    the numbers the evidence shows). A sentence shown by an earlier passage is not shown again
    (the chunks of a document overlap)."""
    seen: set[str] = set()
    sets: list[list[Line]] = []
    for lines in passages:
        kept = [line for line in lines if fold(line.text) not in seen]
        seen.update(fold(line.text) for line in kept)
        sets.append(kept)
    n = len(sets)
    over = [overheads[k] if k < len(overheads) else 0 for k in range(n)]
    ranked = [ranked_lines(lines, query) for lines in sets]
    firsts = [_first_of_article(lines) for lines in sets]
    keep: list[set[int]] = [set() for _ in range(n)]
    picked = [0] * n
    cost = [0] * n
    total = 0

    def attempt(k: int, add: set[int]) -> bool:
        nonlocal total
        trial = keep[k] | add
        c = count(render_lines(sets[k], sorted(trial))) + over[k]
        if total - cost[k] + c > room:
            return False
        keep[k], total, cost[k] = trial, total - cost[k] + c, c
        return True

    candidates = sorted(
        ((score, k, i) for k in range(n) for score, i in ranked[k]),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    if candidates:  # first, the best sentence of each source that scores near the best
        best_of: dict[int, tuple[float, int, int]] = {}
        for c in candidates:
            best_of.setdefault(c[1], c)
        floor = SOURCE_FLOOR_SHARE * candidates[0][0]
        musts = [best_of[k] for k in sorted(required) if k in best_of]
        leads = musts + [c for c in best_of.values() if c[0] >= floor and c not in musts]
        candidates = leads + [c for c in candidates if c not in leads]
    for k in sorted(required):  # retrieved by meaning: its first lines, before the others
        if 0 <= k < n and sets[k] and not ranked[k]:
            attempt(k, set(range(min(2, len(sets[k])))))
    for _, k, i in candidates:
        if picked[k] >= MAX_LINES_PER_SOURCE or i in keep[k]:
            continue
        if any(fold(sets[k][j].text) == fold(sets[k][i].text) for j in keep[k]):
            continue  # the same step under another case of the fiche, already shown
        if attempt(k, readable(sets[k], i, firsts[k])):
            picked[k] += 1
    for k in range(n):  # retrieved by meaning: its first lines, if room remains
        if sets[k] and not ranked[k]:
            attempt(k, set(range(min(2, len(sets[k])))))
    texts = [render_lines(sets[k], sorted(keep[k])) if keep[k] else "" for k in range(n)]
    if not any(texts) and sets and sets[0]:
        texts[0] = _cut_line(sets[0], ranked[0], room - over[0], count)
    return texts


# --- the sentence a draft must not leave out ----------------------------------------------------

# A candidate for the key sentence scores at least this share of the best sentence's score, and
# is among the best KEY_CANDIDATES sentences of all the evidence. No-model proxy over the three
# request files, facts in the draft or in the added quotation, with the drafts of the eighth
# pass (docs/eval/drafts.md, ninth pass): the drafts alone 66/118; any of the best two 76/118,
# a quotation in 27 drafts; with this share, the asked kind and at most 45 words 74/118 in 21.
# The filters of a sentence standing alone came after, from reading the quotations; with them
# the model runs quoted 7 drafts of 59.
KEY_SHARE = 0.75
KEY_CANDIDATES = 2
# A fiche's lead-in before the sentence itself (« À noter : Les frais sont de… »).
_LEAD_IN = re.compile(r"^(?:à noter|à savoir|attention|important)\s*:\s*", re.IGNORECASE)
# A proposal or a motive of another council's act, or an example, is not a rule to quote (« la
# Ville propose d'attribuer une subvention de 40 000 € », « Considérant que… », « Exemple : »).
_NOT_A_RULE = re.compile(
    r"^(?:consid[ée]rant|exemple|par exemple)\b|\bpropos(?:e|é|ée|ent|ons)\b|\bvous est",
    re.IGNORECASE,
)
_ENDS_SENTENCE = re.compile(r"[.!?»)]$")
# Openings that answer the sentence before, beyond :data:`_LEANS_BACK`: quoted alone, « Néanmoins,
# sur la demande de trois membres… » reads as the rule when it is the exception.
_ANSWERS_BACK = re.compile(
    r"^(?:n[ée]anmoins|pour autant|par ailleurs|à d[ée]faut|a contrario|au contraire|sinon|"
    r"dans (?:ce|les deux) cas|en pareil cas|en ce cas|de même|également|aussi)\b",
    re.IGNORECASE,
)


def figure_words(text: str) -> set[str]:
    """The figures of ``text`` written without a digit, folded: « majorité », « tiers »,
    « gratuit », « jours francs », « un seul pouvoir » (other numbers, spelled or not, are
    :func:`assistant.verify.figures`' business, which leaves 1 out)."""
    words = {
        fold(m.group(0))
        for rx in _FIGURE_OF.values()
        for m in rx.finditer(text)
        if not _HAS_FIGURE.search(m.group(0))
    }
    words.update(
        fold(m.group(0)) for m in _COUNTED.finditer(text) if fold(m.group(0)).startswith("un")
    )
    return words


def key_sentence(
    passages: Sequence[Sequence[Line]],
    shown: Sequence[str],
    query: str,
    max_words: int,
) -> tuple[int, Line] | None:
    """``(k, line)``: the sentence of passage ``k`` that holds the figure the request asks for
    (a delay for « délai », an amount for « combien coûte »…; any figure when it asks for no
    kind), when it is among the :data:`KEY_CANDIDATES` best of all the evidence
    (:func:`ranked_lines`, as :func:`share_evidence` ranks them) and scores at least
    :data:`KEY_SHARE` of the best. ``shown[k]``: passage ``k``'s evidence as the prompt shows it
    (the sentence must be in it). ``None`` when no sentence qualifies.

    The sentence must stand alone as a quotation: a whole sentence (capital first, final stop),
    not leaning on the one before (« Toutefois… », « Il ne peut… »), not an item of a list, at
    most ``max_words`` words, not a proposal or a motive of another act. A fiche's lead-in
    (« À noter : ») is removed from the returned line's text.

    The drafting service quotes it when the model's draft leaves its figures out: the small
    model drops the one figure asked for often enough (« 3 000 € » for the fiche's « 23 000
    € ») that the program, which found the sentence, gives it to the agent as a quotation."""
    kinds = asked_kinds(query)
    terms = set(light_terms(query))
    candidates = sorted(
        (
            (score, k, i)
            for k, lines in enumerate(passages)
            if k < len(shown) and shown[k]
            for score, i in ranked_lines(lines, query)
        ),
        key=lambda x: (-x[0], x[1], x[2]),
    )[:KEY_CANDIDATES]
    if not candidates:
        return None
    best = candidates[0][0]
    for score, k, i in candidates:
        line = passages[k][i]
        text = _LEAD_IN.sub("", line.text).strip()
        if score < KEY_SHARE * best or line.bullet or line.intro or line.text not in shown[k]:
            continue
        if kinds:
            holds = any(_FIGURE_OF[kind].search(text) for kind in kinds) or (
                "count" in kinds and bool(_counts_asked(text, terms))
            )
        else:
            holds = bool(_HAS_FIGURE.search(text)) or any(
                rx.search(text) for rx in _FIGURE_OF.values()
            )
        if (
            holds
            and text[:1].isupper()
            and _ENDS_SENTENCE.search(text)
            and not _LEANS_BACK.match(text)
            and not _ANSWERS_BACK.match(text)
            and not _NOT_A_RULE.search(text)
            and "[" not in text
            and 6 <= len(text.split()) <= max_words
        ):
            return k, Line(text, line.article, line.bullet, line.intro, line.section, line.title)
    return None


def _cut_line(
    lines: Sequence[Line],
    ranked: Sequence[tuple[float, int]],
    max_tokens: int,
    count: Callable[[str], int],
) -> str:
    """The best line alone (not an introduction), cut to whole words within ``max_tokens``,
    with its article number; ``""`` when not a word fits."""
    order = [i for _, i in ranked] or list(range(len(lines)))
    best = next((lines[i] for i in order if lines[i].text and not lines[i].intro), lines[order[0]])
    labelled = best.article and not fold(best.text).startswith(fold(best.article))
    words = f"{best.article} : {best.text}".split() if labelled else best.text.split()
    while words and count(" ".join(words) + " […]") > max_tokens:
        words = words[: len(words) * 3 // 4]
    return " ".join(words) + " […]" if words else ""


# --- the legal texts a fiche rests on -------------------------------------------------------

# A line of a fiche's « Références » section that names a code's articles: « - Code général des
# collectivités territoriales : articles L2224-13 à L2224-17-1 — Collecte des déchets
# (http://…) » (service-public.fr's layout). Laws and circulars are written otherwise and left out.
_REFERENCE = re.compile(
    r"^\s*[-*•]?\s*(?P<code>Code\b[^:\n]{3,120}?)\s*:\s*"
    r"(?P<articles>articles?\s+[^—\n(]*?\d[^—\n(]*?)\s*(?:—\s*(?P<topic>[^\n(]+?))?\s*"
    r"(?:\(https?://[^)\s]*\)\s*)?$",
    re.IGNORECASE | re.MULTILINE,
)
_REFERENCES_HEADING = re.compile(r"r[ée]f[ée]rences?\b|textes? de r[ée]f[ée]rence", re.I)
# What the evidence shows of a reference, as its source's last line (and what a visa is read
# back from, :func:`assistant.structure.reference_visa`).
REFERENCE_LEAD = "Texte de référence : "


@dataclass(frozen=True)
class Reference:
    """A code's articles that a fiche names as its legal basis.

    ``code``: « Code général des collectivités territoriales »; ``articles``: « articles
    L2224-13 à L2224-17-1 » as the fiche writes them; ``topic``: what the fiche says they are
    about (« Pouvoirs du maire en matière de bruit »), or ``""``."""

    code: str
    articles: str
    topic: str = ""

    def line(self) -> str:
        """The reference as the evidence shows it: « Texte de référence : Code général des
        collectivités territoriales, articles L2212-1 à L2212-5-1 (pouvoirs du maire en
        matière de bruit). »"""
        topic = f" ({self.topic[0].lower()}{self.topic[1:]})" if self.topic else ""
        return f"{REFERENCE_LEAD}{self.code}, {self.articles}{topic}."


def references_of(text: str) -> list[Reference]:
    """The code references of a fiche's « Références » section in ``text`` (a chunk or a whole
    document), in order, once each. A passage with no such section gives ``[]``: only lines
    under a « Références » or « Textes de référence » heading (a Markdown title, or a chunk's
    first line) count, so that a sentence of a rule citing a code is not taken for the fiche's
    basis."""
    out: list[Reference] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        bare = line.lstrip("#").strip()
        item = bare.startswith(("-", "*", "•"))
        if line.startswith("#") or (bare and not item and ":" not in bare):
            inside = bool(_REFERENCES_HEADING.match(bare))
            continue
        if not inside:
            continue
        m = _REFERENCE.match(line)
        if m:
            ref = Reference(
                " ".join(m.group("code").split()),
                " ".join(m.group("articles").split()),
                " ".join((m.group("topic") or "").split()),
            )
            if ref not in out:
                out.append(ref)
    return out


# A topic naming what the articles leave out (« Travaux ne nécessitant pas de déclaration
# préalable »): it shares the request's words, and is the one reference not to cite for it.
_NEGATED = re.compile(r"\bne\b.*\bpas\b|\bnon\b|\bsans\b|\bexceptions?\b", re.IGNORECASE)


def best_references(refs: Sequence[Reference], query: str, limit: int = 1) -> list[Reference]:
    """At most ``limit`` of ``refs`` for ``query``: those whose topic and code share the most of
    its terms, best first (ties: the fiche's order), but for a topic that names what the
    articles leave out (:data:`_NEGATED`); the fiche's first reference when none qualifies
    (service-public.fr lists the main legal basis first)."""
    terms = set(light_terms(query))
    scored = sorted(
        ((-len(terms & set(light_terms(f"{r.code} {r.topic}"))), i) for i, r in enumerate(refs))
    )
    picked = [refs[i] for s, i in scored if s < 0 and not _NEGATED.search(refs[i].topic)]
    return picked[:limit] or list(refs[:1])


# --- a resident's letter -------------------------------------------------------------------------

_ASK = re.compile(
    r"\?|\b(?:pourriez|pouvez|pourrais|puis-je|peut-on|dois-je|faut-il|est-il|est-ce que|"
    r"je souhaite|je souhaiterais|je voudrais|j'aimerais|je demande|je sollicite|merci de "
    r"(?:me|m')|quels?|quelles?|combien|comment|pourquoi|où)\b",
    re.IGNORECASE,
)
_FORMULA = re.compile(
    r"^(?:madame|monsieur|bonjour|je vous remercie|merci d'avance|merci par avance|"
    r"veuillez|cordialement|salutations|dans l'attente)",
    re.IGNORECASE,
)
# A salutation opening a sentence: « Madame, Monsieur, », « Monsieur le Maire, ».
_SALUTATION = re.compile(
    r"^(?:(?:madame|monsieur|mesdames|messieurs)(?:\s+l[ea]\s+\w+)?\s*,\s*)+", re.IGNORECASE
)
MAX_QUESTIONS = 4
MAX_QUESTION_CHARS = 300


def questions_of(letter: str, limit: int = MAX_QUESTIONS) -> list[str]:
    """The questions and demands of a resident's letter, at most ``limit``, in order.

    A sentence that asks (a question mark, "pourriez-vous", "je souhaite", "combien"...) is a
    question; greetings and politeness formulas are not. When nothing asks, the longest sentences
    stand for the letter. Each question is cut to :data:`MAX_QUESTION_CHARS` characters.
    (A stand-in for the retriever's own long-request search: one small function to switch.)"""
    # By paragraph first: a salutation line has no final stop, and glued to the question under
    # it (« Monsieur le Maire, Pourriez-vous… ? ») it made the question a formula.
    sentences = [
        _SALUTATION.sub("", s.strip())
        for paragraph in re.split(r"\n\s*\n", letter)
        for s in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split()))
    ]
    sentences = [s for s in sentences if s]
    asks = [s for s in sentences if _ASK.search(s) and not _FORMULA.match(s)]
    if not asks:
        asks = sorted((s for s in sentences if not _FORMULA.match(s)), key=len, reverse=True)[
            :limit
        ]
    return [s[:MAX_QUESTION_CHARS] for s in asks[:limit]]
