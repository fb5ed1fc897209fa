"""Command-line interface: ``assistant`` (or ``python -m assistant``).

Each command group lives in its own module; this module builds the app, holds the global
options (which are the command-line layer of the settings) and turns domain errors into
French messages at the edge.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assistant.config import Settings, load_settings
from assistant.errors import AssistantError

app = typer.Typer(
    name="assistant",
    help="Assistant de rédaction souverain pour les collectivités (LLM local, sources citées).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
err_console = Console(stderr=True, soft_wrap=True)


class State:
    """Command-line overrides collected by the global options; settings are built lazily."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._settings: Settings | None = None

    def settings(self, **more: Any) -> Settings:
        if self._settings is None or more:
            self._settings = load_settings(**{**self.overrides, **more})
        return self._settings


def settings_from(ctx: typer.Context, **more: Any) -> Settings:
    """Settings for a command: global flags, plus the command's own flags in ``more``."""
    state = ctx.find_root().obj
    if not isinstance(state, State):
        state = State({})
        ctx.find_root().obj = state
    return state.settings(**more)


@app.callback()
def _global_options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option(help="Dossier des index et du journal (ASSISTANT_DATA_DIR).")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Dossier des modèles GGUF (ASSISTANT_MODELS_DIR).")
    ] = None,
    chat_model: Annotated[
        str | None, typer.Option(help="Fichier GGUF du modèle de rédaction (ASSISTANT_CHAT_MODEL).")
    ] = None,
    embedding_model: Annotated[
        str | None, typer.Option(help="Fichier GGUF des embeddings (ASSISTANT_EMBEDDING_MODEL).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Fils CPU (ASSISTANT_THREADS).")] = None,
    n_ctx: Annotated[
        int | None, typer.Option(help="Fenêtre de contexte du modèle (ASSISTANT_N_CTX).")
    ] = None,
) -> None:
    ctx.obj = State(
        {
            "data_dir": data_dir,
            "models_dir": models_dir,
            "chat_model": chat_model,
            "embedding_model": embedding_model,
            "threads": threads,
            "n_ctx": n_ctx,
        }
    )


def _register() -> None:
    # Imported here so that each module can import `app` from this package.
    from assistant.cli import access, ask, doctor, ingest, models, serve, tools  # noqa: F401


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: domain errors become French messages and an exit code, never a traceback.

    Typer's standalone mode already turns usage errors into messages and exit codes; only
    our own errors get through to here."""
    try:
        app(args=argv, prog_name="assistant")
    except AssistantError as err:
        err_console.print(f"[bold red]Erreur :[/] {err}", highlight=False)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("Interrompu.")
        sys.exit(130)
