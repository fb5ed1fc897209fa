"""Small files of every kind a town hall produces, built at test time (issue 12).

Each writer returns the path it wrote; ``EXPECTED`` and ``UNWANTED`` list, per file, the text a
reader sees (must be indexed) and the text a reader does not see (must not be). DOCX and ODT
are written as raw package XML (so that content controls, revisions, fields, text boxes and
annotations are exactly those Word and LibreOffice write); PDFs with reportlab.
"""

from __future__ import annotations

import base64
import os
import random
import zipfile
from pathlib import Path

# --------------------------------------------------------------------------------------------
# DOCX

_W_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" '
    'mc:Ignorable="w14"'
)


def _r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _p(*runs: str, style: str | None = None) -> str:
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{props}{''.join(runs)}</w:p>"


def _textbox(text: str) -> str:
    """A text box as Word 2010+ writes it: DrawingML in mc:Choice, the VML copy in Fallback."""
    inner = f"<w:txbxContent>{_p(_r(text))}</w:txbxContent>"
    return (
        "<w:r><mc:AlternateContent><mc:Choice Requires=\"wps\"><w:drawing><wp:anchor>"
        "<a:graphic><a:graphicData uri=\"http://schemas.microsoft.com/office/word/2010/"
        f"wordprocessingShape\"><wps:wsp><wps:txbx>{inner}</wps:txbx></wps:wsp></a:graphicData>"
        "</a:graphic></wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape>"
        f"<v:textbox>{inner}</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent>"
        "</w:r>"
    )


DOCX_EXPECTED = [
    "Arrêté municipal n° 2025-117 du 20 mai 2025",
    "Article 1er : la circulation des poids lourds est interdite rue des Tilleuls",
    "est fixé à 3,45 euros à compter du 1er juillet",
    "La gratuité s'applique aux enfants de moins de douze ans",
    "Le stationnement alterné est institué",
    "Signé par Mme Hortense Dupont-Valmy",
    "Service de l'urbanisme réglementaire",
    "Encadré : permanence du maire le samedi matin",
    "Le présent arrêté sera affiché en mairie et publié",
    "Tarif horodateur | 1,20 euro",
    "Avenue du Général-Leclerc",
    "Note : arrêté transmis au contrôle de légalité",
    "Commune de Saint-Aubin-sur-Loire",
    "Lien vers le registre des arrêtés",
    "Arrêté pris en vertu de l'article L. 2213-1",
    "Art. 1 – Les riverains disposent d'un macaron",
    "Art. 2 – Les livraisons sont autorisées avant 10 h",
    "a) les véhicules de secours",
    "Annexe importée : plan de circulation du centre-bourg",
    "Étape SmartArt : dépôt de la demande en mairie",
]
DOCX_UNWANTED = [
    "3,10",
    "Ancienne clause abrogée",
    "clause déplacée ancienne place",
    "MERGEFIELD",
    "DOCPROPERTY",
    "Commentaire du relecteur",
    "Texte masqué confidentiel",
    "Cliquez ici pour taper du texte",
    "Sommaire généré",
    "annexeScript",
]


def _numbered(text: str, level: int) -> str:
    return (f'<w:p><w:pPr><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="5"/></w:numPr>'
            f"</w:pPr>{_r(text)}</w:p>")


_NUMBERING = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<w:numbering {_W_NS}><w:abstractNum w:abstractNumId="2">'
    '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/>'
    '<w:lvlText w:val="Art. %1 –"/></w:lvl>'
    '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/>'
    '<w:lvlText w:val="%2)"/></w:lvl></w:abstractNum>'
    '<w:num w:numId="5"><w:abstractNumId w:val="2"/></w:num></w:numbering>'
)


