"""CLI: assistant serve (stub until its issue lands)."""

from __future__ import annotations

import typer

from assistant.cli import app


@app.command()
def serve() -> None:
    """Démarre l'interface web des agents (Gradio)."""
    raise typer.Exit(1)
