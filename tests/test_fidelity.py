"""Loader fidelity (issue 12): what is indexed is the text a reader of the document sees.

Every file is generated at test time (tests/fidelity_files.py): DOCX and ODT as raw package XML
with content controls, tracked changes, fields, text boxes, comments and notes; HTML as old web
frameworks write it; Markdown with pasted images; PDFs with hyphenated compounds at line ends and
a filled form; a file name in the old Windows encoding. Fast tests read them with the real
loaders and chunker, and sync them with real Chroma and SQLite (fake embedder); the slow test
runs the real CLI with the real GGUF embedder and searches like a user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from assistant.chunking import chunk_document
from assistant.config import Settings
from assistant.dehyphen import decide, dehyphenate
from assistant.ingest import IngestReport, sync_folder
from assistant.loaders import load_document, readable_name
from assistant.nontext import strip_non_text
from assistant.schema import LoadedDocument, Page
from assistant.store import Index, build_index
from tests import fidelity_files as ff
from tests.conftest import REPO, require_model
from tests.fakes import FakeEmbedder


def _flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _text(doc: LoadedDocument) -> str:
    return _flat("\n".join(p.text for p in doc.pages))


def _chunks_text(doc: LoadedDocument, max_chars: int = 1200) -> list[str]:
    return [_flat(c.text) for c in chunk_document(doc, "t", max_chars=max_chars, overlap=150)]


def _check(text: str, expected: list[str], unwanted: list[str]) -> None:
    for phrase in expected:
        assert _flat(phrase) in text, phrase
    for phrase in unwanted:
        assert phrase not in text, phrase


# --- DOCX -----------------------------------------------------------------------------------


def test_docx_controls_revisions_fields_boxes_notes(tmp_path: Path) -> None:
    doc = load_document(ff.write_docx(tmp_path), tmp_path)
    text = _text(doc)
    _check(text, ff.DOCX_EXPECTED, ff.DOCX_UNWANTED)
    # a text box written twice (DrawingML and its VML fallback) is read once
    assert text.count("permanence du maire") == 1
    # the footnote follows the body, it does not cut the sentence that cites it
    assert "affiché en mairie et publié." in text
    # the header is indexed once, page numbers are not
    assert text.count("Saint-Aubin-sur-Loire") == 1 and "Page 1" not in text
    assert doc.title == "Arrêté municipal portant réglementation de la circulation"
    joined = " ".join(_chunks_text(doc))
    _check(joined, ff.DOCX_EXPECTED, ff.DOCX_UNWANTED)


def test_docx_deleted_paragraph_mark_merges_with_next(tmp_path: Path) -> None:
    """A paragraph whose mark was deleted runs into the next one (Word shows one paragraph)."""
    from lxml import etree

    from assistant.office_text import DocxWalker, W

    xml = (
        f'<w:body xmlns:w="{W}"><w:p><w:pPr><w:rPr><w:del w:id="1" w:author="a"/></w:rPr>'
        '</w:pPr><w:r><w:t xml:space="preserve">Le conseil </w:t></w:r></w:p>'
        "<w:p><w:r><w:t>approuve le budget.</w:t></w:r></w:p></w:body>"
    )
    blocks = DocxWalker({}).blocks(etree.fromstring(xml))
    assert blocks == ["Le conseil approuve le budget."]


def test_python_docx_document_still_reads(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Règlement intérieur", level=1)
    document.add_paragraph("Le conseil se réunit une fois par trimestre.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Salle"
    table.cell(0, 1).text = "Salle du conseil"
    document.save(str(tmp_path / "r.docx"))
    text = _text(load_document(tmp_path / "r.docx", tmp_path))
    assert "# Règlement intérieur" in text
    assert "Le conseil se réunit une fois par trimestre." in text
    assert "Salle | Salle du conseil" in text


# --- ODT ------------------------------------------------------------------------------------


def test_odt_tracked_changes_comments_notes_frames(tmp_path: Path) -> None:
    doc = load_document(ff.write_odt(tmp_path), tmp_path)
    text = _text(doc)
    _check(text, ff.ODT_EXPECTED, ff.ODT_UNWANTED)
    assert "Les commerçants s'installent dès 7 h." in text  # comment and note not inline
    assert text.index("Règlement du marché") < text.index("samedi")
    joined = " ".join(_chunks_text(doc))
    _check(joined, ff.ODT_EXPECTED, ff.ODT_UNWANTED)


# --- HTML -----------------------------------------------------------------------------------


def test_html_aspnet_form_page_is_read(tmp_path: Path) -> None:
    text = _text(load_document(ff.write_html_form(tmp_path), tmp_path))
    _check(text, ff.HTML_FORM_EXPECTED, ff.HTML_UNWANTED)


def test_html_article_keeps_its_own_header(tmp_path: Path) -> None:
    doc = load_document(ff.write_html_article(tmp_path), tmp_path)
    text = _text(doc)
    _check(text, ff.HTML_ARTICLE_EXPECTED, ff.HTML_UNWANTED)
    assert "# Fermeture exceptionnelle de la piscine municipale" in text


# --- Markdown and non-text ------------------------------------------------------------------


def test_markdown_images_and_base64_removed_and_counted(tmp_path: Path) -> None:
    doc = load_document(ff.write_markdown(tmp_path), tmp_path)
    text = _text(doc)
    _check(text, ff.MD_EXPECTED, ff.MD_UNWANTED)
    removed = doc.extra["non_text"]
    assert removed["runs"] >= 4 and removed["chars"] > 60_000
    chunks = chunk_document(doc, "t", max_chars=400, overlap=60)
    assert all(len(c.text) <= 400 for c in chunks)
    for chunk in chunks:
        assert "](" not in chunk.text and "data:" not in chunk.text


def test_text_soft_hyphens_ligatures_hex_and_binary_noise(tmp_path: Path) -> None:
    doc = load_document(ff.write_text_with_noise(tmp_path), tmp_path)
    text = _text(doc)
    _check(text, ff.TXT_EXPECTED, ["\u00ad", "\ufffd", "\ue000", "ﬁ"])
    assert doc.extra["non_text"]["runs"] == 2  # the hex seal and the binary run


@pytest.mark.parametrize(
    "text",
    [
        "Voir https://www.legifrance.gouv.fr/codes/article_lc/LEGIARTI000006389966 et "
        "l'article L. 2121-17 du CGCT.",
        "Empreinte SHA-256 : 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "Marché n° 2025-ACH-0042/BIS, SIRET 213 401 722 00017, IBAN FR76 3000 1007 9412 3456.",
        "Bienvenue — Добро пожаловать — مرحبا بكم — 欢迎 : la mairie vous accueille.",
        "Anticonstitutionnellement, l'intercommunalité délibère ; « Œuvre » coûte 12 € (±2 %).",
        "Pièce jointe : Deliberation_CM_2025-03-13_n2025-012_Tarifs_Municipaux_Annexe_1_Grille_"
        "Tarifaire_Restauration_Scolaire.pdf (voir le registre).",
        "Référence : /srv/partage/Mairie/Conseil_Municipal/2025/Deliberations/Tarifs/Annexes/"
        "Grille_2025_v3_definitive_signee.pdf",
    ],
)
def test_non_text_filter_keeps_real_text(text: str) -> None:
    cleaned, report = strip_non_text(text)
    assert cleaned == text and report.runs == 0


def test_no_chunk_longer_than_max_even_without_spaces() -> None:
    url = "https://intranet.mairie.example/" + ".".join(["dossier"] * 300)
    doc = LoadedDocument("u.md", "U", [Page(None, f"Texte avant.\n\n{url}\n\nTexte après.")],
                         "0" * 64)
    chunks = chunk_document(doc, "t", max_chars=300, overlap=50)
    assert chunks and all(len(c.text) <= 300 for c in chunks)
    assert any("Texte après." in c.text for c in chunks)


# --- PDF and dehyphenation ------------------------------------------------------------------


def test_pdf_line_end_compounds_kept_breaks_joined_form_value_read(tmp_path: Path) -> None:
    doc = load_document(ff.write_pdf(tmp_path), tmp_path)
    assert ff.PDF_FORM_VALUE in _text(doc)
    joined = " ".join(_chunks_text(doc))
    _check(joined, [*ff.PDF_EXPECTED, ff.PDF_FORM_VALUE], ff.PDF_UNWANTED)


@pytest.mark.parametrize(
    ("left", "right", "keep"),
    [
        ("procès", "verbal", True), ("sous", "préfecture", True), ("vice", "président", True),
        ("rez-de", "chaussée", True), ("c'est-à", "dire", True), ("Pourra-t", "il", True),
        ("dix", "huit", True), ("quatre", "vingts", True), ("celui", "ci", True),
        ("peut", "être", True), ("l'ex", "maire", True), ("ci", "dessous", True),
        ("avant", "projet", True), ("non", "respect", True), ("Saint", "Aubin", True),
        ("LEVY", "RAMEAU", True), ("centre", "ville", True), ("auto", "entrepreneur", True),
        ("mi", "temps", True), ("demi", "journée", True), ("contre", "indication", True),
        ("adminis", "tratif", False), ("sous", "signé", False), ("ex", "ception", False),
        ("ci", "toyen", False), ("mi", "nistre", False), ("quasi", "ment", False),
        ("avant", "age", False), ("auto", "risation", False), ("anti", "corruption", False),
        ("contre", "venant", False), ("délibé", "ration", False), ("co", "opération", False),
        ("inter", "communalité", False), ("pré", "fecture", False), ("nu", "méro", False),
        ("soi", "gneux", False), ("aller", "gie", False), ("beau", "coup", False),
        ("sous", "traction", False), ("mer", "ci", False), ("va", "leur", False),
    ],
)
def test_french_line_end_hyphen_rules(left: str, right: str, keep: bool) -> None:
    assert decide(left, right)[0] is keep


def test_document_usage_decides_before_the_lists() -> None:
    text = (
        "Le soussigné atteste.\nLe sous-\nsigné déclare.\nLa porte-fenêtre et la porte-\nfenêtre."
    )
    out = dehyphenate(text)
    assert "Le soussigné déclare." in out and "la porte-fenêtre." in out


# --- file names and the batch ---------------------------------------------------------------


def _sync(folder: Path, index: Index) -> IngestReport:
    return sync_folder(folder, "mairie", index, FakeEmbedder(), ocr=False)


def test_non_utf8_file_name_indexed_reported_idempotent_and_removable(
    tmp_path: Path, settings: Settings
) -> None:
    folder = tmp_path / "partage"
    folder.mkdir()
    bad = ff.write_bad_name(folder)
    (folder / "voirie.md").write_text("# Voirie\n\nLe stationnement est interdit.", "utf-8")
    (folder / "casse.pdf").write_bytes(b"%PDF-1.4\n garbage")
    sub = Path(os.fsdecode(os.fsencode(str(folder)) + b"/archives_\xe9t\xe9"))
    sub.mkdir()
    (sub / "note.txt").write_text("Note d'archives sur les concessions funéraires.", "utf-8")
    index = build_index(settings)

    report = _sync(folder, index)
    assert sorted(report.added) == ["archives_été/note.txt", "délibération.txt", "voirie.md"]
    assert [f["source"] for f in report.failed] == ["casse.pdf"]
    warned = {w["source"]: w["reason"] for w in report.warnings}
    assert set(warned) == {"délibération.txt", "archives_été/note.txt"}
    assert all("UTF-8" in r and "renommez" in r for r in warned.values())
    encoded = json.dumps(report.as_json(), ensure_ascii=False).encode("utf-8")
    assert "délibération.txt".encode() in encoded
    hits = index.lexical_search(["mairie"], "tarifs médiathèque unanimité", 3)
    assert hits and hits[0].source == "délibération.txt"

    again = _sync(folder, index)
    assert again.added == [] and again.removed == [] and again.unchanged == 3

    bad.unlink()
    gone = _sync(folder, index)
    assert gone.removed == ["délibération.txt"]
    assert "délibération.txt" not in index.documents("mairie")


def test_colliding_readable_names_stay_distinct(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "partage"
    folder.mkdir()
    ff.write_bad_name(folder)
    (folder / "délibération.txt").write_text("Délibération UTF-8 sur la voirie.", "utf-8")
    report = _sync(folder, build_index(settings))
    assert sorted(report.added) == ["d\\xe9lib\\xe9ration.txt", "délibération.txt"]
    assert readable_name(os.fsdecode(b"d\xe9lib.txt")) == "délib.txt"


def test_cli_batch_report_json_and_summary(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import assistant.cli.ingest as cli_ingest
    from assistant.cli import app

    monkeypatch.setattr(cli_ingest, "build_embedder", lambda s: FakeEmbedder())
    folder = tmp_path / "partage"
    folder.mkdir()
    ff.write_bad_name(folder)
    ff.write_markdown(folder)
    (folder / "casse.docx").write_bytes(b"PK\x03\x04 not a zip")
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]
    result = runner.invoke(app, [*base, "ingest", str(folder), "-c", "m", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == 2
    assert [f["source"] for f in report["failed"]] == ["casse.docx"]
    assert report["warnings"][0]["source"] == "délibération.txt"
    assert report["non_text_removed"]["runs"] >= 4
    assert report["non_text_removed"]["documents"][0]["source"] == "note_lotissement.md"

    (folder / "autre.md").write_text("# Autre\n\nUn texte de plus.", "utf-8")
    human = runner.invoke(app, [*base, "ingest", str(folder), "-c", "m"])
    assert human.exit_code == 0, human.output
    assert "Avertissements" in human.stdout and "délibération.txt" in human.stdout


# --- the real pipeline, like a user ---------------------------------------------------------


def _fidelity_folder(folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Write one file per kind; return {source: (expected, unwanted)}."""
    folder.mkdir(parents=True)
    ff.write_bad_name(folder)
    ff.write_text_with_noise(folder)
    (folder / "corrompu.odt").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    return {
        ff.write_docx(folder).name: (ff.DOCX_EXPECTED, ff.DOCX_UNWANTED),
        ff.write_odt(folder).name: (ff.ODT_EXPECTED, ff.ODT_UNWANTED),
        ff.write_html_form(folder).name: (ff.HTML_FORM_EXPECTED, ff.HTML_UNWANTED),
        ff.write_html_article(folder).name: (ff.HTML_ARTICLE_EXPECTED, ff.HTML_UNWANTED),
        ff.write_markdown(folder).name: (ff.MD_EXPECTED, ff.MD_UNWANTED),
        ff.write_pdf(folder).name: (ff.PDF_EXPECTED, ff.PDF_UNWANTED),
        "délibération.txt": ([ff.BAD_NAME_TEXT], []),
    }


