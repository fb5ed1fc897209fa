"""The air gap, proved: the whole product runs with the network cut and tries to reach nothing.

Slow test: the real product runs as subprocesses (``python -m assistant ...`` from the repo's
venv) with

- ``tests/netguard`` on PYTHONPATH: an audit hook in every Python process refuses and records any
  non-loopback name lookup, connect or send (``NETGUARD_LOG`` must stay empty; ``NETGUARD_LOADED``
  proves each process really loaded the guard);
- when possible (root, ``unshare``, ``ip``, ``nsenter``), a new network namespace with only
  loopback up, so that native code too (chromadb's Rust core, llama.cpp) physically cannot reach
  the network — and the product must still work there;
- a hostile environment: the telemetry variables that :mod:`assistant.offline` forces off are
  set to "on" in the parent shell, so the test also proves that they are forced, not defaulted.

Steps: ``models list``, ``ingest``, ``search``, ``ask`` (SmolLM2-135M), ``doctor``, then
``serve``: the page and every asset it references (HTML, CSS, fonts, JS modules, Gradio's
``/config`` and ``/theme.css``) are fetched over loopback from inside the server's namespace and
checked for references to any other host.

Fast tests: the offline variables after ``import assistant``, the import order, Chroma's
settings as built by :mod:`assistant.store`, the guard itself and the URL policy.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.offline import OFFLINE_ENV

REPO = Path(__file__).resolve().parent.parent
NETGUARD = REPO / "tests" / "netguard"
FETCHER = NETGUARD / "fetch_page.py"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
MODELS_DIR = REPO / "models"
TEST_CHAT = "smollm2-135m-instruct-q4_1.gguf"
EMBEDDER = "all-minilm-l6-v2-f32.gguf"
CORPUS = REPO / "corpus" / "exemple"
# Routes the page's script requests at run time (not referenced by the HTML itself).
RUNTIME_ROUTES = ("config", "theme.css")

# --- what the page may name besides its own origin -----------------------------------------------
# XML namespace names: identifiers compared as strings (xmlns="..." in inline SVG, often inside
# data: URIs of CSS icons). Browsers never dereference them.
XML_NAMESPACES = frozenset(
    {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
        "http://www.w3.org/1999/xhtml",
        "http://www.w3.org/XML/1998/namespace",
        "http://www.w3.org/1998/Math/MathML",
    }
)
# Gradio's /config carries, for each gr.File component, the example value shown in its API docs
# (``api_info.example_inputs``). Only the API docs page displays it (as text in a code snippet);
# that page is not linked (footer_links=[]) and nothing fetches it.
GRADIO_API_EXAMPLE = "https://github.com/gradio-app/gradio/raw/main/test/test_files/"
# The variables a hostile shell sets "on": assistant.offline must force them back off.
HOSTILE_ENV = {
    "ANONYMIZED_TELEMETRY": "True",
    "CHROMA_TELEMETRY": "True",
    "GRADIO_ANALYTICS_ENABLED": "True",
    "GRADIO_CHECK_UPDATE": "True",
    "HF_HUB_OFFLINE": "0",
    "TRANSFORMERS_OFFLINE": "0",
    "DO_NOT_TRACK": "0",
    "LANGCHAIN_TRACING_V2": "true",
}
URL = re.compile(r"""(?i)\bhttps?://[^\s"'`()<>\\]+""")


# --- the URL policy ------------------------------------------------------------------------------


def foreign_urls(text: str, origin: str) -> list[str]:
    """Absolute URLs in ``text`` (raw or percent-encoded, as in ``data:`` URIs) that point to a
    host other than ``origin`` and are not XML namespace names."""
    own = urllib.parse.urlsplit(origin)
    found = []
    for candidate in {*URL.findall(text), *URL.findall(urllib.parse.unquote(text))}:
        url = candidate.rstrip(".,;")
        parts = urllib.parse.urlsplit(url)
        if url in XML_NAMESPACES or url.rstrip("/") in XML_NAMESPACES:
            continue
        if parts.hostname in {own.hostname, "127.0.0.1", "localhost", "::1"} and (
            parts.port == own.port
        ):
            continue
        found.append(url)
    return sorted(found)


