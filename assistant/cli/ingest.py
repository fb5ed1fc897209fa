"""CLI: assistant ingest / search (stub until its issue lands)."""

from __future__ import annotations

import typer

from assistant.cli import app


@app.command()
def ingest() -> None:
    """Synchronise un dossier de documents dans une collection (ajouts, mises à jour, retraits)."""
    raise typer.Exit(1)


@app.command()
def search() -> None:
    """Cherche les passages les plus pertinents dans une collection."""
    raise typer.Exit(1)
