"""The chat model in a worker process: the server outlives a crash or a hang of the engine.

Real child processes, real signals. The slow tests run the real llama.cpp (SmolLM2) in the
worker and kill it with SIGSEGV, as a native fault of ggml would.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from assistant.config import Settings
from assistant.errors import LLMError
from assistant.llm import LocalChatModel
from assistant.worker import WorkerChatModel
from tests.fakes import worker_that_hangs_on

SMOL = "smollm2-135m-instruct-q4_1.gguf"


def _ask(model: WorkerChatModel, text: str, max_tokens: int = 8) -> str:
    return model.complete([{"role": "user", "content": text}], max_tokens=max_tokens)


@pytest.fixture
def smol_settings(settings: Settings, require_model_file) -> Settings:
    require_model_file(SMOL)
    return settings.model_copy(update={"chat_model": SMOL, "n_ctx": 1024})


def test_hang_and_crash_end_one_request_not_the_server(smol_settings: Settings) -> None:
    model = WorkerChatModel(smol_settings, target=worker_that_hangs_on, stall_s=2)
    try:
        assert _ask(model, "Bonjour") == "Réponse complète."
        first = model.pid

        started = time.monotonic()
        with pytest.raises(LLMError, match="ne répondait plus"):
            _ask(model, "HANG")
        assert time.monotonic() - started < 30
        assert model.restarts == 1 and model.pid != first

        with pytest.raises(LLMError, match=r"SIGSEGV.*redémarré"):
            _ask(model, "CRASH")
        assert model.restarts == 2
        # The next request is served, and the queue is free again.
        assert _ask(model, "Bonjour") == "Réponse complète."
        assert model.gate.waiting() == 0 and not model.gate.busy
    finally:
        model.close()


def test_a_worker_dead_between_requests_is_restarted_silently(smol_settings: Settings) -> None:
    model = WorkerChatModel(smol_settings, target=worker_that_hangs_on, stall_s=5)
    try:
        assert model.pid is not None
        os.kill(model.pid, signal.SIGKILL)
        time.sleep(0.5)
        assert _ask(model, "Bonjour") == "Réponse complète."
        assert model.restarts == 1
    finally:
        model.close()


@pytest.mark.slow
def test_real_engine_in_a_worker_survives_sigsegv(smol_settings: Settings) -> None:
    local = LocalChatModel(smol_settings)
    model = WorkerChatModel(smol_settings)
    try:
        messages = [{"role": "user", "content": "Écris une phrase sur la mairie."}]
        # Tokenization happens in the server process and agrees with the engine's.
        assert model.prompt_token_ids(messages) == local.prompt_token_ids(messages)
        assert model.count_tokens("Bonjour la mairie") == local.count_tokens("Bonjour la mairie")

        text = model.complete(messages, max_tokens=12)
        assert text.strip()
        assert model.last_stats.completion_tokens > 0 and model.last_stats.prompt_tokens > 0

        # A native fault in the middle of a draft: that request fails in French...
        stream = model.stream(messages, max_tokens=200)
        next(stream)
        assert model.pid is not None
        os.kill(model.pid, signal.SIGSEGV)
        with pytest.raises(LLMError, match="redémarré"):
            for _ in stream:
                pass
        # ...and the next one is answered by a fresh engine.
        assert model.complete(messages, max_tokens=8).strip()
        assert model.restarts == 1

        # Stopping a draft early (the « Arrêter » button) leaves the worker usable.
        stream = model.stream(messages, max_tokens=200)
        next(stream)
        stream.close()
        assert model.complete(messages, max_tokens=8).strip()
        assert model.restarts == 1
    finally:
        model.close()
