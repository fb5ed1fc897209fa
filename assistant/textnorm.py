"""French lexical normalisation shared by indexing and querying.

The same function turns a passage (at indexing time) and a question (at query time) into terms,
so that both sides meet: case and accents are folded, words are reduced to their French Snowball
stem, stop words are dropped, and references that matter to local governments become single
tokens:

- legal articles: "L2121-17", "L. 2121-17", "l.2121-17", "article L2121-17" -> ``l2121x17``
- numbered acts and dates: "n° 2014/131", "n°2014-131", "2014-131" -> ``2014x131``

Tokens only contain ``[a-z0-9]`` so that the SQLite FTS5 ``unicode61`` tokenizer keeps them whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

import snowballstemmer

# Hand-written because no library of the fixed stack ships a French stop list (snowballstemmer
# only stems). Kept short: function words only, content words must stay searchable.
_STOP_TEXT = """
    a ai aie aient aies ait as au aux avaient avais avait avec avez aviez avions avons ayant
    c ce ceci cela celle celles celui ces cet cette ceux chaque ci comme d dans de des du
    donc dont elle elles en es est et etaient etais etait etant ete etes etiez etions eu eux
    furent fut ici il ils j je l la le les leur leurs lui m ma mais me meme mes moi mon
    n ne ni no nos notre nous on ont or ou par pas pour qu que quel quelle quelles quels qui
    s sa sans se sera serait ses si son sont soit sous sur t ta te tes toi ton tu un une
    vos votre vous y
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())

# The heading of a division of a code or a long act ("CHAPITRE Ier : Le conseil municipal",
# "Section 4 : Fonctionnement", "Sous-section 2 : Concessions"): structure, not a rule. Used by
# the chunker (heading paths) and by the evidence (never shown as a sentence of an article).
DIVISION_HEADING = re.compile(
    r"^(livre|titre|chapitre|sous-section|section|paragraphe)\s+"
    r"([IVXLC]+|\d+|premier|ier|unique|préliminaire|[A-Z])\b",
    re.IGNORECASE,
)

# Hyphens, dashes and slashes that separate the parts of a reference ("2014/131", "L2121‑17").
_SEP = r"[-\u2010\u2011\u2012\u2013/]"
# A code article: L, R, D, LO (case-insensitive) or A (upper case only, "à" is too common),
# optionally preceded by "article(s)", then a hyphenated number or a bare number of 3+ digits.
_LEGAL = re.compile(
    r"(?:\barticles?\s+)?"
    r"\b(?P<prefix>(?i:lo|l|r|d)|A)\s*\.?\s*"
    rf"(?P<num>\d+(?:\s*{_SEP}\s*\d+)+|\d{{3,}})\b"
)
# Numbered acts, dates, law numbers: digit groups joined by '-' or '/' (spaces allowed after
# "n°", where "n° 2014 / 131" is common; elsewhere "2 - 3" stays two numbers).
_NUMBERED = re.compile(rf"(?:\b[nN]\s*[°º]\s*)\d+(?:\s*{_SEP}\s*\d+)+\b|\b\d+(?:{_SEP}\d+)+\b")
_NUMBER_SIGN = re.compile(r"^[nN]\s*[°º]\s*")
# Dates, whatever the spelling, become one token yyyyxmmxdd ("24 avril 2014", "24/04/2014",
# "2014-04-24" -> 2014x04x24); the month name is kept as a word ("avril 2014" still matches).
_MONTHS = {
    "janvier": 1, "fevrier": 2, "février": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "aout": 8, "août": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "decembre": 12, "décembre": 12,
}
_DATE_LONG = re.compile(
    r"\b(?P<d>1er|\d{1,2})\s+(?P<m>" + "|".join(_MONTHS) + r")\s+(?P<y>\d{4})\b", re.IGNORECASE
)
_DATE_DMY = re.compile(r"\b(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>\d{4})\b")
_DATE_YMD = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_SPLIT_SEP = re.compile(rf"\s*{_SEP}\s*")
_WORD = re.compile(r"[a-z0-9]+")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
# For tokenising: typographic apostrophes, dashes, quotes and ellipses separate words (the ASCII
# encoding below would otherwise delete them and glue "l’article" into one word).
_SEPARATING = "\u2019\u2018\u02bc\u00b4`\u2010\u2011\u2012\u2013\u2014\u2026\u00ab\u00bb"
_TOKEN_CHARS = str.maketrans(
    {**{c: " " for c in _SEPARATING}, "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"}
)


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    # One stemmer per process (building it is cheap but not free); it has no per-call state.
    return snowballstemmer.stemmer("french")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """French Snowball stem of a folded word. Memoised: the pure-Python stemmer costs ~50 µs a
    call and words repeat a lot (a 75-document corpus has 170k words, 9k distinct)."""
    return str(_stemmer().stemWord(word))


