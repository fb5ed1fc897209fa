"""Synchronise a folder into a collection: add new files, re-index changed ones, remove gone ones.

:func:`sync_folder` never prints; it reports progress through a callback and returns an
:class:`IngestReport`. Rules:

- A file is unchanged when its size and modification time match the manifest (no read at all),
  or else when its sha256 matches (the stat data are then refreshed). Unchanged files cost a
  ``stat`` call, so a re-run with nothing changed takes milliseconds per thousand files.
- A bad file (encrypted, corrupt, scanned, empty, too large, unreadable, symlink loop...) is
  reported with a French reason and remembered with its hash: it is not retried until it
  changes. It never stops the batch and never leaves half a document in the index.
- A file whose new content cannot be read loses its old version in the index (no stale answers);
  a file that cannot even be opened keeps it (a locked file on a share is not a deletion).
- Half-written documents from a crash are repaired first (see :meth:`Index.repair`).
- Embeddings are computed for several documents per call (``batch_size`` chunks).
- Loading overlaps embedding (``prefetch``): a reader thread reads, extracts and chunks the
  next documents while llama.cpp (which releases the GIL) embeds the previous ones; every
  index write stays in the calling thread. ``prefetch=0`` runs them one after the other.
- ``stop()`` is polled between documents: the documents already embedded are written, the
  ones read ahead are dropped, then the sync returns with ``interrupted=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from assistant.embeddings import Embedder, mismatch_message, same_embedder
from assistant.errors import AssistantError, DocumentError, EmbedderMismatchError, StoreError
from assistant.loaders import (
    BoundedLoader,
    escaped_name,
    has_bad_name,
    is_supported,
    load_document,
    readable_name,
)
from assistant.schema import Chunk, LoadedDocument
from assistant.store import FailureRecord, Index, check_collection_name

# Chunks embedded per backend call, across documents (measured on 2 cores: see
# scripts/bench_ingest.py; larger batches do not help llama.cpp on CPU).
DEFAULT_BATCH = 32
# Documents loaded ahead by a reader thread while the previous ones are embedded (0: load and
# embed one after the other). See _Syncer._loaded and scripts/bench_ingest.py.
DEFAULT_PREFETCH = 2
_HASH_BLOCK = 1 << 20
# Names that are never documents: office lock files, OS metadata.
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})


@dataclass(frozen=True)
class FileEntry:
    path: Path
    source: str
    size: int
    mtime_ns: int
    bad_name: bool = False  # the path on disk is not valid UTF-8 (source is its readable form)


@dataclass
class Progress:
    """What the progress bar shows. ``bytes_*`` drive the ETA (file sizes vary a lot)."""

    phase: str  # "scan" | "index" | "remove" | "done"
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    pages: int = 0
    chunks: int = 0
    source: str = ""
    embedded: int = 0  # passages embedded and written so far
    seconds: float = 0.0  # since the sync started

    @property
    def passages_per_second(self) -> float:
        """Passages embedded and written per second since the sync started (0 at first)."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass
class IngestReport:
    collection: str
    folder: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    # Indexed, but worth a look: [{source, reason, kind}] (a file name that is not UTF-8).
    warnings: list[dict[str, str]] = field(default_factory=list)
    # Runs of non-text (base64, long hex, binary noise) removed before chunking:
    # [{source, runs, chars}] for each document that had some.
    non_text: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    dry_run: bool = False
    rebuilt: bool = False  # the embedder changed: the collection was indexed again

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "folder": self.folder,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "pages": self.pages,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "pages_per_second": round(self.pages_per_second, 2),
            "added_sources": self.added,
            "updated_sources": self.updated,
            "removed_sources": self.removed,
            "repaired": self.repaired,
            "warnings": self.warnings,
            "non_text_removed": {
                "runs": sum(int(n["runs"]) for n in self.non_text),
                "chars": sum(int(n["chars"]) for n in self.non_text),
                "documents": self.non_text,
            },
            "interrupted": self.interrupted,
            "dry_run": self.dry_run,
            "rebuilt": self.rebuilt,
        }


@dataclass
class _Work:
    entry: FileEntry
    doc_hash: str
    is_update: bool


@dataclass
class _Ready:
    work: _Work
    doc: LoadedDocument
    chunks: list[Chunk]


# A work item with its loaded document, or (French reason, kind) of why it could not be loaded.
_Loaded = tuple[_Work, _Ready | tuple[str, str]]


