"""Drafts an agent would sign: evidence in, structure enforced, figures checked, one text
everywhere, a resident's letter read for its questions, and the drafting evaluation.

Fast tests use the fakes of tests/fakes.py beside the real pieces (templates, verification,
rendering, DOCX/ODT export, audit, CLI); the slow one runs the real llama.cpp with the test model
under the grammar."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import AuditLog
from assistant.config import Settings
from assistant.drafting import Draft, DraftEvent, DraftingService, DraftRequest, search_queries
from assistant.errors import TemplateError
from assistant.evaluation import (
    DraftCase,
    DraftOutcome,
    EvalError,
    load_draft_cases,
    score_draft,
    summarise_drafts,
)
from assistant.evidence import (
    clean_lines,
    evidence_query,
    questions_of,
    share_evidence,
)
from assistant.prompts import Templates, answers_request, load_template, load_templates
from assistant.structure import (
    Part,
    Structure,
    close_json,
    considerant_line,
    drop_scaffold,
    parse_partial,
    render,
    schema_for,
    visa_line,
)
from assistant.verify import (
    MARK_PATTERN,
    apply,
    check_paragraph,
    contacts,
    copied_share,
    figures,
    is_premium,
    longest_copy,
)
from tests.fakes import FakeChatModel, FakeRetriever, make_hit

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"
REQUESTS = ROOT / "tests" / "data" / "drafting_requests.jsonl"
# Written after the designs of session 21 were chosen, to measure them on requests they were not
# tuned on (docs/eval/drafts.md, seventh pass).
HELDOUT = ROOT / "tests" / "data" / "drafting_requests_heldout.jsonl"
# A second one (K01–K16), written by a helper session in session 22 on documents and subjects
# the 46 above do not use, to judge the evidence's design (docs/eval/drafts.md, eighth pass).
HELDOUT2 = ROOT / "tests" / "data" / "drafting_requests_heldout2.jsonl"
# A third (L01–L14), written by a helper session in session 29 on the documents no request had
# used yet (the délibérations of 2013-2014, a compte rendu, a fiche), with no look at the drafts.
HELDOUT3 = ROOT / "tests" / "data" / "drafting_requests_heldout3.jsonl"
# A fourth (M01–M16), written by a helper session on the documents the 76 above do not use
# (the other délibérations of 2014, two comptes rendus) and a few fiches used only once.
HELDOUT4 = ROOT / "tests" / "data" / "drafting_requests_heldout4.jsonl"

AOT = (
    "# Occupation du domaine public par un commerce (AOT)\n"
    "Source : service-public.fr, fiche F10003 (https://www.service-public.fr/F10003) — "
    "modified 2018-12-14\n\n"
    "### Conditions\n"
    "Une terrasse nécessite une autorisation d'occupation temporaire (AOT) du domaine public. "
    "Elle entraîne le paiement d'une redevance.\n"
    "Le dossier comprend au minimum les documents suivants :\n"
    "- Extrait Kbis\n- Attestation d'assurance\n"
    "Sans réponse dans les 2 mois, la demande est considérée comme refusée.\n"
    "> **À noter** : l'installation irrégulière d'une terrasse entraîne une amende de 1 500 €."
)
CGCT = (
    "**Article L2122-2**\n\nLe conseil municipal détermine le nombre des adjoints au maire sans "
    "que ce nombre puisse excéder 30 % de l'effectif légal du conseil municipal."
)
CGCT_TITLE = (
    "Code général des collectivités territoriales — Partie législative — Le maire et les adjoints"
)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(PROMPTS)


def build(
    settings: Settings,
    templates: Templates,
    reply: Any,
    hits: list[Any] | None = None,
    audit: AuditLog | None = None,
) -> tuple[DraftingService, FakeChatModel, FakeRetriever]:
    model = FakeChatModel(reply)
    retriever = FakeRetriever(
        hits
        if hits is not None
        else [
            make_hit(1, AOT, source="fiches/F10003.md"),
            make_hit(2, "Le maire délivre les permis de stationnement sur la voie publique."),
        ]
    )
    return DraftingService(settings, model, retriever, templates, audit), model, retriever


def run(svc: DraftingService, request: DraftRequest) -> tuple[list[DraftEvent], Draft]:
    events = list(svc.stream(request))
    assert events[-1].kind == "done" and events[-1].draft is not None
    return events, events[-1].draft


def letter_json(*paragraphs: tuple[list[int], str]) -> str:
    return json.dumps(
        {"paragraphes": [{"sources": s, "texte": t} for s, t in paragraphs]}, ensure_ascii=False
    )


COURRIER = {"destinataire": "M. le Président", "objet": "Terrasses"}


def cli(args: list[str]) -> int:
    from assistant.cli import main

    try:
        main(args)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


# --- verification ---------------------------------------------------------------------------


def test_figures_have_one_key_whatever_the_spelling() -> None:
    keys = dict((k, w) for w, k in figures("un délai de deux mois, 1 500 € et 0,18 € [3]"))
    assert {"n:2@mois", "n:1500@euro", "n:0.18@euro"} <= set(keys)
    assert not any(k.startswith("n:3@") for k in keys)  # a citation mark is not a figure
    same = {k for _, k in figures("2 mois, 1500 euros, 0,18 EUR")}
    assert same == {"n:2@mois", "n:1500@euro", "n:0.18@euro"}
    arts = {k for _, k in figures("l'article L. 2121-17 et L2122-2")}
    assert {"art:L2121-17", "art:L2122-2"} <= arts
    assert not {k for _, k in figures("Article 1er : le maire")}  # 1 is never checked


def test_a_figure_absent_from_the_cited_source_is_flagged_not_one_given_in_words() -> None:
    source = "Sans réponse dans les deux mois, la demande est refusée. Amende de 1 500 €."
    assert (
        check_paragraph("Sans réponse sous 2 mois, c'est un refus.", [source], [source], []) == []
    )
    issues = check_paragraph("L'amende est de 3 000 € sous 2 mois.", [source], [source], [])
    assert [i.kind for i in issues] == ["chiffre"] and "3 000" in issues[0].detail
    # The agent's own figures are allowed.
    assert check_paragraph("Subvention de 30 000 €.", [source], [source], ["30 000 euros"]) == []


def test_contacts_only_from_the_sources_and_never_premium_rate() -> None:
    source = "Contact : mairie@ville.fr ou 01 23 45 67 89."
    ok = "Écrivez à mairie@ville.fr ou appelez le 01 23 45 67 89."
    assert check_paragraph(ok, [source], [source], []) == []
    bad = "Appelez le 08 99 12 34 56 ou voyez www.arnaque.com."
    issues = check_paragraph(bad, [source], [source + " 08 99 12 34 56"], [])
    assert [i.kind for i in issues] == ["coordonnee", "coordonnee"]
    assert is_premium("08 99 12 34 56") and not is_premium("01 23 45 67 89")
    marked = apply(bad, issues)
    assert contacts(MARK_PATTERN.sub("", marked)) == [] and marked.count("[À VÉRIFIER") == 2


def test_long_copies_must_be_short_quotations() -> None:
    source = " ".join(f"mot{i}" for i in range(60))
    copy = " ".join(f"mot{i}" for i in range(5, 40))
    assert longest_copy(copy, [source]) == 35
    assert [i.kind for i in check_paragraph(copy, [source], [source], [])] == ["copie"]
    quoted = "Le texte dit : « " + " ".join(f"mot{i}" for i in range(5, 20)) + " »."
    assert check_paragraph(quoted, [source], [source], []) == []
    assert copied_share(copy, [source]) == 1.0 and copied_share("autre chose ici", [source]) == 0


@pytest.mark.parametrize(
    ("text", "about_sources"),
    [
        # Seen in the drafts of the 1.5B model: the prompt talked about, not the matter.
        ("que les sources fournies démontrent que le règlement est adopté", True),
        ("que le texte de la délibération est fourni dans le document numéroté 3", True),
        ("que les sources numérotées du message de l'agent sont utilisées uniquement", True),
        ("Les obligations sont définies dans le texte des sources, qui précise le seuil.", True),
        ("Selon les sources, le délai est de deux mois.", True),
        # K06 (session 22)
        ("Considérant que le texte fourni décrit les principes de répartition des moyens", True),
        # H08 (session 28): the prompt's « INFORMATIONS DONNÉES PAR L'AGENT » given back.
        (
            "Les informations données par l'agent sont : À l'attention de : [À COMPLÉTER] "
            "Objet : Commissions municipales",
            True,
        ),
        ("Les éléments fournis par l’agent sont les suivants.", True),
        ("Considérant que le texte de la source 2 est pertinent pour cette délibération", True),
        # M05 (session 30), the model's agreement
        ("Considérant que les sources fournis décrivent les postes vacants", True),
        # Administrative French that names a source without speaking of the prompt.
        ("L'impôt sur le revenu est prélevé à la source.", False),
        ("Les sources de financement du projet sont la commune et le département.", False),
        ("Le captage protège la source de la rivière.", False),
        ("Le justificatif est fourni par le demandeur.", False),
        ("Le texte fourni par le pétitionnaire est incomplet.", False),
        ("Les informations données par l'agent d'accueil étaient incomplètes.", False),
    ],
)
def test_a_paragraph_speaking_of_its_sources_is_marked_to_be_rewritten(
    text: str, about_sources: bool
) -> None:
    source = "Le règlement est adopté dans les deux mois ; le délai est de deux mois."
    issues = check_paragraph(text, [source], [source], [])
    assert ("sources" in [i.kind for i in issues]) is about_sources
    # A source's number is not a figure of the matter: one mark, not two (K06, session 28).
    assert "chiffre" not in [i.kind for i in issues]
    if about_sources:
        assert "à réécrire" in apply(text, issues)


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (  # D03, H04 (session 28)
            "Considérant que le texte de la source 1 précise que le conseil municipal doit "
            "délibérer sur le droit à la formation",
            "Considérant que le conseil municipal doit délibérer sur le droit à la formation",
        ),
        (  # H03: two numbers
            "Considérant que le texte de la source 2 et 3 précise que le maire peut signer",
            "Considérant que le maire peut signer",
        ),
        (
            "Considérant que la source 1 prévoit qu'un délai de deux mois court",
            "Considérant qu'un délai de deux mois court",
        ),
        (
            "La source 1 indique qu'il faut deux mois. Selon la source 2, le délai court.",
            "Il faut deux mois. Le délai court.",
        ),
        # Nothing stated but the source: left as written, to be marked.
        (
            "Considérant que le texte de la source 2 est pertinent pour cette délibération",
            "Considérant que le texte de la source 2 est pertinent pour cette délibération",
        ),
        # A law that provides is the matter, not the prompt.
        (
            "Le code prévoit que le maire préside la séance.",
            "Le code prévoit que le maire préside la séance.",
        ),
        (
            "La source de la rivière indique que l'eau est potable.",
            "La source de la rivière indique que l'eau est potable.",
        ),
    ],
)
def test_a_statement_attributed_to_a_source_s_number_is_made_plainly(
    written: str, shown: str
) -> None:
    from assistant.structure import drop_source_talk

    assert drop_source_talk(written) == shown
    if written != shown:  # and nothing left to mark as speaking of the prompt
        assert "sources" not in [i.kind for i in check_paragraph(shown, [shown], [shown], [])]


# --- evidence -------------------------------------------------------------------------------


def len_tokens(text: str) -> int:
    """About a token every three characters, as the test model counts French."""
    return len(text) // 3


def test_evidence_is_clean_sentences_bearing_on_the_request() -> None:
    lines = clean_lines(AOT)
    text = " ".join(line.text for line in lines)
    assert "Source :" not in text and "http" not in text and "#" not in text
    assert "**" not in text and "À noter : l'installation" in text
    (shown,) = share_evidence([lines], "pièces du dossier de terrasse Kbis", 60, len_tokens)
    kept = shown.split("\n")
    assert "- Extrait Kbis" in kept
    assert any(t.endswith("suivants :") for t in kept)  # the introduction of a kept item
    (out,) = share_evidence([clean_lines(CGCT)], "nombre des adjoints", 200, len_tokens)
    assert out.startswith("Article L2122-2 : Le conseil municipal détermine")
    # The @ctes stamp of a deliberation's first page is not a sentence of the act.
    stamp = (
        "Accusé de réception – Ministère de l'intérieur\n\nActe Certifié exécutoire\n"
        "Envoi Préfecture :\nRéception en Préfecture :\n20/02/2014\n"
        "Le règlement intérieur est exécutoire dès sa transmission."
    )
    assert [line.text for line in clean_lines(stamp)] == [
        "20/02/2014",
        "Le règlement intérieur est exécutoire dès sa transmission.",
    ]


def test_a_letter_is_read_for_its_questions() -> None:
    letter = (
        "Madame, Monsieur,\n\nJ'habite la commune depuis 2019 et ma sœur vient me voir. "
        "Pourriez-vous me dire quels documents apporter ? Combien coûte l'attestation ?\n\n"
        "Je vous remercie par avance. Veuillez agréer mes salutations.\n\nNadia"
    )
    asked = questions_of(letter)
    assert asked == [
        "Pourriez-vous me dire quels documents apporter ?",
        "Combien coûte l'attestation ?",
    ]
    # A salutation line without a final stop is not glued to the question under it.
    assert questions_of("Monsieur le Maire,\n\nPuis-je déposer ma demande en ligne ?\n\nM. B") == [
        "Puis-je déposer ma demande en ligne ?"
    ]
    queries = search_queries(DraftRequest("Répondre", fields={"objet": "Accueil"}, letter=letter))
    assert queries[:2] == ["Répondre Accueil", "Accueil"] and len(queries) == 4
    # each query with the codes' names for its terms, the evidence on the request's own words
    asked = DraftRequest("Délai du préfet pour déférer ?", fields={"objet": "Contrôle"})
    assert all(q.endswith("(représentant de l'État)") for q in search_queries(asked)[:1])
    assert "représentant" not in evidence_query(asked.request, "Contrôle")


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"paragraphes": [{"sources": [1], "texte": "Bonj', "Bonj"),
        ('{"paragraphes": [{"sources": [1], "texte": "A \\u00e', "A "),
        ('{"paragraphes": [{"sources": [1], "texte": "A"}, {"sour', "A"),
        ('{"paragraphes": [{"sources": [1], "texte":', None),
    ],
)
def test_a_truncated_json_is_closed(raw: str, expected: str | None) -> None:
    data = parse_partial(raw)
    assert data is not None, close_json(raw)
    parts = data["paragraphes"]
    assert parts[0].get("texte") == expected


def test_a_letter_that_answers_drops_its_paragraph_saying_the_documents_do_not(
    settings: Settings, templates: Templates
) -> None:
    """Seen in a courrier: « Les documents fournis ne permettent pas de répondre à cette
    demande [1]. » as the second paragraph of a letter that had answered. It becomes a warning,
    as it does for a free-text draft; a letter made only of it is still an abstention."""
    phrase = templates.common.phrase_abstention
    reply = letter_json(([1], "Une AOT est nécessaire pour une terrasse."), ([1], phrase))
    svc, _, _ = build(settings, templates, reply)
    _, draft = run(svc, DraftRequest("Terrasses", "courrier", fields=COURRIER))
    assert phrase not in draft.answer and "Une AOT est nécessaire" in draft.answer
    assert not draft.abstained
    assert any("pas couverte" in w for w in draft.warnings)
    svc, _, _ = build(settings, templates, letter_json(([1], phrase)))
    _, draft = run(svc, DraftRequest("Terrasses", "courrier", fields=COURRIER))
    assert draft.abstained and phrase in draft.answer


@pytest.mark.parametrize(
    ("request_text", "letter", "references", "answers"),
    [
        ("Répondre à l'association qui demande les conditions", "", "", True),
        ("Lettre à Mme Roux qui voulait savoir si elle peut poser une clôture", "", "", True),
        ("Courrier à l'association qui a sollicité une salle", "", "", True),
        ("Indiquer les horaires de la déchetterie suite à sa demande du 3 mars", "", "", True),
        ("Indiquer les horaires de la déchetterie", "Bonjour, quels sont vos horaires ?", "", True),
        ("Indiquer les horaires de la déchetterie", "", "Votre courrier du 3 mars", True),
        ("Informer l'association de la déclaration préalable à faire", "", "", False),
        (
            "Notifier à l'association la décision du conseil sur sa demande de subvention",
            "",
            "",
            False,
        ),
        (
            "Écrire à l'étude notariale, qui représente l'acquéreur, pour lancer l'acte",
            "",
            "",
            False,
        ),
        ("Prévenir le service du cadastre que le pont change de nom", "", "n/réf. DU-14", False),
    ],
)
def test_a_letter_answers_when_its_addressee_asked(
    request_text: str, letter: str, references: str, answers: bool
) -> None:
    assert answers_request(request_text, letter, references) is answers


def test_a_letter_at_the_town_s_initiative_thanks_no_one_for_a_request(
    settings: Settings, templates: Templates
) -> None:
    """Seen in held-out courriers (L02 to a notary, M01 notifying a council's decision, M02
    to the land registry): « J'ai bien reçu votre demande, qui a retenu toute mon attention »
    opened letters that answered no request. A letter at the town's initiative has no
    acknowledgement and its consigne asks for what it announces; a reply keeps both."""
    ack = templates.get("courrier").acknowledgement
    assert ack and ack in templates.get("courrier").header
    body = letter_json(([1], "Une AOT est nécessaire pour une terrasse."), ([1], "Merci."))
    for text, expected in (
        ("Informer le président des conditions d'installation des terrasses", False),
        ("Répondre au président qui demande les conditions d'installation des terrasses", True),
    ):
        svc, model, _ = build(settings, templates, body)
        _, draft = run(svc, DraftRequest(text, "courrier", fields=COURRIER))
        assert (ack in draft.answer) is expected, draft.answer
        assert "Objet : Terrasses" in draft.answer and "Une AOT est nécessaire" in draft.answer
        last = model.prompts[-1][-1]["content"]
        initiative = templates.get("courrier").initiative_consigne
        assert last.endswith(initiative) is not expected


def test_an_acknowledgement_must_be_a_line_of_the_header(tmp_path: Path) -> None:
    source = (PROMPTS / "courrier.toml").read_text(encoding="utf-8")
    broken = tmp_path / "courrier.toml"
    broken.write_text(
        source.replace("accuse_reception = \"J'ai bien reçu", 'accuse_reception = "Bien reçu'),
        encoding="utf-8",
    )
    with pytest.raises(TemplateError, match="accuse_reception"):
        load_template(broken)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (  # L09
            "La règle applicable est que le CLSPD est présidé par le maire [1].",
            "Le CLSPD est présidé par le maire [1].",
        ),
        (  # N04
            "La règle applicable est l'article L. 231-1 du CRPA, qui stipule que le silence "
            "vaut acceptation [1].",
            "L'article L. 231-1 du CRPA stipule que le silence vaut acceptation [1].",
        ),
        (  # N01, K10
            "La règle applicable est le texte de l'article L. 2121-7 : le conseil se réunit.",
            "L'article L. 2121-7 : le conseil se réunit.",
        ),
        (  # M09, then a second sentence
            "La règle applicable est le texte de la source 1, qui précise que la commune rend un "
            "avis. Les conditions sont que l'avis soit motivé.",
            "La commune rend un avis. Les conditions sont que l'avis soit motivé.",
        ),
        (  # M10
            "Les conditions sont suivantes : le correspondant est désigné. Si les sources le "
            "permettent, la commune doit faire appel au réseau.",
            "Le correspondant est désigné. La commune doit faire appel au réseau.",
        ),
        (  # K10, H07: the label carries the verb of a sentence naming the text
            "La règle applicable est le texte de l'article L. 112-3 du CRPA. Ce texte dispose.",
            "La règle applicable est le texte de l'article L. 112-3 du CRPA. Ce texte dispose.",
        ),
        (
            "La règle applicable est : Article L411-2 du CRPA. Ce texte dispose.",
            "La règle applicable est : Article L411-2 du CRPA. Ce texte dispose.",
        ),
        (  # a statement that merely uses the words
            "Les conditions d'accès sont fixées par l'article L. 2144-3.",
            "Les conditions d'accès sont fixées par l'article L. 2144-3.",
        ),
    ],
)
def test_a_note_s_sentences_do_not_open_with_the_labels_of_its_instruction(
    templates: Templates, written: str, expected: str
) -> None:
    """The note's instruction names its parts (« la règle applicable ; les conditions… ; si
    les sources le permettent, ce que la commune doit faire ») and the model opened its
    sentences with them in 8 of the 12 notes (N01, N04, H07, H08, K10, L09, M09, M10). The label
    goes, the statement stays; only the labels the instruction uses."""
    instructions = templates.get("note").instructions
    assert drop_scaffold(written, instructions) == expected
    assert drop_scaffold(written, "Tu écris un arrêté.") == written


def test_a_request_too_long_for_its_budget_tells_the_agent_what_to_do(
    settings: Settings, templates: Templates
) -> None:
    """Under the request's length limit, a request can still leave no room for the evidence
    (a 3,417-character reply request, session 30). The agent is told to summarise it or to
    paste the resident's letter in its own field; the setting is named for the administrator."""
    from assistant.errors import DraftingError

    svc, _, _ = build(settings, templates, letter_json(([1], "Texte.")))
    long = "Madame Durand demande des précisions sur la cantine. " * 55
    assert len(long) < settings.max_request_chars
    with pytest.raises(DraftingError) as err:
        run(svc, DraftRequest(long, "reponse_usager", fields={"objet": "Cantine"}))
    message = str(err.value)
    assert message.startswith("La demande est trop longue : ")
    assert "« Courrier de l'usager »" in message and "prompts/reponse_usager.toml" in message


