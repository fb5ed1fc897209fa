"""Pure rendering of the agents' page: source cards, clickable citations, waiting messages."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from assistant.drafting import Citation
from assistant.errors import ConfigError
from assistant.ui import render
from assistant.ui.app import DocumentFiles, check_exposure, read_auth_file


def cite(n: int, **kw: object) -> Citation:
    base: dict[str, object] = {
        "source": "deliberations/2024-03 tarifs.pdf",
        "page": 4,
        "heading": "Tarifs > Restauration scolaire",
        "title": "Délibération tarifs 2024",
        "text": "Le prix du repas est fixé à 3,20 euros pour les enfants domiciliés.",
        "collection": "exemple",
    }
    base.update(kw)
    return Citation(n=n, **base)  # type: ignore[arg-type]


class _Collect(HTMLParser):
    """Tags with their attributes, and the text, of a fragment (also proves it parses)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def test_card_shows_title_page_heading_passage_and_link_to_the_page() -> None:
    html = render.sources_html([cite(1)], cited=[1], query="prix du repas")
    doc = parse(html)
    text = "".join(doc.text)
    assert "Délibération tarifs 2024" in text
    assert "page 4" in text
    assert "Tarifs › Restauration scolaire" in text
    articles = [a for t, a in doc.tags if t == "article"]
    assert articles[0]["id"] == "source-1"
    links = [a["href"] for t, a in doc.tags if t == "a"]
    assert links == ["/fichiers/exemple/deliberations/2024-03%20tarifs.pdf#page=4"]
    marked = [t for t, _ in doc.tags if t == "mark"]
    assert len(marked) >= 2  # "prix" and "repas" are highlighted in the passage


def test_highlight_matches_french_stems_and_escapes() -> None:
    out = render.highlight("Les délais <b>légaux</b> du délai", "délai")
    assert out.count("<mark>") == 2  # "délais" and "délai" share their stem
    assert "&lt;b&gt;" in out and "<b>" not in out


def test_document_text_is_escaped_everywhere() -> None:
    evil = cite(1, title="<script>alert(1)</script>", text="<img src=x onerror=alert(1)>")
    html = render.sources_html([evil], cited=[1])
    assert "<script>" not in html and "<img" not in html
    answer = render.answer_html("Bonjour <script>x</script> [1]", [evil])
    assert "<script>" not in answer


def test_uncited_sources_are_grouped_apart() -> None:
    html = render.sources_html([cite(1), cite(2, title="Autre")], cited=[2])
    doc = parse(html)
    ids = [a["id"] for t, a in doc.tags if t == "article"]
    assert ids == ["source-2", "source-1"]  # the cited one first, the other in <details>
    assert html.index("<details") < html.index('id="source-1"')


def test_no_page_no_anchor_and_non_pdf_has_no_page_fragment() -> None:
    assert render.file_url("exemple", "note.docx", 3) == "/fichiers/exemple/note.docx"
    assert render.file_url("a b", "x/y.pdf", None) == "/fichiers/a%20b/x/y.pdf"
    html = render.sources_html([cite(1, page=None)], cited=[1])
    assert "Ouvrir le document</a>" in html.replace(
        '<span class="sr-only"> (nouvel onglet)</span>', ""
    )


def test_answer_links_known_citations_only() -> None:
    html = render.answer_html(
        "Vu le code [1, 2] et l'arrêté [7].\n\nSecond paragraphe.", [cite(1), cite(2)]
    )
    doc = parse(html)
    hrefs = [a["href"] for t, a in doc.tags if t == "a"]
    assert hrefs == ["#source-1", "#source-2"]
    assert "[7]" in "".join(doc.text)  # unknown number left as plain text
    assert [t for t, _ in doc.tags].count("p") == 2
    labels = [a["aria-label"] for t, a in doc.tags if t == "a"]
    assert labels[0] == "Voir la source 1 : Délibération tarifs 2024"


def test_streaming_answer_shows_cursor_and_busy_state() -> None:
    assert 'aria-busy="true"' in render.answer_html("Madame,", [], streaming=True)
    assert "aria-busy" not in render.answer_html("Madame,", [])


