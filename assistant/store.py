"""The index: Chroma for vectors, SQLite (FTS5) for French lexical search and the manifest.

Consistency discipline, per document (see :meth:`Index.replace_document`):

1. the manifest row is marked ``pending`` with the new hash (committed);
2. the document's old vectors are deleted from Chroma;
3. the new vectors are added (deterministic ids);
4. in ONE SQLite transaction, the chunk rows and FTS rows are replaced and the row marked
   ``ready``.

Readers only see chunks of ``ready`` documents, in both indexes (dense hits take their text from
SQLite), so a search never mixes two versions of a document. A crash between 1 and 4 leaves a
``pending`` row; :meth:`Index.repair` (run at the start of every sync) deletes what that document
left in both indexes so that the sync indexes it again from scratch.

Texts live in SQLite only; Chroma holds ids, vectors and metadata for filtering.

Fresh reads across processes: chromadb's local ``PersistentClient`` keeps each collection's
HNSW index in memory and never reloads it when another process writes to the same directory
(chroma-core/chroma #2399, #3792: "Chroma is not process-safe"); a new client in the same process
does not help either, because chromadb caches one ``System`` per directory
(``SharedSystemClient._identifier_to_system``). So every write that changes Chroma also bumps a
**generation** counter in SQLite (same transaction as the rows it makes visible), and a reader
whose Chroma view is older than the stored generation reopens its client on a fresh ``System``
before its next dense search (:meth:`Index._chroma_view`). A long-running ``assistant serve``
thus sees what a cron ``assistant ingest`` commits at its next query (test:
tests/test_freshness.py, two real processes). chromadb's local mode also *writes* when it
reads (it applies its log and persists the HNSW files), so all Chroma work of every process
runs under one inter-process lock per data directory (``chroma.lock``, see
:meth:`Index._chroma_session`).

Access: each collection lists the groups allowed to read it (``collections.groups``, JSON;
``NULL`` or ``[]`` = open to every account); see :mod:`assistant.auth`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import CollectionNotFoundError, StoreError
from assistant.schema import Chunk, Hit
from assistant.textnorm import index_text, match_terms, query_terms

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
CHROMA_PREFIX = "assistant-"
# Chunk metadata keys that are SQL columns of ``chunks`` (filterable in lexical search too).
CHUNK_COLUMNS = ("source", "page", "heading", "title", "doc_type", "date", "chunk_index")
_SQL_OPS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
# Chroma caps the size of one add/delete call; stay well below it.
_CHROMA_BATCH = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    embedder TEXT NOT NULL DEFAULT '',
    dimension INTEGER,
    folder TEXT,
    created_at TEXT NOT NULL,
    last_sync TEXT
);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    source TEXT NOT NULL,
    doc_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
    chunks INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    title TEXT NOT NULL DEFAULT '',
    doc_type TEXT,
    date TEXT,
    size INTEGER,
    mtime_ns INTEGER,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (collection, source)
);
CREATE TABLE IF NOT EXISTS failures (
    collection TEXT NOT NULL,
    source TEXT NOT NULL,
    doc_hash TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (collection, source)
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    collection TEXT NOT NULL,
    source TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    doc_type TEXT,
    date TEXT,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (collection, source, chunk_index);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    head, body, tokenize = 'unicode61 remove_diacritics 2'
);
"""
# bm25 weights of the FTS columns: a match in the title or heading path counts double.
BM25_WEIGHTS = (2.0, 1.0)


@dataclass(frozen=True)
class DocumentRecord:
    """A manifest row: what the index holds for one file."""

    collection: str
    source: str
    doc_hash: str
    status: str
    chunks: int
    pages: int
    title: str
    size: int | None
    mtime_ns: int | None
    ingested_at: str


@dataclass(frozen=True)
class FailureRecord:
    """A file that could not be indexed, remembered so that an unchanged bad file is not retried."""

    source: str
    doc_hash: str
    size: int | None
    mtime_ns: int | None
    kind: str
    reason: str


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    last_sync: str | None
    folder: str | None
    embedder: str
    groups: tuple[str, ...] = ()  # groups allowed to read it; empty = every account

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "documents": self.documents,
            "chunks": self.chunks,
            "last_sync": self.last_sync,
            "folder": self.folder,
            "embedder": self.embedder,
            "groups": list(self.groups),
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.match(name):
        raise StoreError(
            f"Nom de collection invalide : « {name} ». Utilisez de 1 à 63 lettres sans accent, "
            "chiffres, « - » ou « _ », commençant et finissant par une lettre ou un chiffre "
            "(par exemple « urbanisme » ou « conseil-2024 »)."
        )
    return name


