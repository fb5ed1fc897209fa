"""The model's part of a draft as a structure, enforced by the engine, rendered by the program.

The model does not choose the form of the document: it fills a JSON schema that the engine turns
into a grammar (llama.cpp GBNF through llama-cpp-python's ``response_format``; ``response_format``
json_schema on a llama.cpp or vLLM server). Two shapes:

- ``prose`` (letters, answers, notes, questions): ``{"paragraphes": [{"sources": [2],
  "texte": "..."}]}``: each paragraph names the numbers of the sources it rests on *before* its
  text, so the model picks its evidence first and the program can check the text against it;
- ``acte`` (délibérations, arrêtés): ``{"visas": [1, 3], "considerants": [...], "articles":
  [...]}``: the visas are source numbers only; the program writes each visa from the cited legal
  text itself (its title and the article numbers of its evidence).

:func:`parse_partial` reads the JSON while it streams (a truncated document is closed), so that
:func:`render` can show the paragraphs as they are written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.evidence import REFERENCE_LEAD
from assistant.textnorm import fold, lexical_terms, light_terms
from assistant.verify import figure_keys, figures, supported

# Bounds of the structure (the grammar enforces them; they also bound the generation time).
MAX_PARAGRAPHS = 4
MAX_SOURCES_PER_PART = 3
MAX_VISAS = 4
MAX_CONSIDERANTS = 4
MAX_ARTICLES = 4


def _sources_schema(numbers: Sequence[int], min_items: int) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "integer", "enum": list(numbers) or [1]},
        "minItems": min_items,
        "maxItems": MAX_SOURCES_PER_PART,
    }


# A JSON string's characters as the engine's own string grammar allows them (llama.cpp's
# json-schema-to-grammar: any character but « " », « \\ » and the control characters, or an
# escape), for a ``pattern`` that must not let the model end or break the string.
_JSON_CHAR = r'([^"\\\x00-\x1f\x7f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))'


def opening_pattern(openings: Sequence[str]) -> str:
    """A JSON-schema ``pattern`` for a string that opens with one of ``openings`` (as written,
    then at least one more character): the grammar makes the model start each article of a
    délibération with a decision (« Le Conseil municipal approuve … »), not with the rule it
    read (« Le maire peut … »). ``openings`` is never empty."""
    # Plain groups and escapes only: the engines' pattern converters (llama.cpp's, vLLM's) take
    # a subset of regular expressions (no « (?: », and « re.escape » escapes spaces).
    alternatives = "|".join(re.sub(r'([\\^$.|?*+()\[\]{}"])', r"\\\1", o) for o in openings)
    return f"^({alternatives}){_JSON_CHAR}+$"


def _parts(
    numbers: Sequence[int], min_sources: int, lo: int, hi: int, openings: Sequence[str] = ()
) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string", "minLength": 1}
    if openings:
        text = {"type": "string", "pattern": opening_pattern(openings)}
    return {
        "type": "array",
        "minItems": lo,
        "maxItems": hi,
        "items": {
            "type": "object",
            "properties": {
                "sources": _sources_schema(numbers, min_sources),
                "texte": text,
            },
            "required": ["sources", "texte"],
            "additionalProperties": False,
        },
    }


def schema_for(
    form: str,
    numbers: Sequence[int],
    min_paragraphs: int = 1,
    article_openings: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON schema of the model's part for a template form (``acte`` or anything else,
    which is prose) and the source numbers it may cite; prose has at least ``min_paragraphs``
    paragraphs (at most :data:`MAX_PARAGRAPHS`); an act's articles open with one of
    ``article_openings`` when it is given (:func:`opening_pattern`)."""
    if form == "acte":
        return {
            "type": "object",
            "properties": {
                "visas": {
                    "type": "array",
                    "items": {"type": "integer", "enum": list(numbers) or [1]},
                    "minItems": 0,
                    "maxItems": MAX_VISAS,
                },
                "considerants": _parts(numbers, 1, 1, MAX_CONSIDERANTS),
                "articles": _parts(numbers, 0, 1, MAX_ARTICLES, article_openings),
            },
            "required": ["visas", "considerants", "articles"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "paragraphes": _parts(numbers, 1, min(min_paragraphs, MAX_PARAGRAPHS), MAX_PARAGRAPHS)
        },
        "required": ["paragraphes"],
        "additionalProperties": False,
    }


# --- reading the JSON while it streams -----------------------------------------------------------


def close_json(raw: str) -> str:
    """A truncated JSON text closed so that it parses: an open string is ended (an unfinished
    escape dropped), a dangling key, colon or comma removed, open brackets closed.
    Hand-written (about 40 lines) rather than a new dependency for streaming previews."""
    stack: list[str] = []
    in_string = False
    escape = False
    for ch in raw:
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}" and stack:
            stack.pop()
    text = raw
    if in_string:
        if escape:
            text = text[:-1]
        text = re.sub(r"\\u[0-9a-fA-F]{0,3}$", "", text) + '"'
    text = text.rstrip()
    # A key without its value: {"texte" -> {  ;  {"texte": -> {"texte": null
    if stack and stack[-1] == "}":
        text = re.sub(r'([{,])\s*"(?:[^"\\]|\\.)*"\s*$', r"\1", text)
    if text.endswith(":"):
        text += " null"
    text = text.rstrip().rstrip(",")
    return text + "".join(reversed(stack))


def parse_partial(raw: str) -> dict[str, Any] | None:
    """The structure written so far, or None when ``raw`` is not (the start of) a JSON object."""
    text = raw.strip()
    if not text.startswith("{"):
        return None
    for candidate in (text, close_json(text)):
        try:
            # strict=False: a raw line break inside a text value (llama-cpp-python's grammar for
            # JSON strings lets control characters through) is text, not a broken document.
            value = json.loads(candidate, strict=False)
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else None
    return None


# --- the structure as data -----------------------------------------------------------------------


@dataclass
class Part:
    """A paragraph, a considérant or an article: the model's text and the sources it names."""

    text: str
    sources: list[int] = field(default_factory=list)


@dataclass
class Structure:
    """What the model wrote, validated: prose paragraphs, or an act's parts."""

    form: str
    paragraphs: list[Part] = field(default_factory=list)
    visas: list[int] = field(default_factory=list)
    considerants: list[Part] = field(default_factory=list)
    articles: list[Part] = field(default_factory=list)

    def parts(self) -> list[Part]:
        return [*self.paragraphs, *self.considerants, *self.articles]


_DELIMITERS = re.compile(r"<<[^<>]{0,200}>>|‹‹[^‹›]{0,200}››|\[\[?\s*SOURCE[^\]]{0,200}\]\]?", re.I)
_INLINE_CITE = re.compile(r"\s*\[\s*\d{1,3}(?:\s*[,;-]\s*\d{1,3})*\s*\]")


# A blank the model left in its own way (« prévu le [date] », « [Nom du demandeur] », « le
# XX/XX/XXXX »): written as the program writes the fields it lacks, « [À COMPLÉTER : date] »,
# so that the agent finds every blank by one mark. Up to six words with a letter, no digit (not
# a citation « [2] »), not a mark already.
_BARE_BLANK = re.compile(
    r"\[(?!\s*(?:(?i:à\s+(?:compléter|vérifier))|sic\s*\]))"
    r"\s*((?=[^\]]*[^\W\d_])[^\[\]\d]{2,60}?)\s*\]"
)
# The evidence's mark of skipped lines (evidence.render_lines), copied by the model into its
# prose: « Certificat de concubinage [...]. » (K16). Inside a quotation « … » it is the
# ordinary elision mark and stays.
_GAP_MARK = re.compile(r"\s*\[\s*(?:…|\.{2,4})\s*\]")
_QUOTATION = re.compile(r"(«[^«»]*»)")
# A list the model wrote inside its sentence, items after « - » (« les documents suivants : -
# Formulaire cerfa - Photocopie d'un justificatif »): read as an enumeration, items separated
# by commas, up to the sentence's end. A hyphen inside a word (« Saint-Aubin », « L. 2121-17 »)
# has no space around it and is left alone.
_INLINE_LIST = re.compile(r"(?<=:)\s+-\s+([^.!?]+)")
_LIST_DASH = re.compile(r"\s*[,;]?\s+-\s+")
_XX_DATE = re.compile(r"\b(?:XX|JJ)[/.](?:XX|MM)[/.](?:XXXX|AAAA|20XX|\d{4})\b", re.IGNORECASE)
_DANGLING_ITEM = re.compile(r"(?<=[.!?…»])\s+(?:\d{1,2}[.)]?|[-•–])$")


