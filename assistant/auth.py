"""Accounts, groups (services) and who may read which collection.

- An **account** is a user name, a password hash and the groups (services) it belongs to, kept
  in ``<data_dir>/accounts.sqlite3`` and managed with ``assistant users add|remove|passwd|list``.
- A **collection** lists the groups allowed to read it (``assistant ingest … --groups urbanisme,dg``
  or ``assistant collections groups NOM …``; stored by :class:`assistant.store.Index`). A
  collection without groups is readable by every account (that is how collections indexed before
  access control stay usable after an upgrade).
- A :class:`Principal` is who makes a request: an account, a user named by the town's reverse
  proxy (header ``auth_header``, trusted only from ``trusted_proxies``), or the local operator
  (no account configured, loopback only: everything readable, as before).

Retrieval receives the principal's readable collections and filters inside both index queries
(see :meth:`assistant.retrieval.Retriever.search`, parameter ``allowed``).

Passwords are hashed with scrypt from the standard library (``hashlib.scrypt``): a memory-hard
KDF, with one of the equivalent minimum configurations of OWASP's Password Storage Cheat Sheet,
N = 2**15, r = 8, p = 3 (32 MiB and 0.7 s per login measured on the 2-core test machine under
load; the N = 2**17, p = 1 variant costs the same time but 128 MiB, too much when a whole town
hall logs in at 9 o'clock), and a 16-byte random salt. The parameters are stored in each hash
so that they can be raised later without breaking existing accounts. No third-party dependency,
nothing to configure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError, ConfigError

if TYPE_CHECKING:
    from assistant.config import Settings

# OWASP Password Storage Cheat Sheet, scrypt, one of its equivalent minimums: N=2^15, r=8, p=3.
SCRYPT_LOG_N = 15
SCRYPT_R = 8
SCRYPT_P = 3
_SALT_BYTES = 16
_KEY_BYTES = 32
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MIN_PASSWORD = 10
LOCAL_USER = "local"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY,
    password TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class AccessError(AssistantError):
    """Bad credentials, an unknown account, or a collection the user may not read."""


class AccessDeniedError(AccessError):
    """The user asked for a collection outside their rights."""

    exit_code = 3


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- password hashing ---------------------------------------------------------------------------


def hash_password(password: str, *, log_n: int = SCRYPT_LOG_N) -> str:
    """``scrypt$<log2 N>$<r>$<p>$<salt b64>$<key b64>`` for ``password`` (random salt)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, log_n, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${log_n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    n = 1 << log_n
    # hashlib needs maxmem above 128 * N * r bytes (the default 32 MiB is below N = 2**17).
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + (1 << 20),
        dklen=_KEY_BYTES,
    )


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (a :func:`hash_password` string); constant-time
    comparison; a malformed ``stored`` value is simply no match."""
    try:
        scheme, log_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = _scrypt(password, base64.b64decode(salt), int(log_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, got)


def parse_groups(text: str | Iterable[str] | None) -> list[str]:
    """``"urbanisme, dg"`` (or a list) -> ``["dg", "urbanisme"]``, validated, deduplicated.

    Raises :class:`AccessError` for a malformed name."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    out: set[str] = set()
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if not GROUP_NAME.match(name):
            raise AccessError(
                f"Nom de groupe invalide : « {raw.strip()} ». Utilisez des minuscules sans "
                "accent, chiffres, « - » ou « _ » (par exemple « urbanisme » ou « etat-civil »)."
            )
        out.add(name)
    return sorted(out)


