"""What a town clerk checks before signing a draft (issue 10, second pass): the salutation and the
closing formula follow the recipient, figures are matched whatever their spelling and re-attached
to the shown source that holds them, an act does not repeat itself, visas name their texts or are
left out, and the evidence puts the figures a request asks for in front of the model.

Pure functions beside the real templates (prompts/) and the service with the fakes of
tests/fakes.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.drafting import DraftingService, DraftRequest
from assistant.evidence import (
    SOURCE_FLOOR_SHARE,
    Line,
    asked_kinds,
    clean_lines,
    evidence_query,
    population_range,
    ranked_lines,
    readable,
    render_lines,
    share_evidence,
)
from assistant.prompts import Templates, load_templates, render_footer, render_header, salutation_of
from assistant.structure import Part, Structure, drop_repeats, visa_line
from assistant.verify import check_paragraph, figures, missing_sources, quote_copy
from tests.fakes import FakeChatModel, FakeRetriever, make_hit

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(ROOT / "prompts")


def best_readable(lines: list[Line], query: str) -> list[int]:
    """The best line for ``query`` with the neighbours that make it readable: what
    :func:`share_evidence` shows first of a passage."""
    _, i = ranked_lines(lines, query)[0]
    return sorted(readable(lines, i))


# --- salutation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "salutation"),
    [
        (
            "Monsieur le Président de l'association des commerçants du centre",
            "Monsieur le Président,",
        ),
        ("Madame la Présidente du comité de quartier Est", "Madame la Présidente,"),
        ("M. le Directeur général des services", "Monsieur le Directeur général,"),
        ("Madame Lefèvre", "Madame,"),  # "Le…" of a name is not an article
        ("Mme Jeanne Martin, 12 rue des Lilas", "Madame,"),
        ("Madame et Monsieur Durand", "Madame, Monsieur,"),
        ("M. et Mme Durand", "Madame, Monsieur,"),
        ("Monsieur l'Inspecteur d'académie", "Monsieur l'Inspecteur,"),
        ("Association Les Amis du quartier", ""),
        ("", ""),
    ],
)
def test_the_salutation_follows_the_recipient(recipient: str, salutation: str) -> None:
    assert salutation_of(recipient) == salutation


def test_a_letter_opens_and_closes_on_the_recipients_title(templates: Templates) -> None:
    courrier = templates.get("courrier")
    fields = {"destinataire": "Monsieur le Président du club de football", "objet": "Buvette"}
    header, footer = render_header(courrier, fields), render_footer(courrier, fields)
    assert "\n\nMonsieur le Président,\n\n" in header and "Madame, Monsieur" not in header
    assert "Je vous prie d'agréer, Monsieur le Président, l'expression" in footer
    # Unknown recipient: the neutral formula; the agent's own salutation always wins.
    assert "\n\nMadame, Monsieur,\n\n" in render_header(courrier, {"destinataire": "Mairie"})
    mine = {"destinataire": "Monsieur le Président", "appel": "Cher Président,"}
    assert "agréer, Cher Président, l'expression" in render_footer(courrier, mine)
    usager = templates.get("reponse_usager")
    fields = {"usager": "Madame Lefèvre", "objet": "Attestation"}
    assert "\n\nMadame,\n\n" in render_header(usager, fields)
    assert "Nous vous prions d'agréer, Madame, l'expression" in render_footer(usager, fields)


# --- filler -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (  # K01: the opening sentence announced, the second said
            "Pour répondre à votre demande, il est important de comprendre les conditions "
            "d'accès aux concessions. Toute personne peut acquérir une concession.",
            "Toute personne peut acquérir une concession.",
        ),
        (  # H09: a lead-in before the answer
            "Pour répondre à votre demande, je peux vous donner les informations suivantes : "
            "vous pouvez vous inscrire jusqu'au 6e vendredi précédant le scrutin.",
            "Vous pouvez vous inscrire jusqu'au 6e vendredi précédant le scrutin.",
        ),
        (  # R01: « Il est important de noter que » before a quotation
            "Utilisez des timbres fiscaux. Il est important de noter que « le niveau de "
            "ressources exigé est de 32,50 € par jour ».",
            "Utilisez des timbres fiscaux. « Le niveau de ressources exigé est de 32,50 € par "
            "jour ».",
        ),
        (  # advice is content, not filler
            "Il est utile de consulter le règlement intérieur du cimetière.",
            "Il est utile de consulter le règlement intérieur du cimetière.",
        ),
        (  # nothing else to keep: the paragraph stays as written
            "Voici les informations que nous avons recueillies.",
            "Voici les informations que nous avons recueillies.",
        ),
    ],
)
def test_a_letter_s_filler_goes_and_what_it_carried_stays(written: str, shown: str) -> None:
    """The twelfth pass's letters opened « Pour répondre à votre demande, il est important de
    comprendre… » (K01, R01): words a clerk deletes before signing."""
    from assistant.structure import drop_filler

    assert drop_filler(written) == shown


def test_a_drafted_letter_is_rid_of_its_filler(settings: Settings, templates: Templates) -> None:
    """Through the service: the courrier the agent sees has no lead-in, the statement stays."""
    hit = make_hit(1, "Toute personne peut acquérir une concession dans le cimetière.")
    filler = "Pour répondre à votre demande, il est important de comprendre les conditions."
    text = f"{filler} Toute personne peut acquérir une concession dans le cimetière."
    reply = json.dumps({"paragraphes": [{"sources": [1], "texte": text}]}, ensure_ascii=False)
    svc = DraftingService(settings, FakeChatModel(reply), FakeRetriever([hit]), templates, None)
    request = DraftRequest("Concessions", "courrier", fields={"objet": "Cimetière"})
    answer = svc.draft(request).answer
    assert "important de comprendre" not in answer and "Pour répondre" not in answer
    assert "Toute personne peut acquérir une concession dans le cimetière [1]." in answer


def test_a_paragraph_of_only_filler_goes_when_another_says_something(
    settings: Settings, templates: Templates
) -> None:
    """R01 (session 28) opened its reply with a paragraph that only announced (« il est
    important de comprendre comment l'attestation d'accueil fonctionne… Voici les
    informations… »), above the paragraph that answered: it goes. Alone, it stays, so that the
    agent sees what the model wrote rather than an empty letter."""
    hit = make_hit(1, "Toute personne peut acquérir une concession dans le cimetière.")
    filler = (
        "Pour répondre à votre question, Madame Lefèvre, il est important de comprendre "
        "comment la concession fonctionne. Voici les informations que nous avons recueillies."
    )
    answer_text = "Toute personne peut acquérir une concession dans le cimetière."
    request = DraftRequest("Concessions", "courrier", fields={"objet": "Cimetière"})

    def drafted(*texts: str) -> str:
        reply = json.dumps(
            {"paragraphes": [{"sources": [1], "texte": t} for t in texts]}, ensure_ascii=False
        )
        model = FakeChatModel(reply)
        return (
            DraftingService(settings, model, FakeRetriever([hit]), templates, None)
            .draft(request)
            .answer
        )

    answer = drafted(filler, answer_text)
    assert "Voici les informations" not in answer and "important de comprendre" not in answer
    assert f"{answer_text[:-1]} [1]." in answer
    assert "Voici les informations" in drafted(filler)


# --- figures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "source"),
    [
        ("30 %", "sans excéder 30\u00a0% de l'effectif"),
        ("30 %", "dans la limite de 30% de l'effectif"),
        ("30 %", "trente pour cent de l'effectif"),
        ("23 000 €", "au-delà de 23.000 euros"),
        ("23000 euros", "au-delà de 23\u202f000 €"),
        ("18 mois", "valable dix-huit mois"),
        ("14 membres", "la majorité de ses membres en exercice, soit quatorze conseillers"),
        ("quatorze conseillers municipaux", "le conseil compte 14 élus"),
    ],
)
def test_a_figure_matches_its_source_whatever_the_spelling(written: str, source: str) -> None:
    assert check_paragraph(f"Le seuil est de {written}.", [source], [source], []) == []


def test_a_figure_counting_something_else_is_not_supported() -> None:
    source = ["Le conseil compte 14 conseillers et 4 adjoints."]
    assert check_paragraph("Il compte 14 membres.", source, source, []) == []
    assert check_paragraph("Il compte 14 adjoints.", source, source, []) != []
    assert check_paragraph("Un délai de 14 jours.", source, source, []) != []


def test_decimals_and_percent_words_are_not_confused() -> None:
    assert {k for _, k in figures("un taux de 2.30 % ou 0,18 €")} == {"n:2.3@%", "n:0.18@euro"}
    assert {k for _, k in figures("trente pour cent")} == {"n:30@%"}  # not 30 and 100


def test_a_figure_from_another_shown_source_cites_that_source() -> None:
    shown = {1: "Le conseil fixe le nombre des adjoints.", 2: "Au plus 30 % de l'effectif.", 3: "x"}
    assert missing_sources("Au plus 30 % de l'effectif.", [1], shown, []) == [2]
    assert missing_sources("Au plus 30 % de l'effectif.", [2], shown, []) == []
    assert missing_sources("Au plus 45 % de l'effectif.", [1], shown, []) == []  # no source


# --- acts -----------------------------------------------------------------------------------


def act_json(considerant: str, article: str) -> str:
    """The model's part of an act as the fake chat model returns it: no visa, one considérant
    and one article, both citing source 1."""
    return json.dumps(
        {
            "visas": [],
            "considerants": [{"sources": [1], "texte": considerant}],
            "articles": [{"sources": [1], "texte": article}],
        },
        ensure_ascii=False,
    )


def test_an_act_does_not_repeat_itself() -> None:
    same = "le conseil municipal détermine le nombre des adjoints sans excéder 30 % de l'effectif"
    act = Structure(
        "acte",
        considerants=[Part(same, [3]), Part(same.replace("adjoints", "Adjoints"), [4])],
        articles=[
            Part(
                "Le conseil municipal détermine le nombre des adjoints dans la limite "
                "de 30 % de l'effectif.",
                [1],
            )
        ],
    )
    out = drop_repeats(act)
    assert len(out.considerants) == 1 and out.considerants[0].sources == [3, 4, 1]
    assert [a.text for a in out.articles] == ["[À COMPLÉTER : décision]"]
    kept = Structure(
        "acte",
        considerants=[Part(same, [1])],
        articles=[Part("Le nombre des adjoints au maire est fixé à [À COMPLÉTER : nombre].", [])],
    )
    assert drop_repeats(kept).articles == kept.articles
    prose = Structure(
        "prose", paragraphs=[Part("Une AOT est requise.", [1]), Part("Une AOT est requise.", [2])]
    )
    assert [p.sources for p in drop_repeats(prose).paragraphs] == [[1, 2]]


def test_a_decision_names_what_its_considerant_names_and_is_kept() -> None:
    """H05, under the grammar's openings, decided « Le Maire s'oppose à la déclaration
    préalable… » and the article was dropped as a repeat of the considérant stating the
    request, leaving « [À COMPLÉTER : décision] ». An article opening with a decision is checked
    against the other articles only; one repeating another decision still goes."""
    works = "pour le remplacement de ses volets bois par des volets roulants PVC non conformes"
    considerant = f"le Maire a reçu une déclaration préalable de travaux {works}"
    decision = f"Le Maire refuse la déclaration préalable de travaux {works}"
    act = Structure(
        "acte",
        considerants=[Part(considerant, [1])],
        articles=[Part(decision, [1]), Part(decision + ".", [2])],
    )
    openings = ("Le Maire refuse ", "Le Maire autorise ")
    out = drop_repeats(act, openings)
    assert [(a.text, a.sources) for a in out.articles] == [(decision, [1, 2])]
    assert [a.text for a in drop_repeats(act).articles] == ["[À COMPLÉTER : décision]"]


def test_a_scrap_of_a_source_is_not_a_considerant() -> None:
    """« Considérant que le Conseil Adopte » (the closing words of another deliberation, seen
    in a draft) is left out; a motive of a sentence stays."""
    act = Structure(
        "acte",
        considerants=[
            Part("le Conseil Adopte", [4]),
            Part("le conseil municipal établit son règlement intérieur dans les six mois", [1]),
        ],
        articles=[Part("Le règlement intérieur annexé est adopté.", [1])],
    )
    out = drop_repeats(act)
    assert [p.text for p in out.considerants] == [act.considerants[1].text]
    assert out.articles == act.articles


def test_the_evidence_label_of_an_article_becomes_a_clause() -> None:
    """« Article 1er : Article L2121-8 : Dans les communes… » (the evidence's label copied by
    the model, seen in a draft) reads « Aux termes de l'article L. 2121-8, dans les
    communes… »; the act's own numbering is untouched."""
    from assistant.structure import render, structure_of

    data = {
        "visas": [1],
        "considerants": [
            {
                "sources": [1],
                "texte": "Article L2121-8 : Dans les communes de "
                "3 500 habitants et plus, le règlement intérieur est établi dans les "
                "six mois.",
            }
        ],
        "articles": [{"sources": [1], "texte": "Article 2 : Le règlement intérieur est adopté."}],
    }
    text = render(structure_of(data, "acte", [1]))
    assert "Considérant qu'aux termes de l'article L. 2121-8, dans les communes" in text
    assert "Article 1er : Le règlement intérieur est adopté [1]." in text
    assert "Article L2121-8 :" not in text