def clean_text(text: Any) -> str:
    """A model string as document text: one line, no prompt delimiters, no ``[n]`` marks (the
    program writes them from the part's sources), no « […] » of the evidence outside a
    quotation, no Markdown emphasis, no braces, its own
    blanks (« [date] ») written « [À COMPLÉTER : date] »; empty when no word is left (a
    placeholder « … » copied from the format hint)."""
    if not isinstance(text, str):
        return ""
    text = _DELIMITERS.sub("", text)
    text = _INLINE_CITE.sub("", text)
    text = "".join(
        piece if k % 2 else _GAP_MARK.sub("", piece)
        for k, piece in enumerate(_QUOTATION.split(text))
    )
    text = re.sub(r":\s*\.(?!\.)", ":", text)  # « suivants : [...]. » read « suivants :. »
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = text.replace("**", "").lstrip("#> ")
    # Braces are never document text: JSON debris a small model wrote inside a string.
    text = text.replace("{", " ").replace("}", " ")
    if not re.search(r"\w", text):  # "…", the format hint's placeholder, or punctuation alone
        return ""
    text = _XX_DATE.sub("[À COMPLÉTER : date]", text)
    text = _BARE_BLANK.sub(_blank, text)
    # A list's next number left alone after the last item (« … publiques. 5. »): the model
    # stopped or was stopped before writing the item.
    text = _DANGLING_ITEM.sub("", " ".join(text.split()))
    return _INLINE_LIST.sub(_enumeration, text)


def _enumeration(match: re.Match[str]) -> str:
    """The items of an inline « - » list as an enumeration: « : certificat de célibat,
    certificat de concubinage » (items in lower case, but for an acronym; a list opened inside
    an item, « auprès de : - la Banque… », keeps its colon). Items of one word or opening with a
    figure are a range (« Horaires : 9 h - 12 h »), left as written."""
    items = [i.strip() for i in _LIST_DASH.split(match.group(1)) if i.strip()]
    if not all(len(i.split()) >= 2 and i[0].isalpha() for i in items):
        return match.group(0)  # a range (« 9 h - 12 h », « lundi - vendredi »), not a list
    text = ", ".join(_lower_first(i) for i in items).replace(":,", ":")
    return f" {text}"


# The model attributing a statement to the prompt's numbering rather than making it: « Considérant
# que le texte de la source 1 précise que le conseil municipal doit délibérer… » (D03, H03, H04
# of session 28), « Selon la source 2, … ». The statement stays, cited by its number anyway.
_SOURCE_NUMBERS = r"(?:la |les )?sources?\s*(?:n°\s*)?\d+(?:\s*(?:,|et)\s*\d+)*"
_SOURCE_TALK = re.compile(
    rf"\b(?:(?:le )?texte d[eu] |l['’]extrait d[eu] |le document d[eu] )?{_SOURCE_NUMBERS}\s+"
    r"(?:précis|indiqu|prévoi|dispos|rappel|mentionn|stipul|expliqu|énonc|affirm|"
    r"soulign|établi|exig)\w*\s+(?:que|qu['’])\s*"
    rf"|\b(?:selon|d['’]après|conformément à) {_SOURCE_NUMBERS}\s*,\s*",
    re.IGNORECASE,
)


def drop_source_talk(text: str) -> str:
    """``text`` without the words that attribute a statement to a source's number instead of
    making it (« le texte de la source 1 précise que X » → « X », « Selon la source 2, X » →
    « X »); the part cites that source anyway. A sentence that opened with those words opens
    with a capital. What says nothing but the source (« le texte de la source 2 est
    pertinent ») is left for :func:`assistant.verify.check_paragraph` to mark."""
    out = text
    while m := _SOURCE_TALK.search(out):
        before, after = out[: m.start()], out[m.end() :]
        if re.search(r"qu['’]\s*$", m.group(0)):  # « … précise qu'il » : the elision moves back
            que = re.search(r"\bque\s*$", before, re.IGNORECASE)
            before = before[: que.start()] + "qu'" if que else before
        out = before + after
    if out == text:
        return text
    # a statement's own first letter, at the start of the text or of a sentence
    out = re.sub(
        r"(^\s*|[.!?]\s+)(«\s*)?([a-zà-ÿ])",
        lambda m: m.group(1) + (m.group(2) or "") + m.group(3).upper(),
        out,
    )
    return " ".join(out.split())


# The parts an instruction names (the note's « la règle applicable ; les conditions, exceptions
# ou points de vigilance ; si les sources le permettent, ce que la commune doit faire »), which
# the model writes as its sentences' openings: « La règle applicable est que… » (L09), « Les
# conditions sont suivantes : » (M10), « Si les sources le permettent, la commune doit… »
# (M10), « La règle applicable est le texte de l'article L. 2121-7… » (N01, K10), « … est
# l'article L. 231-1 du CRPA, qui stipule que… » (N04). Each label as the instruction writes it.
SCAFFOLD_LABELS = (
    "règle applicable",
    "conditions",
    "exceptions",
    "points de vigilance",
    "si les sources le permettent",
)
_SCAFFOLD_IS = (
    r"^(?:la\s+|les\s+)?(?P<label>règle\s+applicable|conditions|exceptions|points\s+de\s+vigilance)"
    r"\s+(?:est|sont)\s+"
)
# « … est que X », « … sont les suivantes : X », « … est : X » -> « X »
_SCAFFOLD_THAT = re.compile(
    _SCAFFOLD_IS + r"(?:(?:(?:la|les)\s+)?(?:suivantes?\s*)?(?::\s*|que\s+|qu['’]\s*)"
    # « … est le texte de la source 1, qui précise que X » (M09)
    rf"|(?:le\s+texte\s+d[eu]\s+)?{_SOURCE_NUMBERS}\s*,?\s+qui\s+\w+\s+"
    r"(?:que\s+|qu['’]\s*))",
    re.IGNORECASE,
)
# « La règle applicable est (le texte de) l'article X, qui prévoit que Y » -> « L'article X
# prévoit que Y »
_SCAFFOLD_TEXT = re.compile(
    _SCAFFOLD_IS + r"(?:le\s+texte\s+(?:de\s+|d['’]\s*))?"
    r"(?=l['’]\s*article|les\s+articles|le\s+code|la\s+loi|le\s+décret|l['’]\s*ordonnance)",
    re.IGNORECASE,
)
_WHICH = re.compile(r",\s+qui\s+(?=\w)")
_REFERENCE_ONLY = re.compile(r"(?:l['’]\s*)?articles?\s+[LRD]?\.?\s?\d[^.:]*\.?\s*$", re.IGNORECASE)
_SOURCES_PERMIT = re.compile(r"^si\s+les\s+sources\s+le\s+permettent\s*,\s*", re.IGNORECASE)


def drop_scaffold(text: str, instructions: str) -> str:
    """``text`` without the labels of its instruction's parts opening its sentences (see
    :data:`SCAFFOLD_LABELS`; only the labels ``instructions`` uses): « La règle applicable est
    que X » → « X », « Les conditions sont suivantes : X » → « X », « Si les sources le
    permettent, X » → « X », « La règle applicable est le texte de l'article L. 2121-7, qui
    prévoit que X » → « L'article L. 2121-7 prévoit que X ». A statement's first letter is
    upper case."""
    told = fold(instructions)
    used = {fold(label) for label in SCAFFOLD_LABELS if fold(label) in told}
    if not used:
        return text

    def label_of(m: re.Match[str]) -> str:
        return " ".join(fold(m.group("label")).split())

    out: list[str] = []
    for sentence in _SENTENCES.split(text):  # not after « L. » of « L. 231-1 »
        new = sentence
        if fold("si les sources le permettent") in used:
            new = _SOURCES_PERMIT.sub("", new, count=1)
        m = _SCAFFOLD_THAT.match(new)
        if m and label_of(m) in used:
            # « Les conditions sont que la convocation soit adressée… » stays: without its label
            # the subjunctive would stand alone. « La règle applicable est que » states the rule.
            that = re.search(r"\bqu(?:e|['’])\s*$", m.group(0))
            through_source = "source" in fold(m.group(0))
            rest = new[m.end() :]
            if _REFERENCE_ONLY.match(rest):
                pass  # « La règle applicable est : Article L411-2 du CRPA. » says which text
            elif not that or through_source or label_of(m) == fold("règle applicable"):
                new = rest
        elif (m := _SCAFFOLD_TEXT.match(new)) and label_of(m) in used:
            rest = new[m.end() :]
            # Only where the rest goes on with what the text provides: « … est le texte de
            # l'article L. 112-3 du CRPA. » alone would lose its verb.
            if _WHICH.search(rest) or " : " in rest:
                new = _WHICH.sub(" ", rest, count=1)
        if new != sentence and new:
            new = new[0].upper() + new[1:]
        out.append(new)
    return " ".join(p for p in out if p)


def drop_asked(text: str, questions: Sequence[str]) -> str:
    """``text`` without the resident's own questions copied into it (seen in a reply: « Pourriez-
    vous m'indiquer quels taux la Ville a votés pour 2014… ? » as the answer's first sentence):
    the letter asked them, the reply does not. ``questions`` may also hold the resident's own
    statements (:func:`resident_statements`). A sentence of five words or more, matched whole
    (case and spacing aside); ``text`` itself when nothing else would remain."""
    out = _without_questions(text, questions)
    return out if re.search(r"\w", out) else text


# The resident speaking of themselves (« je », « j'ai », « ma mutuelle », « notre fils »).
_FIRST_PERSON = re.compile(r"(?<!\w)(?:je|j[’']|m[’']|moi|mon|ma|mes|nous|notre|nos)(?!\w)", re.I)
_LETTER_SENTENCES = re.compile(r"(?<=[.!?…])\s+|\n+")


