"""CLI: ``assistant ingest`` (folder sync, collections) and ``assistant search``.

``assistant ingest PATH --collection NAME`` mirrors a folder into a collection: new files added,
changed files re-indexed, files gone removed (``--no-delete`` keeps them), unchanged files
skipped. Progress on stderr, a French summary (or ``--json``) on stdout. Ctrl-C (or SIGTERM)
stops after the documents in progress: exit code 130, the index stays consistent and the next
run goes on from there.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from assistant.cli import app, settings_from
from assistant.config import Settings
from assistant.embeddings import Embedder, build_embedder, embedder_fingerprint
from assistant.errors import AssistantError
from assistant.ingest import IngestReport, sync_folder
from assistant.ingest import Progress as SyncProgress
from assistant.retrieval import build_retriever
from assistant.schema import Hit
from assistant.store import Index, build_index

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)
# Reports list at most this many skipped/failed files on screen (all of them with --json).
MAX_LISTED = 30


class IngestUsageError(AssistantError):
    exit_code = 2


# --- ingest ---------------------------------------------------------------------------------
@contextmanager
def _graceful_stop() -> Iterator[threading.Event]:
    """First Ctrl-C/SIGTERM sets the event (the sync stops after the current documents); a
    second Ctrl-C interrupts at once."""
    event = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        event.set()
        err_console.print(
            "[yellow]Arrêt demandé : fin des documents en cours puis arrêt "
            "(Ctrl-C à nouveau pour forcer).[/]"
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield event
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Bar:
    """rich progress bar on stderr: files, pages, passages, passages/s; the ETA follows the bytes
    indexed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn(
                    "{task.fields[files]} fichiers · {task.fields[pages]} pages · "
                    "{task.fields[chunks]} passages · {task.fields[rate]}"
                ),
                TimeElapsedColumn(),
                TextColumn("reste"),
                TimeRemainingColumn(),
                console=err_console,
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "Analyse du dossier", total=None, files="0/?", pages=0, chunks=0, rate=""
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def update(self, state: SyncProgress) -> None:
        if self._progress is None or self._task is None:
            return
        description = {
            "scan": "Analyse du dossier",
            "remove": "Retrait des fichiers disparus",
            "index": "Indexation",
            "done": "Terminé",
        }.get(state.phase, state.phase)
        self._progress.update(
            self._task,
            description=description,
            total=state.bytes_total or None if state.phase != "scan" else None,
            completed=state.bytes_done,
            files=f"{state.files_done}/{state.files_total}",
            pages=state.pages,
            chunks=state.chunks,
            rate=f"{state.passages_per_second:.1f} passages/s" if state.embedded else "",
        )


def _listing(rows: Sequence[dict[str, str]], title: str) -> None:
    if not rows:
        return
    out_console.print(f"\n{title} ({len(rows)}) :")
    for row in rows[:MAX_LISTED]:
        reason = f" : {row['reason']}" if row.get("reason") else ""
        # escaped: a file name such as "[brouillon] note.md" is not rich markup
        out_console.print(escape(f"  - {row['source']}{reason}"))
    if len(rows) > MAX_LISTED:
        out_console.print(f"  … et {len(rows) - MAX_LISTED} autres (liste complète avec --json)")


