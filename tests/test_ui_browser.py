"""The agents' page in headless Chromium (Debian's ``chromium``, driven by Playwright).

Two servers: one on the fake drafting service (fast, every control), one on the real service
(SmolLM2-135M, real embedder, real Chroma index of corpus/exemple). Every test asserts that
the browser asked nothing of any host but the server itself.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium absent (/usr/bin/chromium) : apt-get install -y chromium",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    url: str
    origin: str


def serve(app: Any) -> Iterator[Served]:
    """Run a FastAPI app with uvicorn in a thread until the test ends."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("le serveur de test n'a pas démarré")
        time.sleep(0.05)
    origin = f"http://127.0.0.1:{port}"
    try:
        yield Served(url=origin + "/", origin=origin)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Browser:
    page: Any
    requests: list[str] = field(default_factory=list)

    def foreign(self, origin: str) -> list[str]:
        return [
            u
            for u in self.requests
            if not (u.startswith(origin) or u.startswith(("data:", "blob:")))
        ]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profil-chromium"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            locale="fr-FR",
            viewport={"width": 1440, "height": 1000},
            accept_downloads=True,
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        seen = Browser(page)
        page.on("request", lambda r: seen.requests.append(r.url))
        try:
            yield seen
        finally:
            context.close()


def citations() -> list[Any]:
    from assistant.drafting import Citation

    return [
        Citation(1, "reglement.pdf", 2, "Chapitre II > Article 5", "Règlement intérieur",
                 "Les demandes écrites des usagers reçoivent une réponse dans un délai de deux "
                 "mois.", "exemple"),
        Citation(2, "reglement.pdf", 3, "Chapitre III", "Règlement intérieur",
                 "Le silence gardé pendant deux mois vaut décision d'acceptation.", "exemple"),
        Citation(3, "reglement.pdf", 1, "", "Règlement intérieur", "Passage non cité.",
                 "exemple"),
    ]  # fmt: skip


def make_pdf(path: Path, pages: int = 3) -> None:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for number in range(1, pages + 1):
        pdf.drawString(72, 720, f"Reglement interieur, page {number}")
        pdf.showPage()
    pdf.save()


class RecordingFeedback:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, str]] = []

    def record_feedback(
        self, draft_id: str, rating: int, comment: str = "", user: str = "anonyme"
    ) -> None:
        self.calls.append((draft_id, rating, comment, user))


def fill_courrier(page: Any, request: str) -> None:
    page.wait_for_selector("#btn-rediger")
    page.get_by_label("Type de document").click()
    page.get_by_role("option", name="Courrier").click()
    page.get_by_label("Destinataire (obligatoire)").fill("Madame Jeanne Martin\n12 rue des Lilas")
    page.get_by_label("Objet (obligatoire)").fill("Délais de réponse de la mairie")
    page.get_by_label("Votre demande").fill(request)


def download(page: Any, button: str, dest: Path) -> Path:
    """Click an export button, then the file link it shows; save the download."""
    page.click(button)
    link = page.locator("#fichier-export a[download], #fichier-export a[href*='file=']").first
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    target = dest / info.value.suggested_filename
    info.value.save_as(target)
    return target


# --- fake service ---------------------------------------------------------------------------------


@pytest.fixture
def fake_site(tmp_path: Path, settings: Any) -> Iterator[tuple[Served, Any, RecordingFeedback]]:
    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "reglement.pdf")
    service = FakeDraftingService(citations(), delay=0.03, queue=(2, 1), queue_delay=1.0)
    sink = RecordingFeedback()
    app = build_app(
        service,
        settings,
        files=DocumentFiles(lambda: {"exemple": docs}, lambda _c: ["reglement.pdf"]),
        collections=["exemple", "urbanisme"],
        feedback=sink,
    )
    for served in serve(app):
        yield served, service, sink