def chunk_document(doc: LoadedDocument, collection: str) -> list[Chunk]:
    """:func:`assistant.chunking.chunk_document`, imported on first use: it pulls in LangChain
    (~0.2 s), which a sync with nothing to index does not need."""
    from assistant.chunking import chunk_document as chunk

    return chunk(doc, collection)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _os_reason(err: OSError) -> str:
    """A French reason (with the fix) for a file that cannot be opened."""
    if isinstance(err, PermissionError):
        return (
            "fichier illisible (droits insuffisants) : accordez la lecture au compte qui "
            "lance l'ingestion"
        )
    if err.errno == 40:  # ELOOP
        return "boucle de liens symboliques : corrigez ou supprimez le lien"
    if isinstance(err, FileNotFoundError):
        return "lien symbolique cassé (la cible n'existe pas) : corrigez ou supprimez le lien"
    return f"fichier illisible ({err.strerror or err}) : vérifiez le fichier et le disque"


NON_UTF8_REASON = (
    "nom de fichier hors UTF-8 (ancien encodage Windows), lu en Windows-1252 pour l'afficher "
    "et l'indexer : renommez-le en UTF-8 (par exemple « convmv -f cp1252 -t utf-8 --notest -r "
    "DOSSIER ») pour qu'il s'affiche partout de la même façon"
)


def _display_names(names: list[str]) -> dict[str, str]:
    """Readable, storable and distinct names for the entries of one folder.

    A valid UTF-8 name is kept. A name that is not valid UTF-8 gets its
    :func:`~assistant.loaders.readable_name` (stray bytes read as Windows-1252), or its escaped
    form (``d\\xe9lib.txt``) when that readable name is already another entry's. Decided
    from the sorted names only, so that every run gives every file the same source.
    """
    out: dict[str, str] = {}
    taken = {n for n in names if not has_bad_name(n)}
    for name in sorted(names):
        if not has_bad_name(name):
            out[name] = name
            continue
        readable = readable_name(name)
        if readable in taken:
            readable = escaped_name(name)
        taken.add(readable)
        out[name] = readable
    return out


def scan_folder(
    folder: Path,
) -> tuple[list[FileEntry], list[dict[str, str]], list[dict[str, str]]]:
    """Walk ``folder`` without following directory links.

    Returns (entries of supported files, skipped [{source, reason}], failed [{source, reason,
    kind}]). Links to files are followed (a share often holds links); dangling links and loops
    are failures; hidden files and folders are ignored. Sources are the paths relative to
    ``folder`` with ``/``, every name made readable and storable (see :func:`_display_names`);
    an entry whose path was not UTF-8 has ``bad_name`` set (the sync warns about it).
    """
    entries: list[FileEntry] = []
    skipped: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    prefixes: dict[str, str] = {str(folder): ""}  # real folder path -> display prefix

    def display(base: Path, name: str, names: dict[str, str]) -> str:
        return prefixes.get(str(base), "") + names.get(name, readable_name(name))

    def rel_any(path: Path) -> str:
        try:
            parts = path.relative_to(folder).parts
        except ValueError:
            parts = (path.name,)
        return "/".join(readable_name(p) for p in parts) or "."

    def on_error(err: OSError) -> None:
        where = Path(err.filename) if err.filename else folder
        source = rel_any(where) if where != folder else "."
        failed.append({"source": source, "reason": _os_reason(err), "kind": "illisible"})

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=False):
        base = Path(dirpath)
        if str(base) not in prefixes:  # reached through a parent listed below
            prefixes[str(base)] = rel_any(base) + "/"
        dirnames.sort()
        dir_display = _display_names(dirnames)
        for name in list(dirnames):
            path = base / name
            prefixes[str(path)] = display(base, name, dir_display) + "/"
            if name.startswith("."):
                dirnames.remove(name)
            elif path.is_symlink():
                skipped.append(
                    {
                        "source": display(base, name, dir_display),
                        "reason": "lien vers un dossier non suivi (évite les doublons et les "
                        "boucles) : copiez le dossier ou indexez-le à part",
                    }
                )
        file_display = _display_names(filenames)
        for name in sorted(filenames):
            if name.startswith((".", "~$")) or name.lower() in _IGNORED_NAMES:
                continue
            path = base / name
            source = display(base, name, file_display)
            try:
                info = path.stat()  # follows a link to a file
            except OSError as err:
                failed.append({"source": source, "reason": _os_reason(err), "kind": "illisible"})
                continue
            if not stat.S_ISREG(info.st_mode):
                skipped.append({"source": source, "reason": "pas un fichier ordinaire"})
                continue
            if not is_supported(path):
                suffix = readable_name(path.suffix.lower()) or "sans extension"
                skipped.append(
                    {
                        "source": source,
                        "reason": f"format « {suffix} » non pris en charge : convertissez-le en "
                        "PDF, DOCX, ODT, HTML, Markdown ou texte pour l'indexer",
                    }
                )
                continue
            bad_name = has_bad_name(str(path.relative_to(folder)))
            entries.append(FileEntry(path, source, info.st_size, info.st_mtime_ns, bad_name))
    return entries, skipped, failed


