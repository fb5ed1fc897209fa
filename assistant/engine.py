"""The llama.cpp engine: what was built, how models are opened, and a self-test in a child process.

Why: on virtualised Intel Xeons with AMX, a llama.cpp built with `-march=native` dies on its first
multi-token decode (SIGSEGV in ggml's AMX kernels; ../shared/MODELS.md, ollama #17006, llama.cpp
#20824). A native crash cannot be caught in the process that suffers it, so the engine is proven
in a child process before an agent ever waits on it:

- :func:`run_self_test` starts ``python -m assistant.engine`` (see :func:`_child_main`), which
  loads the configured chat model and embedder, decodes a prompt in one batch (the path that
  crashes), generates a few tokens greedily, embeds two sentences, and checks that every logit and
  vector is finite and not constant. A crash (signal), a hang (time limit) or garbage is reported
  in French with the fix, never as a crash of the caller.
- With ``extra_buffers = "auto"`` (the default), a child that crashes with llama.cpp's extra
  buffer types on (weight repacking, AMX) is retried with them off; if that passes, the engine
  runs without them on this host from then on (:func:`open_llama`), and `assistant doctor` says
  so.
- :func:`ensure_engine` runs the self-test once per engine build (llama.cpp libraries, model
  files, CPU flags, settings), caching the verdict in ``data_dir/engine-selftest.json``; `serve`
  and `ask` call it before loading the model.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError

#: Seconds the child may take to load both models and run the checks. The 1.5B chat model loads
#: in ~2 s and the checks take a few seconds on 2 idle cores; the margin covers a loaded machine.
SELF_TEST_TIMEOUT_S = 240.0
#: Name of the verdict cache under data_dir.
CACHE_NAME = "engine-selftest.json"
#: The prompt decoded in one batch (several tokens: the multi-token path is the one that crashes).
PROBE_PROMPT = (
    "Le conseil municipal se réunit au moins une fois par trimestre. Le maire convoque les "
    "conseillers par écrit, trois jours francs au moins avant la séance."
)
PROBE_SENTENCES = (
    "Les tarifs de la cantine scolaire sont fixés par délibération du conseil municipal.",
    "Le marché hebdomadaire se tient le samedi matin sur la place de la mairie.",
)
GENERATED_TOKENS = 6


class EngineError(AssistantError):
    """The llama.cpp engine failed its self-test on this host (message in French, with the fix)."""


@dataclass
class Attempt:
    """One child run: with or without extra buffers, and what happened."""

    extra_buffers: bool
    ok: bool
    outcome: str  # "ok", "crash", "hang", "garbage", "error"
    detail: str = ""
    seconds: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class SelfTestResult:
    """The verdict of :func:`run_self_test`.

    ``extra_buffers`` is the setting the engine must run with on this host (None when no attempt
    passed); ``attempts`` lists each child run; ``message`` is the French summary for the agent or
    the IT person (with the fix when ``ok`` is False).
    """

    ok: bool
    extra_buffers: bool | None
    message: str
    fingerprint: str
    attempts: list[Attempt] = field(default_factory=list)
    checked_at: float = 0.0

    @property
    def report(self) -> dict[str, Any]:
        """The passing child's report (speeds, buffers, dimensions), or {}."""
        for attempt in self.attempts:
            if attempt.ok:
                return attempt.report
        return {}

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# --- what was built ---------------------------------------------------------------------------


def _llama_cpp_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def build_info() -> dict[str, Any]:
    """Facts about the installed llama.cpp: shape ``{"version", "cmake_args", "system_info",
    "built_by_project"}``.

    ``cmake_args`` comes from the record `scripts/install_engine.py` writes next to the package
    (None when llama-cpp-python was installed some other way, e.g. by plain pip: then the build is
    pip's `-march=native` default). ``system_info`` is llama.cpp's own `llama_print_system_info()`
    (CPU features compiled in and used, e.g. ``AVX512 = 1 | AMX_INT8 = 0 | REPACK = 1``).
    """
    info: dict[str, Any] = {"version": None, "cmake_args": None, "system_info": None,
                            "built_by_project": False}
    try:
        import llama_cpp
    except ImportError:
        return info
    info["version"] = getattr(llama_cpp, "__version__", None)
    try:
        raw = llama_cpp.llama_print_system_info()
        info["system_info"] = (raw.decode("utf-8", "replace") if isinstance(raw, bytes)
                               else str(raw)).strip()
    except (AttributeError, OSError):  # pragma: no cover - older bindings
        pass
    pkg = _llama_cpp_dir()
    if pkg is not None:
        try:
            record = json.loads((pkg / "assistant_engine_build.json").read_text(encoding="utf-8"))
            info["cmake_args"] = record.get("cmake_args")
            info["built_by_project"] = True
        except (OSError, ValueError):
            pass
    return info


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """This host's CPU model name and the SIMD/AMX flags that matter to ggml (Linux only)."""
    name = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            name = value.strip()
        elif key == "flags" and not flags:
            flags = sorted(
                f for f in value.split()
                if f.startswith(("avx", "amx")) or f in ("fma", "f16c", "bmi2", "sse4_2")
            )
    return name, flags