def test_a_draft_with_no_usable_text_is_not_called_an_abstention(
    settings: Settings, templates: Templates
) -> None:
    """Seen with the tests' 135M model: paragraphs of only « … » from relevant sources. The
    agent is told the model wrote nothing and to run it again, not that the documents do not
    allow an answer (they may well), and the sources stay listed."""
    from assistant.drafting import EMPTY_DRAFT, EMPTY_DRAFT_WARNING

    svc, _, _ = build(settings, templates, letter_json(([1], "…"), ([1], "...")))
    _, draft = run(svc, DraftRequest("Terrasses", "courrier", fields=COURRIER))
    assert not draft.abstained and EMPTY_DRAFT in draft.answer
    assert templates.common.phrase_abstention not in draft.answer
    assert EMPTY_DRAFT_WARNING in draft.warnings and draft.unused_sources


def test_a_reply_does_not_put_the_resident_s_question_back_in_his_mouth(
    settings: Settings, templates: Templates
) -> None:
    """Seen in a held-out reply (K15): the answer's first sentence was the resident's question,
    copied from his letter. It goes; the answer after it stays."""
    letter = (
        "Monsieur le Maire,\n\nPourriez-vous m'indiquer quel délai s'applique à ma terrasse ?"
        "\n\nVeuillez agréer mes salutations.\n\nM. Molinier"
    )
    echo = "Pourriez-vous m'indiquer quel délai s'applique à ma terrasse ?"
    reply = letter_json(([1], f"{echo} Sans réponse dans les 2 mois, la demande est refusée."))
    svc, _, _ = build(settings, templates, reply)
    request = DraftRequest(
        "Répondre", "reponse_usager", fields={"objet": "Terrasse"}, letter=letter
    )
    _, draft = run(svc, request)
    assert "Pourriez-vous" not in draft.answer
    assert "Sans réponse dans les 2 mois, la demande est refusée" in draft.answer
    # K15 (session 28) replied with its questions as its paragraphs: such a paragraph goes,
    # and a reply made only of them is an empty draft to run again, not a letter.
    reply = letter_json(([1], echo), ([1], "Sans réponse dans les 2 mois, elle est refusée."))
    svc, _, _ = build(settings, templates, reply)
    _, draft = run(svc, request)
    assert "Pourriez-vous" not in draft.answer and "elle est refusée" in draft.answer
    from assistant.drafting import EMPTY_DRAFT

    svc, _, _ = build(settings, templates, letter_json(([1], echo), ([1], echo)))
    _, draft = run(svc, request)
    assert "Pourriez-vous" not in draft.answer and EMPTY_DRAFT in draft.answer


