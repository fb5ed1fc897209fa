"""Accounts, groups and per-collection rights: hashing, the CLI, the proxy header, and the
filter inside both index queries (real Chroma + SQLite FTS5, bag-of-words embedder)."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assistant.auth import (
    LOCAL,
    AccessDeniedError,
    AccessError,
    AccountStore,
    Authenticator,
    Principal,
    hash_password,
    parse_groups,
    readable_collections,
    verify_password,
)
from assistant.config import Settings
from assistant.ingest import sync_folder
from assistant.retrieval import Retriever
from assistant.store import Index, build_index
from tests.fakes import FakeEmbedder

FAST = 12  # scrypt cost for tests that create many accounts (the default is 15)

RH_SECRET = "Le dossier disciplinaire de l'agent matricule 8842 porte sur des absences répétées."
URBA_TEXT = "Le permis de construire est instruit en deux mois par le service urbanisme."


# --- hashing ------------------------------------------------------------------------------------


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$15$8$3$") and first != second  # random salt
    assert "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("correct horse", "scrypt$15$8$3$pas-du-base64$")
    assert not verify_password("x", "md5$abc")


def test_accounts_lifecycle(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "accounts.sqlite3", log_n=FAST)
    store.add("m.durand", "une phrase de passe", ["Urbanisme", "dg", "dg"])
    assert store.get("m.durand").groups == ["dg", "urbanisme"]  # type: ignore[union-attr]
    assert store.verify("m.durand", "une phrase de passe") is not None
    assert store.verify("m.durand", "mauvais mot de passe") is None
    assert store.verify("inconnu", "une phrase de passe") is None
    with pytest.raises(AccessError, match="existe déjà"):
        store.add("m.durand", "une autre phrase")
    with pytest.raises(AccessError, match="trop court"):
        store.add("p.martin", "court")
    with pytest.raises(AccessError, match="invalide"):
        store.add("é t é", "une phrase de passe")
    with pytest.raises(AccessError, match="groupe invalide"):
        parse_groups("rh, état-civil")
    store.set_password("m.durand", "nouvelle phrase de passe")
    assert store.verify("m.durand", "une phrase de passe") is None
    assert store.verify("m.durand", "nouvelle phrase de passe") is not None
    store.set_groups("m.durand", ["rh"])
    assert [a.groups for a in store.list()] == [["rh"]]
    store.remove("m.durand")
    assert store.list() == []
    with pytest.raises(AccessError, match="inconnu"):
        store.remove("m.durand")
    # Nothing in the file but hashes.
    raw = (tmp_path / "accounts.sqlite3").read_bytes()
    assert b"nouvelle phrase" not in raw


# --- the CLI -------------------------------------------------------------------------------------


def run_cli(
    args: list[str], capsys: pytest.CaptureFixture[str], stdin: str = ""
) -> tuple[int, str]:
    import sys

    from assistant.cli import main

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        main(args)
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    finally:
        sys.stdin = old
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_users_commands(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--data-dir", str(settings.data_dir), "users"]
    code, text = run_cli([*base, "add", "m.durand", "--groups", "urbanisme,dg",
                          "--password-stdin"], capsys, "une phrase de passe\n")  # fmt: skip
    assert code == 0 and "dg, urbanisme" in text
    code, text = run_cli([*base, "add", "m.durand", "--password-stdin"], capsys, "autre phrase !\n")
    assert code != 0 and "existe déjà" in text
    code, text = run_cli([*base, "passwd", "m.durand", "--password-stdin"], capsys, "x\n")
    assert code != 0 and "trop court" in text
    new = "phrase neuve ok\n"
    code, _ = run_cli([*base, "passwd", "m.durand", "--password-stdin"], capsys, new)
    assert code == 0
    code, _ = run_cli([*base, "groups", "m.durand", "rh"], capsys)
    assert code == 0
    code, text = run_cli([*base, "list", "--json"], capsys)
    [user] = json.loads(text)["users"]
    assert user["name"] == "m.durand" and user["groups"] == ["rh"] and "password" not in user
    store = AccountStore(settings.accounts_path)
    assert store.verify("m.durand", "phrase neuve ok") is not None
    code, _ = run_cli([*base, "remove", "m.durand"], capsys)
    assert code == 0 and store.list() == []


def test_legacy_auth_file_migrates_to_hashed_accounts(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = tmp_path / "comptes.txt"
    legacy.write_text("marie:s3cret:avec:deux-points\npaul:court\n")
    code, text = run_cli(
        ["--data-dir", str(settings.data_dir), "users", "import", str(legacy), "-g", "dg"], capsys
    )
    assert code == 0 and "2 compte(s) importé(s)" in text and "paul" in text  # short password
    store = AccountStore(settings.accounts_path)
    assert store.verify("marie", "s3cret:avec:deux-points").groups == ["dg"]  # type: ignore[union-attr]
    assert b"s3cret" not in settings.accounts_path.read_bytes()


def test_legacy_auth_file_still_logs_in_without_groups(tmp_path: Path) -> None:
    auth = Authenticator(AccountStore(tmp_path / "a.sqlite3", log_n=FAST), [("marie", "secret")])
    assert auth.login_required and auth.check("marie", "secret")
    assert not auth.check("marie", "Secret") and not auth.check("inconnu", "secret")
    principal = auth.principal("marie")
    assert principal == Principal("marie") and not principal.may_read(["rh"])
    assert principal.may_read([])  # collections open to everyone


def test_proxy_header_is_believed_only_from_trusted_addresses(tmp_path: Path) -> None:
    store = AccountStore(tmp_path / "a.sqlite3", log_n=FAST)
    store.add("m.durand", "une phrase de passe", ["urbanisme"])
    auth = Authenticator(store, proxy_header="X-Remote-User", trusted=["10.0.0.0/24"])
    headers = {"x-remote-user": "m.durand"}
    trusted = auth.principal(None, headers, "10.0.0.7")
    assert trusted is not None and trusted.name == "m.durand"
    assert trusted.groups == frozenset({"urbanisme"})
    assert auth.principal(None, headers, "192.168.1.9") is None  # spoofed from elsewhere
    assert auth.principal(None, {}, "10.0.0.7") is None
    # Nothing configured at all: the local operator reads everything.
    assert Authenticator(None).principal(None) is LOCAL


# --- rights inside the index queries -------------------------------------------------------------


@pytest.fixture
def two_services(settings: Settings, tmp_path: Path) -> Index:
    """Collection ``rh`` (group rh) holds the best passage for a question about the agent's
    file; ``urbanisme`` (group urbanisme) a weaker one; ``commun`` is open to all."""
    index = build_index(settings)
    for name, text in (
        ("rh", RH_SECRET),
        ("urbanisme", URBA_TEXT + " Le dossier de l'agent instructeur est suivi."),
        ("commun", "Les horaires de la mairie : du lundi au vendredi."),
    ):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.md").write_text(f"# {name}\n\n{text}\n", encoding="utf-8")
        sync_folder(folder, name, index, FakeEmbedder())
    index.set_collection_groups("rh", ["rh"])
    index.set_collection_groups("urbanisme", ["urbanisme"])
    return index


class SpyIndex:
    """Records the collections each index query receives."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.queried: list[tuple[str, list[str]]] = []

    def dense_search(self, collections: list[str], *a: Any, **k: Any) -> Any:
        self.queried.append(("dense", list(collections)))
        return self.index.dense_search(collections, *a, **k)

    def lexical_search(self, collections: list[str], *a: Any, **k: Any) -> Any:
        self.queried.append(("lexical", list(collections)))
        return self.index.lexical_search(collections, *a, **k)

    def neighbours(self, *a: Any, **k: Any) -> Any:
        return self.index.neighbours(*a, **k)

    def has_collection(self, name: str) -> bool:
        return self.index.has_collection(name)