def _docx_parts() -> dict[str, str]:
    body = "".join([
        _p(_r("Arrêté municipal portant réglementation de la circulation"), style="Heading1"),
        # inline content control holding the act number
        _p(_r("Arrêté municipal n° "),
           '<w:sdt><w:sdtPr><w:alias w:val="Numéro"/></w:sdtPr><w:sdtContent>'
           + _r("2025-117") + "</w:sdtContent></w:sdt>", _r(" du 20 mai 2025.")),
        # a generated table of contents (complex TOC field over two paragraphs)
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space='
        '"preserve"> TOC \\o "1-3" </w:instrText></w:r><w:r><w:fldChar w:fldCharType='
        '"separate"/></w:r>' + _r("Sommaire généré Article 1 ...... 3") + "</w:p>",
        '<w:p>' + _r("Sommaire généré Article 2 ...... 4")
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>',
        _p(_r("ARRÊTE :")),
        # block-level content control holding the operative article
        "<w:sdt><w:sdtPr><w:tag w:val=\"article\"/></w:sdtPr><w:sdtContent>"
        + _p(_r("Article 1er : la circulation des poids lourds est interdite rue des Tilleuls."))
        + "</w:sdtContent></w:sdt>",
        # placeholder still showing in a control
        "<w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent>"
        + _p(_r("Cliquez ici pour taper du texte.")) + "</w:sdtContent></w:sdt>",
        # tracked changes: price deleted and inserted
        _p(_r("Le tarif de stationnement est fixé à "),
           '<w:del w:id="1" w:author="A"><w:r><w:delText>3,10</w:delText></w:r></w:del>',
           '<w:ins w:id="2" w:author="A">' + _r("3,45") + "</w:ins>",
           _r(" euros à compter du 1er juillet.")),
        # a whole inserted paragraph
        '<w:p><w:pPr><w:rPr><w:ins w:id="3" w:author="A"/></w:rPr></w:pPr><w:ins w:id="4" '
        'w:author="A">' + _r("La gratuité s'applique aux enfants de moins de douze ans.")
        + "</w:ins></w:p>",
        # a whole deleted paragraph (its mark deleted too)
        '<w:p><w:pPr><w:rPr><w:del w:id="5" w:author="A"/></w:rPr></w:pPr><w:del w:id="6" '
        'w:author="A"><w:r><w:delText>Ancienne clause abrogée zanzibar.</w:delText></w:r>'
        "</w:del></w:p>",
        # a move: moveFrom out, moveTo in
        _p('<w:moveFrom w:id="7" w:author="A">' + _r("clause déplacée ancienne place")
           + "</w:moveFrom>", _r("Le stationnement alterné est institué.")),
        # complex field: code out, result in; simple field: result in
        _p(_r("Signé par "), '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
           '<w:r><w:instrText xml:space="preserve"> MERGEFIELD NomMaire </w:instrText></w:r>'
           '<w:r><w:fldChar w:fldCharType="separate"/></w:r>',
           _r("Mme Hortense Dupont-Valmy"), '<w:r><w:fldChar w:fldCharType="end"/></w:r>'),
        _p('<w:fldSimple w:instr=" DOCPROPERTY Service ">'
           + _r("Service de l'urbanisme réglementaire") + "</w:fldSimple>"),
        # text box (DrawingML + VML fallback: once), smart tag, customXml, hyperlink
        _p(_r("Voir l'encadré."), _textbox("Encadré : permanence du maire le samedi matin.")),
        _p('<w:smartTag w:uri="urn:schemas-microsoft-com:office:smarttags" w:element="address">'
           + _r("Avenue du Général") + "</w:smartTag>",
           '<w:r><w:noBreakHyphen/></w:r>',
           '<w:customXml w:element="rue">' + _r("Leclerc") + "</w:customXml>", _r(".")),
        _p('<w:hyperlink r:id="rIdLink">' + _r("Lien vers le registre des arrêtés")
           + "</w:hyperlink>"),
        # a comment, a hidden run and a footnote reference in a body paragraph
        _p('<w:commentRangeStart w:id="0"/>', _r("Le présent arrêté sera affiché en mairie"),
           '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r>',
           '<w:r><w:rPr><w:vanish/></w:rPr><w:t>Texte masqué confidentiel</w:t></w:r>',
           _r(" et publié."), '<w:r><w:footnoteReference w:id="1"/></w:r>'),
        # a table inside a content control, one row inside its own control
        "<w:sdt><w:sdtPr/><w:sdtContent><w:tbl><w:tr><w:tc>" + _p(_r("Tarif horodateur"))
        + "</w:tc><w:tc>" + _p(_r("1,20 euro")) + "</w:tc></w:tr><w:sdt><w:sdtContent><w:tr>"
        "<w:tc>" + _p(_r("Tarif résident")) + "</w:tc><w:tc>" + _p(_r("0,50 euro"))
        + "</w:tc></w:tr></w:sdtContent></w:sdt></w:tbl></w:sdtContent></w:sdt>",
        _p(_r("Arrêté pris en vertu de l'article L. 2213-1 du code général des collectivités "
              "territoriales.")),
        # automatic numbering (numbering.xml): the reader sees the labels
        _numbered("Les riverains disposent d'un macaron.", 0),
        _numbered("Les livraisons sont autorisées avant 10 h, sauf pour :", 0),
        _numbered("les véhicules de secours.", 1),
        '<w:altChunk r:id="rIdChunk"/>'
        '<w:sectPr><w:headerReference w:type="default" r:id="rIdHeader"/></w:sectPr>',
    ])
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/>'
        '<Relationship Id="rIdNumbering" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/numbering" Target="numbering.xml"/>'
        '<Relationship Id="rIdChunk" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/aFChunk" Target="annexe.html"/>'
        '<Relationship Id="rIdDgm" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/diagramData" Target="diagrams/data1.xml"/>'
        '<Relationship Id="rIdNotes" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/footnotes" Target="footnotes.xml"/>'
        '<Relationship Id="rIdComments" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/comments" Target="comments.xml"/>'
        '<Relationship Id="rIdHeader" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/header" Target="header1.xml"/>'
        '<Relationship Id="rIdLink" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/hyperlink" Target="https://example.invalid/registre" '
        'TargetMode="External"/></Relationships>'
    )
    ct = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    return {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Default Extension="html" ContentType="text/html"/>'
            f'<Override PartName="/word/document.xml" ContentType="{ct}.document.main+xml"/>'
            f'<Override PartName="/word/styles.xml" ContentType="{ct}.styles+xml"/>'
            f'<Override PartName="/word/numbering.xml" ContentType="{ct}.numbering+xml"/>'
            '<Override PartName="/word/diagrams/data1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.drawingml.diagramData+xml"/>'
            f'<Override PartName="/word/footnotes.xml" ContentType="{ct}.footnotes+xml"/>'
            f'<Override PartName="/word/comments.xml" ContentType="{ct}.comments+xml"/>'
            f'<Override PartName="/word/header1.xml" ContentType="{ct}.header+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/_rels/document.xml.rels": rels,
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<w:document {_W_NS}><w:body>{body}</w:body></w:document>"
        ),
        "word/numbering.xml": _NUMBERING,
        "word/diagrams/data1.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<dgm:dataModel xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram"'
            ' xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><dgm:ptLst>'
            '<dgm:pt modelId="1"><dgm:t><a:bodyPr/><a:p><a:r><a:t>Étape SmartArt : dépôt de la '
            "demande en mairie</a:t></a:r></a:p></dgm:t></dgm:pt></dgm:ptLst></dgm:dataModel>"
        ),
        "word/annexe.html": (
            "<html><body><p>Annexe importée : plan de circulation du centre-bourg.</p>"
            "<script>var annexeScript = 1;</script></body></html>"
        ),
        "word/styles.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<w:styles {_W_NS}><w:style w:type=\"paragraph\" w:styleId=\"Heading1\">"
            '<w:name w:val="heading 1"/></w:style></w:styles>'
        ),
        "word/footnotes.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:footnotes {_W_NS}><w:footnote w:type="separator" w:id="-1"><w:p><w:r>'
            '<w:separator/></w:r></w:p></w:footnote><w:footnote w:id="1">'
            + _p(_r("Note : arrêté transmis au contrôle de légalité."))
            + "</w:footnote></w:footnotes>"
        ),
        "word/comments.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:comments {_W_NS}><w:comment w:id="0" w:author="Relecteur">'
            + _p(_r("Commentaire du relecteur : vérifier la date zanzibar."))
            + "</w:comment></w:comments>"
        ),
        "word/header1.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f"<w:hdr {_W_NS}>" + _p(_r("Commune de Saint-Aubin-sur-Loire")) + _p(_r("Page 1"))
            + "</w:hdr>"
        ),
    }