def test_a_visa_names_its_text_or_is_left_out(settings: Settings, templates: Templates) -> None:
    assert visa_line("Montpellier delib 2014-04-05 n2014-131 nombre adjoints", "x", 1) == ""
    cgct = make_hit(1, "**Article L2122-2**\n\nAu plus 30 % de l'effectif légal.", source="cgct.md")
    cgct.title = "Code général des collectivités territoriales — Le maire et les adjoints"
    delib = make_hit(2, "Le conseil fixe à 20 le nombre des adjoints.", source="delib_2014.pdf")
    delib.title = "Montpellier delib 2014-04-05 n2014-131 nombre adjoints au maire"
    reply = json.dumps(
        {
            "visas": [2],
            "considerants": [
                {"sources": [2], "texte": "le nombre ne peut excéder 30 % de l'effectif légal"}
            ],
            "articles": [{"sources": [], "texte": "Le nombre des adjoints est fixé à 20."}],
        },
        ensure_ascii=False,
    )
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever([cgct, delib]), templates, None
    )
    draft = svc.draft(DraftRequest("Adjoints", "deliberation", fields={"objet": "Adjoints"}))
    body = draft.answer
    assert "Vu [À COMPLÉTER : texte visé] [" not in body
    # The 30 % came from source 1: the considérant cites it, and source 1 gives the visa.
    assert "Vu le code général des collectivités territoriales" in body
    assert "30 % de l'effectif légal [2][1] ;" in body
    assert not [c for c in draft.checks if "30" in c["detail"]]


