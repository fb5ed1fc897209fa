"""CLI: assistant ask (stub until its issue lands)."""

from __future__ import annotations

import typer

from assistant.cli import app


@app.command()
def ask() -> None:
    """Rédige un document ou répond à une question, en citant les sources."""
    raise typer.Exit(1)
