"""Read documents from disk into :class:`~assistant.schema.LoadedDocument`.

One function per format, chosen by suffix after a check of the file's first bytes (a PNG named
``.pdf`` is reported as such, not as a "corrupt PDF"). Every failure is a
:class:`~assistant.errors.DocumentError` subclass whose ``reason`` is a short French sentence
ending with the fix; nothing here prints.

Formats: PDF (pypdf, page by page), DOCX (python-docx), ODT (odfpy), HTML (BeautifulSoup),
Markdown and plain text (encoding detected with charset-normalizer), images (OCR only).
Headings of DOCX/ODT/HTML are written as Markdown ``#`` lines so that the chunker sees the
structure of every format the same way.

OCR is optional: when a PDF has no text layer (or the file is an image) and ``ocr`` is true, the
loader uses ``ocrmypdf`` or ``tesseract`` (with French data) if one is on PATH; otherwise it
raises :class:`~assistant.errors.ScannedDocumentError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from assistant.errors import (
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    ScannedDocumentError,
    TooLargeDocumentError,
    UnsupportedDocumentError,
)
from assistant.nontext import NonTextReport, strip_non_text
from assistant.schema import LoadedDocument, Page

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
TEXT_SUFFIXES = frozenset({".txt", ".text"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    PDF_SUFFIXES
    | IMAGE_SUFFIXES
    | TEXT_SUFFIXES
    | MARKDOWN_SUFFIXES
    | HTML_SUFFIXES
    | {".docx", ".odt"}
)

ENCRYPTED_REASON = (
    "PDF protégé par mot de passe : fournissez une copie déchiffrée (qpdf --decrypt) "
    "ou le mot de passe"
)
SCANNED_REASON = (
    "PDF scanné sans couche texte : il faut un OCR (installez ocrmypdf ou tesseract-ocr-fra), "
    "ou fournissez une version texte"
)
IMAGE_REASON = (
    "image sans texte exploitable : il faut un OCR (installez tesseract-ocr-fra ou ocrmypdf), "
    "ou fournissez une version texte (PDF texte, DOCX, ODT)"
)

# A page "has text" when it holds at least this many letters or digits.
MIN_PAGE_ALNUM = 25
OCR_TIMEOUT_S = 600

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st",
                            "ﬆ": "st", "\x00": "", "\ufeff": "", "\u00ad": "", "\u200b": "",
                            "\u2060": ""})
_SOFT_HYPHEN_BREAK = re.compile("\u00ad[ \t]*\r?\n[ \t]*")
# Word exports bullets as private-use glyphs of the Symbol/Wingdings fonts (U+F0xx).
_SYMBOL_GLYPHS = re.compile("[\uf000-\uf0ff]")

# (magic prefix, kind, French name) used to recognise a file whatever its extension says.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "pdf", "un PDF"),
    (b"\x89PNG\r\n\x1a\n", "image", "une image PNG"),
    (b"\xff\xd8\xff", "image", "une image JPEG"),
    (b"II*\x00", "image", "une image TIFF"),
    (b"MM\x00*", "image", "une image TIFF"),
    (b"GIF8", "gif", "une image GIF"),
    (b"PK\x03\x04", "zip", "une archive ZIP (DOCX, ODT…)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole", "un document Office ancien (.doc) ou chiffré"),
    (b"{\\rtf", "rtf", "un document RTF"),
)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_bad_name(name: str) -> bool:
    """Whether a name from the file system was not valid UTF-8 (Python keeps such bytes as
    lone surrogates, which no database, JSON encoder or terminal accepts) or holds control
    characters (a line break in a name would break every report line)."""
    return any("\udc80" <= c <= "\udcff" for c in name) or bool(_CONTROL.search(name))


def readable_name(name: str) -> str:
    """A readable, storable form of a file or folder name from the file system.

    Valid UTF-8 names are returned unchanged. In a name that was not valid UTF-8 (``os``
    gives its bytes as lone surrogates, PEP 383), each stray byte is read as Windows-1252:
    ``b"d\\xe9lib.txt"`` -> ``"délib.txt"``; control characters are written ``\\x0a``. The
    result never holds a surrogate or a control character, so it can be
    stored, printed and encoded, and it is the same at every run (re-runs stay idempotent).
    """
    if not has_bad_name(name):
        return name
    # Stray bytes come back as lone surrogates U+DC80..U+DCFF (PEP 383); each becomes the
    # Windows-1252 character of its byte (Latin-1 for the five bytes cp1252 leaves undefined).
    text = os.fsencode(name).decode("utf-8", errors="surrogateescape")
    text = "".join(_legacy_char(c) if "\udc80" <= c <= "\udcff" else c for c in text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _legacy_char(surrogate: str) -> str:
    byte = bytes([ord(surrogate) - 0xDC00])
    return byte.decode("cp1252", errors="ignore") or byte.decode("latin-1")


def escaped_name(name: str) -> str:
    """An unambiguous ASCII-escaped form of a non-UTF-8 name (``d\\xe9lib.txt``), used when
    its :func:`readable_name` is already taken by another file of the same folder."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def is_supported(path: Path) -> bool:
    """Whether ``path`` has a suffix this module can read (case-insensitive)."""
    return Path(path).suffix.lower() in SUPPORTED_SUFFIXES