def test_fake_courrier_stream_sources_export_feedback(
    fake_site: tuple[Served, Any, RecordingFeedback], browser: Browser, tmp_path: Path
) -> None:
    from docx import Document
    from odf import teletype
    from odf.opendocument import load as load_odt
    from odf.text import P

    served, service, sink = fake_site
    page = browser.page
    page.goto(served.url)
    page.wait_for_function("document.documentElement.lang === 'fr'")  # set by our head script
    fill_courrier(page, "Répondre sur les délais de réponse aux demandes écrites")
    page.click("#btn-rediger")
    # Waiting in the queue, then tokens as they come (the cursor marks a live stream).
    page.wait_for_selector("#statut .status-queue")
    assert "position 2" in page.inner_text("#statut")
    page.wait_for_selector("#brouillon .cursor")
    first = len(page.inner_text("#brouillon"))
    assert page.is_enabled("#btn-arreter")
    page.wait_for_selector("#statut .status-done")
    assert len(page.inner_text("#brouillon")) > first
    # What the model read, measured by llama.cpp, in a details line under the status.
    details = page.inner_text("#statut .status-details")
    assert "812 jetons dont 640 déjà en cache" in details and "premier mot en 3,1 s" in details
    assert not page.is_enabled("#btn-arreter")
    request = service.requests[-1]
    assert request.doc_type == "courrier"
    assert request.fields["objet"] == "Délais de réponse de la mairie"
    assert request.collections == ["exemple"]

    # A citation in the text opens its card; the card links to the PDF at its page.
    page.click("#brouillon a.cite >> nth=0")
    card = page.locator("#source-1")
    assert "src-active" in (card.get_attribute("class") or "")
    assert page.evaluate("document.activeElement.id") == "source-1"
    href = card.locator(".src-open a").get_attribute("href")
    assert href == "/fichiers/exemple/reglement.pdf#page=2"
    pdf = page.request.get(served.origin + href.split("#")[0])
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    assert page.request.get(served.origin + "/fichiers/exemple/../../etc/passwd").status == 404
    assert "Autres passages consultés" in page.inner_text("#sources")

    # The agent edits the text; exports carry the edit, the layout and the sources.
    page.get_by_role("tab", name="Modifier le texte").click()
    editor = page.get_by_label("Texte du brouillon (modifiable)")
    editor.fill(editor.input_value().replace("Madame,", "Chère Madame,"))
    # The agent leaves the editor before exporting, as a click elsewhere does: exporting in the
    # same instant as Playwright's keystrokes sent the text as it was (2 runs of 3, session 30).
    editor.blur()
    docx_path = download(page, "#btn-docx", tmp_path)
    assert docx_path.suffix == ".docx"
    texts = [p.text for p in Document(str(docx_path)).paragraphs]
    assert "Chère Madame," in texts
    assert "Objet : Délais de réponse de la mairie" in texts
    assert "Madame Jeanne Martin\n12 rue des Lilas" in texts
    assert any(t.startswith("[1] Règlement intérieur") for t in texts)
    odt_path = download(page, "#btn-odt", tmp_path)
    odt_texts = [teletype.extractText(p) for p in load_odt(str(odt_path)).text.getElementsByType(P)]
    assert "Chère Madame," in odt_texts and "Annexe — Sources utilisées" in odt_texts

    # Follow-up revises the edited draft; the history keeps both drafts.
    page.get_by_label("Demander une modification du brouillon").fill("plus court")
    page.click("#btn-reviser")
    page.wait_for_function(
        "document.querySelector('#brouillon').innerText.includes('Version révisée')"
    )
    page.wait_for_selector("#statut .status-done")
    revised = service.requests[-1]
    assert revised.previous is not None and "Chère Madame," in revised.previous.answer
    page.get_by_label("Brouillons de cette session").click()
    assert page.get_by_role("option").count() == 2

    # Feedback reaches the audit sink with the draft's id.
    page.keyboard.press("Escape")
    page.click("#avis")
    page.get_by_label("👎 Pas utile").check()
    page.get_by_label("Commentaire (facultatif)").fill("Ton trop sec")
    page.click("#btn-avis")
    page.wait_for_selector("#avis-statut .status-done")
    assert sink.calls == [("fake0002", -1, "Ton trop sec", "anonyme")]
    assert browser.foreign(served.origin) == []


