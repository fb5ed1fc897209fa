"""Shared fixtures: isolated settings, model availability, the shared corpus."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.config import TEST_EMBEDDING_MODEL, Settings

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "models"
# The shared corpus sits beside the repository (read-only); CI lays a copy of shared/ there too.
SHARED_CORPUS_CANDIDATES = (REPO.parent / "shared" / "corpus", Path("/work/shared/corpus"))


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with a fresh data_dir, the repository's models_dir, no config file or env."""
    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./assistant.toml
    # Tests keep the small English embedder (fast); e5 has tests of its own (test_e5.py).
    return Settings(
        data_dir=tmp_path / "data",
        models_dir=MODELS_DIR,
        embedding_model=TEST_EMBEDDING_MODEL,
        threads=2,
    )


def require_model(name: str) -> Path:
    """Path of a model file in models/, or skip the test with the command that installs it."""
    path = MODELS_DIR / name
    if not path.is_file():
        pytest.skip(
            f"modèle {name} absent de {MODELS_DIR} : lancez « assistant models install --set test »"
        )
    return path


@pytest.fixture
def require_model_file() -> Callable[[str], Path]:
    """Fixture form of :func:`require_model`."""
    return require_model


def shared_corpus() -> Path:
    """The shared corpus of real French documents, or skip."""
    for candidate in SHARED_CORPUS_CANDIDATES:
        if candidate.is_dir():
            return candidate
    pytest.skip("corpus partagé introuvable (shared/corpus à côté du dépôt)")
    raise AssertionError  # unreachable: skip raises


@pytest.fixture
def corpus_dir() -> Path:
    return shared_corpus()
