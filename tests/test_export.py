"""Drafts to DOCX / ODT / text, laid out per document type, re-opened to check their content."""

from __future__ import annotations

from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from odf import teletype
from odf.opendocument import load as load_odt
from odf.style import Footer
from odf.text import P

from assistant.drafting import Citation, Draft, DraftRequest, cited_excerpt
from assistant.export import (
    citation_numbers,
    draft_to_docx,
    draft_to_odt,
    draft_to_text,
    french_date,
    layout,
)

TODAY = date(2025, 3, 1)

SOURCES = [
    Citation(1, "cgct/L2121.pdf", 12, "Titre II > Article L2121-29", "Code général (extrait)",
             "Le conseil municipal règle par ses délibérations les affaires de la commune.",
             "exemple"),
    Citation(2, "deliberations/2014-131.pdf", 2, "", "Délibération n° 2014/131",
             "Les tarifs de la restauration scolaire sont révisés chaque année.", "exemple"),
    Citation(3, "divers/plan.pdf", 1, "", "Plan local", "Passage jamais cité.", "exemple"),
]  # fmt: skip

LETTER = """Mairie de Saint-Martin, service population
[Lieu], le [date]

Madame Jeanne Martin

Objet : Horaires de la déchetterie

Madame,

Vous avez demandé les horaires de la déchetterie [1].

La carte d'accès est délivrée sur présentation d'un justificatif [2].

Je vous prie d'agréer, Madame, l'expression de mes salutations distinguées.

Le Maire,
[Nom du signataire]
— Projet rédigé avec l'aide d'un assistant d'IA ; à vérifier avant toute diffusion."""

DELIBERATION = """EXTRAIT DU REGISTRE DES DÉLIBÉRATIONS DU CONSEIL MUNICIPAL
Objet : tarifs
Rapporteur : Mme Durand

Le Conseil municipal,

Vu le code général des collectivités territoriales, notamment son article L. 2121-29 [1] ;
Vu la délibération n° 2014/131 [2] ;

Considérant que les tarifs doivent être révisés chaque année [2] ;

Après en avoir délibéré,

DÉCIDE :

**Article 1er** : Le prix du repas est fixé à 3,20 euros.
Article 2 : Monsieur le Maire est chargé de l'exécution de la présente délibération.

Fait et délibéré les jour, mois et an susdits.
Le Maire,
[Nom]"""


def make(doc_type: str, answer: str, fields: dict[str, str] | None = None) -> Draft:
    request = DraftRequest("demande", doc_type=doc_type, fields=fields or {})
    numbers = set(citation_numbers(answer))
    return Draft(
        id="d0001",
        request=request,
        answer=answer,
        abstained=False,
        citations=[c for c in SOURCES if c.n in numbers],
        unused_sources=[c for c in SOURCES if c.n not in numbers],
        invalid_citations=[],
        model="smollm2-135m",
        timings={},
    )


def kinds(draft: Draft) -> list[str]:
    return [b.kind for b in layout(draft, today=TODAY)]


def test_letter_fields_win_and_header_is_not_repeated() -> None:
    draft = make(
        "courrier",
        LETTER,
        {
            "destinataire": "Madame Jeanne Martin\n12 rue des Lilas",
            "objet": "Déchetterie",
            "lieu": "Saint-Martin",
        },
    )
    blocks = layout(draft, today=TODAY)
    by_kind = {b.kind: b.text for b in blocks}
    assert by_kind["sender"] == "Mairie de Saint-Martin, service population"
    assert by_kind["recipient"] == "Madame Jeanne Martin\n12 rue des Lilas"
    assert by_kind["place_date"] == "À Saint-Martin, le 1er mars 2025"
    assert by_kind["subject"] == "Objet : Déchetterie"
    assert by_kind["signature"] == "Le Maire,\n[Nom du signataire]"
    body = [b.text for b in blocks if b.kind == "paragraph"]
    assert body[0] == "Madame,"
    assert not any("Objet" in t or "[Lieu]" in t or "assistant d'IA" in t for t in body)
    assert kinds(draft)[-5:] == [
        "annex_title", "annex_item", "annex_excerpt", "annex_item", "annex_excerpt",
    ]  # fmt: skip


def test_a_signatory_service_written_by_the_footer_is_the_signature_once() -> None:
    answer = (
        "Objet : Acte de naissance\n\nMonsieur,\n\nNous vous remercions [1].\n\n"
        "Nous vous prions d'agréer, Monsieur, l'expression de nos salutations distinguées.\n\n"
        "Le service de l'état civil"
    )
    fields = {"usager": "M. Paul Bernard", "signataire": "Le service de l'état civil"}
    blocks = layout(make("reponse_usager", answer, fields), today=TODAY)
    texts = [b.text for b in blocks]
    assert texts.count("Le service de l'état civil") == 1
    assert blocks[texts.index("Le service de l'état civil")].kind == "signature"