@pytest.mark.parametrize(
    ("sentence", "visa"),
    [
        (  # L04 (session 29)
            "il convient de fixer les modalités de dépôt des listes, conformément aux "
            "dispositions de l’article D 1411-5 du code général des collectivités territoriales :",
            "Vu le code général des collectivités territoriales, notamment son article "
            "D. 1411-5 [1] ;",
        ),
        (
            "En application des articles L 123-6 et R 123-7 du code de l’action sociale et des "
            "familles, la Ville désigne ses représentants.",
            "Vu le code de l'action sociale et des familles, notamment ses articles L. 123-6 et "
            "R. 123-7 [1] ;",
        ),
        (
            "Conformément à l'article L1413-1 du CGCT, une commission est créée.",
            "Vu le code général des collectivités territoriales, notamment son article "
            "L. 1413-1 [1] ;",
        ),
        ("l'article L. 332-11-2 du même code précise les conditions", ""),
        # A code's name misspelt (« collectivités locales »): no visa rather than a wrong one.
        ("les articles L 2123-20 à L2123-24 du Code Général des Collectivités Locales", ""),
        ("Le conseil fixe à 20 le nombre des adjoints.", ""),
    ],
)
def test_a_code_article_named_in_a_sentence_gives_the_visa(sentence: str, visa: str) -> None:
    from assistant.structure import inline_visa

    assert inline_visa(sentence, 1) == visa


@pytest.mark.parametrize(
    ("sentence", "visas"),
    [
        (
            "Compte tenu des besoins de service et en application de l’article 3-3 de la loi du "
            "26 janvier 1984 modifiée, ce poste pourra être ouvert au recrutement d’un agent "
            "non titulaire.",
            ["Vu la loi du 26 janvier 1984 modifiée, notamment son article 3-3 [1] ;"],
        ),
        (
            "Le décret n°2007-23 du 5 janvier 2007 étend aux agents des collectivités les "
            "dispositions du décret n° 2006-781 du 3 juillet 2006.",
            [
                "Vu le décret n° 2007-23 du 5 janvier 2007 [1] ;",
                "Vu le décret n° 2006-781 du 3 juillet 2006 [1] ;",
            ],
        ),
        (
            "Vu la Loi n° 2002-276 du 27 février 2002 relative à la démocratie de proximité ; "
            "vu la loi n° 2002-276 du 27 février 2002, article 34.",
            ["Vu la loi n° 2002-276 du 27 février 2002 [1] ;"],
        ),
        (
            "les articles 3 et 4 de la loi du 5 mars 2007 relative à la prévention",
            ["Vu la loi du 5 mars 2007, notamment ses articles 3 et 4 [1] ;"],
        ),
        (
            "la loi organique n° 2001-692 du 1er août 2001 relative aux lois de finances",
            ["Vu la loi organique n° 2001-692 du 1er août 2001 [1] ;"],
        ),
        # A law without its date names nothing; a date alone is no text.
        ("La loi prévoit que le conseil délibère.", []),
        ("Le conseil du 26 janvier 1984 a délibéré.", []),
    ],
)
def test_a_law_named_in_a_sentence_gives_its_visa(sentence: str, visas: list[str]) -> None:
    from assistant.structure import law_visas

    assert law_visas(sentence, 1) == visas


def test_an_act_resting_on_a_law_its_sources_name_has_its_visa(
    settings: Settings, templates: Templates
) -> None:
    """M05 (session 31): the délibération creating posts rested on « l'article 3-3 de la loi
    du 26 janvier 1984 modifiée », in its only source's evidence, and read « Vu [À COMPLÉTER :
    texte visé] ». The law is its visa, after a code's when there is one."""
    delib = make_hit(
        1,
        "En application de l’article 3-3 de la loi du 26 janvier 1984 modifiée, ce poste "
        "pourra être ouvert au recrutement d’un agent non titulaire.",
        source="delib_2014-170_tableau_des_effectifs.pdf",
    )
    delib.title = "Montpellier delib 2014-04-24 n2014-170 tableau des effectifs"
    reply = act_json("les besoins du service l'exigent", "Le tableau des effectifs est modifié.")

    def drafted() -> str:
        model = FakeChatModel(reply)
        svc = DraftingService(settings, model, FakeRetriever([delib]), templates, None)
        request = DraftRequest("Créer des postes", "deliberation", fields={"objet": "RH"})
        return svc.draft(request).answer

    answer = drafted()
    assert "Vu la loi du 26 janvier 1984 modifiée, notamment son article 3-3 [1] ;" in answer
    assert "texte visé" not in answer
    # With a code's article named too, both, the code first.
    delib.text = (
        "Conformément à l'article L2121-29 du CGCT et en application de l’article 3-3 de la "
        "loi du 26 janvier 1984 modifiée, le conseil crée le poste."
    )
    answer = drafted()
    code = answer.index("Vu le code général des collectivités territoriales")
    assert code < answer.index("Vu la loi du 26 janvier 1984 modifiée")


def test_an_act_resting_on_another_council_s_deliberation_has_its_visa(
    settings: Settings, templates: Templates
) -> None:
    """L04 (session 29): the only sources were another council's délibération, whose evidence
    said « conformément aux dispositions de l'article D 1411-5 du code général des collectivités
    territoriales », and the act read « Vu [À COMPLÉTER : texte visé] »."""
    delib = make_hit(
        1,
        "Il convient de fixer les modalités de dépôt des listes, conformément aux dispositions "
        "de l'article D 1411-5 du code général des collectivités territoriales.",
        source="delib_2014-153_commission_dsp.pdf",
    )
    delib.title = "Montpellier delib 2014-04-24 n2014-153 commission dsp depot listes"
    reply = act_json("les modalités de dépôt sont à fixer", "La commission permanente est créée.")
    svc = DraftingService(settings, FakeChatModel(reply), FakeRetriever([delib]), templates, None)
    draft = svc.draft(DraftRequest("Commission de DSP", "deliberation", fields={"objet": "DSP"}))
    assert (
        "Vu le code général des collectivités territoriales, notamment son article D. 1411-5 [1] ;"
        in draft.answer
    )
    assert "texte visé" not in draft.answer


def test_a_considerant_says_the_rule_not_which_source_says_it(
    settings: Settings, templates: Templates
) -> None:
    """H04 (session 28): « Considérant que le texte de la source 1 précise que le conseil
    municipal doit délibérer… », marked to be rewritten. The clerk gets the rule, cited, with
    nothing to rewrite."""
    hit = make_hit(1, "Le conseil municipal délibère sur le droit à la formation de ses membres.")
    said = "le texte de la source 1 précise que le conseil municipal délibère sur la formation"
    reply = act_json(said, "Les orientations de la formation sont adoptées.")
    svc = DraftingService(settings, FakeChatModel(reply), FakeRetriever([hit]), templates, None)
    draft = svc.draft(DraftRequest("Formation", "deliberation", fields={"objet": "Formation"}))
    assert "Considérant que le conseil municipal délibère sur la formation [1] ;" in draft.answer
    assert "source 1" not in draft.answer and not draft.checks


# --- evidence -------------------------------------------------------------------------------


def test_the_evidence_query_drops_the_recipient_and_the_task_words() -> None:
    query = evidence_query(
        "Répondre au président de l'association des commerçants qui demande les conditions "
        "pour installer des terrasses.",
        "Installation de terrasses",
        ["Monsieur le Président de l'association des commerçants du centre"],
    )
    assert "terrasses" in query and "conditions" in query
    assert not {"Répondre", "président", "l'association", "commerçants"} & set(query.split())