def test_a_reply_does_not_take_the_resident_s_own_words_as_its_own(
    settings: Settings, templates: Templates
) -> None:
    """L13's reply (session 31) opened with Mme Marquet's own « Je trouve ce refus injustifié
    et je souhaite le contester. »; it went as a demand (« je souhaite »). Her account of the
    facts in the first person (« Je suis repartie sans rien… ») is not a demand, and in the
    reply it would be the town speaking: it goes too. The town's own « je » stays, and so does
    what the letter does not hold whole."""
    from assistant.structure import resident_statements

    letter = (
        "Monsieur le Maire,\n\nJe suis repartie du guichet sans rien, alors que la CAF me "
        "réclame un livret à jour. Auprès de qui dois-je faire une réclamation ?\n\n"
        "Sandrine Marquet"
    )
    own = "Je suis repartie du guichet sans rien, alors que la CAF me réclame un livret à jour."
    assert resident_statements(letter) == [own]
    town = "Je vous informe que le procureur de la République contrôle l'état civil."
    reply = letter_json(([1], f"{own} {town}"), ([1], "Vous pouvez saisir le procureur."))
    svc, _, _ = build(settings, templates, reply)
    request = DraftRequest(
        "Répondre à Mme Marquet", "reponse_usager", fields={"objet": "Livret"}, letter=letter
    )
    _, draft = run(svc, request)
    assert "repartie" not in draft.answer
    assert town.rstrip(".") in draft.answer and "Vous pouvez saisir le procureur" in draft.answer
    # A paragraph made only of her words answers nothing and goes whole.
    reply = letter_json(([1], own), ([1], "Vous pouvez saisir le procureur."))
    svc, _, _ = build(settings, templates, reply)
    _, draft = run(svc, request)
    assert "repartie" not in draft.answer and "saisir le procureur" in draft.answer


def test_a_reply_writes_the_resident_s_own_things_as_theirs(
    settings: Settings, templates: Templates
) -> None:
    """K15's reply (session 32) paraphrased M. Molinier's questions in his voice: « Si ces taux
    ne changent pas, alors le montant de ma cotisation reste inchangé ». What the letter owns
    in the first person is « votre » in the reply; the town's own « mes services » stays."""
    from assistant.structure import resident_possessives

    letter = (
        "Monsieur le Maire,\n\nEn comparant mes avis d'imposition, je constate que ma "
        "cotisation augmente. Qui fixe la valeur sur laquelle mon impôt est calculé ?\n\n"
        "Gérard Molinier"
    )
    written = (
        "Mes avis d'imposition montrent que ma cotisation suit les bases ; mon impôt est "
        "calculé sur la valeur locative, et mes services restent à votre disposition."
    )
    assert resident_possessives(written, letter) == (
        "Vos avis d'imposition montrent que votre cotisation suit les bases ; votre impôt est "
        "calculé sur la valeur locative, et mes services restent à votre disposition."
    )
    assert resident_possessives(written, "Monsieur le Maire, merci.") == written
    # Through the service: the reply's text is the one shown.
    reply = letter_json(([1], "Si les taux ne changent pas, ma cotisation suit les bases."))
    svc, _, _ = build(settings, templates, reply)
    request = DraftRequest(
        "Répondre à M. Molinier", "reponse_usager", fields={"objet": "Taux"}, letter=letter
    )
    _, draft = run(svc, request)
    assert "votre cotisation suit les bases" in draft.answer and "ma cotisation" not in (
        draft.answer
    )


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (
            "Pour voter, Monsieur Benali doit déposer sa demande avant le 6e vendredi.",
            "Pour voter, vous devez déposer votre demande avant le 6e vendredi.",
        ),
        (
            "Le délai court. Monsieur Benali ne peut pas attendre ; M. Karim Benali a donc "
            "besoin d'un justificatif.",
            "Le délai court. Vous ne pouvez pas attendre ; vous avez donc besoin d'un "
            "justificatif.",
        ),
        (
            "Monsieur Benali doit signer sa demande et Monsieur Benali doit payer ses frais.",
            "Vous devez signer votre demande et vous devez payer vos frais.",
        ),
        # Not the subject of a verb of the list: left as written.
        ("Le certificat garantit à Monsieur Benali ses droits.", None),
        ("Monsieur Benali tricote.", None),
        # Another person.
        ("Monsieur Petit doit signer.", None),
    ],
)
def test_the_reader_of_a_reply_is_written_to_not_about(written: str, expected: str | None) -> None:
    """Seen in held-out replies (H09, K14): « Monsieur Lambert doit faire un recours » in a
    letter to Monsieur Lambert."""
    from assistant.structure import address_reader

    assert address_reader(written, "Monsieur Benali") == (expected or written)
    # A title is not a name: « Monsieur le Président » stays as written.
    title = "Monsieur le Président doit signer."
    assert address_reader(title, "Monsieur le Président de l'association") == title


@pytest.mark.parametrize(
    ("recipient", "written"),
    [
        ("Monsieur Le Goff", "M. Yann Le Goff doit signer."),  # « Le » of a name, not a title
        ("Monsieur Jean Lambert, 3 rue des Lilas", "Monsieur Lambert doit signer."),
        ("Madame Da Silva", "Madame Da Silva doit signer."),
        # The UI's recipient is an address block (session 29's screenshot: « Monsieur Paul
        # Garnier doit payer les tarifs suivants » in a courrier to him).
        ("Monsieur Paul Garnier\n4 rue des Vignes", "Monsieur Paul Garnier doit signer."),
    ],
)
def test_the_reader_is_found_by_the_last_word_of_the_name(recipient: str, written: str) -> None:
    from assistant.structure import address_reader

    assert address_reader(written, recipient) == "Vous devez signer."


@pytest.mark.parametrize(
    ("recipient", "written", "expected"),
    [
        # C04 (session 31), to the présidente of the comité
        (
            "Madame la Présidente du comité de quartier Est",
            "Je vous informe que Madame la Présidente du comité de quartier Est doit faire "
            "une déclaration préalable.",
            "Je vous informe que vous devez faire une déclaration préalable.",
        ),
        # C04's draft (session 31): the possessive later in the clause is the reader's too;
        # not past a comma or a relative pronoun, which may bring in someone else.
        (
            "Madame la Présidente du comité de quartier Est",
            "Je vous informe que Madame la Présidente du comité de quartier Est doit faire "
            "une déclaration préalable avant son vide-grenier, et que le maire rend sa "
            "décision. La présidente du comité doit signer la demande que sa voisine a écrite.",
            "Je vous informe que vous devez faire une déclaration préalable avant votre "
            "vide-grenier, et que le maire rend sa décision. Vous devez signer la demande que "
            "sa voisine a écrite.",
        ),
        # the complement shortened, after an elided article, with a curly apostrophe
        (
            "Monsieur le Président de l'association des commerçants du centre",
            "Le président de l’association doit signer la convention.",
            "Vous devez signer la convention.",
        ),
        (
            "Monsieur le Directeur de la société BRL",
            "La convention est prête. Le directeur de la société BRL pourra la signer.",
            "La convention est prête. Vous pourrez la signer.",
        ),
        # A bare title is every president or mayor the sources speak of; another
        # complement is someone else.
        ("Monsieur le Président de l'association", "Le président doit signer.", None),
        ("Monsieur le Maire de Lunel", "Le maire peut déléguer sa signature.", None),
        (
            "Monsieur le Président de l'association",
            "Le président de la République peut dissoudre l'assemblée.",
            None,
        ),
        ("Madame la Présidente du comité", "La présidente du comité tricote.", None),
    ],
)
def test_a_reader_addressed_by_a_title_is_written_to_not_about(
    recipient: str, written: str, expected: str | None
) -> None:
    from assistant.structure import address_reader

    assert address_reader(written, recipient) == (expected or written)


