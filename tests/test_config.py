"""Settings precedence (defaults < assistant.toml < ASSISTANT_* < flags); bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import DEFAULT_CHAT_MODEL, load_settings
from assistant.errors import ConfigError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ASSISTANT_* variable from the developer's shell; run in an empty directory."""
    import os

    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults(clean_env: Path) -> None:
    s = load_settings()
    assert s.data_dir == Path("data")
    assert s.models_dir == Path("models")
    assert s.chat_model == DEFAULT_CHAT_MODEL
    assert s.chat_model_path == Path("models") / DEFAULT_CHAT_MODEL
    assert s.threads >= 1


def test_precedence_toml_env_flags(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "assistant.toml").write_text(
        'data_dir = "/srv/toml"\nthreads = 3\nn_ctx = 2048\nchat_model = "toml.gguf"\n',
        encoding="utf-8",
    )
    s = load_settings()
    assert (s.data_dir, s.threads, s.n_ctx, s.chat_model) == (
        Path("/srv/toml"),
        3,
        2048,
        "toml.gguf",
    )

    monkeypatch.setenv("ASSISTANT_THREADS", "5")
    monkeypatch.setenv("ASSISTANT_DATA_DIR", "/srv/env")
    s = load_settings()
    assert (s.data_dir, s.threads, s.n_ctx) == (Path("/srv/env"), 5, 2048)

    s = load_settings(threads=7, data_dir=None)  # None = flag not given
    assert (s.data_dir, s.threads, s.n_ctx) == (Path("/srv/env"), 7, 2048)


def test_config_path_from_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = clean_env / "etc" / "mairie.toml"
    other.parent.mkdir()
    other.write_text("top_k = 9\n", encoding="utf-8")
    (clean_env / "assistant.toml").write_text("top_k = 2\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(other))
    assert load_settings().top_k == 9


def test_missing_config_file_is_refused(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(clean_env / "absent.toml"))
    with pytest.raises(ConfigError, match="ASSISTANT_CONFIG"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("ASSISTANT_THREADS", "beaucoup", "ASSISTANT_THREADS"),
        ("ASSISTANT_THREADS", "0", "ASSISTANT_THREADS"),
        ("ASSISTANT_N_CTX", "10", "ASSISTANT_N_CTX"),
        ("ASSISTANT_TEMPERATURE", "9", "ASSISTANT_TEMPERATURE"),
        ("ASSISTANT_LLM_BACKEND", "cloud", "ASSISTANT_LLM_BACKEND"),
        ("ASSISTANT_CHAT_MODEL", "  ", "ASSISTANT_CHAT_MODEL"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert named in message
    assert "Corrigez" in message


def test_unknown_key_in_toml_is_refused(clean_env: Path) -> None:
    (clean_env / "assistant.toml").write_text("thread = 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="thread"):
        load_settings()


def test_invalid_toml_is_refused(clean_env: Path) -> None:
    (clean_env / "assistant.toml").write_text("threads = = 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="TOML"):
        load_settings()


def test_server_backend_needs_url(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LLM_BACKEND", "server")
    with pytest.raises(ConfigError, match="llm_url"):
        load_settings()
    monkeypatch.setenv("ASSISTANT_LLM_URL", "http://127.0.0.1:8080/v1")
    assert load_settings().llm_url == "http://127.0.0.1:8080/v1"


def test_model_path_accepts_file_name_or_path(clean_env: Path) -> None:
    s = load_settings(models_dir=Path("/m"), chat_model="/opt/llm/mistral-7b.gguf")
    assert s.chat_model_path == Path("/opt/llm/mistral-7b.gguf")
    s = load_settings(models_dir=Path("/m"), chat_model="mistral-7b.gguf")
    assert s.chat_model_path == Path("/m/mistral-7b.gguf")