@pytest.mark.parametrize(
    ("request_text", "kept", "dropped"),
    [
        ("Note au maire sur les règles de convocation du conseil.", "convocation", "maire"),
        ("Répondre à M. Petit sur la validité du certificat d'urbanisme.", "validité", "Petit"),
        (
            "Note au directeur général des services sur les seuils des marchés publics.",
            "seuils",
            "directeur",
        ),
        # No addressee before « sur »: a relative clause is the matter, kept whole.
        (
            "Répondre à un habitant qui conteste le permis affiché sur le terrain voisin.",
            "conteste",
            "",
        ),
        # The addressee is the matter when the request is about them.
        ("Arrêté du maire portant délégation de fonctions à un adjoint.", "maire", ""),
    ],
)
def test_the_evidence_query_drops_the_addressee_the_request_opens_with(
    request_text: str, kept: str, dropped: str
) -> None:
    words = evidence_query(request_text).split()
    assert kept in words
    if dropped:
        assert dropped not in words


def test_free_of_charge_answers_a_question_on_the_cost() -> None:
    text = "La copie est délivrée par la mairie du lieu de naissance.\n#### Coût\nGratuit."
    lines = clean_lines(text)
    best = best_readable(lines, "Combien coûte une copie intégrale d'acte de naissance ?")
    assert lines[best[0]].text == "Gratuit."


def test_a_line_holding_the_figure_asked_comes_first() -> None:
    text = (
        "L'association organise une buvette temporaire lors de sa manifestation sportive "
        "annuelle avec l'accord de la fédération.\n"
        "La demande d'autorisation de buvette est adressée au maire 3 mois avant.\n"
        "La buvette temporaire de l'association respecte les règles d'hygiène de la manifestation."
    )
    lines = clean_lines(text)
    query = "buvette de l'association : délai de la demande"
    assert asked_kinds(query) == {"delay"}
    best = best_readable(lines, query)
    assert "3 mois" in lines[best[0]].text


def test_a_short_verbatim_run_becomes_a_quotation_a_pasted_paragraph_stays_marked() -> None:
    source = " ".join(f"mot{i}" for i in range(80))
    run = " ".join(f"mot{i}" for i in range(5, 30))  # 25 words, over COPY_WORDS
    own = (
        "Nous restons à votre disposition pour toute question sur ce point et pour vous "
        "accompagner dans vos démarches auprès du service concerné de la commune."
    )
    quoted = quote_copy(f"Le texte prévoit que {run}. {own}", [source])
    assert f"« {run} »" in quoted
    assert check_paragraph(quoted, [source], [source], []) == []
    pasted = " ".join(f"mot{i}" for i in range(5, 40))  # the whole paragraph is the source's
    assert quote_copy(pasted, [source]) == pasted
    assert [i.kind for i in check_paragraph(pasted, [source], [source], [])] == ["copie"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Il dit : “le quorum est atteint”.", "Il dit : « le quorum est atteint »."),
        ("Il dit : „ le quorum est atteint ”.", "Il dit : « le quorum est atteint »."),
        ('Il dit : "le quorum" et "la majorité".', "Il dit : « le quorum » et « la majorité »."),
        ('Un écran de 27" suffit.', 'Un écran de 27" suffit.'),  # not a quotation
        ("Il dit : « le quorum ».", "Il dit : « le quorum »."),
        # nested in a French quotation (N04): kept
        ('Ce sont « les cas de la règle "silence vaut accord" ».', None),
    ],
)
def test_a_quotation_is_written_between_french_quotation_marks(written: str, expected: str) -> None:
    from assistant.verify import french_quotes

    assert french_quotes(written) == (expected or written)


def test_a_sentence_quoted_in_english_marks_is_not_marked_as_a_copy(
    settings: Settings, templates: Templates
) -> None:
    """A helper (session 30) saw a reply quote its source between “ ” and get « 33 mots
    recopiés d'une source : à reformuler ou à citer entre « » »: it was quoted. The draft
    shows « … », as French writing has it, and no mark."""
    rule = (
        "Le conseil municipal ne délibère valablement que lorsque la majorité de ses membres en "
        "exercice est présente à la séance et que le quorum est atteint dans les conditions "
        "fixées par la loi."
    )
    quoted = "Le règlement intérieur le dit ainsi : “" + rule[:-1] + "”."
    reply = json.dumps({"paragraphes": [{"sources": [1], "texte": quoted}]}, ensure_ascii=False)
    hit = make_hit(1, rule, source="reglement_interieur.pdf")
    svc = DraftingService(settings, FakeChatModel(reply), FakeRetriever([hit]), templates, None)
    draft = svc.draft(DraftRequest("Quel est le quorum ?", "question"))
    assert "« " + rule[:-1] + " »" in draft.answer
    assert "À VÉRIFIER" not in draft.answer and "“" not in draft.answer


def test_a_pdf_line_break_does_not_cut_a_sentence_and_no_line_is_shown_twice() -> None:
    page = (
        "Les occupations du domaine public à des fins d'utilité publique (Communauté\n"
        "d'agglomération, Département) sont gratuites.\n"
        "Convention\n"
        "Lorsque la subvention dépasse 23 000 €, une convention est conclue."
    )
    texts = [line.text for line in clean_lines(page)]
    assert texts[0].endswith("(Communauté d'agglomération, Département) sont gratuites.")
    assert "Convention" in texts  # a title line is not glued to the next sentence
    count = lambda s: len(s) // 3  # noqa: E731
    lines = clean_lines(page)
    first, again = share_evidence([lines, lines], "subvention convention", 200, count)
    assert "23 000" in first
    assert "23 000" not in again


def test_a_pdf_line_ending_on_a_preposition_goes_on_in_the_next_whatever_it_starts_with() -> None:
    # The délibération on BRL's pipes (n2014-179) as pypdf reads it: the length asked for
    # stood alone as « 840 mètres linéaires ; », sharing no word with the request, and the
    # bullet it ends was shown cut (« … d'environ »).
    page = (
        "- d'autoriser la Ville à signer une convention de servitude pour une longueur totale "
        "d'environ\n"
        "840 mètres linéaires ;\n"
        "Quotient familial de\n"
        "0 à 370€\n"
        "Les listes sont déposées au plus tard au début de la séance du\n"
        "Conseil Municipal.\n"
        "Il est demandé au conseil de\n"
        "- d'approuver la convention ;\n"
        "Vu le code, et notamment son article\n"
        "Article 2 : Le tarif est fixé à 12 €."
    )
    texts = [line.text for line in clean_lines(page)]
    assert texts[0].endswith("d'environ 840 mètres linéaires ;")
    assert "Quotient familial de 0 à 370€" in texts
    assert "Les listes sont déposées au plus tard au début de la séance du Conseil Municipal." in (
        texts
    )
    # An item or an article heading starts its own line, even after a dangling word.
    assert any(t.startswith("d'approuver la convention") for t in texts)
    assert any(t.startswith("Article 2") or t == "Le tarif est fixé à 12 €." for t in texts)
    assert not any("article Article" in t for t in texts)


def test_the_chunks_of_one_page_are_one_source() -> None:
    from assistant.drafting import merge_passages

    a = make_hit(1, "Deuxième partie : la redevance.", source="f.md", page=None)
    b = make_hit(2, "Autre document.", source="g.md", page=None)
    c = make_hit(3, "Première partie : une AOT est requise.", source="f.md", page=None)
    a.metadata["chunk_index"], c.metadata["chunk_index"] = 5, 2
    merged = merge_passages([a, b, c])
    assert [h.source for h in merged] == ["f.md", "g.md"]  # where its best chunk ranked
    assert (
        merged[0].text == "Première partie : une AOT est requise.\nDeuxième partie : la redevance."
    )