def _check_encodable(*texts: str) -> None:
    """Refuse strings holding lone surrogates (undecoded file-name bytes, PEP 383): SQLite and
    Chroma would fail half-way with UnicodeEncodeError."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            shown = text.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            raise StoreError(
                f"Nom ou texte non encodable en UTF-8 ({shown[:120]}) : renommez le fichier en "
                "UTF-8 ; rien n'a été écrit pour ce document."
            ) from err


def _chroma_name(collection: str) -> str:
    return CHROMA_PREFIX + collection


def _sql_where(where: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """Translate a Chroma-style filter on chunk columns into SQL (only the subset we use)."""
    if not where:
        return "", []
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in where.items():
        if key in ("$and", "$or"):
            parts = [_sql_where(sub) for sub in value]
            joiner = " AND " if key == "$and" else " OR "
            clauses.append("(" + joiner.join(p[0].removeprefix(" AND ") for p in parts) + ")")
            for part in parts:
                params.extend(part[1])
            continue
        if key not in CHUNK_COLUMNS:
            raise StoreError(
                f"Filtre inconnu : « {key} ». Filtres possibles : {', '.join(CHUNK_COLUMNS)}."
            )
        column = f"c.{key}"
        if not isinstance(value, dict):
            value = {"$eq": value}
        for op, operand in value.items():
            if op in _SQL_OPS:
                clauses.append(f"{column} {_SQL_OPS[op]} ?")
                params.append(operand)
            elif op in ("$in", "$nin"):
                marks = ",".join("?" * len(operand)) or "NULL"
                clauses.append(f"{column} {'IN' if op == '$in' else 'NOT IN'} ({marks})")
                params.extend(operand)
            else:
                raise StoreError(f"Opérateur de filtre non pris en charge : {op}.")
    return " AND " + " AND ".join(clauses), params


def _chroma_where(where: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chroma wants one key per dict: several keys become an explicit ``$and``."""
    if not where or len(where) == 1:
        return where or None
    return {"$and": [{k: v} for k, v in where.items()]}


def _flat_metadata(chunk: Chunk) -> dict[str, Any]:
    # Chroma accepts str/int/float/bool only; drop None values defensively.
    return {k: v for k, v in chunk.metadata.items() if isinstance(v, str | int | float | bool)}