def test_a_reply_says_vous_to_its_reader(settings: Settings, templates: Templates) -> None:
    reply = letter_json(([1], "Monsieur Lambert doit demander une autorisation d'occupation."))
    svc, _, _ = build(settings, templates, reply)
    fields = {"usager": "Monsieur Lambert", "objet": "Terrasse"}
    _, draft = run(svc, DraftRequest("Répondre sur la terrasse", "reponse_usager", fields=fields))
    assert "Vous devez demander une autorisation d'occupation" in draft.answer
    assert "Monsieur Lambert doit" not in draft.answer
    assert "Monsieur," in draft.answer  # the salutation is the frame's, untouched


def test_a_question_copied_from_a_source_title_is_not_part_of_the_letter() -> None:
    """Seen in H01 and K11: a Q&A fiche's title, copied as the draft's first sentence."""
    from assistant.structure import drop_title_questions

    titles = ["Une mairie peut-elle être le siège social d'une association ?", "CGCT"]
    answer = "Si le maire le décide, un local communal est mis à disposition."
    copied = f"La mairie peut-elle être le siège social d'une association ? {answer}"
    assert drop_title_questions(copied, titles) == answer
    # The « Oui, » that answered it goes with it; the sentence carries the answer.
    yes = f"La mairie peut-elle être le siège social d'une association ? Oui, s{answer[1:]}"
    assert drop_title_questions(yes, titles) == answer
    assert drop_title_questions(f"Oui, s{answer[1:]}", titles) == f"Oui, s{answer[1:]}"
    # A question of the letter's own (to the resident), or a title that asks nothing: kept.
    own = "Pourriez-vous nous transmettre le procès-verbal de votre assemblée ? " + answer
    assert drop_title_questions(own, titles) == own
    assert drop_title_questions(copied, ["Une mairie, siège social d'une association"]) == copied


def test_a_line_break_inside_a_text_value_is_read_and_debris_is_dropped() -> None:
    """llama-cpp-python's grammar for JSON strings lets control characters through: a raw line
    break inside a text value must not lose the draft's structure. Braces written inside a
    text and a placeholder copied from the format hint are not document text."""
    from assistant.structure import structure_of

    raw = (
        '{"paragraphes": [{"sources": [1], "texte": "…"}, '
        '{"sources": [1, 1], "texte": "Une AOT\nest due. }}\n"}]}'
    )
    data = parse_partial(raw)
    assert data is not None
    structure = structure_of(data, "prose", [1])
    assert [(p.text, p.sources) for p in structure.paragraphs] == [("Une AOT est due.", [1])]


def test_the_evidence_s_gap_mark_is_not_letter_text_but_a_quotation_keeps_its_elision() -> None:
    """K16's reply read « Certificat de concubinage [...]. La mairie peut refuser… [...] »: the
    model copied the mark the evidence puts where lines were skipped. Outside a quotation it
    goes; inside « … » it is the ordinary elision mark."""
    from assistant.structure import clean_text

    text = clean_text(
        "Certificat de concubinage [...]. Ces documents n'existent plus. [ … ] Le texte "
        "prévoit « les pièces […] suivantes » [2]. Fournir les documents suivants : [...]. "
        "- Formulaire cerfa."
    )
    assert text == (
        "Certificat de concubinage. Ces documents n'existent plus. Le texte prévoit "
        "« les pièces […] suivantes ». Fournir les documents suivants : formulaire cerfa."
    )


def test_schema_names_only_the_sources_given() -> None:
    schema = schema_for("prose", [1, 2])
    item = schema["properties"]["paragraphes"]["items"]
    assert list(item["properties"]) == ["sources", "texte"]  # sources chosen before writing
    assert item["properties"]["sources"]["items"]["enum"] == [1, 2]
    act = schema_for("acte", [1])
    assert set(act["required"]) == {"visas", "considerants", "articles"}


def test_rendering_writes_the_marks_and_the_forms() -> None:
    prose = Structure("prose", paragraphs=[Part("Une AOT est nécessaire.", [1]), Part("Ok", [])])
    assert render(prose) == "Une AOT est nécessaire [1].\n\nOk."
    assert considerant_line("Considérant que Le nombre est limité", [2]) == (
        "Considérant que le nombre est limité [2] ;"
    )
    assert considerant_line("il convient de fixer", []) == "Considérant qu'il convient de fixer ;"
    visa = visa_line(CGCT_TITLE, "Article L2122-2 : Le conseil", 1)
    assert visa == (
        "Vu le code général des collectivités territoriales, notamment son article L. 2122-2 [1] ;"
    )
    assert visa_line("Occupation du domaine public", "x", 2) == ""  # not a text: no visa


def test_a_visa_names_the_text_s_own_articles_not_those_of_another_code() -> None:
    """D04: L. 2131-2 cites « les articles L. 422-1 et L. 422-3 du code de l'urbanisme », and
    the visa of the CGCT had named them as its own."""
    evidence = (
        "[…]\nArticle L2131-2 : Sont soumis aux dispositions de l'article L. 2131-1 les actes "
        "suivants :\n- Le permis de construire, dans les conditions prévues aux articles "
        "L. 422-1 et L. 422-3 du code de l'urbanisme ;\nArticle L2131-3 : Les actes sont "
        "exécutoires."
    )
    visa = visa_line(CGCT_TITLE, evidence, 2)
    assert visa.endswith("notamment ses articles L. 2131-2 et L. 2131-3 [2] ;")
    # Without labels, the references it makes, but not those followed by another text's name.
    bare = "Soumis à l'article L. 2131-1, et aux articles L. 422-1 et L. 422-3 du code du travail."
    assert visa_line(CGCT_TITLE, bare, 2).endswith("notamment son article L. 2131-1 [2] ;")


# --- the service ----------------------------------------------------------------------------


def test_a_structured_letter_is_rendered_checked_and_marked(
    settings: Settings, templates: Templates
) -> None:
    reply = letter_json(
        (
            [1],
            "Votre terrasse nécessite une autorisation d'occupation temporaire et une redevance.",
        ),
        ([1], "L'amende est de 3 000 € ; appelez le 08 99 12 34 56 [1]."),
    )
    svc, model, _ = build(settings, templates, reply)
    events, draft = run(svc, DraftRequest("Terrasses", "courrier", fields=COURRIER))
    assert model.schemas[-1] is not None  # generated under the grammar
    enum = model.schemas[-1]["properties"]["paragraphes"]["items"]["properties"]["sources"]
    assert enum["items"]["enum"] == [1, 2]
    assert draft.structured and [c.n for c in draft.citations] == [1]
    assert "redevance [1]." in draft.answer
    assert "08 99" not in draft.answer and "[coordonnée retirée]" in draft.answer
    kinds = sorted(c["type"] for c in draft.checks)
    assert kinds == ["chiffre", "coordonnee"]
    assert draft.answer.count("[À VÉRIFIER") == 2
    assert draft.as_json()["points_a_verifier"] == 2
    assert '"texte"' not in draft.answer and "{" not in draft.answer
    # The preview only grew, and never showed JSON.
    streamed = "".join(e.text for e in events if e.kind == "token")
    assert '"' + "paragraphes" not in streamed and "Votre terrasse nécessite" in streamed
    assert draft.answer.startswith(draft.header)


def test_an_act_gets_its_visas_from_the_cited_legal_text(
    settings: Settings, templates: Templates
) -> None:
    hits = [
        make_hit(1, CGCT, source="textes/cgct_L2122.md"),
        make_hit(2, AOT, source="fiches/F10003.md"),
    ]
    hits[0].title = CGCT_TITLE
    reply = json.dumps(
        {
            "visas": [1, 2],
            "considerants": [
                {
                    "sources": [1],
                    "texte": "le nombre des adjoints ne peut excéder 30 % de l'effectif légal",
                }
            ],
            "articles": [
                {"sources": [], "texte": "Le nombre des adjoints est fixé à [À COMPLÉTER]."},
                {"sources": [1], "texte": "Article 2 : Le maire est chargé de 45 % des tâches."},
            ],
        },
        ensure_ascii=False,
    )
    svc, _, _ = build(settings, templates, reply, hits)
    _, draft = run(svc, DraftRequest("Adjoints", "deliberation", fields={"objet": "Adjoints"}))
    body = draft.answer
    assert (
        "Vu le code général des collectivités territoriales, notamment son article "
        "L. 2122-2 [1] ;" in body
    )
    assert "F10003" not in body and "Vu l'occupation" not in body.lower()
    assert (
        "Considérant que le nombre des adjoints ne peut excéder 30 % de l'effectif légal [1] ;"
        in body
    )
    assert "Après en avoir délibéré," in body and "DÉCIDE :" in body
    assert "Article 1er : Le nombre des adjoints est fixé à [À COMPLÉTER]." in body
    assert (
        re.search(r"Article 2 : Le maire est chargé de 45 % des tâches\. \[À VÉRIFIER", body)
        or "Article 2 : Le maire est chargé de 45 % des tâches [À VÉRIFIER" in body
    )
    assert [c["type"] for c in draft.checks] == ["chiffre"]


POLICE = (
    "**Article L2212-2**\n\nLa police municipale a pour objet d'assurer le bon ordre, la sûreté "
    "et la tranquillité publiques, notamment le soin de réprimer les bruits de voisinage."
)
BRUIT = (
    "# Troubles de voisinage : bruits de comportement\n\n### La nuit\n"
    "Les bruits de voisinage commis la nuit constituent un tapage nocturne.\n"
    "Le tapage nocturne est puni d'une amende de 68 €."
)