def load_document(
    path: Path, root: Path, *, max_bytes: int | None = None, ocr: bool = True
) -> LoadedDocument:
    """Read ``path`` (inside ``root``) into a :class:`LoadedDocument`.

    ``source`` is the path relative to ``root`` with forward slashes; ``content_hash`` is the
    sha256 of the file bytes. Raises a :class:`DocumentError` subclass when the file cannot be
    turned into text (encrypted, corrupt, scanned, empty, too large, unsupported).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocumentError(
            f"format « {suffix or 'sans extension'} » non pris en charge : convertissez le "
            "fichier en PDF, DOCX, ODT, HTML, Markdown ou texte"
        )
    try:
        size = path.stat().st_size
    except OSError as err:
        raise CorruptDocumentError(
            f"fichier illisible ({err.strerror or err}) : vérifiez qu'il existe et que "
            "les droits de lecture sont accordés"
        ) from err
    if max_bytes is not None and size > max_bytes:
        raise TooLargeDocumentError(
            f"fichier trop volumineux ({_mb(size)} Mo, limite {_mb(max_bytes)} Mo) : découpez-le "
            "ou augmentez la limite (réglage max_file_mb)"
        )
    if size == 0:
        raise EmptyDocumentError("fichier vide : remplacez-le par le document complet")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CorruptDocumentError(
            f"fichier illisible ({err.strerror or err}) : vérifiez les droits de lecture"
        ) from err

    _check_magic(data, suffix)
    reader: Callable[[bytes, Path, bool], tuple[list[Page], str | None]]
    if suffix in PDF_SUFFIXES:
        reader = _read_pdf
    elif suffix in IMAGE_SUFFIXES:
        reader = _read_image
    elif suffix == ".docx":
        reader = _read_docx
    elif suffix == ".odt":
        reader = _read_odt
    elif suffix in HTML_SUFFIXES:
        reader = _read_html
    elif suffix in MARKDOWN_SUFFIXES:
        reader = _read_markdown
    else:
        reader = _read_text
    pages, meta_title = reader(data, path, ocr)
    removed = NonTextReport()
    cleaned: list[Page] = []
    for page in pages:
        text, report = strip_non_text(_clean(page.text))
        removed.add(report)
        cleaned.append(Page(page.number, text))
    pages = cleaned
    if removed.runs and not any(_alnum(p.text) >= 2 for p in pages):
        raise EmptyDocumentError(
            "le document ne contient que des données binaires (image ou pièce jointe encodée, "
            "base64) : fournissez la version texte du document"
        )
    if not any(p.text.strip() for p in pages):
        raise EmptyDocumentError(
            "document sans texte : vérifiez qu'il n'est pas vide ou remplacez-le par la version "
            "complète"
        )

    source = _relative_source(path, Path(root))
    title = _choose_title(meta_title, pages, Path(readable_name(path.name)))
    first_text = pages[0].text if pages else ""
    return LoadedDocument(
        source=source,
        title=title,
        pages=pages,
        content_hash=hashlib.sha256(data).hexdigest(),
        doc_type=guess_doc_type(source, title, first_text),
        date=find_date(readable_name(path.name), first_text),
        extra={"non_text": {"runs": removed.runs, "chars": removed.chars}},
    )


# --------------------------------------------------------------------------------------------
# helpers shared by the formats


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f}".replace(".", ",")


def _relative_source(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    return "/".join(readable_name(part) for part in rel.parts)


def _clean(text: str) -> str:
    """Unicode NFC, ligatures split, NUL/BOM/soft hyphens removed, Windows newlines unified."""
    # A soft hyphen at a line end is a typographic break inside one word: join the halves
    # before the invisible hyphens are dropped (else the word stays cut by a line break).
    text = _SOFT_HYPHEN_BREAK.sub("", text)
    text = unicodedata.normalize("NFC", text).translate(_LIGATURES)
    text = _SYMBOL_GLYPHS.sub("•", text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_magic(data: bytes, suffix: str) -> None:
    """Refuse a file whose content is of another kind than its extension says."""
    head = data[:1024]
    found = next(((kind, name) for magic, kind, name in _MAGIC if head.startswith(magic)), None)
    if suffix in PDF_SUFFIXES and b"%PDF-" in head:
        return  # some PDFs have junk before the header; pypdf copes with it
    if found is None:
        if suffix in PDF_SUFFIXES:
            raise CorruptDocumentError(
                "ce fichier .pdf n'est pas un PDF (en-tête %PDF absent) : il est corrompu ou mal "
                "nommé ; exportez de nouveau le document en PDF"
            )
        if suffix in {".docx", ".odt"} | IMAGE_SUFFIXES:
            raise CorruptDocumentError(
                f"ce fichier {suffix} n'a pas le contenu attendu : il est corrompu ou mal nommé ; "
                "enregistrez de nouveau le document"
            )
        return
    kind, name = found
    expected = (
        "pdf" if suffix in PDF_SUFFIXES
        else "image" if suffix in IMAGE_SUFFIXES
        else "zip" if suffix in {".docx", ".odt"}
        else "text"
    )
    if kind == expected:
        return
    if kind == "ole" and expected == "zip":
        raise EncryptedDocumentError(
            f"ce fichier {suffix} est protégé par mot de passe ou au format .doc ancien : "
            "enregistrez-le sans mot de passe au format DOCX ou ODT"
        )
    raise CorruptDocumentError(
        f"le fichier porte l'extension {suffix} mais contient {name} : renommez-le avec la bonne "
        "extension ou remplacez-le par le bon fichier"
    )


def _decode(data: bytes) -> str:
    """Decode text bytes: BOM, then strict UTF-8, then charset-normalizer's best guess.

    Hand-written order because charset-normalizer alone sometimes labels short French cp1252
    text as another single-byte code page; UTF-8 that decodes strictly is taken as is.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # French files that are not UTF-8 are almost always Windows-1252 or Latin-1/9; restricting
    # the candidates avoids exotic code pages being chosen for short texts.
    best = from_bytes(
        data, cp_isolation=["cp1252", "iso8859_15", "latin_1", "mac_roman", "cp850"]
    ).best()
    if best is not None:
        return str(best)
    return data.decode("cp1252", errors="replace")