def test_a_user_never_retrieves_another_service_passage(two_services: Index) -> None:
    spy = SpyIndex(two_services)
    retriever = Retriever(spy, FakeEmbedder(), ["rh"])
    question = "dossier disciplinaire de l'agent matricule 8842"
    urbanist = Principal("m.durand", frozenset({"urbanisme"}))
    allowed = readable_collections(urbanist, two_services)
    assert allowed == ["commun", "urbanisme"]
    # The best passage is in rh; without rights it comes first (the test can see a leak).
    assert retriever.search(question, ["rh", "urbanisme"], k=3)[0].collection == "rh"
    spy.queried.clear()
    for mode in ("hybrid", "dense", "lexical"):
        hits = retriever.search(question, None, k=5, mode=mode, allowed=allowed)  # type: ignore[arg-type]
        assert hits and all(h.collection in allowed for h in hits)
        assert all("8842" not in h.text for h in hits)
    # The forbidden collection never reached either index query.
    assert spy.queried and all("rh" not in cols for _, cols in spy.queried)
    with pytest.raises(AccessDeniedError, match="non autorisée"):
        retriever.search(question, ["rh"], allowed=allowed)
    with pytest.raises(AccessDeniedError, match="non autorisée"):
        retriever.search(question, ["n-existe-pas"], allowed=allowed)  # same message
    assert readable_collections(Principal("x", frozenset({"rh"})), two_services) == [
        "commun", "rh",
    ]  # fmt: skip
    assert readable_collections(LOCAL, two_services) is None


