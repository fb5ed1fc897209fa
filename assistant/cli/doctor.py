"""CLI: assistant doctor (stub until its issue lands)."""

from __future__ import annotations

import typer

from assistant.cli import app


@app.command()
def doctor() -> None:
    """Diagnostic : Python, llama.cpp, modèles, dossier de données, mémoire (FR/EN)."""
    raise typer.Exit(1)