def _humanise(stem: str) -> str:
    text = re.sub(r"[_\s]+", " ", stem).strip()
    return text[:1].upper() + text[1:] if text else stem


def _meaningful_title(title: str | None) -> str | None:
    if not title:
        return None
    title = re.sub(r"\s+", " ", title).strip()
    low = title.lower()
    if (
        len(title) < 4
        or (" " not in title and len(title) < 10)
        or low.startswith(("microsoft word", "microsoft powerpoint", "untitled", "sans titre"))
        or re.search(r"\.(docx?|odt|pdf|rtf|xlsx?|pptx?|indd|txt)$", low)
        or low in {"document", "titre", "title", "diapositive 1", "présentation powerpoint",
                   "word document", "document word", "document1", "document 1"}
        or not re.search(r"[^\W\d_]{3}", title)
    ):
        return None
    return title[:200]


def _choose_title(meta_title: str | None, pages: list[Page], path: Path) -> str:
    title = _meaningful_title(meta_title)
    if title:
        return title
    for page in pages:
        for line in page.text.splitlines():
            m = re.match(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", line)
            if m:
                heading = _meaningful_title(m.group(1).strip("*_ "))
                if heading:
                    return heading
    return _humanise(path.stem)


def _fold(text: str) -> str:
    """Lowercase without accents (for keyword matching)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Ordered: the first rule that matches wins (a délibération adopting a règlement is a
# délibération). Each entry: (doc_type, path keywords, content regex on folded title+start).
_TYPE_RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("compte_rendu", ("compte_rendu", "comptes_rendus", "compte-rendu", "proces_verbal",
                      "proces-verbal"), r"^(compte[- ]rendu|proces[- ]verbal)"),
    ("deliberation", ("delib",), r"^deliberation|extrait du registre des deliberations"),
    ("arrete", ("arrete",), r"^arrete\b|\barrete du maire\b"),
    ("reglement", ("reglement",), r"^reglement\b"),
    ("tarifs", ("tarif",), r"^(tarifs?|grille tarifaire)\b"),
    ("guide", ("guide",), r"^guide\b"),
    ("fiche", ("fiche", "service_public", "service-public"), r"service-public\.fr"),
    ("note", ("note_interne", "note-interne"), r"^note (interne|de service)\b"),
    ("courrier", ("courrier", "lettre"), r"^(objet\s*:|madame, monsieur)|\bobjet\s*:"),
    ("loi", ("textes_de_loi", "cgct", "crpa", "code_"), r"^code (general|des)\b|^loi n"),
)


def guess_doc_type(source: str, title: str, first_text: str) -> str:
    """Guess the document type from its path, then its title and opening text."""
    folded_path = _fold(source)
    tokens = set(re.split(r"[^a-z0-9]+", folded_path))
    for doc_type, keywords, _ in _TYPE_RULES:
        if any(k in folded_path for k in keywords):
            return doc_type
    if "loi" in tokens:
        return "loi"
    start = _fold(title + "\n" + first_text[:1500])
    for doc_type, _, pattern in _TYPE_RULES:
        if re.search(pattern, start, flags=re.MULTILINE):
            return doc_type
    return "autre"


_MONTHS = {
    "janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12,
}
_DATE_PATTERNS = (
    re.compile(
        r"\b(?P<d>[0-3]?\d)(?:er)?\s+(?P<m>" + "|".join(_MONTHS) + r")\s+(?P<y>(?:19|20)\d\d)\b"
    ),
    re.compile(r"\b(?P<d>[0-3]?\d)[/.](?P<m>[01]?\d)[/.](?P<y>(?:19|20)\d\d)\b"),
    re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>[01]\d)-(?P<d>[0-3]\d)\b"),
)


def find_date(file_name: str, first_text: str) -> str | None:
    """First valid date in the file name, else in the opening text, as ISO ``YYYY-MM-DD``.

    The file name is tried first because a dated name is a deliberate label, whereas the
    opening text may cite other dates (a law, a previous decision).
    """
    for text in (file_name.replace("_", " "), first_text[:3000]):
        folded = _fold(text)
        found: list[tuple[int, str]] = []
        for pattern in _DATE_PATTERNS:
            for m in pattern.finditer(folded):
                month = m.group("m")
                try:
                    value = date(
                        int(m.group("y")),
                        _MONTHS[month] if month in _MONTHS else int(month),
                        int(m.group("d")),
                    )
                except ValueError:
                    continue
                found.append((m.start(), value.isoformat()))
                break  # the first match of each pattern is enough; keep the earliest overall
        if found:
            return min(found)[1]
    return None


# --------------------------------------------------------------------------------------------
# PDF and images


def _read_pdf(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    if b"%%EOF" not in data[-4096:]:
        # pypdf rebuilds a missing cross-reference table and would silently return the pages
        # that happen to precede the cut: a truncated download must be reported, not indexed.
        raise CorruptDocumentError(
            "PDF tronqué (fin de fichier %%EOF absente) : le téléchargement ou la copie est "
            "incomplet ; récupérez de nouveau le fichier"
        )
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except DependencyError as err:
                raise EncryptedDocumentError(
                    "PDF chiffré (AES) : installez le paquet Python « cryptography » ou "
                    "fournissez une copie déchiffrée (qpdf --decrypt)"
                ) from err
            if not decrypted:
                raise EncryptedDocumentError(ENCRYPTED_REASON)
        n_pages = len(reader.pages)
    except DocumentError:
        raise
    except FileNotDecryptedError as err:
        raise EncryptedDocumentError(ENCRYPTED_REASON) from err
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError,
            IndexError, RecursionError, AssertionError) as err:
        raise CorruptDocumentError(
            f"PDF corrompu ou tronqué ({_short(err)}) : exportez ou téléchargez-le de nouveau"
        ) from err
    if n_pages == 0:
        raise EmptyDocumentError("PDF sans aucune page : remplacez-le par le document complet")

    pages: list[Page] = []
    failed = 0
    for number in range(1, n_pages + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except FileNotDecryptedError as err:
            raise EncryptedDocumentError(ENCRYPTED_REASON) from err
        except Exception:  # pypdf raises many types on broken pages; one bad page is skipped
            failed += 1
            text = ""
        values = _pdf_form_values(reader.pages[number - 1], text)
        if values:
            text = text.rstrip() + "\n\n" + "\n".join(values)
        pages.append(Page(number, text))
    if failed == n_pages:
        raise CorruptDocumentError(
            "PDF corrompu : aucune page n'a pu être lue ; exportez ou téléchargez-le de nouveau"
        )
    if not any(_alnum(p.text) >= MIN_PAGE_ALNUM for p in pages):
        if failed:
            raise CorruptDocumentError(
                f"PDF corrompu : {failed} page(s) sur {n_pages} illisibles et aucun texte "
                "ailleurs ; exportez ou téléchargez-le de nouveau"
            )
        ocr_pages = _ocr_pdf(path) if ocr else None
        if ocr_pages is None:
            raise ScannedDocumentError(SCANNED_REASON)
        pages = ocr_pages
    title = None
    with contextlib.suppress(Exception):  # metadata is optional; a broken Info dict is harmless
        title = reader.metadata.title if reader.metadata else None
    return pages, title


def _pdf_form_values(page: Any, page_text: str) -> list[str]:
    """Values typed into the text and choice fields of a PDF form (filled in a viewer), which
    the reader sees on the page but which live in widget annotations, not in the page content
    that ``extract_text`` reads. Values already in the page text (a flattened form) are not
    repeated; hidden widgets, check boxes and signatures are left out. Source: ISO 32000-1,
    §12.7.3 (field dictionaries, inheritable /FT and /V) and §12.5.3 (annotation flags)."""
    values: list[str] = []
    with contextlib.suppress(Exception):  # a broken annotation must not lose the page text
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/Subtype") != "/Widget" or int(annot.get("/F", 0)) & 2:
                continue
            node, field_type, value = annot, None, None
            for _ in range(10):  # /FT and /V are inherited from the parent fields
                field_type = field_type or node.get("/FT")
                value = value if value is not None else node.get("/V")
                parent = node.get("/Parent")
                if parent is None:
                    break
                node = parent.get_object()
            if field_type not in ("/Tx", "/Ch") or value is None:
                continue
            items = value if isinstance(value, list) else [value]
            for item in items:
                text = str(item).strip()
                if text and not text.startswith("/") and text not in page_text \
                        and text not in values:
                    values.append(text)
    return values


def _alnum(text: str) -> int:
    return sum(c.isalnum() for c in text)


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "…"


def _tesseract_has_french(tesseract: str) -> bool:
    try:
        out = subprocess.run(
            [tesseract, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.strip() == "fra" for line in (out.stdout + out.stderr).splitlines())


def ocr_available() -> bool:
    """Whether tesseract with French data is on PATH (ocrmypdf, when present, runs it too)."""
    tesseract = shutil.which("tesseract")
    return tesseract is not None and _tesseract_has_french(tesseract)


def _ocr_pdf(path: Path) -> list[Page] | None:
    """OCR a PDF without text layer; ``None`` when no OCR engine is available or OCR fails."""
    if not ocr_available():
        return None
    from pypdf import PdfReader

    ocrmypdf = shutil.which("ocrmypdf")
    with tempfile.TemporaryDirectory(prefix="assistant-ocr-") as tmp:
        if ocrmypdf:
            out = Path(tmp) / "ocr.pdf"
            try:
                subprocess.run(
                    [ocrmypdf, "-q", "-l", "fra", "--force-ocr", str(path), str(out)],
                    capture_output=True, timeout=OCR_TIMEOUT_S, check=True,
                )
                reader = PdfReader(out)
                return [Page(i, p.extract_text() or "") for i, p in enumerate(reader.pages, 1)]
            except (OSError, subprocess.SubprocessError, ValueError):
                pass  # fall back to tesseract on the page images
        reader = PdfReader(path)
        pages: list[Page] = []
        for number, page in enumerate(reader.pages, 1):
            texts = []
            for index, image in enumerate(_page_images(page)):
                target = Path(tmp) / f"p{number}-{index}.png"
                image.save(target)
                texts.append(_tesseract(target) or "")
            pages.append(Page(number, "\n\n".join(texts)))
    return pages if any(_alnum(p.text) >= MIN_PAGE_ALNUM for p in pages) else None


def _page_images(page: Any) -> Iterator[Any]:
    with contextlib.suppress(Exception):  # an undecodable image is simply not OCRed
        for image in page.images:
            yield image.image


def _tesseract(image_path: Path) -> str | None:
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        return None
    try:
        out = subprocess.run(
            [tesseract, str(image_path), "stdout", "-l", "fra"],
            capture_output=True, text=True, timeout=OCR_TIMEOUT_S, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _read_image(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    text = _tesseract(path) if ocr and ocr_available() else None
    if not text or _alnum(text) < MIN_PAGE_ALNUM:
        raise ScannedDocumentError(IMAGE_REASON)
    return [Page(1, text)], None


# --------------------------------------------------------------------------------------------
# office formats


def _table_rows(rows: list[list[str]]) -> str:
    lines = []
    for cells in rows:
        kept: list[str] = []
        for cell in cells:
            cell = re.sub(r"\s+", " ", cell).strip()
            if cell and (not kept or kept[-1] != cell):  # merged cells repeat their text
                kept.append(cell)
        if kept:
            lines.append(" | ".join(kept))
    return "\n".join(lines)


def _read_docx(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    import io

    import docx

    from assistant.office_text import docx_text

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise CorruptDocumentError(
            f"DOCX corrompu ({_short(err)}) : ouvrez-le dans un traitement de texte et "
            "enregistrez-le de nouveau"
        ) from err
    except Exception as err:  # python-docx raises PackageNotFoundError and lxml errors
        raise CorruptDocumentError(
            f"DOCX illisible ({_short(err)}) : enregistrez-le de nouveau au format DOCX"
        ) from err

    # python-docx opens the package; the text is walked by assistant.office_text, which reads
    # content controls, tracked changes, fields and text boxes that python-docx skips.
    text = docx_text(document).text()
    title = None
    with contextlib.suppress(Exception):
        title = document.core_properties.title
    return [Page(None, text)], title


def _read_odt(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    import io

    from odf import teletype
    from odf.opendocument import load

    from assistant.office_text import join_parts, odt_text

    try:
        document = load(io.BytesIO(data))
    except Exception as err:  # odfpy raises zipfile, KeyError and XML parser errors
        raise CorruptDocumentError(
            f"ODT corrompu ({_short(err)}) : ouvrez-le dans LibreOffice et enregistrez-le de "
            "nouveau"
        ) from err

    # odfpy parses the package; assistant.office_text walks its DOM because
    # teletype.extractText would mix deleted text, comments and footnotes into the sentences.
    body, notes, furniture = odt_text(document)
    title = None
    with contextlib.suppress(Exception):
        from odf import dc

        titles = document.meta.getElementsByType(dc.Title)
        title = teletype.extractText(titles[0]) if titles else None
    return [Page(None, join_parts(body, notes, furniture))], title


# --------------------------------------------------------------------------------------------
# HTML, Markdown, text

# Never text a reader sees: code, styles, templates, embedded objects, form controls (their
# values are attributes: ASP.NET's __VIEWSTATE is a hidden input). The <form> element itself is
# kept: ASP.NET WebForms wraps the whole page body in one.
_HTML_DROP = ("script", "style", "noscript", "template", "iframe", "svg", "object", "embed",
              "canvas", "audio", "video", "button", "select", "datalist", "textarea", "input",
              "nav", "map")
# Page chrome, dropped unless it belongs to the content (an <article>'s own <header><h1>).
_HTML_CHROME = ("header", "footer", "aside")
_HTML_CHROME_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "complementary",
                                "menu", "menubar", "toolbar"})
_HTML_CONTENT = ("article", "main", "section")
# Utility classes of common CSS frameworks (Bootstrap, Foundation, Bulma, DSFR) that hide an
# element from everyone (screen-reader-only classes such as "sr-only" are read, so kept).
_HIDDEN_CLASSES = frozenset({"hidden", "d-none", "hide", "is-hidden", "invisible",
                             "display-none", "fr-hidden"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_HTML_BLOCKS = frozenset({
    "p", "div", "section", "article", "main", "blockquote", "pre", "ul", "ol", "dl", "dd", "dt",
    "figure", "figcaption", "address", "table", "thead", "tbody", "tfoot", "hr", "body", "html",
    "caption", "details", "summary", "form", "fieldset", "legend", "header", "footer", "aside",
    "hgroup", "search", "li", "dialog",
})


def _html_to_text(soup: Any, include_self: bool = False) -> str:
    """Block-aware text of a BeautifulSoup tree, headings as ``#`` lines.

    Hand-written because ``get_text()`` cannot tell block from inline elements: with a
    separator it cuts sentences at every ``<b>``, without one it glues paragraphs together.
    """
    from bs4 import NavigableString, Tag
    from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

    parts: list[str] = []

    def walk(node: Any) -> None:
        for child in node.children:
            visit(child)

    def visit(child: Any) -> None:
        if isinstance(child, (Comment, Doctype, ProcessingInstruction, Declaration, CData)):
            return
        if isinstance(child, NavigableString):
            parts.append(str(child))
            return
        if isinstance(child, Tag):
            name = child.name.lower()
            if re.fullmatch(r"h[1-6]", name):
                text = re.sub(r"\s+", " ", child.get_text(" ")).strip()
                if text:
                    parts.append(f"\n\n{'#' * int(name[1])} {text}\n\n")
            elif name == "br":
                parts.append("\n")
            elif name == "li":
                parts.append("\n- ")
                walk(child)
                parts.append("\n")
            elif name == "tr":
                cells = [c.get_text(" ") for c in child.find_all(["td", "th"], recursive=False)]
                parts.append(_table_rows([cells]) + "\n")
            elif name in _HTML_BLOCKS:
                parts.append("\n\n")
                walk(child)
                parts.append("\n\n")
            else:
                walk(child)

    if include_self:  # the root is itself an element (a <main>, an <article>): read it whole
        visit(soup)
    else:
        walk(soup)
    text = "".join(parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _html_hidden(tag: Any) -> bool:
    """Whether an element is not shown: ``hidden``, ``aria-hidden="true"``, inline
    ``display:none``/``visibility:hidden``, a hiding utility class, a closed ``<dialog>``."""
    attrs = getattr(tag, "attrs", None) or {}
    classes = attrs.get("class") or []
    classes = classes if isinstance(classes, list) else str(classes).split()
    return (
        "hidden" in attrs
        or any(c.lower() in _HIDDEN_CLASSES for c in classes)
        or str(attrs.get("aria-hidden", "")).lower() == "true"
        or bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))
        or (tag.name == "dialog" and "open" not in attrs)
    )


# id/class names old site templates give to page chrome (<div id="menu">, "fil-ariane"…).
_CHROME_NAMES = frozenset({
    "header", "footer", "menu", "nav", "navbar", "navigation", "breadcrumb", "breadcrumbs",
    "fil-ariane", "filariane", "ariane", "sidebar", "cookie", "cookies", "cookie-banner",
    "bandeau-cookies", "skiplinks", "skip-links", "topbar", "masthead", "site-header",
    "site-footer", "pied", "pied-de-page", "piedpage", "entete", "en-tete", "mainmenu",
    "main-menu", "menu-principal", "share", "partage", "social", "toolbar",
})


def _chrome_by_name(tag: Any) -> bool:
    names = [str(tag.get("id", ""))]
    classes = tag.get("class") or []
    names.extend(classes if isinstance(classes, list) else str(classes).split())
    return any(n.lower() in _CHROME_NAMES for n in names if n)


def _in_content(tag: Any) -> bool:
    return any(
        parent.name in _HTML_CONTENT or str(parent.get("role", "")).lower() == "main"
        for parent in tag.parents
        if getattr(parent, "name", None)
    )


def _html_content_root(soup: Any) -> list[Any]:
    """Where the page's own content is: every <main> (or role=main) with text, else every
    outermost <article> with text, else the body (or the whole document)."""
    def has_text(tag: Any) -> bool:
        return _alnum(tag.get_text(" ")) >= MIN_PAGE_ALNUM

    mains = [t for t in soup.find_all(True) if t.name == "main" or
             str(t.get("role", "")).lower() == "main"]
    mains = [t for t in mains if has_text(t) and not any(p in mains for p in t.parents)]
    if mains:
        return mains
    articles = [t for t in soup.find_all("article") if has_text(t)]
    articles = [t for t in articles if not any(p.name == "article" for p in t.parents)]
    if articles:
        return articles
    return [soup.body if soup.body is not None else soup]


def html_text(data: bytes | str) -> tuple[str, str | None]:
    """(text a reader sees, ``<title>``) of an HTML page or fragment: code, form controls,
    hidden elements and page chrome (navigation, page header/footer, cookie banners) out,
    the ``<main>``/``<article>`` content preferred, headings as ``#`` lines."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ").strip() if soup.title else None
    if soup.head is not None:
        soup.head.decompose()
    chrome_titles = _clean_soup(soup)
    roots = _html_content_root(soup)
    text = "\n\n".join(_html_to_text(root, include_self=root is not soup) for root in roots)
    if chrome_titles and not any(root.find("h1") for root in roots if hasattr(root, "find")):
        # The page's only <h1> sat in the page header: it is the document's title, keep it.
        text = f"# {chrome_titles[0]}\n\n{text}"
    return text, title


def _clean_soup(soup: Any) -> list[str]:
    """Remove from a BeautifulSoup tree what a reader of the page does not see as text.

    Returns the texts of the ``<h1>`` found in the page chrome that was removed."""
    titles: list[str] = []
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    total = _alnum(soup.get_text(" ")) or 1
    for tag in soup.find_all(True):
        if tag.decomposed:
            continue
        role = str(tag.get("role", "")).lower()
        chrome = tag.name in _HTML_CHROME or role in _HTML_CHROME_ROLES
        named = not chrome and tag.name in ("div", "ul", "ol", "p", "span", "table", "section") \
            and _chrome_by_name(tag)
        if named:  # only small blocks: a template may call the wrapper of everything "header"
            named = _alnum(tag.get_text(" ")) < total / 2
        if _html_hidden(tag):
            tag.decompose()
        elif (chrome or named) and (role == "navigation" or not _in_content(tag)):
            titles.extend(
                " ".join(h.get_text(" ").split()) for h in tag.find_all("h1") if not
                _html_hidden(h)
            )
            tag.decompose()
    return [t for t in titles if t]


def _read_html(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    text, title = html_text(data)
    if _alnum(text) < 2:
        raise EmptyDocumentError(
            "page HTML sans texte lisible (contenu chargé par JavaScript, cadres ou images "
            "seulement) : ouvrez-la dans un navigateur et enregistrez-la en PDF, ou indexez la "
            "page qui contient le texte"
        )
    return [Page(None, text)], title


_HTML_BLOCK_RE = re.compile(r"<(table|div|p)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


def _markdown_html(text: str) -> str:
    """Turn raw HTML blocks embedded in Markdown (tables of legal texts) into plain lines."""
    if "<" not in text:
        return text
    from bs4 import BeautifulSoup

    def convert(m: re.Match[str]) -> str:
        soup = BeautifulSoup(m.group(0), "html.parser")
        for tag in soup.find_all(_HTML_DROP):
            tag.decompose()
        return "\n\n" + _html_to_text(soup) + "\n\n"

    text = _HTML_BLOCK_RE.sub(convert, text)
    return re.sub(r"<br\s*/?>", "\n", text, flags=re.IGNORECASE)


# Markdown images and links (inline, reference and shortcut forms), and reference definitions
# whose target is a data: URI. The reader of the rendered note sees the image, not its bytes:
# an image becomes its alt text, a link to a data: URI its label. A data: URI itself is left
# behind the alt text for strip_non_text, which removes it and counts it in the report.
_MD_INLINE_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?((?:[^()\s<>]|\([^()]*\))*)>?"
                              r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
_MD_DATA_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(\s*<?(data:[^)\s>]*)>?\s*\)")
_MD_REF_IMAGE = re.compile(r"!\[([^\]\n]*)\](?:\[[^\]\n]*\])?")
_MD_DATA_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(data:\S*?)>?(?:\s+[\"'(].*)?$",
                                 re.MULTILINE | re.IGNORECASE)
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_HTML_SRC_DATA = re.compile(r"""\bsrc\s*=\s*["']?(data:[^"'\s>]*)""", re.IGNORECASE)


def _data_tail(target: str) -> str:
    return f" {target} " if target.lower().startswith("data:") else ""


def _markdown_images(text: str) -> str:
    """Replace images (Markdown and HTML ``<img>``) by their alt text and data: links by their
    label; data: URIs are set apart (then removed and counted by strip_non_text)."""
    text = _MD_DATA_DEFINITION.sub(lambda m: _data_tail(m.group(1)), text)
    text = _MD_INLINE_IMAGE.sub(lambda m: m.group(1) + _data_tail(m.group(2)), text)
    text = _MD_DATA_LINK.sub(lambda m: m.group(1) + _data_tail(m.group(2)), text)
    text = _MD_REF_IMAGE.sub(lambda m: m.group(1), text)

    def img(m: re.Match[str]) -> str:
        alt = _HTML_ALT.search(m.group(0))
        src = _HTML_SRC_DATA.search(m.group(0))
        label = next((g for g in alt.groups() if g is not None), "") if alt else ""
        return label + (_data_tail(src.group(1)) if src else "")

    return _HTML_IMG.sub(img, text)


# Inline HTML a Markdown renderer turns into markup the reader does not see as text: the tags
# go, their text stays (the content of script/style/iframe/video goes too).
_MD_HTML_DROP = re.compile(r"<(script|style|iframe|video|audio|object|svg)\b.*?</\1\s*>",
                           re.DOTALL | re.IGNORECASE)
_MD_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|big|br|center|cite|code|del|div|em|figcaption|figure|font|i|ins|kbd|mark|"
    r"picture|q|s|small|source|span|strong|sub|sup|u|wbr|track|embed)\b[^<>]*>",
    re.IGNORECASE,
)


def _markdown_inline_html(text: str) -> str:
    if "<" not in text:
        return text
    text = _MD_HTML_DROP.sub(" ", text)
    return _MD_HTML_TAG.sub(lambda m: _data_tail(_src_data(m.group(0))), text)


def _src_data(tag: str) -> str:
    m = re.search(r"""\b(?:src|srcset|href)\s*=\s*["']?(data:[^"'\s>]*)""", tag, re.IGNORECASE)
    return m.group(1) if m else ""


def _read_markdown(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    text = _decode(data)
    front = re.match(r"^---\n(.*?)\n---\n", text, flags=re.DOTALL)
    title = None
    if front:  # YAML front matter: keep its title, drop the block
        m = re.search(r"^title:\s*[\"']?(.+?)[\"']?\s*$", front.group(1), flags=re.MULTILINE)
        title = m.group(1) if m else None
        text = text[front.end():]
    return [Page(None, _markdown_inline_html(_markdown_html(_markdown_images(text))))], title


def _read_text(data: bytes, path: Path, ocr: bool) -> tuple[list[Page], str | None]:
    return [Page(None, _decode(data))], None


# --------------------------------------------------------------------------------------------
# a time limit per file


class TimeoutDocumentError(DocumentError):
    kind = "trop long à lire"


class BoundedLoader:
    """:func:`load_document` in a child process, with a time limit per file.

    A pathological file (a PDF whose object graph loops, a zip bomb, a parser bug that never
    returns) has no time limit inside a parser, and a thread cannot be stopped: the child is
    killed after ``timeout_s`` seconds and a new one takes the next file; the file is reported
    (:class:`TimeoutDocumentError`). A child that dies (a native crash, out of memory) is
    reported the same way. One ``spawn`` child serves a whole sync (it imports the parsers once,
    about a second); ``spawn`` rather than ``fork`` because the parent runs llama.cpp threads.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, timeout_s: float, memory_mb: int | None = 4096) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._pool: Any = None

    def __enter__(self) -> BoundedLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(1, initializer=_child_init, initargs=(self.memory_mb,))
            # The child's start and its imports (a second or two) do not count against the
            # first file's limit.
            try:
                self._pool.apply_async(_warm_up).get(timeout=max(120.0, self.timeout_s))
            except multiprocessing.TimeoutError as err:  # pragma: no cover - a wedged machine
                self.close()
                raise CorruptDocumentError(
                    "le lecteur de documents n'a pas pu démarrer : réessayez ; si cela se "
                    "répète, réglez load_timeout_s = 0 (lecture dans le même processus)"
                ) from err
        return self._pool

    def load(
        self, path: Path, root: Path, *, max_bytes: int | None = None, ocr: bool = True
    ) -> LoadedDocument:
        """As :func:`load_document`; raises :class:`TimeoutDocumentError` past the limit."""
        import multiprocessing

        pool = self._get_pool()
        pending = pool.apply_async(
            load_document, (Path(path), Path(root)), {"max_bytes": max_bytes, "ocr": ocr}
        )
        try:
            result: LoadedDocument = pending.get(timeout=self.timeout_s)
        except multiprocessing.TimeoutError as err:
            self.close()  # kills the child stuck on this file; the next file gets a new one
            raise TimeoutDocumentError(
                f"lecture interrompue après {self.timeout_s:.0f} s (fichier anormal ou "
                "endommagé) : ouvrez-le et réenregistrez-le (ou exportez-le en PDF), ou "
                "augmentez la limite (réglage load_timeout_s)"
            ) from err
        except MemoryError as err:
            raise CorruptDocumentError(
                "lecture abandonnée : le fichier demande trop de mémoire (fichier anormal ou "
                "endommagé) ; réenregistrez-le ou exportez-le en PDF"
            ) from err
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


def _warm_up() -> None:
    """In the child: import the parsers once."""
    import bs4  # noqa: F401
    import docx  # noqa: F401
    import odf.opendocument  # noqa: F401
    import pypdf  # noqa: F401


def _child_init(memory_mb: int | None) -> None:
    """In the child: parsers that print (odfpy prints "SAX FAILED TO PARSE" and the XML on
    stdout) must not spoil the parent's output (``ingest --json``): stdout goes to stderr. The
    address space is capped so that a decompression bomb fails with MemoryError instead of
    taking the server's memory (Unix only; ignored elsewhere)."""
    import logging
    import sys

    sys.stdout = sys.stderr
    # As the ingest command does in its own process: pypdf's recoverable oddities are noise.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not memory_mb:
        return
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # pragma: no cover - platform without limits
        pass
