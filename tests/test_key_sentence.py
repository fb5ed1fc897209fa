"""The key sentence: the evidence's sentence holding the figure a request asks for, quoted in
the draft when the model's text leaves its figures out (docs/eval/drafts.md, ninth pass).

Unit tests of the choice (:func:`assistant.evidence.key_sentence`) and of the quotation
(:func:`assistant.drafting.with_key_part`), then the drafting service with the fake chat model
beside the real templates, evidence, verification and rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.drafting import (
    Draft,
    DraftingService,
    DraftRequest,
    against_key,
    states_figures,
    with_key_part,
)
from assistant.evidence import Line, clean_lines, key_sentence
from assistant.prompts import load_templates
from assistant.structure import Part, Structure
from assistant.verify import MARK_PATTERN, differing_figures
from tests.fakes import FakeChatModel, FakeRetriever, make_hit

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
QUERY = "Quel est le délai de réponse à une demande de terrasse ?"
RULE = "Sans réponse dans les 2 mois, la demande de terrasse est considérée comme refusée."


def choose(*texts: str, query: str = QUERY, bullet: bool = False) -> Line | None:
    lines = [Line(t, bullet=bullet) for t in texts]
    shown = "\n".join(texts)
    found = key_sentence([lines], [shown], query, 45)
    return found[1] if found else None


def test_the_key_sentence_holds_the_figure_of_the_kind_asked() -> None:
    other = "La demande de terrasse est instruite par la mairie, qui fixe une redevance de 3 €."
    found = choose(other, RULE)
    assert found is not None and found.text == RULE  # the delay, not the amount
    # Asked for nothing in particular, any figure will do.
    assert choose(other, query="terrasse demande mairie redevance") is not None
    # Not in the evidence shown to the model: not quoted.
    assert key_sentence([[Line(RULE)]], ["Autre chose."], QUERY, 45) is None
    assert key_sentence([[Line(RULE)]], [""], QUERY, 45) is None


def test_a_count_answers_when_it_counts_what_the_request_asks_about() -> None:
    """H13 asked « Combien de pouvoirs un conseiller peut-il détenir… ? »: L. 2121-20's « un
    seul pouvoir » was no figure (1 is left out of the figures), so no key sentence, and the
    model wrote « deux pouvoirs ». A count is the answer when it counts one of the request's
    terms; « un seul pouvoir » does not answer « Quel est le quorum ? »."""
    proxy = "Un même conseiller municipal ne peut être porteur que d'un seul pouvoir."
    quorum = (
        "Le conseil municipal ne délibère valablement que lorsque la majorité de ses membres en "
        "exercice est présente."
    )
    asked = "Combien de pouvoirs un conseiller municipal peut-il détenir lors d'une séance ?"
    found = choose(quorum, proxy, query=asked)
    assert found is not None and found.text == proxy
    found = choose(proxy, quorum, query="Quel est le quorum du conseil municipal ?")
    assert found is not None and found.text == quorum
    sessions = "Le pouvoir est valable pour trois séances consécutives au plus."
    assert choose(sessions, query="Pour combien de séances un pouvoir vaut-il ?") is not None
    # « un seul pouvoir » is a figure the draft states or leaves out.
    assert states_figures(proxy, ["Il peut détenir deux pouvoirs."]) is False
    assert states_figures(proxy, ["Il ne détient qu'un seul pouvoir."]) is True


@pytest.mark.parametrize(
    "text",
    [
        "Néanmoins, la demande de terrasse est refusée après 2 mois de silence.",
        "Toutefois, la demande de terrasse est refusée après 2 mois de silence.",
        "la demande de terrasse est refusée après 2 mois de silence, sauf",
        "La demande de terrasse est refusée après 2 mois de silence",
        "La Ville propose un délai de réponse de 2 mois pour la demande de terrasse.",
        "Considérant que la demande de terrasse est refusée après 2 mois de silence.",
        "Exemple : une demande de terrasse déposée le 1er mars est refusée 2 mois après.",
        "La demande de terrasse est instruite par la mairie dans un délai raisonnable.",
        "La demande de terrasse [...] est refusée après 2 mois. " + "Mot " * 40 + "fin.",
    ],
)
def test_a_sentence_that_cannot_stand_alone_as_a_quotation_is_not_chosen(text: str) -> None:
    assert choose(RULE) is not None  # the same request finds a sentence that can
    assert choose(text) is None


def test_a_list_item_is_not_quoted_and_a_lead_in_is_dropped() -> None:
    assert choose(RULE, bullet=True) is None
    found = choose("À noter : " + RULE)
    assert found is not None and found.text == RULE


def test_only_the_best_sentences_are_candidates() -> None:
    best = "La demande de terrasse de réponse est instruite par la mairie selon son délai."
    second = "La demande de terrasse de réponse est examinée par le maire selon son délai."
    # The figure's sentence ranks third: the model was shown better sentences without it.
    assert choose(best, second, "La terrasse : 2 mois.") is None
    # Ranked first, it is chosen.
    assert choose("La demande de terrasse de réponse : délai de 2 mois.", best) is not None


def test_an_article_s_sentence_keeps_its_number() -> None:
    lines = clean_lines(
        "**Article L2121-17**\n\nLe conseil municipal ne délibère valablement que lorsque la "
        "majorité de ses membres en exercice est présente."
    )
    query = "À quelle majorité des membres le conseil municipal délibère-t-il valablement ?"
    found = key_sentence([lines], ["\n".join(x.text for x in lines)], query, 45)
    assert found is not None and found[1].article == "Article L2121-17"


def prose(*texts: str) -> Structure:
    return Structure("prose", paragraphs=[Part(t, [1]) for t in texts])


def test_the_key_sentence_is_quoted_only_when_the_draft_leaves_its_figures_out() -> None:
    key = (2, Line(RULE))
    out, added = with_key_part(prose("Votre demande sera étudiée avec attention."), key)
    assert added is out.paragraphs[-1]
    assert [p.text for p in out.paragraphs][-1] == (
        "Pour mémoire : « Sans réponse dans les 2 mois, la demande de terrasse est considérée "
        "comme refusée »"
    )
    assert out.paragraphs[-1].sources == [2]
    # The draft states the figure (in words): nothing added.
    stated = prose("Sans réponse sous deux mois, la demande est refusée.")
    assert with_key_part(stated, key) == (stated, None)
    # An empty draft stays empty (the service says the model wrote nothing).
    assert with_key_part(prose("…"), key) == (prose("…"), None)
    assert with_key_part(prose("Texte."), None) == (prose("Texte."), None)


def test_figures_in_words_count_as_figures() -> None:
    quorum = (
        "Le conseil ne délibère valablement que lorsque la majorité de ses membres est présente."
    )
    assert states_figures(quorum, ["Il faut trois membres."]) is False
    assert states_figures(quorum, ["Il faut la majorité des membres."]) is True
    assert states_figures("Le conseil se réunit en séance publique.", ["x"]) is None


def test_an_act_quotes_the_code_in_a_considerant() -> None:
    key = (
        1,
        Line(
            "Le conseil municipal détermine le nombre des adjoints au maire sans que ce nombre "
            "puisse excéder 30 % de l'effectif légal du conseil municipal.",
            article="Article L2122-2",
        ),
    )
    act = Structure(
        "acte",
        considerants=[Part("il convient de fixer le nombre des adjoints", [1])],
        articles=[Part("Le nombre des adjoints est fixé à [À COMPLÉTER : nombre].", [1])],
    )
    out, _ = with_key_part(act, key)
    assert out.articles == act.articles and len(out.considerants) == 2
    assert out.considerants[-1].text.startswith(
        "aux termes de l'article L. 2122-2, « le conseil municipal détermine"
    )
    prose_out, _ = with_key_part(prose("Le nombre est libre."), key)
    assert prose_out.paragraphs[-1].text.startswith(
        "Pour mémoire, l'article L. 2122-2 dispose : « Le conseil municipal"
    )


def test_a_draft_that_leaves_out_the_asked_delay_shows_the_source_s_sentence(
    settings: Settings,
) -> None:
    fiche = (
        "# Terrasse sur le trottoir\n\n"
        "Une terrasse nécessite une autorisation d'occupation temporaire du domaine public.\n"
        f"{RULE}\n"
    )
    hits = [make_hit(1, fiche, source="fiches/terrasse.md")]

    def draft(text: str) -> str:
        reply = json.dumps({"paragraphes": [{"sources": [1], "texte": text}]}, ensure_ascii=False)
        svc = DraftingService(
            settings,
            FakeChatModel(reply),
            FakeRetriever(hits),
            load_templates(PROMPTS),
        )
        result = svc.draft(DraftRequest(QUERY, "question"))
        assert [c.n for c in result.citations] == [1]
        return result.answer

    vague = draft("Une autorisation d'occupation temporaire est nécessaire.")
    assert (
        "Pour mémoire : « Sans réponse dans les 2 mois, la demande de terrasse est considérée "
        "comme refusée » [1]." in vague
    )
    assert "À VÉRIFIER" not in vague  # a marked quotation of one sentence is allowed
    stated = draft("Sans réponse dans les deux mois, la demande est refusée.")
    assert "Pour mémoire" not in stated


def test_a_figure_the_key_sentence_contradicts_is_marked() -> None:
    """Seen in Q03: « dépasse 3 000 € » (a subsidy of a council's list, another source shown)
    where the fiche's key sentence says « 23 000 € »; the check of cited sources let it through."""
    key = (1, Line("Lorsque la subvention dépasse 23 000 €, une convention doit être conclue."))
    wrong = "La convention est obligatoire lorsque la subvention dépasse 3 000 €."
    (issue,) = against_key(wrong, key)
    assert issue.value == "3 000 €" and "la source n° 1 indique « 23 000 € »" in issue.detail
    # Another unit, the same number, or a part about something else: nothing to say.
    assert against_key("La convention est signée sous 3 mois par la subvention.", key) == []
    assert against_key("La subvention dépasse 23 000 €, une convention est due.", key) == []
    assert against_key("Le loyer de la salle est de 300 €.", key) == []
    # Words in common, not numbers: « 000 » is no shared subject.
    assert against_key("La subvention de 75 000 € est soumise au code.", key) == []
    # Sentence by sentence: another sentence of the part may speak of the key's subject.
    deposit = (1, Line("Dépôt de garantie : 800 €."))
    part = "Le dépôt de garantie est demandé. La location de la vaisselle coûte 1,20 €."
    assert against_key(part, deposit) == []
    assert [i.value for i in against_key("Le dépôt de garantie est de 500 €.", deposit)] == [
        "500 €"
    ]
    assert differing_figures("Un délai de 3 mois.", "Dans les 2 mois.") == [("3 mois", "2 mois")]
    # The unit is no shared subject either (K14: the cassation appeal's « 10 jours » against
    # the registration's « 7 jours », sharing « décision » and « jours »).
    registration = (
        1,
        Line("Le maire doit vous envoyer dans les 7 jours un courrier sur sa décision."),
    )
    appeal = "Vous pouvez former un pourvoi contre la décision dans un délai de 10 jours."
    assert against_key(appeal, registration) == []
    assert [
        i.value for i in against_key("Le maire envoie son courrier sous 5 jours.", registration)
    ] == ["5 jours"]


def test_a_drafted_answer_with_the_wrong_amount_is_marked_and_gets_the_right_one(
    settings: Settings,
) -> None:
    fiche = (
        "# Subventions aux associations\n\n"
        "Lorsque la subvention dépasse 23 000 €, l'administration qui l'attribue doit conclure "
        "une convention avec l'association bénéficiaire.\n"
    )
    liste = "Subventions 2014 : association des Amis du quartier, 3 000 € ; club de judo, 1 200 €."
    hits = [make_hit(1, fiche, source="fiches/subventions.md"), make_hit(2, liste)]
    reply = json.dumps(
        {
            "paragraphes": [
                {
                    "sources": [1, 2],
                    "texte": "La convention est obligatoire lorsque la subvention dépasse 3 000 €.",
                }
            ]
        },
        ensure_ascii=False,
    )
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever(hits), load_templates(PROMPTS)
    )
    query = "À partir de quel montant de subvention une convention est-elle obligatoire ?"
    draft = svc.draft(DraftRequest(query, "question"))
    assert "« 3 000 € » : la source n° 1 indique « 23 000 € »" in draft.answer
    # A mark holds no citation: the screen and the export highlight it whole, the citations
    # outside it are the part's own.
    (mark,) = MARK_PATTERN.findall(draft.answer)
    assert mark.endswith("indique « 23 000 € »]")
    assert [c.n for c in draft.citations] == [1, 2]
    assert "Pour mémoire : « Lorsque la subvention dépasse 23 000 €" in draft.answer
    assert [c["type"] for c in draft.checks] == ["chiffre"]