def resident_statements(letter: str) -> list[str]:
    """The sentences of a resident's ``letter`` in which the resident speaks of themselves (in
    the first person) and that are not questions, in order: a reply that copies one says it
    in the town's voice. L13's reply (session 31) opened with Mme Marquet's own « Je trouve ce
    refus injustifié et je souhaite le contester. » (gone as a demand, « je souhaite »); her
    account « Je suis repartie sans rien… » asks nothing and would have stayed.
    :func:`drop_asked` removes them with the questions (five words or more, matched whole)."""
    out = []
    for sentence in _LETTER_SENTENCES.split(letter):
        sentence = " ".join(sentence.split())
        if sentence and not sentence.endswith("?") and _FIRST_PERSON.search(sentence):
            out.append(sentence)
    return out


# A first-person possessive and the word it owns (« ma cotisation », « mes avis »).
_MY = re.compile(r"\b(mon|ma|mes)\s+([a-zà-ÿœæ-]{3,})", re.IGNORECASE)


def resident_possessives(text: str, letter: str) -> str:
    """``text`` with the resident's own things written as theirs: « mon », « ma », « mes » before
    a word the resident's ``letter`` owns the same way become « votre », « vos ». K15's reply
    (session 32) paraphrased M. Molinier's questions in his own voice (« Si ces taux ne
    changent pas, alors le montant de ma cotisation reste inchangé », « la valeur de mon
    impôt »). The town's own « mes services » stays: the letter does not say it."""
    owned = {(m.group(1).lower(), m.group(2).lower()) for m in _MY.finditer(letter)}
    if not owned:
        return text

    def repl(m: re.Match[str]) -> str:
        mine = m.group(1)
        if (mine.lower(), m.group(2).lower()) not in owned:
            return m.group(0)
        yours = "vos" if mine.lower() == "mes" else "votre"
        return f"{yours.capitalize() if mine[0].isupper() else yours} {m.group(2)}"

    return _MY.sub(repl, text)


def asks_only(text: str, questions: Sequence[str]) -> bool:
    """Whether ``text`` is nothing but the resident's questions given back (K15 once replied
    with its three questions as its three paragraphs), as :func:`drop_asked` matches them."""
    return bool(questions) and not re.search(r"\w", _without_questions(text, questions))


def _without_questions(text: str, questions: Sequence[str]) -> str:
    out = text
    for question in questions:
        words = question.split()
        if len(words) < 5:
            continue
        pattern = re.compile(r"\s+".join(map(re.escape, words)), re.IGNORECASE)
        out = pattern.sub(" ", out)
    return " ".join(out.split())


# The small model's filler around what it has to say (R01, K01, H09 of the twelfth pass): « Pour
# répondre à votre question, Madame Lefèvre, il est important de comprendre comment… »,
# « Voici les informations que nous avons recueillies. », « Il est important de noter que X ».
# A clerk deletes these words; the program does, and keeps what they carried.
_FILLER_LEAD = re.compile(
    r"^(?:pour|afin de) (?:répondre|donner suite) à votre (?:question|demande|courrier|lettre)"
    r"(?:\s*,\s*(?:madame|monsieur)[^,.]{0,40})?\s*,\s*"
    r"(?:(?:je|nous) (?:peux|pouvons) vous (?:donner|apporter|communiquer) les (?:informations|"
    r"éléments|précisions) suivant(?:e)?s\s*:\s*)?",
    re.IGNORECASE,
)
_NOTE_THAT = re.compile(
    r"^il (?:est|convient|faut|importe)(?: à| important| essentiel| utile)?(?: de)? "
    r"(?:noter|souligner|rappeler|préciser|signaler) que\s+",
    re.IGNORECASE,
)
_EMPTY_SENTENCE = re.compile(
    r"^(?:il (?:est|semble) (?:important|essentiel|utile|nécessaire) de (?:bien )?comprendre|"
    r"voici (?:les|des|quelques) (?:informations|éléments|précisions)|"
    r"(?:je|nous) (?:vais|allons) vous (?:expliquer|présenter|détailler))\b",
    re.IGNORECASE,
)


def drop_filler(text: str) -> str:
    """``text`` without the filler a small model writes around its content: a lead-in
    answering the request in general (« Pour répondre à votre question, Madame X, … », « …, je
    peux vous donner les informations suivantes : ») goes, and so does « Il est important de
    noter que » before a statement; a sentence that only announces (« il est important de
    comprendre… », « Voici les informations… », « Je vais vous expliquer… ») and holds no
    figure goes whole. ``text`` itself when nothing else would remain."""
    out = " ".join(_content_sentences(text))
    return out if re.search(r"\w", out) else text


def filler_only(text: str) -> bool:
    """Whether every sentence of ``text`` is filler (:func:`drop_filler`): R01's only paragraph
    read « Pour répondre à votre question, Madame Lefèvre, il est important de comprendre
    comment l'attestation d'accueil fonctionne… Voici les informations claires que nous avons
    recueillies. », and said nothing."""
    return not any(re.search(r"\w", s) for s in _content_sentences(text))


