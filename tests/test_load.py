"""Load: 8 agents draft at once against a running ``assistant serve`` over real HTTP (loopback,
the Gradio client), with the real SmolLM2 model, while a cron ``assistant ingest`` adds a
document. All are answered or told their place in the queue, none gets an error; the index
stays consistent and the next draft finds the new document. Beyond ``max_queue``, agents are
told "Serveur occupé". Bounded in count (8 agents, 32 tokens each) and time."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.config import DEFAULT_EMBEDDING_MODEL, TEST_CHAT_MODEL
from tests.conftest import REPO, require_model

AGENTS = 8
DEADLINE_S = 600
_STATUS = re.compile(r'class="status status-(\w+)"[^>]*>([^<]*)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_DATA_DIR=str(data_dir),
        ASSISTANT_MODELS_DIR=str(REPO / "models"),
        ASSISTANT_CHAT_MODEL=TEST_CHAT_MODEL,
        ASSISTANT_THREADS="1",
        ASSISTANT_MAX_TOKENS="32",
        ASSISTANT_TEMPERATURE="0",
        PYTHONPATH=str(REPO),
        **more,
    )
    return env


def _ingest(folder: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(folder), "-c", "exemple", "--json"],
        env=_env(data_dir),
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the server and its child processes (the model worker),
        from /proc (Linux), in MB."""
        total_kb = 0
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found = re.search(r"VmHWM:\s+(\d+)", status)
            total_kb += int(found.group(1)) if found else 0
            todo.extend(int(c) for c in children)
        return total_kb / 1024


@contextmanager
def serve(data_dir: Path, max_queue: int) -> Iterator[Server]:
    """A real ``assistant serve`` process on a free loopback port, stopped on exit."""
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--port", str(port)],
        env=_env(data_dir, ASSISTANT_MAX_QUEUE=str(max_queue)),
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "serve died"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.5)
        yield Server(proc, url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Agent:
    """One agent's session: every status line it saw, the last sources panel, its error."""

    statuses: list[tuple[str, str]] = field(default_factory=list)
    sources: str = ""
    error: str = ""
    seconds: float = 0.0

    @property
    def final(self) -> tuple[str, str]:
        return self.statuses[-1] if self.statuses else ("", "")


def draft_over_http(url: str, text: str) -> Agent:
    """Press "Rédiger" for a question through Gradio's HTTP API, as the page does."""
    from gradio_client import Client

    agent = Agent()
    started = time.monotonic()
    try:
        client = Client(url, verbose=False)
        info = client.view_api(return_format="dict", print_info=False)
        extra = len(info["named_endpoints"]["/start"]["parameters"]) - 3
        job = client.submit("question", ["exemple"], text, *([""] * extra), api_name="/start")
        for output in job:
            for value in output if isinstance(output, list | tuple) else [output]:
                if not isinstance(value, str):
                    continue
                status = _STATUS.search(value)
                if status:
                    agent.statuses.append((status.group(1), status.group(2)))
                if 'class="src-panel"' in value:
                    agent.sources = value
        job.result(timeout=DEADLINE_S)
    except Exception as err:  # reported, and the test fails on it
        agent.error = f"{type(err).__name__}: {err}"
    agent.seconds = time.monotonic() - started
    return agent


def run_agents(url: str, questions: list[str]) -> list[Agent]:
    results: list[Agent | None] = [None] * len(questions)

    def one(i: int) -> None:
        results[i] = draft_over_http(url, questions[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S)
    assert all(r is not None for r in results), "an agent never finished"
    return [r for r in results if r is not None]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_model(TEST_CHAT_MODEL)
    require_model(DEFAULT_EMBEDDING_MODEL)
    root = tmp_path_factory.mktemp("charge")
    docs = root / "docs"
    docs.mkdir()
    for i, topic in enumerate(("cantine scolaire", "état civil", "déchetterie", "marché")):
        (docs / f"note{i}.md").write_text(
            f"# {topic.capitalize()}\n\nLe service {topic} de la commune accueille les usagers "
            f"du lundi au vendredi. Tarif {i + 2},50 euros. Inscription en mairie.\n",
            encoding="utf-8",
        )
    data = root / "data"
    done = _ingest(docs, data)
    assert done.returncode == 0, done.stderr
    return data


@pytest.mark.slow
def test_eight_agents_at_once_while_cron_ingests(data_dir: Path) -> None:
    docs = data_dir.parent / "docs"
    questions = [
        f"Quels sont les horaires et le tarif du service {t} ?"
        for t in ("cantine scolaire", "état civil", "déchetterie", "marché") * 2
    ]
    with serve(data_dir, max_queue=20) as server:
        cron: dict[str, Any] = {}

        def nightly() -> None:
            time.sleep(2)  # while the agents wait and draft
            (docs / "piscine.md").write_text(
                "# Piscine\n\nLa piscine municipale ouvre le samedi de 9 heures à 19 heures.\n",
                encoding="utf-8",
            )
            cron["done"] = _ingest(docs, data_dir)

        sync = threading.Thread(target=nightly)
        sync.start()
        started = time.monotonic()
        agents = run_agents(server.url, questions)
        elapsed = time.monotonic() - started
        sync.join(timeout=300)

        errors = [a.error or a.final[1] for a in agents if a.error or a.final[0] == "error"]
        queued = [a for a in agents if any(kind == "queue" for kind, _ in a.statuses)]
        print(
            f"\n{AGENTS} agents: {len(agents) - len(errors)} answered in {elapsed:.1f} s "
            f"(slowest {max(a.seconds for a in agents):.1f} s), {len(queued)} told their place "
            f"in the queue; serve peak RSS {server.peak_rss_mb():.0f} MB"
        )
        assert errors == []
        assert all(a.final[0] == "done" for a in agents), [a.final for a in agents]
        assert queued, "nobody was told a queue position"
        assert any("position" in text or "prochain" in text for a in queued
                   for _, text in a.statuses)  # fmt: skip
        assert server.peak_rss_mb() < 3000

        # The cron sync went through and corrupted nothing.
        assert cron["done"].returncode == 0, cron["done"].stderr
        from assistant.config import Settings
        from assistant.store import build_index

        index = build_index(Settings(data_dir=data_dir))
        ids = index.chunk_ids("exemple")
        assert sorted(ids["chroma"]) == sorted(ids["lexical"])
        assert "piscine.md" in index.documents("exemple")
        # The next agent's draft sees the new document, without a restart.
        after = draft_over_http(server.url, "Quels sont les horaires de la piscine municipale ?")
        assert not after.error and "piscine.md" in after.sources, after


@pytest.mark.slow
def test_beyond_max_queue_agents_are_told_the_server_is_busy(data_dir: Path) -> None:
    with serve(data_dir, max_queue=2) as server:
        agents = run_agents(server.url, ["Quel est le tarif de la cantine scolaire ?"] * AGENTS)
        busy = [a for a in agents if "Serveur occupé" in a.final[1]]
        answered = [a for a in agents if a.final[0] == "done"]
        print(f"\nmax_queue=2, {AGENTS} agents: {len(answered)} answered, {len(busy)} told busy")
        assert [a.error for a in agents if a.error] == []
        assert busy and answered
        assert len(busy) + len(answered) == AGENTS
