"""CLI: assistant models ... (stub until its issue lands)."""

from __future__ import annotations

import typer

from assistant.cli import app

models_app = typer.Typer(help="Installer, vérifier et lister les modèles GGUF.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("install")
def install() -> None:
    """Installe les modèles embarqués (jeu « default » ou « test ») dans models/."""
    raise typer.Exit(1)


@models_app.command("list")
def list_() -> None:
    """Liste les modèles présents, leur taille, l'état de leur empreinte et leur rôle."""
    raise typer.Exit(1)
