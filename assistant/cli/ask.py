"""CLI: ``assistant ask`` — draft a document or answer a question, citing the sources.

Plain mode streams the text to stdout and lists the numbered sources (with their page) at the
end; ``--json`` prints only the final JSON (answer, citations, sources, model, timings).
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assistant.cli import app, settings_from
from assistant.drafting import Citation, Draft, DraftRequest, build_service, cited_excerpt
from assistant.errors import AssistantError
from assistant.prompts import CommonText, load_templates

err_console = Console(stderr=True, highlight=False)


class AskUsageError(AssistantError):
    exit_code = 2


def parse_fields(pairs: list[str]) -> dict[str, str]:
    """``["objet=Subvention", "destinataire=M. X"]`` -> a dict; refuses a pair without ``=``."""
    fields: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise AskUsageError(
                f"Champ mal formé : « {pair} ». Écrivez --field nom=valeur, par exemple "
                '--field objet="Demande de subvention".'
            )
        fields[name.strip()] = value.strip()
    return fields


MAX_LETTER_CHARS = 20_000


def read_letter(path: Path) -> str:
    """The text of a resident's letter file (UTF-8, or Latin-1 as written by older tools);
    raises :class:`AskUsageError` in French when it cannot be used."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise AskUsageError(
            f"Impossible de lire le courrier de l'usager {path} ({err.strerror or err}). "
            "Vérifiez le chemin et les droits du fichier."
        ) from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\x00" in text:
        raise AskUsageError(
            f"{path} n'est pas un fichier texte. Copiez le courrier dans un fichier .txt "
            "(texte brut) et réessayez."
        )
    if not text.strip():
        raise AskUsageError(f"Le courrier de l'usager {path} est vide. Vérifiez le fichier.")
    if len(text) > MAX_LETTER_CHARS:
        raise AskUsageError(
            f"Le courrier de l'usager {path} est trop long ({len(text)} caractères, au plus "
            f"{MAX_LETTER_CHARS}). Gardez la partie qui contient ses questions."
        )
    return text


def _where(c: Citation) -> str:
    where = c.source + (f", page {c.page}" if c.page is not None else "")
    return f"[{c.n}] {where}" + (f" — {c.title}" if c.title else "")


def _print_end(draft: Draft, streamed: str, common: CommonText) -> None:
    """The final text (checked and marked: the one the export and the audit hold), then its
    sources. On a terminal the draft was shown while it was written: the final text is printed
    again only when it differs (verification marks, citations mapped)."""
    out = sys.stdout
    if not streamed:
        out.write(draft.answer + "\n")
    else:
        tail = [common.mention_ia]
        if not draft.request.retrieval:
            tail.insert(0, common.mention_sans_sources)
        if streamed.strip() + "\n\n" + "\n".join(tail) == draft.answer.strip():
            out.write("\n\n" + "\n".join(tail) + "\n")
        else:
            out.write("\n\n--- Texte final vérifié ---\n\n" + draft.answer + "\n")
    if draft.checks:
        err_console.print(
            f"[yellow]{len(draft.checks)} point(s) à vérifier[/], marqués « À VÉRIFIER » "
            "dans le texte."
        )
    if draft.citations:
        out.write("\nSources citées :\n")
        for c in draft.citations:
            out.write(f"  {_where(c)}\n      « {cited_excerpt(draft.answer, c, 160)} »\n")
    if draft.unused_sources:
        out.write("\nSources consultées mais non citées :\n")
        for c in draft.unused_sources:
            out.write(f"  {_where(c)}\n")
    for warning in draft.warnings:
        err_console.print(f"[yellow]Attention :[/] {warning}")
    t = draft.timings
    if t.get("first_token_s") is not None:
        err_console.print(
            f"[dim]{draft.model} — recherche {t['retrieval_s']} s, premier mot "
            f"{t['first_token_s']} s, total {t['total_s']} s, {t['tokens_per_s']} jetons/s, "
            f"invite {t['prompt_tokens']} jetons dont {t['cached_tokens']} en cache. "
            f"Projet n° {draft.id}.[/]"
        )


def _apply_rights(request: DraftRequest, user: str, settings: Any, service: Any) -> None:
    """Draft as the account ``user`` would from the web page: only its readable collections."""
    from assistant.auth import build_accounts, readable_collections

    account = build_accounts(settings).get(user)
    index = getattr(service.retriever, "index", None)
    if account is None or index is None:
        return
    request.allowed_collections = readable_collections(account.principal(), index)
    shown = ", ".join(request.allowed_collections or []) or "aucune"
    err_console.print(f"[dim]Droits du compte « {user} » : collections {shown}.[/]")


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="La demande ou la question, en français.")],
    doc_type: Annotated[
        str,
        typer.Option(
            "--type",
            "-t",
            help="Type de document : question, courrier, deliberation, arrete, note, "
            "reponse_usager, synthese (modèles du dossier prompts/).",
        ),
    ] = "question",
    field: Annotated[
        list[str] | None,
        typer.Option("--field", "-f", help="Champ du modèle, nom=valeur (répétable)."),
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="Collection où chercher (répétable)."),
    ] = None,
    no_retrieval: Annotated[
        bool,
        typer.Option(
            "--no-retrieval", help="Réponse directe du modèle, sans chercher dans les documents."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Affiche seulement le résultat en JSON, à la fin.")
    ] = False,
    k: Annotated[
        int | None, typer.Option("-k", help="Nombre de passages recherchés (ASSISTANT_TOP_K).")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Nom de l'agent inscrit au journal d'audit ; si c'est un compte "
            "(assistant users list), la recherche se limite aux collections qu'il peut lire.",
        ),
    ] = None,
    courrier_usager: Annotated[
        Path | None,
        typer.Option(
            "--courrier-usager",
            help="Fichier texte du courrier de l'usager auquel répondre (lu pour ses questions).",
        ),
    ] = None,
) -> None:
    """Rédige un document ou répond à une question, en citant les sources."""
    settings = settings_from(ctx, top_k=k)
    letter = read_letter(courrier_usager) if courrier_usager is not None else ""
    request = DraftRequest(
        letter=letter,
        request=question,
        doc_type=doc_type,
        fields=parse_fields(field or []),
        collections=list(collection or []),
        retrieval=not no_retrieval,
        user=user or getpass.getuser(),
    )
    if request.retrieval:  # a wrong type or field fails before any model is loaded
        load_templates(settings.templates_dir).get(doc_type).check_fields(request.fields)
    service = build_service(settings, retrieval=request.retrieval)
    if user and request.retrieval:
        _apply_rights(request, user, settings, service)

    final: Draft | None = None
    streamed = ""
    live = not as_json and sys.stdout.isatty()  # piped: only the final text, once
    events = service.stream(request)  # a generator: closed below, even on Ctrl-C
    try:
        for event in events:
            if event.kind == "token" and live:
                sys.stdout.write(event.text)
                sys.stdout.flush()
                streamed += event.text
            elif event.kind in ("queue", "status") and not as_json:
                err_console.print(f"[dim]{event.text}[/]")
            elif event.kind == "done":
                final = event.draft
    finally:
        events.close()  # Ctrl-C: frees the model and records the partial draft
    if final is None:  # pragma: no cover - the stream always ends with "done"
        raise typer.Exit(1)
    if as_json:
        sys.stdout.write(json.dumps(final.as_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        _print_end(final, streamed, service.templates.common)
