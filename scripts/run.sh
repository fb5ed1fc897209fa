#!/usr/bin/env bash
# One command to set up and run the product on a fresh clone:
#   creates .venv, installs the package, the default models (Qwen2.5-Coder-1.5B + embedder),
#   loads the demo corpus (corpus/exemple) into the collection "exemple", starts the web UI
#   on http://127.0.0.1:7860 .
# Set ASSISTANT_* variables or assistant.toml to change anything (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
    echo "==> Création de l'environnement virtuel (.venv)"
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

echo "==> Installation (llama-cpp-python se compile la première fois : ~8 min)"
python -m pip install --quiet --upgrade pip
# llama.cpp is compiled with options the project chooses from this CPU (no -march=native, AMX off:
# it crashes on virtualised Xeons), once per machine, cached by build key: see
# scripts/install_engine.py. It must come before the package, whose dependency it satisfies.
python scripts/install_engine.py
python -m pip install --quiet -e .

echo "==> Modèles embarqués (jeu « default »)"
assistant models install --set default

echo "==> Corpus de démonstration"
assistant ingest corpus/exemple --collection exemple

if [ "${1:-}" = "--question" ]; then
    shift
    assistant ask --type question --collection exemple "${*:-Quels sont les tarifs de la salle des fêtes pour les habitants de la commune ?}"
    exit 0
fi

echo "==> Interface : http://127.0.0.1:${ASSISTANT_PORT:-7860} (Ctrl-C pour arrêter)"
exec assistant serve