def write_docx(folder: Path, name: str = "arrete_circulation.docx") -> Path:
    path = Path(folder) / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part, xml in _docx_parts().items():
            zf.writestr(part, xml)
    return path


# --------------------------------------------------------------------------------------------
# ODT

_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.2"'
)
ODT_EXPECTED = [
    "Le marché hebdomadaire se tient le samedi matin place de l'Église",
    "Les commerçants s'installent dès 7 h",
    "Note : arrêté du 3 mars 2025 relatif aux halles",
    "Tarif : 2 euros le mètre linéaire",
    "Encadré : badge obligatoire pour les exposants",
    "Mairie de Saint-Aubin-sur-Loire",
    "Le placier encaisse les droits de place",
    "Article 1 : Emplacements",
    "1. Les emplacements sont attribués par le placier",
    "2. Les abonnés sont prioritaires",
    "Article 2 : Horaires",
]
ODT_UNWANTED = [
    "mercredi",
    "Vérifier avec le placier",
    "Section masquée",
    "Table des matières générée",
]


def _odt_content() -> str:
    info = "<office:change-info><dc:creator>A</dc:creator><dc:date>2025-05-01T10:00:00</dc:date>"
    info += "</office:change-info>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<office:document-content {_ODF_NS}><office:automatic-styles>"
        '<text:list-style style:name="L1"><text:list-level-style-number text:level="1" '
        'style:num-suffix="." style:num-format="1"/></text:list-style></office:automatic-styles>'
        "<office:body><office:text>"
        "<text:tracked-changes>"
        f'<text:changed-region text:id="ct1"><text:deletion>{info}'
        "<text:p>le mercredi matin</text:p></text:deletion></text:changed-region>"
        f'<text:changed-region text:id="ct2"><text:insertion>{info}</text:insertion>'
        "</text:changed-region>"
        "</text:tracked-changes>"
        "<text:table-of-content text:name=\"toc\"><text:table-of-content-source/>"
        "<text:index-body><text:p>Table des matières générée Article 1 ..... 3</text:p>"
        "</text:index-body></text:table-of-content>"
        '<text:h text:outline-level="1">Règlement du marché</text:h>'
        "<text:p>Le marché hebdomadaire se tient "
        '<text:change text:change-id="ct1"/><text:change-start text:change-id="ct2"/>'
        'le samedi matin<text:change-end text:change-id="ct2"/> place de l\'Église.</text:p>'
        "<text:p>Les commerçants<office:annotation><dc:creator>Relecteur</dc:creator>"
        "<text:p>Vérifier avec le placier zanzibar</text:p></office:annotation>"
        " s'installent dès 7 h."
        '<text:note text:id="n1" text:note-class="footnote"><text:note-citation>1'
        "</text:note-citation><text:note-body><text:p>Note : arrêté du 3 mars 2025 relatif aux "
        "halles.</text:p></text:note-body></text:note></text:p>"
        '<text:p>Tarif :<text:s text:c="3"/>2 euros<text:tab/>le mètre<text:line-break/>'
        "linéaire.</text:p>"
        '<text:p><draw:frame draw:name="f1"><draw:text-box><text:p>Encadré : badge obligatoire '
        "pour les exposants.</text:p></draw:text-box></draw:frame></text:p>"
        '<text:section text:name="s1" text:display="none"><text:p>Section masquée</text:p>'
        "</text:section>"
        "<text:p>Le placier encaisse les droits de place.</text:p>"
        '<text:h text:outline-level="2">Emplacements</text:h>'
        '<text:list text:style-name="L1"><text:list-item><text:p>Les emplacements sont '
        "attribués par le placier.</text:p></text:list-item><text:list-item><text:p>Les abonnés "
        "sont prioritaires.</text:p></text:list-item></text:list>"
        '<text:h text:outline-level="2">Horaires</text:h>'
        "<text:p>Le marché ouvre à 7 h et ferme à 13 h.</text:p>"
        "</office:text></office:body></office:document-content>"
    )


