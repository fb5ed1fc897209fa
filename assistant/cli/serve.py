"""CLI: ``assistant serve`` — the agents' web page (Gradio), on 127.0.0.1:7860 by default.

Listening beyond the machine (``--host 0.0.0.0``) is refused unless accounts are configured
(``auth_file``: lines ``utilisateur:mot_de_passe``); there is no public share link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from assistant.cli import app, settings_from

console = Console(stderr=True, highlight=False)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            help="Adresse d'écoute (ASSISTANT_HOST, défaut 127.0.0.1). Au-delà de la machine, "
            "un fichier de comptes est exigé (--auth-file)."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port d'écoute (ASSISTANT_PORT, défaut 7860).")
    ] = None,
    auth_file: Annotated[
        Path | None,
        typer.Option(
            help="Fichier de comptes, une ligne « utilisateur:mot_de_passe » par agent "
            "(ASSISTANT_AUTH_FILE)."
        ),
    ] = None,
) -> None:
    """Démarre l'interface web des agents (Gradio)."""
    settings = settings_from(ctx, host=host, port=port, auth_file=auth_file)
    # Imported here: Gradio and the models are heavy, other commands need neither.
    from assistant.drafting import build_service
    from assistant.ui.app import DocumentFiles, check_exposure, launch_ui

    authenticator = check_exposure(settings)  # refuse an open address before loading anything
    if authenticator is not None and authenticator.legacy:
        console.print(
            f"Attention : les {len(authenticator.legacy)} compte(s) de auth_file ont des mots de "
            "passe en clair et aucun groupe (ils ne lisent que les collections ouvertes à tous). "
            "Migrez-les : « assistant users import FICHIER », puis retirez auth_file."
        )
    console.print("Chargement du modèle et de l'index…")
    if settings.audit_retention_days:  # the retention also holds without a purge in cron
        from assistant.audit import build_audit

        purged = build_audit(settings).purge(settings.audit_retention_days)
        if purged:
            console.print(
                f"Journal d'audit : {purged} projet(s) de plus de "
                f"{settings.audit_retention_days} jours supprimé(s) (audit_retention_days)."
            )
    service = build_service(settings, worker=settings.engine_worker)
    # The query bank's embedding now, each document type's fixed prompt in the background,
    # rather than during the first question and the first request of each type.
    service.warm_up_in_background()
    index = getattr(service.retriever, "index", None)
    groups = getattr(index, "collection_groups", None)
    if index is not None:
        files = DocumentFiles.from_index(index)

        def collections() -> list[str]:
            return [c.name for c in index.collections()]
    else:  # pragma: no cover - build_service always opens the index for serving
        files = DocumentFiles(dict)

        def collections() -> list[str]:
            return [settings.default_collection]

    shown = "localhost" if settings.host in ("127.0.0.1", "::1") else settings.host
    if authenticator is None:
        mode = " (accès local uniquement)"
    elif authenticator.proxy_header:
        mode = f" (utilisateur donné par le proxy, en-tête {settings.auth_header})"
    else:
        accounts = authenticator.accounts.count() if authenticator.accounts else 0
        mode = f" ({accounts + len(authenticator.legacy)} compte(s))"
    console.print(
        f"Interface des agents : http://{shown}:{settings.port}/{mode} — Ctrl+C pour arrêter."
    )
    launch_ui(
        service,
        settings,
        files=files,
        collections=collections,
        feedback=service.audit,
        groups=groups,
    )