def test_a_model_that_declines_despite_the_key_sentence_leaves_the_draft_quoting_it(
    settings: Settings,
) -> None:
    """Seen in Q02: the evidence's first sentence answered (« trois jours francs ») and the
    model wrote « Les documents fournis ne permettent pas de répondre à cette demande. »"""
    templates = load_templates(PROMPTS)
    declined = templates.common.phrase_abstention
    fiche = (
        "# Terrasse sur le trottoir\n\n"
        "Une terrasse nécessite une autorisation d'occupation temporaire du domaine public.\n"
        f"{RULE}\n"
    )
    vague = "# Terrasse\n\nLa demande de terrasse est instruite par la mairie.\n"

    def draft(
        text: str, doc_type: str, reply_key: str = "paragraphes", query: str = QUERY
    ) -> Draft:
        body: dict[str, object] = {reply_key: [{"sources": [1], "texte": declined}]}
        if doc_type == "deliberation":
            body = {
                "visas": [1],
                "considerants": [{"sources": [1], "texte": declined}],
                "articles": [{"sources": [1], "texte": declined}],
            }
        svc = DraftingService(
            settings,
            FakeChatModel(json.dumps(body, ensure_ascii=False)),
            FakeRetriever([make_hit(1, text, source="fiches/terrasse.md")]),
            templates,
        )
        return svc.draft(DraftRequest(query, doc_type))

    quoted = draft(fiche, "question")
    assert quoted.answer.startswith(
        "Pour mémoire : « Sans réponse dans les 2 mois, la demande de terrasse est considérée "
        "comme refusée » [1]."
    )
    assert declined not in quoted.answer
    assert [c.n for c in quoted.citations] == [1]
    assert any("porte le chiffre demandé" in w for w in quoted.warnings)
    # No sentence with the delay asked: the model's refusal stands; nor in an act.
    assert draft(vague, "question").answer.startswith(declined)
    # A request asking for no figure: any figure is no answer (K11 got a sentence on the
    # livret de famille « du 1er enfant »), the refusal stands.
    assert draft(
        fiche, "question", query="La demande de terrasse est-elle refusée ?"
    ).answer.startswith(declined)
    act = draft(fiche, "deliberation").answer
    assert "Pour mémoire" not in act and "aux termes" not in act
