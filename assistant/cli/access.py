"""CLI: ``assistant users`` (accounts), ``assistant collections`` (who reads what) and
``assistant audit`` (export, retention, integrity) — the DPO's and the IT person's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from assistant.auth import (
    MIN_PASSWORD,
    AccessError,
    AccountStore,
    build_accounts,
    parse_groups,
    read_auth_file,
)
from assistant.cli import app, settings_from
from assistant.errors import AssistantError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

users_app = typer.Typer(
    help="Comptes des agents : ajout, retrait, mot de passe, groupes (services).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
collections_app = typer.Typer(
    help="Collections : groupes (services) autorisés à les lire.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    help="Journal d'audit : export pour le DPO, purge (durée de conservation), vérification.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(users_app, name="users")
app.add_typer(collections_app, name="collections")
app.add_typer(audit_app, name="audit")


class AccessUsageError(AssistantError):
    exit_code = 2


def _password(from_stdin: bool) -> str:
    """The new password: one line of stdin (scripts), or typed twice without echo."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise AccessUsageError(
                "Aucun mot de passe reçu sur l'entrée standard. Envoyez-le sur une ligne "
                "(par exemple : printf '%s\\n' \"$MDP\" | assistant users add …)."
            )
        return line
    return str(
        typer.prompt(
            f"Mot de passe (au moins {MIN_PASSWORD} caractères)",
            hide_input=True,
            confirmation_prompt="Confirmez le mot de passe",
        )
    )


def _accounts(ctx: typer.Context) -> AccountStore:
    return build_accounts(settings_from(ctx))


# --- users ----------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Nom du compte (ex. m.durand).")],
    groups: Annotated[
        str, typer.Option("--groups", "-g", help="Groupes (services), séparés par des virgules.")
    ] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Lire le mot de passe sur l'entrée standard.")
    ] = False,
) -> None:
    """Crée un compte (mot de passe demandé deux fois, jamais affiché)."""
    store = _accounts(ctx)
    account = store.add(name, _password(password_stdin), parse_groups(groups))
    shown = ", ".join(account.groups) or "aucun (collections ouvertes à tous seulement)"
    out.print(f"Compte « {account.name} » créé. Groupes : {shown}.")


@users_app.command("remove")
def users_remove(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Nom du compte.")]
) -> None:
    """Supprime un compte (ses projets restent dans le journal d'audit)."""
    _accounts(ctx).remove(name)
    out.print(f"Compte « {name} » supprimé.")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Nom du compte.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Lire le mot de passe sur l'entrée standard.")
    ] = False,
) -> None:
    """Change le mot de passe d'un compte."""
    store = _accounts(ctx)
    if store.get(name) is None:
        raise AccessError(f"Compte inconnu : « {name} ». Voyez « assistant users list ».")
    store.set_password(name, _password(password_stdin))
    out.print(f"Mot de passe de « {name} » changé.")


@users_app.command("groups")
def users_groups(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Nom du compte.")],
    groups: Annotated[str, typer.Argument(help="Groupes, séparés par des virgules ('' : aucun).")],
) -> None:
    """Remplace les groupes (services) d'un compte."""
    account = _accounts(ctx).set_groups(name, parse_groups(groups))
    out.print(f"Groupes de « {name} » : {', '.join(account.groups) or 'aucun'}.")


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Liste en JSON.")] = False,
) -> None:
    """Liste les comptes et leurs groupes (jamais les mots de passe)."""
    accounts = _accounts(ctx).list()
    if as_json:
        print(json.dumps({"users": [a.as_json() for a in accounts]}, ensure_ascii=False))
        return
    if not accounts:
        out.print("Aucun compte. Créez-en avec « assistant users add NOM --groups SERVICE ».")
        return
    table = Table(title="Comptes", title_justify="left")
    for column in ("Nom", "Groupes", "Créé le", "Modifié le"):
        table.add_column(column)
    for a in accounts:
        table.add_row(a.name, ", ".join(a.groups) or "—", a.created_at, a.updated_at)
    out.print(table)