def fingerprint(settings: Settings) -> str:
    """A key (16 hex digits) for one engine build on one host: the llama.cpp shared libraries'
    bytes, the model files (name, size, mtime), the CPU flags, and the engine settings."""
    h = hashlib.sha256()
    pkg = _llama_cpp_dir()
    if pkg is not None:
        for lib in sorted((pkg / "lib").glob("*.so*")) + sorted((pkg / "lib").glob("*.dylib")):
            h.update(lib.name.encode())
            h.update(lib.read_bytes())
    for path in (settings.chat_model_path, settings.embedding_model_path):
        try:
            st = path.stat()
            h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{path.name}:absent".encode())
    h.update(" ".join(cpu_model_and_flags()[1]).encode())
    h.update(f"{settings.extra_buffers}:{settings.threads}".encode())
    return h.hexdigest()[:16]


# --- how models are opened ----------------------------------------------------------------------


def _cached(settings: Settings) -> dict[str, Any] | None:
    try:
        data = json.loads((settings.data_dir / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def resolve_extra_buffers(settings: Settings) -> bool:
    """Whether llama.cpp may use its extra buffer types on this host.

    "on"/"off" are taken as set. "auto" is on, unless a cached self-test of this very engine build
    found them crashing and the engine working without them.
    """
    if settings.extra_buffers != "auto":
        return settings.extra_buffers == "on"
    cached = _cached(settings)
    return not (cached and cached.get("ok") and cached.get("extra_buffers") is False)


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(extra_buffers: bool) -> Iterator[None]:
    """Open models with llama.cpp's ``use_extra_bufts`` set as asked.

    llama-cpp-python 0.3.36 has no constructor argument for this field of ``llama_model_params``:
    its ``Llama.__init__`` starts from ``llama_model_default_params()``. So, while a model is
    being opened, that function is wrapped to return the defaults with the field changed. A lock
    keeps two threads from opening models with different settings at once.
    """
    if extra_buffers:
        yield
        return
    import llama_cpp.llama_cpp as binding

    with _PARAMS_LOCK:
        original = binding.llama_model_default_params

        def params() -> Any:
            value = original()
            value.use_extra_bufts = False
            return value

        binding.llama_model_default_params = params
        try:
            yield
        finally:
            binding.llama_model_default_params = original


def open_llama(settings: Settings | None, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)``, opened the way this host's engine must run.

    ``settings`` decides the extra buffer types (:func:`resolve_extra_buffers`; None: llama.cpp's
    default, on). Raises what ``Llama`` raises (ValueError, RuntimeError) for a bad file.
    """
    from llama_cpp import Llama

    extra = True if settings is None else resolve_extra_buffers(settings)
    with _model_params(extra):
        return Llama(**kwargs)


# --- the self-test --------------------------------------------------------------------------------


def _finite_and_varied(values: Any) -> bool:
    """True when ``values`` (a 1-D sequence of floats) is non-empty, finite and not constant."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    return bool(arr.size and np.isfinite(arr).all() and float(arr.max() - arr.min()) > 1e-6)


def _last_logits(llm: Any) -> Any:
    """The logits llama.cpp computed for the last evaluated token (one row of n_vocab floats)."""
    import llama_cpp
    import numpy as np

    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


def _child_main(argv: list[str]) -> int:
    """Run in the child: load, decode, generate, embed; print one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m assistant.engine")
    parser.add_argument("--chat", required=True)
    parser.add_argument("--embedder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--extra-buffers", choices=["on", "off"], default="on")
    opts = parser.parse_args(argv)

    extra = opts.extra_buffers == "on"
    report: dict[str, Any] = {"extra_buffers": opts.extra_buffers == "on"}
    t0 = time.monotonic()
    with _model_params(extra):
        from llama_cpp import Llama

        llm = Llama(model_path=opts.chat, n_ctx=512, n_batch=512, n_threads=opts.threads,
                    n_threads_batch=opts.threads, seed=1, verbose=True)
    report["chat_load_s"] = round(time.monotonic() - t0, 2)
    tokens = llm.tokenize(PROBE_PROMPT.encode("utf-8"), add_bos=True)
    t0 = time.monotonic()
    llm.eval(tokens)  # one multi-token decode: the path that crashes on AMX hosts
    prompt_s = time.monotonic() - t0
    row = _last_logits(llm)
    if not _finite_and_varied(row):
        print(json.dumps({"ok": False, "outcome": "garbage",
                          "detail": "logits non finis ou constants après le prompt"}))
        return 4
    generated: list[int] = []
    t0 = time.monotonic()
    for _ in range(GENERATED_TOKENS):
        row = _last_logits(llm)
        if not _finite_and_varied(row):
            print(json.dumps({"ok": False, "outcome": "garbage",
                              "detail": "logits non finis pendant la génération"}))
            return 4
        token = int(row.argmax())
        generated.append(token)
        llm.eval([token])
    gen_s = time.monotonic() - t0
    report.update(
        prompt_tokens=len(tokens),
        prompt_tokens_per_s=round(len(tokens) / prompt_s, 1) if prompt_s > 0 else None,
        generated_tokens_per_s=round(len(generated) / gen_s, 1) if gen_s > 0 else None,
        sample=llm.detokenize(generated).decode("utf-8", "replace"),
    )
    del llm
    if opts.embedder:
        t0 = time.monotonic()
        with _model_params(extra):
            emb = Llama(model_path=opts.embedder, embedding=True, n_ctx=512, n_batch=512,
                        n_ubatch=512, n_threads=opts.threads, n_threads_batch=opts.threads,
                        verbose=True)
        vectors = emb.embed(list(PROBE_SENTENCES), normalize=False)
        report["embed_s"] = round(time.monotonic() - t0, 2)
        norms = [math.sqrt(sum(float(x) * float(x) for x in v)) for v in vectors]
        if not all(_finite_and_varied(v) for v in vectors) or min(norms) <= 0:
            print(json.dumps({"ok": False, "outcome": "garbage",
                              "detail": "embeddings non finis ou nuls"}))
            return 4
        dot = sum(float(a) * float(b) for a, b in zip(vectors[0], vectors[1], strict=True))
        cosine = dot / (norms[0] * norms[1])
        if cosine > 0.99999:
            print(json.dumps({"ok": False, "outcome": "garbage",
                              "detail": "deux phrases différentes donnent le même embedding"}))
            return 4
        report["embedding_dim"] = len(vectors[0])
    print(json.dumps({"ok": True, "outcome": "ok", "report": report}))
    return 0


def _buffers(stderr: str) -> list[str]:
    """The weight buffers llama.cpp reported while loading, e.g. ["CPU_REPACK 1002.0 MiB"]."""
    seen: list[str] = []
    for line in stderr.splitlines():
        if "model buffer size" not in line:
            continue
        m = re.search(r"(\S+) model buffer size =\s*([\d.]+) MiB", line)
        if m and f"{m.group(1)} {m.group(2)} MiB" not in seen:
            seen.append(f"{m.group(1)} {m.group(2)} MiB")
    return seen


def describe_exit(code: int | None) -> str:
    """A short French description of a child process's exit code (negative: the signal that
    killed it, e.g. "signal SIGSEGV"; None: it has not been reaped)."""
    if code is None:
        return "arrêt inattendu"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code de sortie {code}"


def _run_child(cmd: list[str], timeout: float, extra_buffers: bool) -> Attempt:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout,
            env=dict(os.environ, PYTHONFAULTHANDLER="1"), check=False,
        )
    except subprocess.TimeoutExpired:
        return Attempt(extra_buffers, False, "hang",
                       f"aucune réponse en {timeout:.0f} s", time.monotonic() - started)
    seconds = time.monotonic() - started
    last = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), "")
    try:
        payload = json.loads(last) if last else {}
    except ValueError:
        payload = {}
    if proc.returncode < 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])[-300:]
        why = describe_exit(proc.returncode)
        return Attempt(extra_buffers, False, "crash", f"{why} ({tail})" if tail else why,
                       seconds)
    if payload.get("ok"):
        report = dict(payload.get("report") or {})
        report["buffers"] = _buffers(proc.stderr)
        return Attempt(extra_buffers, True, "ok", "", seconds, report)
    if payload:
        return Attempt(extra_buffers, False, str(payload.get("outcome", "error")),
                       str(payload.get("detail", "")), seconds)
    tail = " ".join(proc.stderr.strip().splitlines()[-3:])[-400:]
    return Attempt(extra_buffers, False, "error",
                   f"{describe_exit(proc.returncode)} : {tail}", seconds)


def child_command(settings: Settings, extra_buffers: bool) -> list[str]:
    """The command line of one self-test child for these settings."""
    cmd = [sys.executable, "-m", "assistant.engine", "--chat", str(settings.chat_model_path),
           "--threads", str(settings.threads),
           "--extra-buffers", "on" if extra_buffers else "off"]
    if settings.embedding_backend == "local" and settings.embedding_model_path.is_file():
        cmd += ["--embedder", str(settings.embedding_model_path)]
    return cmd


_FIX = (
    "Reconstruisez le moteur sans les instructions propres à ce processeur : "
    "« ASSISTANT_ENGINE_PORTABLE=1 python scripts/install_engine.py --force », puis relancez "
    "« assistant doctor ». Si le problème persiste, réglez extra_buffers = \"off\" "
    "(ASSISTANT_EXTRA_BUFFERS=off) et signalez le processeur (lscpu) à l'équipe."
)


def run_self_test(
    settings: Settings,
    *,
    command: Any = None,
    timeout: float = SELF_TEST_TIMEOUT_S,
    save: bool = True,
) -> SelfTestResult:
    """Prove the engine on this host in child processes; never raises for an engine fault.

    ``command(extra_buffers: bool) -> list[str]`` builds a child's command line (default
    :func:`child_command`; tests pass a child that crashes on purpose). With ``extra_buffers =
    "auto"`` a failure with the buffers on is retried with them off. The verdict is saved in
    ``data_dir/engine-selftest.json`` when ``save``.

    Raises :class:`~assistant.errors.ModelNotFoundError` when the chat model file is missing
    (that is an installation fault, with its own French message).
    """
    from assistant.errors import ModelNotFoundError

    if command is None:
        if not settings.chat_model_path.is_file():
            raise ModelNotFoundError(
                f"Modèle de conversation introuvable : {settings.chat_model_path}. Installez les "
                "modèles avec « assistant models install »."
            )

        def command(extra: bool) -> list[str]:
            return child_command(settings, extra)

    modes = {"auto": [True, False], "on": [True], "off": [False]}[settings.extra_buffers]
    attempts: list[Attempt] = []
    for extra in modes:
        attempt = _run_child(command(extra), timeout, extra)
        attempts.append(attempt)
        if attempt.ok:
            break
    passed = next((a for a in attempts if a.ok), None)
    fp = fingerprint(settings)
    if passed is None:
        first = attempts[0]
        what = {"crash": "a planté", "hang": "ne répond plus", "garbage": "produit des valeurs "
                "aberrantes", "error": "a échoué"}.get(first.outcome, "a échoué")
        message = (f"Le moteur llama.cpp {what} lors de l'autotest sur ce serveur "
                   f"({first.detail}). {_FIX}")
        result = SelfTestResult(False, None, message, fp, attempts, time.time())
    elif passed is attempts[0]:
        result = SelfTestResult(True, passed.extra_buffers,
                                "Autotest du moteur réussi.", fp, attempts, time.time())
    else:
        first = attempts[0]
        result = SelfTestResult(
            True, False,
            "Autotest réussi sans les tampons accélérés de llama.cpp (répartition des poids, AMX) :"
            f" avec eux, le moteur {first.outcome} ({first.detail}). Ils restent désactivés sur "
            "ce serveur (réglage extra_buffers = \"auto\").",
            fp, attempts, time.time(),
        )
    if save:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            path = settings.data_dir / CACHE_NAME
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result.as_json(), ensure_ascii=False, indent=2),
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only data_dir only costs a new self-test next time
    return result


def ensure_engine(settings: Settings) -> SelfTestResult | None:
    """Run the self-test once per engine build before the first request; raise when it fails.

    Returns the (cached or fresh) verdict, or None when there is nothing local to test (server
    backend, or ``engine_self_test = false``). Raises :class:`EngineError` with the French
    message and fix when no configuration of the engine works on this host.
    """
    if settings.llm_backend != "local" or not settings.engine_self_test:
        return None
    if not settings.chat_model_path.is_file():
        return None  # the model loader gives its own message
    fp = fingerprint(settings)
    cached = _cached(settings)
    if cached and cached.get("fingerprint") == fp and cached.get("ok"):
        return SelfTestResult(True, cached.get("extra_buffers"), cached.get("message", ""), fp,
                              [Attempt(**a) for a in cached.get("attempts", [])],
                              cached.get("checked_at", 0.0))
    result = run_self_test(settings)
    if not result.ok:
        raise EngineError(result.message)
    return result


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
