"""Chunking: structure (articles, headings, decision blocks), sizes, pages, metadata, quotes."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import pytest

from assistant.chunking import chunk_document, fold_whitespace, normalise_text
from assistant.loaders import load_document
from assistant.schema import LoadedDocument, Page

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "corpus" / "exemple"
QUORUM = (
    "Le conseil municipal ne délibère valablement que lorsque la majorité de ses membres en "
    "exercice est présente."
)


def _doc(pages: list[Page], title: str = "Document", date: str | None = None) -> LoadedDocument:
    return LoadedDocument(
        source="dossier/doc.pdf", title=title, pages=pages, content_hash="ab" * 32,
        doc_type="deliberation", date=date,
    )


def _flow(text: str, **kwargs) -> LoadedDocument:
    return _doc([Page(None, text)], **kwargs)


def _containing(chunks, needle: str):
    folded = fold_whitespace(needle)
    return [c for c in chunks if folded in fold_whitespace(c.text)]


# --- normalisation --------------------------------------------------------------------------


def test_normalise_collapses_spaces_and_repairs_hyphenation() -> None:
    raw = "Le  contrôle\u00a0adminis-\ntratif   des actes \n\n\n\n  est exercé.  \nJean-\nLuc"
    # a typographic break is joined; a compound (here a first name) keeps its hyphen, and the
    # line break inside it goes
    assert normalise_text(raw) == "Le contrôle administratif des actes\n\nest exercé.\nJean-Luc"


# --- structure ------------------------------------------------------------------------------


def test_heading_path_follows_code_structure() -> None:
    text = "\n".join([
        "# Code général des collectivités territoriales",
        "",
        "## Chapitre Ier : Le conseil municipal",
        "### Section 3 : Fonctionnement",
        "**Article L2121-16**",
        "",
        "Le président a seul la police de l'assemblée.",
        "",
        "**Article L2121-17**",
        "",
        QUORUM,
        "",
        "### Section 4 : Attributions",
        "",
        "Article R. 2121-3",
        "",
        "Le conseil règle par ses délibérations les affaires de la commune.",
    ])
    chunks = chunk_document(_flow(text, title="CGCT"), "loi", max_chars=400, overlap=50)
    [quorum] = _containing(chunks, QUORUM)
    assert quorum.metadata["heading"] == (
        "Chapitre Ier : Le conseil municipal > Section 3 : Fonctionnement > Article L2121-17"
    )
    assert "Le président a seul la police" not in quorum.text  # one article per chunk
    [r_article] = _containing(chunks, "Le conseil règle par ses délibérations")
    assert r_article.metadata["heading"].endswith("Section 4 : Attributions > Article R. 2121-3")
    # the "# title" line is not in the path (it is the document title), markup is stripped
    assert all("Code général" not in c.metadata["heading"] for c in chunks)
    assert all("**" not in c.text and not c.text.startswith("#") for c in chunks)


def test_decision_blocks_visas_considerants_and_articles() -> None:
    text = "\n".join([
        "Le conseil municipal,",
        "Vu le Code général des collectivités territoriales ;",
        "Vu l'avis de la commission des finances ;",
        "Considérant que les tarifs doivent être révisés ;",
        "Considérant la hausse des coûts ;",
        "Après en avoir délibéré, le conseil municipal DÉCIDE :",
        "Article 1er : Le tarif de la salle des fêtes est fixé à 320 €.",
        "Art. 2 - Le tarif du repas est fixé à 3,40 €.",
    ])
    chunks = chunk_document(_flow(text), "c", max_chars=200, overlap=0)
    heading_of = {c.text.split("\n")[0]: c.metadata["heading"] for c in chunks}
    assert heading_of["Vu le Code général des collectivités territoriales ;"] == "Visas"
    assert heading_of["Considérant que les tarifs doivent être révisés ;"] == "Considérants"
    assert _containing(chunks, "fixé à 320 €")[0].metadata["heading"] == "DÉCIDE > Article 1er"
    assert _containing(chunks, "fixé à 3,40 €")[0].metadata["heading"] == "DÉCIDE > Article 2"
    # both "Vu" lines stay in one block
    assert len(_containing(chunks, "Vu l'avis de la commission")) == 1
    assert "Vu le Code" in _containing(chunks, "Vu l'avis de la commission")[0].text


def test_numbered_titles_nest_and_replace_siblings() -> None:
    text = "\n".join([
        "Chapitre II – Commissions",
        "I. Commissions permanentes",
        "Les commissions sont au nombre de quatre.",
        "1. Composition",
        "Chaque commission comprend sept membres.",
        "2. Fonctionnement",
        "Les commissions émettent des avis.",
        "II. Commissions temporaires",
        "Le conseil peut créer des commissions temporaires.",
    ])
    chunks = chunk_document(_flow(text), "c", max_chars=100, overlap=0)
    assert _containing(chunks, "sept membres")[0].metadata["heading"] == (
        "Chapitre II – Commissions > I. Commissions permanentes > 1. Composition"
    )
    assert _containing(chunks, "émettent des avis")[0].metadata["heading"] == (
        "Chapitre II – Commissions > I. Commissions permanentes > 2. Fonctionnement"
    )
    assert _containing(chunks, "commissions temporaires.")[0].metadata["heading"] == (
        "Chapitre II – Commissions > II. Commissions temporaires"
    )


def test_pdf_line_wrap_starting_with_article_is_not_a_heading() -> None:
    text = (
        "Le maire transmet la délibération conformément à l'\n"
        "Article L. 2131-1 du code général des collectivités territoriales\n"
        "au représentant de l'État dans le département."
    )
    chunks = chunk_document(_doc([Page(1, text)]), "c")
    assert [c.metadata["heading"] for c in chunks] == [""]


# --- sizes and words ------------------------------------------------------------------------


def test_sizes_bounded_and_no_word_split() -> None:
    rng = random.Random(7)
    words = [
        "délibération", "conseil", "municipal", "administratif", "commune", "le", "la", "des",
        "préfecture", "budget", "investissement", "fonctionnement", "subvention", "à", "et",
    ]
    sentences = []
    for _ in range(120):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(4, 30)))
        sentences.append(sentence.capitalize() + ".")
    paragraphs = [" ".join(sentences[i:i + 7]) for i in range(0, len(sentences), 7)]
    doc = _flow("\n\n".join(paragraphs))
    chunks = chunk_document(doc, "c", max_chars=300, overlap=60)
    assert len(chunks) > 10
    vocabulary = {w.lower() for w in words}
    for chunk in chunks:
        assert len(chunk.text) <= 300
        assert len(chunk.text) >= 20
        for token in re.findall(r"[\wéà]+", chunk.text):
            assert token.lower() in vocabulary, token
    # everything is kept: each sentence lies whole in some chunk
    for sentence in sentences:
        assert _containing(chunks, sentence), sentence


def test_default_size_is_about_1200() -> None:
    text = "\n\n".join(
        f"Paragraphe {i} : le conseil municipal règle par ses délibérations les affaires de la "
        "commune et donne son avis chaque fois que cet avis est requis par les lois."
        for i in range(60)
    )
    chunks = chunk_document(_flow(text), "c")
    sizes = [c.metadata["char_count"] for c in chunks]
    assert max(sizes) <= 1200
    assert sum(sizes) / len(sizes) > 900


# --- pages ----------------------------------------------------------------------------------


def test_chunks_stay_on_their_page_and_bridge_page_breaks() -> None:
    filler = "Le conseil examine les affaires inscrites à l'ordre du jour. " * 30
    pages = [
        Page(1, filler + "\nLa phrase qui commence sur la première page se poursuit"),
        Page(2, "sur la deuxième page sans interruption.\n" + filler + "\nCitation page deux."),
        Page(3, "Une citation propre à la page trois se trouve ici.\n" + filler),
    ]
    chunks = chunk_document(_doc(pages), "c", max_chars=500, overlap=150)
    pages_of = {c.metadata["page"] for c in chunks}
    assert pages_of == {1, 2, 3}
    assert [c.metadata["page"] for c in _containing(chunks, "page trois se trouve ici")] == [3]
    assert [c.metadata["page"] for c in _containing(chunks, "Citation page deux.")] == [2]
    bridged = _containing(
        chunks, "La phrase qui commence sur la première page se poursuit sur la deuxième page"
    )
    assert [c.metadata["page"] for c in bridged] == [2]
    # each chunk's own text (after the bridged start) is on its page
    for chunk in chunks:
        last_sentence = chunk.text.strip().split("\n")[-1][-40:]
        assert last_sentence in pages[chunk.metadata["page"] - 1].text
    assert all(len(c.text) <= 500 + 150 for c in chunks)


def test_title_at_the_foot_of_a_page_stays_on_that_page() -> None:
    pages = [
        Page(1, "Texte de la première page.\n\nArticle 4 – Ordre du jour"),
        Page(2, "Le maire fixe l'ordre du jour."),
    ]
    chunks = chunk_document(_doc(pages), "c")
    # on page 1; also repeated at the start of page 2 as the unfinished end of page 1
    assert [c.metadata["page"] for c in _containing(chunks, "Article 4 – Ordre du jour")] == [1, 2]
    [body] = _containing(chunks, "Le maire fixe l'ordre du jour.")
    assert body.metadata["page"] == 2
    assert body.metadata["heading"] == "Article 4 – Ordre du jour"


# --- metadata and ids -----------------------------------------------------------------------


def test_metadata_types_ids_and_optional_keys() -> None:
    paged = chunk_document(
        _doc([Page(1, "Un texte."), Page(2, "Un autre.")], date="2025-03-13"), "exemple"
    )
    flow = chunk_document(_flow("Un texte sans page."), "exemple")
    for index, chunk in enumerate(paged):
        assert chunk.id == f"exemple:dossier/doc.pdf:{'ab' * 6}:{index}"
        assert chunk.metadata["chunk_index"] == index
        assert chunk.metadata["page"] == index + 1
        assert chunk.metadata["date"] == "2025-03-13"
    [single] = flow
    meta = single.metadata
    assert "page" not in meta and "date" not in meta
    assert meta["heading"] == "" and meta["doc_hash"] == "ab" * 32
    assert meta["char_count"] == len(single.text)
    expected = {"collection", "source", "title", "heading", "doc_hash", "chunk_index",
                "doc_type", "char_count"}
    assert set(meta) == expected
    assert all(isinstance(v, (str, int, float, bool)) for c in paged + flow
               for v in c.metadata.values())
    unknown = LoadedDocument("a.md", "A", [Page(None, "Texte.")], "cd" * 32)
    assert chunk_document(unknown, "x")[0].metadata["doc_type"] == ""


def test_empty_pages_give_no_chunks() -> None:
    assert chunk_document(_doc([Page(1, "  \n "), Page(2, "")]), "c") == []


# --- real texts -----------------------------------------------------------------------------


def test_cgct_article_boundaries(corpus_dir: Path) -> None:
    doc = load_document(corpus_dir / "textes_de_loi/cgct_L2121_conseil_municipal.md", corpus_dir)
    chunks = chunk_document(doc, "loi")
    [quorum] = _containing(chunks, QUORUM)
    assert "L2121-17" in quorum.metadata["heading"]
    assert "Section 4 : Fonctionnement" in quorum.metadata["heading"]
    for chunk in chunks:
        articles = re.findall(r"^Article L[\d-]+$", chunk.text, flags=re.MULTILINE)
        assert len(articles) <= 1, chunk.text[:200]
        if articles:
            assert chunk.metadata["heading"].endswith(articles[0])
        assert len(chunk.text) <= 1200
        assert "<td" not in chunk.text


def _questions(corpus_dir: Path) -> list[dict]:
    path = corpus_dir.parent / "eval" / "dev_questions.jsonl"
    if not path.is_file():
        pytest.skip("dev_questions.jsonl absent")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_dev_quotes_in_markdown_files_are_whole_in_a_chunk(corpus_dir: Path) -> None:
    questions = [q for q in _questions(corpus_dir) if q["file"].endswith(".md")]
    assert questions
    for question in questions:
        doc = load_document(corpus_dir / question["file"], corpus_dir)
        assert _containing(chunk_document(doc, "c"), question["quote"]), question["id"]


@pytest.mark.slow
def test_dev_quotes_in_pdf_files_are_whole_in_a_chunk_of_their_page(corpus_dir: Path) -> None:
    questions = [q for q in _questions(corpus_dir) if q["file"].endswith(".pdf")]
    assert questions
    for question in questions:
        doc = load_document(corpus_dir / question["file"], corpus_dir)
        quote = fold_whitespace(question["quote"])
        pages = {p.number for p in doc.pages if quote in fold_whitespace(normalise_text(p.text))}
        hits = _containing(chunk_document(doc, "c"), question["quote"])
        assert hits, question["id"]
        assert {c.metadata["page"] for c in hits} <= pages, question["id"]


def test_demo_corpus_facts_found_in_chunks() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from make_demo_corpus import FACTS
    finally:
        sys.path.pop(0)
    for name, fact in FACTS.items():
        doc = load_document(DEMO / name, DEMO)
        hits = _containing(chunk_document(doc, "exemple"), fact)
        assert hits, name
        if doc.pages[0].number is not None:
            folded = fold_whitespace(fact)
            pages = {p.number for p in doc.pages if folded in fold_whitespace(p.text)}
            assert {c.metadata["page"] for c in hits} <= pages, name


def test_demo_reglement_headings() -> None:
    doc = load_document(DEMO / "reglement_interieur_conseil_municipal.pdf", DEMO)
    chunks = chunk_document(doc, "exemple")
    [chunk] = _containing(chunks, "soit quatorze conseillers")
    assert chunk.metadata["heading"] == "Chapitre III – Tenue des séances > Article 11 – Quorum"
