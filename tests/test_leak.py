"""No leak between services, end to end: an agent of one service drafts with the real model
(SmolLM2) and the real embedder against a corpus whose best passage belongs to another service;
no output channel carries that passage: the prompt, the streamed sources (the UI's panel), the
answer, the DOCX/ODT export, the audit export, and ``/fichiers``. The same request by an agent
of the other service does get it (the test would see a leak)."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from assistant.auth import AccountStore, Authenticator, Principal, readable_collections
from assistant.config import DEFAULT_EMBEDDING_MODEL, TEST_CHAT_MODEL, Settings
from assistant.drafting import Draft, DraftingService, DraftRequest
from tests.conftest import MODELS_DIR, require_model

SECRET = "8842"
RH_DOC = (
    "# Dossier disciplinaire\n\n"
    f"L'agent matricule {SECRET} a reçu un avertissement le 3 mars pour des absences "
    "répétées et injustifiées au service des espaces verts. Le dossier disciplinaire de "
    f"l'agent matricule {SECRET} reste confidentiel.\n"
)
URBA_DOC = (
    "# Instruction des permis\n\n"
    "Les absences de l'agent instructeur sont compensées par un suppléant : le délai "
    "d'instruction d'un permis de construire reste de deux mois.\n"
)
QUESTION = f"Quelles sanctions pour les absences répétées de l'agent matricule {SECRET} ?"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_model(TEST_CHAT_MODEL)
    require_model(DEFAULT_EMBEDDING_MODEL)
    from assistant.drafting import build_service
    from assistant.embeddings import build_embedder
    from assistant.ingest import sync_folder
    from assistant.store import build_index

    root = tmp_path_factory.mktemp("leak")
    settings = Settings(
        data_dir=root / "data",
        models_dir=MODELS_DIR,
        chat_model=TEST_CHAT_MODEL,
        default_collection="urbanisme",
        threads=2,
        max_tokens=64,
        temperature=0.0,
    )
    index = build_index(settings)
    embedder = build_embedder(settings)
    for name, text, group in (("rh", RH_DOC, "rh"), ("urbanisme", URBA_DOC, "urbanisme")):
        folder = root / name
        folder.mkdir()
        (folder / f"{name}.md").write_text(text, encoding="utf-8")
        index.set_collection_groups(name, [group])
        sync_folder(folder, name, index, embedder)
    store = AccountStore(settings.accounts_path, log_n=12)
    store.add("m.durand", "une phrase de passe", ["urbanisme"])
    store.add("c.rh", "une phrase de passe", ["rh"])
    service = build_service(settings)
    return {"settings": settings, "index": index, "service": service, "store": store}


def draft_as(world: dict[str, Any], principal: Principal) -> tuple[Draft, list[Any]]:
    """Draft the question as ``principal`` (as the UI does: rights -> allowed collections),
    with every collection ticked; returns the final draft and the streamed events."""
    service: DraftingService = world["service"]
    allowed = readable_collections(principal, world["index"])
    request = DraftRequest(
        QUESTION, doc_type="question", user=principal.name, allowed_collections=allowed,
        collections=list(allowed or []),
    )  # fmt: skip
    events = list(service.stream(request))
    final = events[-1].draft
    assert final is not None
    return final, events


def channels(world: dict[str, Any], draft: Draft, events: list[Any]) -> dict[str, str]:
    """Every place the agent (or the DPO) can read something of a draft, as text."""
    from assistant.export import draft_to_bytes
    from assistant.ui import render

    def office_text(data: bytes) -> str:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            return " ".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())

    streamed = [s for e in events if e.kind == "sources" for s in e.sources]
    audit = "".join(world["service"].audit.export("jsonl"))
    return {
        "prompt": json.dumps(draft.prompt, ensure_ascii=False),
        "panneau des sources": render.sources_html(
            streamed or draft.sources, cited=[c.n for c in draft.citations], query=QUESTION
        ),
        "brouillon": draft.answer + " ".join(e.text for e in events if e.kind == "token"),
        "export docx": office_text(draft_to_bytes(draft, "docx")),
        "export odt": office_text(draft_to_bytes(draft, "odt")),
        "journal d'audit": audit,
    }


@pytest.mark.slow
def test_an_agent_never_sees_another_service_passage(world: dict[str, Any]) -> None:
    urbanist = world["store"].get("m.durand").principal()
    draft, events = draft_as(world, urbanist)
    assert all(c.collection != "rh" for c in draft.sources)
    for name, text in channels(world, draft, events).items():
        # The question itself names the matricule: look for the passage's own words.
        assert "avertissement le 3 mars" not in text, name
        assert "rh.md" not in text and "/fichiers/rh/" not in text, name

    # The positive control: the agent of HR gets that passage, in the same channels.
    hr = world["store"].get("c.rh").principal()
    draft_hr, events_hr = draft_as(world, hr)
    assert any(c.collection == "rh" for c in draft_hr.sources)
    seen = channels(world, draft_hr, events_hr)
    assert "avertissement le 3 mars" in seen["prompt"]
    assert "rh.md" in seen["panneau des sources"]


@pytest.mark.slow
def test_an_agent_cannot_open_another_service_document(world: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from assistant.ui.app import DocumentFiles, build_app

    index = world["index"]
    app = build_app(
        world["service"],
        world["settings"],
        files=DocumentFiles.from_index(index),
        collections=lambda: [c.name for c in index.collections()],
        authenticator=Authenticator(world["store"]),
        groups=index.collection_groups,
    )
    with TestClient(app) as client:
        assert client.post(
            "/login", data={"username": "m.durand", "password": "une phrase de passe"}
        ).is_success
        assert client.get("/fichiers/urbanisme/urbanisme.md").status_code == 200
        refused = client.get("/fichiers/rh/rh.md")
        assert refused.status_code == 404 and "avertissement" not in refused.text
        # The page's configuration lists no forbidden collection before login-time filtering.
        config = client.get("/config")
        assert '"rh"' not in config.text


def test_the_ui_passes_the_rights_of_the_logged_in_agent(tmp_path: Path) -> None:
    """Fast check of the UI's wiring (the slow tests above check the service end to end)."""
    from assistant.ui.app import access_resolver

    store = AccountStore(tmp_path / "a.sqlite3", log_n=12)
    store.add("m.durand", "une phrase de passe", ["urbanisme"])
    groups = {"rh": ["rh"], "urbanisme": ["urbanisme"], "commun": []}
    resolve = access_resolver(Authenticator(store), lambda: groups)

    class Req:
        username = "m.durand"
        headers = None
        client = None

    who = resolve(Req())
    assert who.user == "m.durand" and who.collections == ["commun", "urbanisme"]
    assert who.filter(["rh", "urbanisme", "commun"]) == ["urbanisme", "commun"]

    class Nobody(Req):
        username = None  # type: ignore[assignment]

    denied = resolve(Nobody())
    assert denied.denied and denied.filter(["commun"]) == []
    # No authentication configured (loopback): everything, as before.
    assert access_resolver(None, lambda: groups)(Nobody()).collections is None