def write_odt(folder: Path, name: str = "reglement_marche.odt") -> Path:
    styles = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<office:document-styles {_ODF_NS}><office:styles><text:outline-style "
        'style:name="Outline"><text:outline-level-style text:level="1" style:num-format=""/>'
        '<text:outline-level-style text:level="2" style:num-prefix="Article " '
        'style:num-suffix=" :" style:num-format="1"/></text:outline-style></office:styles>'
        "<office:master-styles>"
        '<style:master-page style:name="Standard"><style:header><text:p>Mairie de '
        "Saint-Aubin-sur-Loire</text:p></style:header><style:footer><text:p>1</text:p>"
        "</style:footer></style:master-page></office:master-styles></office:document-styles>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    path = Path(folder) / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.text",
                    compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", _odt_content(), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("styles.xml", styles, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


# --------------------------------------------------------------------------------------------
# HTML

HTML_FORM_EXPECTED = [
    "Les inscriptions à la cantine scolaire se font en mairie avant le 15 août",
    "Tarifs de la restauration scolaire",
]
HTML_ARTICLE_EXPECTED = [
    "Fermeture exceptionnelle de la piscine municipale",
    "La piscine sera fermée du 2 au 9 septembre pour vidange",
]
HTML_UNWANTED = [
    "__VIEWSTATE", "wEPDwUKMTY1", "MenuPrincipalAccueil", "BandeauCookiesRefuser",
    "var trackingQuinoa", "ContenuCacheAria", "TexteInvisibleDisplayNone", "ModeleTemplate",
    "PiedDePageMentions", "NoscriptActivez",
]