def _cli_env(data_dir: Path, embedding_model: str) -> dict[str, str]:
    """The CLI's environment: same data, models and embedder as the in-process checks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["ASSISTANT_DATA_DIR"] = str(data_dir)
    env["ASSISTANT_MODELS_DIR"] = str(REPO / "models")
    env["ASSISTANT_EMBEDDING_MODEL"] = embedding_model
    return env


@pytest.mark.slow
def test_real_pipeline_indexes_what_the_reader_sees(tmp_path: Path, settings: Settings) -> None:
    require_model("all-minilm-l6-v2-f32.gguf")
    folder = tmp_path / "partage"
    kinds = _fidelity_folder(folder)
    env = _cli_env(settings.data_dir, settings.embedding_model)
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(folder), "-c", "fid", "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert [f["source"] for f in report["failed"]] == ["corrompu.odt"]
    assert report["failed"][0]["reason"]
    assert report["added"] == len(kinds) + 1  # + the noisy text file
    assert report["warnings"][0]["source"] == "délibération.txt"
    assert report["non_text_removed"]["runs"] >= 6

    # `assistant search`, the user's command, finds the text only a reader sees
    searched = subprocess.run(
        [sys.executable, "-m", "assistant", "search", "le samedi matin place de l'Église",
         "-c", "fid", "-k", "3", "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert searched.returncode == 0, searched.stderr
    first = json.loads(searched.stdout)["results"][0]
    assert first["source"] == "reglement_marche.odt" and "mercredi" not in first["text"]

    from assistant.embeddings import build_embedder
    from assistant.retrieval import build_retriever

    index = build_index(settings)
    retriever = build_retriever(settings, index=index, embedder=build_embedder(settings))
    for source, (expected, _) in kinds.items():
        for phrase in expected:
            hits = retriever.search(phrase, ["fid"], k=5)
            assert any(_flat(phrase) in _flat(h.text) for h in hits), (source, phrase)
    texts = [h.text for h in index.get_chunks(index.chunk_ids("fid")["lexical"])]
    assert all(len(t) <= 1200 for t in texts)
    for _source, (_, unwanted) in kinds.items():
        for phrase in unwanted:
            assert not any(phrase in t for t in texts), phrase
            for hit in index.lexical_search(["fid"], phrase, 5):
                assert phrase not in hit.text, phrase


def test_store_refuses_undecoded_names_without_writing(settings: Settings) -> None:
    from assistant.errors import StoreError
    from assistant.schema import Chunk
    from assistant.store import FailureRecord

    index = build_index(settings)
    index.ensure_collection("c", embedder="fake", folder="/tmp")
    source = os.fsdecode(b"d\xe9lib.txt")
    chunk = Chunk(id=f"c:{source}:0", text="Texte.", metadata={"source": source})
    with pytest.raises(StoreError, match="UTF-8"):
        index.replace_document("c", source, "0" * 64, [chunk], [[0.1] * 8])
    with pytest.raises(StoreError, match="renommez"):
        index.record_failure("c", FailureRecord(source, "0" * 64, 1, 1, "erreur", "x"))
    assert index.documents("c") == {} and index.failures("c") == {}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"d\xe9lib\xe9ration.txt", "délibération.txt"),  # Windows-1252
        (b"proc\xe8s-verbal \x93CM\x94.pdf", "procès-verbal “CM”.pdf"),  # cp1252 quotes
        (b"d\xc3\xa9j\xe0.txt", "déjà.txt"),  # UTF-8 and cp1252 mixed in one name
        (b"note\x81.txt", "note\\x81.txt"),  # a byte cp1252 leaves undefined
        (b"ligne\nsuivante.txt", "ligne\\x0asuivante.txt"),  # control characters
        ("délibération.txt".encode(), "délibération.txt"),  # valid UTF-8: unchanged
    ],
)
def test_readable_name_of_any_byte_sequence(raw: bytes, shown: str) -> None:
    name = readable_name(os.fsdecode(raw))
    assert name == shown
    name.encode("utf-8")  # storable


def test_html_page_title_in_page_header_kept_once(tmp_path: Path) -> None:
    page = tmp_path / "seance.html"
    page.write_text(
        "<html><body><header><a href='/'>Accueil</a><h1>Conseil municipal du 3 mars 2025</h1>"
        "</header><div class='d-none'>Menu mobile</div><p>Le conseil s'est réuni en séance "
        "publique sous la présidence du maire.</p><footer>Mentions légales</footer></body></html>",
        "utf-8",
    )
    text = _text(load_document(page, tmp_path))
    assert text.startswith("# Conseil municipal du 3 mars 2025 Le conseil s'est réuni")
    assert "Accueil" not in text and "Menu mobile" not in text and "Mentions" not in text


@pytest.mark.parametrize(
    "text",
    ["quelques-\nuns", "le tout-\nà-l'égout", "lui-\nmême", "va-t-\nil", "vingt-\net-un",
     "arc-en-\nciel", "Notre-\nDame", "au-\ndessus", "après-\nmidi", "compte-\nrendu"],
)
def test_compounds_at_line_end_stay_whole(text: str) -> None:
    assert dehyphenate(text) == text.replace("\n", "")
