"""Instructions planted in documents: find the sentences that speak to the assistant, not to a
citizen, and keep them out of the evidence the model reads.

A phrase list ("ignore the previous instructions") misses the next phrasing. What every planted
instruction shares is its *situation*: it addresses the machine or its output ("note pour l'IA",
"dear assistant", "toute réponse", "your answer", "le texte produit"), or tries to change the rules
("ne tenez pas compte", "from now on", "nouvelle consigne", "you are now"), or carries chat
markup (``<|im_start|>``, ``[INST]``, ``### SYSTEM``). Administrative texts give orders too
("adressez votre demande au service…"), but to citizens and about their procedures, never about
an answer being written by a program. So a sentence is flagged when it combines two of these
signals, or carries chat markup alone (see :func:`instruction_signals`).

This is a first line, not the only one: the prompt keeps documents in a data block, the evidence
keeps only sentences that bear on the request, and the answer is checked afterwards (contacts and
figures that no shown source carries are marked).

Written here rather than taken from a library: no maintained French/English detector of prompt
injection runs offline without a model of its own; these signals are small, explainable, tested
on a corpus of planted instructions and on real administrative sentences (tests/test_hostile.py).
"""

from __future__ import annotations

import re
import unicodedata

#: Chat-template and prompt markup that has no business in an administrative document.
_MARKUP = re.compile(
    r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|^\s*#{2,}\s*(system|assistant|user|instruction)s?\b"
    r"|\b(system|assistant)\s*:\s|<\s*/?\s*(system|assistant)\s*>",
    re.IGNORECASE | re.MULTILINE,
)

#: Who is addressed: the machine.
_ADDRESSEE = re.compile(
    r"\b(l'?\s?assistant|assistant\b|(?<![\w-])IA\b|(?<![\w-])AI\b|intelligence artificielle"
    r"|mod[eè]le de langue|language model|\bLLM\b|chatbot|chat ?gpt|outil de r[ée]daction"
    r"|\bmodel\b|\bmod[eè]le\b(?= (?:de|qui|lisant|reading))|syst[eè]me d.IA|AI system"
    r"|instruction(?:s)? (?:syst[eè]me|cach[ée]e)|system prompt|prompt)",
    re.IGNORECASE,
)

#: What is talked about: the answer being written.
_OUTPUT = re.compile(
    r"\b(toute(?:s les)? r[ée]ponses?|chaque r[ée]ponse|votre r[ée]ponse|vos r[ée]ponses"
    r"|ta r[ée]ponse|tes r[ée]ponses|dans (?:la|sa) r[ée]ponse|le texte produit|votre texte"
    r"|ton texte|les courriers|tous les courriers"
    r"|your (?:answer|response|reply|output|text)|every (?:answer|response|paragraph)"
    r"|(?:answer|reply|respond)(?:ing)? (?:only|in english|with)|before anything else"
    r"|cette source comme|this source as|always (?:answer|reply|say|state|write)"
    r"|(?:r[ée]pondez|[ée]crivez|indiquez|affirmez) toujours)",
    re.IGNORECASE,
)

#: Attempts to change the rules or the role.
_OVERRIDE = re.compile(
    r"\b(ignore[rz]?|ignorez|oublie[rz]?|ne tenez pas compte|ne tiens pas compte|disregard"
    r"|forget|override|nouvelle(?:s)? (?:consigne|r[èe]gle|instruction)s?|priorit[ée] absolue"
    r"|from now on|d[ée]sormais,? (?:tu|vous) (?:dois|devez)|you are now|tu es maintenant"
    r"|vous [eê]tes maintenant|act as|agis comme|agissez comme|oubliez votre r[ôo]le"
    r"|instructions? pr[ée]c[ée]dentes?|consignes? (?:qui pr[ée]c[eè]dent|pr[ée]c[ée]dentes?)"
    r"|previous instructions|all prior|ORDRE\s*:|\bDAN\b"
    r"|(?:you|tu|vous) (?:must|dois|devez) (?:now|maintenant|d[ée]sormais))",
    re.IGNORECASE,
)

#: Sentences that need no second signal: wiping the rules out is never administrative content.
_STRONG = re.compile(
    r"\b(forget everything|oubliez tout|oublie tout|ignore (?:all |the )?(?:previous|prior|above)"
    r"|(?:ignorez|ignore|oubliez|oublie) (?:les |toutes les )?(?:instructions|consignes)"
    r"|ne tene?z? pas compte des (?:instructions|consignes)|system prompt)\b",
    re.IGNORECASE,
)

#: Orders to write something (second person, French and English imperatives).
_WRITE = re.compile(
    r"\b(écri(?:s|vez)|ajoute[rz]?|ins[ée]re[rz]?|termine[rz]?|recopie[rz]?|r[ée]ponde[rz]?"
    r"|r[ée]ponds|affirme[rz]?|indique[rz]?|pr[ée]cise[rz]?|signe[rz]?|cite[rz]?"
    r"|mentionne[rz]?|r[ée]dige[rz]?|commence[rz]?|rappelle[rz]?|renvoye[rz]?"
    r"|print|write|output|say|state|answer|reply|mention|add|include|insult|call them"
    r"|must (?:now )?(?:be|say|write)|doit (?:ajouter|[êe]tre r[ée]dig[ée]|mentionner))\b",
    re.IGNORECASE,
)

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=\S)|\n+")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("’", "'")


def instruction_signals(sentence: str) -> set[str]:
    """The signals found in ``sentence``: a subset of {"markup", "addressee", "output",
    "override", "write"}."""
    s = _norm(sentence)
    found = set()
    if _MARKUP.search(s):
        found.add("markup")
    if _ADDRESSEE.search(s):
        found.add("addressee")
    if _OUTPUT.search(s):
        found.add("output")
    if _OVERRIDE.search(s):
        found.add("override")
    if _WRITE.search(s):
        found.add("write")
    return found


def is_instruction(sentence: str) -> bool:
    """True when ``sentence`` reads as an instruction to the assistant rather than information.

    Rule: chat markup alone, an override with any other signal, or the machine or its output
    addressed together with an order to write (or with each other).
    """
    sig = instruction_signals(sentence)
    if "markup" in sig or _STRONG.search(_norm(sentence)):
        return True
    if "override" in sig and len(sig) >= 2:
        return True
    if "override" in sig and sentence.strip().isupper() and len(sentence.strip()) > 12:
        return True  # SHOUTED orders to forget the rules
    if ("addressee" in sig or "output" in sig) and "write" in sig:
        return True
    return "addressee" in sig and "output" in sig


def split_units(text: str) -> list[str]:
    """Sentences and table rows of ``text``, with their separators kept (joining the list gives
    back ``text``, HTML comments removed)."""
    text = _HTML_COMMENT.sub(" ", text)
    units: list[str] = []
    last = 0
    for m in _SENTENCE.finditer(text):
        units.append(text[last : m.end()])
        last = m.end()
    if last < len(text):
        units.append(text[last:])
    return units


def strip_instructions(text: str, placeholder: str) -> tuple[str, int]:
    """``text`` with every planted instruction (sentence or table row) replaced by
    ``placeholder``, and HTML comments removed. Returns (new text, number replaced)."""
    out: list[str] = []
    count = 0
    for unit in split_units(text):
        core = unit.strip()
        if core and is_instruction(core):
            trail = unit[len(unit.rstrip()):]
            out.append(placeholder + trail)
            count += 1
        else:
            out.append(unit)
    return "".join(out), count