def write_html_form(folder: Path, name: str = "cantine.aspx.html") -> Path:
    """An ASP.NET WebForms page: the whole body inside <form id="aspnetForm">."""
    viewstate = base64.b64encode(random.Random(1).randbytes(600)).decode()
    html = f"""<!DOCTYPE html><html><head><title>Cantine scolaire</title>
<script>var trackingQuinoa = 1;</script></head>
<body><form name="aspnetForm" method="post" action="./cantine.aspx" id="aspnetForm">
<div class="aspNetHidden"><input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE"
 value="/wEPDwUKMTY1{viewstate}" /></div>
<div id="header"><ul class="menu"><li>MenuPrincipalAccueil</li></ul></div>
<nav>MenuPrincipalAccueil</nav>
<div id="contenu"><h1>Restauration scolaire</h1>
<p>Les inscriptions &agrave; la cantine scolaire se font en mairie avant le 15&nbsp;ao&ucirc;t.</p>
<h2>Tarifs de la restauration scolaire</h2><table><tr><td>Repas</td><td>3,20 &euro;</td></tr>
</table>
<div aria-hidden="true">ContenuCacheAria</div><p style="display: none">TexteInvisibleDisplayNone</p>
<template><p>ModeleTemplate</p></template><noscript>NoscriptActivez JavaScript</noscript>
<div hidden>BandeauCookiesRefuser</div><p class="d-none">TexteInvisibleDisplayNone</p>
<input type="submit" value="Valider" /></div>
<footer>PiedDePageMentions légales</footer>
</form></body></html>"""
    path = Path(folder) / name
    path.write_text(html, encoding="utf-8")
    return path


