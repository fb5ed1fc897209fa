"""Typed settings.

Precedence, lowest first: defaults < ``assistant.toml`` (path in ``ASSISTANT_CONFIG``, else the
current directory) < environment variables ``ASSISTANT_*`` < command-line flags (passed to
:func:`load_settings` as keyword arguments).

A wrong value is refused at start with a French message naming the setting, where it came from
and how to fix it (:class:`~assistant.errors.ConfigError`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.errors import ConfigError

ENV_PREFIX = "ASSISTANT_"
CONFIG_ENV = "ASSISTANT_CONFIG"
CONFIG_FILE = "assistant.toml"

DEFAULT_CHAT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
# French questions need a multilingual embedder (issue 11); the small English one stays for tests.
DEFAULT_EMBEDDING_MODEL = "multilingual-e5-small-q4_0.gguf"
TEST_EMBEDDING_MODEL = "all-minilm-l6-v2-f32.gguf"
TEST_CHAT_MODEL = "smollm2-135m-instruct-q4_1.gguf"


def config_path() -> Path:
    """The TOML file read for settings (it may not exist)."""
    explicit = os.environ.get(CONFIG_ENV)
    return Path(explicit) if explicit else Path.cwd() / CONFIG_FILE


class Settings(BaseSettings):
    """All settings of the assistant. Each field is also ``ASSISTANT_<NAME>`` in the environment
    and ``name = ...`` in ``assistant.toml``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    # --- places -------------------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Index, lexical index and audit log.")
    models_dir: Path = Field(Path("models"), description="Where GGUF model files live.")

    # --- models ---------------------------------------------------------------------------------
    chat_model: str = Field(
        DEFAULT_CHAT_MODEL, description="Chat model: a GGUF file name in models_dir, or a path."
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="Embedding model: a GGUF file in models_dir, or a path.",
    )
    reranker_model: str | None = Field(
        None, description="Optional GGUF reranker (llama.cpp rank pooling); none by default."
    )
    pip_args: str = Field(
        "",
        description="Extra pip options for 'assistant models install', e.g. a town's mirror: "
        "'--index-url https://miroir.local/simple'.",
    )
    threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=512, description="CPU threads."
    )
    n_ctx: int = Field(4096, ge=512, le=262144, description="Context window of the chat model.")
    n_batch: int = Field(512, ge=8, le=8192, description="Prompt batch size for llama.cpp.")
    max_tokens: int = Field(900, ge=16, le=32768, description="Maximum tokens of one answer.")
    temperature: float = Field(0.2, ge=0.0, le=2.0, description="Sampling temperature.")
    seed: int = Field(42, description="Sampling seed (reproducible drafts).")
    extra_buffers: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "llama.cpp's extra buffer types (weight repacking, AMX). 'auto': on unless the engine "
            "self-test saw them crash on this host; 'off' works around a faulty CPU path."
        ),
    )
    engine_self_test: bool = Field(
        True, description="Run the engine self-test (child process) before the first request."
    )
    engine_worker: bool = Field(
        True,
        description="serve: run the chat model in a worker process, restarted after a crash.",
    )
    engine_stall_s: float = Field(
        300.0, gt=0, le=86400,
        description="Seconds without a token after which the worker is declared hung (serve).",
    )

    # --- backends: in-process by default, servers when a town outgrows one machine --------------
    llm_backend: Literal["local", "server"] = Field(
        "local", description="'local': llama.cpp in-process; 'server': OpenAI-compatible server."
    )
    llm_url: str | None = Field(None, description="Base URL of the server, e.g. http://gpu:8000/v1")
    llm_api_key: SecretStr | None = Field(None, description="API key for the LLM server, if any.")
    llm_server_model: str | None = Field(None, description="Model name to ask the server for.")
    embedding_backend: Literal["local", "server"] = Field("local")
    embedding_url: str | None = Field(None, description="OpenAI-compatible /v1 for embeddings.")
    chroma_backend: Literal["local", "server"] = Field(
        "local", description="'local': PersistentClient under data_dir; 'server': Chroma server."
    )
    chroma_host: str | None = Field(None, description="Chroma server host (chroma_backend=server).")
    chroma_port: int = Field(8000, ge=1, le=65535)

    # --- retrieval and drafting -----------------------------------------------------------------
    default_collection: str = Field("exemple", description="Collection used when none is given.")
    top_k: int = Field(6, ge=1, le=100, description="Passages retrieved per request.")
    # 500: ~5 s of prompt evaluation at the default model's ~103 tokens/s on 2 cores, for a
    # first word within 10 s (issue 10); the evidence lines (assistant.evidence) fit in it.
    context_budget: int = Field(
        500,
        ge=0,
        le=200000,
        description="Max uncached prompt tokens for the 'question' type (other types declare "
        "theirs); 0 = no budget for any type (naive context: the first 5 passages whole).",
    )
    abstain_threshold: float = Field(
        0.0, ge=0.0, description="Relevance below which the assistant abstains (0 = calibrated)."
    )
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are skipped.")
    load_timeout_s: float = Field(
        900.0,
        ge=0,
        le=86400,
        description="Longest reading of one file at ingestion, OCR included, in seconds "
        "(0 = no limit, read in the same process).",
    )
    prompts_dir: Path | None = Field(None, description="Templates folder (default: ./prompts).")

    # --- web UI ---------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the UI listens on.")
    port: int = Field(7860, ge=1, le=65535)
    auth_file: Path | None = Field(
        None, description="File of 'user:password' lines; required to listen beyond localhost."
    )
    max_queue: int = Field(20, ge=1, le=1000, description="Requests waiting for the model.")
    auth_header: str | None = Field(
        None,
        description="Header carrying the user name set by the town's reverse proxy "
        "(e.g. 'X-Remote-User'); believed only from trusted_proxies.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of the reverse proxy "
        "(e.g. ['10.0.0.5', '10.1.0.0/24']).",
    )

    # --- limits -----------------------------------------------------------------------------------
    max_request_chars: int = Field(
        4000, ge=100, le=200000, description="Longest request (and each field), in characters."
    )
    max_upload_mb: float = Field(
        10.0, gt=0, le=2048, description="Largest upload accepted by the web server, in MB."
    )
    request_timeout_s: float = Field(
        300.0, gt=0, le=86400, description="Longest generation of one answer, in seconds."
    )

    # --- audit ------------------------------------------------------------------------------------
    audit_retention_days: int = Field(
        365, ge=0, le=36500, description="Days audit records are kept (0 = forever)."
    )
    audit_store_text: bool = Field(
        False, description="Keep the text of each draft in the audit log (else only its hash)."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError as err:
                raise ValueError(f"adresse ou réseau invalide : {item!r}") from err
        return [v.strip() for v in value]

    @field_validator("context_budget")
    @classmethod
    def _budget(cls, value: int) -> int:
        if 0 < value < 100:
            raise ValueError("0 (pas de budget) ou au moins 100 jetons")
        return value

    @field_validator("chat_model", "embedding_model")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("ne peut pas être vide")
        return value.strip()

    @model_validator(mode="after")
    def _check_backends(self) -> Settings:
        if self.llm_backend == "server" and not self.llm_url:
            raise ValueError(
                "llm_backend=server demande llm_url (ASSISTANT_LLM_URL), "
                "par exemple http://serveur-llm:8000/v1"
            )
        if self.embedding_backend == "server" and not self.embedding_url:
            raise ValueError(
                "embedding_backend=server demande embedding_url (ASSISTANT_EMBEDDING_URL)"
            )
        if self.chroma_backend == "server" and not self.chroma_host:
            raise ValueError("chroma_backend=server demande chroma_host (ASSISTANT_CHROMA_HOST)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: CLI flags (init) > environment > assistant.toml > defaults.
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)

    # --- derived paths ----------------------------------------------------------------------------
    def model_path(self, name: str) -> Path:
        """Resolve a model setting: an existing path as is, else a file name in models_dir."""
        candidate = Path(name).expanduser()
        if candidate.is_absolute() or candidate.parent != Path("."):
            return candidate
        return self.models_dir / name

    @property
    def chat_model_path(self) -> Path:
        return self.model_path(self.chat_model)

    @property
    def embedding_model_path(self) -> Path:
        return self.model_path(self.embedding_model)

    @property
    def reranker_model_path(self) -> Path | None:
        return self.model_path(self.reranker_model) if self.reranker_model else None

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical.sqlite3"

    @property
    def accounts_path(self) -> Path:
        return self.data_dir / "accounts.sqlite3"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.sqlite3"

    @property
    def templates_dir(self) -> Path:
        if self.prompts_dir is not None:
            return self.prompts_dir
        local = Path.cwd() / "prompts"
        return local if local.is_dir() else Path(__file__).resolve().parent.parent / "prompts"


def _where(field: str) -> str:
    env = ENV_PREFIX + field.upper()
    flag = "--" + field.replace("_", "-")
    return f"variable {env}, clé « {field} » de {config_path().name} ou option {flag}"


def _explain(err: ValidationError) -> str:
    lines = ["Réglage invalide :"]
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(ensemble)"
        msg = item["msg"].removeprefix("Value error, ")
        if loc == "(ensemble)":
            lines.append(f"  - {msg}")
            continue
        if item["type"] == "extra_forbidden":
            lines.append(
                f"  - « {loc} » n'est pas un réglage connu ; vérifiez l'orthographe "
                f"(liste : assistant doctor --settings)."
            )
            continue
        given = item.get("input")
        lines.append(f"  - {loc} = {given!r} : {msg}. Corrigez la valeur ({_where(loc)}).")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings; ``overrides`` are command-line flags (``None`` values are ignored).

    Raises :class:`ConfigError` with a French message naming the faulty setting and the fix.
    """
    flags = {k: v for k, v in overrides.items() if v is not None}
    path = config_path()
    if os.environ.get(CONFIG_ENV) and not path.is_file():
        raise ConfigError(
            f"Fichier de configuration introuvable : {path} (variable {CONFIG_ENV}). "
            "Corrigez le chemin ou retirez la variable."
        )
    try:
        return Settings(**flags)
    except ValidationError as err:
        raise ConfigError(_explain(err)) from err
    except Exception as err:  # a TOML syntax error surfaces here
        if path.is_file() and "toml" in type(err).__module__.lower():
            raise ConfigError(
                f"{path} n'est pas un fichier TOML valide : {err}. Corrigez la syntaxe."
            ) from err
        raise
