"""French dehyphenation of words cut at a line end ("procès-" / "verbal", "adminis-" / "tratif").

PDF text comes line by line: a hyphen at the end of a line is either a typographic break inside
one word (to be joined: ``adminis-\\ntratif`` -> ``administratif``) or the hyphen of a compound
that happens to fall at the line end (to be kept: ``procès-\\nverbal`` -> ``procès-verbal``).
:func:`decide` tells which, in this order:

1. digits on both sides (``L. 2121-\\n17``): keep;
2. a capital after a lower-case letter (``Saint-\\nAubin``, ``Jean-\\nLuc``): keep; in capitals on
   both sides (``LEVY-\\nRAMEAU``), keep unless rule 4 says otherwise;
3. the left part already holds a hyphen and ends in a short link word (``rez-de-``,
   ``c'est-à-``, ``vis-à-``, ``a-t-``): keep;
4. the document's own usage: when the joined word (or the hyphenated compound) occurs elsewhere
   in the text, not at a line end, that form wins;
5. French rules for the left part, a known prefix or first element of compounds (lists below,
   from the Académie française's and the Office québécois de la langue française's rules on the
   hyphen; the 1990 rectifications, which weld most learned prefixes, are followed):
   always hyphenated (``vice-``, ``procès-``, ``demi-``, ``semi-``, ``arrière-``, ``après-``,
   ``grand-``, ``quasi-`` except ``quasiment``…), hyphenated only before listed words
   (``ex-maire`` but ``exercice``, ``ci-dessous`` but ``citoyen``, ``mi-temps`` but ``ministre``,
   ``sous-préfecture`` but ``soussigné``), numerals (``vingt-deux``, ``dix-huit``), pronouns
   and particles (``celui-ci``, ``peut-être``, ``-t-il``, ``elle-même``);
6. otherwise: join (a typographic break; learned prefixes such as ``anti``, ``auto``, ``co``,
   ``extra``, ``inter``, ``multi``, ``pré``, ``re``, ``sur`` are welded in French).

Hand-written: no library of the stack dehyphenates French (pypdf leaves the hyphen and the line
break as they are).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

_LETTER = "A-Za-zÀ-ÖØ-öø-ÿŒœÆæ"
_LOWER = "a-zà-öø-ÿœæ"
_HYPHENS = "-\u2010\u2011"
# A word (with inner hyphens and elisions) ending in a hyphen at a line end, then the next
# line's first word.
_LINE_END = re.compile(
    rf"(?P<left>[{_LETTER}](?:[{_LETTER}'’]|[{_HYPHENS}](?=[{_LETTER}]))*)[{_HYPHENS}][ \t]*\n"
    rf"[ \t]*(?P<right>[{_LETTER}](?:[{_LETTER}'’]|[{_HYPHENS}](?=[{_LETTER}]))*)"
)
_DIGITS = re.compile(rf"(?<=\d)[{_HYPHENS}][ \t]*\n[ \t]*(?=\d)")
_WORDS = re.compile(rf"[{_LETTER}]+(?:[{_HYPHENS}][{_LETTER}]+)*")

# Left parts that are always followed by a hyphen in a compound.
_ALWAYS = frozenset({
    "vice", "procès", "proces", "demi", "semi", "arrière", "arriere", "après", "apres", "grand",
    "grande", "grands", "grandes", "rez", "pêle", "pele", "tête", "laissez", "rendez", "savoir",
    "petit", "petite", "petits", "petites", "saint", "sainte", "saints", "saintes",
})
# Left parts hyphenated before any word except those starting with the listed beginnings
# (the welded words of the same spelling: "soussigné", "quasiment", "avantage"…).
_UNLESS = {
    "sous": ("sign", "cri", "traction", "trair", "traire", "trayant", "trait$", "traits$",
             "traite$", "traites$"),
    "quasi": ("ment",),
    "avant": ("ag",),
    "contre": ("partie", "venant", "venan", "venir", "venu", "vien", "sign", "seing", "dit",
               "dire", "faç", "poids", "bas", "band", "coup", "maît", "sens", "temps", "fort",
               "marque", "balanc", "passe", "point", "vent", "carr", "champ", "courant"),
    "non": ("obstant", "chal", "ante", "agén", "ce", "ne"),
    "haute": (),
    "arrière": (),
}
# Left parts hyphenated only before the listed words (or their beginnings).
_ONLY_BEFORE = {
    "ex": ("maire", "adjoint", "conseill", "présiden", "directeur", "directrice", "épou",
           "mari", "femme", "commun", "région", "départ", "député", "sénat", "ministre",
           "collègue", "salarié", "agent", "membre", "propriétaire", "locataire", "titulaire",
           "élu", "chef", "responsable", "secrétaire", "associé", "employ", "détenu",
           "président", "trésor", "lib", "canton", "com"),
    "ci": ("dessus", "dessous", "joint", "après", "contre", "annex", "inclu", "devant", "gît",
           "git"),
    "mi": ("temps", "chemin", "clos", "mandat", "parcours", "journée", "hauteur", "saison",
           "course", "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre", "carême", "lourd", "long", "côte",
           "pente", "distance", "mollet", "figue", "voix", "corps", "ombre", "bas", "haut",
           "étage", "jambe", "mois", "année", "semaine", "parcour"),
    "au": ("delà", "dessus", "dessous", "devant"),
    "par": ("delà", "dessus", "dessous", "devant", "ci", "derrière", "terre"),
    "là": ("bas", "dessus", "dessous", "haut", "dedans", "devant"),
    "la": ("bas", "dessus", "dessous", "haut", "dedans"),
    "peut": ("être",),
    "bien": ("être", "fondé", "aimé", "pensan", "portant"),
    "mal": ("être", "logement", "logé", "voyant", "entendant", "aimé"),
    "plus": ("valu",),
    "moins": ("valu",),
    "porte": ("parole", "monnaie", "document", "clé", "clef", "drapeau", "bagage", "fenêtre",
              "avion", "conteneur", "greffe", "plume", "voix"),
    "garde": ("corps", "champêtre", "fou", "manger", "meuble", "robe", "chasse", "pêche",
              "malade", "barrière", "côte", "forestier", "boue", "frontière"),
    "chef": ("lieu", "d'", "d’"),
    "chefs": ("lieu", "d'", "d’"),
    "état": ("major", "civil"),
    "hors": ("série", "jeu", "sol", "d'", "d’", "bord", "piste", "champ", "taxe", "la"),
    "haut": ("parleur", "commissa", "fond", "relief", "lieu", "de", "rhin", "le"),
    "bas": ("côté", "fond", "relief", "rhin", "ventre"),
    "libre": ("service", "échange",),
    "faire": ("part", "valoir",),
    "compte": ("rendu", "courant", "chèque", "tour"),
    "comptes": ("rendu", "courant", "chèque"),
    "auto": ("entrepr", "école", "écol", "évalu", "immun", "induct", "érot", "allum", "ento",
             "stop"),
    "anti": ("i",),
    "co": ("président", "responsable", "animat", "pilot", "rapport", "organis", "signat",
           "titulaire", "gérant", "auteur", "listier", "financ", "propriét"),
    "nord": ("est", "ouest"),
    "sud": ("est", "ouest"),
    "quatre": ("vingt",),
    "celui": ("ci", "là"),
    "celle": ("ci", "là"),
    "celles": ("ci", "là"),
    "ceux": ("ci", "là"),
    "sang": ("froid",),
    "beau": ("père", "frère", "fils", "parent"),
    "beaux": ("parent", "arts", "frère", "fils", "père"),
    "belle": ("mère", "sœur", "fille", "famille"),
    "belles": ("mère", "sœur", "fille", "famille", "lettre"),
    "nu": ("propriét",),
    "nue": ("propriét",),
    "nus": ("propriét",),
    "nues": ("propriét",),
    "soi": ("disant", "même"),
    "aller": ("retour",),
    "allers": ("retour",),
    "ayant": ("droit", "cause"),
    "ayants": ("droit", "cause"),
    "vis": ("à",),
    "pot": ("de",),
    "centre": ("ville", "bourg"),
    "centres": ("ville", "bourg"),
    "week": ("end",),
    "vide": ("grenier", "ordure", "poche", "studio", "maison"),
    "outre": ("mer", "atlantique", "manche", "rhin", "tombe"),
    "quote": ("part",),
    "quotes": ("part",),
    "sapeur": ("pompier",),
    "sapeurs": ("pompier",),
    "maire": ("adjoint",),
    "maires": ("adjoint",),
    "dommage": ("intérêt",),
    "dommages": ("intérêt",),
    "halte": ("garderie",),
    "location": ("gérance", "vente", "accession"),
    "accusé": ("réception",),
    "accusés": ("réception",),
    "accord": ("cadre",),
    "accords": ("cadre",),
    "assurance": ("chômage", "maladie", "vie", "décès"),
    "en": ("tête", "dessous", "dessus", "deçà", "cas"),
    "décret": ("loi",),
    "décrets": ("loi",),
    "question": ("réponse",),
    "questions": ("réponse",),
    "t": ("shirt",),
    "hi": ("fi",),
    "sub": ("délégu",),
    "masseur": ("kinési",),
    "masseurs": ("kinési",),
    "chèque": ("emploi", "vacance", "cadeau", "déjeuner", "énergie"),
    "chèques": ("emploi", "vacance", "cadeau", "déjeuner", "énergie"),
    "mot": ("clé", "clef", "à"),
    "mots": ("clé", "clef"),
    "quelques": ("uns", "unes"),
    "tout": ("à", "puissant", "petit", "venant", "terrain"),
    "tous": ("terrain",),
    "face": ("à",),
    "bouche": ("à",),
    "lieu": ("dit",),
    "lieux": ("dit",),
    "rond": ("point",),
    "ronds": ("point",),
    "pare": ("brise", "feu", "choc", "soleil", "vent", "balle"),
    "plate": ("forme", "bande"),
    "plates": ("forme", "bande"),
    "lave": ("linge", "vaisselle", "main"),
    "sèche": ("linge", "main", "cheveu"),
    "aide": ("soignant", "ménag", "mémoire", "familial", "maternel", "comptable"),
    "aides": ("soignant", "ménag", "mémoire", "familial", "maternel", "comptable"),
    "médico": ("soci", "légal", "psycho", "éducati", "technique"),
    "socio": ("éducati", "professionn", "cultur", "économ", "sanitaire", "médical", "sportif"),
    "technico": ("commerc", "économ", "administrati"),
    "franco": ("allemand", "italien", "espagnol", "britannique", "suisse", "belge", "anglais"),
    "jour": ("là", "amende", "homme"),
    "jours": ("là", "ci", "amende", "homme"),
    "chasse": ("neige",),
    "monte": ("charge",),
    "coupe": ("feu", "circuit", "vent"),
    "brise": ("vue", "soleil", "glace", "lames"),
    "taille": ("haie",),
    "abat": ("jour",),

    "est": ("ce",),
    "moment": ("là",),
    "ceci": (),
    "ici": ("bas",),
    "pied": ("noir", "à"),
    "sans": ("abri", "papier", "emploi", "gêne", "faute", "culotte", "logis"),
    "arc": ("en",),
    "cul": ("de",),
    "qu'en": ("dira",),
    "long": ("courrier", "métrage", "terme"),
    "court": ("métrage", "terme", "circuit", "bouillon"),
    "moyen": ("âge", "courrier", "terme", "orient"),
    "micro": ("entrepr", "crèche", "onde", "ordinateur", "trottoir"),
    "mini": ("bus",),
    "néo": ("i", "u"),
    "extra": ("a",),
    "ultra": ("a",),
    "infra": ("a",),
    "supra": ("a",),
    "intra": ("a",),
    "pré": ("é", "requis"),
    "semi": (),
}
_NUMERALS = frozenset({
    "dix", "vingt", "vingts", "trente", "quarante", "cinquante", "soixante", "quatre", "cent",
    "cents", "deux", "trois", "cinq", "six", "sept", "huit", "neuf", "mille", "un", "une",
    "onze", "douze", "treize", "quatorze", "quinze", "seize",
})
_NUMERAL_RIGHT = _NUMERALS | {"et"}
# Right parts that follow a hyphen in pronoun inversions and adverbial compounds
# ("pourra-t-il", "doit-on", "celui-ci", "elle-même").
# Only words that cannot be the end of a word cut by a word processor ("mer-ci", "va-leur",
# "for-ce", "ver-tu" are typographic breaks: "ci", "leur", "ce", "tu" are not listed).
_PARTICLES = frozenset({
    "il", "ils", "elle", "elles", "on", "nous", "vous", "t", "y", "en", "même", "mêmes", "à",
})
# Short link words ending a compound's left part ("rez-de-", "c'est-à-", "a-t-", "arc-en-").
_LINKS = frozenset({"de", "du", "des", "à", "a", "t", "en", "la", "le", "les", "sur", "sous",
                    "aux", "au", "d'", "l'", "et", "dit", "dite"})


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _strip_elision(word: str) -> str:
    """``l'arrière`` -> ``arrière``; ``qu'en`` stays (it is itself a left part)."""
    low = word.lower().replace("’", "'")
    if low == "qu'en":
        return low
    return re.split(r"'", low)[-1]


def _starts(right: str, beginnings: Iterable[str]) -> bool:
    """Whether ``right`` begins with one of ``beginnings`` (accents ignored); an entry ending
    in ``$`` must match the whole word."""
    folded = _fold(right)
    return any(
        folded == _fold(b[:-1]) if b.endswith("$") else folded.startswith(_fold(b))
        for b in beginnings
    )


def vocabulary(text: str) -> Counter[str]:
    """Lower-case words of ``text`` that are not cut at a line end, for :func:`decide`'s rule 4.

    Words with inner hyphens are counted whole ("procès-verbal")."""
    counts: Counter[str] = Counter()
    for line in text.split("\n"):
        line = line.rstrip()
        words = _WORDS.findall(line)
        if words and line.endswith(tuple(_HYPHENS)):
            words = words[:-1]
        counts.update(w.lower().replace("\u2010", "-").replace("\u2011", "-") for w in words)
    return counts


def decide(left: str, right: str, vocab: Counter[str] | None = None) -> tuple[bool, str]:
    """Whether the line-end hyphen between ``left`` and ``right`` is kept, and the rule.

    ``left`` is the word before the hyphen (it may hold hyphens and an elision), ``right`` the
    first word of the next line. Returns (keep, reason) with reason one of ``"capitale"``,
    ``"composé"``, ``"usage"``, ``"préfixe"``, ``"numéral"``, ``"particule"``, ``"coupure"``.
    """
    parts = re.split(f"[{_HYPHENS}]", left)
    last = _strip_elision(parts[-1])
    first_right = re.split(f"[{_HYPHENS}]", right)[0]
    low_right = first_right.lower()
    if right[:1].isupper() and left[-1:].islower():
        return True, "capitale"
    if len(parts) > 1 and last in _LINKS:
        return True, "composé"
    if vocab:
        joined = (parts[-1] + first_right).lower()
        hyphenated = (parts[-1] + "-" + first_right).lower()
        n_joined, n_hyphen = vocab.get(joined, 0), vocab.get(hyphenated, 0)
        if n_joined or n_hyphen:
            return n_hyphen > n_joined, "usage"
    if right[:1].isupper():
        # Both sides in capitals: compound names of people and places ("LEVY-RAMEAU") are far
        # more common in minutes than words hyphenated in capitals (word processors rarely
        # hyphenate capitals); a name cut in two would be worse than a title kept hyphenated.
        return True, "capitale"
    if last in _NUMERALS and low_right in _NUMERAL_RIGHT:
        return True, "numéral"
    if last in _ALWAYS:
        return True, "préfixe"
    if last in _UNLESS:
        return not _starts(first_right, _UNLESS[last]), "préfixe"
    if last in _ONLY_BEFORE and _starts(first_right, _ONLY_BEFORE[last]):
        return True, "préfixe"
    if low_right in _PARTICLES:
        return True, "particule"
    return False, "coupure"


def dehyphenate(
    text: str, vocab: Counter[str] | None = None, decisions: list[tuple[str, str, bool, str]]
    | None = None
) -> str:
    """``text`` with its line-end hyphens resolved (see the module docstring).

    A kept hyphen loses its line break (``sous-\\npréfecture`` -> ``sous-préfecture``); a joined
    one loses both. ``vocab`` defaults to the words of ``text`` itself. When ``decisions`` is a
    list, ``(left, right, kept, reason)`` is appended for each line-end hyphen (for measuring).
    """
    if "\n" not in text:
        return text
    text = _DIGITS.sub("-", text)
    if vocab is None:
        vocab = vocabulary(text)

    def resolve(m: re.Match[str]) -> str:
        left, right = m.group("left"), m.group("right")
        keep, reason = decide(left, right, vocab)
        if decisions is not None:
            decisions.append((left, right, keep, reason))
        return f"{left}-{right}" if keep else left + right

    return _LINE_END.sub(resolve, text)
