"""The chat model in a worker process, so that the web server outlives the engine.

A native crash of llama.cpp (SIGSEGV, SIGILL, an abort in ggml) kills the process it happens in;
a hang blocks it forever. In `assistant serve`, the model therefore runs in a child process that
owns it (:func:`_worker_main`), and the server talks to it over a pipe:

- the server keeps the queue (:class:`~assistant.llm.Gate`, so the order of waiting agents is
  kept across a restart) and tokenizes locally with a vocabulary-only copy of the model (no
  weights, no compute: the budget and cache arithmetic need no round trip);
- a child that dies between requests is restarted silently before the next one; one that dies
  during a request, or sends nothing for ``engine_stall_s`` seconds, is killed and restarted, and
  that request ends with a French :class:`~assistant.errors.LLMError` telling the agent to send it
  again;
- stopping a draft sends a cancel message; the child stops generating at the next token.

The CLI keeps the in-process model (`assistant ask`): one request, one process, nothing to save.
Python's multiprocessing (spawn) and its pipes are used as they are: nothing here is a protocol
of our own beyond the message tuples below.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from assistant.config import Settings
from assistant.engine import describe_exit
from assistant.errors import AssistantError, LLMError, ModelNotFoundError
from assistant.llm import ChatModel, GenerationStats, LocalChatModel, Message

#: Seconds the child may take to load the chat model before it is declared failed.
START_TIMEOUT_S = 300.0

CRASHED = (
    "Le moteur de rédaction s'est arrêté brutalement pendant votre demande ({why}). Il vient "
    "d'être redémarré : relancez la demande. Si cela se répète, lancez « assistant doctor »."
)
STALLED = (
    "Le moteur de rédaction ne répondait plus depuis {seconds:.0f} s ; il a été redémarré. "
    "Relancez la demande. Si cela se répète, lancez « assistant doctor »."
)


def _worker_main(conn: Connection, settings: Settings) -> None:
    """The child: open the chat model, then serve requests from ``conn`` until it closes.

    Messages in: ``{"op": "stream", "messages", "max_tokens", "temperature", "options"}``,
    ``{"op": "cancel"}`` (during a stream), ``{"op": "stop"}``. Messages out: ``("ready",
    {"n_ctx"})`` once, then per stream ``("piece", str)``… and ``("end", stats dict)`` or
    ``("error", message)``; ``("fatal", message)`` if the model cannot be opened.
    """
    from assistant.drafting import enable_prompt_cache

    try:
        model = LocalChatModel(settings)
        enable_prompt_cache(model)
    except AssistantError as err:
        conn.send(("fatal", str(err)))
        return
    conn.send(("ready", {"n_ctx": model.n_ctx}))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        op = request.get("op")
        if op == "stop":
            return
        if op != "stream":
            continue  # a late cancel
        stats = GenerationStats()
        try:
            for piece in model._stream(
                request["messages"],
                max_tokens=request["max_tokens"],
                temperature=request["temperature"],
                stats=stats,
                **request.get("options", {}),
            ):
                conn.send(("piece", piece))
                if conn.poll() and conn.recv().get("op") == "cancel":
                    break
        except AssistantError as err:
            conn.send(("error", str(err)))
            continue
        conn.send(("end", {"prompt_tokens": stats.prompt_tokens,
                           "cached_tokens": stats.cached_tokens,
                           "completion_tokens": stats.completion_tokens}))


class WorkerChatModel(ChatModel):
    """The local llama.cpp chat model, run in a restartable child process.

    Same interface as :class:`~assistant.llm.LocalChatModel`. ``target`` is the child's main
    function (tests give one that crashes or hangs on purpose); ``stall_s`` the longest silence
    tolerated during a request, in seconds (default ``settings.engine_stall_s``).

    Raises :class:`~assistant.errors.ModelNotFoundError` when the model file is missing and
    :class:`~assistant.errors.LLMError` when the child cannot open it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        target: Callable[[Connection, Settings], None] | None = None,
        stall_s: float | None = None,
    ) -> None:
        super().__init__(max_waiting=settings.max_queue)
        self.settings = settings
        path = settings.chat_model_path
        if not path.is_file():
            raise ModelNotFoundError(
                f"Modèle de conversation introuvable : {path}. Installez les modèles avec "
                "« assistant models install » ou choisissez un fichier GGUF présent "
                "(réglage chat_model, voir « assistant models list »)."
            )
        self.name = path.name
        self.stall_s = settings.engine_stall_s if stall_s is None else stall_s
        self._target = target or _worker_main
        self._mp = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._pipe_lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self._n_ctx = settings.n_ctx
        self.restarts = 0
        # Tokenizer only (vocab_only: no weights are loaded, nothing is computed).
        from assistant.engine import open_llama

        vocab = open_llama(settings, model_path=str(path), vocab_only=True, verbose=False)
        self._tokenizer = LocalChatModel(settings, llama=vocab)
        self._start()

    # --- the child's life ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The worker process id (None before the first start)."""
        return None if self._proc is None else self._proc.pid

    def _start(self) -> None:
        parent, child = self._mp.Pipe()
        proc = self._mp.Process(
            target=self._target, args=(child, self.settings), daemon=True,
            name="assistant-moteur",
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        if not parent.poll(START_TIMEOUT_S):
            self._kill()
            raise LLMError(
                f"Le moteur de rédaction n'a pas démarré en {START_TIMEOUT_S:.0f} s. "
                "Lancez « assistant doctor »."
            )
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError) as err:
            code = proc.exitcode
            self._kill()
            raise LLMError(
                f"Le moteur de rédaction s'est arrêté au démarrage (code {code}). "
                "Lancez « assistant doctor »."
            ) from err
        if kind == "fatal":
            self._kill()
            raise LLMError(str(payload))
        self._n_ctx = int(payload.get("n_ctx", self._n_ctx))

    def _kill(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=10)
        self._proc, self._conn = None, None

    def _restart(self) -> None:
        self._kill()
        self.restarts += 1
        self._start()

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive() and self._conn is not None

    def close(self) -> None:
        """Stop the worker (the server is shutting down)."""
        with self._pipe_lock:
            if self._alive():
                try:
                    assert self._conn is not None
                    self._conn.send({"op": "stop"})
                    self._proc.join(timeout=5)
                except (OSError, ValueError):
                    pass
            self._kill()

    # --- the model interface -----------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def llama(self) -> Any:
        """The vocabulary-only model (tokenizer, chat template) in this process."""
        return self._tokenizer.llama

    def count_tokens(self, text: str) -> int:
        return self._tokenizer.count_tokens(text)

    def prompt_token_ids(self, messages: list[Message]) -> list[int] | None:
        return self._tokenizer.prompt_token_ids(messages)

    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        stats: GenerationStats,
        **options: Any,
    ) -> Iterator[str]:
        with self._pipe_lock:
            if not self._alive():  # died since the last request: nobody was waiting on it
                self._restart()
            conn = self._conn
            assert conn is not None
            conn.send({"op": "stream", "messages": messages, "max_tokens": max_tokens,
                       "temperature": temperature, "options": options})
            finished = False
            try:
                while True:
                    waited = time.monotonic()
                    if not conn.poll(self.stall_s):
                        self._restart()
                        finished = True
                        raise LLMError(STALLED.format(seconds=time.monotonic() - waited))
                    try:
                        kind, payload = conn.recv()
                    except (EOFError, OSError) as err:
                        code = None
                        if self._proc is not None:
                            self._proc.join(timeout=5)  # reap it, to read its signal
                            code = self._proc.exitcode
                        why = describe_exit(code)
                        self._restart()
                        finished = True
                        raise LLMError(CRASHED.format(why=why)) from err
                    if kind == "piece":
                        yield payload
                    elif kind == "end":
                        finished = True
                        stats.prompt_tokens = int(payload["prompt_tokens"])
                        stats.cached_tokens = int(payload["cached_tokens"])
                        stats.completion_tokens = int(payload["completion_tokens"])
                        return
                    elif kind == "error":
                        finished = True
                        raise LLMError(str(payload))
            finally:
                if not finished:  # the consumer stopped early (the agent pressed « Arrêter »)
                    self._cancel(conn)

    def _cancel(self, conn: Connection) -> None:
        """Tell the child to stop and wait for its end of stream (restart it if it is silent)."""
        try:
            conn.send({"op": "cancel"})
            deadline = time.monotonic() + self.stall_s
            while time.monotonic() < deadline:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    break
                kind, _ = conn.recv()
                if kind in ("end", "error"):
                    return
        except (EOFError, OSError):
            pass
        self._restart()