def _content_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that :func:`drop_filler` keeps, their lead-ins removed."""
    kept: list[str] = []
    for sentence in _SENTENCES.split(text):
        bare = _NOTE_THAT.sub("", _FILLER_LEAD.sub("", sentence.strip()))
        if not bare or (_EMPTY_SENTENCE.match(bare) and not re.search(r"\d", bare)):
            continue
        if bare != sentence.strip():  # a statement's own first letter, inside « » too
            bare = re.sub(r"^(«\s*)?(\w)", lambda m: (m.group(1) or "") + m.group(2).upper(), bare)
        kept.append(bare)
    return kept


_QUESTION = re.compile(r"[^.!?»]*\?")


def drop_title_questions(text: str, titles: Sequence[str]) -> str:
    """``text`` without a question copied from a source's title (a Q&A fiche's « Une mairie
    peut-elle être le siège social d'une association ? » opened H01's letter, the answer
    after it): a sentence ending in « ? » of at least four terms, 80 % of them in one title
    that is itself a question. ``text`` itself when nothing else would remain."""
    asked = [set(lexical_terms(t)) for t in titles if t.strip().endswith("?")]
    if not asked:
        return text

    def drop(match: re.Match[str]) -> str:
        terms = set(lexical_terms(match.group(0)))
        if len(terms) >= 4 and any(len(terms & title) >= 0.8 * len(terms) for title in asked):
            return " "
        return match.group(0)

    out = " ".join(_QUESTION.sub(drop, text).split())
    if out != " ".join(text.split()):
        # The « Oui, » or « Non, » that answered the dropped question answers nothing now;
        # the sentence after it carries the answer (« Oui, si le maire le décide, … »).
        out = re.sub(
            r"^(?:oui|non)\s*,\s*(\w)", lambda m: m.group(1).upper(), out, flags=re.IGNORECASE
        )
    return out if re.search(r"\w", out) else text


# --- the reader addressed as « vous » -------------------------------------------------------------

_CIVILITIES = r"(?:Monsieur|Madame|M\.|Mme\.?|Ma[îi]tre|Me|Docteur)"
# Third person -> « vous », for the verbs a reply puts after the reader's name (« Monsieur
# Lambert doit faire un recours »). Hand-written: no conjugation library in the stack, and the
# list is short; a verb not in it is left as written.
_VOUS = {
    **dict.fromkeys(("doit", "doivent"), "devez"),
    **dict.fromkeys(("devra", "devront"), "devrez"),
    **dict.fromkeys(("devrait", "devraient"), "devriez"),
    **dict.fromkeys(("peut", "peuvent"), "pouvez"),
    **dict.fromkeys(("pourra", "pourront"), "pourrez"),
    **dict.fromkeys(("pourrait", "pourraient"), "pourriez"),
    **dict.fromkeys(("a", "ont"), "avez"),
    **dict.fromkeys(("aura", "auront"), "aurez"),
    **dict.fromkeys(("est", "sont"), "êtes"),
    **dict.fromkeys(("sera", "seront"), "serez"),
    **dict.fromkeys(("fait", "font"), "faites"),
    **dict.fromkeys(("va", "vont"), "allez"),
    **dict.fromkeys(("reçoit", "reçoivent"), "recevez"),
    **dict.fromkeys(("recevra", "recevront"), "recevrez"),
    **dict.fromkeys(("obtient", "obtiennent"), "obtenez"),
    **dict.fromkeys(("obtiendra", "obtiendront"), "obtiendrez"),
    **dict.fromkeys(("sait", "savent"), "savez"),
    **dict.fromkeys(("veut", "veulent"), "voulez"),
    **dict.fromkeys(("dispose", "disposent"), "disposez"),
    **dict.fromkeys(("souhaite", "souhaitent"), "souhaitez"),
    **dict.fromkeys(("bénéficie", "bénéficient"), "bénéficiez"),
    **dict.fromkeys(("trouve", "trouvent"), "trouvez"),
    **dict.fromkeys(("conteste", "contestent"), "contestez"),
    **dict.fromkeys(("demande", "demandent"), "demandez"),
    **dict.fromkeys(("envoie", "envoient"), "envoyez"),
    **dict.fromkeys(("dépose", "déposent"), "déposez"),
}
_POSSESSIVE = {"sa": "votre", "son": "votre", "ses": "vos", "leur": "votre", "leurs": "vos"}


def _reader_name(recipient: str) -> str | None:
    """The pattern of the reader's name as a draft writes it, from the recipient field: a
    civility then a name (« Monsieur Lambert », « Madame Da Silva », « Monsieur Le Goff »,
    « Monsieur et Madame Castel »), matched by its last word with any civility and up to two
    capitalised words before it (« M. Bernard Lambert », « Madame Da Silva »); a title with its
    complement (« Madame la Présidente du comité… ») as :func:`_reader_title` matches it. None
    for a bare title (« Monsieur le Président ») or no civility. The field's first line (or its part
    before a comma) is the name: the UI's recipient is an address block (« Monsieur Paul
    Garnier⏎4 rue des Vignes », whose last word « Vignes » had been taken for the name)."""
    text = " ".join(re.split(r"[,\n]", recipient.strip(), maxsplit=1)[0].split())
    civility = rf"(?i:{_CIVILITIES}(?:\s+(?:et|ou)\s+{_CIVILITIES})?)"
    if title := _reader_title(text, civility):
        return title
    m = re.match(rf"^{civility}\s+(?!(?:le|la|les|l['’])\b)(\S.*)$", text)
    if not m or not m.group(1)[:1].isupper():
        return None
    surname = re.escape(m.group(1).split()[-1])
    return rf"\b{civility}\s+(?:[A-ZÀ-Ý][\w'-]*\s+){{0,2}}{surname}\b"


_COMPLEMENT_LEAD = re.compile(r"^(?:de|du|des|d['’])$", re.IGNORECASE)
_ARTICLES = {"la", "le", "les", "l'", "l’"}


def _reader_title(text: str, civility: str) -> str | None:
    """The pattern of a reader addressed by a title with its complement (« Madame la
    Présidente du comité de quartier Est », « Monsieur le Directeur de la société BRL »): the
    civility (optional), the article, the title word, then the complement at least to its first
    word that is not a preposition or an article (« la présidente du comité… », « le président
    de l'association… »). A bare title (« le président », « le maire ») stays a third person:
    the sources speak of every mayor and president. None without a complement. C04 (session
    31) wrote to the présidente « Je vous informe que Madame la Présidente du comité de
    quartier Est doit faire une déclaration préalable… »."""
    m = re.match(rf"^{civility}\s+(le|la|l['’])\s*(\w+)\s+(.+)$", text)
    if not m:
        return None
    words = re.findall(r"[\w-]+['’]?", m.group(3))
    if not words or not _COMPLEMENT_LEAD.match(words[0]):
        return None
    needed = next(
        (
            i
            for i, w in enumerate(words)
            if not _COMPLEMENT_LEAD.match(w) and w.lower() not in _ARTICLES
        ),
        None,
    )
    if needed is None:
        return None

    def joined(ws: Sequence[str]) -> str:
        # Spaces between words, none after an elided article (« de l'association »).
        out = ""
        for i, w in enumerate(ws):
            if i:
                out += r"\s*" if ws[i - 1][-1:] in "'’" else r"\s+"
            out += re.escape(w.rstrip("'’")) + ("['’]" if w[-1:] in "'’" else "")
        return out

    head = joined(words[: needed + 1])
    tail = ""  # the rest of the complement, word by word, optional
    for i in range(len(words) - 1, needed, -1):
        gap = r"\s*" if words[i - 1][-1:] in "'’" else r"\s+"
        tail = f"(?:{gap}{joined(words[i : i + 1])}{tail})?"
    article = r"(?:[Ll]e|[Ll]a|[Ll]['’])\s*"
    return rf"(?:\b{civility}\s+)?(?<!\w){article}(?i:{re.escape(m.group(2))})\s+{head}{tail}"


def address_reader(text: str, recipient: str) -> str:
    """``text`` with the reader named as the subject of a verb written to him (« Monsieur
    Lambert doit faire un recours » in a letter to Monsieur Lambert -> « vous devez faire un
    recours »), the possessive right after the verb included (« doit déposer sa demande » ->
    « devez déposer votre demande »), and « son », « sa », « ses » in the rest of that clause
    (« … avant son vide-grenier » -> « … avant votre vide-grenier »; up to :data:`_CLAUSE_END`).
    ``recipient``: the letter's recipient field. Only the verbs of :data:`_VOUS`; anything else
    is left as written."""
    pattern = _reader_name(recipient)
    if pattern is None:
        return text
    rx = re.compile(
        pattern + r"\s+(ne\s+|n['’])?(\w+)(\s+(?:donc|également|aussi|alors|ensuite|"
        r"d'abord)\b)?(\s+[a-zà-ÿ]+(?:er|ir|re|oir))?(\s+(?:sa|son|ses|leur|leurs)\b)?",
    )

    def repl(m: re.Match[str]) -> str:
        verb = _VOUS.get(m.group(2).lower())
        if verb is None:
            return m.group(0)
        start = m.start() == 0 or bool(re.search(r"[.!?]\s*$", text[: m.start()]))
        negation = ("n'" if verb[0] in "aeéiou" else "ne ") if m.group(1) else ""
        possessive = m.group(5) or ""
        if possessive:
            possessive = " " + _POSSESSIVE[possessive.strip().lower()]
        subject = "Vous" if start else "vous"
        return f"{subject} {negation}{verb}{m.group(3) or ''}{m.group(4) or ''}{possessive}"

    out: list[str] = []
    done = 0
    found = list(rx.finditer(text))
    for j, m in enumerate(found):
        written = repl(m)
        out.append(text[done : m.start()] + written)
        done = m.end()
        if written != m.group(0):  # the rest of the clause is the reader's too
            clause = _CLAUSE_END.search(text, done)
            end = clause.start() if clause else len(text)
            if j + 1 < len(found):
                end = min(end, found[j + 1].start())
            out.append(_OWN.sub(lambda p: _POSSESSIVE[p.group(1).lower()], text[done:end]))
            done = end
    return "".join(out) + text[done:]


# Where the clause whose subject became « vous » ends: a punctuation mark, or a word bringing
# in another subject (a relative pronoun, a third person's pronoun).
_CLAUSE_END = re.compile(
    r"[.;:!?,]|\b(?:qui|que|qu['’]|dont|lequel|laquelle|il|elle|ils|elles|celui|celle)\b",
    re.IGNORECASE,
)
# The singular possessives only: « leur » is as often the sources' third parties' as the
# reader's (« … avant son vide-grenier » in a letter to the comité's présidente, C04).
_OWN = re.compile(r"\b(son|sa|ses)\b", re.IGNORECASE)


def _blank(match: re.Match[str]) -> str:
    what = " ".join(match.group(1).split())
    if len(what.split()) > 6:
        return match.group(0)
    return f"[À COMPLÉTER : {what[0].lower() + what[1:] if what[1:2].islower() else what}]"


def _numbers(value: Any, valid: set[int]) -> list[int]:
    if not isinstance(value, list):
        return []
    out: list[int] = []
    for item in value:
        ok = isinstance(item, int) and not isinstance(item, bool) and item in valid
        if ok and item not in out:
            out.append(item)
    return out


def _part_list(value: Any, valid: set[int]) -> list[Part]:
    parts: list[Part] = []
    if not isinstance(value, list):
        return parts
    for item in value:
        if not isinstance(item, dict):
            continue
        text = cited_article_clause(clean_text(item.get("texte")))
        if text:
            parts.append(Part(text, _numbers(item.get("sources"), valid)))
    return parts


def structure_of(data: dict[str, Any], form: str, valid: Sequence[int]) -> Structure:
    """The validated structure of a parsed JSON object: unknown source numbers dropped, empty
    texts skipped (a grammar-constrained answer has none; a server that ignored the schema may)."""
    ok = set(valid)
    if form == "acte":
        considerants = _part_list(data.get("considerants"), ok)
        articles = _part_list(data.get("articles"), ok)
        for part in considerants:  # the program writes "Considérant que" and "Article n :"
            part.text = _CONSIDERANT.sub("", part.text)
        for part in articles:
            part.text = strip_article_head(part.text)
        return Structure(
            form="acte",
            visas=_numbers(data.get("visas"), ok),
            considerants=[p for p in considerants if p.text],
            articles=[p for p in articles if p.text],
        )
    return Structure(form="prose", paragraphs=_part_list(data.get("paragraphes"), ok))


# --- repeats ---------------------------------------------------------------------------------

# Share of a part's terms found in an earlier part above which it says nothing new.
REPEAT_SHARE = 0.8
# Sentence ends inside a part (a quotation « … » is not cut).
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-Ý«])")


def _terms(text: str) -> set[str]:
    return set(lexical_terms(text))


def _repeats(text: str, earlier: Sequence[set[str]]) -> int | None:
    """Index of the earlier part (as term sets) that ``text`` repeats, or None."""
    terms = _terms(text)
    if not terms:
        return None
    for i, other in enumerate(earlier):
        if len(terms & other) / len(terms) >= REPEAT_SHARE:
            return i
    return None


# --- the agent's instruction given back as the letter's words -----------------------------------

# The verbs an agent's request gives its instruction with, in the infinitive (« Répondre au
# notaire… : indiquer le délai… », « rappeler les conditions… ») or the gerund (L03, session 29:
# « …, en rappelant ce qu'elle avait demandé et à quelle condition la somme sera versée » came
# back as the letter's « La somme sera versée en rappelant ce qu'elle avait demandé… »).
_INSTRUCTION = re.compile(
    r"\b((?:indiqu|rappel|pr[ée]cis|expliqu|inform|signal|communiqu|notifi)(?:er|ant)|"
    r"r[ée]pondre|r[ée]pondant|pr[ée]parer|pr[ée]parant|r[ée]diger|r[ée]digeant|"
    # « Écrire à l'étude notariale… pour lancer… » came back as « Je vous prie d'écrire à
    # l'étude notariale… » (L02, session 30); « Prévenir le service du cadastre… » (M02)
    r"[ée]crire|[ée]crivant|pr[ée]venir|pr[ée]venant|"
    # « Leur dire ce que la convention régularise… » came back as « Le conseil municipal a
    # également demandé à Monsieur le Directeur… de dire ce que la convention régularise… »
    # (M01, session 31); not the « dire » of « c'est-à-dire ».
    r"(?<!-)dire|disant|"
    r"transmettre|transmettant)\b",
    re.IGNORECASE,
)
# A sentence whose terms come from the agent's text at least this much restates it.
RESTATED_SHARE = 0.8
RESTATED_MIN_TERMS = 4
# A sentence about sending the letter itself is the task whatever its verb: C01 (session 31)
# ended « Vous devez envoyer un courrier à Monsieur le Président de l'association des
# commerçants qui demande les conditions pour installer des terrasses » from « Répondre au
# président de l'association des commerçants qui demande les conditions… ».
# In the infinitive only: « Je vous adresse ce courrier pour… » is the author's own purpose. The
# words of the phrase itself are not counted in the agent's share (they are never the agent's).
_SENDS_LETTER = re.compile(
    r"\b(?:envoyer|adresser|transmettre|[ée]crire|r[ée]diger|r[ée]pondre)\s+(?:un|une|le|la|"
    r"ce|cette|votre|notre)\s+(?:courrier|lettre|r[ée]ponse|note|message)\b",
    re.IGNORECASE,
)


def restated_instruction(text: str, agent: Sequence[str]) -> str:
    """The sentence of ``text`` that gives the agent's instruction back as the letter's own
    words, or ``""``: a sentence holding, in the infinitive, an instruction verb of the agent's
    text (``agent``: the request and fields), with at least :data:`RESTATED_MIN_TERMS` terms,
    :data:`RESTATED_SHARE` of them the agent's, and no figure. H02, to the notary, opened « Le
    notaire doit indiquer le délai dont dispose la commune pour exercer son droit de
    préemption. » from « …: indiquer le délai dont dispose la commune… »; the letter of issue
    10 asked its recipient « de rappeler les conditions d'attribution ». A sentence about
    sending a letter (:data:`_SENDS_LETTER`) counts whatever its verb. An author's own « Je
    vous informe que… » (conjugated) is the letter's purpose, not a restatement."""
    asked = " ".join(agent)
    verbs = {m.group(1).lower() for m in _INSTRUCTION.finditer(asked)}
    if not verbs:
        return ""
    theirs = _terms(asked)
    given = {key for _, key in figures(asked)}  # « voté au conseil du 22 mai »: the agent's
    for sentence in _SENTENCES.split(text.strip()):
        used = {m.group(1).lower() for m in _INSTRUCTION.finditer(sentence)}
        sends = _SENDS_LETTER.search(sentence)
        terms = _terms(_SENDS_LETTER.sub(" ", sentence) if sends else sentence)
        if (
            (used & verbs or sends)
            and len(terms) >= RESTATED_MIN_TERMS
            and len(terms & theirs) >= RESTATED_SHARE * len(terms)
            and not [key for _, key in figures(sentence) if key not in given]
        ):
            return sentence
    return ""


# The words that open an indirect question (« dire ce que…, sur quelle longueur…, si… »), as
# folded text writes them (« où » would be the conjunction « ou »: left out).
_ASKS = re.compile(r"\b(?:ce\s+que?|quel(?:le)?s?|si|comment|combien|quand|pourquoi|qui)\b")
ASKED_RUN_WORDS = 10  # words copied in a row from the request
ASKED_RUN_QUESTIONS = 2  # indirect questions within them


def restated_questions(text: str, request: str) -> str:
    """The sentence of ``text`` that copies the request's list of what to tell (at least
    :data:`ASKED_RUN_WORDS` words in a row of ``request``, holding at least
    :data:`ASKED_RUN_QUESTIONS` indirect questions), or ``""``: M01 (session 32) wrote « La
    ville demande ce que la convention régularise et autorise, sur quelle longueur en tout, si
    la Ville demande une indemnité, et comment se fera la publication de l'acte » from « Leur
    dire ce que la convention régularise et autorise, sur quelle longueur en tout, si… ». The
    facts a request gives (« le conseil a accepté la convention… ») hold no such questions."""
    asked = [w.strip(",;:.«»") for w in fold(request).split()]
    runs: set[tuple[str, ...]] = {
        tuple(asked[i : i + ASKED_RUN_WORDS]) for i in range(len(asked) - ASKED_RUN_WORDS + 1)
    }
    if not runs:
        return ""
    for sentence in _SENTENCES.split(text.strip()):
        words = [w.strip(",;:.«»") for w in fold(sentence).split()]
        for i in range(len(words) - ASKED_RUN_WORDS + 1):
            if tuple(words[i : i + ASKED_RUN_WORDS]) not in runs:
                continue
            end = i + ASKED_RUN_WORDS  # the copied run, as long as it goes
            while end < len(words) and tuple(words[end + 1 - ASKED_RUN_WORDS : end + 1]) in runs:
                end += 1
            if len(_ASKS.findall(" ".join(words[i:end]))) >= ASKED_RUN_QUESTIONS:
                return sentence
    return ""


# --- the direction of an act's decision ---------------------------------------------------------

# What a request or an article decides: to refuse (« s'opposant à la déclaration », « refus »,
# « interdisant ») or to grant (« autorisant », « accordant », « approuvant »).
_REFUSES = re.compile(
    r"\b(?:s'oppos\w*|oppos\w*|opposition|refus\w*|rejet\w*|rejett\w*|interdi\w*)", re.IGNORECASE
)
_GRANTS = re.compile(r"\b(?:autoris\w*|accord\w*|approuv\w*|accept\w*)", re.IGNORECASE)
# A verb under negation (« n'autorise pas », « ne s'oppose pas ») says the other way.
_NEGATION = re.compile(r"\b(?:ne|n')\s*(?:\w+\s+){0,2}?$", re.IGNORECASE)


def _direction(text: str) -> tuple[str, str] | None:
    """(« refuse » or « grant », the word) of the first decision verb of ``text`` that is not
    negated, or None."""
    found = sorted(
        [(m.start(), "refuse", m.group(0)) for m in _REFUSES.finditer(text)]
        + [(m.start(), "grant", m.group(0)) for m in _GRANTS.finditer(text)]
    )
    for start, way, word in found:
        if not _NEGATION.search(text[max(0, start - 20) : start]):
            return way, word
    return None


def contrary_decision(article: str, agent: Sequence[str]) -> str:
    """The word by which an act's first article decides the other way from the agent's request,
    or ``""``: the request refuses (« Arrêté du maire s'opposant à la déclaration préalable… »,
    objet « Opposition à… ») and the article grants (« Le Maire autorise le remplacement… »,
    H05's article 1er after its evidence gained a visa line), or the other way round. Only the
    first decision verb of each counts; a request that does both, or neither, says nothing."""
    asked = {d[0] for text in agent if (d := _direction(text))}
    said = _direction(article)
    if len(asked) != 1 or said is None or said[0] in asked:
        return ""
    return said[1]


# An act's author deciding about itself: « Le Maire autorise Monsieur le Maire … » (A03), « Le
# Maire autorise le maire de fixer… » (H06): the grammar made the article open with a decision,
# and the model put the rule it read (« le maire peut fixer ») after it.
_SELF_DECIDED = re.compile(
    r"^\s*le\s+(?P<author>maire|conseil municipal)\s+[^\W\d_]+(?:\s+à)?\s+"
    r"(?:à\s+|au\s+)?(?:monsieur\s+|madame\s+)?(?:le\s+)?"
    r"(?P<object>maire|conseil municipal)(?![-\w])",
    re.IGNORECASE,
)


def self_decided(article: str) -> str:
    """The opening of an article whose author decides about itself (« Le Maire autorise le
    Maire », « Le Conseil municipal donne au Conseil municipal »), as written, or ``""``.
    « Le Conseil municipal autorise le Maire à signer » is a decision and is not one of them."""
    m = _SELF_DECIDED.match(article)
    if m is None or m.group("author").lower() != m.group("object").lower():
        return ""
    return article[m.start() : m.end("object")].strip()


# A considérant about the act itself rather than a motive: « Considérant que la
# délibération demande la création d'une commission… » (L04, session 29), « Considérant que la
# délibération concerne la participation de la Ville… » (L05).
_ABOUT_ITSELF = re.compile(
    r"\b(?:(?:la|cette)\s+(?:présente\s+)?délibération|"
    r"(?:le|cet)\s+(?:présent\s+)?arrêté)\s+"
    r"(?:demande|concerne|porte\s+sur|vise|a\s+pour\s+objet|traite|"
    # « la délibération est basée sur le texte juridique du déclassement… » (M04, L06)
    r"(?:est\s+)?(?:basée|fondée)\s+sur|se\s+fonde\s+sur|repose\s+sur)\b",
    re.IGNORECASE,
)


def about_itself(considerant: str) -> str:
    """The words of a considérant that speak of the act itself instead of giving a motive (« la
    délibération demande », « le présent arrêté concerne »), as written, or ``""``. A motive
    that names another act (« la délibération du 24 avril 2014 a créé… ») or a resident's
    request (« la demande de M. Girard porte sur des volets ») is not one of them."""
    m = _ABOUT_ITSELF.search(considerant)
    return m.group(0) if m else ""


# Fewer words than this and a considérant is not a motive (see drop_repeats).
MIN_MOTIVE_WORDS = 5


_ENDED = re.compile(r"[.!?…»”)\]]$")
_SENTENCE_END = re.compile(r"[.!?…][»”)\]]*(?=\s)")


def drop_unfinished_tail(structure: Structure) -> tuple[Structure, bool]:
    """The structure without the unfinished end of its last part, for a generation that reached
    its token limit: that part keeps its complete sentences, or goes when it has none (a list
    cut at « 5 », a sentence cut mid-way), unless it is the only one of its kind (the draft's
    only paragraph, the act's only article): then it stays, ending on « […] », for the agent
    to complete rather than an empty draft. Returns the structure and whether it changed."""
    groups = [g for g in ("articles", "considerants", "paragraphs") if getattr(structure, g)]
    if not groups:
        return structure, False
    name = groups[0]  # the last group the model writes (the act's articles come last)
    parts: list[Part] = list(getattr(structure, name))
    last = parts[-1]
    if _ENDED.search(last.text.rstrip()):
        return structure, False
    ends = list(_SENTENCE_END.finditer(last.text))
    if ends:
        parts[-1] = replace(last, text=last.text[: ends[-1].end()])
    elif len(parts) > 1:
        parts.pop()
    else:
        parts[-1] = replace(last, text=f"{last.text.rstrip()} […]")
    trimmed = replace(structure)  # a copy; the caller's structure is left as it was
    setattr(trimmed, name, parts)
    return trimmed, True


def drop_repeats(structure: Structure, openings: Sequence[str] = ()) -> Structure:
    """The structure without the parts that repeat an earlier one: a considérant that restates a
    considérant, an article that restates a considérant or an article, a paragraph that restates
    a paragraph (the small model writes the same sentence from two sources), and inside the
    parts, a sentence said before; and the considérants of fewer than :data:`MIN_MOTIVE_WORDS`
    words. The repeat's sources go to the part it repeats. When every
    article of an act repeated a considérant, one article is left for the agent to write (an
    act without a decision is not an act).

    An article opening with one of ``openings`` (the template's ``articles_ouvertures``: a
    decision, « Le Maire refuse … la déclaration préalable… ») is checked against the other
    articles only: a decision names what its considérants name, and H05's opposition was
    dropped as a repeat of the considérant stating the request."""

    def absorb(into: Part, part: Part) -> None:  # a repeat's sources go to what it repeats
        into.sources += [n for n in part.sources if n not in into.sources]

    def keep(parts: list[Part], earlier: list[Part]) -> list[Part]:
        kept: list[Part] = []
        said = [_terms(s) for p in earlier for s in _SENTENCES.split(p.text)]
        for part in parts:
            # A decision is checked against the articles kept before it, not the considérants.
            decision = bool(openings) and part.text.startswith(tuple(openings))
            before = kept if decision else [*earlier, *kept]
            if not decision:
                # A sentence said before (in this part or an earlier one) goes; the part keeps
                # what it adds.
                sentences: list[str] = []
                for sentence in _SENTENCES.split(part.text):
                    if sentence.strip() and _repeats(sentence, said) is None:
                        sentences.append(sentence)
                        said.append(_terms(sentence))
                if not sentences:
                    if before:
                        absorb(before[-1], part)
                    continue
                part = replace(part, text=" ".join(sentences))
            target = _repeats(part.text, [_terms(p.text) for p in before])
            if target is None:
                kept.append(part)
                if decision:
                    said.append(_terms(part.text))
                continue
            absorb(before[target], part)
        return kept

    if structure.form != "acte":
        return replace(structure, paragraphs=keep(structure.paragraphs, []))
    # A motive is a sentence: a considérant of a few words is a scrap of a source (« Considérant
    # que le Conseil Adopte », the closing words of another deliberation), not a reason.
    motives = [p for p in structure.considerants if len(p.text.split()) >= MIN_MOTIVE_WORDS]
    considerants = keep(motives, [])
    articles = keep(structure.articles, considerants)
    if structure.articles and not articles:
        articles = [Part("[À COMPLÉTER : décision]")]
    return replace(structure, considerants=considerants, articles=articles)


# --- rendering ---------------------------------------------------------------------------------


def marks(sources: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in sources)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…»)" else text + "."