@users_app.command("import")
def users_import(
    ctx: typer.Context,
    auth_file: Annotated[Path, typer.Argument(help="Ancien fichier « utilisateur:mot_de_passe ».")],
    groups: Annotated[
        str, typer.Option("--groups", "-g", help="Groupes donnés aux comptes importés.")
    ] = "",
) -> None:
    """Migre un ancien fichier auth_file en comptes à mots de passe hachés (scrypt)."""
    store = _accounts(ctx)
    chosen = parse_groups(groups)
    created, skipped, short = [], [], []
    for name, password in read_auth_file(auth_file):
        if store.get(name) is not None:
            skipped.append(name)
            continue
        store.add(name, password, chosen, enforce_policy=False)
        created.append(name)
        if len(password) < MIN_PASSWORD:
            short.append(name)
    out.print(f"{len(created)} compte(s) importé(s), {len(skipped)} déjà présent(s).")
    if short:
        out.print(
            f"Mots de passe de moins de {MIN_PASSWORD} caractères à changer : "
            + ", ".join(short)
            + " (« assistant users passwd NOM »)."
        )
    out.print(
        f"Retirez maintenant auth_file de la configuration et supprimez {auth_file} "
        "(il contient des mots de passe en clair)."
    )


# --- collections ----------------------------------------------------------------------------


@collections_app.command("groups")
def collections_groups(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Nom de la collection.")],
    groups: Annotated[
        str | None,
        typer.Argument(help="Groupes autorisés, séparés par des virgules (absent : afficher)."),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Ouvrir la collection à tous les comptes.")
    ] = False,
) -> None:
    """Affiche ou change les groupes autorisés à lire une collection."""
    from assistant.store import build_index

    index = build_index(settings_from(ctx))
    if groups is None and not public:
        known = index.collection_groups()
        if name not in known:
            raise AccessUsageError(
                f"La collection « {name} » n'existe pas. Voyez « assistant ingest --list »."
            )
        out.print(f"« {name} » : {', '.join(known[name]) or 'ouverte à tous les comptes'}.")
        return
    if public and groups:
        raise AccessUsageError("Donnez des groupes ou --public, pas les deux.")
    chosen = [] if public else parse_groups(groups)
    if not public and not chosen:
        raise AccessUsageError(
            "Aucun groupe donné. Indiquez-en (ex. « urbanisme,dg ») ou --public pour ouvrir la "
            "collection à tous les comptes."
        )
    index.set_collection_groups(name, chosen)
    out.print(f"« {name} » : {', '.join(chosen) or 'ouverte à tous les comptes'}.")


# --- audit ----------------------------------------------------------------------------------


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Date de début, AAAA-MM-JJ.")],
    user: Annotated[str | None, typer.Option("--user", help="Un seul agent.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv ou jsonl.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier (défaut : sortie standard).")
    ] = None,
) -> None:
    """Exporte les projets : qui, quand, type, demande, sources (pages, citées ou non), modèle,
    réglages, empreinte du texte, avis."""
    from assistant.audit import build_audit, parse_since

    log = build_audit(settings_from(ctx))
    lines = log.export(fmt, parse_since(since), user)
    if output is None:
        for line in lines:
            sys.stdout.write(line)
        return
    count = -1 if fmt == "csv" else 0
    with output.open("w", encoding="utf-8", newline="") as handle:
        for line in lines:
            handle.write(line)
            count += 1
    err.print(f"{max(count, 0)} projet(s) exporté(s) dans {output}.")


@audit_app.command("purge")
def audit_purge(
    ctx: typer.Context,
    days: Annotated[
        int | None,
        typer.Option("--days", help="Garder N jours (défaut : audit_retention_days)."),
    ] = None,
) -> None:
    """Supprime les projets plus anciens que la durée de conservation (consigné dans la chaîne)."""
    from assistant.audit import build_audit

    settings = settings_from(ctx)
    keep = settings.audit_retention_days if days is None else days
    if keep <= 0:
        out.print("Conservation illimitée (audit_retention_days = 0) : rien n'est supprimé.")
        return
    removed = build_audit(settings).purge(keep)
    out.print(f"{removed} projet(s) de plus de {keep} jours supprimé(s).")


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Rapport en JSON.")] = False,
) -> None:
    """Vérifie que le journal n'a pas été modifié (chaîne d'empreintes). Code 1 sinon."""
    from assistant.audit import build_audit

    report = build_audit(settings_from(ctx)).verify()
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    elif report.ok:
        out.print(
            f"Journal intact : {report.records} enregistrement(s) chaînés. Empreinte de tête "
            f"(à conserver ailleurs pour comparaison) : {report.head}"
        )
    else:
        out.print(f"[bold red]Journal altéré[/] : {len(report.problems)} anomalie(s).")
        for problem in report.problems[:50]:
            out.print(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)
