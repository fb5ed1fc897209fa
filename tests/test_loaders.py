"""Loaders: formats, bad files with French reasons, metadata, the demo and shared corpora."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import badfiles
import pytest

from assistant import loaders
from assistant.errors import (
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    ScannedDocumentError,
    TooLargeDocumentError,
    UnsupportedDocumentError,
)
from assistant.loaders import (
    SUPPORTED_SUFFIXES,
    find_date,
    guess_doc_type,
    is_supported,
    load_document,
)

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "corpus" / "exemple"
SCAN = (
    "comptes_rendus_pdf/montpellier_compte_rendu_conseil_municipal_2011-03-28_SCAN_sans_texte.pdf"
)
needs_tesseract = pytest.mark.skipif(
    not loaders.ocr_available(), reason="tesseract with French data not installed"
)


def _all_text(doc) -> str:
    return "\n".join(p.text for p in doc.pages)


# --- supported formats ----------------------------------------------------------------------


def test_supported_suffixes_are_lowercase_and_checked_case_insensitively() -> None:
    assert {".pdf", ".docx", ".odt", ".html", ".md", ".txt"} <= SUPPORTED_SUFFIXES
    assert all(s == s.lower() and s.startswith(".") for s in SUPPORTED_SUFFIXES)
    assert is_supported(Path("Compte-Rendu.PDF"))
    assert not is_supported(Path("tableau.xlsx"))
    assert not is_supported(Path("sans_extension"))


def test_text_pdf_pages_numbered_and_source_relative(tmp_path: Path) -> None:
    folder = tmp_path / "sous dossier"
    folder.mkdir()
    path = badfiles.write_text_pdf(folder, name="Deliberation.PDF")
    doc = load_document(path, tmp_path)
    assert doc.source == "sous dossier/Deliberation.PDF"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    for page in doc.pages:
        assert f"Page {page.number}" in page.text
        assert badfiles.TEXT_PDF_SENTENCE in page.text
    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_docx_paragraphs_headings_and_tables(tmp_path: Path) -> None:
    doc = load_document(badfiles.write_docx(tmp_path), tmp_path)
    text = _all_text(doc)
    assert doc.pages[0].number is None
    assert f"## {badfiles.DOCX_HEADING}" in text.splitlines()
    assert badfiles.DOCX_TEXT in text
    assert f"{badfiles.DOCX_TABLE_CELL} | 320 €" in text
    assert doc.title == "Règlement de la salle des fêtes"
    assert doc.doc_type == "reglement"


def test_odt_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = load_document(badfiles.write_odt(tmp_path), tmp_path)
    lines = _all_text(doc).splitlines()
    assert f"## {badfiles.ODT_HEADING}" in lines
    assert badfiles.ODT_TEXT in lines
    assert "- Commission des finances" in lines
    assert f"{badfiles.ODT_TABLE_CELL} | 280 €" in lines
    assert doc.title == "Règlement des commissions"  # first heading (no metadata title)


def test_html_keeps_headings_drops_scripts_and_navigation(tmp_path: Path) -> None:
    doc = load_document(badfiles.write_html(tmp_path), tmp_path)
    text = _all_text(doc)
    assert doc.title == badfiles.HTML_TITLE
    assert f"## {badfiles.HTML_HEADING}" in text.splitlines()
    assert badfiles.HTML_TEXT in text  # inline <b> does not break the sentence
    assert badfiles.HTML_SCRIPT_MARKER not in text
    assert "MenuDeNavigation" not in text
    assert "Samedi | 9 h – 12 h" in text


@pytest.mark.parametrize("writer", [badfiles.write_cp1252_text, badfiles.write_latin1_text])
def test_legacy_encodings_decoded(tmp_path: Path, writer) -> None:
    path = writer(tmp_path)
    text = _all_text(load_document(path, tmp_path))
    expected = path.read_bytes().decode("cp1252").replace("\r\n", "\n")
    assert text == expected
    assert "Délibération" in text and "Ã" not in text


def test_markdown_html_tables_become_text(tmp_path: Path) -> None:
    path = tmp_path / "loi.md"
    path.write_text(
        "# Code\n\n**Article L1**\n\nTableau :\n\n<table><tbody><tr><td><p>Moins de 100 "
        "habitants</p></td><td><p align=\"center\">7</p></td></tr></tbody></table>\n\nSuite.<br/>"
        "Fin.\n",
        encoding="utf-8",
    )
    text = _all_text(load_document(path, tmp_path))
    assert "Moins de 100 habitants | 7" in text
    assert "<" not in text


def test_pdf_metadata_title_used_only_when_meaningful(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    def pdf(name: str, title: str) -> Path:
        path = tmp_path / name
        c = canvas.Canvas(str(path), invariant=1)
        c.setTitle(title)
        c.drawString(72, 700, "Le conseil municipal approuve le budget primitif.")
        c.showPage()
        c.save()
        return path

    good = load_document(pdf("a.pdf", "Budget primitif 2025"), tmp_path)
    assert good.title == "Budget primitif 2025"
    bad = load_document(pdf("cr_conseil_2011.pdf", "Microsoft Word - CR 07 02 2011.doc"), tmp_path)
    assert bad.title == "Cr conseil 2011"


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writer", "error", "words"),
    [
        (badfiles.write_encrypted_pdf, EncryptedDocumentError, ("mot de passe", "qpdf")),
        (badfiles.write_truncated_pdf, CorruptDocumentError, ("tronqué", "nouveau")),
        (badfiles.write_garbage_pdf, CorruptDocumentError, ("corrompu", "nouveau")),
        (badfiles.write_png_named_pdf, CorruptDocumentError, ("PNG", "extension")),
        (badfiles.write_empty, EmptyDocumentError, ("vide", "remplacez")),
        (badfiles.write_blank, EmptyDocumentError, ("sans texte",)),
        (
            badfiles.write_unsupported,
            UnsupportedDocumentError,
            ("non pris en charge", "convertissez"),
        ),
    ],
)
def test_bad_files_raise_typed_error_with_french_fix(tmp_path: Path, writer, error, words) -> None:
    with pytest.raises(error) as info:
        load_document(writer(tmp_path), tmp_path)
    reason = info.value.reason
    assert reason == str(info.value)
    for word in words:
        assert word in reason
    assert "Traceback" not in reason and len(reason) < 300


def test_scanned_pdf_without_ocr(tmp_path: Path) -> None:
    with pytest.raises(ScannedDocumentError) as info:
        load_document(badfiles.write_scanned_pdf(tmp_path), tmp_path, ocr=False)
    assert info.value.reason == loaders.SCANNED_REASON
    assert "OCR" in info.value.reason and "tesseract-ocr-fra" in info.value.reason


def test_image_without_ocr_is_scanned(tmp_path: Path) -> None:
    with pytest.raises(ScannedDocumentError, match="OCR"):
        load_document(badfiles.write_png(tmp_path), tmp_path, ocr=False)


def test_pdf_with_owner_password_only_is_read(tmp_path: Path) -> None:
    doc = load_document(badfiles.write_owner_only_encrypted_pdf(tmp_path), tmp_path)
    assert badfiles.TEXT_PDF_SENTENCE in doc.pages[0].text


def test_size_limit_checked_before_reading(tmp_path: Path, monkeypatch) -> None:
    path = badfiles.write_huge(tmp_path, size=50 * 1024 * 1024)

    def no_read(self: Path) -> bytes:
        raise AssertionError("the file must not be read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(TooLargeDocumentError) as info:
        load_document(path, tmp_path, max_bytes=10_000_000)
    assert "max_file_mb" in info.value.reason
    assert "52,4 Mo" in info.value.reason


def test_errors_are_document_errors_with_kind(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as info:
        load_document(badfiles.write_encrypted_pdf(tmp_path), tmp_path)
    assert info.value.kind == "chiffré"


@needs_tesseract
def test_ocr_reads_an_image_with_text(tmp_path: Path) -> None:  # pragma: no cover - optional
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1400, 200), "white")
    font = ImageFont.load_default(size=48)
    ImageDraw.Draw(image).text((20, 60), "Le conseil municipal délibère", fill="black", font=font)
    path = tmp_path / "scan.png"
    image.save(path)
    doc = load_document(path, tmp_path)
    assert "conseil" in _all_text(doc).lower()


# --- metadata guesses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("x.pdf", "Séance du lundi 16 décembre 2013 à 18 h", "2013-12-16"),
        ("x.pdf", "Fait le 1er janvier 2014.", "2014-01-01"),
        ("x.pdf", "Publiée le : 16/12/2013", "2013-12-16"),
        ("x.pdf", "modified 2013-12-16 by", "2013-12-16"),
        ("x.pdf", "le 31/02/2014 puis le 3 mars 2014", "2014-03-03"),  # invalid date skipped
        ("delib_2014-04-24_n141.pdf", "Séance du 17 avril 2014", "2014-04-24"),
        ("x.pdf", "pas de date ici, n° 2014 / 141", None),
    ],
)
def test_find_date(name: str, text: str, expected: str | None) -> None:
    assert find_date(name, text) == expected


@pytest.mark.parametrize(
    ("source", "title", "text", "expected"),
    [
        ("deliberations_pdf/delib_2014_reglement_interieur.pdf", "", "", "deliberation"),
        ("comptes_rendus_pdf/cr.pdf", "", "", "compte_rendu"),
        ("textes_de_loi/cgct_L2121.md", "", "", "loi"),
        ("service_public_fiches/sp_part_F1367.md", "", "", "fiche"),
        ("arretes/arrete_2025_047.pdf", "", "", "arrete"),
        ("divers/doc.pdf", "Tarifs municipaux 2025", "", "tarifs"),
        ("divers/doc.docx", "Réponse", "Objet : votre demande\nMadame,", "courrier"),
        ("divers/doc.pdf", "Doc", "Extrait du registre des délibérations", "deliberation"),
        ("divers/doc.pdf", "Doc", "Rien de particulier", "autre"),
    ],
)
def test_guess_doc_type(source: str, title: str, text: str, expected: str) -> None:
    assert guess_doc_type(source, title, text) == expected


# --- the project's demo corpus --------------------------------------------------------------


def _facts() -> dict[str, str]:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from make_demo_corpus import FACTS
    finally:
        sys.path.pop(0)
    return FACTS


def test_demo_corpus_loads_and_contains_its_facts() -> None:
    facts = _facts()
    files = sorted(p for p in DEMO.iterdir() if p.is_file())
    assert {p.name for p in files} == set(facts)
    assert {p.suffix for p in files} == {".md", ".pdf", ".docx", ".odt"}
    for path in files:
        doc = load_document(path, DEMO)
        folded = " ".join(_all_text(doc).split())
        assert facts[path.name] in folded, path.name
        assert doc.doc_type and doc.doc_type != "autre", path.name
        assert "Saint-Aubin-les-Vergers" in folded


def test_demo_corpus_is_up_to_date(tmp_path: Path) -> None:
    """The committed files are what the script writes (same text, format by format)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import make_demo_corpus
    finally:
        sys.path.pop(0)
    for path in make_demo_corpus.build(tmp_path):
        fresh = load_document(path, tmp_path)
        committed = load_document(DEMO / path.name, DEMO)
        assert _all_text(fresh) == _all_text(committed), path.name


