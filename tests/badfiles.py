"""Builders of test documents, good and bad, written into a folder (usually ``tmp_path``).

Shared by the loader, chunking and ingestion tests. Each function returns the path it wrote;
the ``*_TEXT`` / ``*_HEADING`` constants are the content that a loader must find.
"""

from __future__ import annotations

import io
from pathlib import Path

TEXT_PDF_SENTENCE = "Le conseil municipal approuve le budget primitif de la commune."
DOCX_HEADING = "Article 3 – Convocation des conseillers"
DOCX_TEXT = "La convocation est adressée cinq jours francs avant la séance."
DOCX_TABLE_CELL = "Salle des fêtes"
ODT_HEADING = "Chapitre II – Les commissions"
ODT_TEXT = "Chaque commission comprend sept membres désignés à la proportionnelle."
ODT_TABLE_CELL = "Concession trentenaire"
HTML_TITLE = "Horaires de la médiathèque"
HTML_HEADING = "Horaires d'été"
HTML_TEXT = "La médiathèque est ouverte le mercredi de 10 h à 18 h."
HTML_SCRIPT_MARKER = "trackingPixelNePasIndexer"
CP1252_TEXT = "Délibération relative à l'élection du maire : « trois tours » – coût 15 € ; œuvre."


def _text_pdf_bytes(pages: list[str]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    for text in pages:
        y = 780
        for line in text.split("\n"):
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def write_text_pdf(folder: Path, name: str = "texte.pdf", pages: list[str] | None = None) -> Path:
    """A normal PDF with one line of known text per page (page n contains ``Page n``)."""
    pages = pages or [f"Page {n}\n{TEXT_PDF_SENTENCE}" for n in (1, 2, 3)]
    path = Path(folder) / name
    path.write_bytes(_text_pdf_bytes(pages))
    return path


def write_encrypted_pdf(folder: Path, name: str = "chiffre.pdf", password: str = "secret") -> Path:
    """A text PDF encrypted with a user password (AES-256)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_text_pdf_bytes([TEXT_PDF_SENTENCE]))).pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    path = Path(folder) / name
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def write_owner_only_encrypted_pdf(folder: Path, name: str = "restreint.pdf") -> Path:
    """A PDF encrypted with an empty user password (printing restrictions only): readable."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(_text_pdf_bytes([TEXT_PDF_SENTENCE]))).pages:
        writer.add_page(page)
    writer.encrypt(user_password="", owner_password="proprietaire", algorithm="AES-128")
    path = Path(folder) / name
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def write_truncated_pdf(folder: Path, name: str = "tronque.pdf", source: Path | None = None,
                        keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of a real PDF (``source``, else a generated 3-page PDF)."""
    data = Path(source).read_bytes() if source else _text_pdf_bytes(
        [f"Page {n}\n{TEXT_PDF_SENTENCE}" for n in range(1, 4)]
    )
    path = Path(folder) / name
    path.write_bytes(data[: max(16, int(len(data) * keep))])
    return path


def write_garbage_pdf(folder: Path, name: str = "illisible.pdf") -> Path:
    """A file with a PDF header followed by noise: no page can be read."""
    path = Path(folder) / name
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n")
    return path


def write_scanned_pdf(folder: Path, name: str = "scan.pdf") -> Path:
    """A 2-page PDF with only drawings and an image, no text layer (like a scan)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = Path(folder) / name
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for _ in range(2):
        pdf.rect(72, 600, 300, 120, fill=1)
        pdf.circle(300, 400, 80)
        for y in range(100, 300, 12):
            pdf.line(72, y, 500, y)  # "lines of text" as strokes
        pdf.showPage()
    pdf.save()
    return path


def png_bytes() -> bytes:
    """A small grey PNG image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 200, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(folder: Path, name: str = "photo.png") -> Path:
    path = Path(folder) / name
    path.write_bytes(png_bytes())
    return path


def write_png_named_pdf(folder: Path, name: str = "pas_un_pdf.pdf") -> Path:
    """PNG bytes behind a .pdf extension."""
    path = Path(folder) / name
    path.write_bytes(png_bytes())
    return path


def write_empty(folder: Path, name: str = "vide.txt") -> Path:
    path = Path(folder) / name
    path.write_bytes(b"")
    return path


def write_blank(folder: Path, name: str = "blanc.md") -> Path:
    """Whitespace only (spaces, tabs, newlines, a non-breaking space)."""
    path = Path(folder) / name
    path.write_text(" \n\t\n\u00a0\n\n", encoding="utf-8")
    return path


def write_huge(folder: Path, size: int = 200 * 1024 * 1024, name: str = "enorme.pdf") -> Path:
    """A sparse file of ``size`` bytes (takes no disk space)."""
    path = Path(folder) / name
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def write_docx(folder: Path, name: str = "reglement.docx") -> Path:
    """A DOCX with a title, a heading, paragraphs and a table."""
    import docx

    document = docx.Document()
    document.core_properties.title = "Règlement de la salle des fêtes"
    document.add_heading("Règlement de la salle des fêtes", level=1)
    document.add_paragraph("Préambule : le présent règlement s'applique à toutes les locations.")
    document.add_heading(DOCX_HEADING, level=2)
    document.add_paragraph(DOCX_TEXT)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Équipement"
    table.cell(0, 1).text = "Tarif"
    table.cell(1, 0).text = DOCX_TABLE_CELL
    table.cell(1, 1).text = "320 €"
    path = Path(folder) / name
    document.save(str(path))
    return path


def write_odt(folder: Path, name: str = "commissions.odt") -> Path:
    """An ODT with headings, a paragraph, a list and a table."""
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Règlement des commissions"))
    document.text.addElement(H(outlinelevel=2, text=ODT_HEADING))
    document.text.addElement(P(text=ODT_TEXT))
    items = List()
    item = ListItem()
    item.addElement(P(text="Commission des finances"))
    items.addElement(item)
    document.text.addElement(items)
    table = Table(name="Tarifs")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for cells in (("Objet", "Tarif"), (ODT_TABLE_CELL, "280 €")):
        row = TableRow()
        for value in cells:
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    document.text.addElement(table)
    path = Path(folder) / name
    document.save(str(path))
    return path


def write_html(folder: Path, name: str = "mediatheque.html") -> Path:
    """An HTML page with navigation, a script, headings and inline markup."""
    html = f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{HTML_TITLE}</title>
<script>var {HTML_SCRIPT_MARKER} = 1;</script><style>p {{ color: red; }}</style></head>
<body><nav><a href="/">Accueil</a> | <a href="/menu">MenuDeNavigation</a></nav>
<main><h1>{HTML_TITLE}</h1>
<h2>{HTML_HEADING}</h2>
<p>La médiathèque est ouverte le <b>mercredi</b> de 10 h à 18 h.</p>
<ul><li>Prêt gratuit</li><li>Wifi</li></ul>
<table><tr><th>Jour</th><th>Horaires</th></tr><tr><td>Samedi</td><td>9 h – 12 h</td></tr></table>
</main></body></html>"""
    path = Path(folder) / name
    path.write_text(html, encoding="utf-8")
    return path


def write_cp1252_text(folder: Path, name: str = "ancien.txt") -> Path:
    """A Windows-1252 text file with accents, guillemets, dash, euro sign and œ."""
    path = Path(folder) / name
    body = "\n".join([CP1252_TEXT, "Le maire est élu à la majorité absolue.", "Été, hôpital."])
    path.write_bytes(body.encode("cp1252"))
    return path


def write_latin1_text(folder: Path, name: str = "latin1.txt") -> Path:
    """An ISO-8859-1 file (no euro sign, no œ)."""
    path = Path(folder) / name
    path.write_bytes("Délibération du conseil municipal : élection à la majorité.\n".encode(
        "latin-1"))
    return path


def write_unsupported(folder: Path, name: str = "tableau.xlsx") -> Path:
    path = Path(folder) / name
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    return path