def print_report(report: IngestReport) -> None:
    """The French summary of a sync, on stdout."""
    verb = "Simulation (rien n'a été modifié)" if report.dry_run else "Synchronisation"
    state = " — INTERROMPUE" if report.interrupted else ""
    table = Table(
        title=f"{verb} de « {report.collection} »{state}", title_justify="left", show_header=False
    )
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    conditional = " (prévus)" if report.dry_run else ""
    rows = [
        (f"Ajoutés{conditional}", len(report.added)),
        (f"Mis à jour{conditional}", len(report.updated)),
        (f"Retirés{conditional}", len(report.removed)),
        ("Inchangés", report.unchanged),
        ("Ignorés (format non pris en charge)", len(report.skipped)),
        ("En échec", len(report.failed)),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    if not report.dry_run:
        table.add_row("Pages indexées", str(report.pages))
        table.add_row("Passages indexés", str(report.chunks))
        table.add_row("Durée", f"{report.seconds:.1f} s")
        table.add_row("Débit", f"{report.pages_per_second:.2f} pages/s")
    if report.repaired:
        table.add_row("Réparés (arrêt brutal précédent)", str(len(report.repaired)))
    if report.non_text:
        runs = sum(int(n["runs"]) for n in report.non_text)
        chars = sum(int(n["chars"]) for n in report.non_text)
        table.add_row(
            "Données non textuelles retirées (base64, hexadécimal, binaire)",
            f"{runs} ({chars} caractères, {len(report.non_text)} documents)",
        )
    out_console.print(table)
    if report.rebuilt:
        out_console.print(
            "La collection a été entièrement réindexée avec le modèle d'embeddings configuré."
        )
    if report.dry_run:
        for label, sources in (
            ("À ajouter", report.added),
            ("À mettre à jour", report.updated),
            ("À retirer", report.removed),
        ):
            _listing([{"source": s} for s in sources], label)
    _listing(report.failed, "Fichiers en échec")
    _listing(report.warnings, "Avertissements")
    _listing(report.skipped, "Fichiers ignorés")
    if report.interrupted:
        out_console.print(
            "\nInterrompu : les documents déjà traités sont indexés ; relancez la même commande "
            "pour terminer."
        )


def _list_collections(index: Index, as_json: bool) -> None:
    infos = index.collections()
    if as_json:
        print(json.dumps({"collections": [c.as_json() for c in infos]}, ensure_ascii=False))
        return
    if not infos:
        out_console.print(
            "Aucune collection. Créez-en une avec « assistant ingest DOSSIER --collection NOM »."
        )
        return
    table = Table(title="Collections", title_justify="left")
    columns = ("Nom", "Documents", "Passages", "Dernière synchronisation", "Dossier", "Groupes")
    for column in columns:
        table.add_column(column)
    for c in infos:
        table.add_row(
            c.name, str(c.documents), str(c.chunks), c.last_sync or "—", c.folder or "—",
            ", ".join(c.groups) or "tous",
        )  # fmt: skip
    out_console.print(table)


@app.command()
def ingest(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Dossier de documents à synchroniser.", show_default=False)
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option("--collection", "-c", help="Collection cible (défaut : default_collection)."),
    ] = None,
    no_delete: Annotated[
        bool, typer.Option("--no-delete", help="Garder dans l'index les fichiers disparus.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Dire ce qui serait fait, sans rien modifier.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Rapport en JSON sur stdout.")] = False,
    max_file_mb: Annotated[
        float | None,
        typer.Option("--max-file-mb", help="Taille maximale d'un fichier en Mo (max_file_mb)."),
    ] = None,
    no_ocr: Annotated[
        bool, typer.Option("--no-ocr", help="Ne pas tenter l'OCR des PDF scannés.")
    ] = False,
    list_: Annotated[
        bool, typer.Option("--list", help="Lister les collections (documents, passages, date).")
    ] = False,
    reindex: Annotated[
        bool,
        typer.Option(
            "--reindex",
            help="Tout réindexer avec le modèle d'embeddings configuré (après un changement "
            "de modèle).",
        ),
    ] = False,
    remove: Annotated[
        str | None,
        typer.Option("--remove", help="Supprimer une collection des index.", show_default=False),
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option(
            "--groups",
            help="Groupes (services) autorisés à lire la collection, séparés par des virgules "
            "(ex. urbanisme,dg). Absent : inchangés (nouvelle collection : ouverte à tous).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Synchronise un dossier de documents dans une collection (ajouts, mises à jour, retraits)."""
    settings = settings_from(ctx, max_file_mb=max_file_mb)
    if list_:
        _list_collections(build_index(settings), as_json)
        return
    if remove is not None:
        index = build_index(settings)
        index.drop_collection(remove)
        if as_json:
            print(json.dumps({"removed": remove}, ensure_ascii=False))
        else:
            out_console.print(f"Collection « {remove} » supprimée des deux index.")
        return
    if path is None:
        raise IngestUsageError(
            "Indiquez le dossier à synchroniser : assistant ingest DOSSIER --collection NOM "
            "(ou --list, --remove NOM)."
        )
    name = collection or settings.default_collection
    index = build_index(settings)
    if groups is not None and not dry_run:
        from assistant.auth import parse_groups

        # Rights first: the collection's documents are never readable by others, not even
        # while this first sync runs.
        index.set_collection_groups(name, parse_groups(groups))
    # pypdf logs recoverable oddities of real PDFs ("Ignoring wrong pointing object"): noise
    # for the person running the sync; real failures are in the report.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    embedder = _LazyEmbedder(settings)
    with _graceful_stop() as stop, _Bar(enabled=not as_json and err_console.is_terminal) as bar:
        report = sync_folder(
            path,
            name,
            index,
            embedder,
            delete=not no_delete,
            dry_run=dry_run,
            max_bytes=int(settings.max_file_mb * 1024 * 1024),
            ocr=not no_ocr,
            progress=bar.update,
            stop=stop.is_set,
            load_timeout_s=settings.load_timeout_s or None,
            reindex=reindex,
        )
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    if report.interrupted:
        raise typer.Exit(130)


class _LazyEmbedder(Embedder):
    """The configured embedder, loaded on first use: a sync with nothing to index (or a dry
    run) never loads the model. ``name`` is the one the real embedder has."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._real: Embedder | None = None
        local = settings.embedding_backend == "local"
        self.name = settings.embedding_model_path.name if local else settings.embedding_model
        self.fingerprint = embedder_fingerprint(settings.embedding_model_path) if local else ""

    def _get(self) -> Embedder:
        if self._real is None:
            self._real = build_embedder(self._settings)
        return self._real

    def embed_batch(self, texts: list[str]) -> list[list[float]]:
        return self._get().embed_batch(texts)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        return self._get().embed(texts, batch_size)

    def embed_query(self, text: str) -> list[float]:
        return self._get().embed_query(text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._get().embed_queries(texts)


# --- search ---------------------------------------------------------------------------------
def _search_json(hits: list[Hit]) -> dict[str, Any]:
    return {
        "results": [
            {
                **hit.as_json(),
                "chunk_index": hit.metadata.get("chunk_index"),
                "doc_type": hit.metadata.get("doc_type"),
            }
            for hit in hits
        ]
    }


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="La question ou les mots cherchés.")],
    collection: Annotated[
        list[str] | None,
        typer.Option(
            "--collection", "-c", help="Collection(s) où chercher (défaut : default_collection)."
        ),
    ] = None,
    k: Annotated[
        int, typer.Option("-k", "--top-k", min=1, max=100, help="Nombre de passages.")
    ] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Résultats en JSON sur stdout.")] = False,
    mode: Annotated[
        str, typer.Option("--mode", help="hybrid (défaut), dense ou lexical.")
    ] = "hybrid",
) -> None:
    """Cherche les passages les plus pertinents dans une collection."""
    if mode not in ("hybrid", "dense", "lexical"):
        raise IngestUsageError(f"Mode inconnu : {mode}. Choisissez hybrid, dense ou lexical.")
    settings = settings_from(ctx)
    collections = collection or [settings.default_collection]
    hits = build_retriever(settings, embedder=_LazyEmbedder(settings)).search(
        query,
        collections,
        k=k,
        mode=mode,  # type: ignore[arg-type]
    )
    if as_json:
        print(json.dumps(_search_json(hits), ensure_ascii=False, indent=2))
        return
    if not hits:
        out_console.print(
            "Aucun passage trouvé. Reformulez, ou vérifiez la collection (assistant ingest --list)."
        )
        return
    for n, hit in enumerate(hits, start=1):
        where = hit.source + (f", page {hit.page}" if hit.page is not None else "")
        out_console.print(f"[bold][{n}] {where}[/]  [dim](score {hit.score:.4f})[/]")
        if hit.heading:
            out_console.print(f"    [italic]{hit.heading}[/]")
        text = " ".join(hit.text.split())
        out_console.print("    " + (text if len(text) <= 400 else text[:399] + "…"))
    sys.stdout.flush()
