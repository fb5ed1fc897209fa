"""Loaded by every Python process of the offline test (via PYTHONPATH): refuses and records any
network access that is not loopback. Python's audit hooks see every socket connect and name
lookup made from Python code, including those of chromadb, gradio, httpx and posthog."""

import ipaddress
import os
import sys

_LOG = os.environ.get("NETGUARD_LOG", "")


def _loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    text = str(host).strip("[]").lower()
    if text in {"", "localhost", "localhost.localdomain", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback or text == "0.0.0.0"
    except ValueError:
        return False


def _record(event: str, target: object) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {event} {target!r} {' '.join(sys.argv)[:200]}\n")


def _hook(event: str, args: tuple) -> None:
    if event == "socket.getaddrinfo":
        host = args[0]
        if not _loopback(host):
            _record(event, host)
            raise OSError(f"netguard: name lookup refused for {host!r}")
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address and not _loopback(address[0]):
            _record(event, address)
            raise OSError(f"netguard: connection refused to {address!r}")


sys.addaudithook(_hook)
