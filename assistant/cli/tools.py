"""CLI: assistant eval (retrieval and answer evaluation) / bench (runs the benchmark scripts)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from assistant.cli import app, settings_from
from assistant.errors import AssistantError

console = Console()


class EvalUsageError(AssistantError):
    exit_code = 2


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in out:
        out = out.replace("--", "-")
    return out[:50].strip("-") or "eval"


def _ingest(folder: Path, collection: str, index: Any, embedder: Any) -> None:
    from assistant.ingest import sync_folder

    with console.status(f"Indexation de {folder} dans « {collection} »…"):
        sync_folder(folder, collection, index, embedder)


def _metrics_table(title: str, reports: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column("mode / mode")
    table.add_column("groupe / group")
    table.add_column("n", justify="right")
    for head in ("rappel@1", "rappel@5", "rappel@10", "MRR"):
        table.add_column(head, justify="right")

    def row(mode: str, group: str, m: dict[str, Any]) -> None:
        table.add_row(
            mode,
            group,
            str(m["questions"]),
            f"{m['recall@1']:.2f}",
            f"{m['recall@5']:.2f}",
            f"{m['recall@10']:.2f}",
            f"{m['mrr']:.3f}",
        )

    for mode, rep in reports.items():
        row(mode, "toutes / all", rep)
        for key, m in rep["by_difficulty"].items():
            row("", f"difficulté {key}", m)
        for key, m in rep["by_type"].items():
            row("", f"type {key}", m)
    return table


@app.command("eval")
def eval_(
    ctx: typer.Context,
    questions: Annotated[
        Path,
        typer.Argument(
            help="Questions : JSONL du projet, ou fichier SQuAD (PIAF-ml) .json ; ou le mot "
            "« drafts » suivi d'un fichier de demandes de rédaction (évaluation des brouillons)."
        ),
    ],
    drafts_file: Annotated[
        Path | None,
        typer.Argument(help="Avec « drafts » : le fichier JSONL des demandes de rédaction."),
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="Dossier des documents des questions JSONL (inutile pour SQuAD)."),
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help="Collection à interroger (défaut : dérivée du fichier).")
    ] = None,
    ingest: Annotated[
        bool,
        typer.Option(
            "--ingest",
            help="Indexer le corpus dans un dossier de données temporaire, supprimé ensuite.",
        ),
    ] = False,
    mode: Annotated[str, typer.Option(help="hybrid (défaut), dense ou lexical.")] = "hybrid",
    compare_modes: Annotated[
        bool, typer.Option("--compare-modes", help="Mesurer les trois modes côte à côte.")
    ] = False,
    answers: Annotated[
        bool,
        typer.Option("--answers", help="Rédiger aussi les réponses et vérifier leurs citations."),
    ] = False,
    no_budget: Annotated[
        bool,
        typer.Option(
            "--no-budget",
            help="Avec --answers : sans budget de contexte (5 passages entiers, pour comparer).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
    limit: Annotated[
        int | None, typer.Option(help="N'évaluer que les N premières questions.")
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            "--variants",
            help="Variantes de recherche à comparer, séparées par des virgules : base, rrf, "
            "rescore, sentence, rewrite (rewrite utilise le modèle de conversation).",
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only", help="Avec drafts : identifiants à rédiger, séparés par des virgules."
        ),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option("--save", help="Avec drafts : écrire les brouillons et mesures (JSON) ici."),
    ] = None,
    cold: Annotated[
        bool,
        typer.Option(
            "--cold",
            help="Avec drafts : sans préchauffage (comme une commande « ask » isolée) ; par "
            "défaut, les types du fichier sont préchauffés comme au démarrage de « serve ».",
        ),
    ] = False,
) -> None:
    """Évalue la recherche (rappel@k, MRR) et, au besoin, les réponses, sur des questions ;
    « assistant eval drafts FICHIER » évalue les brouillons rédigés."""
    if str(questions) == "drafts":
        if drafts_file is None:
            raise EvalUsageError(
                "Indiquez le fichier des demandes : assistant eval drafts FICHIER.jsonl "
                "--corpus DOSSIER."
            )
        eval_drafts(ctx, drafts_file, corpus, collection, limit, only, save, as_json, not cold)
        return
    from assistant.embeddings import build_embedder
    from assistant.evaluation import (
        VARIANTS,
        CachedQueries,
        answer_citation_rate,
        evaluate,
        is_squad,
        load_questions,
        variant_retriever,
        write_squad_passages,
    )
    from assistant.retrieval import MODES, Mode, build_retriever
    from assistant.store import build_index

    if mode not in MODES:
        raise EvalUsageError(f"Mode inconnu : {mode}. Choisissez hybrid, dense ou lexical.")
    squad = is_squad(questions)
    if not squad and corpus is None:
        raise EvalUsageError(
            "Indiquez le dossier des documents avec --corpus DOSSIER (questions JSONL)."
        )
    if corpus is not None and not corpus.is_dir():
        raise EvalUsageError(f"Dossier du corpus introuvable : {corpus}. Vérifiez le chemin.")
    items = load_questions(questions)
    if limit:
        items = items[:limit]
    name = collection or (
        "piaf-" + _slug(questions.stem)
        if squad
        else "eval-" + _slug(corpus.name if corpus else "corpus")
    )

    temp_data = Path(tempfile.mkdtemp(prefix="assistant-eval-")) if ingest else None
    passages_dir: Path | None = None
    more: dict[str, Any] = {"context_budget": 0} if no_budget else {}
    if temp_data:
        more["data_dir"] = temp_data
    try:
        settings = settings_from(ctx, **more)
        index = build_index(settings)
        embedder = build_embedder(settings)
        if squad:
            passages_dir = Path(tempfile.mkdtemp(prefix="assistant-squad-"))
            write_squad_passages(questions, passages_dir)
        folder = passages_dir if squad else corpus
        assert folder is not None
        if ingest or not index.has_collection(name):
            _ingest(folder, name, index, embedder)
        retriever = build_retriever(settings, index=index, embedder=CachedQueries(embedder))

        modes: list[Mode] = list(MODES) if compare_modes else [cast(Mode, mode)]
        names = [v.strip() for v in (variants or "").split(",") if v.strip()]
        for v in names:
            if v not in VARIANTS:
                raise EvalUsageError(
                    f"Variante inconnue : {v}. Choisissez parmi : {', '.join(VARIANTS)}."
                )
        runs: list[tuple[str, Mode, Any]] = [(m, m, retriever) for m in modes]
        if names:
            rewriter = _rewriter(settings) if "rewrite" in names else None
            runs = [
                (f"{v}/{m}", m, variant_retriever(retriever, v, rewriter))
                for v in names
                for m in modes
                if not (v != "base" and m == "lexical")  # variants change the dense side only
            ]
        reports: dict[str, dict[str, Any]] = {}
        for label, m, chosen in runs:
            started = time.perf_counter()
            report = evaluate(
                lambda q, m=m, r=chosen: r.search(q, collections=[name], k=10, mode=m),  # type: ignore[misc]
                items,
                mode=label,
                corpus=None if squad else corpus,
            )
            seconds = time.perf_counter() - started
            if answers and m == modes[0]:
                report.answers = {
                    "context_budget": settings.context_budget,
                    **answer_citation_rate(_drafter(settings, name), items),
                }
            reports[label] = report.as_json()
            reports[label]["seconds_per_question"] = round(seconds / max(1, len(items)), 3)
            if getattr(chosen, "rewriter", None) is not None:
                reports[label]["rewrites"] = getattr(chosen.rewriter, "stats", {})
    finally:
        if passages_dir is not None:
            shutil.rmtree(passages_dir, ignore_errors=True)
        if temp_data is not None:
            shutil.rmtree(temp_data, ignore_errors=True)

    if as_json:
        out: dict[str, Any] = reports if (compare_modes or names) else reports[mode]
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    console.print(
        _metrics_table(f"Évaluation de la recherche — {questions.name} ({name})", reports)
    )
    for shown, rep in reports.items():
        if rep["misses"]:
            console.print(f"[bold]Manqués (hors des 5 premiers) — mode {shown} :[/]")
            for miss in rep["misses"]:
                rank = f"rang {miss['rank']}" if miss["rank"] else "absent du top 10"
                console.print(
                    f"  {miss['id']} ({rank}) : {miss['question']}\n"
                    f"     attendu : {miss['expected']}\n"
                    f"     obtenu  : {', '.join(miss['top_sources'][:3])}",
                    highlight=False,
                )
        if "answers" in rep:
            a = rep["answers"]
            budget = f"{a['context_budget']} jetons" if a["context_budget"] else "aucun"
            console.print(
                f"Réponses (budget de contexte : {budget}) : document attendu parmi les sources "
                f"données {a['sources_expected']:.0%}, cité dans la réponse "
                f"{a['cites_expected']:.0%} ({a['questions']} questions)"
                + (
                    f" ; invite médiane {a['median_prompt_tokens']} jetons, dont "
                    f"{a['median_uncached_tokens']} non lus avant"
                    if "median_prompt_tokens" in a
                    else ""
                )
            )


class _ChatRewriter:
    """Question -> a short search query in the documents' vocabulary, written by the chat model.
    ``stats`` counts calls, generated tokens and seconds (the cost of the variant)."""

    PROMPT = (
        "Réécris la question d'un agent municipal en une courte requête de recherche (12 mots "
        "au plus) avec les termes juridiques et administratifs qu'emploieraient les textes "
        "officiels (code général des collectivités territoriales, service-public.fr). "
        "Réponds seulement par la requête.\nQuestion : {question}\nRequête :"
    )

    def __init__(self, settings: Any) -> None:
        from assistant.llm import build_chat_model

        self.model = build_chat_model(settings)
        self.stats: dict[str, float] = {"calls": 0, "tokens": 0, "seconds": 0.0}

    def __call__(self, question: str) -> str:
        started = time.perf_counter()
        from assistant.llm import GenerationStats

        stats = GenerationStats()
        messages = [{"role": "user", "content": self.PROMPT.format(question=question)}]
        text = self.model.complete(messages, max_tokens=32, temperature=0.0, stats=stats)
        self.stats["calls"] += 1
        self.stats["tokens"] += (stats.prompt_tokens or 0) + (stats.completion_tokens or 0)
        self.stats["seconds"] = round(self.stats["seconds"] + time.perf_counter() - started, 2)
        return text.strip().splitlines()[0] if text.strip() else ""


def _rewriter(settings: Any) -> Any:
    return _ChatRewriter(settings)


DRAFT_COLUMNS = (
    ("drafts", "brouillons"),
    ("markup", "balises"),
    ("stray_contacts", "coord. parasites"),
    ("unsupported_figures", "chiffres non appuyés non marqués"),
    ("marks", "marques à vérifier"),
    ("copied_share", "part recopiée"),
    ("facts", "faits"),
    ("expected_cited", "source attendue citée"),
    ("complete", "complets"),
    ("declined_off_corpus", "hors corpus déclinés"),
    ("first_words_s", "1ers mots (s, méd.)"),
    ("total_s", "total (s, méd.)"),
)


def _cell(value: Any) -> str:
    if isinstance(value, list) and len(value) == 2:
        return f"{value[0]}/{value[1]}"
    if value is None:
        return "—"
    return str(value)


def drafts_table(summary: dict[str, dict[str, Any]]) -> str:
    """The per-type summary as a Markdown table (printed, and pasted into reports)."""
    head = "| type | " + " | ".join(label for _, label in DRAFT_COLUMNS) + " |"
    rule = "|---" * (len(DRAFT_COLUMNS) + 1) + "|"
    rows = [
        f"| {kind} | " + " | ".join(_cell(m[key]) for key, _ in DRAFT_COLUMNS) + " |"
        for kind, m in summary.items()
    ]
    return "\n".join([head, rule, *rows])


def eval_drafts(
    ctx: typer.Context,
    path: Path,
    corpus: Path | None,
    collection: str | None,
    limit: int | None,
    only: str | None,
    save: Path | None,
    as_json: bool,
    warm: bool = True,
) -> None:
    """Draft every request of ``path`` with the real service and report per type. ``warm``:
    first evaluate the fixed part of each type the file uses, as ``serve`` does when it
    starts (:meth:`assistant.drafting.DraftingService.warm_up`), so that the timings are those
    an agent sees in the web interface; without it, the first request of each type also pays
    for its fixed part (a one-off ``ask``)."""
    from assistant.drafting import build_service
    from assistant.embeddings import build_embedder
    from assistant.evaluation import (
        load_draft_cases,
        run_draft_case,
        score_draft,
        summarise_drafts,
    )
    from assistant.store import build_index

    cases = load_draft_cases(path)
    if only:
        wanted = {x.strip() for x in only.split(",") if x.strip()}
        cases = [c for c in cases if c.id in wanted]
    if limit:
        cases = cases[:limit]
    if corpus is not None and not corpus.is_dir():
        raise EvalUsageError(f"Dossier du corpus introuvable : {corpus}. Vérifiez le chemin.")
    name = collection or "eval-" + _slug(corpus.name if corpus else "corpus")
    settings = settings_from(ctx)
    index = build_index(settings)
    if not index.has_collection(name):
        if corpus is None:
            raise EvalUsageError(
                f"La collection « {name} » n'existe pas : indiquez --corpus DOSSIER pour "
                "l'indexer, ou --collection NOM."
            )
        _ingest(corpus, name, index, build_embedder(settings))
    service = build_service(settings)
    if warm and cases:
        if not as_json:
            console.print("[dim]Préchauffage des types de documents…[/]", highlight=False)
        service.warm_up(list(dict.fromkeys(c.type for c in cases)))
    rows: list[dict[str, Any]] = []
    drafts: list[dict[str, Any]] = []
    for case in cases:
        if not as_json:
            console.print(f"[dim]{case.id} ({case.type})…[/]", highlight=False)
        outcome = run_draft_case(service, case, [name])
        row = score_draft(case, outcome)
        rows.append(row)
        drafts.append({**row, "answer": outcome.answer, "cited": [f for f, _ in outcome.cited]})
        if not as_json:
            console.print(
                f"[dim]  faits {row['facts'][0]}/{row['facts'][1]}, source attendue "
                f"{'oui' if row['expected_cited'] else 'non'}, chiffres non appuyés "
                f"{len(row['unsupported_figures'])}, premiers mots {row['first_words_s']} s, "
                f"total {row['total_s']} s[/]",
                highlight=False,
            )
    summary = summarise_drafts(rows)
    report = {
        "file": str(path),
        "model": service.chat_model.name,
        "warm_up": warm,
        "summary": summary,
    }
    if save is not None:
        save.write_text(
            json.dumps({**report, "drafts": drafts}, ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
    if as_json:
        typer.echo(json.dumps({**report, "rows": rows}, ensure_ascii=False, indent=2))
        return
    typer.echo(drafts_table(summary))


def _drafter(settings: Any, collection: str) -> Any:
    """A function question -> sources of the drafted answer (the drafting service)."""
    from assistant.drafting import DraftRequest, build_service
    from assistant.evaluation import AnswerSources

    service = build_service(settings)

    def draft_sources(question: str) -> AnswerSources:
        request = DraftRequest(request=question, collections=[collection], user="evaluation")
        draft = service.draft(request)
        return AnswerSources(
            cited=[c.source for c in draft.citations],
            given=[c.source for c in draft.sources],
            prompt_tokens=int(draft.timings.get("prompt_tokens") or 0),
            cached_tokens=int(draft.timings.get("cached_tokens") or 0),
        )

    return draft_sources


# ``assistant bench <name> [args]`` runs scripts/<script> with the same Python. A subprocess
# rather than an import: each script keeps its own argument parser and exit code, and a long
# benchmark's memory (models, indexes) goes away with it.
BENCHES = {
    "all": "bench.py",
    "ingest": "bench_ingest.py",
    "retrieval": "bench_retrieval.py",
    "drafting": "bench_drafting.py",
    "first-token": "bench_first_token.py",
}
SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"


class BenchUsageError(AssistantError):
    exit_code = 2


def bench_command(name: str, args: list[str], scripts_dir: Path | None = None) -> list[str]:
    """The command line that runs benchmark ``name`` with ``args``."""
    scripts_dir = scripts_dir or SCRIPTS_DIR
    if name not in BENCHES:
        raise BenchUsageError(
            f"Mesure inconnue : « {name} ». Choisissez parmi : {', '.join(BENCHES)} "
            "(par exemple « assistant bench first-token --help »)."
        )
    script = scripts_dir / BENCHES[name]
    if not script.is_file():
        raise BenchUsageError(
            f"Script de mesure introuvable : {script}. Les mesures s'exécutent depuis le dossier "
            "du projet (dépôt complet, avec son dossier scripts/) ; clonez-le ou lancez le script "
            "directement."
        )
    return [sys.executable, str(script), *args]


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            help="all (défaut : toutes les mesures, chacune à côté de sa référence), ingest, "
            "retrieval, drafting ou first-token ; les options suivantes vont au script "
            "(« assistant bench all --help »)."
        ),
    ] = None,
) -> None:
    """Mesure les vitesses (embeddings, ingestion, recherche, rédaction, mémoire) sur cette
    machine, chacune à côté de sa référence ; « assistant bench --json bench.json » les écrit."""
    if name in ("--help", "-h"):
        typer.echo(ctx.get_help())
        typer.echo(f"\nMesures disponibles : {', '.join(BENCHES)}.")
        raise typer.Exit(0)
    args = list(ctx.args)
    if name is None or name.startswith("-"):  # « assistant bench [--json F] »: everything
        args = ([name] if name else []) + args
        name = "all"
    command = bench_command(name, args)
    # The global options (--chat-model, --threads...) reach the script as ASSISTANT_* variables.
    state = ctx.find_root().obj
    env = dict(os.environ)
    for key, value in getattr(state, "overrides", {}).items():
        if value is not None:
            env[f"ASSISTANT_{key.upper()}"] = str(value)
    raise typer.Exit(subprocess.call(command, env=env))