def config_foreign_urls(config: Any, origin: str, path: str = "") -> list[str]:
    """Foreign URLs in Gradio's config JSON, except its API-docs example values (see
    :data:`GRADIO_API_EXAMPLE`), each reported with its key path."""
    if isinstance(config, dict):
        return [
            bad
            for key, value in config.items()
            for bad in config_foreign_urls(value, origin, f"{path}/{key}")
        ]
    if isinstance(config, list):
        return [
            bad
            for i, v in enumerate(config)
            for bad in config_foreign_urls(v, origin, f"{path}/{i}")
        ]
    if not isinstance(config, str):
        return []
    return [
        f"{path}: {url}"
        for url in foreign_urls(config, origin)
        if not ("example_inputs" in path and url.startswith(GRADIO_API_EXAMPLE))
    ]


# --- the sandbox ---------------------------------------------------------------------------------


def network_namespace_available() -> bool:
    """Root, the tools, and a kernel/container that lets us create a network namespace."""
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "ip", "nsenter")):
        return False
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


STRACE = [
    "strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg",
    "-e", "signal=none",
]  # fmt: skip
SOCKADDR = re.compile(
    r"sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?"
    r"""(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")"""
)


def syscall_trace_available() -> bool:
    """strace usable here (installed, and ptrace allowed by the container)."""
    if not shutil.which("strace"):
        return False
    probe = subprocess.run([*STRACE, "-o", os.devnull, "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def native_attempts(trace: str) -> list[str]:
    """Lines of an strace log where any code, native or not, called connect/sendto/sendmsg
    towards a non-loopback address, or towards port 53 anywhere (a DNS query: the resolver may
    sit on a loopback address and forward to the network)."""
    bad = []
    for line in trace.splitlines():
        match = SOCKADDR.search(line)
        if match is None:
            continue
        address = ipaddress.ip_address(match.group(2) or match.group(3))
        mapped = getattr(address, "ipv4_mapped", None)
        local = (mapped or address).is_loopback or address.is_unspecified
        if not local or int(match.group(1)) == 53:
            bad.append(line.strip())
    return bad


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Step:
    name: str
    seconds: float
    returncode: int | None


@dataclass
class Sandbox:
    """Runs the product as it is run in production, with the network cut and watched."""

    root: Path
    netns: bool
    strace: bool
    log: Path = field(init=False)
    loaded: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    steps: list[Step] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log = self.root / "netguard.log"
        self.loaded = self.root / "netguard-loaded.log"
        self.log.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "PYTHON"))}
        env.update(HOSTILE_ENV)
        env.update(
            {
                "PYTHONPATH": str(NETGUARD),
                "NETGUARD_LOG": str(self.log),
                "NETGUARD_LOADED": str(self.loaded),
                "ASSISTANT_DATA_DIR": str(self.root / "data"),
                "ASSISTANT_MODELS_DIR": str(MODELS_DIR),
                "ASSISTANT_CHAT_MODEL": TEST_CHAT,
                "COLUMNS": "200",  # rich tables: no wrapped file names
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env

    def wrap(self, argv: list[str], name: str) -> list[str]:
        """``argv`` under strace (its sockets calls logged to ``strace-<name>.txt``), in a fresh
        network namespace with only loopback up (each when available)."""
        if self.strace:
            argv = [*STRACE, "-o", str(self.root / f"strace-{name}.txt"), *argv]
        if self.netns:
            argv = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
        return argv

    def enter(self, pid: int, argv: list[str]) -> list[str]:
        """``argv`` in the network namespace of process ``pid`` (to reach its loopback)."""
        return ["nsenter", f"--net=/proc/{pid}/ns/net", *argv] if self.netns else argv

    def run(self, name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        start = time.monotonic()
        done = subprocess.run(
            self.wrap([PYTHON, "-m", "assistant", *args], name.replace(" ", "-")),
            env=self.env,
            cwd=self.root,  # no stray ./assistant.toml
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        self.steps.append(Step(name, time.monotonic() - start, done.returncode))
        assert done.returncode == 0, (
            f"« assistant {' '.join(args)} » a échoué hors réseau (code {done.returncode}).\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        return done

    def attempts(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def native_attempts(self) -> list[str]:
        return [
            f"{trace.name}: {line}"
            for trace in sorted(self.root.glob("strace-*.txt"))
            for line in native_attempts(trace.read_text(encoding="utf-8", errors="replace"))
        ]

    def guarded_processes(self) -> int:
        return len(self.loaded.read_text(encoding="utf-8").splitlines())


def listening(pid: int, port: int) -> bool:
    """Whether ``pid``'s network namespace has a TCP socket listening on ``port`` (read from
    /proc, which works from outside that namespace)."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":
                return True
    return False


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    for name in (TEST_CHAT, EMBEDDER):
        if not (MODELS_DIR / name).is_file():
            pytest.skip(f"modèle {name} absent : lancez « assistant models install --set test »")
    box = Sandbox(
        tmp_path_factory.mktemp("offline"),
        netns=network_namespace_available(),
        strace=syscall_trace_available(),
    )
    yield box
    summary = ", ".join(f"{s.name} {s.seconds:.1f} s" for s in box.steps)
    print(
        f"\n[offline] espace réseau isolé : {'oui' if box.netns else 'non'} ; appels système "
        f"tracés : {'oui' if box.strace else 'non'} ; {summary}"
    )


# --- slow: the whole product, network cut --------------------------------------------------------


@pytest.mark.slow
def test_whole_product_runs_offline_and_tries_nothing(sandbox: Sandbox) -> None:
    box = sandbox

    listed = json.loads(box.run("models list", "models", "list", "--json", timeout=300).stdout)
    assert TEST_CHAT in json.dumps(listed), listed

    ingested = json.loads(
        box.run(
            "ingest", "ingest", str(CORPUS), "--collection", "exemple", "--json", timeout=900
        ).stdout
    )
    documents = [p for p in CORPUS.iterdir() if p.is_file()]
    assert ingested["added"] == len(documents), ingested
    assert ingested["failed"] == [] and ingested["chunks"] > 0, ingested

    found = json.loads(
        box.run(
            "search", "search", "salle des fêtes", "--collection", "exemple", "--json", timeout=300
        ).stdout
    )
    hits = found["results"]
    assert any("salle des fêtes" in json.dumps(h, ensure_ascii=False).lower() for h in hits), hits

    draft = json.loads(
        box.run(
            "ask",
            "ask",
            "Quel est le tarif de la salle des fêtes ?",
            "--collection",
            "exemple",
            "--json",
            timeout=900,
        ).stdout
    )
    assert TEST_CHAT.removesuffix(".gguf") in draft["model"], draft["model"]
    assert draft["citations"] or draft["unused_sources"], "aucune source retrouvée hors réseau"
    assert draft["answer"].strip() or draft["abstained"], draft

    box.run("doctor", "doctor", timeout=300)

    served, config = serve_and_fetch(box)
    check_page(served, config)

    assert box.attempts() == "", "tentatives d'accès réseau :\n" + box.attempts()
    # Native code too (chromadb's Rust core, llama.cpp): no connect/send beyond loopback.
    assert box.native_attempts() == []
    if box.strace:
        assert len(list(box.root.glob("strace-*.txt"))) == len(box.steps)
    # Every step (and the fetcher) ran under the guard: "no attempt" is not "guard absent".
    assert box.guarded_processes() >= len(box.steps) + 1, box.loaded.read_text()


def serve_and_fetch(box: Sandbox) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start ``assistant serve``, fetch the page and its assets from its namespace, stop it."""
    port = free_port()
    out = (box.root / "serve.out").open("w")
    start = time.monotonic()
    server = subprocess.Popen(
        # unshare and sh exec: the pid is strace's, or the server's own python process
        box.wrap([PYTHON, "-m", "assistant", "serve", "--port", str(port)], "serve"),
        env=box.env,
        cwd=box.root,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not listening(server.pid, port):
            log = (box.root / "serve.out").read_text()
            assert server.poll() is None, f"« assistant serve » s'est arrêté :\n{log[-3000:]}"
            assert time.monotonic() < deadline, f"« assistant serve » n'écoute pas :\n{log}"
            time.sleep(0.5)
        fetch = subprocess.run(
            box.enter(
                server.pid,
                [PYTHON, str(FETCHER), f"http://127.0.0.1:{port}/", *RUNTIME_ROUTES],
            ),
            env=box.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert fetch.returncode == 0, fetch.stderr[-3000:]
        served = json.loads(fetch.stdout)
    finally:
        os.kill(traced_child(server.pid) if box.strace else server.pid, signal.SIGINT)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        out.close()
        box.steps.append(Step("serve", time.monotonic() - start, code))
    log = (box.root / "serve.out").read_text()
    assert "Traceback" not in log, log[-3000:]
    config = next(r for r in served["resources"] if r["url"].endswith("/config"))
    return served, json.loads(config["text"])


def traced_child(pid: int) -> int:
    """The process strace started (strace itself would only detach on SIGINT)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def check_page(served: dict[str, Any], config: dict[str, Any]) -> None:
    origin = served["origin"]
    resources = served["resources"]
    assert not served["errors"], served["errors"]
    missing = [(r["url"], r["status"]) for r in resources if r["status"] != 200]
    assert not missing, f"ressources non servies localement : {missing[:20]}"
    kinds = {r["url"].rsplit(".", 1)[-1] for r in resources}
    assert {"js", "css"} <= kinds, kinds  # the crawl really followed the page's assets
    # src/href/url()/@import pointing to another host (found while crawling, never fetched)
    assert not served["foreign"], served["foreign"]
    for r in resources:
        if "html" in r["content_type"] or "css" in r["content_type"]:
            bad = foreign_urls(r["text"], origin)
            assert not bad, f"{r['url']} nomme d'autres hôtes : {bad}"
    assert config["analytics_enabled"] is False
    assert all(not urllib.parse.urlsplit(s).netloc for s in config["stylesheets"]), config[
        "stylesheets"
    ]
    bad = config_foreign_urls(config, origin)
    assert not bad, f"/config nomme d'autres hôtes : {bad}"


# --- fast ----------------------------------------------------------------------------------------


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_assistant_forces_offline_variables_over_a_hostile_shell() -> None:
    done = _python(
        """
        import json, os, sys
        import assistant
        from assistant.offline import OFFLINE_ENV
        late = [m for m in ("chromadb", "gradio", "huggingface_hub", "posthog", "transformers",
                            "langsmith", "llama_cpp") if m in sys.modules]
        print(json.dumps({"env": {k: os.environ.get(k) for k in OFFLINE_ENV}, "late": late}))
        """,
        **HOSTILE_ENV,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["env"] == OFFLINE_ENV
    # Libraries read these variables at import: none may be imported before they are set.
    assert result["late"] == []


def test_chroma_reads_telemetry_off_from_the_environment_after_import_assistant() -> None:
    done = _python(
        """
        import assistant
        from chromadb.config import Settings
        print(Settings().anonymized_telemetry)
        """,
        ANONYMIZED_TELEMETRY="True",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_chroma_client_built_by_store_has_telemetry_off(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.store import build_chroma_client

    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "True")  # explicit in code, not from the env
    client = build_chroma_client(settings)
    assert client.get_settings().anonymized_telemetry is False


def test_netguard_refuses_and_records_everything_but_loopback(tmp_path: Path) -> None:
    log, loaded = tmp_path / "guard.log", tmp_path / "loaded.log"
    done = _python(
        """
        import json, socket
        results = {}
        def attempt(name, action):
            try:
                action()
                results[name] = "ok"
            except OSError as err:
                results[name] = "netguard" if "netguard" in str(err) else "other"
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
        port = server.getsockname()[1]
        attempt("lookup", lambda: socket.getaddrinfo("example.org", 443))
        attempt("lookup_ip", lambda: socket.gethostbyname("example.org"))
        attempt("tcp", lambda: socket.create_connection(("192.0.2.1", 80), timeout=1))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        attempt("udp", lambda: udp.sendto(b"x", ("198.51.100.1", 53)))
        attempt("loopback", lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
        attempt("localhost", lambda: socket.getaddrinfo("localhost", port))
        print(json.dumps(results))
        """,
        PYTHONPATH=str(NETGUARD),
        NETGUARD_LOG=str(log),
        NETGUARD_LOADED=str(loaded),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "lookup": "netguard",
        "lookup_ip": "netguard",
        "tcp": "netguard",
        "udp": "netguard",
        "loopback": "ok",
        "localhost": "ok",
    }
    recorded = log.read_text(encoding="utf-8")
    for target in ("example.org", "192.0.2.1", "198.51.100.1"):
        assert target in recorded
    assert "127.0.0.1" not in recorded
    assert len(loaded.read_text(encoding="utf-8").splitlines()) == 1


def test_url_policy_flags_other_hosts_and_allows_namespaces_and_own_origin() -> None:
    origin = "http://127.0.0.1:7860"
    css = (
        "@import url(https://fonts.googleapis.com/css2?family=Inter);"
        ".i{background:url(\"data:image/svg+xml,%3Csvg xmlns='http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg'"
        "%3E%3Cimage href='https%3A%2F%2Fcdn.example.net%2Fa.png'/%3E%3C/svg%3E\")}"
        ".j{background:url(http://127.0.0.1:7860/assets/x.png)}"
        ".k{background:url(http://127.0.0.1:9999/x.png)}"
    )
    assert foreign_urls(css, origin) == [
        "http://127.0.0.1:9999/x.png",
        "https://cdn.example.net/a.png",
        "https://fonts.googleapis.com/css2?family=Inter",
    ]
    config = {
        "root": origin,
        "components": [
            {"api_info": {"example_inputs": {"url": GRADIO_API_EXAMPLE + "sample_file.pdf"}}},
            {"value": GRADIO_API_EXAMPLE + "sample_file.pdf"},
        ],
    }
    assert config_foreign_urls(config, origin) == [
        f"/components/1/value: {GRADIO_API_EXAMPLE}sample_file.pdf"
    ]


def test_native_attempts_flags_remote_and_dns_but_not_loopback() -> None:
    trace = """\
2030  connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT
2030  connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0
2030  connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("192.0.2.1")}, 16) = -1
2030  connect(4, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH
2031  connect(5, {sa_family=AF_INET, sin_port=htons(7860), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
2031  connect(6, {sa_family=AF_INET6, sin6_port=htons(7860), sin6_flowinfo=htonl(0), \
inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0
2031  sendto(7, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(443), \
sin_addr=inet_addr("0.0.0.0")}, 16) = 1
"""
    flagged = native_attempts(trace)
    expected = ("127.0.0.53", "192.0.2.1", "2001:db8::1")  # DNS, IPv4, IPv6; not loopback
    assert len(flagged) == len(expected), flagged
    assert all(address in line for address, line in zip(expected, flagged, strict=True))


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("", False),  # every interface for uvicorn
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("localhost.example.org", False),  # a name that resolves anywhere
        ("127.0.0.1.nip.io", False),
        ("::1abc", False),
    ],
)
def test_is_loopback_is_exact(host: str, local: bool) -> None:
    from assistant.offline import is_loopback

    assert is_loopback(host) is local
