"""Chat models: llama.cpp in-process, or an OpenAI-compatible server (llama.cpp, vLLM).

One abstract method per backend (:meth:`ChatModel._stream`); the queue, the statistics and the
non-streaming helper are built on top. The in-process model serialises requests behind a lock
(llama.cpp contexts are not thread-safe: concurrent calls crash peers' products) and exposes how
many requests wait, so the UI can show a queue position instead of a frozen page.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.engine import open_llama
from assistant.errors import BusyError, LLMError, ModelNotFoundError

Message = dict[str, str]

# Chat-template markup of one message ("<|im_start|>user\n" ... "<|im_end|>\n" in ChatML), used
# where the backend cannot render its template (a remote server): a generous estimate.
MESSAGE_MARKUP_TOKENS = 8


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists (what llama.cpp reuses)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PromptStates:
    """Saved llama.cpp states of the prompts' fixed parts: one per distinct system message (a
    document type's instructions), restored when a request starts with it, so that switching
    between types does not evaluate the type's fixed part again.

    Written here rather than using llama-cpp-python's ``LlamaRAMCache`` (0.3.x), which saves
    the whole state after *every* completion, each with a copy of up to ``n_batch`` rows of
    logits (512 × 151,936 floats, 311 MB, for Qwen2.5) that its byte capacity does not count.
    Measured here with the default model: resident memory grew by about 330 MB a draft (2.3 GB
    loaded, 5.2 GB after warming the seven types, 7.0 GB after six drafts) and the save took
    0.9 s after each draft's last token. Here a state is saved once per system message, its
    logits cut to the last row (they are never read back: ``load_state`` marks the context as
    needing evaluation, and the sampler works on the live logits).

    ``capacity_bytes``: the states' llama.cpp bytes plus their logits; the least recently used
    state goes first beyond it."""

    def __init__(self, capacity_bytes: int = 1 << 30) -> None:
        self.capacity_bytes = capacity_bytes
        self._states: dict[tuple[int, ...], Any] = {}  # insertion order = least recent first

    def __len__(self) -> int:
        return len(self._states)

    @property
    def size_bytes(self) -> int:
        """Bytes held: the states' llama.cpp data and their (cut) logits."""
        return sum(int(st.llama_state_size) + int(st.scores.nbytes) for st in self._states.values())

    def restore(self, llama: Any, prompt_ids: list[int]) -> bool:
        """Load the saved state sharing the longest prefix with ``prompt_ids`` when it shares
        more than the context already holds; True if one was loaded."""
        if not self._states:
            return False
        shares = {k: common_prefix(k, prompt_ids) for k in self._states}
        key = max(shares, key=shares.__getitem__)
        if shares[key] <= common_prefix([int(t) for t in llama.input_ids], prompt_ids):
            return False
        state = self._states.pop(key)
        self._states[key] = state  # most recently used
        llama.load_state(state)
        return True

    def remember(self, llama: Any, fixed_tokens: int) -> bool:
        """Save the context's state unless a saved state already covers its first
        ``fixed_tokens`` tokens (the system message); True if saved. Nothing is saved for a
        prompt without a fixed part (``fixed_tokens`` 0)."""
        ids = tuple(int(t) for t in llama.input_ids)
        if fixed_tokens <= 0 or len(ids) < fixed_tokens:
            return False
        if any(common_prefix(k, ids) >= fixed_tokens for k in self._states):
            return False
        state = llama.save_state()
        state.scores = state.scores[-1:].copy()  # see the class docstring
        self._states[ids] = state
        while self.size_bytes > self.capacity_bytes and len(self._states) > 1:
            del self._states[next(iter(self._states))]
        return True


