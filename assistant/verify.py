"""Checks a drafted paragraph against the sources it cites, before anything is shown.

A small model misremembers figures, copies whole passages and repeats contacts it saw (or that a
planted document gave it). Each paragraph the model writes is checked here:

- **figures** (amounts, rates, delays, dates, years, thresholds, article numbers): each one must
  appear in a source the paragraph cites, or in what the agent wrote (request, fields, pasted
  letter). Numbers written in words in the sources ("deux mois") match digits ("2 mois");
- **contacts** (URL, e-mail, phone number): only those given by the sources shown to the model or
  by the agent; premium-rate numbers (08 9x) never, whoever gave them;
- **copies**: a run of more than :data:`COPY_WORDS` words taken verbatim from a source must be a
  marked quotation « … », and a quotation stays within :data:`QUOTE_MAX_WORDS` words;
- **talk about the prompt**: a paragraph that speaks of its sources instead of its matter
  (« Considérant que les sources fournies démontrent… », « … est fourni dans le document
  numéroté 3 ») is marked to be rewritten (:func:`speaks_of_sources`).

The functions are pure (no model, no I/O) and the evaluation (:mod:`assistant.evaluation`) uses the
same extraction, so that what the product marks and what the evaluation counts agree.
Hand-written: no library in the stack extracts French administrative figures.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# A verbatim run longer than this many words must be a marked quotation.
COPY_WORDS = 20
# A marked quotation « … » longer than this (about two sentences) is a copy, not a quotation.
QUOTE_MAX_WORDS = 45
# How a failed check is written into the text (the UI highlights it, the export keeps it).
MARK_OPEN = "[À VÉRIFIER : "
MARK_CLOSE = "]"
MARK_PATTERN = re.compile(r"\[À VÉRIFIER : [^\]]*\]")

# What the model writes when it speaks of its prompt instead of the matter: the sources or
# extracts it was given, their numbers, the agent's message. Tight on purpose: « retenue à la
# source », « les sources de financement » are administrative French, not talk about the prompt.
_META = re.compile(
    # « les sources fournis décrivent… » (M05: the model's agreement is not the rule's)
    r"\b(?:(?:les|des|ces|la|cette) sources?\s+(?:fournie?s?|numérotée?s?|citée?s?|ci-dessus|"
    r"données?|du message|indiqu\w+|précis\w+|montr\w+|démontr\w+|prévoi\w+|mentionn\w+|"
    r"décri\w+)"
    r"|(?:selon|d'après|dans|par) (?:les|la|des|ces) sources?\b(?!\s+d[eu']\w*)"
    r"|textes? des sources|(?:la|les|des) sources? n?°?\s?\d|documents? (?:fournis?|numérotés?)"
    r"|(?:le|les|ce|ces) textes? (?:fournis?(?! par)|ci-dessus)"
    r"|numérotée?s? \d"
    r"|extraits? (?:fournis?|numérotés?|ci-dessus)|message de l'agent"
    # The prompt's « INFORMATIONS DONNÉES PAR L'AGENT » given back (H08's second paragraph),
    # not the desk's agent of a resident's complaint (« l'agent d'accueil »).
    r"|(?:informations?|données?|éléments?) (?:donnée?s?|fournie?s?|transmise?s?) par l['’]agent"
    r"(?!\s+d[eu'’])"
    r"|fournie?s? (?:par|dans) (?:les?|la|des) (?:sources?|documents?|extraits?))",
    re.IGNORECASE,
)
# French number words -> digits, so that "deux mois" in a source supports "2 mois". Only words
# that are never anything else ("un"/"une" are articles: left out, and 1 is never checked).
_WORDS = {
    "deux": "2",
    "trois": "3",
    "quatre": "4",
    "cinq": "5",
    "six": "6",
    "sept": "7",
    "huit": "8",
    "neuf": "9",
    "dix": "10",
    "onze": "11",
    "douze": "12",
    "treize": "13",
    "quatorze": "14",
    "quinze": "15",
    "seize": "16",
    "vingt": "20",
    "trente": "30",
    "quarante": "40",
    "cinquante": "50",
    "soixante": "60",
    "cent": "100",
}
# Compounds first ("dix-huit mois" is 18, not 10 and 8).
_WORDS.update({"dix-sept": "17", "dix-huit": "18", "dix-neuf": "19"})
_WORD_NUMBER = re.compile(
    r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
# The number of a list item written in a paragraph ("… étapes : 1. Consultez… 2. Contactez").
_LIST_MARK = re.compile(r"(?:^|(?<=[\s:;]))\d{1,2}[.)°](?=\s+[A-ZÀ-Ý])")


def _without_list_marks(text: str) -> str:
    """``text`` without the numbers of a numbered list written inline: only a run 1, 2, 3…
    in order counts as a list ("fixé à 21. Il…" keeps its 21)."""
    marks = list(_LIST_MARK.finditer(text))
    expected, drop = 1, []
    for m in marks:
        if int(m.group(0).rstrip(".)°")) == expected:
            drop.append(m)
            expected += 1
    if len(drop) < 2:
        return text
    for m in reversed(drop):
        text = text[: m.start()] + " " + text[m.end() :]
    return text


_PERCENT_WORDS = re.compile(r"\bpour\s?cent\b|\bp\.\s?100\b", re.IGNORECASE)
# "23.000" / "1.500.000": thousands separated by points, as French texts and PDFs often write
# them (a decimal point would not be followed by exactly three digits and then no digit).
_DOTTED_THOUSANDS = re.compile(r"(?<![\w,.])(\d{1,3}(?:\.\d{3})+)(?![\d.,]\d)")
# Code articles: "L2121-17", "L. 2121-17", "article R2223-10", "L.1611-4".
_ARTICLE = re.compile(r"\b([LRD]|LO)\s?\.?\s?(\d{3,4}(?:\s?-\s?\d+){1,2})\b")
# Numbers: "1 500", "15 000,50", "0,18", "30 %", "1er". Thousands separated by spaces.
_NUMBER = re.compile(
    r"(?<![\w,.])(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:[,.](\d+))?(?:er|e)?\b"
    r"(?:[ \u00a0\u202f]?(?:%|€|euros?\b|jours?\b|mois\b|ans?\b|heures?\b))?"
)
_CITATION = re.compile(r"\[\d{1,3}\]")
_URL = re.compile(
    r"\bhttps?://[^\s)»\]]+|\bwww\.[^\s)»\]]+|\b[\w-]+(?:\.[\w-]+)*\.(?:fr|com|org|net|eu|gouv\.fr)\b(?:/[^\s)»\]]*)?",
    re.I,
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<!\d)(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
_PREMIUM = re.compile(r"^(?:\+33|0)8[19]")
_QUOTE = re.compile(r"«([^»]*)»")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Issue:
    """One failed check: ``kind`` is ``chiffre``, ``coordonnee``, ``copie``, ``sources``,
    ``demande`` (the agent's instruction restated,
    :func:`assistant.structure.restated_instruction`), ``decision`` (an act deciding the
    other way, :func:`assistant.structure.contrary_decision`, or about its own author,
    :func:`assistant.structure.self_decided`) or ``motif`` (a considérant about the act itself,
    :func:`assistant.structure.about_itself`); ``detail`` is the French reason shown to the
    agent (inside the « à vérifier » mark)."""

    kind: str
    detail: str
    value: str = ""

    def mark(self) -> str:
        return f"{MARK_OPEN}{self.detail}{MARK_CLOSE}"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(c for c in text if not unicodedata.combining(c))


def figures(text: str) -> list[tuple[str, str]]:
    """The figures of ``text`` as ``(as written, key)``; equal keys mean the same figure.

    Keys: ``art:L2121-17`` for a code article, ``n:1500`` / ``n:0.18`` for a number (thousands
    separators dropped, decimal comma as a point). Citation marks ``[n]`` and marks already
    written are not figures. Numbers spelled in words count as their digits. 0 and 1 are left
    out (an article "un", "1er" of a list: never worth a mark)."""
    text = MARK_PATTERN.sub(" ", _CITATION.sub(" ", text))
    out: list[tuple[str, str]] = []
    for m in _ARTICLE.finditer(text):
        number = re.sub(r"\s", "", m.group(2))
        out.append((m.group(0), f"art:{m.group(1).upper()}{number}"))
    text = _ARTICLE.sub(" ", text)
    text = _URL.sub(" ", _EMAIL.sub(" ", _PHONE.sub(" ", text)))
    text = _without_list_marks(text)  # "1. Consultez… 2. Contactez…": item numbers
    text = _PERCENT_WORDS.sub("%", text)  # "trente pour cent" is 30 %, not 30 and 100
    text = _WORD_NUMBER.sub(lambda m: _WORDS[m.group(1).lower()], text)
    text = _DOTTED_THOUSANDS.sub(lambda m: m.group(1).replace(".", " "), text)
    for m in _NUMBER.finditer(text):
        whole = re.sub(r"[\s\u00a0\u202f]", "", m.group(1))
        key = whole.lstrip("0") or "0"
        if m.group(2):
            key += "." + m.group(2).rstrip("0") if m.group(2).rstrip("0") else ""
        if key in {"0", "1"}:
            continue
        written = m.group(0).strip()
        if _IDENTIFIER.search(text[max(0, m.start() - 12) : m.start()]):
            # a number of a reference counts nothing: « n° 2014/137 précise » is 137, not 137
            # « précise » (D01's considérant was marked for its délibération's own number)
            out.append((written, f"n:{key}{UNIT_SEP}"))
            continue
        unit, counted = _unit(written, text[m.end() :])
        if counted:  # shown with the word it counts: « 3 membres », not « 3 »
            written = f"{written} {counted}"
        out.append((written, f"n:{key}{UNIT_SEP}{unit}"))
    return out


# What precedes a number that identifies an act rather than counts (« n° 2014-137 »,
# « n°2014/137 », « 2014/137 »).
_IDENTIFIER = re.compile(r"(?:\bn[°o]\s?(?:\d+[-/])?|\d/)$", re.IGNORECASE)
# A number's key carries what it counts (« 3 mois » is not « 3 membres »): the unit written with
# it or the word after it, folded and singular. "n:3@mois"; "n:3@" for a bare number.
UNIT_SEP = "@"
_NEXT_WORD = re.compile(r"[ \u00a0\u202f]?([^\W\d_]+|%|€)", re.UNICODE)
_NOT_UNITS = {
    "a", "au", "aux", "d", "de", "des", "du", "en", "et", "est", "l", "la", "le", "les", "ou",
    "par", "pour", "sont", "sur", "qui", "que", "dont", "ne", "n", "y", "se", "il", "elle",
    "dans", "avant", "apres", "aupres", "entre", "chez", "sans", "avec", "lors", "selon",
    "contre", "jusqu", "depuis", "pendant", "parmi", "vers", "ce", "cette", "ces", "son", "sa",
}  # fmt: skip
# Words for the same thing counted. A council's members: the demo's règlement intérieur says
# « la majorité de ses membres en exercice […], soit quatorze conseillers » and the model answers
# « quatorze membres », which was marked as unsupported. « adjoints » stay apart (a subset).
_UNIT_SYNONYMS = {
    "€": "euro", "eur": "euro", "ans": "an", "annee": "an", "h": "heure",
    "conseiller": "membre", "conseillere": "membre", "elu": "membre", "elue": "membre",
}  # fmt: skip


def _unit(written: str, after: str) -> tuple[str, str]:
    """The unit of a number, folded and singular: its own unit (%, €, jours…) or the next word;
    '' when none (end of sentence, a preposition or an article follows). Second: that next
    word as written, when the unit was taken from it ('' otherwise)."""
    own = re.search(r"(%|€|[^\W\d_]+)$", written)
    if own and not re.fullmatch(r"(?:er|e)", own.group(1)):
        word, counted = own.group(1), ""
    else:
        m = _NEXT_WORD.match(after)
        if not m:
            return "", ""
        word = counted = m.group(1)
    word = _fold(word)
    if word in _NOT_UNITS:
        return "", ""
    if len(word) > 3 and word[-1] in "sx" and word not in {"mois", "fois"}:
        word = word[:-1]
    return _UNIT_SYNONYMS.get(word, word), counted


def figure_keys(texts: Iterable[str]) -> set[str]:
    """Every key of :func:`figures` over ``texts``, plus each number's key without its unit
    (``n:3``), for :func:`supported`."""
    keys: set[str] = set()
    for text in texts:
        for _, key in figures(text):
            keys.add(key)
            keys.add(key.split(UNIT_SEP, 1)[0])
    return keys


def supported(key: str, allowed: set[str]) -> bool:
    """Whether a figure of the draft (its :func:`figures` key) is backed by ``allowed``
    (:func:`figure_keys` of the sources and of what the agent wrote): the same number with the
    same unit, or the same number of two digits or more written bare in a source (a table
    cell, « fixé à 21. »).
    A number written bare in the draft needs the number only."""
    if key in allowed or not key.startswith("n:"):
        return key in allowed
    number, _, unit = key.partition(UNIT_SEP)
    if not unit:
        return number in allowed
    # A bare number backs a counted one only from two digits on (a table cell « 320 »): a bare
    # 2 to 9 is everywhere in a legal text (« article 3 », list items) and would back anything.
    return f"{number}{UNIT_SEP}" in allowed and len(number) >= 4  # "n:" + two characters


def contacts(text: str) -> list[str]:
    """URLs, e-mail addresses and French phone numbers written in ``text``."""
    text = MARK_PATTERN.sub(" ", text)
    found = [m.group(0) for m in _EMAIL.finditer(text)]
    rest = _EMAIL.sub(" ", text)
    found += [m.group(0).rstrip(".,;") for m in _URL.finditer(rest)]
    found += [m.group(0) for m in _PHONE.finditer(rest)]
    return found


def _contact_key(value: str) -> str:
    if _PHONE.fullmatch(value.strip()):
        digits = re.sub(r"\D", "", value)
        return "tel:" + ("0" + digits[2:] if digits.startswith("33") else digits)
    return _fold(value).rstrip("/").removeprefix("https://").removeprefix("http://")


def contact_keys(texts: Iterable[str]) -> set[str]:
    return {_contact_key(c) for text in texts for c in contacts(text)}


def is_premium(value: str) -> bool:
    """A French premium-rate number (08 1x, 08 9x): never written into a draft."""
    digits = re.sub(r"[^\d+]", "", value)
    return bool(_PREMIUM.match(digits)) and _PHONE.fullmatch(value.strip()) is not None


def _words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def longest_copy(text: str, sources: Sequence[str]) -> int:
    """Length in words of the longest run of ``text`` found word for word in one of ``sources``
    (outside quotation marks « »). Case, accents and punctuation are ignored."""
    words = _words(_QUOTE.sub(" | ", text))
    if not words:
        return 0
    grams: set[tuple[str, ...]] = set()
    size = 6
    for source in sources:
        sw = _words(source)
        grams.update(tuple(sw[i : i + size]) for i in range(len(sw) - size + 1))
    best = run = 0
    covered_until = -1
    for i in range(len(words) - size + 1):
        if tuple(words[i : i + size]) in grams:
            run = run + 1 if covered_until >= i + size - 2 else size
            covered_until = i + size - 1
            best = max(best, run)
        elif covered_until < i:
            run = 0
    return best


# A verbatim run is made a quotation only when the paragraph has at least this share of its own
# words besides it: a paragraph that is a pasted extract stays marked « à reformuler ».
OWN_WORDS_SHARE = 0.4


def quote_copy(text: str, sources: Sequence[str]) -> str:
    """``text`` with its longest verbatim run from ``sources`` put between « » when it may be
    a quotation: more than :data:`COPY_WORDS` and at most :data:`QUOTE_MAX_WORDS` words, in a
    paragraph whose other words make at least :data:`OWN_WORDS_SHARE` of it, and no quotation
    marks already there. The words are the source's: a reader must see that they are quoted
    (what the issue allows, "a marked quotation of at most a sentence or two"). Otherwise the
    text is returned unchanged and :func:`check_paragraph` marks the copy."""
    if "«" in text or "»" in text:
        return text
    spans = list(_WORD.finditer(text))
    words = [_fold(m.group(0)) for m in spans]
    size = 6
    if len(words) < size:
        return text
    grams: set[tuple[str, ...]] = set()
    for source in sources:
        sw = _words(source)
        grams.update(tuple(sw[i : i + size]) for i in range(len(sw) - size + 1))
    best = (0, 0)  # [start, end) word indices of the longest run
    start = end = -1
    for i in range(len(words) - size + 1):
        if tuple(words[i : i + size]) in grams:
            if end >= i + size - 2 and start >= 0:
                end = i + size
            else:
                start, end = i, i + size
            if end - start > best[1] - best[0]:
                best = (start, end)
    run = best[1] - best[0]
    if run <= COPY_WORDS or run > QUOTE_MAX_WORDS or run > (1 - OWN_WORDS_SHARE) * len(words):
        return text
    a, b = spans[best[0]].start(), spans[best[1] - 1].end()
    # The quotation closes what it opens: « (du vendredi 18 h au lundi 9 h) », not « (… 9 h »).
    quoted = text[a:b]
    if quoted.count("(") > quoted.count(")"):
        close = re.match(r"\s*\)", text[b:])
        if close:
            b += close.end()
    elif quoted.count(")") > quoted.count("("):
        opened = re.search(r"\(\s*$", text[:a])
        if opened:
            a = opened.start()
    return f"{text[:a]}« {text[a:b]} »{text[b:]}"


_CURLY_QUOTE = re.compile(r"[“„]\s*([^“”„\"\n]+?)\s*”")
_STRAIGHT_QUOTE = re.compile(r'"\s*([^"\n]+?)\s*"')


def french_quotes(text: str) -> str:
    """``text`` with its quotations between « » as French administrative writing has them:
    “…”, „…” and paired "…" become « … ». The model quotes a source in English marks now and
    then, and the copy check only knows « »: a quoted sentence was marked « recopiés : à citer
    entre « » » (found by a helper, session 30). An unpaired " is left as it is, and so are
    the marks nested in a « … » quotation (N04: « … de la règle "silence vaut accord"… »).
    Hand-written: a few lines of typography, no library of the stack does it."""
    # Inside a « … » quotation, “ ” and " " are the nested quotation marks French keeps.
    parts = re.split(r"(«[^»]*»)", text)
    for i, part in enumerate(parts):
        if i % 2:
            continue
        part = _CURLY_QUOTE.sub(lambda m: f"« {m.group(1)} »", part)
        if part.count('"') % 2 == 0:
            part = _STRAIGHT_QUOTE.sub(lambda m: f"« {m.group(1)} »", part)
        parts[i] = part
    return "".join(parts)


def copied_share(text: str, sources: Sequence[str], size: int = 8) -> float:
    """Share of the words of ``text`` (quotations « » excluded) that sit in a run of ``size``
    words or more found verbatim in ``sources``: 0.0 (all own words) to 1.0 (all copied)."""
    words = _words(_QUOTE.sub(" ", text))
    if len(words) < size:
        return 0.0
    grams: set[tuple[str, ...]] = set()
    for source in sources:
        sw = _words(source)
        grams.update(tuple(sw[i : i + size]) for i in range(len(sw) - size + 1))
    covered = [False] * len(words)
    for i in range(len(words) - size + 1):
        if tuple(words[i : i + size]) in grams:
            for j in range(i, i + size):
                covered[j] = True
    return sum(covered) / len(words)


def missing_sources(
    text: str, cited: Sequence[int], sources: Mapping[int, str], agent: Sequence[str]
) -> list[int]:
    """Numbers of shown sources to add to a paragraph's citations so that its figures are
    supported: for each figure of ``text`` found neither in the ``cited`` sources nor in what the
    agent wrote, the first other source (in ``sources``, number -> text shown to the model) that
    holds it. The small model often names a neighbouring source's number while taking the
    figure from the next one; the figure is sourced, only its number was wrong. A figure no
    source holds adds nothing (it stays for :func:`check_paragraph` to mark)."""
    allowed = figure_keys([*(sources[n] for n in cited if n in sources), *agent])
    keys_of = {n: figure_keys([t]) for n, t in sources.items() if n not in cited}
    added: list[int] = []
    for _, key in figures(text):
        if supported(key, allowed):
            continue
        holder = next((n for n in sorted(keys_of) if supported(key, keys_of[n])), None)
        if holder is not None:
            added.append(holder)
            allowed |= keys_of.pop(holder)
    return added


def speaks_of_sources(text: str) -> bool:
    """Whether ``text`` speaks of the prompt (its sources, extracts, their numbers, the agent's
    message) instead of the matter: a clerk deletes such a sentence, so it is marked."""
    return _META.search(MARK_PATTERN.sub(" ", text)) is not None


def differing_figures(text: str, sentence: str) -> list[tuple[str, str]]:
    """The figures of ``text`` that count the same thing as a figure of ``sentence`` with
    another number (« 3 000 € » against « 23 000 € », « 3 mois » against « 2 mois »), as
    ``(written in text, written in sentence)``, first pair of each figure of ``text``. A figure
    of ``text`` equal to one of ``sentence``, or with no unit, is never one of them."""
    theirs = [(w, k) for w, k in figures(sentence) if k.startswith("n:")]
    same = {k for _, k in theirs}
    out: list[tuple[str, str]] = []
    for written, key in figures(text):
        unit = key.partition(UNIT_SEP)[2]
        if not unit or key in same or any(written == w for w, _ in out):
            continue
        other = next((w for w, k in theirs if k.partition(UNIT_SEP)[2] == unit), None)
        if other is not None:
            out.append((written, other))
    return out


def check_paragraph(
    text: str,
    cited: Sequence[str],
    shown: Sequence[str],
    agent: Sequence[str],
) -> list[Issue]:
    """The failed checks of one paragraph.

    ``cited``: texts of the sources the paragraph cites (what its figures must come from);
    ``shown``: every source text shown to the model (what a contact may come from); ``agent``:
    what the agent wrote (request, fields, pasted letter). Returns one :class:`Issue` per
    unsupported figure, stray contact, over-long copy or talk about the sources, in the order
    found."""
    issues: list[Issue] = []
    allowed = figure_keys([*cited, *agent])
    seen: set[str] = set()
    # A number in words that speak of the prompt (« la source 2 », « le document numéroté 3 »)
    # is not a figure of the matter: the paragraph is marked for speaking of its sources, once
    # (K06's « le texte de la source 2 est pertinent » also got « « 2 » ne figure pas »).
    for written, key in figures(_META.sub(" ", text)):
        if supported(key, allowed) or key in seen:
            continue
        seen.add(key)
        where = "les sources citées" if cited else "aucune source citée"
        if not cited:
            issues.append(Issue("chiffre", f"« {written} » n'est appuyé par {where}", written))
        else:
            issues.append(Issue("chiffre", f"« {written} » ne figure pas dans {where}", written))
    given = contact_keys([*shown, *agent])
    for value in contacts(text):
        if is_premium(value):
            issues.append(Issue("coordonnee", "numéro surtaxé retiré", value))
        elif _contact_key(value) not in given:
            issues.append(Issue("coordonnee", "coordonnée absente des sources, retirée", value))
    run = longest_copy(text, cited or shown)
    if run > COPY_WORDS:
        issues.append(
            Issue("copie", f"{run} mots recopiés d'une source : à reformuler ou à citer entre « »")
        )
    for quote in _QUOTE.findall(text):
        if len(_words(quote)) > QUOTE_MAX_WORDS:
            issues.append(Issue("copie", "citation entre « » trop longue : à réduire"))
    if speaks_of_sources(text):
        issues.append(Issue("sources", "parle des documents fournis, pas du sujet : à réécrire"))
    return issues


def apply(text: str, issues: Sequence[Issue]) -> str:
    """``text`` with its stray contacts removed and one « à vérifier » mark per issue at the end
    (before the citation marks that close it, so that the sources stay visible)."""
    for issue in issues:
        if issue.kind == "coordonnee" and issue.value:
            text = text.replace(issue.value, "[coordonnée retirée]")
    if not issues:
        return text
    marks = " ".join(issue.mark() for issue in issues)
    # Before the final point: the renderer closes the part (". [2]" would read badly).
    return f"{text.rstrip().rstrip('.;')} {marks}"


def unmarked_paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of ``text`` that carry no « à vérifier » mark."""
    return [p for p in re.split(r"\n\s*\n", text) if p.strip() and not MARK_PATTERN.search(p)]