def _with_marks(text: str, sources: Sequence[int], end: str = ".") -> str:
    """``text`` with its citation marks before the final punctuation: "… [2]." / "… [2] ;"."""
    body = text.rstrip().rstrip(".;,:")
    cite = f" {marks(sources)}" if sources else ""
    return f"{body}{cite}{end}"


_CONSIDERANT = re.compile(r"^consid[ée]rant\s+(?:que\s+|qu['’])?", re.IGNORECASE)
_ARTICLE_HEAD = re.compile(r"^article\s+\d+\s*(?:er)?\s*[:.\-–]?\s*", re.IGNORECASE)


def _lower_first(text: str) -> str:
    """``text`` continuing a sentence: its first letter in lower case, unless its first word
    is an acronym (« CADA », « AOT »)."""
    if text and text[0].isupper() and not text.split()[0].isupper():
        return text[0].lower() + text[1:]
    return text


def _article_ref(letter: str, number: str, star: str = "") -> str:
    """A code article as a clerk writes it: ("l", "2121-8") -> "L. 2121-8"; with the star of
    an article taken by decree in Conseil d'État, ("R", "421-12", "*") -> "R.* 421-12"."""
    return f"{letter.upper()}.{star} {number}"


def considerant_line(text: str, sources: Sequence[int]) -> str:
    """ "Considérant que … [n] ;" whatever opening the model gave the text."""
    body = _lower_first(_CONSIDERANT.sub("", text.strip()))
    opening = (
        "Considérant qu'" if body[:1].lower() in "aeiouyéèêàh" and body else "Considérant que "
    )
    return _with_marks(opening + body, sources, " ;")