def test_rights_change_without_restart(two_services: Index, settings: Settings) -> None:
    urbanist = Principal("m.durand", frozenset({"urbanisme"}))
    assert "rh" not in readable_collections(urbanist, two_services)  # type: ignore[operator]
    other = build_index(settings)  # as the CLI does, in another Index
    other.set_collection_groups("rh", ["rh", "urbanisme"])
    assert "rh" in readable_collections(urbanist, two_services)  # type: ignore[operator]
    other.set_collection_groups("rh", [])
    info = {c.name: c.groups for c in two_services.collections()}
    assert info["rh"] == () and info["urbanisme"] == ("urbanisme",)


def test_an_index_made_before_access_control_opens_with_open_collections(
    settings: Settings,
) -> None:
    settings.data_dir.mkdir(parents=True)
    with sqlite3.connect(settings.lexical_path) as db:
        db.execute(
            "CREATE TABLE collections (name TEXT PRIMARY KEY, embedder TEXT NOT NULL DEFAULT '', "
            "dimension INTEGER, folder TEXT, created_at TEXT NOT NULL, last_sync TEXT)"
        )
        db.execute("INSERT INTO collections (name, created_at) VALUES ('ancienne', 'x')")
    index = build_index(settings)
    assert index.collection_groups() == {"ancienne": []}