def test_a_code_s_front_matter_merged_with_an_article_does_not_take_its_number(
    settings: Settings, templates: Templates
) -> None:
    """Seen in a held-out note (H07): the CRPA's first chunk (« Nombre d'articles : 30 »),
    merged with the L. 411-2 chunk that ranked first, was shown as « Article L411-2 : Nombre
    d'articles : 30 », the article's first sentence, and the model declined to answer."""
    from dataclasses import replace

    front = make_hit(
        1, "Nombre d'articles : 30 (parties législative L, réglementaire R).", 0.5, "crpa.md", None
    )
    rule = make_hit(
        2,
        "Article L411-2\nUn recours gracieux ou hiérarchique interrompt le délai de recours.",
        0.9,
        "crpa.md",
        None,
    )
    rule = replace(rule, heading="Article L411-2", metadata={"relevance": 0.9, "chunk_index": 3})
    svc = DraftingService(settings, FakeChatModel("x"), FakeRetriever([rule, front]), templates)
    draft = svc.draft(DraftRequest("Un recours gracieux interrompt-il le délai de recours ?"))
    (source,) = draft.sources
    assert "Article L411-2 : Nombre" not in source.text
    assert "L411-2 : Un recours gracieux" in source.text
    assert source.heading == "Article L411-2"  # the citation still names the best passage


def test_a_section_title_counts_for_the_lines_under_it() -> None:
    fiche = (
        "### Qui peut acquérir une concession ?\n"
        "Toute personne domiciliée dans la commune peut acquérir une concession funéraire.\n"
        "### Durée de la concession\n"
        "- Concession trentenaire : 30 ans\n"
    )
    lines = clean_lines(fiche)
    assert [line.text for line in lines][-1] == "Concession trentenaire : 30 ans"
    best = best_readable(lines, "durée possible d'une concession funéraire")
    assert lines[best[-1]].text == "Concession trentenaire : 30 ans"


def test_a_sentence_comes_with_the_one_that_leans_on_it_and_references_are_not_evidence() -> None:
    fiche = (
        "L'occupation du trottoir par une terrasse doit répondre à des conditions fixées.\n"
        "Elle nécessite une autorisation temporaire et entraîne le paiement d'une redevance.\n"
        "Le marché hebdomadaire se tient le samedi.\n"
        "### Références\n"
        "- Code de la voirie : conditions d'occupation du trottoir par une terrasse\n"
    )
    lines = clean_lines(fiche)
    assert not any("Code de la voirie" in line.text for line in lines)
    kept = [lines[i].text for i in best_readable(lines, "conditions terrasse trottoir")]
    assert kept[-1].startswith("Elle nécessite") and len(kept) == 2


def test_a_joined_chunk_keeps_its_own_article_number() -> None:
    from assistant.drafting import merge_passages
    from assistant.evidence import render_lines

    a = make_hit(1, "**Article L2122-1**\n\nIl y a dans chaque commune un maire.", source="c.md")
    b = make_hit(2, "Le conseil fixe le nombre des adjoints, au plus 30 %.", source="c.md")
    a.metadata["chunk_index"], b.metadata["chunk_index"] = 1, 2
    b.heading = "Chapitre II > Article L2122-2"
    lines = clean_lines(merge_passages([a, b])[0].text)
    text = render_lines(lines, list(range(len(lines))))
    assert "Article L2122-2 : Le conseil fixe le nombre des adjoints" in text
    assert "Article L2122-1 : Le conseil" not in text


def test_an_article_heading_chunk_is_labelled_by_its_own_number() -> None:
    from assistant.drafting import merge_passages
    from assistant.evidence import render_lines

    a = make_hit(1, "CHAPITRE II\nArticle L2122-1\n\nIl y a un maire.", source="c.md")
    b = make_hit(2, "Article L2122-2\nLe conseil fixe le nombre des adjoints.", source="c.md")
    a.metadata["chunk_index"], b.metadata["chunk_index"] = 1, 3
    a.heading, b.heading = "CHAPITRE II > Article L2122-1", "CHAPITRE II > Article L2122-2"
    merged = merge_passages([b, a])[0]
    lines = clean_lines(merged.text, merged.heading)
    text = render_lines(lines, list(range(len(lines))))
    assert "Article L2122-2 : Le conseil fixe" in text and text.startswith("Article L2122-1 : ")


def test_the_title_and_division_headings_are_not_an_articles_first_sentence() -> None:
    """A code's first chunk (its title, front matter) joined to the next (« CHAPITRE Ier : … »
    before the article): any line of the article comes with its first sentence, which must be
    the rule itself, not the chapter's heading or the document's title."""
    from assistant.drafting import merge_passages
    from assistant.evidence import render_lines

    title = "Code général des collectivités territoriales — Chapitre Ier : Régime des actes"
    front = make_hit(1, f"{title}\nSource : dépôt etalab/codes-juridiques-francais.", source="c.md")
    body = make_hit(
        2,
        "CHAPITRE Ier : Régime juridique des actes pris par les autorités communales\n"
        "Article L2131-1\n\nLes actes pris par les autorités communales sont exécutoires de "
        "plein droit dès leur transmission au représentant de l'Etat.\n\n"
        "Le maire certifie, sous sa responsabilité, le caractère exécutoire de ces actes.",
        source="c.md",
    )
    front.metadata["chunk_index"], body.metadata["chunk_index"] = 0, 1
    body.heading = "CHAPITRE Ier : Régime juridique des actes > Article L2131-1"
    merged = merge_passages([body, front])[0]
    lines = clean_lines(merged.text, merged.heading, title)
    assert [line.text[:20] for line in lines] == ["Les actes pris par l", "Le maire certifie, s"]
    assert lines[0].section.startswith("CHAPITRE Ier")  # its words still count for the lines
    keep = best_readable(lines, "le maire certifie le caractère exécutoire")
    assert render_lines(lines, keep).startswith("Article L2131-1 : Les actes pris par")
    # Without the title, its line stays (the caller did not say what it is).
    assert any(line.text == title for line in clean_lines(merged.text, merged.heading))


def test_list_numbers_are_not_figures_a_figure_ending_a_sentence_is() -> None:
    listed = "Les étapes : 1. Consultez le registre. 2. Écrivez au maire sous 2 mois."
    assert [k for _, k in figures(listed)] == ["n:2@mois"]  # the delay, not the item numbers
    assert [k for _, k in figures("Le nombre est fixé à 21. Il prend effet.")] == ["n:21@"]


def test_a_table_row_comes_with_the_row_that_names_the_columns() -> None:
    """The demo's « Week-end (vendredi 18 h – lundi 9 h) | 320 € | 650 € » was shown without
    « Location | Habitants de la commune | Personnes extérieures »: whose price is which?"""
    lines = clean_lines(
        "## Salle des fêtes\n\nLocation | Habitants de la commune | Personnes extérieures\n"
        "Week-end (vendredi 18 h – lundi 9 h) | 320 € | 650 €\n"
        "Journée en semaine | 150 € | 300 €\n\nDépôt de garantie : 800 €."
    )
    texts = [ln.text for ln in lines]
    row = next(i for i, t in enumerate(texts) if t.startswith("Journée"))
    shown = {texts[i] for i in readable(lines, row)}
    assert "Location | Habitants de la commune | Personnes extérieures" in shown
    deposit = texts.index("Dépôt de garantie : 800 €.")
    assert readable(lines, deposit) == {deposit}  # not a row: no header


def test_a_sentence_said_twice_is_said_once() -> None:
    twice = "Une convention est conclue au-delà de 23 000 €."
    prose = Structure(
        "prose",
        paragraphs=[Part(f"La demande est recevable. {twice}", [1]), Part(f"{twice} Merci.", [2])],
    )
    out = drop_repeats(prose).paragraphs
    assert [p.text for p in out] == [f"La demande est recevable. {twice}", "Merci."]