# The label the evidence puts before a code article's lines (« Article L2121-8 : … »), copied
# by the model at the head of a part.
_CODE_LABEL = re.compile(
    r"^article\s+([LRD])\.?\s?(\d+(?:-\d+)*(?:\s(?:bis|ter|quater))?)\s*:\s*", re.IGNORECASE
)


def cited_article_clause(text: str) -> str:
    """ "Article L2121-8 : Dans les communes…" -> "Aux termes de l'article L. 2121-8, dans les
    communes…": the evidence's label copied at the head of a part becomes the clause a clerk
    writes. Other texts are returned unchanged."""
    match = _CODE_LABEL.match(text.strip())
    if match is None:
        return text
    rest = text.strip()[match.end() :]
    if not rest:
        return text
    return f"Aux termes de l'article {_article_ref(*match.groups())}, {_lower_first(rest)}"


# The article a line of the evidence belongs to, as the evidence labels it (« Article L2121-17 »).
_CODE_ARTICLE = re.compile(r"^Article\s+([LRD])\.?\s?(\d+(?:-\d+)+)$")


def quoted_part(n: int, text: str, article: str, form: str) -> Part:
    """A source's sentence ``text`` as a part of the draft, quoted and cited ``[n]``:
    « Pour mémoire, l'article L. 2121-8 dispose : « … » » in prose; « aux termes de l'article
    L. 2121-8, « … » » for an act's considérant (« Considérant qu'… » is written by the
    renderer). ``article``: the sentence's article label (« Article L2121-8 »); a sentence of no
    code article is quoted bare (« Pour mémoire : « … » »)."""
    quoted = text.strip().rstrip(" .;")
    match = _CODE_ARTICLE.match(article.strip())
    ref = _article_ref(*match.groups()) if match else ""
    if form == "acte":
        quoted = _lower_first(quoted)
        body = f"aux termes de l'article {ref}, « {quoted} »" if ref else f"« {quoted} »"
    else:
        lead = f"Pour mémoire, l'article {ref} dispose :" if ref else "Pour mémoire :"
        body = f"{lead} « {quoted} »"
    return Part(body, [n])


