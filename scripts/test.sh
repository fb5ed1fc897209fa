#!/usr/bin/env bash
# One command for the whole test suite, from a fresh clone:
#   creates .venv, installs the package with its dev extras, the headless browser (Debian's
#   chromium, when run as root), the test models (SmolLM2-135M, the MiniLM and multilingual-e5
#   GGUF embedders), then pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "==> Création de l'environnement virtuel (.venv)"
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

echo "==> Installation des dépendances (llama-cpp-python se compile la première fois : ~8 min)"
python -m pip install --quiet --upgrade pip
# llama.cpp is compiled with options the project chooses from this CPU (no -march=native, AMX off:
# it crashes on virtualised Xeons), once per machine, cached by build key: see
# scripts/install_engine.py. It must come before the package, whose dependency it satisfies.
python scripts/install_engine.py
python -m pip install --quiet -e ".[dev]"

# Debian packages for the browser tests (chromium) and the air-gap proof (strace traces native
# code's connects; unshare/ip come with util-linux/iproute2).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> Installation de :$missing"
        apt-get update -qq >/dev/null
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "!! Absents et pas de droits root :$missing (les tests qui en dépendent seront ignorés)."
    fi
fi

echo "==> Modèles de test"
assistant models install --set test

echo "==> Tests"
set +e
python -m pytest "$@"
code=$?
set -e
# pytest's 5 means "no test collected": that is a failure for us.
exit $code