def test_deliberation_visas_considerants_decision_articles() -> None:
    draft = make("deliberation", DELIBERATION, {"objet": "Tarifs de la cantine"})
    blocks = layout(draft, today=TODAY)
    assert blocks[0].kind == "title" and blocks[0].text.startswith("EXTRAIT DU REGISTRE")
    assert blocks[1].text == "Objet : Tarifs de la cantine"  # the field wins over "tarifs"
    seq = [b.kind for b in blocks]
    assert seq.count("visa") == 2 and seq.count("considerant") == 1
    assert seq.index("visa") < seq.index("considerant") < seq.index("decision")
    assert seq.index("decision") < seq.index("article")
    articles = [b.text for b in blocks if b.kind == "article"]
    assert articles == ["Article 1er", "Article 2"]
    assert blocks[seq.index("article") + 1].text == "Le prix du repas est fixé à 3,20 euros."
    assert [b.text for b in blocks if b.kind == "place_date"] == [
        "Fait et délibéré les jour, mois et an susdits."
    ]


def test_arrete_without_header_gets_title_place_and_signature() -> None:
    draft = make(
        "arrete",
        "Vu le code [1] ;\nConsidérant l'urgence ;\nARRÊTE\nArticle 1 - La rue est fermée.",
        {"objet": "Fermeture de la rue", "lieu": "Lyon", "signataire": "Le Maire,\nJean Dupont"},
    )
    blocks = layout(draft, today=TODAY)
    assert blocks[0].text == "ARRÊTÉ"
    seq = [b.kind for b in blocks]
    assert seq[:7] == [
        "title",
        "subject",
        "visa",
        "considerant",
        "decision",
        "article",
        "paragraph",
    ]
    assert {b.kind: b.text for b in blocks}["place_date"] == "Fait à Lyon, le 1er mars 2025"
    assert {b.kind: b.text for b in blocks}["signature"] == "Le Maire,\nJean Dupont"


def test_note_numbered_headings_and_bullets() -> None:
    answer = (
        "NOTE À L'ATTENTION DE M. le DGS\nObjet : quorum\n\n1. Contexte\nLe quorum [1].\n"
        "- point [2]"
    )
    blocks = layout(make("note", answer, {"objet": "Quorum"}), today=TODAY)
    assert [b.kind for b in blocks[:5]] == ["title", "subject", "heading", "paragraph", "bullet"]


def test_annex_lists_only_sources_still_cited_after_editing() -> None:
    draft = make("question", "Réponse [2].")
    items = [b.text for b in layout(draft) if b.kind == "annex_item"]
    assert len(items) == 1 and items[0].startswith("[2] Délibération n° 2014/131")
    assert "page 2" in items[0]
    none = [b.text for b in layout(make("question", "Sans source."))]
    assert "Aucune source n'est citée dans ce brouillon." in none


QUORUM_SOURCE = Citation(
    1, "reglement_interieur.pdf", 2, "", "Règlement intérieur du conseil municipal",
    "[…]\nArticle 10 – Présidence\nLe maire, et à défaut celui qui le remplace, préside le "
    "conseil municipal.\nArticle 11 – Quorum\nLe conseil municipal ne délibère valablement que "
    "lorsque la majorité de ses membres en exercice est présente, soit quatorze conseillers.\n"
    "[…]\nUn même conseiller ne peut être porteur que d'un seul pouvoir.\n[…]",
    "exemple",
)  # fmt: skip


def test_a_cited_source_shows_the_lines_its_paragraphs_restate() -> None:
    """The demo's first answer showed its source's start (« Article 10 – Présidence… »), not
    the line that backs « quatorze membres »."""
    answer = "Le quorum du conseil municipal est de quatorze membres [1].\n\n— Projet…"
    excerpt = cited_excerpt(answer, QUORUM_SOURCE, 160)
    assert excerpt.startswith("[…] Le conseil municipal ne délibère valablement")
    assert "quatorze conseillers" in excerpt and "Présidence" not in excerpt
    assert len(excerpt) <= 160 + len(" […]")
    # Another paragraph, another line; no paragraph citing it: the source's start.
    other = cited_excerpt("Un seul pouvoir par conseiller [1].", QUORUM_SOURCE, 160)
    assert "seul pouvoir" in other and "quatorze" not in other
    # A line sharing one word with a paragraph that restates another line well is left out.
    answer2 = "La majorité des membres en exercice, soit quatorze conseillers, ou leur pouvoir [1]."
    wide = cited_excerpt(answer2, QUORUM_SOURCE, 400)
    assert "quatorze conseillers" in wide and "seul pouvoir" not in wide
    start = cited_excerpt("Sans rapport [2].", QUORUM_SOURCE, 60)
    assert start.startswith("[…] Article 10 – Présidence") and len(start) <= 60
    # The export's annex carries the same lines.
    draft = Draft(
        id="q1", request=DraftRequest("Quorum ?", "question"), answer=answer,
        abstained=False, citations=[QUORUM_SOURCE], unused_sources=[], invalid_citations=[],
        model="m", timings={},
    )  # fmt: skip
    annex = [b.text for b in layout(draft) if b.kind == "annex_excerpt"]
    assert annex == [f"« {cited_excerpt(answer, QUORUM_SOURCE, 400)} »"]
    assert "quatorze conseillers" in annex[0]


