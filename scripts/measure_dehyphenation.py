"""Measure the French dehyphenation (and the non-text filter) on a folder of documents.

For every PDF under the folder (default: the shared corpus), the text is read with the
project's loader, then each hyphen at a line end is decided by :mod:`assistant.dehyphen` exactly
as the chunker does (the document's own words as vocabulary). Prints the number of joins and
keeps, by rule, the kept compounds by frequency, and a seeded random sample of decisions with
their context to check by eye; also the non-text runs the loader removed from the same files.

    PYTHONPATH=$PWD .venv/bin/python scripts/measure_dehyphenation.py [FOLDER] \
        [--sample 40] [--seed 12] [--json out.json] [--suffix .pdf --suffix .md]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from assistant.chunking import _SPACES
from assistant.dehyphen import _WORDS, decide, dehyphenate, vocabulary
from assistant.errors import DocumentError
from assistant.loaders import load_document

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


_VOWELS = set("aeiouyàâäéèêëîïôöùûüœæ")


def _syllable_break(word: str) -> int | None:
    """First vowel-consonant-vowel split (French rule V-CV) leaving 3+ letters on each side."""
    for i in range(3, len(word) - 2):
        if word[i - 1] in _VOWELS and word[i] not in _VOWELS and word[i + 1] in _VOWELS:
            return i
    return None


def simulate(folder: Path) -> dict[str, Any]:
    """Decide simulated line-end breaks on the corpus's own words, without the usage rule:
    every distinct lower-case hyphenated compound cut at its (last) hyphen (should be kept),
    and every distinct plain word of 8+ letters cut at its first V-CV syllable (should be
    joined). Measures the French rules alone, on real vocabulary."""
    import re

    words: Counter[str] = Counter()
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in {".pdf", ".md", ".txt", ".html", ".docx", ".odt"}:
            continue
        try:
            doc = load_document(path, folder, ocr=False)
        except DocumentError:
            continue
        for page in doc.pages:
            words.update(_WORDS.findall(page.text))
    # compounds as written (capitalised names are decided by the capital rule)
    compounds = sorted(w for w in words if re.fullmatch(r"\w+(?:-\w+)+", w) and w[-1].isalpha()
                       and not any(c.isdigit() for c in w))
    plain = sorted(w for w in words if re.fullmatch(r"[a-zà-ÿœæ]{8,}", w))
    lost = []
    for w in compounds:
        left, right = w.rsplit("-", 1)
        if not decide(left, right, None)[0]:
            lost.append(w)
    kept_wrong = []
    n_words = 0
    for w in plain:
        i = _syllable_break(w)
        if i is None:
            continue
        n_words += 1
        if decide(w[:i], w[i:], None)[0]:
            kept_wrong.append(f"{w[:i]}-{w[i:]}")
    return {
        "compounds": len(compounds), "compounds_kept": len(compounds) - len(lost),
        "words": n_words, "words_joined": n_words - len(kept_wrong),
        "lost_compounds": lost, "wrongly_kept": kept_wrong,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=None)
    parser.add_argument("--sample", type=int, default=40, help="decisions shown (default 40)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--suffix", action="append", default=None,
                        help="file suffixes to read (default .pdf; repeat for more)")
    args = parser.parse_args(argv)
    folder = args.folder
    if folder is None:
        folder = next(
            (p for p in (DEFAULT_FOLDER, Path("/work/shared/corpus")) if p.is_dir()), DEFAULT_FOLDER
        )
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    suffixes = {s.lower() for s in (args.suffix or [".pdf"])}
    started = time.perf_counter()
    decisions: list[tuple[str, str, str, bool, str]] = []  # (source, left, right, keep, reason)
    non_text_runs = non_text_chars = 0
    files = failed = 0
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in suffixes:
            continue
        files += 1
        try:
            doc = load_document(path, folder, ocr=False)
        except DocumentError:
            failed += 1
            continue
        removed = doc.extra.get("non_text", {})
        non_text_runs += int(removed.get("runs", 0))
        non_text_chars += int(removed.get("chars", 0))
        pages = ["\n".join(_SPACES.sub(" ", line).strip() for line in p.text.split("\n"))
                 for p in doc.pages]
        vocab = vocabulary("\n".join(pages))
        for text in pages:
            found: list[tuple[str, str, bool, str]] = []
            dehyphenate(text, vocab, found)
            decisions.extend((doc.source, *d) for d in found)
    seconds = time.perf_counter() - started

    joins = [d for d in decisions if not d[3]]
    keeps = [d for d in decisions if d[3]]
    by_rule = Counter((("garde" if d[3] else "joint"), d[4]) for d in decisions)
    kept_forms = Counter(f"{d[1]}-{d[2]}".lower() for d in keeps)
    print(f"Dossier : {folder}")
    print(f"Fichiers {'/'.join(sorted(suffixes))} lus : {files - failed} sur {files} "
          f"({failed} illisibles sans OCR), {seconds:.1f} s")
    print(f"Traits d'union en fin de ligne : {len(decisions)}")
    print(f"  joints (coupure typographique) : {len(joins)}")
    print(f"  gardés (mot composé)           : {len(keeps)}")
    print("Par règle :")
    for (action, rule), n in sorted(by_rule.items(), key=lambda kv: -kv[1]):
        print(f"  {action:5} {rule:10} {n}")
    print("Composés gardés les plus fréquents :")
    for form, n in kept_forms.most_common(25):
        print(f"  {n:4}  {form}")
    print(f"Données non textuelles retirées : {non_text_runs} séquences, "
          f"{non_text_chars} caractères")
    rng = random.Random(args.seed)
    sample = rng.sample(decisions, min(args.sample, len(decisions)))
    print(f"Échantillon de {len(sample)} décisions (graine {args.seed}) à vérifier à l'œil :")
    for source, left, right, keep, rule in sample:
        result = f"{left}-{right}" if keep else f"{left}{right}"
        print(f"  {'GARDÉ' if keep else 'JOINT'} {rule:9} {left}-|{right} -> {result}"
              f"   [{Path(source).name[:50]}]")
    simulated = simulate(folder)
    print("Coupures simulées sur les mots du corpus (tous formats), sans l'usage du document :")
    print(f"  composés à trait d'union coupés au trait : {simulated['compounds']} distincts, "
          f"gardés {simulated['compounds_kept']} "
          f"({100 * simulated['compounds_kept'] / max(1, simulated['compounds']):.1f} %)")
    print(f"  mots simples coupés à une syllabe (V-CV) : {simulated['words']} distincts, "
          f"joints {simulated['words_joined']} "
          f"({100 * simulated['words_joined'] / max(1, simulated['words']):.1f} %)")
    print("  composés perdus (joints à tort), 15 premiers : "
          + ", ".join(simulated["lost_compounds"][:15]))
    print("  mots coupés gardés à tort, 15 premiers : "
          + ", ".join(simulated["wrongly_kept"][:15]))
    if args.json:
        args.json.write_text(json.dumps({
            "simulated": {k: v for k, v in simulated.items() if isinstance(v, int)},
            "folder": str(folder), "files": files, "failed": failed,
            "line_end_hyphens": len(decisions), "joined": len(joins), "kept": len(keeps),
            "by_rule": {f"{a}/{r}": n for (a, r), n in by_rule.items()},
            "non_text_runs": non_text_runs, "non_text_chars": non_text_chars,
            "seconds": round(seconds, 1),
        }, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