@dataclass
class GenerationStats:
    """Figures of one generation, measured by the backend (not estimated)."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    queue_s: float = 0.0
    first_token_s: float | None = None
    total_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        gen_time = self.total_s - (self.first_token_s or 0.0)
        return self.completion_tokens / gen_time if gen_time > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "queue_s": round(self.queue_s, 3),
            "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 3),
            "total_s": round(self.total_s, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
        }


@dataclass
class Gate:
    """A FIFO gate in front of a single-request backend; tells waiters their position."""

    max_waiting: int = 20
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cond: threading.Condition = field(init=False)
    _tickets: list[int] = field(default_factory=list)
    _next: int = 0
    busy: bool = False

    def __post_init__(self) -> None:
        self._cond = threading.Condition(self._lock)

    def waiting(self) -> int:
        with self._lock:
            return len(self._tickets)

    def enter(self) -> Generator[int, None, None]:
        """Take a place in the queue and wait for our turn, yielding our position (1 = next)
        about every 0.5 s while waiting; the generator ends once the caller holds the gate
        (then :meth:`release` it). Closing the generator while it waits (the user stopped the
        request) leaves the queue. Raises :class:`BusyError` when the queue is full.

        A generator so that a caller can report positions from its own thread: the drafting
        service runs the model in the thread that consumes its tokens (a model thread handing
        tokens over a queue cost ~11 ms a token on 2 cores, measured)."""
        with self._cond:
            if len(self._tickets) >= self.max_waiting:
                raise BusyError(
                    f"Serveur occupé : {len(self._tickets)} demandes attendent déjà le modèle "
                    "(file d'attente pleine). Réessayez dans quelques minutes."
                )
            ticket = self._next
            self._next += 1
            self._tickets.append(ticket)
        taken = False
        try:
            while True:
                with self._cond:
                    if not self.busy and self._tickets[0] == ticket:
                        self._tickets.pop(0)
                        self.busy = True
                        taken = True
                        return
                    position = self._tickets.index(ticket) + (1 if self.busy else 0)
                yield position
                with self._cond:
                    if self.busy or self._tickets[0] != ticket:
                        self._cond.wait(timeout=0.5)
        finally:
            if not taken:
                # A waiter that gives up leaves the queue, else everyone behind it would wait
                # forever.
                with self._cond:
                    if ticket in self._tickets:
                        self._tickets.remove(ticket)
                    self._cond.notify_all()

    def acquire(self, on_wait: Callable[[int], None] | None = None) -> float:
        """Block until it is our turn; ``on_wait(position)`` is called while waiting (an
        exception it raises leaves the queue and propagates). Returns the seconds spent
        waiting. Raises :class:`BusyError` when the queue is full."""
        start = time.monotonic()
        with contextlib.closing(self.enter()) as positions:
            for position in positions:
                if on_wait is not None:
                    on_wait(position)
        return time.monotonic() - start

    def release(self) -> None:
        with self._cond:
            self.busy = False
            self._cond.notify_all()


class ChatModel(ABC):
    """A chat model. Subclasses implement :meth:`_stream`; callers use :meth:`stream`."""

    name: str = "chat"

    def __init__(self, max_waiting: int = 20) -> None:
        self.gate = Gate(max_waiting=max_waiting)
        self.last_stats = GenerationStats()

    @abstractmethod
    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stats: GenerationStats,
        schema: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Yield text pieces; fill ``stats`` (prompt/cached/completion tokens) as measured.
        ``schema``: the JSON schema the text must follow (only passed when there is one)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model (an estimate where the backend cannot tell)."""
        return max(1, len(text) // 3)

    def prompt_token_ids(self, messages: list[Message]) -> list[int] | None:
        """The tokens the backend evaluates for ``messages`` (chat template applied, answer turn
        opened), or None when it cannot tell (the estimates below are used then)."""
        return None

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the whole prompt of ``messages``, chat-template markup included."""
        ids = self.prompt_token_ids(messages)
        if ids is not None:
            return len(ids)
        return sum(self.count_tokens(m["content"]) + MESSAGE_MARKUP_TOKENS for m in messages) + (
            MESSAGE_MARKUP_TOKENS
        )

    def uncached_tokens(self, messages: list[Message], cached: list[Message]) -> int:
        """Tokens of ``messages`` to evaluate when the prompt of ``cached`` is in the model's
        cache: the whole prompt minus its longest common token prefix with ``cached``'s (what
        llama.cpp skips). Without the real tokens, an upper bound: the messages after the common
        leading ones, with their markup."""
        ids = self.prompt_token_ids(messages)
        previous = self.prompt_token_ids(cached) if ids is not None else None
        if ids is not None and previous is not None:
            return len(ids) - common_prefix(ids, previous)
        same = 0
        for new, old in zip(messages, cached, strict=False):
            if new != old:
                break
            same += 1
        rest = messages[same:]
        return sum(self.count_tokens(m["content"]) + MESSAGE_MARKUP_TOKENS for m in rest) + (
            MESSAGE_MARKUP_TOKENS
        )

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        on_wait: Callable[[int], None] | None = None,
        stats: GenerationStats | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Stream the answer, waiting in the queue first. The figures go to ``stats`` when given
        (safe with concurrent requests), and to ``self.last_stats``.

        ``response_format``: a JSON schema (a dict) the answer must follow; the engine enforces
        it while sampling (llama.cpp grammar built from the schema; ``response_format``
        json_schema on an OpenAI-compatible server). None: free text."""
        events = self.events(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stats=stats,
            response_format=response_format,
        )
        with contextlib.closing(events):  # leaves the queue or frees the model at once
            for kind, value in events:
                if kind == "queue":
                    if on_wait is not None:
                        on_wait(value)
                else:
                    yield value

    def events(
        self,
        messages: list[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.2,
        stats: GenerationStats | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Generator[tuple[str, Any], None, None]:
        """:meth:`stream` as events, all in the caller's thread: ``("queue", position)`` while
        waiting for the model (about every 0.5 s), then ``("token", piece)``. Closing the
        generator leaves the queue, or stops the generation at its next token and frees the
        model. Raises :class:`BusyError` (queue full) and the backend's :class:`LLMError`."""
        stats = stats if stats is not None else GenerationStats()
        self.last_stats = stats
        start = time.monotonic()
        for position in self.gate.enter():
            yield "queue", position
        stats.queue_s = time.monotonic() - start
        start = time.monotonic()
        extra: dict[str, Any] = {}
        if response_format is not None and self._takes_schema():
            extra["schema"] = response_format
        try:
            pieces = self._stream(
                messages, max_tokens=max_tokens, temperature=temperature, stats=stats, **extra
            )
            try:
                for piece in pieces:
                    if stats.first_token_s is None and piece:
                        stats.first_token_s = time.monotonic() - start
                    yield "token", piece
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()
        finally:
            stats.total_s = time.monotonic() - start
            self.gate.release()

    def _takes_schema(self) -> bool:
        """Whether this backend's ``_stream`` accepts a schema. One that does not (an older or
        custom backend) gets free text, which the drafting service reads as such."""
        import inspect

        params = inspect.signature(self._stream).parameters
        return "schema" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    def complete(self, messages: list[Message], **kwargs: Any) -> str:
        return "".join(self.stream(messages, **kwargs))


class LocalChatModel(ChatModel):
    """llama.cpp in-process through llama-cpp-python. A ready ``llama`` can be injected."""

    def __init__(self, settings: Settings, llama: Any | None = None) -> None:
        super().__init__(max_waiting=settings.max_queue)
        self.settings = settings
        path = settings.chat_model_path
        self.name = path.name
        self._llama = llama or self._load(path)
        self._formatter: Any = None  # built on first use (see _chat_formatter)
        # The fixed parts' saved states (see enable_prompt_cache in assistant.drafting).
        self.prompt_states: PromptStates | None = None

    def _load(self, path: Path) -> Any:
        if not path.is_file():
            raise ModelNotFoundError(
                f"Modèle de conversation introuvable : {path}. Installez les modèles avec "
                "« assistant models install » ou choisissez un fichier GGUF présent "
                "(réglage chat_model, voir « assistant models list »)."
            )
        s = self.settings
        try:
            return open_llama(
                s,
                model_path=str(path),
                n_ctx=s.n_ctx,
                n_threads=s.threads,
                n_threads_batch=s.threads,
                n_batch=s.n_batch,
                seed=s.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as err:
            raise LLMError(
                f"llama.cpp n'a pas pu charger {path.name} ({err}). Le fichier est peut-être "
                "incomplet : vérifiez-le avec « assistant models list »."
            ) from err

    @property
    def llama(self) -> Any:
        return self._llama

    @property
    def n_ctx(self) -> int:
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _chat_formatter(self) -> Any | None:
        """The formatter llama-cpp-python applies for this model: the GGUF's own chat template
        (``chat_template.default``), built as the library builds it. None for other formats."""
        if self._formatter is None:
            self._formatter = False
            llama = self._llama
            template = getattr(llama, "metadata", {}).get("tokenizer.chat_template")
            if (
                template
                and getattr(llama, "chat_format", None) == "chat_template.default"
                and getattr(llama, "chat_handler", None) is None
            ):
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                def text(token: int) -> str:
                    if token < 0:
                        return ""
                    return bytes(llama.detokenize([token], special=True)).decode(
                        "utf-8", errors="ignore"
                    )

                self._formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=text(llama.token_eos()),
                    bos_token=text(llama.token_bos()),
                )
        return self._formatter or None

    def prompt_token_ids(self, messages: list[Message]) -> list[int] | None:
        formatter = self._chat_formatter()
        if formatter is None:
            return None
        result = formatter(messages=messages)
        ids = self._llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        return [int(t) for t in ids]

    def _fixed_tokens(self, messages: list[Message], prompt_ids: list[int] | None) -> int:
        """Tokens of the prompt's fixed part: those it shares with its system message alone."""
        if not prompt_ids or not messages or messages[0].get("role") != "system":
            return 0
        alone = self.prompt_token_ids(messages[:1]) or []
        return common_prefix(alone, prompt_ids)

    def _perf_reset(self) -> None:
        import llama_cpp

        # Older bindings lack the perf API: the figures then fall back to estimates.
        with contextlib.suppress(AttributeError, TypeError):
            llama_cpp.llama_perf_context_reset(self._llama.ctx)

    def _evaluated_prompt_tokens(self) -> int | None:
        """Prompt tokens llama.cpp really evaluated since the last reset (its own counter)."""
        import llama_cpp

        try:
            return int(llama_cpp.llama_perf_context(self._llama.ctx).n_p_eval)
        except (AttributeError, TypeError):
            return None

    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stats: GenerationStats,
        schema: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        self._perf_reset()
        prompt_ids = self.prompt_token_ids(messages)
        states = self.prompt_states if prompt_ids is not None else None
        if states is not None and prompt_ids is not None:
            states.restore(self._llama, prompt_ids)
        # llama-cpp-python turns the schema into a GBNF grammar (LlamaGrammar.from_json_schema).
        fmt = None if schema is None else {"type": "json_object", "schema": schema}
        try:
            chunks = self._llama.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.1,
                seed=self.settings.seed,
                stream=True,
                response_format=fmt,
            )
            for chunk in chunks:
                delta = chunk["choices"][0].get("delta", {})
                text = delta.get("content")
                if text:
                    stats.completion_tokens += 1
                    yield text
            if states is not None:
                states.remember(self._llama, self._fixed_tokens(messages, prompt_ids))
        except ValueError as err:  # e.g. prompt longer than the context window
            raise LLMError(
                f"Le modèle a refusé la demande : {err}. Raccourcissez la demande ou augmentez "
                "n_ctx (ASSISTANT_N_CTX)."
            ) from err
        finally:
            if prompt_ids is not None:  # the tokens llama.cpp was given
                stats.prompt_tokens = len(prompt_ids)
            else:  # n_tokens holds prompt + generated tokens now in the context
                total_in_ctx = int(self._llama.n_tokens)
                stats.prompt_tokens = max(0, total_in_ctx - stats.completion_tokens)
            evaluated = self._evaluated_prompt_tokens()
            if evaluated is not None:
                stats.cached_tokens = max(0, stats.prompt_tokens - evaluated)


class ServerChatModel(ChatModel):
    """An OpenAI-compatible server (llama.cpp server, llama-cpp-python server, vLLM)."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        super().__init__(max_waiting=settings.max_queue)
        import httpx

        assert settings.llm_url is not None  # checked by Settings
        self.settings = settings
        self.name = settings.llm_server_model or settings.chat_model
        headers = {}
        if settings.llm_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
        self._client = client or httpx.Client(
            base_url=settings.llm_url.rstrip("/"), headers=headers, timeout=600.0
        )
        # A server serves many users itself: do not serialise requests here.
        self.gate.max_waiting = 10_000

    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stats: GenerationStats,
        schema: dict[str, Any] | None = None,
    ) -> Iterator[str]:
        import httpx

        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,  # llama.cpp server: reuse the cached prefix
        }
        if schema is not None:  # OpenAI's shape, accepted by llama.cpp's server and vLLM
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "brouillon", "schema": schema, "strict": True},
            }
        try:
            with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise LLMError(
                        f"Le serveur de modèle ({self.settings.llm_url}) a répondu "
                        f"{response.status_code} : {response.text[:200]}. Vérifiez llm_url et "
                        "llm_server_model."
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    usage = event.get("usage")
                    if usage:
                        stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                        stats.completion_tokens = int(usage.get("completion_tokens") or 0)
                        details = usage.get("prompt_tokens_details") or {}
                        stats.cached_tokens = int(details.get("cached_tokens") or 0)
                    timings = event.get("timings")  # llama.cpp server's own figures
                    if timings and "cache_n" in timings:
                        stats.cached_tokens = int(timings["cache_n"])
                        stats.prompt_tokens = int(timings["cache_n"]) + int(
                            timings.get("prompt_n", 0)
                        )
                    for choice in event.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
        except httpx.HTTPError as err:
            raise LLMError(
                f"Serveur de modèle injoignable ({self.settings.llm_url}) : {err}. "
                "Vérifiez qu'il est démarré et le réglage llm_url."
            ) from err


def build_chat_model(settings: Settings, *, worker: bool = False) -> ChatModel:
    """The one place where the chat backend is chosen.

    ``worker``: run a local model in a restartable child process (`serve`), so that a native
    crash or a hang of llama.cpp ends one request, not the server (see assistant.worker).
    """
    match settings.llm_backend:
        case "local":
            # A native crash cannot be caught here: prove the engine in a child process first
            # (once per engine build, cached), and run it the way that passed.
            from assistant.engine import ensure_engine

            ensure_engine(settings)
            if worker:
                from assistant.worker import WorkerChatModel

                return WorkerChatModel(settings)
            return LocalChatModel(settings)
        case "server":
            return ServerChatModel(settings)
    raise AssertionError(settings.llm_backend)  # pragma: no cover - Literal is exhaustive