# A part that already names a code article (« l'article L. 2131-6 », « L2121-17 »).
_NAMES_ARTICLE = re.compile(r"\b[LRD]\.?\s?\d{3,4}-\d")
# A sentence of the part and a line of its cited evidence are the same statement when they
# share at least this many terms, and this share of the shorter one's terms.
BASIS_MIN_TERMS = 3
BASIS_MIN_SHARE = 0.5
# A line of another cited source sharing this many times the terms of the best code line makes
# the sentence that source's statement (see with_legal_basis): K13's sentence shared 19 terms
# with its délibération's line and 4 with L. 2121-21's.
OTHER_SOURCE_MARGIN = 2
# With at least this many lines of evidence, a term on more than half of them is not counted.
BASIS_COMMON_MIN_LINES = 4


def _legal_reference(match: re.Match[str], title: str) -> str:
    """« article L. 2131-6 du code général des collectivités territoriales »: the article of
    an evidence label (:data:`_CODE_ARTICLE`) and the code its source's title names, if any
    (« Code des relations entre le public et l'administration (CRPA) — … »)."""
    code = re.sub(r"\s*\([^)]*\)$", "", title.split(" — ")[0].strip())
    ref = f"article {_article_ref(*match.groups())}"
    if code.lower().startswith("code "):
        ref += f" du {code[0].lower()}{code[1:]}"
    return ref


def with_legal_basis(text: str, evidence: Sequence[tuple[str, str, str]]) -> str:
    """``text`` with the code article its statement comes from: « Le préfet dispose de deux
    mois pour déférer une délibération au tribunal administratif (article L. 2131-6 du code
    général des collectivités territoriales). » ``evidence``: the cited sources' shown lines
    as (line, its article label « Article L2131-6 », the source's title, whose part before « —
    » names the code when it starts with « Code »).

    The reference goes after the sentence that shares the most terms with a line of a code
    article (at least :data:`BASIS_MIN_TERMS`, and :data:`BASIS_MIN_SHARE` of the shorter
    one's, and every figure of the sentence in the line, and no line of another source sharing
    :data:`OTHER_SOURCE_MARGIN` times as many), once a part; a part that already names an
    article is returned unchanged, and so is one that restates no such line. The
    small model drops the article more often than the rule (K12, N02 of the request files:
    in the prompt, not in the draft); the program, which knows which article each line of the
    evidence belongs to, writes it."""
    if _NAMES_ARTICLE.search(text):
        return text
    sentences = _SENTENCES.split(text.strip())
    line_terms = [set(light_terms(line)) for line, _, _ in evidence]
    # Terms on most of the evidence's lines (« conseil municipal » in the code's chapter on
    # the council) say nothing of which line a sentence restates: Q01's « Le quorum du
    # conseil municipal est de trois membres » is not L. 2121-18's huis clos « sur la demande
    # de trois membres ».
    counts = Counter(t for terms in line_terms for t in terms)
    common = (
        {t for t, n in counts.items() if n * 2 > len(line_terms)}
        if len(line_terms) >= BASIS_COMMON_MIN_LINES
        else set()
    )
    # The lines of a code article, once: their terms, their figures, the reference they give.
    # The lines of the other sources (a délibération, a fiche): a sentence restating one of
    # them at least OTHER_SOURCE_MARGIN times as closely as a code line is that source's
    # statement, not the code's. K13's « les membres de la Commission d'Appel d'Offres sont élus
    # au scrutin de liste… », copied from a délibération applying the Code des marchés publics,
    # was given « (article L. 2121-21 du code général des collectivités territoriales) », the
    # council's own votes « au scrutin »; a fiche paraphrasing the code (N04's « le silence
    # gardé pendant deux mois … vaut accord, sauf exceptions ») shares a little more than
    # L. 231-1 does and keeps its reference.
    articles: list[tuple[set[str], set[str], str]] = []
    others: list[set[str]] = []
    for (line, article, title), terms in zip(evidence, line_terms, strict=True):
        if match := _CODE_ARTICLE.match(article.strip()):
            articles.append((terms - common, figure_keys([line]), _legal_reference(match, title)))
        elif found := inline_reference(line):
            # Another source's line naming the code article it applies (« Conformément à
            # l'article L1413-1 du CGCT, la commission … comprend : », L10, session 31).
            code, named, count = found
            ref = f"{'article' if count == 1 else 'articles'} {named} du {code}"
            articles.append((terms - common, figure_keys([line]), ref))
        else:
            others.append(terms - common)
    best: tuple[int, int, str] | None = None  # (shared terms, sentence index, reference)
    for index, sentence in enumerate(sentences):
        mine = set(light_terms(sentence)) - common
        if not mine:
            continue
        closest_other = max((len(mine & theirs) for theirs in others), default=0)
        numbers = [key for _, key in figures(sentence)]
        for theirs, held, ref in articles:
            # A figure the line does not hold: another statement (Q01's « trois membres » is
            # not L. 2121-7's « trois jours francs »).
            if numbers and not all(supported(k, held) for k in numbers):
                continue
            shared = len(mine & theirs)
            if shared < BASIS_MIN_TERMS or shared < BASIS_MIN_SHARE * min(len(mine), len(theirs)):
                continue
            if closest_other >= OTHER_SOURCE_MARGIN * shared:
                continue
            if best is None or shared > best[0]:
                best = (shared, index, ref)
    if best is None:
        return text
    _, index, ref = best
    sentence = sentences[index]
    stop = re.search(r"\s*([.!?;:]?)\s*$", sentence)
    assert stop is not None
    sentences[index] = f"{sentence[: stop.start()]} ({ref}){stop.group(1)}"
    return " ".join(sentences)


def strip_article_head(text: str) -> str:
    """ "Article 2 : Le maire…" -> "Le maire…" (the program numbers the articles)."""
    return _ARTICLE_HEAD.sub("", text.strip())


def article_line(number: int, text: str, sources: Sequence[int]) -> str:
    body = strip_article_head(text)
    label = "1er" if number == 1 else str(number)
    return f"Article {label} : " + _with_marks(_sentence(body), sources, ".")


def render(structure: Structure, visa_lines: Sequence[str] = (), decision: str = "DÉCIDE :") -> str:
    """The body of the document from the structure (the frame is written elsewhere).

    Prose: one paragraph per part, its citation marks before its final point. Act: the visa
    lines given (written from the cited texts), the considérants, "Après en avoir délibéré,"
    or "ARRÊTE :", the numbered articles."""
    if structure.form != "acte":
        return "\n\n".join(_with_marks(_sentence(p.text), p.sources) for p in structure.paragraphs)
    blocks: list[str] = []
    if visa_lines:
        blocks.append("\n".join(visa_lines))
    if structure.considerants:
        blocks.append(
            "\n".join(considerant_line(p.text, p.sources) for p in structure.considerants)
        )
    if structure.articles:
        blocks.append(decision.strip())
        blocks.append(
            "\n".join(
                article_line(i, p.text, p.sources) for i, p in enumerate(structure.articles, 1)
            )
        )
    return "\n\n".join(blocks)


# --- visas from the cited legal texts ------------------------------------------------------------

_LEGAL_TITLE = re.compile(
    r"^\s*(code|loi|décret|decret|ordonnance|arrêté|arrete|délibération|deliberation|règlement|"
    r"reglement|circulaire|directive)\b",
    re.IGNORECASE,
)
_ARTICLE_REF = re.compile(r"\b([LRD])\s?\.?\s?(\d{3,4}(?:-\d+){1,2})\b")
# The label the evidence gives a code article's lines (« Article L2131-2 : … »), at a line's
# start: the text's own articles, where a reference inside one may be to another code.
_ARTICLE_LABEL = re.compile(
    r"^Article\s+([LRD])\s?\.?\s?(\d{3,4}(?:-\d+){1,2})\b", re.MULTILINE | re.IGNORECASE
)
# A reference to another text (« aux articles L. 422-1 et L. 422-3 du code de l'urbanisme »).
_OTHER_TEXT = re.compile(
    r"^[\s,.etL\d-]{0,40}\s(?:du|de la|de l')\s+(?:code|loi|décret|ordonnance)"
)


def is_legal_text(title: str, source: str = "") -> bool:
    """Whether a source is a text a visa can name (a code, a law, a decree, an act)."""
    return bool(_LEGAL_TITLE.match(title or "")) or bool(
        re.search(r"(?:^|/)(?:cgct|crpa|code|loi|decret)_|delib", source, re.IGNORECASE)
    )


# The reference line the evidence gives a fiche (:meth:`assistant.evidence.Reference.line`).
_REFERENCE_LINE = re.compile(
    rf"^{re.escape(REFERENCE_LEAD)}(?P<code>Code\b[^,\n]+), (?P<articles>articles?\s[^\n(]+?)"
    r"(?:\s\([^\n]*\))?\.?$",
    re.MULTILINE,
)
_BARE_ARTICLE = re.compile(r"\b([LRD])(\*?)\s?(\d{1,4}(?:-\d+)+)\b")


def _as_clerk_writes(articles: str) -> str:
    """``articles`` with each bare article number as a clerk writes it (« L2224-13 à
    L2224-17-1 » -> « L. 2224-13 à L. 2224-17-1 », :func:`_article_ref`)."""
    return _BARE_ARTICLE.sub(lambda a: _article_ref(a.group(1), a.group(3), a.group(2)), articles)