def fold(text: str) -> str:
    """Lower case, accents removed, ligatures expanded ("Œuvre Été" -> "oeuvre ete")."""
    text = text.translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _ascii_fold(text: str) -> str:
    """:func:`fold` for tokenising: characters without an ASCII base are dropped (faster, and
    tokens are ``[a-z0-9]+`` anyway)."""
    text = text.translate(_TOKEN_CHARS)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return text.lower()


def _legal_token(match: re.Match[str]) -> str:
    prefix = match.group("prefix").lower()
    parts = _SPLIT_SEP.split(match.group("num"))
    return f" {prefix}{'x'.join(parts)} "


def _numbered_token(match: re.Match[str]) -> str:
    number = _NUMBER_SIGN.sub("", match.group(0))
    return " " + "x".join(_SPLIT_SEP.split(number)) + " "


def _date_token(match: re.Match[str]) -> str:
    day = 1 if match.group("d").lower() == "1er" else int(match.group("d"))
    month_text = match.group("m")
    month = int(month_text) if month_text.isdigit() else _MONTHS[month_text.lower()]
    year = int(match.group("y"))
    if not (1800 <= year <= 2199 and 1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)  # not a date ("L. 2121-10-1" is handled before, as an article)
    word = "" if month_text.isdigit() else f" {month_text}"
    return f" {year:04d}x{month:02d}x{day:02d}{word} "


# Codes cited by their acronym in questions and spelled out in the texts: the long form also
# yields the acronym token, so that "selon le CGCT" finds the code's own articles.
_CODE_NAMES = (
    (re.compile(r"code\s+g[ée]n[ée]ral\s+des\s+collectivit[ée]s\s+territoriales", re.I), "cgct"),
    (
        re.compile(
            r"code\s+des\s+relations\s+entre\s+le\s+public\s+et\s+l['’]\s*administration", re.I
        ),
        "crpa",
    ),
    (re.compile(r"code\s+de\s+la\s+commande\s+publique", re.I), "ccp"),
)


def _references(text: str) -> str:
    """Rewrite references into single tokens (before folding: 'A' is only an article in caps)."""
    for pattern, acronym in _CODE_NAMES:
        text = pattern.sub(lambda m, a=acronym: f"{m.group(0)} {a}", text)  # type: ignore[misc]
    text = _LEGAL.sub(_legal_token, text)
    for date in (_DATE_LONG, _DATE_DMY, _DATE_YMD):
        text = date.sub(_date_token, text)
    return _NUMBERED.sub(_numbered_token, text)


def light_stem(word: str) -> str:
    """A folded French word without its inflection: plural (« -s », « -x » from four letters,
    « -aux » -> « -al » from five) and feminine or final « -e » (at most two, while the word
    keeps more than four letters). Light
    stemming after Savoy (1999, "A stemming procedure and stopword list for general French
    corpora", JASIS 50(10)), which removes inflection only: « règles » and « règlement »,
    « convocation » and « convoque » stay apart where Snowball joins some of them."""
    if len(word) > 4 and word.endswith("aux"):
        word = word[:-3] + "al"
    elif len(word) > 3 and word[-1] in "sx":
        word = word[:-1]
    for _ in range(2):
        if len(word) > 4 and word.endswith("e"):
            word = word[:-1]
    return word


# Snowball removing more than this many letters took a derivational suffix, not an inflection.
_INFLECTION_LETTERS = 3


def light_terms(text: str) -> list[str]:
    """:func:`lexical_terms` for matching a request against the sentences of a passage already
    retrieved, where a conflation puts the wrong sentence first. A word keeps its Snowball stem
    when Snowball removed an inflection (at most three letters: « réunir », « réunit » ->
    « reun »), and gets its :func:`light_stem` when Snowball removed a derivation
    (« règlement » -> « regl », which would join « règles »).

    Measured on the evidence of the 32 drafting requests (expected facts present in the
    prompt, no model): Snowball 46/53, light stemming alone 49/53 (verbs lost: « réunir »
    against « se réunit »), this 50/53."""
    return _terms(text, _inflection_stem)