def test_a_quotation_closes_the_parenthesis_it_opens() -> None:
    """The verbatim run may stop inside a parenthesis (its last word before « ) »): the
    quotation is widened to close it, never « (du vendredi 18 h au lundi 9 h ») »."""
    source = (
        "Article 2 : Le tarif de location de la salle des fêtes Jean-Moulin pour un week-end "
        "(du vendredi 18 h au lundi 9 h) est fixé à 320 € pour les habitants de la commune."
    )
    own = (
        "Les tarifs votés par le conseil municipal pour cette année s'appliquent à toutes les "
        "réservations enregistrées à l'accueil de la mairie, quelle que soit la date de la "
        "manifestation prévue par les habitants."
    )
    draft = (
        "Les tarifs de location de la salle des fêtes Jean-Moulin pour un week-end (du vendredi "
        f"18 h au lundi 9 h) sont fixés à 320 €. {own}"
    )
    quoted = quote_copy(draft, [source])
    assert "«" in quoted
    inside = quoted[quoted.index("«") : quoted.index("»") + 1]
    assert inside.count("(") == inside.count(")")


def test_a_line_of_a_code_article_comes_with_the_articles_rule() -> None:
    """A question on the quorum: the line holding « quorum » is chosen with its article's
    first sentence, which states the rule (« la majorité de ses membres en exercice »); with
    the line alone, the model read « trois membres » from the next article as the quorum."""
    chapter = "\n".join(
        [
            "**Article L2121-7**",
            "Le conseil municipal se réunit au moins une fois par trimestre.",
            "**Article L2121-17**",
            "Le conseil municipal ne délibère valablement que lorsque la majorité de ses "
            "membres en exercice est présente.",
            "Si, après une première convocation, ce quorum n'est pas atteint, le conseil "
            "municipal est à nouveau convoqué à trois jours au moins d'intervalle.",
            "**Article L2121-18**",
            "Sur la demande de trois membres, le conseil municipal peut décider qu'il se "
            "réunit à huis clos.",
        ]
    )
    lines = clean_lines(chapter)
    question = "Que se passe-t-il quand le quorum n'est pas atteint ?"
    kept = [lines[i].text for i in best_readable(lines, question)]
    assert len(kept) == 2
    assert "majorité de ses membres en exercice" in kept[0] and "ce quorum" in kept[1]


def test_the_best_line_is_kept_when_nothing_fits_whole() -> None:
    """When even one line with its neighbours overflows, the shown line is the best one cut
    to whole words, not the first line of its article; it keeps its article's number (a visa
    is written from the numbers the evidence shows)."""
    text = (
        "Article L2122-23 : Les décisions prises par le maire sont soumises aux mêmes règles "
        "que les délibérations portant sur les mêmes objets.\n"
        "Les décisions prises par délégation peuvent être signées par un adjoint agissant par "
        "délégation du maire dans les conditions fixées à l'article L. 2122-18."
    )
    (shown,) = share_evidence(
        [clean_lines(text)], "délégation de fonctions à un adjoint", 25, lambda t: len(t) // 4
    )
    assert shown.startswith("Article L2122-23 : Les décisions prises par délégation")
    assert shown.endswith("[…]")


def test_a_passage_far_less_relevant_than_the_best_is_not_a_source(
    settings: Settings, templates: Templates
) -> None:
    """A passage under half the best one's relevance (another deliberation found for one
    common word) is not shown to the model; one close to the best is."""
    hits = [
        make_hit(
            1,
            "Le conseil municipal établit son règlement intérieur dans les six mois.",
            relevance=0.9,
        ),
        make_hit(
            2, "Le règlement intérieur fixe les conditions des questions orales.", relevance=0.6
        ),
        make_hit(
            3, "Le Conseil Adopte le vœu de soutien aux intermittents du spectacle.", relevance=0.4
        ),
    ]
    svc = DraftingService(settings, FakeChatModel("Oui [1]."), FakeRetriever(hits), templates)
    draft = svc.draft(DraftRequest("Règlement intérieur du conseil municipal"))
    assert [c.source for c in draft.sources] == ["doc1.pdf", "doc2.pdf"]


# --- a draft cut by the token limit ---------------------------------------------------------


def test_the_unfinished_end_of_a_draft_cut_by_its_token_limit_is_taken_out() -> None:
    from assistant.structure import drop_unfinished_tail

    cut = Structure(
        "prose",
        paragraphs=[
            Part("Votre demande est recevable.", [1]),
            Part("Il faut écrire à la mairie. La réponse vient sous un mois. 5", [1]),
        ],
    )
    trimmed, changed = drop_unfinished_tail(cut)
    assert changed and trimmed.paragraphs[-1].text == (
        "Il faut écrire à la mairie. La réponse vient sous un mois."
    )
    alone = Structure("prose", paragraphs=[Part("Fin.", []), Part("Pour occuper une partie", [])])
    assert [p.text for p in drop_unfinished_tail(alone)[0].paragraphs] == ["Fin."]
    act = Structure(
        "acte",
        considerants=[Part("la demande est complète", [1])],
        articles=[Part("L'autorisation est accordée.", [1]), Part("Elle prend effet le", [1])],
    )
    got = drop_unfinished_tail(act)[0]
    assert [p.text for p in got.articles] == ["L'autorisation est accordée."]
    assert got.considerants == act.considerants
    ended = Structure("prose", paragraphs=[Part("Tout est dit (article 2).", [])])
    assert drop_unfinished_tail(ended) == (ended, False)
    # The only paragraph, cut before its first full stop: kept, visibly unfinished, not emptied
    # (an empty draft would read as « the documents do not allow an answer »).
    only = Structure("prose", paragraphs=[Part("Les élus ont droit à une formation adaptée", [1])])
    kept, changed = drop_unfinished_tail(only)
    assert changed and [p.text for p in kept.paragraphs] == [
        "Les élus ont droit à une formation adaptée […]"
    ]
    single = Structure("acte", considerants=act.considerants, articles=[Part("Il est", [1])])
    assert [p.text for p in drop_unfinished_tail(single)[0].articles] == ["Il est […]"]


def test_a_letter_cut_by_its_token_limit_ends_on_a_whole_sentence_and_says_so(
    settings: Settings, templates: Templates
) -> None:
    from assistant.drafting import LENGTH_REACHED

    hit = make_hit(1, "La demande se fait auprès de la mairie, qui répond sous un mois.")
    long_tail = " ".join(["puis"] * 60)
    reply = json.dumps(
        {
            "paragraphes": [
                {"sources": [1], "texte": "La demande se fait auprès de la mairie."},
                {"sources": [1], "texte": f"Elle répond sous un mois. Ensuite {long_tail}"},
            ]
        },
        ensure_ascii=False,
    )
    limited = settings.model_copy(update={"max_tokens": 24})
    svc = DraftingService(limited, FakeChatModel(reply), FakeRetriever([hit]), templates, None)
    draft = svc.draft(DraftRequest("Délai", "courrier", fields={"destinataire": "Madame"}))
    assert "Elle répond sous un mois. [1]" in draft.answer or "Elle répond sous un mois [1]" in (
        draft.answer
    )
    assert "Ensuite" not in draft.answer and "puis" not in draft.answer
    assert LENGTH_REACHED in draft.warnings


def test_a_sentence_repeated_by_overlapping_chunks_is_evidence_once() -> None:
    chunk_a = "Vous pouvez la transmettre par don ou legs. Vous ne pouvez pas la vendre."
    chunk_b = "Vous ne pouvez pas la vendre. La donation est irrévocable."
    lines = [line.text for line in clean_lines(f"{chunk_a}\n{chunk_b}")]
    assert lines.count("Vous ne pouvez pas la vendre.") == 1
    assert lines[-1] == "La donation est irrévocable."
    # the same words under two articles are two rules
    two = "Article L1 : Il délibère alors valablement.\nArticle L2 : Il délibère alors valablement."
    assert len(clean_lines(two)) == 2