@pytest.mark.parametrize(
    ("position", "per_draft", "expected"),
    [
        (0, None, "C'est votre tour"),
        (1, 30.0, "vous êtes le prochain"),
        (1, 30.0, "moins d'une minute"),
        (3, 100.0, "position 3"),
        (3, 100.0, "environ 5 min"),
        (2, None, "inutile de la recharger"),
    ],
)
def test_queue_message(position: int, per_draft: float | None, expected: str) -> None:
    assert expected in render.queue_message(position, per_draft)


def test_document_files_refuse_traversal_unknown_and_outside(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sous").mkdir(parents=True)
    (root / "sous" / "a.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "secret.txt").write_text("x")
    (root / "lien.pdf").symlink_to(tmp_path / "secret.txt")
    files = DocumentFiles(
        lambda: {"exemple": root}, lambda _c: ["sous/a.pdf", "../secret.txt", "lien.pdf"]
    )
    assert files.path("exemple", "sous/a.pdf") == (root / "sous" / "a.pdf").resolve()
    assert files.path("exemple", "../secret.txt") is None  # listed, but outside the root
    assert files.path("exemple", "lien.pdf") is None  # symlink escaping the root
    assert files.path("autre", "sous/a.pdf") is None  # collection not ingested
    unlisted = DocumentFiles(lambda: {"exemple": root}, lambda _c: [])
    assert unlisted.path("exemple", "sous/a.pdf") is None  # not in the manifest


def test_exposure_needs_auth_beyond_loopback(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    assert check_exposure(settings) is None
    wide = settings.model_copy(update={"host": "0.0.0.0"})
    with pytest.raises(ConfigError, match="auth_file"):
        check_exposure(wide)
    auth = tmp_path / "comptes.txt"
    auth.write_text("# agents\nmarie:s3cret:avec:deux-points\n\npaul:motdepasse\n")
    authenticator = check_exposure(wide.model_copy(update={"auth_file": auth}))
    assert authenticator is not None and authenticator.legacy == {
        "marie": "s3cret:avec:deux-points",
        "paul": "motdepasse",
    }
    assert authenticator.check("marie", "s3cret:avec:deux-points")
    auth.write_text("sans-separateur\n")
    with pytest.raises(ConfigError, match="ligne 1"):
        read_auth_file(auth)


def test_serve_refuses_open_address_without_accounts(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from assistant.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(settings.data_dir), "serve", "--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "0.0.0.0" in err and "auth_file" in err


def test_original_documents_need_login_when_accounts_exist(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from assistant.ui.app import build_app
    from tests.fakes import FakeDraftingService

    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 test")
    files = DocumentFiles(lambda: {"exemple": tmp_path}, lambda _c: ["a.pdf"])
    app = build_app(
        FakeDraftingService([]), settings, files=files, collections=["exemple"],
        auth=[("marie", "secret")],
    )  # fmt: skip
    with TestClient(app) as client:
        assert client.get("/fichiers/exemple/a.pdf").status_code == 401
        assert (
            client.post("/login", data={"username": "marie", "password": "faux"}).status_code == 400
        )
        assert client.post("/login", data={"username": "marie", "password": "secret"}).is_success
        opened = client.get("/fichiers/exemple/a.pdf")
        assert opened.status_code == 200 and opened.content.startswith(b"%PDF")


def test_details_line_in_french_from_the_measured_timings() -> None:
    timings = {
        "prompt_tokens": 2212,
        "cached_tokens": 640,
        "first_token_s": 3.14,
        "tokens_per_s": 18.4,
    }
    line = render.details_line(timings)
    assert line == (
        "Contexte : 2\u202f212 jetons dont 640 déjà en cache · premier mot en 3,1 s · 18 jetons/s"
    )
    # No model call (abstention) or stopped before the first word: no line.
    assert render.details_line({"prompt_tokens": 0, "first_token_s": None}) == ""
    assert render.details_line({"prompt_tokens": 900, "first_token_s": None}) == ""
    html = render.status_html("Brouillon prêt.", "done", line)
    assert '<span class="status-details">Contexte : 2' in html and "Brouillon prêt." in html
    assert "status-details" not in render.status_html("Brouillon prêt.", "done")