def test_fake_stop_keeps_partial_text(tmp_path: Path, settings: Any, browser: Browser) -> None:
    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    service = FakeDraftingService(
        citations(), delay=0.2, answer_for=lambda r: "Madame, " + "mot [1] " * 200
    )
    app = build_app(service, settings, files=DocumentFiles(dict), collections=["exemple"])
    for served in serve(app):
        page = browser.page
        page.goto(served.url)
        fill_courrier(page, "Une réponse très longue")
        page.get_by_role("button", name="Rédiger").press("Enter")  # keyboard only
        page.wait_for_selector("#brouillon .cursor")
        page.click("#btn-arreter")
        page.wait_for_selector("#statut .status-done")
        assert "arrêtée" in page.inner_text("#statut")
        text = page.inner_text("#brouillon")
        assert text.startswith("Madame,") and text.count("mot") < 200
        assert service.closed == 1  # the service's stream was closed (the model is released)
        assert page.is_enabled("#btn-rediger")
        assert browser.foreign(served.origin) == []


def test_the_export_carries_the_checked_text_not_the_streamed_one(
    tmp_path: Path, settings: Any, browser: Browser
) -> None:
    """The service's checks change the text at the end (« À VÉRIFIER » marks). The editor,
    which the exports, the copy and a revision read, must hold that final text: it once kept
    the last streamed preview, and a DOCX went out without its marks."""
    from docx import Document

    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    mark = "[À VÉRIFIER : « 3 mois » ne figure pas dans les sources citées]"
    service = FakeDraftingService(
        citations(),
        delay=0.02,
        checked=lambda text: text.replace("deux mois [2]", f"deux mois {mark} [2]"),
    )
    app = build_app(service, settings, files=DocumentFiles(dict), collections=["exemple"])
    for served in serve(app):
        page = browser.page
        page.goto(served.url)
        fill_courrier(page, "Répondre sur les délais")
        page.click("#btn-rediger")
        page.wait_for_selector("#statut .status-done")
        page.get_by_role("tab", name="Modifier le texte").click()
        editor = page.get_by_label("Texte du brouillon (modifiable)")
        assert mark in editor.input_value()
        texts = [p.text for p in Document(str(download(page, "#btn-docx", tmp_path))).paragraphs]
        assert any(mark in t for t in texts)


def test_page_html_has_no_foreign_url_or_google_font(
    tmp_path: Path, settings: Any, browser: Browser
) -> None:
    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    app = build_app(
        FakeDraftingService(citations()), settings, files=DocumentFiles(dict), collections=[]
    )
    for served in serve(app):
        html = browser.page.request.get(served.url).text()
        hosts = set(re.findall(r"https?://([^/\"'\s)\\]+)", html))
        assert hosts <= {served.origin.removeprefix("http://")}, hosts
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
        browser.page.goto(served.url)
        browser.page.wait_for_selector("#statut .status-error")  # no collection: say what to do
        assert "assistant ingest" in browser.page.inner_text("#statut")
        page = browser.page
        for label in ("Type de document", "Votre demande", "Objet (obligatoire)"):
            assert page.get_by_label(label).count() == 1, label
        group = page.get_by_role("group", name="Collections de documents consultées")
        assert group.count() == 1  # our script labels Gradio's checkbox group
        for button in ("Rédiger", "Exporter en Word (DOCX)", "Copier le texte"):
            assert page.get_by_role("button", name=button).count() == 1, button
        assert browser.foreign(served.origin) == []


# --- real service ---------------------------------------------------------------------------------