def test_a_list_number_left_alone_at_the_end_of_a_part_goes() -> None:
    from assistant.structure import clean_text

    # seen in R03: « … informations publiques. 5 » and its « À VÉRIFIER : « 5 » » mark
    assert clean_text("Il sera examiné. 5.") == "Il sera examiné."
    assert clean_text("1. Écrire. 2. Attendre. 3)") == "1. Écrire. 2. Attendre."
    assert clean_text("Coût : 30.") == "Coût : 30."  # a figure that ends its sentence stays
    assert clean_text("Le délai est de 2 mois.") == "Le délai est de 2 mois."


def _count_thirds(text: str) -> int:
    return len(text) // 3


TRAINING_QUERY = "congé de formation des élus salariés : combien de jours ?"


def test_the_evidence_room_goes_to_the_best_sentences_of_all_sources() -> None:
    """Seen on a held-out note (H04): the room split evenly between three sources showed the
    code's rule on training but not its second sentence, « dix-huit jours », while the other
    sources each showed an incidental line. The room now follows the sentences' scores: both
    sentences of the first passage, and the passage whose only line loses is left out."""
    count = _count_thirds
    code = clean_lines(
        "Les élus salariés ont droit à un congé de formation adaptée à leurs fonctions. "
        "Le congé de formation des élus salariés est fixé à dix-huit jours par mandat. "
        "Le conseil délibère sur les orientations."
    )
    other = clean_lines("Les élus du conseil siègent en séance publique une fois par trimestre.")
    incidental = clean_lines("La formation des agents est organisée par le centre de gestion.")
    query = TRAINING_QUERY
    room = count(render_lines(code, [0, 1])) + 2
    first, second, third = share_evidence([code, other, incidental], query, room, count)
    assert "dix-huit jours" in first and "formation adaptée" in first
    assert second == "" and third == ""
    # With room for all, a source retrieved by meaning (no word in common) shows its first
    # lines after the scored ones.
    meaning = clean_lines("Les absences sont rémunérées. Elles ouvrent droit à indemnité.")
    texts = share_evidence([code, meaning], query, 10_000, count, [5, 5])
    assert "rémunérées" in texts[1]
    # Nothing fits whole: the first passage's best line, cut to whole words.
    (cut,) = share_evidence([code], query, 12, count)
    assert cut.endswith("[…]") and count(cut) <= 12 and cut.startswith("Le congé")


def test_an_act_s_legal_basis_keeps_its_best_sentence_when_the_others_outscore_it() -> None:
    """K05: a délibération's rates outscored L. 2123-18 on the élus' travel costs, the room
    went to them, and the act had no article to cite. The legal basis's passage (``required``)
    keeps its best sentence; without it, the same room leaves it out."""
    count = _count_thirds
    delib = clean_lines(
        "Le remboursement des frais de déplacement des agents est fixé à 15,25 € par repas. "
        "Le remboursement des frais de déplacement des agents en formation est forfaitaire. "
        "Les frais de déplacement des agents sont remboursés sur état de frais."
    )
    code = clean_lines(
        "**Article L2123-18**\n\nLes dépenses liées à un mandat spécial peuvent être prises en "
        "charge."
    )
    query = "remboursement des frais de déplacement des agents et des élus en mandat spécial"
    room = count(render_lines(delib, [0, 1, 2])) + 4
    assert share_evidence([delib, code], query, room, count)[1] == ""
    first, second = share_evidence([delib, code], query, room, count, required=[1])
    assert "L2123-18" in second and "mandat spécial" in second
    assert first  # the room left still goes to the best passage
    # A legal text sharing no word with the query shows its first lines.
    other = clean_lines("**Article L2123-20**\n\nLes indemnités maximales sont votées.")
    assert "L2123-20" in share_evidence([delib, other], query, room, count, required=[1])[1]


def test_an_act_whose_model_cites_no_legal_text_has_the_legal_basis_shown_as_visa(
    settings: Settings, templates: Templates
) -> None:
    """The model cited only the délibération: the visa is written from the legal text the
    program searched for the act and showed, not left « à compléter »."""
    delib = make_hit(1, "Le repas est remboursé 15,25 € aux agents.", source="delib_2014.pdf")
    delib.title = "Montpellier delib 2014-04-24 n2014-139 frais deplacement agents elus"
    cgct = make_hit(
        2, "**Article L2123-18**\n\nLes frais de mandat spécial sont remboursés.", 0.5, "cgct.md"
    )
    cgct.title = "Code général des collectivités territoriales — Conditions d'exercice des mandats"
    cgct.metadata["doc_type"] = "loi"
    reply = act_json("le repas est remboursé 15,25 €", "Le repas est remboursé 15,25 €.")
    retriever = FakeRetriever([delib, cgct], abstain_threshold=0.3)
    svc = DraftingService(settings, FakeChatModel(reply), retriever, templates, None)
    req = DraftRequest("Frais de mandat spécial", "deliberation", fields={"objet": "Frais"})
    body = svc.draft(req).answer
    assert "Vu le code général des collectivités territoriales, notamment son article" in body
    assert "L. 2123-18 [2] ;" in body
    assert "texte visé" not in body
    # With no legal text among the sources, the visa is left to complete.
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever([delib], 0.3), templates, None
    )
    assert "Vu [À COMPLÉTER : texte visé] ;" in svc.draft(req).answer


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("prévu pour le [date].", "prévu pour le [À COMPLÉTER : date]."),
        ("Madame [Nom du demandeur],", "Madame [À COMPLÉTER : nom du demandeur],"),
        ("le XX/XX/XXXX à 10 h", "le [À COMPLÉTER : date] à 10 h"),
        ("numéro [SIRET]", "numéro [À COMPLÉTER : SIRET]"),
        ("le [À COMPLÉTER : lieu]", "le [À COMPLÉTER : lieu]"),  # a mark already
        ("le [à compléter : lieu]", "le [à compléter : lieu]"),
        ("article 2 [sic]", "article 2 [sic]"),
        ("« […] la suite »", "« […] la suite »"),  # a quotation's elision is not a blank
    ],
)
def test_a_blank_the_model_leaves_is_marked_as_the_program_marks_its_own(
    written: str, shown: str
) -> None:
    """Seen in a courrier (C04): « prévu pour le [date] », a blank the agent could miss among
    the « [À COMPLÉTER : …] » of the frame."""
    from assistant.structure import clean_text

    assert clean_text(written) == shown


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (  # K16
            "La mairie peut refuser un certificat lié à la situation matrimoniale : - Certificat "
            "de célibat - Certificat de concubinage.",
            "La mairie peut refuser un certificat lié à la situation matrimoniale : certificat "
            "de célibat, certificat de concubinage.",
        ),
        (  # K04: a list opened inside an item keeps its colon
            "Il est proposé : - D'accorder la garantie des emprunts contractés auprès de : - la "
            "Banque Postale pour 2 M€, - du Crédit Agricole pour 2 M€.",
            "Il est proposé : d'accorder la garantie des emprunts contractés auprès de : la "
            "Banque Postale pour 2 M€, du Crédit Agricole pour 2 M€.",
        ),
        ("Accueil : lundi - vendredi, 9 h - 12 h.", "Accueil : lundi - vendredi, 9 h - 12 h."),
        ("La commune de Saint-Aubin applique l'article L. 2121-17.", None),
    ],
)
def test_a_list_written_inside_a_sentence_reads_as_an_enumeration(
    written: str, shown: str | None
) -> None:
    """« … matrimoniale : - Certificat de célibat - Certificat de concubinage » (K16, and 35
    lines of the stored runs): the model flattens the evidence's list into its sentence. A
    range (« 9 h - 12 h ») and a hyphen inside a word stay."""
    from assistant.structure import clean_text

    assert clean_text(written) == (shown or written)