def test_demo_reglement_is_multi_page_with_fact_on_a_later_page() -> None:
    doc = load_document(DEMO / "reglement_interieur_conseil_municipal.pdf", DEMO)
    assert len(doc.pages) >= 3
    fact = _facts()["reglement_interieur_conseil_municipal.pdf"]
    pages = [p.number for p in doc.pages if fact in " ".join(p.text.split())]
    assert pages and pages[0] is not None and pages[0] >= 2


# --- the shared real corpus (real PDFs: slow) -----------------------------------------------


@pytest.mark.slow
def test_shared_pdfs_load_page_by_page(corpus_dir: Path) -> None:
    shared = corpus_dir
    pdfs = sorted(shared.rglob("*.pdf"))
    assert len(pdfs) == 37
    for path in pdfs:
        source = path.relative_to(shared).as_posix()
        if source == SCAN:
            if loaders.ocr_available():
                continue  # pragma: no cover - depends on the machine
            with pytest.raises(ScannedDocumentError) as info:
                load_document(path, shared)
            assert "OCR" in info.value.reason
            continue
        doc = load_document(path, shared)
        assert doc.source == source
        assert [p.number for p in doc.pages] == list(range(1, len(doc.pages) + 1))
        assert sum(c.isalpha() for c in doc.pages[0].text) > 200, source
        assert doc.date is not None and doc.date[:4] in path.name, source
        assert doc.doc_type in {"deliberation", "compte_rendu"}, source