def _screenshot_dir(tmp_path: Path) -> Path:
    """Screenshots go to UI_SCREENSHOT_DIR when set (docs/screenshots/), else tmp."""
    target = Path(os.environ.get("UI_SCREENSHOT_DIR", tmp_path / "captures"))
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def real_site(
    tmp_path: Path, settings: Any, require_model_file: Callable[[str], Path]
) -> Iterator[tuple[Served, Any]]:
    from assistant.config import TEST_CHAT_MODEL
    from assistant.drafting import build_service
    from assistant.ui.app import DocumentFiles, build_app

    require_model_file(TEST_CHAT_MODEL)
    require_model_file(settings.embedding_model)
    ingest = pytest.importorskip("assistant.ingest", reason="ingestion pas encore livrée")
    corpus = REPO / "corpus" / "exemple"
    real = settings.model_copy(update={"chat_model": TEST_CHAT_MODEL, "max_tokens": 160})
    ingest_folder(ingest, real, corpus)
    service = build_service(real)
    index = service.retriever.index  # type: ignore[union-attr]
    app = build_app(
        service,
        real,
        files=DocumentFiles.from_index(index),
        collections=lambda: [c.name for c in index.collections()],
        feedback=service.audit,
    )
    for served in serve(app):
        yield served, service


def ingest_folder(ingest: Any, settings: Any, corpus: Path) -> None:
    """Index corpus/exemple with the real embedder into the test's data_dir."""
    from assistant.embeddings import build_embedder
    from assistant.store import build_index

    index = build_index(settings)
    try:
        report = ingest.sync_folder(
            corpus, settings.default_collection, index, build_embedder(settings), ocr=False
        )
        assert not report.failed, report.failed
    finally:
        index.close()


def test_real_courrier_with_smollm(
    real_site: tuple[Served, Any], browser: Browser, tmp_path: Path
) -> None:
    from docx import Document
    from odf import teletype
    from odf.opendocument import load as load_odt
    from odf.text import P

    served, _service = real_site
    page = browser.page
    page.goto(served.url)
    fill_courrier(page, "Répondre à Mme Martin sur les horaires d'ouverture de la mairie")
    page.click("#btn-rediger")
    page.wait_for_selector("#brouillon .cursor", timeout=120_000)  # tokens stream in
    page.wait_for_selector("#statut .status-done", timeout=300_000)
    shots = _screenshot_dir(tmp_path)
    text = page.inner_text("#brouillon")
    assert len(text.split()) > 5
    cards = page.locator("#sources article.src-card")
    assert cards.count() >= 1
    first = cards.first
    first_id = first.get_attribute("id")
    cite = page.locator("#brouillon a.cite").first
    if cite.count():
        cite.click()
        active = page.locator("#sources .src-active")
        assert active.count() == 1
    else:  # the tiny model may cite nothing: the passages it read are shown, unfolded
        assert page.locator("#sources details[open]").count() == 1
    href = page.locator(f"#{first_id} .src-open a").get_attribute("href")
    assert href and href.startswith("/fichiers/exemple/")
    opened = page.request.get(served.origin + href.split("#")[0])
    assert opened.status == 200
    page.screenshot(path=str(shots / "ecran-principal-brouillon-sources.png"), full_page=True)

    docx_path = download(page, "#btn-docx", tmp_path)
    texts = [p.text for p in Document(str(docx_path)).paragraphs]
    assert "Objet : Délais de réponse de la mairie" in texts
    assert "Annexe — Sources utilisées" in texts
    odt_path = download(page, "#btn-odt", tmp_path)
    odt = [teletype.extractText(p) for p in load_odt(str(odt_path)).text.getElementsByType(P)]
    assert "Objet : Délais de réponse de la mairie" in odt
    if os.environ.get("UI_SCREENSHOT_DIR"):  # to render it as an image (libreoffice, pdftoppm)
        (Path(tempfile.gettempdir()) / "brouillon-courrier.docx").write_bytes(
            docx_path.read_bytes()
        )
    assert browser.foreign(served.origin) == []