def reference_visa(evidence: str, source_number: int) -> str:
    """ "Vu le code général des collectivités territoriales, notamment ses articles L. 2224-13
    à L. 2224-17-1 [2] ;" from the « Texte de référence : … » line of a source's evidence (the
    legal basis its fiche names, :func:`assistant.evidence.references_of`); "" without one."""
    m = _REFERENCE_LINE.search(evidence)
    if not m:
        return ""
    code = m.group("code").strip()
    articles = _as_clerk_writes(m.group("articles"))
    words = articles.split(maxsplit=1)
    if len(words) < 2:
        return ""
    which = "ses articles" if words[0].lower() == "articles" else "son article"
    return f"Vu le {code[0].lower()}{code[1:]}, notamment {which} {words[1]} [{source_number}] ;"


# The codes a local authority's acts cite, as a visa names them (Légifrance's titles). A
# reference inside a sentence is turned into a visa only when its code is one of these: the
# sentence's words after « du code » do not say where the name ends (« du code de l'urbanisme,
# le maire… »). Hand-written: no library of the stack lists the French codes.
CODE_NAMES = (
    "code général des collectivités territoriales",
    "code de l'action sociale et des familles",
    "code des relations entre le public et l'administration",
    "code général de la propriété des personnes publiques",
    "code de la construction et de l'habitation",
    "code rural et de la pêche maritime",
    "code général de la fonction publique",
    "code de la commande publique",
    "code des marchés publics",
    "code de la sécurité intérieure",
    "code de la santé publique",
    "code de la sécurité sociale",
    "code de la voirie routière",
    "code général des impôts",
    "code de procédure pénale",
    "code de l'environnement",
    "code de l'urbanisme",
    "code de l'éducation",
    "code de la route",
    "code du patrimoine",
    "code du tourisme",
    "code du travail",
    "code électoral",
    "code du sport",
    "code civil",
    "code pénal",
)
_CODE_ABBREVIATIONS = {
    "cgct": "code général des collectivités territoriales",
    "crpa": "code des relations entre le public et l'administration",
}
_ONE_ARTICLE = r"[LRD]\.?\s?\*?\s?\d{1,4}(?:-\d+)+"
# « l'article D 1411-5 du code général des collectivités territoriales », « des articles L 123-6
# et R 123-7 du code de l'action sociale et des familles », « l'article L1413-1 du CGCT ».
_INLINE_REFERENCE = re.compile(
    rf"\barticles?\s+(?P<refs>{_ONE_ARTICLE}(?:\s*(?:,|et|à)\s*{_ONE_ARTICLE})*)\s+"
    r"(?:du|de\s+la|de\s+l['’])\s+(?P<code>(?:code|cgct|crpa)\b[^.;:()\n]{0,80})",
    re.IGNORECASE,
)


def inline_visa(evidence: str, source_number: int) -> str:
    """ "Vu le code général des collectivités territoriales, notamment son article D. 1411-5 [1]
    ;" from the first reference to a code's articles inside a sentence of a source's evidence
    (another council's délibération: « conformément aux dispositions de l'article D 1411-5 du
    code général des collectivités territoriales »), "" without one. Only the codes of
    :data:`CODE_NAMES` (and « CGCT », « CRPA »); « du même code » and « de ce code » say no name
    and are left out. L04 (session 29) read « Vu [À COMPLÉTER : texte visé] » with that
    sentence in its evidence."""
    if found := inline_reference(evidence):
        code, named, count = found
        which = "son article" if count == 1 else "ses articles"
        return f"Vu le {code}, notamment {which} {named} [{source_number}] ;"
    return ""


def inline_reference(text: str) -> tuple[str, str, int] | None:
    """The first reference to a code's articles inside a sentence of ``text``, as (the code's
    name, its articles as a clerk writes them, how many): « conformément à l'article L1413-1
    du CGCT » -> ("code général des collectivités territoriales", "L. 1413-1", 1). Only the
    codes of :data:`CODE_NAMES` (and « CGCT », « CRPA »); None without one."""
    for m in _INLINE_REFERENCE.finditer(text):
        said = fold(" ".join(m.group("code").split())).replace("’", "'")
        code = _CODE_ABBREVIATIONS.get(re.findall(r"\w+", said)[0]) or next(
            (name for name in CODE_NAMES if said.startswith(fold(name))), ""
        )
        if not code:
            continue
        bare = re.sub(r"([LRD])\.?\s*(\*?)\s*(?=\d)", r"\1\2", " ".join(m.group("refs").split()))
        count = len(_BARE_ARTICLE.findall(bare))
        if count:
            return code, _as_clerk_writes(bare), count
    return None


# A law, decree or ordinance named inside a sentence (« en application de l'article 3-3 de la
# loi du 26 janvier 1984 modifiée », « le décret n°2007-23 du 5 janvier 2007 étend… »): its
# kind, number, date, « modifiée » and the articles cited before it.
_MONTH_NAMES = (
    "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre"
    "|décembre|decembre"
)
_INLINE_LAW = re.compile(
    r"(?:\barticles?\s+(?P<refs>\d{1,3}(?:-\d{1,3})*(?:\s*(?:,|et)\s*\d{1,3}(?:-\d{1,3})*)*)\s+"
    r"(?:de\s+la|du|de\s+l['’])\s+)?"
    r"\b(?P<kind>loi|décret|decret|ordonnance)\s+"
    r"(?P<organic>organique\s+)?(?P<number>n\s*[°º]\s*\d{2,4}-\d{1,4}\s+)?"
    rf"du\s+(?P<date>(?:1er|\d{{1,2}})\s+(?:{_MONTH_NAMES})\s+\d{{4}})\b"
    r"(?P<amended>\s+modifiée?)?",
    re.IGNORECASE,
)


def law_visas(evidence: str, source_number: int) -> list[str]:
    """The visas of the laws, decrees and ordinances a source's evidence names inside its
    sentences, in order, once each: « Vu la loi du 26 janvier 1984 modifiée, notamment son
    article 3-3 [1] ; », « Vu le décret n° 2007-23 du 5 janvier 2007 [1] ; ». A délibération
    of the town rests on them as on a code's articles (:func:`inline_visa`); M05 (session 31),
    recruiting contractors « en application de l'article 3-3 de la loi du 26 janvier 1984
    modifiée », read « Vu [À COMPLÉTER : texte visé] ». Only a text with its date (« la loi
    du … »): « la loi » alone names nothing."""
    lines: list[str] = []
    seen: set[str] = set()
    for m in _INLINE_LAW.finditer(evidence):
        kind = fold(m.group("kind")).lower()
        number = re.sub(r"^n\s*[°º]\s*", "n° ", " ".join((m.group("number") or "").split()))
        date = " ".join(m.group("date").split())
        key = f"{kind} {date}"
        if key in seen:
            continue
        seen.add(key)
        lead = {"loi": "la loi", "decret": "le décret", "ordonnance": "l'ordonnance"}[kind]
        if m.group("organic"):
            lead += " organique"
        text = f"{lead} {number + ' ' if number else ''}du {date}"
        if m.group("amended"):
            text += " modifiée" if kind in {"loi", "ordonnance"} else " modifié"
        if refs := m.group("refs"):
            refs = " ".join(refs.split())
            many = bool(re.search(r",|\bet\b", refs))
            text += f", notamment {'ses articles' if many else 'son article'} {refs}"
        lines.append(f"Vu {text} [{source_number}] ;")
    return lines


def visa_line(title: str, evidence: str, source_number: int) -> str:
    """ "Vu le code général des collectivités territoriales, notamment ses articles L. 2122-1 et
    L. 2122-2 [1] ;" from a source's title (its first part, before " — " or ":") and the article
    numbers of its evidence. "" when the title is not a text's name (a file name, "Montpellier
    delib 2014-04-05 …"): a visa names its text exactly or is not written.

    The articles are those the evidence labels as the text's own (« Article L2131-2 : … » at
    a line's start); without labels, those it cites that are not followed by another text's
    name: L. 2131-2's « aux articles L. 422-1 et L. 422-3 du code de l'urbanisme » had made
    D04's visa « Vu le code général des collectivités territoriales, notamment ses articles
    L. 2131-2, L. 2131-1, L. 422-1 et L. 422-3 »."""
    name = re.split(r"\s+[—–-]\s+|\s*:\s+|\s*\(", title.strip(), maxsplit=1)[0].strip(" .,;")
    if not name or not _LEGAL_TITLE.match(name):
        return ""
    first = name.split()[0].lower()
    article = {"code": "le ", "loi": "la ", "ordonnance": "l'", "arrêté": "l'", "arrete": "l'"}
    lead = article.get(
        first,
        "la " if first in {"délibération", "deliberation", "circulaire", "directive"} else "le ",
    )
    text = lead + name[0].lower() + name[1:]
    refs: list[str] = []
    found = list(_ARTICLE_LABEL.finditer(evidence)) or [
        m for m in _ARTICLE_REF.finditer(evidence) if not _OTHER_TEXT.match(evidence[m.end() :])
    ]
    for m in found:
        ref = _article_ref(m.group(1), m.group(2))
        if ref not in refs:
            refs.append(ref)
    if refs:
        refs = refs[:4]
        if len(refs) == 1:
            text += f", notamment son article {refs[0]}"
        else:
            text += ", notamment ses articles " + ", ".join(refs[:-1]) + f" et {refs[-1]}"
    return f"Vu {text} [{source_number}] ;"