@pytest.mark.slow
def test_shared_pdf_quote_on_its_page(corpus_dir: Path) -> None:
    shared = corpus_dir
    name = "montpellier_delib_2014-04-24_n2014-141_taux_imposition_2014.pdf"
    path = shared / "deliberations_pdf" / name
    doc = load_document(path, shared)
    pages = [p.number for p in doc.pages if "Taux de Taxe d’Habitation : 22,49%" in p.text]
    assert pages == [2]


@pytest.mark.slow
def test_truncated_real_pdf_is_corrupt(tmp_path: Path, corpus_dir: Path) -> None:
    shared = corpus_dir
    real = shared / "comptes_rendus_pdf/montpellier_compte_rendu_conseil_municipal_2011-02-07.pdf"
    for keep in (0.3, 0.9):
        path = badfiles.write_truncated_pdf(tmp_path, source=real, keep=keep)
        with pytest.raises(CorruptDocumentError):
            load_document(path, tmp_path)


@pytest.mark.slow
@needs_tesseract
def test_scanned_shared_pdf_is_ocred_when_available(corpus_dir: Path) -> None:  # pragma: no cover
    shared = corpus_dir
    doc = load_document(shared / SCAN, shared)
    assert sum(c.isalpha() for c in _all_text(doc)) > 500


def test_ocr_unavailable_when_no_engine(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert not loaders.ocr_available()
