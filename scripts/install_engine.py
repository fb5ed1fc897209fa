#!/usr/bin/env python3
"""Build and install llama-cpp-python with CPU flags chosen by the project, not by pip.

Why this script exists (see ../shared/MODELS.md and issue 9): `pip install llama-cpp-python`
compiles llama.cpp with `-march=native` (ggml's GGML_NATIVE=ON). On Intel Xeons that expose AMX
(Sapphire Rapids and later), that turns on ggml's AMX kernels, and under several hypervisors the
first multi-token decode then dies (SIGSEGV on `ldtilecfg`). Pip's wheel cache also keeps whatever
was built first, so a later reinstall with other flags silently reuses the faulty wheel.

What it does instead:
- reads the CPU's features (/proc/cpuinfo on Linux) and turns each one ggml can use into an
  explicit CMake option (AVX, AVX2, FMA, F16C, BMI2, AVX-512 F/VBMI/VNNI/BF16, AVX-VNNI), with
  `GGML_NATIVE=OFF` and **AMX off** (`ASSISTANT_ENGINE_AMX=1` turns it on, for a host where the
  engine self-test, `assistant doctor`, proves it works);
- builds the wheel once per (version, options) into a cache of its own, keyed by those options
  (`~/.cache/assistant-redaction/engine/`, or `ASSISTANT_ENGINE_CACHE`), so that a changed CPU or a
  changed option means a new build, never a stale one;
- installs it into the current Python environment, unless the installed build already has the same
  key (recorded in `assistant_engine_build.json` next to the `llama_cpp` package).

Standard library only: it runs before the project itself is installed.

Usage: `python scripts/install_engine.py [--print-args] [--force]`.
Environment: `ASSISTANT_ENGINE_CMAKE_ARGS` replaces the computed options entirely (for a
specialist); `ASSISTANT_ENGINE_AMX=1` allows AMX; `ASSISTANT_ENGINE_PORTABLE=1` builds for any
x86-64-v3 (AVX2) server instead of this CPU's exact features.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The llama-cpp-python release the project is tested with (pyproject.toml pins the same).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

#: /proc/cpuinfo flag -> ggml CMake option (ggml/CMakeLists.txt, "x86" instruction-set options).
#: Order matters only for readability of the printed arguments.
X86_FLAG_OPTIONS: tuple[tuple[str, str], ...] = (
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("bmi2", "GGML_BMI2"),
    ("avx512f", "GGML_AVX512"),
    ("avx512vbmi", "GGML_AVX512_VBMI"),  # Linux spells it without the underscore
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)
#: The AMX options, off unless explicitly allowed.
AMX_OPTIONS: tuple[tuple[str, str], ...] = (
    ("amx_tile", "GGML_AMX_TILE"),
    ("amx_int8", "GGML_AMX_INT8"),
    ("amx_bf16", "GGML_AMX_BF16"),
)
#: x86-64-v3, what every x86-64 server sold since about 2015 runs (Haswell, Zen 1 and later).
PORTABLE_FLAGS = frozenset({"avx", "avx2", "fma", "f16c", "bmi2"})

BUILD_INFO_NAME = "assistant_engine_build.json"


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU feature flags of this machine, lower case, as /proc/cpuinfo spells them.

    `cpuinfo` is the text of /proc/cpuinfo (read from the file when None). Returns an empty set on
    a system without /proc/cpuinfo (the build then falls back to the portable set on x86-64).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cmake_args(
    flags: frozenset[str], *, machine: str = "x86_64", allow_amx: bool = False,
    portable: bool = False,
) -> list[str]:
    """The CMake options for llama.cpp on a CPU with these `flags`.

    Returns a list of `-DNAME=ON|OFF` strings: `GGML_NATIVE=OFF` always; on x86-64 one option per
    instruction set in `X86_FLAG_OPTIONS` (ON when the CPU has it), and the AMX options ON only
    when `allow_amx` and the CPU has them. `portable` ignores the CPU and targets x86-64-v3.
    On other machines (aarch64) only `GGML_NATIVE=OFF` plus ggml's own defaults.
    """
    args = ["-DGGML_NATIVE=OFF"]
    if machine.lower() not in ("x86_64", "amd64"):
        return args
    if portable or not flags:
        flags = PORTABLE_FLAGS
    for flag, option in X86_FLAG_OPTIONS:
        args.append(f"-D{option}={'ON' if flag in flags else 'OFF'}")
    for flag, option in AMX_OPTIONS:
        args.append(f"-D{option}={'ON' if allow_amx and flag in flags else 'OFF'}")
    return args


def build_key(version: str, args: list[str]) -> str:
    """A short stable key (16 hex digits) naming one build: version + options + Python tag."""
    text = json.dumps([version, args, sys.implementation.cache_tag, platform.machine()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root() -> Path:
    """Where built wheels are kept, one folder per build key."""
    env = os.environ.get("ASSISTANT_ENGINE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assistant-redaction" / "engine"


def _package_dir() -> Path | None:
    """The folder of the installed `llama_cpp` package, or None when it is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed_build_info() -> dict | None:
    """The build record next to the installed `llama_cpp` package, or None when absent."""
    pkg = _package_dir()
    if pkg is None:
        return None
    try:
        return json.loads((pkg / BUILD_INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_build_info(record: dict) -> None:
    pkg = _package_dir()
    if pkg is None:
        raise SystemExit("llama_cpp introuvable après l'installation")
    (pkg / BUILD_INFO_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Build (if needed) and install the engine; print what was chosen. Returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-args", action="store_true", help="print the options and stop")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    opts = parser.parse_args(argv)

    version = os.environ.get("ASSISTANT_ENGINE_VERSION", LLAMA_CPP_PYTHON_VERSION)
    custom = os.environ.get("ASSISTANT_ENGINE_CMAKE_ARGS")
    if custom:
        args = custom.split()
    else:
        args = cmake_args(
            cpu_flags(),
            machine=platform.machine(),
            allow_amx=os.environ.get("ASSISTANT_ENGINE_AMX") == "1",
            portable=os.environ.get("ASSISTANT_ENGINE_PORTABLE") == "1",
        )
    key = build_key(version, args)
    if opts.print_args:
        print(" ".join(args))
        return 0

    current = installed_build_info()
    if current and current.get("key") == key and not opts.force:
        print(f"    moteur llama.cpp déjà installé (construction {key})")
        return 0

    wheel_dir = cache_root() / f"llama_cpp_python-{version}-{key}"
    wheels = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if opts.force or not wheels:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        for old in wheels:
            old.unlink()
        print(f"    compilation de llama.cpp ({version}) : {' '.join(args)}")
        print("    (environ 8 minutes sur 2 cœurs, une seule fois par machine)")
        env = dict(os.environ, CMAKE_ARGS=" ".join(args), FORCE_CMAKE="1")
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                "--no-binary", "llama-cpp-python", "--no-cache-dir",
                "-w", tmp, f"llama-cpp-python=={version}",
            ]
            code = subprocess.call(cmd, env=env)
            if code != 0:
                print(
                    "!! La compilation de llama-cpp-python a échoué : vérifiez que gcc, g++ et "
                    "cmake sont installés (apt-get install build-essential cmake), puis relancez.",
                    file=sys.stderr,
                )
                return code
            for built in Path(tmp).glob("*.whl"):
                os.replace(built, wheel_dir / built.name)
        print(f"    compilé en {time.monotonic() - started:.0f} s")
        wheels = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if not wheels:
        print(f"!! Aucune roue construite dans {wheel_dir}", file=sys.stderr)
        return 1
    code = subprocess.call([
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall",
        str(wheels[-1]),
    ])
    if code != 0:
        return code
    # Its runtime dependencies (numpy, typing-extensions, diskcache, jinja2).
    code = subprocess.call([
        sys.executable, "-m", "pip", "install", "--quiet", str(wheels[-1]),
    ])
    if code != 0:
        return code
    _write_build_info({
        "key": key, "version": version, "cmake_args": args, "machine": platform.machine(),
        "built_on_flags": sorted(cpu_flags() & {f for f, _ in X86_FLAG_OPTIONS + AMX_OPTIONS}),
    })
    print(f"    moteur llama.cpp installé (construction {key})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