@pytest.mark.parametrize(
    ("doc_type", "code_relevance", "code_is_source"),
    [
        ("arrete", 0.4, True),  # under the relevance cut of the search, brought back second
        ("note", 0.4, True),
        ("arrete", 0.2, False),  # not relevant itself: no legal basis rather than a wrong one
        ("courrier", 0.4, False),  # a letter does not rest on a legal text by itself
    ],
)
def test_an_act_or_a_note_gets_the_relevant_legal_text_as_its_second_source(
    settings: Settings,
    templates: Templates,
    doc_type: str,
    code_relevance: float,
    code_is_source: bool,
) -> None:
    hits = [
        make_hit(1, BRUIT, 0.9, source="fiches/F612.md"),
        make_hit(2, "Les bruits de chantier sont interdits la nuit.", 0.8, source="delib.pdf"),
        make_hit(3, POLICE, code_relevance, source="textes/cgct_L2212.md"),
    ]
    hits[2].title = "Code général des collectivités territoriales — Police municipale"
    for hit, kind in zip(hits, ("fiche", "deliberation", "loi"), strict=True):
        hit.metadata["doc_type"] = kind
    reply = (
        json.dumps(
            {
                "visas": [2],
                "considerants": [{"sources": [1], "texte": "le tapage nocturne est puni"}],
                "articles": [{"sources": [1], "texte": "Les bruits de voisinage sont interdits."}],
            },
            ensure_ascii=False,
        )
        if doc_type == "arrete"
        else letter_json(([1], "Le tapage nocturne est puni."))
    )
    svc, _, retriever = build(settings, templates, reply, hits)
    fields = {"objet": "Bruits de voisinage"}
    if doc_type == "courrier":
        fields["destinataire"] = "Monsieur Martin"
    request = DraftRequest("Réglementer les bruits de voisinage la nuit", doc_type, fields)
    _, draft = run(svc, request)
    sources = [c.source for c in draft.sources]
    assert sources[0] == "fiches/F612.md"
    assert (sources[1] == "textes/cgct_L2212.md") is code_is_source
    assert ("textes/cgct_L2212.md" in sources) is code_is_source
    legal_calls = [c for c in retriever.calls if c["doc_types"] == ["loi"]]
    assert len(legal_calls) == (0 if doc_type == "courrier" else 1)
    if doc_type == "arrete" and code_is_source:
        # The visa names the text and the article the evidence shows.
        assert (
            "Vu le code général des collectivités territoriales, notamment son article "
            "L. 2212-2 [2] ;" in draft.answer
        )


def test_a_server_ignoring_the_schema_falls_back_to_the_text(
    settings: Settings, templates: Templates
) -> None:
    svc, _, _ = build(settings, templates, "La terrasse exige une AOT [1].")
    _, draft = run(svc, DraftRequest("Terrasses", "courrier", fields=COURRIER))
    assert not draft.structured and "La terrasse exige une AOT [1]." in draft.answer


def test_a_letter_is_searched_by_its_questions_and_never_echoed(
    settings: Settings, templates: Templates
) -> None:
    letter = (
        "Bonjour, je m'appelle Secret Personne et j'habite 3 rue Cachée. "
        "Quelles pièces faut-il pour une terrasse ? Combien de temps pour la réponse ?"
    )
    svc, model, retriever = build(settings, templates, letter_json(([1], "Une AOT.")))
    request = DraftRequest(
        "Répondre", "reponse_usager", fields={"usager": "M. X", "objet": "Terrasse"}, letter=letter
    )
    run(svc, request)
    assert len(retriever.calls) == 4  # request + objet, objet, the letter's two questions
    prompt = model.prompts[-1][1]["content"]
    assert "Quelles pièces faut-il pour une terrasse ?" in prompt
    assert "Secret Personne" not in prompt
    weak = [make_hit(1, AOT, relevance=0.01)]
    svc, _, _ = build(settings, templates, "x", weak)
    _, refused = run(svc, request)
    assert refused.abstained and "Secret Personne" not in refused.answer


def test_a_letters_questions_choose_passages_within_the_documents_the_request_found(
    settings: Settings, templates: Templates
) -> None:
    """« Quels papiers faut-il apporter ? » alone finds any fiche listing papers; the reply is
    about what the agent's request and objet name."""
    topic = make_hit(1, AOT, 0.9, source="fiches/F10003.md")
    same_document = make_hit(
        2, "Les papiers à apporter à la mairie : un extrait Kbis.", 0.8, "fiches/F10003.md", 2
    )
    elsewhere = make_hit(
        3, "Les papiers à apporter à la mairie : un passeport.", 0.9, "fiches/F2191.md"
    )

    class ByQuery(FakeRetriever):
        def search(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
            super().search(query, *args, **kwargs)
            return [same_document, elsewhere] if "papiers" in query else [topic]

    model = FakeChatModel(letter_json(([1], "Une AOT."), ([2], "Un extrait Kbis.")))
    retriever = ByQuery([])
    svc = DraftingService(settings, model, retriever, templates)
    letter = "Bonjour. Quels papiers faut-il apporter à la mairie ?"
    request = DraftRequest(
        "Répondre sur la terrasse",
        "reponse_usager",
        fields={"usager": "M. X", "objet": "Terrasse"},
        letter=letter,
    )
    _, draft = run(svc, request)
    prompt = model.prompts[-1][1]["content"]
    assert "extrait Kbis" in prompt  # the question's passage of the request's document
    assert "passeport" not in prompt and "F2191" not in [c.source for c in draft.sources]


def test_a_long_letter_does_not_squeeze_the_evidence(
    settings: Settings, templates: Templates
) -> None:
    """A resident's long questions do not come out of the evidence's budget (measured: 194
    tokens of evidence for a three-question letter, about 400 for a short request)."""
    rules = "\n".join(
        f"Règle {i} des terrasses : la terrasse respecte la largeur de trottoir numéro {i}."
        for i in range(1, 30)
    )
    hits = [make_hit(1, rules, 0.9, source="fiches/terrasses.md")]
    fields = {"usager": "M. X", "objet": "Terrasse"}
    question = (
        "Pourriez-vous me dire quelles règles de largeur de trottoir s'appliquent à une terrasse "
        "de café installée devant ma vitrine, sachant que le trottoir est étroit et que les "
        "piétons passent nombreux aux heures de pointe, et que je ne veux pas gêner les voisins ? "
    )

    def evidence(letter: str) -> str:
        model = FakeChatModel(letter_json(([1], "Une terrasse.")))
        svc = DraftingService(settings, model, FakeRetriever(hits), templates)
        run(svc, DraftRequest("Répondre sur la terrasse", "reponse_usager", fields, letter=letter))
        prompt = model.prompts[-1][1]["content"]
        return prompt[prompt.index("<<SOURCE 1") : prompt.index("<<FIN SOURCE 1>>")]

    short = evidence("Quelles règles pour une terrasse ?")
    long = evidence(" ".join(f"{question[:-2]} (point {i}) ?" for i in range(4)))
    assert long.count("Règle ") >= short.count("Règle ") >= 5


# --- one text everywhere ----------------------------------------------------------------------


def _docx_text(data: bytes) -> str:
    from docx import Document

    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)