def test_ingest_groups_are_set_before_the_first_document(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from assistant.cli import ingest as cli_ingest

    monkeypatch.setattr(cli_ingest, "build_embedder", lambda s: FakeEmbedder())
    seen: list[list[str]] = []
    real_replace = Index.replace_document

    def spy(self: Index, collection: str, *a: Any, **k: Any) -> None:
        seen.append(self.collection_groups()[collection])
        real_replace(self, collection, *a, **k)

    monkeypatch.setattr(Index, "replace_document", spy)
    folder = tmp_path / "rh-docs"
    folder.mkdir()
    (folder / "a.md").write_text(f"# RH\n\n{RH_SECRET}\n", encoding="utf-8")
    data = ["--data-dir", str(settings.data_dir)]
    code, text = run_cli(
        [*data, "ingest", str(folder), "-c", "rh", "--groups", "rh,dg", "--json"], capsys
    )
    assert code == 0, text
    assert seen == [["dg", "rh"]]
    code, text = run_cli([*data, "collections", "groups", "rh"], capsys)
    assert code == 0 and "dg, rh" in text
    code, text = run_cli([*data, "collections", "groups", "rh", "--public"], capsys)
    assert code == 0 and "ouverte à tous" in text
    code, text = run_cli([*data, "collections", "groups", "rh"], capsys)
    assert "ouverte à tous" in text
    code, text = run_cli([*data, "collections", "groups", "rh", ""], capsys)
    assert code == 2 and "--public" in text


# --- the original documents route ---------------------------------------------------------------


def test_original_documents_follow_the_rights(two_services: Index, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    store = AccountStore(settings.accounts_path, log_n=FAST)
    store.add("m.durand", "une phrase de passe", ["urbanisme"])
    store.add("c.rh", "une phrase de passe", ["rh"])
    app = build_app(
        FakeDraftingService([]),
        settings,
        files=DocumentFiles.from_index(two_services),
        collections=lambda: [c.name for c in two_services.collections()],
        authenticator=Authenticator(store),
        groups=two_services.collection_groups,
    )
    with TestClient(app) as client:
        assert client.get("/fichiers/rh/rh.md").status_code == 401
        login = {"username": "m.durand", "password": "une phrase de passe"}
        assert client.post("/login", data=login).is_success
        assert client.get("/fichiers/urbanisme/urbanisme.md").status_code == 200
        denied = client.get("/fichiers/rh/rh.md")
        assert denied.status_code == 404 and "8842" not in denied.text
    with TestClient(app) as client:
        login = {"username": "c.rh", "password": "une phrase de passe"}
        assert client.post("/login", data=login).is_success
        opened = client.get("/fichiers/rh/rh.md")
        assert opened.status_code == 200 and "8842" in opened.text


def test_ask_as_an_account_uses_its_rights(
    two_services: Index, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from assistant.cli import ask as cli_ask
    from tests.fakes import FakeDraftingService

    AccountStore(settings.accounts_path, log_n=FAST).add("m.durand", "une phrase de passe",
                                                        ["urbanisme"])  # fmt: skip
    service = FakeDraftingService([])
    service.retriever = Retriever(two_services, FakeEmbedder(), ["rh"])  # type: ignore[assignment]
    monkeypatch.setattr(cli_ask, "build_service", lambda *a, **k: service)
    data = ["--data-dir", str(settings.data_dir)]
    question = ["ask", "dossier de l'agent", "--json", "--user"]
    code, text = run_cli([*data, *question, "m.durand"], capsys)
    assert code == 0, text
    assert service.requests[-1].allowed_collections == ["commun", "urbanisme"]
    assert "commun, urbanisme" in text
    code, _ = run_cli([*data, *question, "pas-un-compte"], capsys)
    assert code == 0 and service.requests[-1].allowed_collections is None


def test_the_reverse_proxy_header_is_believed_only_from_the_proxy(
    two_services: Index, settings: Settings
) -> None:
    from fastapi.testclient import TestClient

    from assistant.ui.app import DocumentFiles, build_app
    from tests.fakes import FakeDraftingService

    store = AccountStore(settings.accounts_path, log_n=FAST)
    store.add("c.rh", "une phrase de passe", ["rh"])
    app = build_app(
        FakeDraftingService([]),
        settings,
        files=DocumentFiles.from_index(two_services),
        authenticator=Authenticator(store, proxy_header="X-Remote-User", trusted=["10.0.0.5"]),
        groups=two_services.collection_groups,
    )
    as_hr = {"X-Remote-User": "c.rh"}
    with TestClient(app, client=("10.0.0.5", 40000)) as proxy:
        assert proxy.get("/fichiers/rh/rh.md", headers=as_hr).status_code == 200
        assert proxy.get("/fichiers/rh/rh.md").status_code == 401  # no user named
        other = {"X-Remote-User": "m.durand"}  # no account: open collections only
        assert proxy.get("/fichiers/rh/rh.md", headers=other).status_code == 404
        assert proxy.get("/fichiers/commun/commun.md", headers=other).status_code == 200
    with TestClient(app, client=("10.0.0.99", 40000)) as elsewhere:  # spoofed header
        assert elsewhere.get("/fichiers/rh/rh.md", headers=as_hr).status_code == 401


def test_doctor_reports_the_access_mode(settings: Settings, tmp_path: Path) -> None:
    from assistant.cli.doctor import check_access

    assert check_access(settings).status == "ok"  # loopback, no account
    wide = settings.model_copy(update={"host": "0.0.0.0"})
    assert check_access(wide).status == "fail"
    AccountStore(settings.accounts_path, log_n=FAST).add("m.durand", "une phrase de passe")
    assert "1 compte" in check_access(wide).detail
    legacy = tmp_path / "comptes.txt"
    legacy.write_text("marie:secret\n")
    warned = check_access(settings.model_copy(update={"auth_file": legacy}))
    assert warned.status == "warn" and "users import" in warned.fix
    proxy = settings.model_copy(update={"auth_header": "X-Remote-User"})
    assert check_access(proxy).status == "fail"