def write_html_article(folder: Path, name: str = "actualite_piscine.html") -> Path:
    html = """<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Actualités</title>
</head><body><header><p>MenuPrincipalAccueil</p></header>
<article><header><h1>Fermeture exceptionnelle de la piscine municipale</h1>
<p>Publié le 20 août 2025</p></header>
<p>La piscine sera fermée du 2 au 9 septembre pour vidange.</p>
<footer><p>Service des sports</p></footer></article>
<aside>BandeauCookiesRefuser</aside><footer>PiedDePageMentions</footer></body></html>"""
    path = Path(folder) / name
    path.write_text(html, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Markdown

MD_EXPECTED = [
    "Le plan du lotissement des Vignes est annexé à la présente note",
    "Les lots 3 et 4 sont réservés aux logements sociaux",
    "Voir aussi le schéma de desserte",
]
MD_UNWANTED = ["iVBORw0KGgo", "base64,", "AAAA"]


def png_base64(size: int = 50_000, seed: int = 3) -> str:
    payload = b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(size)
    return base64.b64encode(payload).decode()


def write_markdown(folder: Path, name: str = "note_lotissement.md") -> Path:
    image = png_base64()
    text = (
        "# Note sur le lotissement des Vignes\n\n"
        "Le plan du lotissement des Vignes est annexé à la présente note.\n\n"
        f"![plan du lotissement](data:image/png;base64,{image})\n\n"
        "Les lots 3 et 4 sont réservés aux logements sociaux.\n\n"
        "![schéma][schema]\n\n"
        "Voir aussi le schéma de desserte.\n\n"
        f'<img src="data:image/png;base64,{png_base64(3000, 4)}" alt="logo de la commune">\n\n'
        "```\n" + "\n".join(png_base64(2000, 5)[i:i + 76] for i in range(0, 2600, 76)) + "\n```\n\n"
        f"[schema]: data:image/png;base64,{png_base64(4000, 6)}\n"
    )
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# PDF

PDF_LINES = [
    "Le conseil municipal approuve le procès-",
    "verbal de la séance précédente, transmis à la sous-",
    "préfecture. Le vice-",
    "président de la commission des finances, installé au rez-de-",
    "chaussée de la mairie, présente le budget adminis-",
    "tratif et la délibération sur l'aménage-",
    "ment du centre-bourg. Par ailleurs, l'ex-",
    "maire rappelle le contrôle de légalité.",
]
PDF_EXPECTED = ["procès-verbal", "sous-préfecture", "vice-président", "rez-de-chaussée",
                "administratif", "aménagement", "ex-maire"]
PDF_UNWANTED = ["procèsverbal", "souspréfecture", "viceprésident", "rezdechaussée",
                "adminis-tratif", "aménage-ment"]
PDF_FORM_VALUE = "Lefebvre Martine, 12 rue des Acacias"


def write_pdf(folder: Path, name: str = "pv_conseil.pdf") -> Path:
    """A text PDF whose lines end in hyphenated compounds and typographic breaks, with a filled
    form field (its value lives in a widget annotation, not in the page content)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = Path(folder) / name
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("Helvetica", 11)
    y = 780
    for line in PDF_LINES:
        c.drawString(60, y, line)
        y -= 16
    c.drawString(60, y - 20, "Demandeur :")
    c.acroForm.textfield(name="demandeur", value=PDF_FORM_VALUE, x=140, y=y - 26, width=300,
                         height=18, borderWidth=0, fontSize=10)
    c.showPage()
    c.save()
    return path


# --------------------------------------------------------------------------------------------
# plain text and file names

TXT_EXPECTED = ["La réglementation des débits de boissons", "les fichiers officiels"]


def write_text_with_noise(folder: Path, name: str = "note_debits.txt") -> Path:
    noise = "".join(chr(c) for c in random.Random(9).choices(
        [*range(1, 9), *range(14, 32), 0xFFFD, 0xE000, 0xE123], k=120))
    hexdump = random.Random(10).randbytes(80).hex()
    text = (
        "La régle\u00ad\nmentation des débits de boissons est rappelée.\n"
        "Sceau : " + hexdump + "\n"
        "Données : " + noise + "\n"
        "Consultez les ﬁchiers ofﬁciels.\n"
    )
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


BAD_NAME_TEXT = "Délibération sur les tarifs de la médiathèque votée à l'unanimité."


def write_bad_name(folder: Path) -> Path:
    """A file whose name is Windows-1252 bytes (not UTF-8): b"d\\xe9lib\\xe9ration.txt"."""
    path = Path(os.fsdecode(os.fsencode(str(folder)) + b"/d\xe9lib\xe9ration.txt"))
    path.write_bytes(BAD_NAME_TEXT.encode("cp1252"))
    return path