def test_a_source_whose_best_sentence_scores_near_the_best_keeps_it() -> None:
    """The room follows the scores, but not to the point of losing a relevant source: a
    fiche's sentence scoring over half the best one's is shown before the code's third
    sentence, which scores higher."""
    count = _count_thirds
    code = clean_lines(
        "Le congé de formation des élus salariés est fixé à dix-huit jours par mandat. "
        "Les élus salariés ont droit à un congé de formation adaptée à leurs fonctions. "
        "Le congé de formation des élus salariés est renouvelable en cas de réélection."
    )
    fiche = clean_lines("Un élu salarié peut demander un congé de formation.")
    query = TRAINING_QUERY
    ranked = ranked_lines(code, query)
    (best, _), (third, _) = ranked[0], ranked[2]
    (lead, _) = ranked_lines(fiche, query)[0]
    assert best * SOURCE_FLOOR_SHARE <= lead < third  # the case this test is about
    room = count(render_lines(code, [0, 1, 2])) + 2
    first, second = share_evidence([code, fiche], query, room, count)
    assert "dix-huit jours" in first and "peut demander" in second
    assert "renouvelable" not in first


# --- population thresholds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dans les communes de moins de 3 500 habitants", (0.0, 3500.0)),
        ("Dans les communes de 3 500 habitants et plus, le conseil…", (3500.0, float("inf"))),
        ("les communes de plus de 100 000 habitants", (100000.0, float("inf"))),
        ("on est au-dessus de 100 000 habitants", (100000.0, float("inf"))),
        ("une commune d'au moins 1000 habitants", (1000.0, float("inf"))),
        ("en dessous de 1 000 habitants", (0.0, 1000.0)),
        # Both sides: a comparison, not a condition.
        ("de 3 500 habitants et plus et … de moins de 3 500 habitants", None),
        ("La ville compte 280 000 habitants.", None),
        ("Aucun seuil ici.", None),
    ],
)
def test_the_population_a_line_applies_to(text: str, expected: tuple[float, float] | None) -> None:
    assert population_range(text) == expected


def test_a_rule_for_the_other_side_of_the_request_s_threshold_ranks_below_the_right_one() -> None:
    """Q02 (« moins de 3 500 habitants ») was answered from L. 2121-7's rule for communes « de
    3 500 habitants et plus », which shares more of the request's words than L. 2121-11."""
    wrong = Line(
        "Par dérogation, dans les communes de 3 500 habitants et plus, la convocation du conseil "
        "municipal est adressée trois jours francs au moins avant celui de cette première réunion.",
        article="Article L2121-7",
    )
    right = Line(
        "Dans les communes de moins de 3 500 habitants, la convocation est adressée trois jours "
        "francs au moins avant celui de la réunion.",
        article="Article L2121-11",
    )
    lines = [wrong, right]
    asked = "Quel est le délai de convocation du conseil municipal dans une commune de {} ?"
    query = evidence_query(asked.format("moins de 3 500 habitants"))
    assert "habitants" in query  # a task word elsewhere (« un habitant »), a population here
    assert [i for _, i in ranked_lines(lines, query)] == [1, 0]
    # A population given as a figure: the same choice; none given: the longer match first.
    assert [i for _, i in ranked_lines(lines, asked.format("2 000 habitants"))] == [1, 0]
    assert [i for _, i in ranked_lines(lines, asked.format("12 000 habitants"))] == [0, 1]
    assert next(i for _, i in ranked_lines(lines, asked.format("la commune"))) == 0


# --- visas from the legal texts a fiche names ----------------------------------------------------

BINS_FICHE = (
    "Le maire peut imposer des bacs à poubelle spécifiques pour la collecte sélective.\n"
    "Il fixe par arrêté les conditions de présentation des déchets.\n\n"
    "## Références\n"
    "- Code de l'environnement : articles L541-1 à L541-3 — Déchets dangereux non ménagers\n"
    "- Code général des collectivités territoriales : articles L2224-13 à L2224-17-1 — "
    "Collecte des déchets ménagers (http://www.legifrance.gouv.fr/affichCode.do?id=1)\n"
    "- Réponse ministérielle du 3 mars 2015 sur les bacs\n"
)


def test_a_fiche_s_references_are_read_and_the_one_for_the_request_comes_first() -> None:
    from assistant.evidence import best_references, references_of

    refs = references_of(BINS_FICHE)
    assert [(r.code, r.articles) for r in refs] == [
        ("Code de l'environnement", "articles L541-1 à L541-3"),
        ("Code général des collectivités territoriales", "articles L2224-13 à L2224-17-1"),
    ]  # the ministerial answer names no code's articles; the URL is not kept
    assert refs[1].topic == "Collecte des déchets ménagers"
    query = "arrêté sur la présentation des déchets ménagers à la collecte"
    assert best_references(refs, query) == [refs[1]]
    # Nothing shared: the fiche's first reference (its main legal basis).
    assert best_references(refs, "horaires d'ouverture") == [refs[0]]
    # A topic naming what the articles leave out is not the basis, whatever it shares.
    negated = references_of(
        "## Références\n"
        "- Code de l'urbanisme : article R*421-2 — Travaux ne nécessitant pas de déclaration "
        "préalable\n"
        "- Code de l'urbanisme : article R*421-17 — Travaux sur construction existante\n"
    )
    assert best_references(negated, "opposition à une déclaration préalable de travaux") == [
        negated[1]
    ]
    # A rule citing a code, outside a references section, is not the fiche's basis.
    assert references_of("Code de l'urbanisme : article L421-1 — Permis\n") == []


def test_an_act_resting_on_a_fiche_gets_the_visa_its_fiche_names(
    settings: Settings, templates: Templates
) -> None:
    """H06: an arrêté on the presentation of household waste, grounded in a fiche and no code
    article, read « Vu [À COMPLÉTER : texte visé] ». The fiche's reference for the request is
    shown as its last evidence line, and the visa is written from it, tied to the fiche."""
    fiche = make_hit(1, BINS_FICHE, source="sp_F31960.md")
    fiche.title = "Le maire peut-il imposer l'achat de bacs à poubelle spécifiques ?"
    reply = act_json("le maire peut imposer des bacs", "Les bacs jaunes sont obligatoires.")
    model = FakeChatModel(reply)
    svc = DraftingService(settings, model, FakeRetriever([fiche], 0.3), templates, None)
    req = DraftRequest(
        "Arrêté imposant des bacs pour la collecte des déchets ménagers",
        "arrete",
        fields={"objet": "Présentation des déchets ménagers à la collecte"},
    )
    result = svc.draft(req)
    prompt = model.prompts[-1][-1]["content"]
    assert (
        "Texte de référence : Code général des collectivités territoriales, articles L2224-13 à "
        "L2224-17-1 (collecte des déchets ménagers)." in prompt
    )
    assert "legifrance" not in prompt and "L541-1" not in prompt
    assert (
        "Vu le code général des collectivités territoriales, notamment ses articles "
        "L. 2224-13 à L. 2224-17-1 [1] ;" in result.answer
    )
    assert "texte visé" not in result.answer
    # A letter does not rest on a legal text: its evidence has no reference line.
    model = FakeChatModel(json.dumps({"paragraphes": [{"sources": [1], "texte": "Oui."}]}))
    svc = DraftingService(settings, model, FakeRetriever([fiche], 0.3), templates, None)
    svc.draft(DraftRequest("Répondre sur les bacs", "courrier", fields={"objet": "Bacs"}))
    assert "Texte de référence" not in model.prompts[-1][-1]["content"]