# --- who is asking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who makes a request. ``unrestricted``: the local operator (CLI on the server, or the UI on
    loopback with no account configured), who reads every collection."""

    name: str
    groups: frozenset[str] = frozenset()
    unrestricted: bool = False

    def may_read(self, collection_groups: Sequence[str]) -> bool:
        """A collection with no groups is open to every user; otherwise one group in common."""
        if self.unrestricted or not collection_groups:
            return True
        return bool(self.groups & set(collection_groups))


LOCAL = Principal(LOCAL_USER, unrestricted=True)


def readable_collections(principal: Principal, index: Any) -> list[str] | None:
    """The collections ``principal`` may read, or ``None`` for no restriction at all.

    ``index.collection_groups()`` maps every collection to its groups (``[]`` = open)."""
    if principal.unrestricted:
        return None
    groups: dict[str, list[str]] = index.collection_groups()
    return sorted(name for name, allowed in groups.items() if principal.may_read(allowed))


# --- accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    name: str
    groups: list[str]
    created_at: str
    updated_at: str

    def principal(self) -> Principal:
        return Principal(self.name, frozenset(self.groups))

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": self.groups,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name or ""):
        raise AccessError(
            f"Nom d'utilisateur invalide : « {name} ». Utilisez de 1 à 64 lettres sans accent, "
            "chiffres, « . », « _ », « - » ou « @ » (par exemple « m.durand »)."
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccessError(
            f"Mot de passe trop court : au moins {MIN_PASSWORD} caractères. Choisissez-en un "
            "plus long (une phrase de passe convient)."
        )
    return password


class AccountStore:
    """Accounts in one SQLite file; one connection per operation (safe from any thread).

    ``log_n`` is the scrypt cost of new hashes (tests lower it; verification reads the cost
    stored in each hash)."""

    def __init__(self, path: Path, *, log_n: int = SCRYPT_LOG_N) -> None:
        self.path = Path(path)
        self.log_n = log_n
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"Impossible d'ouvrir le fichier des comptes {self.path} ({err}). Vérifiez les "
                "droits sur le dossier des données (data_dir)."
            ) from err

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    @staticmethod
    def _account(row: sqlite3.Row) -> Account:
        return Account(row["name"], json.loads(row["groups"]), row["created_at"], row["updated_at"])

    def list(self) -> list[Account]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM accounts ORDER BY name").fetchall()
        return [self._account(r) for r in rows]

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])

    def get(self, name: str) -> Account | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        return self._account(row) if row else None

    def _require(self, name: str) -> None:
        if self.get(name) is None:
            raise AccessError(
                f"Compte inconnu : « {name} ». Voyez la liste avec « assistant users list »."
            )

    def add(
        self,
        name: str,
        password: str,
        groups: Iterable[str] = (),
        *,
        enforce_policy: bool = True,
    ) -> Account:
        """Create an account (``enforce_policy=False``: accept a short password, for the
        migration of an old ``auth_file``). Raises :class:`AccessError`."""
        check_user_name(name)
        if enforce_policy:
            check_password(password)
        groups = parse_groups(groups)
        stamp = _now()
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO accounts (name, password, groups, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, hash_password(password, log_n=self.log_n), json.dumps(groups),
                     stamp, stamp),
                )  # fmt: skip
        except sqlite3.IntegrityError as err:
            raise AccessError(
                f"Le compte « {name} » existe déjà. Changez son mot de passe avec « assistant "
                f"users passwd {name} » ou ses groupes avec « assistant users groups »."
            ) from err
        account = self.get(name)
        assert account is not None
        return account

    def remove(self, name: str) -> None:
        self._require(name)
        with self._connect() as db:
            db.execute("DELETE FROM accounts WHERE name = ?", (name,))

    def set_password(self, name: str, password: str) -> None:
        self._require(name)
        check_password(password)
        with self._connect() as db:
            db.execute(
                "UPDATE accounts SET password = ?, updated_at = ? WHERE name = ?",
                (hash_password(password, log_n=self.log_n), _now(), name),
            )

    def set_groups(self, name: str, groups: Iterable[str]) -> Account:
        self._require(name)
        with self._connect() as db:
            db.execute(
                "UPDATE accounts SET groups = ?, updated_at = ? WHERE name = ?",
                (json.dumps(parse_groups(groups)), _now(), name),
            )
        account = self.get(name)
        assert account is not None
        return account

    def verify(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is right, else ``None`` (unknown names cost a hash too,
        so that timing does not tell which names exist)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None
        return self._account(row) if verify_password(password, row["password"]) else None


# A fixed hash to spend the same time on unknown names (cheap cost: it never matches anyway).
_DUMMY_HASH = "scrypt$14$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def build_accounts(settings: Settings) -> AccountStore:
    return AccountStore(settings.accounts_path)


# --- the legacy auth_file -----------------------------------------------------------------------


def read_auth_file(path: Path) -> list[tuple[str, str]]:
    """``user:password`` lines (``#`` comments and blank lines ignored) of the legacy
    ``auth_file``. Raises :class:`ConfigError` for an unreadable or malformed file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(
            f"Fichier d'authentification illisible : {path} ({err}). Vérifiez auth_file "
            "(ASSISTANT_AUTH_FILE) et les droits de lecture."
        ) from err
    pairs: list[tuple[str, str]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise ConfigError(
                f"{path}, ligne {number} : attendu « utilisateur:mot_de_passe ». Corrigez la ligne."
            )
        pairs.append((user.strip(), password))
    if not pairs:
        raise ConfigError(
            f"{path} ne contient aucun compte. Ajoutez des lignes « utilisateur:mot_de_passe »."
        )
    return pairs


class Authenticator:
    """Checks a login (Gradio's login page calls it) and names the principal of a request.

    Accounts come first; the legacy ``auth_file`` users (clear-text passwords, no groups: they
    read only the collections open to everyone) are accepted while the file is configured.
    ``proxy_header`` / ``trusted``: a user name set by the town's reverse proxy, believed only
    when the TCP peer is one of the trusted proxy addresses."""

    def __init__(
        self,
        accounts: AccountStore | None,
        legacy: Sequence[tuple[str, str]] = (),
        *,
        proxy_header: str | None = None,
        trusted: Sequence[str] = (),
    ) -> None:
        self.accounts = accounts
        self.legacy = dict(legacy)
        self.proxy_header = proxy_header.lower() if proxy_header else None
        self.trusted = [ipaddress.ip_network(t, strict=False) for t in trusted]

    @property
    def login_required(self) -> bool:
        """True when the page asks for a password (accounts or a legacy file exist)."""
        return bool(self.legacy) or (self.accounts is not None and self.accounts.count() > 0)

    @property
    def enabled(self) -> bool:
        return self.login_required or self.proxy_header is not None

    def check(self, user: str, password: str) -> bool:
        """Gradio's ``auth`` callable: True when the user name and password are right."""
        if self.accounts is not None and self.accounts.get(user) is not None:
            return self.accounts.verify(user, password) is not None
        expected = self.legacy.get(user)
        if expected is None:
            if self.accounts is not None:
                self.accounts.verify(user, password)  # same time as a wrong password
            return False
        return hmac.compare_digest(expected.encode(), password.encode())

    def is_trusted_proxy(self, host: str | None) -> bool:
        if not host or not self.trusted:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def principal(
        self, username: str | None, headers: Any = None, client_host: str | None = None
    ) -> Principal | None:
        """Who is asking, or ``None`` when nobody is authenticated (then nothing is readable).

        ``username``: the name Gradio's login established; ``headers`` (a mapping with ``get``)
        and ``client_host``: for the reverse proxy's header."""
        if self.proxy_header and headers is not None and self.is_trusted_proxy(client_host):
            named = headers.get(self.proxy_header)
            if named:
                return self._named(str(named).strip())
        if username:
            return self._named(str(username))
        if not self.enabled:
            return LOCAL
        return None

    def _named(self, name: str) -> Principal:
        account = self.accounts.get(name) if self.accounts is not None else None
        return account.principal() if account else Principal(name)


def build_authenticator(settings: Settings) -> Authenticator:
    """From the settings: the accounts file, the legacy ``auth_file``, the proxy header."""
    legacy = read_auth_file(settings.auth_file) if settings.auth_file else []
    return Authenticator(
        build_accounts(settings),
        legacy,
        proxy_header=settings.auth_header,
        trusted=settings.trusted_proxies,
    )
