"""The legal basis of a prose part: the code article a sentence restates, written after it by
the program (:func:`assistant.structure.with_legal_basis`), then the drafting service with the
fake chat model beside the real templates, evidence, verification and rendering."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from assistant.config import Settings
from assistant.drafting import DraftingService, DraftRequest
from assistant.prompts import load_templates
from assistant.structure import with_legal_basis
from tests.fakes import FakeChatModel, FakeRetriever, make_hit

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
CGCT = "Code général des collectivités territoriales — Chapitre Ier : Régime juridique des actes"
DEFER = (
    "Le représentant de l'État dans le département défère au tribunal administratif les actes "
    "qu'il estime contraires à la légalité dans les deux mois suivant leur transmission."
)
EXECUTORY = (
    "Les actes pris par les autorités communales sont exécutoires de plein droit dès leur "
    "publication et leur transmission au représentant de l'État."
)
EVIDENCE = [
    (EXECUTORY, "Article L2131-1", CGCT),
    (DEFER, "Article L2131-6", CGCT),
]


def test_the_sentence_restating_an_article_gets_its_reference() -> None:
    text = (
        "Une délibération peut être contestée. Le représentant de l'État défère au tribunal "
        "administratif une délibération illégale dans les deux mois suivant sa transmission."
    )
    assert with_legal_basis(text, EVIDENCE) == (
        "Une délibération peut être contestée. Le représentant de l'État défère au tribunal "
        "administratif une délibération illégale dans les deux mois suivant sa transmission "
        "(article L. 2131-6 du code général des collectivités territoriales)."
    )


def test_the_best_matching_article_wins_and_a_code_s_abbreviation_is_dropped() -> None:
    crpa = "Code des relations entre le public et l'administration (CRPA) — Livre II"
    rule = "Le silence gardé pendant deux mois par l'administration vaut décision d'acceptation."
    evidence = [*EVIDENCE, (rule, "Article L231-1", crpa)]
    out = with_legal_basis(
        "Le silence gardé deux mois par l'administration vaut acceptation.", evidence
    )
    assert out.endswith(
        "(article L. 231-1 du code des relations entre le public et l'administration)."
    )


def test_a_sentence_restating_another_source_s_line_gets_the_code_article_it_names() -> None:
    """L10 (session 31): a délibération's « Conformément à l'article L1413-1 du Code général
    des collectivités territoriales, la Commission consultative des services publics locaux
    comprend … » was in the note's prompt and the note restated the commission without its
    article. The article the line names goes after the sentence; a line naming none, or
    naming an unknown code, gives nothing."""
    delib = "Montpellier delib 2014-04-24 n2014-151 commission consultative"
    line = (
        "Conformément à l'article L1413-1 du Code général des collectivités territoriales, la "
        "Commission consultative des services publics locaux comprend des représentants "
        "d'associations locales."
    )
    text = (
        "La commission consultative des services publics locaux comprend des représentants "
        "des associations locales."
    )
    assert with_legal_basis(text, [(line, "", delib)]) == (
        text[:-1] + " (article L. 1413-1 du code général des collectivités territoriales)."
    )
    plain = line.replace(
        "Conformément à l'article L1413-1 du Code général des collectivités territoriales, la", "La"
    )
    assert with_legal_basis(text, [(plain, "", delib)]) == text
    unknown = line.replace(
        "Code général des collectivités territoriales", "code des bonnes pratiques"
    )
    assert with_legal_basis(text, [(unknown, "", delib)]) == text


def test_nothing_is_added_without_a_clear_match_or_when_an_article_is_named() -> None:
    named = "Selon l'article L. 2131-6, le préfet défère au tribunal administratif les actes."
    assert with_legal_basis(named, EVIDENCE) == named
    # Two shared terms only (« tribunal », « administratif »).
    loose = "Le tribunal administratif est à Montpellier."
    assert with_legal_basis(loose, EVIDENCE) == loose
    # The same statement from a fiche (no code article) or an act's own article: no reference.
    plain = "Le représentant de l'État défère au tribunal administratif les actes illégaux."
    assert with_legal_basis(plain, [(DEFER, "", "Fiche pratique")]) == plain
    assert with_legal_basis(plain, [(DEFER, "Article 2", "Délibération")]) == plain
    assert with_legal_basis(plain, []) == plain


def test_a_drafted_answer_names_the_article_and_an_act_keeps_its_visas(
    settings: Settings,
) -> None:
    code = f"## Article L2131-1\n\n{EXECUTORY}\n\n## Article L2131-6\n\n{DEFER}\n"
    hits = [replace(make_hit(1, code, source="lois/cgct_L2131.md"), title=CGCT)]
    said = "Le préfet défère au tribunal administratif les actes illégaux dans les deux mois."

    def draft(doc_type: str, reply: dict[str, object]) -> str:
        svc = DraftingService(
            settings,
            FakeChatModel(json.dumps(reply, ensure_ascii=False)),
            FakeRetriever(hits),
            load_templates(PROMPTS),
        )
        request = "Dans quel délai le préfet défère-t-il un acte au tribunal administratif ?"
        result = svc.draft(DraftRequest(request, doc_type))
        assert [c.n for c in result.citations] == [1]
        assert result.checks == []  # the program's reference is not an unsupported figure
        return result.answer

    answer = draft("question", {"paragraphes": [{"sources": [1], "texte": said}]})
    assert (
        "dans les deux mois (article L. 2131-6 du code général des collectivités "
        "territoriales) [1]." in answer
    )
    act = {
        "visas": [1],
        "considerants": [{"sources": [1], "texte": said}],
        "articles": [{"sources": [1], "texte": "La délibération est transmise au préfet."}],
    }
    answer = draft("deliberation", act)
    assert "(article L. 2131-6" not in answer  # an act states its legal basis in its visas
    assert "L. 2131-6" in answer.split("Considérant")[0]


def test_a_copied_sentence_is_quoted_and_its_reference_stays_outside_the_quotation(
    settings: Settings,
) -> None:
    """Seen in H07: the evidence's next line opened « Article L411-3 », so the copy check,
    run after the reference was written, took « (article » into the copied run and closed the
    quotation after it."""
    crpa = "Code des relations entre le public et l'administration (CRPA) — Livre IV"
    rule = (
        "Le délai du recours contentieux ne recommence à courir à l'égard de la décision "
        "initiale que lorsque le recours gracieux et le recours hiérarchique ont été rejetés."
    )
    code = (
        f"## Article L411-2\n\n{rule}\n\n## Article L411-3\n\n"
        "Article L411-3 : Le recours hiérarchique est adressé au supérieur de l'auteur.\n"
    )
    hits = [replace(make_hit(1, code, source="lois/crpa_L411.md"), title=crpa)]
    said = (
        "Le délai du recours, prorogé par ces recours, ne recommence à courir qu'après leur rejet."
    )
    copied = rule.removesuffix(".")
    own = "Cette règle protège l'habitant qui conteste une décision du maire avant d'aller au juge."
    for text in (said, f"Selon la règle, {copied[0].lower()}{copied[1:]}. {own}"):
        reply = {"paragraphes": [{"sources": [1], "texte": text}]}
        svc = DraftingService(
            settings,
            FakeChatModel(json.dumps(reply, ensure_ascii=False)),
            FakeRetriever(hits),
            load_templates(PROMPTS),
        )
        answer = svc.draft(
            DraftRequest("Un recours gracieux proroge-t-il le délai ?", "note")
        ).answer
        ref = "(article L. 411-2 du code des relations entre le public et l'administration)"
        assert ref in answer
        assert "(article »" not in answer and "« (article" not in answer
        if text != said:  # the copied words are quoted, the reference after the quotation
            assert f"rejetés » {ref}" in answer


def test_a_sentence_whose_figure_the_line_does_not_hold_gets_no_reference() -> None:
    """Seen in Q01: « Le quorum du conseil municipal est de trois membres en exercice » had
    been given L. 2121-7, whose line shares « conseil municipal », « membres » and « trois »
    (« trois jours francs »)."""
    convocation = (
        "La convocation est adressée aux membres du conseil municipal trois jours francs au "
        "moins avant celui de cette première réunion."
    )
    evidence = [(convocation, "Article L2121-7", CGCT)]
    wrong = "Le quorum du conseil municipal est de trois membres en exercice."
    assert with_legal_basis(wrong, evidence) == wrong
    right = (
        "La convocation est adressée aux membres du conseil trois jours francs avant la réunion."
    )
    assert "(article L. 2121-7" in with_legal_basis(right, evidence)


def test_terms_on_most_lines_of_the_evidence_do_not_make_a_match() -> None:
    """Seen in Q01: « Le quorum du conseil municipal est de trois membres en exercice » had
    been given L. 2121-18 (« sur la demande de trois membres ou du maire, le conseil municipal
    peut décider… de se réunir à huis clos »): « conseil municipal » is on every line."""
    chapter = "Code général des collectivités territoriales — Chapitre Ier : Le conseil municipal"
    lines = [
        ("Le conseil municipal se réunit au moins une fois par trimestre.", "Article L2121-7"),
        ("Le conseil municipal établit son règlement intérieur.", "Article L2121-8"),
        (
            "Sur la demande de trois membres ou du maire, le conseil municipal peut décider, "
            "sans débat, qu'il se réunit à huis clos.",
            "Article L2121-18",
        ),
        ("Le conseil municipal règle par ses délibérations les affaires.", "Article L2121-29"),
    ]
    evidence = [(text, article, chapter) for text, article in lines]
    wrong = "Le quorum du conseil municipal est de trois membres en exercice."
    assert with_legal_basis(wrong, evidence) == wrong
    right = "Le conseil municipal peut se réunir à huis clos à la demande de trois membres."
    assert "(article L. 2121-18" in with_legal_basis(right, evidence)


def test_a_sentence_restating_another_source_more_closely_gets_no_code_reference() -> None:
    """K13 (session 28): « les membres de la Commission d'Appel d'Offres sont élus au scrutin
    de liste à la représentation proportionnelle… », copied from a délibération applying the
    Code des marchés publics, was given « (article L. 2121-21 du code général des collectivités
    territoriales) », the council's own votes « au scrutin ». A line of another cited source
    that shares twice as many of its terms wins: no code reference. A fiche paraphrasing the
    code, a little closer to the sentence, does not."""
    vote = "Les membres des commissions sont élus au scrutin de liste."
    deliberation = (
        "Les membres de la Commission d'Appel d'Offres sont élus au scrutin de liste à la "
        "représentation proportionnelle au plus fort reste, sans panachage ni vote préférentiel."
    )
    sentence = (
        "Les membres de la commission d'appel d'offres sont élus au scrutin de liste à la "
        "représentation proportionnelle au plus fort reste."
    )
    code_only = [(vote, "Article L2121-21", CGCT)]
    assert "(article L. 2121-21" in with_legal_basis(sentence, code_only)
    both = [*code_only, (deliberation, "", "Délibération n° 2014-142")]
    assert with_legal_basis(sentence, both) == sentence
    # The code's own statement keeps its reference beside the délibération (a tie: the code).
    said = "Les membres des commissions sont élus au scrutin de liste."
    assert "(article L. 2121-21" in with_legal_basis(said, both)
    # N04: a fiche's paraphrase of L. 231-1 shares one term more than the article's line.
    crpa = "Code des relations entre le public et l'administration (CRPA) — Livre II"
    rule = "Le silence gardé pendant deux mois par l'administration vaut décision d'acceptation."
    fiche = "Le silence gardé pendant deux mois par l'administration vaut accord, sauf exceptions."
    sentence = "Le silence gardé deux mois par l'administration vaut accord, sauf exceptions."
    out = with_legal_basis(sentence, [(rule, "Article L231-1", crpa), (fiche, "", "Fiche")])
    assert "(article L. 231-1" in out