class Index:
    """Both indexes of all collections, kept consistent per document.

    ``client`` is a chromadb client (PersistentClient or HttpClient, built by :func:`build_index`
    or injected by tests); ``lexical_path`` the SQLite file of the manifest and FTS5 index.
    """

    def __init__(
        self,
        client: Any,
        lexical_path: Path,
        *,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        # Chroma is opened on first use (``client_factory``): importing chromadb costs ~0.7 s,
        # which a sync with nothing to do, a listing or a lexical search never pay.
        self._client_obj = client
        self._client_factory = client_factory
        lexical_path.parent.mkdir(parents=True, exist_ok=True)
        self.lexical_path = lexical_path
        # One connection guarded by a lock: the UI calls from several threads.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(lexical_path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(SCHEMA)
            columns = {r["name"] for r in self._db.execute("PRAGMA table_info(collections)")}
            if "groups" not in columns:  # an index made before access control
                self._db.execute("ALTER TABLE collections ADD COLUMN groups TEXT")
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"Index lexical illisible ({lexical_path}) : {err}. Supprimez ce fichier et "
                "relancez « assistant ingest » pour reconstruire les index."
            ) from err
        # Term statistics of the FTS5 index (document counts), for the query pruning of
        # lexical_search; a temp table: nothing is written to the index file. (Without
        # fts5vocab, _informative_terms keeps every term.)
        with suppress(sqlite3.DatabaseError):
            self._db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
                "USING fts5vocab(main, chunks_fts, 'row')"
            )
        # Document frequency of the terms queried so far, valid for one generation of the index.
        self._df: dict[str, int] = {}
        self._df_generation = -1
        self._df_rows = 0
        self._chroma_cols: dict[str, Any] = {}
        # The generation of the index our Chroma client has seen (see the module docstring).
        self._seen_generation = self.generation()
        self._directory_lock = _directory_lock(lexical_path.parent / "chroma.lock")

    # --- plumbing ---------------------------------------------------------------------------
    @property
    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                if self._client_factory is None:
                    raise StoreError("Aucune base Chroma configurée (erreur interne).")
                self._client_obj = self._client_factory()
            return self._client_obj

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction (BEGIN IMMEDIATE: writers queue instead of failing later)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def generation(self) -> int:
        """How many committed changes to Chroma the index has seen (all processes)."""
        rows = self._query("SELECT value FROM meta WHERE key = 'generation'")
        return int(rows[0]["value"]) if rows else 0

    def _bump(self, db: sqlite3.Connection) -> None:
        """Inside a write transaction: one more generation. If our view was current before,
        it still is (our own writes went through our client)."""
        before = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1"
        )
        if (int(before["value"]) if before else 0) == self._seen_generation:
            self._seen_generation += 1

    def _chroma_view(self) -> None:
        """Reopen the Chroma client when another process changed the index since we looked.

        A local PersistentClient is rebuilt on a new chromadb ``System`` (the cached one is
        forgotten, not stopped: searches already running on its collections finish on it, and
        it is freed with them); a server client only drops its collection handles (the Chroma
        server is the one process that owns the data)."""
        current = self.generation()
        with self._lock:
            if current == self._seen_generation:
                return
            self._chroma_cols.clear()
            if self._client_obj is not None and self._client_factory is not None:
                _forget_chroma_system(self._client_obj)
                self._client_obj = None
            self._seen_generation = current

    @contextmanager
    def _chroma_session(self) -> Iterator[None]:
        """Chroma work under the index's cross-process lock, on a current view.

        chromadb's local mode is not process-safe: a process that opens or queries a collection
        also writes its HNSW files and segment records (it applies the write log and persists
        it), so a reader and a writer, or two writers, must not touch the directory at the same
        time. Every Chroma operation of every process takes ``chroma.lock`` (``flock``,
        exclusive; reentrant; the operations are milliseconds long, the embeddings are
        computed outside) and starts by reopening the client if another process changed the
        index (:meth:`_chroma_view`)."""
        with self._directory_lock.hold() as outermost:
            if outermost:
                self._chroma_view()
            yield

    def _chroma(self, collection: str, *, create: bool = False) -> Any | None:
        """The Chroma collection, without ever letting Chroma attach its default embedder."""
        if collection in self._chroma_cols:
            return self._chroma_cols[collection]
        name = _chroma_name(collection)
        try:
            if create:
                col = self._client.get_or_create_collection(
                    name, embedding_function=None, metadata={"hnsw:space": "cosine"}
                )
            else:
                existing = {
                    c.name if hasattr(c, "name") else c for c in self._client.list_collections()
                }
                if name not in existing:
                    return None
                col = self._client.get_collection(name, embedding_function=None)
        except Exception as err:  # chromadb raises many types; all mean "store unavailable"
            raise StoreError(
                f"Base vectorielle Chroma indisponible ({err}). Vérifiez le dossier des données "
                "ou le serveur Chroma (réglages chroma_backend, chroma_host)."
            ) from err
        self._chroma_cols[collection] = col
        return col

    # --- collections ------------------------------------------------------------------------
    def ensure_collection(
        self, name: str, *, embedder: str, dimension: int | None = None, folder: str | None = None
    ) -> bool:
        """Create the collection if needed; returns False when it holds vectors of another
        embedder (the caller must then rebuild it with :meth:`drop_collection`)."""
        check_collection_name(name)
        with self._tx() as db:
            row = db.execute("SELECT embedder FROM collections WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO collections (name, embedder, dimension, folder, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, embedder, dimension, folder, now_iso()),
                )
            elif row["embedder"] and row["embedder"] != embedder:
                return False
            else:
                db.execute(
                    "UPDATE collections SET embedder = ?, folder = COALESCE(?, folder) "
                    "WHERE name = ?",
                    (embedder, folder, name),
                )
        return True

    def collection_embedder(self, name: str) -> str | None:
        rows = self._query("SELECT embedder FROM collections WHERE name = ?", (name,))
        return rows[0]["embedder"] if rows else None

    def mark_synced(self, name: str, folder: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE collections SET last_sync = ?, folder = COALESCE(?, folder) WHERE name = ?",
                (now_iso(), folder, name),
            )

    def has_collection(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM collections WHERE name = ?", (name,)))

    def collections(self) -> list[CollectionInfo]:
        rows = self._query(
            """
            SELECT c.name, c.last_sync, c.folder, c.embedder, c.groups,
                   COUNT(d.source) AS documents, COALESCE(SUM(d.chunks), 0) AS chunks
            FROM collections c
            LEFT JOIN documents d ON d.collection = c.name AND d.status = 'ready'
            GROUP BY c.name ORDER BY c.name
            """
        )
        return [
            CollectionInfo(
                name=r["name"],
                documents=r["documents"],
                chunks=r["chunks"],
                last_sync=r["last_sync"],
                folder=r["folder"],
                embedder=r["embedder"],
                groups=tuple(json.loads(r["groups"] or "[]")),
            )
            for r in rows
        ]

    def collection_groups(self) -> dict[str, list[str]]:
        """Every collection and the groups allowed to read it (``[]``: every account)."""
        rows = self._query("SELECT name, groups FROM collections ORDER BY name")
        return {r["name"]: list(json.loads(r["groups"] or "[]")) for r in rows}

    def set_collection_groups(self, name: str, groups: Sequence[str]) -> None:
        """Set who may read collection ``name`` (created empty when new, so that its rights
        are in place before its first document is indexed). ``[]``: every account."""
        check_collection_name(name)
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO collections (name, embedder, created_at) VALUES (?, '', ?)",
                (name, now_iso()),
            )
            db.execute(
                "UPDATE collections SET groups = ? WHERE name = ?",
                (json.dumps(sorted(set(groups))), name),
            )

    def drop_collection(self, name: str) -> None:
        """Delete a collection from both indexes (Chroma first, then one SQLite transaction)."""
        if not self.has_collection(name):
            raise CollectionNotFoundError(
                f"La collection « {name} » n'existe pas. "
                "Voyez la liste avec « assistant ingest --list »."
            )
        with self._chroma_session():
            self._chroma_cols.pop(name, None)
            try:
                existing = {
                    c.name if hasattr(c, "name") else c for c in self._client.list_collections()
                }
                if _chroma_name(name) in existing:
                    self._client.delete_collection(_chroma_name(name))
            except Exception as err:
                raise StoreError(f"Suppression impossible dans Chroma ({err}). Réessayez.") from err
        with self._tx() as db:
            db.execute(
                "DELETE FROM chunks_fts WHERE rowid IN "
                "(SELECT rowid FROM chunks WHERE collection = ?)",
                (name,),
            )
            for table in ("chunks", "documents", "failures"):
                db.execute(f"DELETE FROM {table} WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))
            self._bump(db)

    # --- manifest ---------------------------------------------------------------------------
    def documents(self, collection: str) -> dict[str, DocumentRecord]:
        rows = self._query(
            "SELECT collection, source, doc_hash, status, chunks, pages, title, size, mtime_ns, "
            "ingested_at FROM documents WHERE collection = ?",
            (collection,),
        )
        return {r["source"]: DocumentRecord(**dict(r)) for r in rows}

    def failures(self, collection: str) -> dict[str, FailureRecord]:
        rows = self._query(
            "SELECT source, doc_hash, size, mtime_ns, kind, reason FROM failures "
            "WHERE collection = ?",
            (collection,),
        )
        return {r["source"]: FailureRecord(**dict(r)) for r in rows}

    def record_failure(self, collection: str, failure: FailureRecord) -> None:
        _check_encodable(failure.source, failure.reason)
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    collection,
                    failure.source,
                    failure.doc_hash,
                    failure.size,
                    failure.mtime_ns,
                    failure.kind,
                    failure.reason,
                ),
            )

    def clear_failure(self, collection: str, source: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM failures WHERE collection = ? AND source = ?", (collection, source)
            )

    def touch_document(self, collection: str, source: str, size: int, mtime_ns: int) -> None:
        """Remember new stat data of a file whose content did not change."""
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET size = ?, mtime_ns = ? WHERE collection = ? AND source = ?",
                (size, mtime_ns, collection, source),
            )

    # --- writes -----------------------------------------------------------------------------
    def replace_document(
        self,
        collection: str,
        source: str,
        doc_hash: str,
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
        *,
        title: str = "",
        pages: int = 0,
        doc_type: str | None = None,
        date: str | None = None,
        size: int | None = None,
        mtime_ns: int | None = None,
    ) -> None:
        """Index one document (new or changed) in both indexes, with the discipline above.

        Raises :class:`StoreError` (nothing written) when ``source`` or a text is not encodable
        (a file name's undecoded bytes: callers pass :func:`assistant.loaders.readable_name`).
        """
        _check_encodable(source, title, *(c.text for c in chunks))
        if len(chunks) != len(embeddings):
            raise StoreError(
                "Nombre d'embeddings différent du nombre de passages (erreur interne)."
            )
        stamp = now_iso()
        with self._tx() as db:  # 1. pending, with the new hash
            db.execute(
                """
                INSERT INTO documents (collection, source, doc_hash, status, title, size, mtime_ns,
                                       ingested_at)
                VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)
                ON CONFLICT (collection, source) DO UPDATE SET
                    doc_hash = excluded.doc_hash, status = 'pending'
                """,
                (collection, source, doc_hash, title, size, mtime_ns, stamp),
            )
        with self._chroma_session():
            col = self._chroma(collection, create=True)
            assert col is not None  # create=True always returns a collection
            try:
                col.delete(where={"source": source})  # 2. old vectors out
                ids = [c.id for c in chunks]
                for start in range(0, len(ids), _CHROMA_BATCH):  # 3. new vectors in
                    end = start + _CHROMA_BATCH
                    col.upsert(
                        ids=ids[start:end],
                        embeddings=[list(map(float, e)) for e in embeddings[start:end]],
                        metadatas=[_flat_metadata(c) for c in chunks[start:end]],
                    )
            except Exception as err:
                raise StoreError(
                    f"Écriture impossible dans Chroma pour {source} ({err}). Le document reste "
                    "marqué « en cours » et sera réindexé à la prochaine synchronisation."
                ) from err
        with self._tx() as db:  # 4. lexical rows + ready, atomically
            self._delete_rows(db, collection, source)
            for chunk in chunks:
                meta = chunk.metadata
                cur = db.execute(
                    "INSERT INTO chunks (id, collection, source, chunk_index, page, heading, "
                    "title, doc_type, date, text, metadata) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        chunk.id,
                        collection,
                        source,
                        int(meta.get("chunk_index", 0)),
                        meta.get("page"),
                        meta.get("heading", ""),
                        meta.get("title", title),
                        meta.get("doc_type"),
                        meta.get("date"),
                        chunk.text,
                        json.dumps(meta, ensure_ascii=False),
                    ),
                )
                head = f"{meta.get('title', title)} {meta.get('heading', '')}"
                db.execute(
                    "INSERT INTO chunks_fts (rowid, head, body) VALUES (?, ?, ?)",
                    (cur.lastrowid, index_text(head), index_text(chunk.text)),
                )
            db.execute(
                """
                UPDATE documents SET status = 'ready', chunks = ?, pages = ?, title = ?,
                    doc_type = ?, date = ?, size = ?, mtime_ns = ?, ingested_at = ?
                WHERE collection = ? AND source = ?
                """,
                (
                    len(chunks),
                    pages,
                    title,
                    doc_type,
                    date,
                    size,
                    mtime_ns,
                    stamp,
                    collection,
                    source,
                ),
            )
            db.execute(
                "DELETE FROM failures WHERE collection = ? AND source = ?", (collection, source)
            )
            self._bump(db)

    @staticmethod
    def _delete_rows(db: sqlite3.Connection, collection: str, source: str) -> None:
        db.execute(
            "DELETE FROM chunks_fts WHERE rowid IN "
            "(SELECT rowid FROM chunks WHERE collection = ? AND source = ?)",
            (collection, source),
        )
        db.execute("DELETE FROM chunks WHERE collection = ? AND source = ?", (collection, source))

    def remove_document(self, collection: str, source: str) -> None:
        """Remove a document from both indexes: Chroma first, then one SQLite transaction.

        If Chroma fails, nothing changed in SQLite and the next sync tries again."""
        with self._chroma_session():
            col = self._chroma(collection)
            with self._tx() as db:  # readers stop seeing it before the vectors go
                db.execute(
                    "UPDATE documents SET status = 'pending' WHERE collection = ? AND source = ?",
                    (collection, source),
                )
            if col is not None:
                try:
                    col.delete(where={"source": source})
                except Exception as err:
                    raise StoreError(
                        f"Suppression impossible dans Chroma pour {source} ({err}). Relancez la "
                        "synchronisation."
                    ) from err
        with self._tx() as db:
            self._delete_rows(db, collection, source)
            db.execute(
                "DELETE FROM documents WHERE collection = ? AND source = ?", (collection, source)
            )
            db.execute(
                "DELETE FROM failures WHERE collection = ? AND source = ?", (collection, source)
            )
            self._bump(db)

    def pending(self, collection: str) -> list[str]:
        rows = self._query(
            "SELECT source FROM documents WHERE collection = ? AND status = 'pending'",
            (collection,),
        )
        return [r["source"] for r in rows]

    def repair(self, collection: str) -> list[str]:
        """Undo half-written documents (a crash or kill mid-document). Returns their sources.

        Each ``pending`` document is removed from both indexes; the sync then indexes it again
        if its file is still there. Vectors in Chroma whose document is not ``ready`` in the
        manifest (written after the crash point 1) are removed too."""
        repaired = self.pending(collection)
        for source in repaired:
            self.remove_document(collection, source)
        with self._chroma_session():
            col = self._chroma(collection) if repaired else None
            if col is not None:
                self._drop_orphan_vectors(collection, col)
        return repaired

    def _drop_orphan_vectors(self, collection: str, col: Any) -> None:
        ready = set(self.documents(collection))
        got = col.get(include=["metadatas"])
        orphans = [
            i
            for i, m in zip(got["ids"], got["metadatas"] or [], strict=False)
            if (m or {}).get("source") not in ready
        ]
        for start in range(0, len(orphans), _CHROMA_BATCH):
            col.delete(ids=orphans[start : start + _CHROMA_BATCH])

    def vector_count(self, collection: str, source: str | None = None) -> int:
        """Vectors held by Chroma for a collection (or one of its documents)."""
        with self._chroma_session():
            col = self._chroma(collection)
            if col is None:
                return 0
            if source is None:
                return int(col.count())
            return len(col.get(where={"source": source}, include=[])["ids"])

    def chunk_ids(self, collection: str, source: str | None = None) -> dict[str, list[str]]:
        """Ids per index, for consistency checks: {"chroma": [...], "lexical": [...]}."""
        where = {"source": source} if source else None
        with self._chroma_session():
            col = self._chroma(collection)
            dense = col.get(where=where, include=[])["ids"] if col is not None else []
        sql = (
            "SELECT c.id FROM chunks c JOIN chunks_fts f ON f.rowid = c.rowid "
            "WHERE c.collection = ?"
        )
        params: list[Any] = [collection]
        if source:
            sql += " AND c.source = ?"
            params.append(source)
        lexical = [r["id"] for r in self._query(sql, params)]
        return {"chroma": list(dense), "lexical": lexical}

    # --- reads ------------------------------------------------------------------------------
    _HIT_SELECT = (
        "SELECT c.rowid, c.id, c.collection, c.source, c.chunk_index, c.page, c.heading, "
        "c.title, c.text, c.metadata FROM chunks c "
        "JOIN documents d ON d.collection = c.collection AND d.source = c.source "
        "AND d.status = 'ready' "
    )

    @staticmethod
    def _hit(row: sqlite3.Row, score: float) -> Hit:
        return Hit(
            id=row["id"],
            text=row["text"],
            source=row["source"],
            page=row["page"],
            heading=row["heading"],
            title=row["title"],
            collection=row["collection"],
            score=score,
            metadata=json.loads(row["metadata"]),
        )

    def _rows_by_id(self, ids: Iterable[str]) -> dict[str, sqlite3.Row]:
        ids = list(ids)
        out: dict[str, sqlite3.Row] = {}
        for start in range(0, len(ids), 500):  # SQLite caps bound parameters
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self._query(self._HIT_SELECT + f"WHERE c.id IN ({marks})", part):
                out[row["id"]] = row
        return out

    def _chunk_share(self, collections: Sequence[str]) -> float:
        """Fraction (0..1) of the indexed passages that belong to ``collections``."""
        marks = ",".join("?" * len(collections))
        row = self._query(
            "SELECT COALESCE(SUM(chunks), 0) AS total, "
            f"COALESCE(SUM(CASE WHEN collection IN ({marks}) THEN chunks END), 0) AS mine "
            "FROM documents",
            list(collections),
        )[0]
        return float(row["mine"]) / row["total"] if row["total"] else 1.0

    def _informative_terms(self, terms: list[str]) -> list[str]:
        """``terms`` without those found in more than half of the indexed passages.

        FTS5's bm25 gives such a term an IDF of log((N - n + 0.5) / (n + 0.5)) <= 0, which it
        clamps to 1e-6 (sqlite.org/fts5.html, "the bm25() function"): it cannot change the
        order, yet scoring it means reading and scoring its whole posting list, which is what
        made a search slow at 100,000 passages. Dropping it keeps the ranking and cuts the work
        (measured with scripts/bench.py --only retrieval). When every term is that common,
        all are kept (the order then rests on those tiny weights, as before). Counts come from
        the fts5vocab table and are cached until the index changes (its generation)."""
        if len(terms) < 2:
            return terms
        try:
            rows, df = self.document_frequencies(terms)
        except sqlite3.DatabaseError:
            return terms
        kept = [t for t in terms if df[t] <= rows / 2]
        return kept or terms

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """``(passages in the index, {term: passages holding it})`` for normalised ``terms``
        (:func:`assistant.textnorm.query_terms`), all collections together. From FTS5's
        ``fts5vocab`` table, cached until the index changes (its generation). Raises
        ``sqlite3.DatabaseError`` when the table cannot be read."""
        with self._lock:
            generation = self.generation()
            if generation != self._df_generation:
                self._df.clear()
                self._df_generation = generation
                row = self._db.execute("SELECT COUNT(*) AS n FROM chunks").fetchone()
                self._df_rows = int(row["n"])
            for term in [t for t in terms if t not in self._df]:
                row = self._db.execute(
                    "SELECT doc FROM temp.chunks_vocab WHERE term = ?", (term,)
                ).fetchone()
                self._df[term] = int(row["doc"]) if row else 0
            if len(self._df) > 50_000:  # a long-running server: start again
                self._df = {t: self._df[t] for t in terms}
            return self._df_rows, {t: self._df[t] for t in terms}

    def _rows_by_rowid(self, rowids: list[int]) -> list[sqlite3.Row]:
        """Hit rows (ready documents only) by SQLite rowid, in no particular order."""
        out: list[sqlite3.Row] = []
        for start in range(0, len(rowids), 500):  # SQLite caps bound parameters
            part = rowids[start : start + 500]
            marks = ",".join("?" * len(part))
            out.extend(self._query(self._HIT_SELECT + f"WHERE c.rowid IN ({marks})", part))
        return out

    def get_chunks(self, ids: Sequence[str]) -> list[Hit]:
        """Chunks by id, in the order given (unknown or not-ready ids are left out); score 0."""
        rows = self._rows_by_id(ids)
        return [self._hit(rows[i], 0.0) for i in ids if i in rows]

    def neighbours(
        self, collection: str, source: str, chunk_index: int, span: int = 1
    ) -> list[Hit]:
        """Chunks ``chunk_index - span .. chunk_index + span`` of a document (the centre
        included), in document order; score 0."""
        rows = self._query(
            self._HIT_SELECT + "WHERE c.collection = ? AND c.source = ? "
            "AND c.chunk_index BETWEEN ? AND ? ORDER BY c.chunk_index",
            (collection, source, chunk_index - span, chunk_index + span),
        )
        return [self._hit(r, 0.0) for r in rows]

    def dense_search(
        self,
        collections: Sequence[str],
        vector: Sequence[float],
        k: int,
        where: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity; score = 1 - cosine distance."""
        scored: list[tuple[float, str]] = []
        with self._chroma_session():
            for name in collections:
                col = self._chroma(name)
                if col is None:
                    continue
                # No col.count() first: it cost 8 ms a search at 100,000 passages, and Chroma
                # (1.x) returns fewer results, or none, when the collection holds fewer than k.
                try:
                    res = col.query(
                        query_embeddings=[list(map(float, vector))],
                        n_results=k,
                        where=_chroma_where(where),
                        include=["distances"],
                    )
                except Exception as err:
                    raise StoreError(
                        f"Recherche impossible dans Chroma ({err}). Réessayez."
                    ) from err
                pairs = zip(res["ids"][0], res["distances"][0], strict=True)
                scored.extend((1.0 - float(d), i) for i, d in pairs)
        scored.sort(key=lambda t: -t[0])
        rows = self._rows_by_id(i for _, i in scored)
        return [self._hit(rows[i], s) for s, i in scored if i in rows][:k]

    def vectors(self, collection: str, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored embeddings of chunks ``ids`` of ``collection`` (missing ids are absent;
        an id given twice is fetched once, Chroma refusing duplicates); used to re-score
        passages that the dense search did not return."""
        col = self._chroma(collection)
        if col is None or not ids:
            return {}
        try:
            res = col.get(ids=list(dict.fromkeys(ids)), include=["embeddings"])
        except Exception as err:
            raise StoreError(f"Lecture des vecteurs impossible dans Chroma ({err}).") from err
        embeddings = res.get("embeddings")
        if embeddings is None:
            return {}
        return {i: [float(x) for x in v] for i, v in zip(res["ids"], embeddings, strict=True)}

    def lexical_search(
        self,
        collections: Sequence[str],
        query: str,
        k: int,
        where: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """BM25 over the French-normalised FTS5 index; score = -bm25 (higher is better).

        Returns at most ``k`` hits of ready documents of ``collections`` matching ``where``,
        best first (ties by insertion order). Raises :class:`StoreError` on an FTS5 error.

        Two forms, same results. Over the join, SQLite looks up every matching row in
        ``chunks`` and ``documents`` before sorting: a question's stems (OR-combined) match half
        of a large index, tens of thousands of row lookups. So when the searched collections
        hold most of the index and no other filter applies, the FTS5 table alone gives the
        best ``limit`` rowids by bm25 (measured faster than FTS5's ``rank`` column), and only
        those are joined and filtered; if fewer than ``k`` survive, or when the collections are
        a small part of the index or ``where`` filters, the join form runs (filters first).
        Measured at 100,000 synthetic passages beside 10,000 others (scripts/bench.py): lexical
        p95 142 ms against 329 for the join form, same run, load average 2.7.
        The bm25 scoring of every matching row remains (about 1 µs a row here): it is what
        grows with the index; terms found in most passages are left out of it
        (:meth:`_informative_terms`). A passage holding none of the other terms would score
        about 0 and is then not returned; if that leaves no hit at all (a small index, or
        collections where only those terms occur), the least common of the dropped terms is
        searched, and every term if that still finds nothing.
        """
        if not collections:
            return []
        terms = query_terms(query)
        kept = self._informative_terms(terms)
        hits = self._lexical(collections, match_terms(kept), k, where)
        if not hits and len(kept) < len(terms):
            # Only common terms match. Their weights are all ~0, so the order is a tie-break
            # whatever the terms: the least common of them is enough to return passages, and
            # scores one posting list instead of all (at 100,000 passages a question whose
            # rarer words are absent took 114 ms with every term, 41 with one).
            _, df = self.document_frequencies([t for t in terms if t not in kept])  # cached
            least = min(df, key=df.__getitem__)
            hits = self._lexical(collections, match_terms([*kept, least]), k, where)
            if not hits:  # the searched collections lack that one: every term
                hits = self._lexical(collections, match_terms(terms), k, where)
        return hits

    def _lexical(
        self,
        collections: Sequence[str],
        expression: str,
        k: int,
        where: dict[str, Any] | None,
    ) -> list[Hit]:
        """:meth:`lexical_search` for one FTS5 MATCH expression."""
        if not expression:
            return []
        extra, params = _sql_where(where)
        marks = ",".join("?" * len(collections))
        candidates_sql = (
            "SELECT rowid, bm25(chunks_fts, ?, ?) AS rank FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?"
        )
        try:
            # FTS5 first only pays when the searched collections are most of the index and no
            # other filter applies; otherwise filtering first (the join) scores fewer rows.
            share = 0.0 if where else self._chunk_share(collections)
            # Enough candidates for k to survive the collection filter (share of the index),
            # with a margin for documents not yet ready; fewer rows to fetch than a fixed 4k.
            limit = int(k / max(share, 0.5)) + 16
            candidates = (
                self._query(candidates_sql, (*BM25_WEIGHTS, expression, limit))
                if share >= 0.5
                else []
            )
            ranks = {int(r["rowid"]): float(r["rank"]) for r in candidates}
            rows = self._query(
                self._HIT_SELECT + f"WHERE c.rowid IN ({','.join('?' * len(ranks)) or 'NULL'}) "
                f"AND c.collection IN ({marks}){extra}",
                [*ranks, *collections, *params],
            )
            if not candidates or (len(rows) < k and len(candidates) == limit):
                # The filters reject most of the best candidates (a small collection beside a
                # large one, a narrow filter): filter first, in one join, and score only what
                # passes (asking FTS5 for more candidates would score every match again).
                joined = self._query(
                    "SELECT c.rowid AS rowid, bm25(chunks_fts, ?, ?) AS rank "
                    "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                    "JOIN documents d ON d.collection = c.collection AND d.source = c.source "
                    "AND d.status = 'ready' "
                    f"WHERE chunks_fts MATCH ? AND c.collection IN ({marks}){extra} "
                    "ORDER BY rank, c.rowid LIMIT ?",
                    [*BM25_WEIGHTS, expression, *collections, *params, k],
                )
                ranks = {int(r["rowid"]): float(r["rank"]) for r in joined}
                rows = self._rows_by_rowid(list(ranks))
        except sqlite3.OperationalError as err:
            raise StoreError(
                f"Recherche lexicale impossible ({err}). Reformulez la question."
            ) from err
        rows.sort(key=lambda r: (ranks[int(r["rowid"])], int(r["rowid"])))
        return [self._hit(r, -ranks[int(r["rowid"])]) for r in rows[:k]]


class _DirectoryLock:
    """The inter-process lock of one Chroma directory, shared by every Index of this process
    on that directory: a reentrant mutex for the threads of this process, and ``flock`` on
    ``chroma.lock`` (taken at the outermost level only) for the other processes.

    Kept in :data:`_DIRECTORY_LOCKS`, one per lock file and process: ``flock`` belongs to an
    open file, so two Index objects of one process on one directory must share it (a lock is a
    process-wide fact; this is the one module-level registry of the package). Where ``fcntl``
    does not exist (Windows), only the mutex applies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mutex = threading.RLock()
        self.depth = 0
        self.fd: int | None = None

    @contextmanager
    def hold(self) -> Iterator[bool]:
        """Yields True at the outermost level (the lock was just taken)."""
        with self.mutex:
            outermost = self.depth == 0
            if outermost:
                self._flock(True)
            self.depth += 1
            try:
                yield outermost
            finally:
                self.depth -= 1
                if outermost:
                    self._flock(False)

    def _flock(self, take: bool) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not a Unix
            return
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX if take else fcntl.LOCK_UN)


_DIRECTORY_LOCKS: dict[str, _DirectoryLock] = {}
_REGISTRY_MUTEX = threading.Lock()


def _directory_lock(path: Path) -> _DirectoryLock:
    key = str(path.resolve())
    with _REGISTRY_MUTEX:
        lock = _DIRECTORY_LOCKS.get(key)
        if lock is None:
            lock = _DIRECTORY_LOCKS[key] = _DirectoryLock(path)
        return lock


def _forget_chroma_system(client: Any) -> None:
    """Make chromadb build a new ``System`` (fresh segments, HNSW read from disk) for the next
    client of this directory: drop the cached one from its per-directory cache.

    Relies on chromadb's ``SharedSystemClient`` class attributes (chromadb 0.5 to 1.x); a
    client without them (a server client, a test double) is left as is."""
    identifier = getattr(client, "_identifier", None)
    if not identifier:
        return
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:  # pragma: no cover - another chromadb layout
        return
    with SharedSystemClient._refcount_lock:
        SharedSystemClient._identifier_to_system.pop(identifier, None)
        SharedSystemClient._identifier_to_refcount.pop(identifier, None)


def build_chroma_client(settings: Settings) -> Any:
    """A Chroma client with telemetry off: local files, or a Chroma server."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_backend == "server":
            return chromadb.HttpClient(
                host=settings.chroma_host or "localhost",
                port=settings.chroma_port,
                settings=chroma_settings,
            )
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as err:
        raise StoreError(
            f"Impossible d'ouvrir la base Chroma ({err}). Vérifiez data_dir "
            f"({settings.data_dir}) ou le serveur Chroma (chroma_host, chroma_port)."
        ) from err


def build_index(settings: Settings, client: Any | None = None) -> Index:
    """The one factory of the index (a ready Chroma client may be injected)."""
    return Index(
        client, settings.lexical_path, client_factory=lambda: build_chroma_client(settings)
    )
