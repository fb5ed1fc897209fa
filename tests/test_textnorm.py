"""French lexical normalisation: folding, stemming, references as single tokens, safe queries."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.textnorm import (
    STOP_WORDS,
    fold,
    index_text,
    lexical_terms,
    light_stem,
    light_terms,
    match_query,
    with_equivalents,
)


def test_fold_strips_case_accents_and_ligatures() -> None:
    assert fold("Œuvre d'ÉTÉ à Noël, cæcum") == "oeuvre d'ete a noel, caecum"


@pytest.mark.parametrize(
    "text", ["L2121-17", "L. 2121-17", "l.2121-17", "article L2121-17", "l'article L 2121‑17"]
)
def test_legal_reference_variants_share_one_token(text: str) -> None:
    assert lexical_terms(text) == ["l2121x17"]


@pytest.mark.parametrize("text", ["n° 2014/131", "n°2014-131", "2014-131", "N° 2014 / 131"])
def test_deliberation_number_variants_share_one_token(text: str) -> None:
    assert "2014x131" in lexical_terms(text)


def test_regulatory_and_multi_part_references() -> None:
    assert lexical_terms("R. 2121-10 et L. 2223-19-1") == ["r2121x10", "l2223x19x1"]


def test_french_stemming_ignores_accents_and_plural() -> None:
    accented = lexical_terms("Les délibérations des conseillers municipaux")
    plain = lexical_terms("deliberation conseillers municipal")
    assert accented == plain
    assert not set(accented) & STOP_WORDS


def test_sentence_matching_keeps_derivations_apart_and_joins_inflections() -> None:
    """Snowball joins « règles » and « règlement »; matching a request against a passage's
    sentences keeps them apart, and still joins the forms of one word."""
    assert lexical_terms("règles") == lexical_terms("règlement")  # what the index does
    assert light_terms("règles") != light_terms("règlement")
    assert light_terms("réunir") == light_terms("réunit")
    assert light_terms("Règles communales") == light_terms("règle communale")
    assert light_terms("les conseils municipaux") == light_terms("le conseil municipal")
    # References stay single tokens, as in the index.
    assert light_terms("article L. 2121-17") == lexical_terms("article L. 2121-17")
    assert light_stem("journaux") == "journal" and light_stem("durees") == light_stem("duree")


def test_lowercase_a_is_not_an_article_prefix() -> None:
    # "à 2014" must not become an article reference; an upper-case "A 1234" does.
    assert lexical_terms("à 1234") == ["1234"]
    assert lexical_terms("A 1234") == ["a1234"]


def test_numbers_are_kept() -> None:
    assert lexical_terms("3 adjoints et 45 conseillers") == ["3", "adjoint", "45", "conseiller"]


def test_index_text_adds_parts_of_numbered_tokens() -> None:
    assert index_text("n° 2014-131").split() == ["2014x131", "2014", "131"]


@pytest.mark.parametrize(
    "query",
    ['"', "AND OR NOT", "a:b*", "(foo", "NEAR(x y)", "^début", "x' OR 1=1 --", "***"],
)
def test_match_query_never_breaks_fts5_syntax(query: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO t(body) VALUES (?)", (index_text("and or not a b foo near x debut"),))
    expression = match_query(query)
    if expression:
        db.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


def test_match_query_finds_reference_written_differently() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO t(body) VALUES (?)", (index_text("Vu l'article L. 2121-17 du CGCT"),))
    db.execute("INSERT INTO t(body) VALUES (?)", (index_text("Vu l'article L. 2121-18"),))
    rows = db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match_query("L2121-17"),)).fetchall()
    assert rows == [(1,)]


def test_match_query_is_empty_without_terms() -> None:
    assert match_query("le la les de ?!") == ""


@pytest.mark.parametrize(
    "text",
    ["24 avril 2014", "24/04/2014", "2014-04-24", "24.04.2014", "24-4-2014", "24 AVRIL 2014"],
)
def test_date_spellings_share_one_token(text: str) -> None:
    assert "2014x04x24" in lexical_terms(text)


def test_dates_keep_month_day_one_and_parts() -> None:
    assert lexical_terms("le 1er février 2015") == ["2015x02x01", "fevri"]
    assert index_text("séance du 24/04/2014").split()[-4:] == ["2014x04x24", "2014", "04", "24"]
    # not dates: a deliberation number, an impossible month, an article with three parts
    assert "2014x131" in lexical_terms("n° 2014-131")
    assert "2014x13x40" in lexical_terms("2014-13-40")
    assert lexical_terms("L. 2121-10-1") == ["l2121x10x1"]


def test_typographic_apostrophes_and_dashes_separate_words() -> None:
    assert lexical_terms("l’article d’urbanisme") == lexical_terms("l'article d'urbanisme")
    assert lexical_terms("maire—adjoint") == lexical_terms("maire adjoint")


def test_code_names_also_give_their_acronym() -> None:
    assert "cgct" in lexical_terms("Code général des collectivités territoriales")
    assert "crpa" in lexical_terms("code des relations entre le public et l’administration")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Délai du préfet pour déférer une délibération ?",
            "Délai du préfet pour déférer une délibération ? (représentant de l'État)",
        ),
        ("Note au DGS", "Note au DGS (directeur général des services)"),
        (
            "La SEM de la ZAC",
            "La SEM de la ZAC (zone d'aménagement concerté ; société d'économie mixte)",
        ),
        # already said, or not the acronym (« sem » in a word, lower case)
        ("Le préfet, représentant de l'Etat", "Le préfet, représentant de l'Etat"),
        ("Une semaine au plus", "Une semaine au plus"),
        ("Quel est le quorum ?", "Quel est le quorum ?"),
    ],
)
def test_a_request_is_searched_with_the_codes_names_for_its_terms(text: str, expected: str) -> None:
    """Seen in a held-out question: the CGCT writes « le représentant de l'Etat dans le
    département », never « préfet », and L. 2131-6 ranked second."""
    assert with_equivalents(text) == expected
