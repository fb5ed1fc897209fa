"""Chat models: the Gate queue (threads), and the real SmolLM2-135M answering through llama.cpp
(streaming, measured statistics, prefix reuse, prompt cache, missing model message)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.config import TEST_CHAT_MODEL, Settings
from assistant.errors import BusyError, ModelNotFoundError
from assistant.llm import Gate, GenerationStats, LocalChatModel, build_chat_model
from tests.fakes import FakeChatModel


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# --- the Gate ---


def test_gate_serves_waiters_in_arrival_order_and_reports_positions() -> None:
    gate = Gate(max_waiting=10)
    gate.acquire()  # the model is busy
    order: list[int] = []
    positions: dict[int, list[int]] = {i: [] for i in range(3)}

    def waiter(i: int) -> None:
        gate.acquire(on_wait=positions[i].append)
        order.append(i)
        gate.release()

    threads = []
    for i in range(3):
        t = threading.Thread(target=waiter, args=(i,))
        t.start()
        threads.append(t)
        wait_until(lambda n=i: gate.waiting() == n + 1)
    assert positions[0][0] == 1 and positions[2][0] == 3
    gate.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2]
    assert positions[2] == sorted(positions[2], reverse=True)  # a position only goes down
    assert gate.waiting() == 0 and not gate.busy


def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    gate = Gate(max_waiting=10)
    gate.acquire()
    give_up = threading.Event()
    outcome: list[str] = []

    def impatient(position: int) -> None:
        if give_up.is_set():
            raise TimeoutError("parti")

    def first() -> None:
        try:
            gate.acquire(on_wait=impatient)
            outcome.append("served")
        except TimeoutError:
            outcome.append("left")

    def second() -> None:
        gate.acquire()
        outcome.append("second served")
        gate.release()

    t1 = threading.Thread(target=first)
    t1.start()
    wait_until(lambda: gate.waiting() == 1)
    t2 = threading.Thread(target=second)
    t2.start()
    wait_until(lambda: gate.waiting() == 2)
    give_up.set()
    t1.join(timeout=5)
    assert outcome == ["left"] and gate.waiting() == 1
    gate.release()
    t2.join(timeout=5)
    assert outcome == ["left", "second served"] and not gate.busy


def test_a_full_queue_is_refused_in_french() -> None:
    gate = Gate(max_waiting=1)
    gate.acquire()
    t = threading.Thread(target=gate.acquire)
    t.start()
    wait_until(lambda: gate.waiting() == 1)
    with pytest.raises(BusyError, match="Réessayez"):
        gate.acquire()
    gate.release()
    t.join(timeout=5)
    gate.release()


def test_closing_a_stream_releases_the_model_and_keeps_the_callers_stats() -> None:
    model = FakeChatModel("un deux trois quatre")
    stats = GenerationStats()
    stream = model.stream([{"role": "user", "content": "x"}], stats=stats)
    assert next(stream) == "un"
    assert model.gate.busy
    stream.close()
    assert not model.gate.busy
    assert stats.completion_tokens == 1 and stats.first_token_s is not None
    assert model.last_stats is stats


def test_events_report_the_queue_then_the_tokens_in_the_callers_thread() -> None:
    """ChatModel.events: queue positions while another request holds the model, then the
    tokens, all in the consuming thread (no model thread); closing it while it waits leaves the
    queue, closing it while it generates frees the model."""
    model = FakeChatModel("un deux trois")
    model.gate.acquire()  # another request holds the model
    events = model.events([{"role": "user", "content": "x"}])
    assert next(events) == ("queue", 1)
    assert model.gate.waiting() == 1
    events.close()  # the agent stopped while waiting
    assert model.gate.waiting() == 0
    model.gate.release()

    caller = threading.get_ident()
    seen_in: set[int] = set()

    class Recording(FakeChatModel):
        def _stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen_in.add(threading.get_ident())
            yield from super()._stream(*args, **kwargs)

    model = Recording("un deux trois")
    events = model.events([{"role": "user", "content": "x"}])
    assert next(events) == ("token", "un")
    assert model.gate.busy and seen_in == {caller}
    events.close()
    assert not model.gate.busy


# --- the real model (SmolLM2-135M through llama.cpp) ---


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> LocalChatModel:
    from tests.conftest import MODELS_DIR, require_model

    require_model(TEST_CHAT_MODEL)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_dir=MODELS_DIR,
        chat_model=TEST_CHAT_MODEL,
        threads=2,
        n_ctx=2048,
    )
    return LocalChatModel(settings)


SYSTEM = "Tu es l'assistant de rédaction d'une mairie. Réponds en français, brièvement. " * 6
QUESTION = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Que fait un maire ?"},
]


@pytest.mark.slow
def test_real_model_streams_and_measures(small_model: LocalChatModel) -> None:
    stats = GenerationStats()
    pieces = list(small_model.stream(QUESTION, max_tokens=24, temperature=0.0, stats=stats))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert stats.completion_tokens == len(pieces) <= 24
    prompt = small_model.count_tokens(SYSTEM)
    assert prompt < stats.prompt_tokens < prompt + 40  # the chat template adds a few tokens
    assert stats.first_token_s is not None and stats.first_token_s < stats.total_s
    assert stats.tokens_per_s > 0
    assert not small_model.gate.busy


@pytest.mark.slow
def test_real_model_reuses_the_previous_prompt_as_prefix(small_model: LocalChatModel) -> None:
    first = GenerationStats()
    answer = small_model.complete(QUESTION, max_tokens=24, temperature=0.0, stats=first)
    follow_up = [*QUESTION, {"role": "assistant", "content": answer}]
    follow_up.append({"role": "user", "content": "plus court"})
    second = GenerationStats()
    small_model.complete(follow_up, max_tokens=16, temperature=0.0, stats=second)
    assert second.prompt_tokens > first.prompt_tokens
    assert second.cached_tokens / second.prompt_tokens >= 0.8
    # A different fixed part starts from scratch: the figure is measured, not assumed.
    other = [{"role": "system", "content": "Autre consigne."}, QUESTION[1]]
    third = GenerationStats()
    small_model.complete(other, max_tokens=8, temperature=0.0, stats=third)
    assert third.cached_tokens < 10


@pytest.mark.slow
def test_prompt_cache_keeps_each_types_prefix(small_model: LocalChatModel) -> None:
    from assistant.drafting import enable_prompt_cache

    assert enable_prompt_cache(small_model, capacity_bytes=256 << 20)
    try:
        letter = [{"role": "system", "content": "Tu rédiges un COURRIER. " * 30}]
        act = [{"role": "system", "content": "Tu rédiges une DÉLIBÉRATION. " * 30}]
        small_model.complete([*letter, {"role": "user", "content": "Objet : salle"}], max_tokens=4)
        small_model.complete([*act, {"role": "user", "content": "Objet : tarifs"}], max_tokens=4)
        back = GenerationStats()
        small_model.complete(
            [*letter, {"role": "user", "content": "Objet : voirie"}], max_tokens=4, stats=back
        )
        assert back.cached_tokens >= small_model.count_tokens(letter[0]["content"])
    finally:
        small_model.prompt_states = None


@pytest.mark.slow
def test_prompt_states_keep_one_state_per_fixed_part(small_model: LocalChatModel) -> None:
    """A state is saved once per system message, not after every completion (llama-cpp-python's
    RAM cache kept a 311 MB copy of logits per draft with the default model), and its logits
    are cut to one row; a capacity below two states keeps the most recent one only."""
    from assistant.drafting import enable_prompt_cache

    assert enable_prompt_cache(small_model)
    states = small_model.prompt_states
    assert states is not None
    try:
        letter = [{"role": "system", "content": "Tu rédiges un COURRIER. " * 30}]
        act = [{"role": "system", "content": "Tu rédiges une DÉLIBÉRATION. " * 30}]
        for subject in ("salle", "voirie", "cantine"):
            small_model.complete([*letter, {"role": "user", "content": subject}], max_tokens=3)
        assert len(states) == 1
        small_model.complete([*act, {"role": "user", "content": "tarifs"}], max_tokens=3)
        assert len(states) == 2
        kept = list(states._states.values())
        assert all(st.scores.shape[0] == 1 for st in kept)
        assert states.size_bytes == sum(st.llama_state_size + st.scores.nbytes for st in kept)
        # Back to the letter after the act: its fixed part comes from the saved state.
        back = GenerationStats()
        small_model.complete(
            [*letter, {"role": "user", "content": "école"}], max_tokens=3, stats=back
        )
        assert back.cached_tokens >= small_model.count_tokens(letter[0]["content"])
        assert len(states) == 2

        assert enable_prompt_cache(small_model, capacity_bytes=1)
        small_states = small_model.prompt_states
        assert small_states is not None and small_states is not states
        small_model.complete([*letter, {"role": "user", "content": "salle"}], max_tokens=3)
        small_model.complete([*act, {"role": "user", "content": "tarifs"}], max_tokens=3)
        assert len(small_states) == 1
        # No system message, no fixed part: nothing saved.
        small_model.complete([{"role": "user", "content": "Bonjour"}], max_tokens=3)
        assert len(small_states) == 1
    finally:
        small_model.prompt_states = None


@pytest.mark.slow
def test_concurrent_requests_are_served_one_at_a_time(small_model: LocalChatModel) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(small_model.complete(QUESTION, max_tokens=12, temperature=0.0))
        except BaseException as err:  # collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == [] and len(results) == 3 and all(r.strip() for r in results)


def test_missing_model_file_says_to_install(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "vide", threads=1)
    with pytest.raises(ModelNotFoundError) as info:
        build_chat_model(settings)
    assert "assistant models install" in str(info.value)
    assert str(tmp_path / "vide") in str(info.value)