def _inflection_stem(word: str) -> str:
    snowball = stem(word)
    return snowball if len(word) - len(snowball) <= _INFLECTION_LETTERS else light_stem(word)


def _terms(text: str, stem_word: Callable[[str], str]) -> list[str]:
    words = _WORD.findall(_ascii_fold(_references(text)))
    # Numbers and reference tokens (with digits) are kept verbatim, other words stemmed.
    return [stem_word(w) if w.isalpha() else w for w in words if w not in STOP_WORDS]


def lexical_terms(text: str) -> list[str]:
    """Terms of ``text`` in order: references as single tokens, other words stemmed."""
    return _terms(text, stem)


def index_text(text: str) -> str:
    """What the FTS5 index stores for a passage: its terms, space-joined.

    A compound number token ("2014x131") is followed by its parts so that a search for "2014"
    still finds the passage; the compound stays rare, so an exact reference ranks first.
    """
    out: list[str] = []
    for term in lexical_terms(text):
        out.append(term)
        if "x" in term and term[0].isdigit():
            out.extend(part for part in term.split("x") if part)
    return " ".join(out)


def match_query(text: str) -> str:
    """An FTS5 MATCH expression for a question: its distinct terms, quoted, OR-combined.

    Quoting makes FTS5 operators in user text (``AND``, ``*``, ``"``, ``:``, parentheses) plain
    words. Returns an empty string when the question has no searchable term.
    """
    return match_terms(query_terms(text))


def query_terms(text: str) -> list[str]:
    """The distinct lexical terms of a question, in order (see :func:`lexical_terms`)."""
    return list(dict.fromkeys(lexical_terms(text)))


def match_terms(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression OR-combining ``terms``, each quoted (see :func:`match_query`)."""
    return " OR ".join(f'"{term}"' for term in terms)


# The administration's equivalent names: what an agent writes (« le préfet », « le DGS », « la
# ZAC ») and what the codes and fiches write (« le représentant de l'État dans le département »,
# « le directeur général des services », « la zone d'aménagement concerté »). Hand-written: a
# short list of fixed legal terms and acronyms; no French administrative thesaurus ships with the
# stack.
_EQUIVALENTS = (
    (re.compile(r"\bpr[ée]f(?:et|[èe]te)s?\b", re.IGNORECASE), "représentant de l'État"),
    (re.compile(r"\bDGS\b"), "directeur général des services"),
    (re.compile(r"\bCGCT\b"), "code général des collectivités territoriales"),
    (re.compile(r"\bCRPA\b"), "code des relations entre le public et l'administration"),
    (re.compile(r"\bPLU\b"), "plan local d'urbanisme"),
    (re.compile(r"\bAOT\b"), "autorisation d'occupation temporaire"),
    (re.compile(r"\bZAC\b"), "zone d'aménagement concerté"),
    (re.compile(r"\bSEM\b"), "société d'économie mixte"),
    (re.compile(r"\bCCAS\b"), "centre communal d'action sociale"),
    (re.compile(r"\bEPCI\b"), "établissement public de coopération intercommunale"),
    (re.compile(r"\bDSP\b"), "délégation de service public"),
    (re.compile(r"\bDIA\b"), "déclaration d'intention d'aliéner"),
)


def with_equivalents(text: str) -> str:
    """``text`` followed by the codes' names for the terms it uses, in brackets (« Le préfet
    peut-il… » -> « Le préfet peut-il… (représentant de l'État) »); ``text`` itself when it
    uses none or already says them. Used for retrieval (the evidence's sentences are scored on
    the request's own words: there, « plan local d'urbanisme » added to « PLU » outweighed the
    delay asked). No-model proxy on the three request files: facts in the prompt 89 -> 90/121,
    expected source in the prompt 56 -> 57/59 (K12: « De combien de temps dispose le préfet
    pour déférer une délibération… » now finds L. 2131-6)."""
    folded = fold(text)
    extra = [name for rx, name in _EQUIVALENTS if rx.search(text) and fold(name) not in folded]
    return f"{text} ({' ; '.join(extra)})" if extra else text