def test_screen_copy_export_json_and_audit_carry_the_same_text(
    settings: Settings,
    templates: Templates,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assistant.export import draft_to_bytes, draft_to_text

    reply = letter_json(
        ([1], "Votre terrasse nécessite une autorisation d'occupation temporaire."),
        ([1], "L'amende est de 3 000 €."),
    )
    audit = AuditLog(settings.audit_path)
    svc, _, _ = build(settings, templates, reply, audit=audit)
    monkeypatch.setattr("assistant.cli.ask.build_service", lambda *_a, **_k: svc)
    args = ["ask", "Terrasses", "--type", "courrier", "--json"]
    assert cli([*args, "-f", "destinataire=M. le Président", "-f", "objet=Terrasses"]) == 0
    data = json.loads(capsys.readouterr().out)
    answer = data["answer"]
    assert data["points_a_verifier"] == 1 and "[À VÉRIFIER" in answer
    from assistant.audit import sha256_text

    record = audit.get(data["id"])  # the trail holds the same text (or, without text, its hash)
    assert record.answer_sha256 == sha256_text(answer)
    assert record.answer in ("", answer)
    draft = svc.draft(DraftRequest("Terrasses", "courrier", fields=COURRIER))
    body = [p for p in draft.answer.split("\n\n") if "AOT" in p or "autorisation" in p]
    docx = _docx_text(draft_to_bytes(draft, "docx"))
    copy = draft_to_text(draft)
    for paragraph in body:
        assert paragraph in docx and paragraph in copy
    assert "[À VÉRIFIER : « 3 000 € »" in docx and "[À VÉRIFIER : « 3 000 € »" in copy
    assert "<<" not in docx and "SOURCE" not in docx
    assert "Aucune source n'est citée" not in docx and "[1]" in docx.split("Annexe")[-1]
    odt = draft_to_bytes(draft, "odt")
    assert b"<<SOURCE" not in odt


def test_ask_reads_the_residents_letter_from_a_file(
    settings: Settings,
    templates: Templates,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:

    svc, model, _ = build(settings, templates, letter_json(([1], "Une AOT est requise.")))
    monkeypatch.setattr("assistant.cli.ask.build_service", lambda *_a, **_k: svc)
    base = ["ask", "Répondre", "-t", "reponse_usager", "-f", "usager=M. X", "-f", "objet=T"]
    assert cli([*base, "--courrier-usager", str(tmp_path / "absent.txt")]) == 2
    assert "Impossible de lire le courrier" in capsys.readouterr().err
    letter = tmp_path / "courrier.txt"
    letter.write_text("Bonjour. Quelles pièces pour une terrasse ?", encoding="latin-1")
    assert cli([*base, "--courrier-usager", str(letter)]) == 0
    assert "Quelles pièces pour une terrasse ?" in model.prompts[-1][1]["content"]
    assert capsys.readouterr().out.startswith("Objet : T")


# --- the drafting evaluation --------------------------------------------------------------------


def test_the_drafting_requests_cover_every_type() -> None:
    cases = load_draft_cases(REQUESTS)
    assert len(cases) >= 20
    per_type: dict[str, int] = {}
    for case in cases:
        per_type[case.type] = per_type.get(case.type, 0) + 1
    assert all(
        per_type.get(t, 0) >= 3
        for t in ("courrier", "deliberation", "reponse_usager", "question", "arrete", "note")
    )
    assert any(c.off_corpus for c in cases) and any(c.letter for c in cases)
    assert all(c.expected and c.facts for c in cases if not c.off_corpus)


@pytest.mark.parametrize(
    "path",
    [REQUESTS, HELDOUT, HELDOUT2, HELDOUT3, HELDOUT4],
    ids=["set", "heldout", "heldout2", "heldout3", "heldout4"],
)
def test_each_expected_fact_is_in_an_expected_document(path: Path, corpus_dir: Path) -> None:
    """A fact no expected document holds would score the model against the impossible."""
    from assistant.loaders import load_document

    for case in load_draft_cases(path):
        texts = []
        for source in case.expected:
            document = load_document(corpus_dir / source, corpus_dir)
            texts.append(" ".join(" ".join(p.text for p in document.pages).split()).lower())
        for fact in case.facts:
            assert any(" ".join(alt.lower().split()) in text for alt in fact for text in texts), (
                f"{case.id}: {fact}"
            )


def test_a_bad_requests_file_says_what_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"type": "courrier"}\n', encoding="utf-8")
    with pytest.raises(EvalError, match="ligne 1"):
        load_draft_cases(bad)


def test_scoring_counts_what_an_agent_would_see() -> None:
    case = DraftCase(
        "C1",
        "courrier",
        "Terrasses",
        {"objet": "Terrasses"},
        expected=["fiches/F10003.md"],
        facts=[["redevance"], ["15 jours"]],
    )
    answer = (
        "Objet : Terrasses\n\nUne redevance est due [1].\n\nL'amende est de 9 999 € [1].\n\n"
        "Voir <<SOURCE 1>> ou www.exemple.com.\n\nUn délai de 7 jours [À VÉRIFIER : x]."
    )
    outcome = DraftOutcome(
        answer=answer,
        cited=[("fiches/F10003.md", AOT)],
        shown=[("fiches/F10003.md", AOT)],
        abstained=False,
        first_words_s=3.0,
        total_s=20.0,
    )
    row = score_draft(case, outcome)
    assert row["facts"] == [1, 2] and row["expected_cited"]
    assert row["unsupported_figures"] == ["9 999 €"]  # 7 is marked, so not counted
    assert row["markup"] == 1 and row["stray_contacts"] == ["www.exemple.com"]
    summary = summarise_drafts([row])
    assert summary["courrier"]["facts"] == [1, 2] and summary["toutes"]["drafts"] == 1


def test_scoring_reads_a_figure_of_the_cited_source_s_title_as_supported() -> None:
    """The service checks figures against the cited source's title and text (c6a1bb2); the
    scorer read the text only and counted D05's « articles L. 2123-1 et suivants », the CGCT
    chapter's title, as unsupported and unmarked (session 31)."""
    from assistant.drafting import Citation, source_texts

    title = "Code général des collectivités territoriales (articles L2123-1 et suivants)"
    text = "Les élus ont droit à des autorisations d'absence."
    law = Citation(1, "lois/cgct.md", None, "", title, text, "mairie")
    case = DraftCase("D5", "deliberation", "Indemnités", {}, expected=[], facts=[])
    answer = "Considérant que les articles L. 2123-1 et suivants s'appliquent [1] ;"
    texts = source_texts([law])
    assert texts == {1: f"{title}\n{law.text}"}
    outcome = DraftOutcome(
        answer=answer,
        cited=[("lois/cgct.md", law.text)],
        shown=[("lois/cgct.md", law.text)],
        abstained=False,
        by_n=texts,
    )
    assert score_draft(case, outcome)["unsupported_figures"] == []
    without_title = DraftOutcome(
        answer=answer,
        cited=[("lois/cgct.md", law.text)],
        shown=[("lois/cgct.md", law.text)],
        abstained=False,
        by_n={1: law.text},
    )
    assert score_draft(case, without_title)["unsupported_figures"] == ["L. 2123-1"]


def test_the_drafting_evaluation_warms_the_file_s_types_up_first_unless_cold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``serve`` does when it starts: the timings are those an agent sees in the web
    interface; ``--cold`` measures a one-off ``ask``. The report says which."""
    from typer.testing import CliRunner

    import assistant.drafting
    import assistant.store
    from assistant.cli import app

    requests = tmp_path / "r.jsonl"
    cases = [
        {"id": "C1", "type": "courrier", "request": "Terrasses", "fields": COURRIER,
         "expected": ["fiches/F10003.md"], "facts": [["redevance"]]},
        {"id": "Q1", "type": "question", "request": "Terrasse ?", "fields": {},
         "expected": ["fiches/F10003.md"], "facts": [["redevance"]]},
        {"id": "C2", "type": "courrier", "request": "Terrasse", "fields": COURRIER,
         "expected": ["fiches/F10003.md"], "facts": [["redevance"]]},
    ]  # fmt: skip
    requests.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in cases), "utf-8")
    warmed: list[list[str]] = []

    class Service(DraftingService):
        def warm_up(self, doc_types: Any = None) -> None:
            warmed.append(list(doc_types))

    reply = json.dumps({"paragraphes": [{"sources": [1], "texte": "Une redevance est due."}]})

    def service(settings: Settings, **_: Any) -> DraftingService:
        hits = [make_hit(1, AOT, source="fiches/F10003.md")]
        templates = load_templates(PROMPTS)
        return Service(settings, FakeChatModel(reply), FakeRetriever(hits), templates, None)

    class Index:
        def has_collection(self, name: str) -> bool:
            return True

    monkeypatch.setattr(assistant.drafting, "build_service", service)
    monkeypatch.setattr(assistant.store, "build_index", lambda settings: Index())
    out = tmp_path / "out.json"
    base = ["--data-dir", str(tmp_path), "eval", "drafts", str(requests), "--collection", "c"]
    result = CliRunner().invoke(app, [*base, "--save", str(out)])
    assert result.exit_code == 0, result.output
    assert warmed == [["courrier", "question"]]
    report = json.loads(out.read_text("utf-8"))
    assert report["warm_up"] is True and report["summary"]["toutes"]["facts"] == [3, 3]
    warmed.clear()
    result = CliRunner().invoke(app, [*base, "--save", str(out), "--cold"])
    assert result.exit_code == 0, result.output
    assert warmed == [] and json.loads(out.read_text("utf-8"))["warm_up"] is False


# --- the real engine under the grammar --------------------------------------------------------


@pytest.mark.slow
def test_real_model_under_the_grammar_gives_a_structured_draft(settings: Settings) -> None:
    from assistant.config import TEST_CHAT_MODEL
    from assistant.llm import LocalChatModel
    from tests.conftest import require_model

    require_model(TEST_CHAT_MODEL)
    small = settings.model_copy(update={"chat_model": TEST_CHAT_MODEL, "max_tokens": 160})
    model = LocalChatModel(small)
    retriever = FakeRetriever([make_hit(1, AOT, source="fiches/F10003.md")])
    svc = DraftingService(small, model, retriever, load_templates(PROMPTS), None)
    events, draft = run(svc, DraftRequest("Terrasses", "courrier", fields=COURRIER))
    assert draft.structured  # the grammar held, even for a 135M model
    assert "{" not in draft.answer and '"texte"' not in draft.answer
    streamed = "".join(e.text for e in events if e.kind == "token")
    assert "{" not in streamed and draft.answer.startswith(draft.header)


@pytest.mark.slow
def test_real_model_writes_a_deliberation_s_articles_as_decisions(settings: Settings) -> None:
    """The pattern of ``articles_ouvertures`` is a grammar the real engine holds: even a small
    test model opens every article of a délibération with one of the template's decisions."""
    from assistant.config import TEST_CHAT_MODEL
    from assistant.llm import LocalChatModel
    from tests.conftest import require_model

    require_model(TEST_CHAT_MODEL)
    small = settings.model_copy(update={"chat_model": TEST_CHAT_MODEL, "max_tokens": 400})
    model = LocalChatModel(small)
    hits = [make_hit(1, CGCT, source="textes/cgct_L2122.md")]
    hits[0].title = CGCT_TITLE
    templates = load_templates(PROMPTS)
    svc = DraftingService(small, model, FakeRetriever(hits), templates, None)
    request = DraftRequest(
        "Délibération fixant le nombre des adjoints au maire",
        "deliberation",
        fields={"objet": "Nombre des adjoints au maire"},
    )
    _, draft = run(svc, request)
    assert draft.structured
    articles = re.findall(r"^Article \d+(?:er)? : (.*)$", draft.answer, re.MULTILINE)
    openings = templates.get("deliberation").article_openings
    written = [a for a in articles if not a.startswith("[À COMPLÉTER")]
    assert written, draft.answer
    assert all(a.startswith(openings) for a in written), articles


def test_the_server_backend_sends_the_schema_as_response_format(settings: Settings) -> None:
    import httpx

    from assistant.llm import GenerationStats, ServerChatModel

    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        chunk = {"choices": [{"delta": {"content": '{"paragraphes": []}'}}]}
        return httpx.Response(200, text=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")

    server = settings.model_copy(update={"llm_backend": "server", "llm_url": "http://x/v1"})
    client = httpx.Client(base_url="http://x/v1", transport=httpx.MockTransport(handler))
    model = ServerChatModel(server, client=client)
    schema = schema_for("prose", [1])
    text = "".join(
        model.stream(
            [{"role": "user", "content": "x"}], response_format=schema, stats=GenerationStats()
        )
    )
    assert text == '{"paragraphes": []}'
    assert seen[0]["response_format"]["json_schema"]["schema"] == schema
    "".join(model.stream([{"role": "user", "content": "x"}]))
    assert "response_format" not in seen[1]


def test_the_screen_highlights_the_marks_and_counts_them() -> None:
    from assistant.drafting import Citation
    from assistant.ui.app import _final_message
    from assistant.ui.render import answer_html

    source = Citation(1, "a.md", None, "", "A", "texte", "exemple")
    text = "Une amende de 3 000 € [À VÉRIFIER : « 3 000 € » ne figure pas dans les sources] [1]."
    html = answer_html(text, [source])
    assert '<mark class="a-verifier">[À VÉRIFIER : « 3 000 € »' in html
    assert 'data-source="1"' in html
    draft = Draft(
        id="x",
        request=DraftRequest("q"),
        answer=text,
        abstained=False,
        citations=[source],
        unused_sources=[],
        invalid_citations=[],
        model="m",
        timings={},
        checks=[{"partie": 1, "type": "chiffre", "detail": "x"}] * 2,
    )
    assert "2 points à vérifier" in _final_message(draft, stopped=False)


def test_an_article_number_is_not_written_twice_in_the_evidence() -> None:
    from assistant.evidence import render_lines

    heading = "Délibération > Article 2"
    lines = clean_lines("Article 2 : Le tarif de la salle est fixé à 320 €.", heading)
    text = render_lines(lines, list(range(len(lines))))
    assert text.count("Article 2") == 1 and "320 €" in text
    lines = clean_lines("Le tarif de la salle est fixé à 320 €.", heading)
    assert render_lines(lines, list(range(len(lines)))).startswith("Article 2 : Le tarif")


def test_a_line_naming_its_own_article_is_not_labelled_with_the_headings() -> None:
    """The chunks of one document are merged into one source, under the best chunk's heading
    (« DÉCIDE > Article 4 »): the lines of articles 1 and 2 kept their own numbers, not
    « Article 4 : Article 2 : … » (seen in the sample corpus's cantine answer)."""
    from assistant.evidence import render_lines

    text = (
        "Article 1er : Les tarifs sont fixés selon la grille annexée.\n"
        "Article 2 : La salle des fêtes est louée 320 €. Un dépôt de 800 € est demandé.\n"
        "Article 4 : Le repas est fixé à 3,40 €. Le tarif réduit est de 1,00 €."
    )
    lines = clean_lines(text, "DÉCIDE > Article 4")
    assert [line.article for line in lines] == [
        "Article 1er", "Article 2", "Article 2", "Article 4", "Article 4"
    ]  # fmt: skip
    rendered = render_lines(lines, list(range(len(lines))))
    assert "Article 4 : Article" not in rendered and rendered.count("Article 2") == 1
    assert render_lines(lines, [4]).startswith("[…]\nArticle 4 : Le tarif réduit")


def test_a_figure_counts_something_three_days_do_not_back_three_members() -> None:
    """A number is checked with what it counts: « trois jours » in the source does not back
    « trois membres » in the draft; the same number written bare in a source (a table cell)
    backs it whatever its unit; units are compared folded and singular."""
    source = "Le conseil est convoqué trois jours francs avant la séance."
    issues = check_paragraph("Le quorum est de trois membres [1].", [source], [source], [])
    assert [i.value for i in issues] == ["3 membres"]
    assert check_paragraph("Convocation trois jours avant [1].", [source], [source], []) == []
    table = "| Salle | Tarif |\n| Jean-Moulin | 320 |"
    assert check_paragraph("La salle coûte 320 euros [1].", [table], [table], []) == []
    numbered = "Article 3 : le maire signe. Le conseil se réunit dans les 8 jours."
    assert [i.value for i in check_paragraph("Il faut 3 membres [1].", [numbered], [], [])] == [
        "3 membres"
    ]
    years = "Concession accordée pour une durée de 15 années."
    assert check_paragraph("Elle dure 15 ans [1].", [years], [years], []) == []


def test_the_number_of_an_act_counts_nothing() -> None:
    """A délibération's own number (« n°2014/137 », « n° 2014-137 ») identifies it; the word
    after it is not what it counts. D01's considérant « la délibération n°2014/137 précise
    que… », the number taken from its source's title, was marked « 137 précise » as a figure
    no source holds. A counted figure is still checked with its unit."""
    title = "Montpellier delib 2014-04-24 n2014-137 modification nombre adjoints"
    for written in ("la délibération n°2014/137 précise que", "la délibération n° 2014-137 fixe"):
        assert check_paragraph(f"Selon {written} le nombre [1].", [title], [title], []) == []
    issues = check_paragraph("La délibération fixe 137 adjoints [1].", [title], [title], [])
    assert [i.value for i in issues] == ["137 adjoints"]


def test_a_figure_of_a_cited_source_s_title_is_supported(
    settings: Settings, templates: Templates
) -> None:
    """The act's number is in its source's title, not in its shown lines (D01, session 30,
    « la délibération n°2014/137 précise que… »): the title backs it; a number no title or
    line gives is still marked."""
    hit = make_hit(1, "Le conseil municipal fixe à 20 le nombre des adjoints au maire.")
    hit = replace(hit, title="Montpellier delib 2014-04-24 n2014-137 modification nombre adjoints")
    for number, marked in (("2014/137", False), ("2014/138", True)):
        body = f"Selon la délibération n°{number}, le nombre des adjoints est fixé à 20."
        svc, _, _ = build(settings, templates, letter_json(([1], body)), hits=[hit])
        _, draft = run(svc, DraftRequest("Nombre d'adjoints", "note", fields={"objet": "Adjoints"}))
        assert ("« 138 » ne figure pas" in draft.answer) is marked, draft.answer
        assert "« 137 » ne figure pas" not in draft.answer


def test_a_fiche_s_case_counts_for_the_steps_repeated_under_it() -> None:
    """A service-public fiche repeats its steps under each case (« Vous avez une lettre de
    refus » / « Vous avez une lettre de radiation »). K14, a resident struck off the rolls, was
    given the refusal case's lines: the copies under « radiation » had been dropped as
    duplicates, and the case's words counted for no line. Now each chunk's heading path is
    its lines' title, a step is kept once per case, and the copy under the request's case is
    shown, once."""
    from assistant.drafting import merge_passages
    from assistant.evidence import clean_lines, ranked_lines, share_evidence

    step = (
        "Vous devez contester la décision du maire devant la commission de contrôle.\n"
        "Le recours est formé dans un délai de 5 jours."
    )
    refusal = make_hit(1, f"Recours\nLe refus est notifié.\n{step}", source="sp_F34809.md")
    refusal.heading = "Vous avez une lettre de refus > Recours"
    strike = make_hit(2, f"Recours\nL'électeur radié est prévenu.\n{step}", source="sp_F34809.md")
    strike.heading = "Vous avez une lettre de radiation > Recours"
    strike.metadata["chunk_index"] = 5
    (merged,) = merge_passages([refusal, strike])
    lines = clean_lines(merged.text, merged.metadata["lead_heading"], merged.title)
    assert [line.section for line in lines] == [refusal.heading] * 3 + [strike.heading] * 3
    query = "M. Lambert, radié de la liste électorale, veut contester sa radiation : délai"
    (shown,) = share_evidence([lines], query, 400, lambda t: len(t.split()))
    assert shown.count("délai de 5 jours") == 1 and shown.count("commission de contrôle") == 1
    top = ranked_lines(lines, query)[0][1]
    assert lines[top].section == strike.heading  # the radiation case's copy comes first
    # A code's heading path is not a title: its lines keep their article.
    code = make_hit(3, "Le maire convoque le conseil.", source="cgct.md")
    code.heading = "CHAPITRE II : Le maire > Article L2122-8"
    code.metadata["doc_type"] = "loi"
    assert not merge_passages([code])[0].text.startswith("###")


def test_the_request_s_list_of_what_to_tell_given_back_is_marked(
    settings: Settings, templates: Templates
) -> None:
    """M01 (session 32) gave the agent's list of what to tell as the letter's own sentence,
    with no instruction verb in it. The facts the request gives may be restated."""
    from assistant.structure import restated_questions

    request = (
        "Faire un courrier à BRL : le conseil a accepté la convention pour le passage de leurs "
        "canalisations d'eau brute dans nos terrains de Grammont. Leur dire ce que la convention "
        "régularise et autorise, sur quelle longueur en tout, si la Ville demande une "
        "indemnité, et comment se fera la publication de l'acte."
    )
    echo = (
        "La ville demande ce que la convention régularise et autorise, sur quelle longueur en "
        "tout, si la Ville demande une indemnité, et comment se fera la publication de l'acte."
    )
    assert restated_questions(f"La servitude est gratuite. {echo}", request) == echo
    fact = (
        "Le conseil a accepté la convention pour le passage de vos canalisations d'eau brute "
        "dans nos terrains de Grammont."
    )
    assert restated_questions(fact, request) == ""
    # One indirect question in a copied run of ten words is a topic, not the list.
    assert not restated_questions(
        "Nous pouvons leur dire ce que la convention régularise et autorise, sur le terrain.",
        request,
    )
    assert restated_questions(
        "Nous pouvons leur dire ce que la convention régularise et autorise, sur quelle longueur.",
        request,
    )
    hit = make_hit(1, "La convention est consentie à titre gratuit sur 840 mètres.")
    reply = letter_json(([1], f"La convention est consentie à titre gratuit. {echo}"))
    svc = DraftingService(settings, FakeChatModel(reply), FakeRetriever([hit]), templates, None)
    draft = svc.draft(
        DraftRequest(request, "courrier", fields={"destinataire": "BRL", "objet": "Convention"})
    )
    assert "« La ville demande ce… » reprend la consigne de la demande" in draft.answer


def test_the_agent_s_instruction_given_back_as_the_letter_s_words_is_marked(
    settings: Settings, templates: Templates
) -> None:
    """H02 opened its letter to the notary with the agent's instruction turned into the
    notary's duty; issue 10's letter asked its recipient « de rappeler les conditions ». Such a
    sentence is marked to be rewritten; the author's own « Je vous informe que… » is not."""
    from assistant.structure import restated_instruction

    request = (
        "Répondre au notaire qui a adressé la déclaration de cession d'un fonds de commerce : "
        "indiquer le délai dont dispose la commune pour exercer son droit de préemption."
    )
    restated = "Le notaire doit indiquer le délai dont dispose la commune pour exercer son droit."
    assert restated_instruction(f"{restated} Ce délai est de 2 mois.", [request]) == restated
    told = (
        "Informer Mme Alves que le maire a saisi le procureur de la République au sujet de "
        "leur dossier de mariage."
    )
    mine = "Je vous informe que le maire a saisi le procureur de la République de votre dossier."
    assert restated_instruction(mine, [told]) == ""
    # The gerund the agent wrote (L03, session 29) is an instruction too.
    notify = (
        "Notifier à l'association la décision du conseil sur sa demande de subvention, en "
        "rappelant ce qu'elle avait demandé et à quelle condition la somme sera versée."
    )
    echo = "La somme sera versée en rappelant ce qu'elle avait demandé et à quelle condition."
    assert restated_instruction(f"La subvention de 40 000 € est accordée. {echo}", [notify]) == (
        echo
    )
    # The instruction turned into a request to the reader, with the agent's own date (L02,
    # session 30); a date the agent did not give is the letter's.
    deed = (
        "Écrire à l'étude notariale de Baillargues pour lancer la rédaction de l'acte de vente "
        "du délaissé de voirie voté au conseil du 22 mai."
    )
    asked = (
        "Je vous prie d'écrire à l'étude notariale de Baillargues pour lancer la rédaction de "
        "l'acte de vente du délaissé de voirie voté au conseil du 22 mai."
    )
    assert restated_instruction(asked, [deed]) == asked
    assert not restated_instruction(asked.replace("22 mai", "3 juin"), [deed])
    # « Leur dire ce que… » given back as what the council asked of the reader (M01, session
    # 31); « c'est-à-dire » is no instruction.
    brl = (
        "Faire un courrier à BRL : le conseil a accepté la convention. Leur dire ce que la "
        "convention régularise et autorise, si la Ville demande une indemnité, et comment se "
        "fera la publication de l'acte.",
        "Monsieur le Directeur de la société BRL",
    )
    said = (
        "Le conseil municipal a également demandé à Monsieur le Directeur de la société BRL de "
        "dire ce que la convention régularise et autorise, et comment se fera la publication "
        "de l'acte."
    )
    assert restated_instruction(f"La servitude est gratuite. {said}", brl) == said
    that_is = "La convention régularise, c'est-à-dire autorise, la publication de l'acte."
    assert not restated_instruction(that_is, brl)
    # A sentence about sending the letter is the task whatever its verb (C01, session 31);
    # the author's own conjugated « Je vous adresse ce courrier… » is not.
    terraces = (
        "Répondre au président de l'association des commerçants qui demande les conditions pour "
        "installer des terrasses sur le trottoir.",
        "Monsieur le Président de l'association des commerçants du centre",
    )
    send = (
        "Vous devez envoyer un courrier à Monsieur le Président de l'association des "
        "commerçants qui demande les conditions pour installer des terrasses sur le trottoir."
    )
    assert restated_instruction(f"Une AOT est requise. {send}", terraces) == send
    purpose = (
        "Je vous adresse ce courrier pour vous rappeler les conditions pour installer des "
        "terrasses sur le trottoir."
    )
    assert not restated_instruction(purpose, terraces)
    # Words that are not mostly the agent's, whatever the verb, are the letter's own.
    assert not restated_instruction("Il faut indiquer le délai de 2 mois de la commune.", [request])
    assert not restated_instruction(
        "Vous devez indiquer vos nom, prénoms et date de naissance au greffe.", [request]
    )
    # Through the service: the mark is in the draft, counted with the checks.
    hit = make_hit(1, "La commune dispose de 2 mois pour exercer son droit de préemption.")
    reply = json.dumps(
        {"paragraphes": [{"sources": [1], "texte": f"{restated} Ce délai est de 2 mois."}]},
        ensure_ascii=False,
    )
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever([hit], 0.3), templates, None
    )
    draft = svc.draft(DraftRequest(request, "courrier", fields={"destinataire": "Maître Dubois"}))
    assert "reprend la consigne de la demande : à réécrire" in draft.answer
    assert any(c["type"] == "demande" for c in draft.checks)


def test_an_act_deciding_the_other_way_from_its_request_is_marked(
    settings: Settings, templates: Templates
) -> None:
    """H05: asked for an arrêté opposing a déclaration préalable, the model wrote « Article 1er :
    Le Maire autorise le remplacement de ses volets… ». The first article's decision is read
    against the request's; the other way round is marked, a negation or the same way is not."""
    from assistant.structure import contrary_decision

    opposing = [
        "Arrêté du maire s'opposant à la déclaration préalable de travaux de M. Girard.",
        "Opposition à une déclaration préalable de travaux",
    ]
    assert contrary_decision("Le Maire autorise le remplacement des volets.", opposing) == (
        "autorise"
    )
    assert contrary_decision("Il est fait opposition à la déclaration préalable.", opposing) == ""
    assert contrary_decision("Le Maire n'autorise pas le remplacement des volets.", opposing) == ""
    granting = ["Arrêté du maire autorisant un restaurant à occuper le trottoir."]
    assert (
        contrary_decision("La terrasse est autorisée du 1er avril au 30 septembre.", granting) == ""
    )
    assert contrary_decision("La demande de terrasse est refusée.", granting) == "refusée"
    # A request that neither grants nor refuses (a delegation) says nothing.
    assert contrary_decision("Le maire refuse la délégation.", ["Délégation de signature"]) == ""
    # Through the service: the mark is in the article, counted with the checks.
    hit = make_hit(1, "Le maire peut s'opposer à une déclaration préalable non conforme au PLU.")
    reply = json.dumps(
        {
            "visas": [],
            "considerants": [{"sources": [1], "texte": "les volets ne sont pas conformes au PLU"}],
            "articles": [{"sources": [1], "texte": "Le Maire autorise le remplacement."}],
        },
        ensure_ascii=False,
    )
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever([hit], 0.3), templates, None
    )
    draft = svc.draft(DraftRequest(opposing[0], "arrete", fields={"objet": opposing[1]}))
    assert "« autorise » : la demande décide l'inverse ; à corriger" in draft.answer
    assert any(c["type"] == "decision" for c in draft.checks)