def test_docx_round_trip(tmp_path: Path) -> None:
    draft = make(
        "courrier", LETTER, {"destinataire": "Madame Jeanne Martin", "objet": "Déchetterie"}
    )
    path = tmp_path / "lettre.docx"
    draft_to_docx(draft, path, today=TODAY)
    doc = Document(str(path))
    texts = [p.text for p in doc.paragraphs]
    assert texts.index("Madame Jeanne Martin") < texts.index("Objet : Déchetterie")
    assert texts.index("Objet : Déchetterie") < texts.index("Madame,")
    recipient = doc.paragraphs[texts.index("Madame Jeanne Martin")]
    assert recipient.paragraph_format.left_indent is not None
    assert recipient.paragraph_format.left_indent.cm > 5  # address block on the right
    assert any(r.bold for r in doc.paragraphs[texts.index("Objet : Déchetterie")].runs)
    assert "Annexe — Sources utilisées" in texts
    assert any(t.startswith("[1] Code général (extrait)") for t in texts)
    footer = doc.sections[0].footer.paragraphs[0].text
    assert "assistant d'intelligence artificielle" in footer and "d0001" in footer
    assert doc.core_properties.title == "Courrier — Déchetterie"


def test_docx_deliberation_centres_the_decision() -> None:
    buffer = BytesIO()
    draft_to_docx(make("deliberation", DELIBERATION), buffer, today=TODAY)
    doc = Document(BytesIO(buffer.getvalue()))
    decision = next(p for p in doc.paragraphs if p.text == "DÉCIDE :")
    assert decision.alignment == WD_ALIGN_PARAGRAPH.CENTER
    article = next(p for p in doc.paragraphs if p.text == "Article 1er")
    assert article.runs[0].bold


def test_odt_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deliberation.odt"
    draft_to_odt(make("deliberation", DELIBERATION, {"objet": "Tarifs"}), path, today=TODAY)
    doc = load_odt(str(path))
    paragraphs = [teletype.extractText(p) for p in doc.text.getElementsByType(P)]
    assert paragraphs[0].startswith("EXTRAIT DU REGISTRE")
    assert "Objet : Tarifs" in paragraphs
    assert "DÉCIDE :" in paragraphs
    assert paragraphs.index("Article 1er") < paragraphs.index("Article 2")
    assert "Annexe — Sources utilisées" in paragraphs
    assert any(p.startswith("[2] Délibération n° 2014/131") for p in paragraphs)
    styles = {
        teletype.extractText(p): p.getAttribute("stylename") for p in doc.text.getElementsByType(P)
    }
    assert styles["DÉCIDE :"] == "Decision"
    footers = [teletype.extractText(f) for f in doc.masterstyles.getElementsByType(Footer)]
    assert any("assistant d'intelligence artificielle" in f for f in footers)


def test_text_for_clipboard_has_layout_sources_and_mention() -> None:
    text = draft_to_text(
        make("courrier", LETTER, {"destinataire": "Mme Martin", "objet": "Déchetterie"}),
        today=TODAY,
    )
    assert text.index("Objet : Déchetterie") < text.index("Madame,") < text.index("Le Maire,")
    assert "ANNEXE — SOURCES UTILISÉES" in text
    assert text.rstrip().endswith("avant toute signature.")
    assert "**" not in text


@pytest.mark.parametrize(
    ("day", "expected"), [(date(2025, 3, 1), "1er mars 2025"), (date(2024, 8, 15), "15 août 2024")]
)
def test_french_date(day: date, expected: str) -> None:
    assert french_date(day) == expected


def test_citation_numbers_groups_and_order() -> None:
    assert citation_numbers("a [3] b [1, 2] c [3] [10;4]") == [3, 1, 2, 10, 4]
