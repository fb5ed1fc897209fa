"""Hostile and malformed files: a few hundred mutated PDFs, DOCX and ODT (truncated, bytes
flipped, zip entries corrupted, dropped or replaced), synced in one batch with a time limit per
file: each one is indexed or reported with a French reason, the batch never crashes or hangs,
and the index stays consistent. Mutations come from a seeded generator (reproducible)."""

from __future__ import annotations

import io
import random
import time
import zipfile
from pathlib import Path

import pytest

from assistant.ingest import sync_folder
from assistant.loaders import BoundedLoader, TimeoutDocumentError
from assistant.store import build_index
from tests import badfiles
from tests.fakes import FakeEmbedder

SEED = 20261130
PER_FORMAT = 100  # 300 files in all
BATCH_LIMIT_S = 900  # the whole batch, on the slowest CI machine


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, max(2, len(data) - 1))]


def _flip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 4, 32, 256))):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _zip_mutation(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the archive with one entry damaged: flipped, truncated, emptied, replaced by
    random bytes or by a bomb of repeated tags, dropped, or duplicated."""
    source = zipfile.ZipFile(io.BytesIO(data))
    names = source.namelist()
    victim = rng.choice([n for n in names if n.endswith(".xml")] or names)
    how = rng.choice(("flip", "truncate", "empty", "random", "drop", "duplicate", "bomb"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for name in names:
            content = source.read(name)
            if name == victim:
                if how == "drop":
                    continue
                if how == "flip":
                    content = _flip(content, rng)
                elif how == "truncate":
                    content = content[: rng.randrange(0, max(1, len(content)))]
                elif how == "empty":
                    content = b""
                elif how == "random":
                    content = rng.randbytes(rng.randrange(1, 4096))
                elif how == "bomb":  # ~20 MB of nested elements from a few kB on disk
                    content = b"<a>" * 2_000_000 + b"</a>" * 2_000_000
                elif how == "duplicate":
                    out.writestr(name, content)
            out.writestr(name, content)
    return buffer.getvalue()


def mutate(data: bytes, is_zip: bool, rng: random.Random) -> bytes:
    kinds = [_truncate, _flip] + ([_zip_mutation] * 2 if is_zip else [])
    return rng.choice(kinds)(data, rng)


def write_corpus(folder: Path) -> dict[str, int]:
    """``PER_FORMAT`` mutants of a valid small PDF, DOCX and ODT (plus the valid ones)."""
    rng = random.Random(SEED)
    seeds = folder / "graines"
    seeds.mkdir(parents=True)
    valid = {
        ".pdf": badfiles.write_text_pdf(seeds).read_bytes(),
        ".docx": badfiles.write_docx(seeds).read_bytes(),
        ".odt": badfiles.write_odt(seeds).read_bytes(),
    }
    counts: dict[str, int] = {}
    for suffix, data in valid.items():
        for i in range(PER_FORMAT):
            target = folder / f"mutant-{i:03d}{suffix}"
            target.write_bytes(mutate(data, suffix != ".pdf", rng))
        counts[suffix] = PER_FORMAT
    return counts


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_batch_of_malformed_files_is_indexed_or_reported(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "hostile"
    counts = write_corpus(folder)
    total = sum(counts.values()) + 3  # and the three valid seeds
    index = build_index(settings)
    started = time.monotonic()
    report = sync_folder(folder, "fuzz", index, FakeEmbedder(), load_timeout_s=30)
    elapsed = time.monotonic() - started
    indexed = set(report.added)
    failed = {f["source"]: f for f in report.failed}
    print(
        f"\n{total} files: {len(indexed)} indexed, {len(failed)} reported, {elapsed:.1f} s; "
        f"reasons: {sorted({f['kind'] for f in failed.values()})}"
    )
    assert elapsed < BATCH_LIMIT_S
    assert len(indexed) + len(failed) == total  # every file accounted for, none twice
    assert not indexed & set(failed)
    assert {"graines/texte.pdf", "graines/reglement.docx", "graines/commissions.odt"} <= indexed
    for failure in failed.values():
        assert failure["reason"] and "Traceback" not in failure["reason"]
    # Both indexes hold exactly the indexed documents.
    ids = index.chunk_ids("fuzz")
    assert sorted(ids["chroma"]) == sorted(ids["lexical"])
    assert set(index.documents("fuzz")) == indexed
    # A second run retries nothing (bad files are remembered by their hash).
    again = sync_folder(folder, "fuzz", index, FakeEmbedder(), load_timeout_s=30)
    assert again.added == [] and again.unchanged == len(indexed)


def test_a_file_that_reads_too_long_is_cut_and_the_next_one_still_loads(tmp_path: Path) -> None:
    """The time limit is real: the child reading a slow file is killed, the file reported,
    and a new child reads the next file."""
    slow = tmp_path / "enorme.html"
    # Nested markup that takes BeautifulSoup far longer than the limit below.
    slow.write_text("<html><body>" + "<div><p>texte " * 400_000 + "</body></html>")
    good = badfiles.write_html(tmp_path)
    with BoundedLoader(timeout_s=1.0) as loader:
        started = time.monotonic()
        with pytest.raises(TimeoutDocumentError, match="interrompue après 1 s"):
            loader.load(slow, tmp_path)
        assert time.monotonic() - started < 10
        doc = loader.load(good, tmp_path)
    assert badfiles.HTML_TEXT in " ".join(p.text for p in doc.pages)