def test_a_document_whose_title_states_the_request_s_subject_is_not_crowded_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """K13 asked how the commission d'appel d'offres is made up. The délibération titled
    « commission appel offres election » holds « 5 membres titulaires et 5 membres
    suppléants », but the code's chapter on the council, whose lines share as many of the
    request's words, took the room. The request's terms in a document's title now count for
    each of its lines: the documents are weighed by what their title is about, the order
    inside one document stays."""
    from assistant import evidence
    from assistant.evidence import clean_lines, ranked_lines, share_evidence

    code = clean_lines(
        "Les commissions d'appel d'offres du conseil municipal respectent la représentation "
        "proportionnelle.",
        title="Le conseil municipal",
    )
    deliberation = clean_lines(
        "Elle est présidée de droit par le maire.\n"
        "Elle est composée de 5 membres titulaires et 5 membres suppléants.",
        title="Commission d'appel d'offres : élection des membres",
    )
    query = "Comment est composée la commission d'appel d'offres de la ville ?"

    def words(text: str) -> int:
        return len(text.split())

    shown = share_evidence([code, deliberation], query, 20, words)
    assert shown == ["", "\n".join(line.text for line in deliberation)]
    # The order inside one document does not change.
    untitled = [replace(line, title="") for line in deliberation]
    assert ranked_lines(untitled, query)[0][1] == ranked_lines(deliberation, query)[0][1] == 1
    # Without the title's weight, the code's line takes the room.
    monkeypatch.setattr(evidence, "TITLE_WEIGHT", 0.0)
    shown = share_evidence([code, deliberation], query, 20, words)
    assert shown[1] == "" and "commissions d'appel d'offres" in shown[0]