class _Syncer:
    """One run of :func:`sync_folder` (holds the run's state; not reused)."""

    def __init__(
        self,
        folder: Path,
        collection: str,
        index: Index,
        embedder: Embedder,
        *,
        delete: bool,
        dry_run: bool,
        max_bytes: int | None,
        ocr: bool,
        batch_size: int,
        progress: Callable[[Progress], None] | None,
        stop: Callable[[], bool] | None,
        load_timeout_s: float | None = None,
        reindex: bool = False,
        prefetch: int = 0,
    ) -> None:
        self.reindex = reindex
        self.folder = folder
        # With a time limit, files are read in a child process (see BoundedLoader).
        self.bounded = BoundedLoader(load_timeout_s) if load_timeout_s else None
        self.collection = collection
        self.index = index
        self.embedder = embedder
        self.delete = delete
        self.dry_run = dry_run
        self.max_bytes = max_bytes
        self.ocr = ocr
        self.batch_size = max(1, batch_size)
        self.prefetch = max(0, prefetch)
        self._started = time.perf_counter()
        self._progress_cb = progress
        self._stop = stop or (lambda: False)
        self.report = IngestReport(
            collection=collection, folder=readable_name(str(folder)), dry_run=dry_run
        )
        self.state = Progress(phase="scan")
        self.stale: list[str] = []  # present files whose indexed version must go

    # --- helpers ----------------------------------------------------------------------------
    def _emit(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        if self._progress_cb is not None:
            self._progress_cb(self.state)

    def _fail(self, source: str, reason: str, kind: str) -> None:
        self.report.failed.append({"source": source, "reason": reason, "kind": kind})

    # --- plan -------------------------------------------------------------------------------
    def plan(self, entries: list[FileEntry]) -> list[_Work]:
        manifest = self.index.documents(self.collection)
        failures = self.index.failures(self.collection)
        work: list[_Work] = []
        for entry in entries:
            record = manifest.get(entry.source)
            known_failure = failures.get(entry.source)
            if record is not None and (record.size, record.mtime_ns) == (
                entry.size,
                entry.mtime_ns,
            ):
                self.report.unchanged += 1
                continue
            if known_failure is not None and (known_failure.size, known_failure.mtime_ns) == (
                entry.size,
                entry.mtime_ns,
            ):
                self._fail(entry.source, known_failure.reason, known_failure.kind)
                continue
            if self.max_bytes is not None and entry.size > self.max_bytes:
                # Checked before hashing: a 2 GB file is not read at every run.
                size_mb, limit_mb = entry.size / 1048576, self.max_bytes / 1048576
                self._fail(
                    entry.source,
                    f"fichier trop volumineux ({size_mb:.1f} Mo, limite {limit_mb:.1f} Mo) : "
                    "découpez-le ou augmentez la limite (--max-file-mb, réglage max_file_mb)",
                    "trop volumineux",
                )
                if record is not None:
                    self.stale.append(entry.source)  # its indexed version is outdated
                continue
            try:
                digest = file_sha256(entry.path)
            except OSError as err:
                self._fail(entry.source, _os_reason(err), "illisible")
                continue
            if record is not None and record.doc_hash == digest:
                self.report.unchanged += 1
                if not self.dry_run:
                    self.index.touch_document(
                        self.collection, entry.source, entry.size, entry.mtime_ns
                    )
                continue
            if known_failure is not None and known_failure.doc_hash == digest:
                self._fail(entry.source, known_failure.reason, known_failure.kind)
                continue
            work.append(_Work(entry, digest, is_update=record is not None))
        return work

    # --- index ------------------------------------------------------------------------------
    def _load(self, item: _Work) -> _Ready | tuple[str, str]:
        """The document read and chunked, or (French reason, kind) of why it cannot be.

        Touches neither the index nor the report: it may run in the reader thread."""
        entry = item.entry
        try:
            read = self.bounded.load if self.bounded is not None else load_document
            doc = read(entry.path, self.folder, max_bytes=self.max_bytes, ocr=self.ocr)
            doc.source = entry.source  # the link's own path, not its resolved target
            chunks = chunk_document(doc, self.collection)
            if not chunks:
                raise DocumentError("aucun passage exploitable : vérifiez le contenu du document")
        except DocumentError as err:
            return err.reason, err.kind
        except Exception as err:  # a parser bug on one odd file must not stop the batch
            return (
                f"erreur inattendue à la lecture ({type(err).__name__}: {err}) : vérifiez le "
                "fichier ou convertissez-le en PDF",
                "erreur",
            )
        return _Ready(item, doc, chunks)

    def _record_bad(self, item: _Work, reason: str, kind: str) -> None:
        entry = item.entry
        self._fail(entry.source, reason, kind)
        if item.is_update:
            # The old version no longer matches the file: remove it rather than serve it.
            self.index.remove_document(self.collection, entry.source)
            self.report.removed.append(entry.source)
        self.index.record_failure(
            self.collection,
            FailureRecord(entry.source, item.doc_hash, entry.size, entry.mtime_ns, kind, reason),
        )

    def _embed(self, ready: list[_Ready]) -> list[list[list[float]]]:
        texts = [c.text for r in ready for c in r.chunks]
        vectors = self.embedder.embed(texts, batch_size=self.batch_size)
        out: list[list[list[float]]] = []
        start = 0
        for r in ready:
            out.append(vectors[start : start + len(r.chunks)])
            start += len(r.chunks)
        return out

    def _flush(self, ready: list[_Ready]) -> None:
        """Embed the loaded documents together, then write each one (its own transaction)."""
        if not ready:
            return
        try:
            per_doc = self._embed(ready)
        except AssistantError:
            # Isolate the faulty document: embed one by one (each failure is reported).
            for r in ready:
                self._flush_one(r)
            return
        for r, vectors in zip(ready, per_doc, strict=True):
            self._write(r, vectors)

    def _flush_one(self, r: _Ready) -> None:
        try:
            (vectors,) = self._embed([r])
        except AssistantError as err:
            self._fail(r.work.entry.source, str(err), "erreur")
            return
        self._write(r, vectors)

    def _write(self, r: _Ready, vectors: list[list[float]]) -> None:
        entry = r.work.entry
        try:
            self.index.replace_document(
                self.collection,
                entry.source,
                r.doc.content_hash,  # the bytes actually read (the file may change meanwhile)
                r.chunks,
                vectors,
                title=r.doc.title,
                pages=len(r.doc.pages),
                doc_type=r.doc.doc_type,
                date=r.doc.date,
                size=entry.size,
                mtime_ns=entry.mtime_ns,
            )
        except StoreError as err:
            self._fail(entry.source, str(err), "erreur")
            return
        (self.report.updated if r.work.is_update else self.report.added).append(entry.source)
        removed = r.doc.extra.get("non_text") or {}
        if removed.get("runs"):
            self.report.non_text.append(
                {"source": entry.source, "runs": removed["runs"], "chars": removed["chars"]}
            )
        self.report.pages += len(r.doc.pages)
        self.report.chunks += len(r.chunks)

    def _loaded(self, work: list[_Work]) -> Generator[_Loaded, None, None]:
        """The work items with their loaded documents (or why not), in order.

        With ``prefetch``, a reader thread loads (reads, extracts, chunks) the next documents
        while the caller embeds and writes the previous ones: llama.cpp releases the GIL during
        a decode, so pypdf and the splitters run meanwhile. At most ``prefetch`` documents wait
        (bounded memory). All index writes stay in the caller's thread; documents loaded ahead
        of a stop are simply dropped (nothing of them was written)."""
        if self.prefetch <= 0:
            for item in work:
                yield item, self._load(item)
            return
        queue: Queue[_Loaded | BaseException | None] = Queue(self.prefetch)
        halt = threading.Event()

        def reader() -> None:
            try:
                for item in work:
                    if halt.is_set():
                        return
                    queue.put((item, self._load(item)))
            except BaseException as err:  # re-raised in the consuming thread
                queue.put(err)
                return
            queue.put(None)

        thread = threading.Thread(target=reader, name="ingest-reader", daemon=True)
        thread.start()
        try:
            while (got := queue.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            halt.set()
            while thread.is_alive():  # unblock a reader waiting on a full queue
                with contextlib.suppress(Empty):
                    queue.get(timeout=0.05)
            thread.join()

    def index_all(self, work: list[_Work]) -> None:
        total_bytes = sum(w.entry.size for w in work)
        self._emit(phase="index", files_total=len(work), bytes_total=total_bytes)
        buffer: list[_Ready] = []
        buffered = 0
        done_bytes = 0
        loaded_items = self._loaded(work)
        for done, (item, loaded) in enumerate(loaded_items, start=1):
            if self._stop():
                self.report.interrupted = True
                loaded_items.close()  # stops the reader thread
                break
            self._emit(source=item.entry.source)
            if isinstance(loaded, _Ready):
                buffer.append(loaded)
                buffered += len(loaded.chunks)
            else:
                self._record_bad(item, *loaded)
            if buffered >= self.batch_size:
                self._flush(buffer)
                buffer, buffered = [], 0
            done_bytes += item.entry.size
            self._emit(
                files_done=done,
                bytes_done=done_bytes,
                pages=self.report.pages + sum(len(r.doc.pages) for r in buffer),
                chunks=self.report.chunks + buffered,
                embedded=self.report.chunks,
                seconds=time.perf_counter() - self._started,
            )
        self._flush(buffer)
        self._emit(
            pages=self.report.pages,
            chunks=self.report.chunks,
            embedded=self.report.chunks,
            seconds=time.perf_counter() - self._started,
        )

    # --- run --------------------------------------------------------------------------------
    def run(self) -> IngestReport:
        try:
            return self._run()
        finally:
            if self.bounded is not None:
                self.bounded.close()

    def _run(self) -> IngestReport:
        started = self._started = time.perf_counter()
        entries, skipped, failed = scan_folder(self.folder)
        self.report.skipped.extend(skipped)
        self.report.warnings.extend(
            {"source": e.source, "reason": NON_UTF8_REASON, "kind": "nom"}
            for e in entries
            if e.bad_name
        )
        self.report.failed.extend(failed)
        present = {e.source for e in entries} | {f["source"] for f in failed}
        # Files under a folder that could not be listed are not "gone": keep their documents.
        unlisted = tuple(f["source"] + "/" for f in failed if f["source"] != ".")
        root_unlisted = any(f["source"] == "." for f in failed)

        stored = self.index.collection_embedder(self.collection)
        identity = self.embedder.identity
        if stored and (self.reindex or not same_embedder(stored, identity)):
            if not self.reindex:
                raise EmbedderMismatchError(mismatch_message(self.collection, stored, identity))
            self.report.rebuilt = True
            if not self.dry_run:
                self.index.drop_collection(self.collection)
        if not self.dry_run:
            self.index.ensure_collection(
                self.collection, embedder=identity, folder=self.report.folder
            )
            self.report.repaired = self.index.repair(self.collection)
        elif self.index.has_collection(self.collection):
            self.report.repaired = self.index.pending(self.collection)

        work = self.plan(entries)
        gone = self.stale + (
            sorted(
                s
                for s in set(self.index.documents(self.collection)) - present
                if not s.startswith(unlisted) and not root_unlisted
            )
            if self.delete
            else []
        )
        if self.dry_run:
            self.report.added = [w.entry.source for w in work if not w.is_update]
            self.report.updated = [w.entry.source for w in work if w.is_update]
            self.report.removed = gone
        else:
            for source in sorted(set(self.index.failures(self.collection)) - present):
                self.index.clear_failure(self.collection, source)
            self._emit(phase="remove")
            for source in gone:
                self.index.remove_document(self.collection, source)
                self.report.removed.append(source)
            self.index_all(work)
            if not self.report.interrupted:
                self.index.mark_synced(self.collection, self.report.folder)
        self.report.seconds = time.perf_counter() - started
        self._emit(phase="done")
        return self.report


def sync_folder(
    folder: Path,
    collection: str,
    index: Index,
    embedder: Embedder,
    *,
    delete: bool = True,
    dry_run: bool = False,
    max_bytes: int | None = None,
    ocr: bool = True,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[Progress], None] | None = None,
    stop: Callable[[], bool] | None = None,
    load_timeout_s: float | None = None,
    reindex: bool = False,
    prefetch: int = DEFAULT_PREFETCH,
) -> IngestReport:
    """Make ``collection`` mirror the supported files of ``folder`` (see the module docstring).

    ``load_timeout_s``: read each file in a child process killed after that many seconds
    (:class:`~assistant.loaders.BoundedLoader`; ``None``: in this process, no limit).
    A collection indexed with another embedding model is refused
    (:class:`~assistant.errors.EmbedderMismatchError`) unless ``reindex``: then it is dropped
    and indexed again from scratch with the configured embedder, in the same call.
    """
    check_collection_name(collection)
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise AssistantError(
            f"Dossier introuvable : {readable_name(str(folder))}. Indiquez le dossier des "
            "documents à indexer."
        )
    return _Syncer(
        folder,
        collection,
        index,
        embedder,
        delete=delete,
        dry_run=dry_run,
        max_bytes=max_bytes,
        ocr=ocr,
        batch_size=batch_size,
        progress=progress,
        stop=stop,
        load_timeout_s=load_timeout_s,
        reindex=reindex,
        prefetch=prefetch,
    ).run()
