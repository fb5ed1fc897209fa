"""CLI: ``assistant doctor`` — is this machine ready to run the assistant?

Each check says what it found in French and English, and for each failure, the fix.
The checks are plain functions returning :class:`Check` values (tested without a terminal).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from assistant.cli import app, settings_from
from assistant.config import Settings
from assistant.models import (
    CATALOGUE,
    ChecksumCache,
    ModelEntry,
    checksum_state,
    find_entry,
    read_gguf_role,
)

Status = Literal["ok", "warn", "fail"]
LLAMA_MIN, LLAMA_BELOW = "0.3.36", "0.3.37"
MEMINFO = Path("/proc/meminfo")
MIB = 1024 * 1024


@dataclass
class Check:
    id: str
    status: Status
    fr: str
    en: str
    detail: str = ""
    fix: str = ""


def _size(n: float) -> str:
    if n >= 1024 * MIB:
        return f"{n / (1024 * MIB):.1f} Go".replace(".", ",")
    return f"{n / MIB:.0f} Mo"


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_python(version: tuple[int, int] | None = None) -> Check:
    major, minor = version or (sys.version_info.major, sys.version_info.minor)
    found = f"Python {major}.{minor}"
    if (major, minor) == (3, 11):
        return Check("python", "ok", "Version de Python (3.11)", "Python version (3.11)", found)
    return Check(
        "python",
        "fail",
        "Version de Python (3.11)",
        "Python version (3.11)",
        found,
        "Installez Python 3.11 et recréez l'environnement : python3.11 -m venv .venv && "
        ". .venv/bin/activate && pip install -e .",
    )


def check_llama(settings: Settings) -> Check:
    from packaging.version import Version

    fr, en = "llama-cpp-python importable", "llama-cpp-python importable"
    needed = settings.llm_backend == "local" or settings.embedding_backend == "local"
    try:
        import llama_cpp
    except Exception as err:  # ImportError, or OSError when the shared library fails to load
        return Check(
            "llama_cpp",
            "fail" if needed else "warn",
            fr,
            en,
            f"{type(err).__name__}: {err}",
            "Installez-le avec les options du projet : « python scripts/install_engine.py » "
            "(la compilation demande un compilateur C++ et cmake).",
        )
    version = str(getattr(llama_cpp, "__version__", "?"))
    try:
        in_range = Version(LLAMA_MIN) <= Version(version) < Version(LLAMA_BELOW)
    except ValueError:
        in_range = False
    if in_range:
        return Check("llama_cpp", "ok", fr, en, f"version {version}")
    return Check(
        "llama_cpp",
        "warn",
        fr,
        en,
        f"version {version} (attendue : >={LLAMA_MIN},<{LLAMA_BELOW})",
        "Installez la version prévue : « python scripts/install_engine.py --force ».",
    )


_ROLE_FR = {"rédaction": "conversation", "embeddings": "embeddings", "reranker": "reranker"}


def check_model(
    settings: Settings,
    kind: Literal["rédaction", "embeddings", "reranker"],
    catalogue: tuple[ModelEntry, ...] = CATALOGUE,
) -> Check:
    """The configured model file: present, role consistent, sha256 verified if catalogued."""
    labels = {
        "rédaction": ("Modèle de rédaction présent", "Chat model present", "chat_model"),
        "embeddings": ("Modèle d'embeddings présent", "Embedding model present", "embedding_model"),
        "reranker": ("Reranker présent", "Reranker present", "reranker_model"),
    }
    fr, en, setting = labels[kind]
    check_id = f"model_{setting}"
    backend = settings.llm_backend if kind == "rédaction" else settings.embedding_backend
    if kind != "reranker" and backend == "server":
        url = settings.llm_url if kind == "rédaction" else settings.embedding_url
        return Check(check_id, "ok", fr, en, f"serveur {url} (non testé ici)")
    path = {
        "rédaction": settings.chat_model_path,
        "embeddings": settings.embedding_model_path,
        "reranker": settings.reranker_model_path,
    }[kind]
    assert path is not None
    entry = find_entry(path.name, catalogue)
    if not path.is_file():
        if entry is not None:
            which = "test" if entry.sets == ("test",) else "default"
            option = "" if which == "default" else " --set test"
            fix = f"Installez-le : assistant models install{option}"
        else:
            fix = (
                f"Placez le fichier GGUF dans {settings.models_dir} ou corrigez le réglage "
                f"{setting} (ASSISTANT_{setting.upper()}) ; « assistant models list » montre "
                "les modèles présents."
            )
        return Check(check_id, "fail", fr, en, f"absent : {path}", fix)
    role, arch = read_gguf_role(path)
    expected = _ROLE_FR[kind]
    if role != expected:
        what = (
            "n'est pas un fichier GGUF lisible"
            if role == "illisible"
            else f"est un modèle de rôle « {role} »"
        )
        return Check(
            check_id,
            "fail",
            fr,
            en,
            f"{path.name} {what} (attendu : {expected})",
            f"Réglez {setting} sur un modèle de {expected} (voir « assistant models list »).",
        )
    size = path.stat().st_size
    if entry is None:
        return Check(
            check_id,
            "ok",
            fr,
            en,
            f"{path.name} ({_size(size)}, {arch}, hors catalogue : empreinte non vérifiée)",
        )
    state = checksum_state(path, entry, ChecksumCache(path.parent))
    if state == "vérifié":
        return Check(check_id, "ok", fr, en, f"{path.name} ({_size(size)}, empreinte vérifiée)")
    return Check(
        check_id,
        "fail",
        fr,
        en,
        f"{path.name} : empreinte sha256 incorrecte (fichier corrompu)",
        "Relancez « assistant models install » : le fichier sera remplacé.",
    )


def check_data_dir(settings: Settings) -> Check:
    fr, en = "Dossier de données accessible en écriture", "Data directory writable"
    target = settings.data_dir
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check(
            "data_dir",
            "fail",
            fr,
            en,
            f"{target} : {existing} n'est pas un dossier",
            "Corrigez data_dir (ASSISTANT_DATA_DIR) vers un dossier.",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as err:
        return Check(
            "data_dir",
            "fail",
            fr,
            en,
            f"{existing} : {err.strerror or err}",
            f"Donnez les droits d'écriture sur {existing} à l'utilisateur du service, ou réglez "
            "data_dir (ASSISTANT_DATA_DIR) vers un dossier accessible.",
        )
    note = "" if existing == target else " (sera créé)"
    return Check("data_dir", "ok", fr, en, f"{target.resolve()}{note}")


def check_access(settings: Settings) -> Check:
    """Who may use the web page: nobody but this machine, accounts, or the proxy's header; a
    legacy clear-text ``auth_file`` is a warning (``assistant users import``)."""
    from assistant.auth import AccountStore
    from assistant.offline import is_loopback

    fr, en = "Accès à l'interface web", "Web access control"
    accounts = (
        AccountStore(settings.accounts_path).count() if settings.accounts_path.is_file() else 0
    )
    if settings.auth_file is not None:
        return Check(
            "access", "warn", fr, en,
            f"auth_file {settings.auth_file} (mots de passe en clair), {accounts} compte(s)",
            f"Migrez : assistant users import {settings.auth_file} --groups SERVICE, puis "
            "retirez auth_file.",
        )  # fmt: skip
    if settings.auth_header:
        proxies = ", ".join(settings.trusted_proxies)
        if not proxies:
            return Check(
                "access", "fail", fr, en, f"en-tête {settings.auth_header} sans proxy de confiance",
                "Indiquez l'adresse du proxy dans trusted_proxies (ASSISTANT_TRUSTED_PROXIES).",
            )  # fmt: skip
        return Check("access", "ok", fr, en, f"en-tête {settings.auth_header} depuis {proxies}")
    if accounts:
        return Check("access", "ok", fr, en, f"{accounts} compte(s) (assistant users list)")
    if not is_loopback(settings.host):
        return Check(
            "access", "fail", fr, en, f"écoute sur {settings.host} sans aucun compte",
            "Créez les comptes : assistant users add NOM --groups SERVICE.",
        )  # fmt: skip
    return Check("access", "ok", fr, en, "cette machine seulement (127.0.0.1), sans compte")


def mem_available(meminfo: Path = MEMINFO) -> int | None:
    """MemAvailable of /proc/meminfo, in bytes (None when unknown)."""
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def estimate_model_memory(path: Path, n_ctx: int, n_batch: int) -> tuple[int, int, int]:
    """(file bytes, KV cache bytes, compute buffer bytes) needed to run a GGUF model.

    Estimate from the GGUF metadata: the KV cache is f16 K and V for every layer and position;
    the compute buffer is dominated by one micro-batch of logits (vocabulary x batch, f32).
    """
    import gguf

    size = path.stat().st_size
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError, KeyError):
        return size, size // 4, 256 * MIB

    def get(key: str) -> Any:
        item = reader.fields.get(key)
        return item.contents() if item is not None else None

    arch = get("general.architecture") or ""
    n_layer = int(get(f"{arch}.block_count") or 0)
    n_embd = int(get(f"{arch}.embedding_length") or 0)
    n_head = get(f"{arch}.attention.head_count") or 1
    n_head = int(max(n_head) if isinstance(n_head, list) else n_head)
    n_head_kv = get(f"{arch}.attention.head_count_kv") or n_head
    n_head_kv = int(max(n_head_kv) if isinstance(n_head_kv, list) else n_head_kv)
    k_len = int(get(f"{arch}.attention.key_length") or (n_embd // max(n_head, 1)))
    v_len = int(get(f"{arch}.attention.value_length") or (n_embd // max(n_head, 1)))
    kv = n_layer * n_ctx * n_head_kv * (k_len + v_len) * 2
    tokens = get("tokenizer.ggml.tokens")
    n_vocab = len(tokens) if isinstance(tokens, list) else 32000
    compute = n_vocab * min(n_batch, 512) * 4 + 64 * MIB
    return size, kv, compute


def check_memory(settings: Settings, meminfo: Path = MEMINFO) -> Check:
    fr, en = "Mémoire disponible suffisante", "Enough free memory"
    available = mem_available(meminfo)
    parts: list[str] = []
    need = 0
    if settings.llm_backend == "local" and settings.chat_model_path.is_file():
        size, kv, compute = estimate_model_memory(
            settings.chat_model_path, settings.n_ctx, settings.n_batch
        )
        need += size + kv + compute
        parts.append(
            f"modèle {_size(size)} + cache KV {_size(kv)} (n_ctx={settings.n_ctx}) "
            f"+ calcul {_size(compute)}"
        )
    if settings.embedding_backend == "local" and settings.embedding_model_path.is_file():
        size = settings.embedding_model_path.stat().st_size
        need += size + 128 * MIB
        parts.append(f"embeddings {_size(size + 128 * MIB)}")
    need += 256 * MIB  # Python, Chroma, the web UI
    parts.append("application 256 Mo")
    detail_need = f"besoin estimé {_size(need)} ({' + '.join(parts)})"
    if available is None:
        return Check(
            "memory",
            "warn",
            fr,
            en,
            f"{detail_need} ; mémoire libre inconnue ({meminfo} illisible)",
            "Vérifiez la mémoire libre avec « free -h ».",
        )
    detail = f"{_size(available)} disponibles, {detail_need}"
    if available < need:
        return Check(
            "memory",
            "fail",
            fr,
            en,
            detail,
            "Libérez de la mémoire, réduisez n_ctx (ASSISTANT_N_CTX), choisissez un modèle plus "
            "petit, ou servez le modèle depuis une autre machine (llm_backend=server).",
        )
    if available < need * 1.25:
        return Check(
            "memory",
            "warn",
            fr,
            en,
            detail + " (marge faible)",
            "Prévoyez plus de mémoire ou réduisez n_ctx si d'autres services tournent.",
        )
    return Check("memory", "ok", fr, en, detail)


def check_threads(settings: Settings) -> Check:
    fr, en = "Fils CPU", "CPU threads"
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    detail = f"threads={settings.threads}, {usable} cœur(s) utilisable(s)"
    if settings.threads > usable:
        return Check(
            "threads",
            "warn",
            fr,
            en,
            detail,
            f"Réglez threads à {usable} au plus (ASSISTANT_THREADS={usable}) : "
            "plus de fils que de cœurs ralentit llama.cpp.",
        )
    return Check("threads", "ok", fr, en, detail)


def check_engine_build() -> Check:
    """The llama.cpp build: version, the CMake options the project chose, the CPU features that
    llama.cpp reports using (its own `llama_print_system_info`)."""
    from assistant.engine import build_info, cpu_model_and_flags

    fr, en = "moteur llama.cpp (construction)", "llama.cpp engine build"
    info = build_info()
    if info["version"] is None:
        return Check("engine_build", "warn", fr, en, "llama-cpp-python absent")
    cpu, flags = cpu_model_and_flags()
    system = info["system_info"] or "?"
    detail = (f"llama-cpp-python {info['version']} ; processeur : {cpu} "
              f"({' '.join(f for f in flags if f.startswith('amx')) or 'sans AMX'}) ; "
              f"llama.cpp : {system}")
    if info["cmake_args"]:
        detail += f" ; options : {' '.join(info['cmake_args'])}"
        return Check("engine_build", "ok", fr, en, detail)
    amx_on = "AMX_INT8 = 1" in system or "AMX = 1" in system
    return Check(
        "engine_build",
        "warn",
        fr,
        en,
        detail + " ; construit par pip (-march=native)"
        + (", avec AMX" if amx_on else ""),
        "Reconstruisez-le avec les options du projet : « python scripts/install_engine.py "
        "--force » (scripts/run.sh et scripts/test.sh le font).",
    )


def check_engine_self_test(settings: Settings) -> Check:
    """Run the engine self-test in child processes (chat model + embedder) and report it."""
    from assistant.engine import run_self_test

    fr, en = "autotest du moteur (processus enfant)", "engine self-test (child process)"
    if settings.llm_backend != "local":
        return Check("engine_self_test", "ok", fr, en, "modèle sur serveur : sans objet")
    if not settings.chat_model_path.is_file():
        return Check("engine_self_test", "warn", fr, en, "modèle de conversation absent",
                     "assistant models install")
    result = run_self_test(settings)
    if not result.ok:
        return Check("engine_self_test", "fail", fr, en, result.message, "voir le message")
    report = result.report
    detail = (
        f"{result.message} Tampons des poids : {', '.join(report.get('buffers', [])) or '?'} ; "
        f"prompt {report.get('prompt_tokens_per_s')} jetons/s, génération "
        f"{report.get('generated_tokens_per_s')} jetons/s (mesure courte)"
    )
    status: Status = "ok" if result.extra_buffers is not False or \
        settings.extra_buffers == "off" else "warn"
    return Check("engine_self_test", status, fr, en, detail)


def run_checks(
    settings: Settings, meminfo: Path = MEMINFO, *, self_test: bool = True
) -> list[Check]:
    """All checks, in display order; ``self_test`` runs the engine in child processes."""
    checks = [
        check_python(),
        check_llama(settings),
        check_engine_build(),
        check_model(settings, "rédaction"),
        check_model(settings, "embeddings"),
    ]
    if settings.reranker_model:
        checks.append(check_model(settings, "reranker"))
    checks += [
        check_data_dir(settings),
        check_access(settings),
        check_memory(settings, meminfo),
        check_threads(settings),
    ]
    if self_test and not any(c.status == "fail" for c in checks):
        checks.append(check_engine_self_test(settings))
    return checks


# --------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------

_LABEL = {
    "ok": ("[green]OK[/]", "OK"),
    "warn": ("[yellow]ATTENTION[/]", "ATTENTION"),
    "fail": ("[bold red]ÉCHEC[/]", "ÉCHEC"),
}


def _print_settings(settings: Settings, console: Console) -> None:
    table = Table(title="Réglages (assistant.toml, variables ASSISTANT_*, options)")
    table.add_column("Réglage")
    table.add_column("Valeur")
    table.add_column("Description")
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        shown = (
            "********"
            if value is not None and "secret" in type(value).__name__.lower()
            else str(value)
        )
        table.add_row(name, shown, info.description or "")
    console.print(table)


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
    show_settings: Annotated[
        bool, typer.Option("--settings", help="Affiche aussi tous les réglages et leur valeur.")
    ] = False,
    self_test: Annotated[
        bool,
        typer.Option("--self-test/--no-self-test", help="Autotest du moteur (processus enfant)."),
    ] = True,
) -> None:
    """Diagnostic : Python, llama.cpp (construction et autotest), modèles, données, mémoire."""
    settings = settings_from(ctx)
    checks = run_checks(settings, self_test=self_test)
    failed = [c for c in checks if c.status == "fail"]
    if as_json:
        typer.echo(
            json.dumps(
                {"ok": not failed, "checks": [asdict(c) for c in checks]},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        console = Console(highlight=False)
        if show_settings:
            _print_settings(settings, console)
        for check in checks:
            label, plain = _LABEL[check.status]
            pad = " " * (10 - len(plain))
            console.print(
                f"{label}{pad}{check.fr} / {check.en}"
                + (f" — {check.detail}" if check.detail else "")
            )
            if check.fix and check.status != "ok":
                console.print(f"{' ' * 10}→ Correctif / Fix : {check.fix}")
        if failed:
            console.print(
                f"\n[bold red]Verdict : {len(failed)} problème(s) à corriger[/] / "
                f"{len(failed)} problem(s) to fix."
            )
        else:
            console.print("\n[bold green]Verdict : prêt[/] / Ready.")
    if failed:
        raise typer.Exit(1)