def test_an_article_where_the_author_decides_about_itself_is_marked(
    settings: Settings, templates: Templates
) -> None:
    """A03 « Le Maire autorise Monsieur le Maire pour … être remplacé » and H06 « Le Maire
    autorise le maire de fixer, par arrêté municipal, … »: the grammar made the article open
    with a decision and the model put the rule it read after it. Such an article is marked;
    a decision addressed to another (« le Maire », « le maire-adjoint ») is not."""
    from assistant.structure import self_decided

    assert self_decided("Le Maire autorise Monsieur le Maire pour la plénitude.") == (
        "Le Maire autorise Monsieur le Maire"
    )
    assert self_decided("Le Conseil municipal donne au Conseil municipal acte.") != ""
    assert self_decided("Le Conseil municipal autorise le Maire à signer la convention.") == ""
    assert self_decided("Le Maire délègue au maire-adjoint la signature des actes.") == ""
    assert self_decided("Le Maire réglemente la présentation des déchets.") == ""
    hit = make_hit(1, "Le maire peut fixer par arrêté les modes de collectes sélectives.")
    reply = json.dumps(
        {
            "visas": [],
            "considerants": [
                {"sources": [1], "texte": "la collecte sélective doit être organisée"}
            ],
            "articles": [
                {"sources": [1], "texte": "Le Maire réglemente la présentation des déchets."},
                {"sources": [1], "texte": "Le Maire autorise le maire de fixer les collectes."},
            ],
        },
        ensure_ascii=False,
    )
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever([hit], 0.3), templates, None
    )
    draft = svc.draft(DraftRequest("Arrêté sur la collecte des déchets", "arrete"))
    assert draft.answer.count("décision adressée à son propre auteur") == 1
    assert "« Le Maire autorise le maire » : décision adressée" in draft.answer
    assert any(c["type"] == "decision" for c in draft.checks)


def test_an_act_that_speaks_of_itself_or_restates_the_request_is_marked(
    settings: Settings, templates: Templates
) -> None:
    """L04 « Considérant que la délibération demande la création d'une commission… », L05
    « Considérant que la délibération concerne la participation de la Ville… » and its « Article
    1er : Le Conseil municipal décide de préparer la délibération qui reconduit… » (the agent's
    « Préparer la délibération qui reconduit… », session 29): no motive, no decision. Each is
    marked; a considérant naming another act or the resident's request is not."""
    from assistant.structure import about_itself

    assert about_itself("que la délibération demande la création d'une commission") != ""
    assert about_itself("que le présent arrêté a pour objet de réglementer le bruit") != ""
    assert about_itself("que la délibération est basée sur le texte du déclassement") != ""  # M04
    assert about_itself("que la délibération du 24 avril 2014 a créé la commission") == ""
    assert about_itself("que la demande de M. Girard porte sur des volets en PVC") == ""
    request = (
        "Préparer la délibération qui reconduit cet été l'aide de la Ville aux familles pour "
        "les séjours de vacances de leurs enfants."
    )
    hit = make_hit(1, "La participation de la Ville est plafonnée à 45 € par jour de séjour.")
    reply = json.dumps(
        {
            "visas": [],
            "considerants": [
                {"sources": [1], "texte": "la délibération concerne les séjours de vacances"},
                {"sources": [1], "texte": "la participation est plafonnée à 45 € par jour"},
            ],
            "articles": [
                {
                    "sources": [1],
                    "texte": "Le Conseil municipal décide de préparer la délibération qui "
                    "reconduit cet été l'aide de la Ville aux familles pour les séjours.",
                },
                {"sources": [1], "texte": "La participation est fixée à 45 € par jour."},
            ],
        },
        ensure_ascii=False,
    )
    svc = DraftingService(
        settings, FakeChatModel(reply), FakeRetriever([hit], 0.3), templates, None
    )
    draft = svc.draft(DraftRequest(request, "deliberation", fields={"objet": "Séjours"}))
    body = draft.answer
    assert "« la délibération concerne » : parle de l'acte" in body
    assert body.count("parle de l'acte") == 1
    assert body.count("reprend la consigne de la demande") == 1
    assert "fixée à 45 € par jour [1]." in body
    assert {c["type"] for c in draft.checks} >= {"motif", "demande"}


def test_a_table_row_whose_bracket_holds_the_request_s_amount_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """L14 (session 29): « combien lui coûtera un repas … avec un quotient familial de 400 € »;
    the tariff's row « Q 6: de 336 € à 458 € 3,21 € 3,55 € » shares no word with the request,
    and the table's headers and another passage's lines took the room."""
    from assistant import evidence
    from assistant.evidence import in_bracket

    assert in_bracket("Q 6: de 336 € à 458 € 3,21 € 3,55 €", [400])
    assert not in_bracket("Q 5: de 231 € à 335 € 3,13 € 3,40 €", [400])
    assert in_bracket("entre 1 000 € et 1 500 € de revenus", [1200])
    lines = clean_lines(
        "Quotient familial 2014 Ecole Maternelle Ecole Elémentaire\n"
        "Q 5: de 231 € à 335 € 3,13 € 3,40 €\n"
        "Q 6: de 336 € à 458 € 3,21 € 3,55 €\n"
        "Q 7: de 459 € à 600 € 3,30 € 3,62 €\n"
    )
    other = clean_lines(
        "Le tarif des repas de la cantine dépend du quotient familial de la famille.\n"
        "Les enfants des écoles maternelles et élémentaires déjeunent au restaurant scolaire.\n"
    )
    query = "tarif d'un repas à la cantine avec un quotient familial de 400 €"
    words = lambda text: len(text.split())  # noqa: E731
    shown = share_evidence([other, lines], query, 40, words)
    assert "Q 6: de 336 € à 458 €" in shown[1] and "Q 5" not in shown[1]
    monkeypatch.setattr(evidence, "BRACKET_WEIGHT", 0.0)
    assert "Q 6" not in share_evidence([other, lines], query, 40, words)[1]
