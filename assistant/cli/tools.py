"""CLI: assistant eval / bench (stub until its issue lands)."""

from __future__ import annotations

import typer

from assistant.cli import app


@app.command("eval")
def eval_() -> None:
    """Évalue la recherche (rappel@k, MRR) et, au besoin, les réponses, sur des questions."""
    raise typer.Exit(1)


@app.command()
def bench() -> None:
    """Mesure les vitesses (ingestion, recherche, premier jeton) sur cette machine."""
    raise typer.Exit(1)