@pytest.mark.slow
def test_the_web_page_over_http_shows_no_other_service_passage(world: dict[str, Any]) -> None:
    """The page's own path, over real HTTP: log in as the urbanism agent, tick every collection
    the page offers, press "Rédiger": the sources panel and the draft hold nothing of HR; the
    HR collection is not even offered, and asking for it by hand is refused."""
    from gradio_client import Client

    from tests.test_load import _STATUS, serve

    settings: Settings = world["settings"]
    with serve(settings.data_dir, max_queue=4) as server:
        client = Client(server.url, auth=("m.durand", "une phrase de passe"), verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        offered = api["/start"]["parameters"][1]["type"]["items"].get("enum", [])
        assert "rh" not in offered
        extra = len(api["/start"]["parameters"]) - 3
        # What the page does when it opens: ask for this agent's collections.
        loaded = client.predict(api_name="/refresh_collections")
        assert "rh" not in str(loaded) and "urbanisme" in str(loaded)
        job = client.submit(
            "question", ["urbanisme"], QUESTION, *([""] * extra), api_name="/start"
        )
        seen = [v for output in job for v in output if isinstance(v, str)]
        job.result(timeout=300)
        page = " ".join(seen)
        assert "urbanisme.md" in page or "ne suffisent pas" in page  # it did draft (or abstain)
        assert "avertissement le 3 mars" not in page and "rh.md" not in page
        try:  # the page may refuse the value itself, or the service refuses the collection
            job = client.submit("question", ["rh"], QUESTION, *([""] * extra), api_name="/start")
            forced = " ".join(v for out in job for v in out if isinstance(v, str))
            job.result(timeout=300)
        except Exception as err:  # refused by Gradio's validation of the choices
            forced = f'<div class="status status-error">{err}</div>'
        statuses = _STATUS.findall(forced)
        assert "avertissement le 3 mars" not in forced
        assert statuses and statuses[-1][0] == "error", statuses

