"""Remove runs of non-text from a document's text before it is chunked.

A reader never reads a base64 image pasted in a note, a hex dump or the bytes of a binary file
decoded as text; indexed, such a run becomes a passage of tens of thousands of characters that
is embedded, matched and cited as a source. :func:`strip_non_text` removes:

- ``data:`` URIs with a base64 payload (``data:image/png;base64,iVBOR…``), wrapped lines included;
- base64 or hex runs: a word of 80 characters or more from the base64 alphabet that looks
  random (upper and lower case letters and digits mixed without word-like runs of lower-case
  letters, or hex digits only), or of 200 or more whatever it looks like (no French word or
  reference is that long), and MIME/PEM-style blocks of such lines;
- binary noise: a run of words each made mostly of control, private-use, replacement or other
  characters that French text does not use.

Hand-written: no library of the stack detects these runs (charset-normalizer judges whole
files, not runs inside a text). Thresholds were chosen so that the shared corpus loses nothing
(``scripts/measure_dehyphenation.py`` reports the figures on it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_DATA_URI = re.compile(
    r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,[A-Za-z0-9+/=_-]*"
    r"(?:[ \t]*\n[ \t]*[A-Za-z0-9+/=]{40,})*",
    re.IGNORECASE,
)
# A word of the base64 (or base64url) alphabet, possibly continued on following lines.
_B64_WORD = re.compile(r"[A-Za-z0-9+/=_-]{80,}(?:[ \t]*\n[ \t]*[A-Za-z0-9+/=_-]{40,})*")
# Three or more lines that are each one base64 word of 40+ characters (MIME and PEM wrap
# base64 at 64 or 76 columns).
_B64_BLOCK = re.compile(r"(?:^[ \t]*[A-Za-z0-9+/]{40,}={0,2}[ \t]*(?:\n|\Z)){3,}", re.MULTILINE)
_HEX = re.compile(r"[0-9a-fA-F\s]+")
_USUAL = frozenset(
    "àâäáãçéèêëîïìíôöòóõùûüúÿñœæÀÂÄÁÃÇÉÈÊËÎÏÌÍÔÖÒÓÕÙÛÜÚŸÑŒÆ"
    "«»–—‘’‚“”„…€°§²³¹•·×÷±½¼¾µ©®™¶†‡′″№\u00a0\u202f\u2009"
)
# Words split on ordinary spaces only: str.split would also split on \x1c-\x1f, which are
# themselves binary noise.
_WORD = re.compile(r"[^ \t\n\r\u00a0]+")
# Quick test: a text without any character outside this class has no binary noise.
_PLAIN = re.compile("[\t\n\x20-\x7e" + re.escape("".join(sorted(_USUAL))) + "]*")


@dataclass
class NonTextReport:
    """What :func:`strip_non_text` removed: ``runs`` (count) and ``chars`` (characters)."""

    runs: int = 0
    chars: int = 0

    def add(self, other: NonTextReport) -> None:
        self.runs += other.runs
        self.chars += other.chars


def _random_looking(run: str) -> bool:
    letters = re.sub(r"\s", "", run)
    if len(letters) >= 200:
        return True
    if _HEX.fullmatch(run) and sum(c.isdigit() for c in letters) >= len(letters) // 8:
        return True
    n = len(letters)
    upper = sum(c.isupper() for c in letters)
    lower = sum(c.islower() for c in letters)
    digits = sum(c.isdigit() for c in letters)
    # Identifiers made of words ("Deliberation_CM_2025_Tarifs_Restauration…") have long runs
    # of lower-case letters; in base64 (26 lower-case of 64 symbols) such runs are rare.
    in_words = sum(len(w) for w in re.findall(r"[a-z]{4,}", letters))
    return (
        upper >= n * 0.1 and lower >= n * 0.1 and digits >= n * 0.02 and in_words < n * 0.25
    )


def _unusual(c: str) -> bool:
    """Control, private-use, unassigned or replacement characters and symbols that French
    text does not use. Letters, digits and marks of every script are text (a town hall's
    information sheet in Arabic or Ukrainian is not noise)."""
    if c.isascii():
        return not (c.isprintable() or c in "\t\n")
    if c in _USUAL:
        return False
    return unicodedata.category(c)[0] not in "LNMZ"


def _noisy(word: str) -> bool:
    odd = sum(_unusual(c) for c in word)
    return odd == len(word) or (odd >= 2 and odd >= len(word) * 0.3)


def _strip_noise(text: str, report: NonTextReport) -> str:
    """Remove runs of noisy words (at least 16 characters in all)."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    cuts: list[tuple[int, int]] = []
    start = end = -1
    for m in words:
        if _noisy(m.group(0)):
            if start < 0:
                start = m.start()
            end = m.end()
        elif start >= 0:
            cuts.append((start, end))
            start = -1
    if start >= 0:
        cuts.append((start, end))
    out: list[str] = []
    last = 0
    for a, b in cuts:
        if b - a < 16:
            continue
        out.append(text[last:a])
        out.append(" ")
        report.runs += 1
        report.chars += b - a
        last = b
    out.append(text[last:])
    return "".join(out)


def strip_non_text(text: str) -> tuple[str, NonTextReport]:
    """``text`` without its non-text runs (each replaced by one space), and what was removed.

    Idempotent: a second call removes nothing.
    """
    report = NonTextReport()
    if not text:
        return text, report

    def drop(m: re.Match[str]) -> str:
        report.runs += 1
        report.chars += len(m.group(0))
        return " "

    def drop_random(m: re.Match[str]) -> str:
        return drop(m) if _random_looking(m.group(0)) else m.group(0)

    text = _DATA_URI.sub(drop, text)
    text = _B64_WORD.sub(drop_random, text)
    text = _B64_BLOCK.sub(lambda m: drop(m) + "\n" if _random_looking(m.group(0)) else m.group(0),
                          text)
    if not _PLAIN.fullmatch(text):
        text = _strip_noise(text, report)
    return text, report
