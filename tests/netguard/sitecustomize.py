"""Loaded by every Python process of the offline test (via PYTHONPATH): refuses and records any
network access that is not loopback. Python's audit hooks see every socket connect, send and
name lookup made from Python code, including those of chromadb, gradio, httpx and posthog.

Native code (chromadb's Rust core, llama.cpp) does not go through these hooks: the offline test
runs the product in a network namespace with only loopback up for that. Hand-written: a dozen
lines on ``sys.addaudithook`` (PEP 578), no library does this.

Environment:
- ``NETGUARD_LOG``: file that receives one line per refused attempt (event, target, command);
- ``NETGUARD_LOADED``: file that receives one line per process that loaded the guard, so that a
  test can tell "no attempt" from "guard not loaded".
"""

import ipaddress
import os
import sys

_LOG = os.environ.get("NETGUARD_LOG", "")
_LOADED = os.environ.get("NETGUARD_LOADED", "")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _loopback(host: object) -> bool:
    if host is None:  # passive lookups (bind to any) resolve nothing
        return True
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode(errors="replace")
    text = str(host).strip("[]").lower()
    if text in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False  # any other name needs a resolver, i.e. possibly the network
    # 0.0.0.0 / :: as a destination mean "this host" on Linux.
    return address.is_loopback or address.is_unspecified


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


def _record(event: str, target: object) -> None:
    if _LOG:
        _append(_LOG, f"{os.getpid()} {event} {target!r} {' '.join(sys.argv)[:200]}\n")


def _refuse(event: str, target: object) -> None:
    _record(event, target)
    raise OSError(f"netguard: {event} refused for {target!r} (offline test)")


def _address_host(address: object) -> object:
    """Host of a socket address; None for AF_UNIX paths and other non-IP families."""
    if isinstance(address, tuple) and address and isinstance(address[0], str | bytes):
        return address[0]
    return None


def _hook(event: str, args: tuple) -> None:
    target: object = None
    host: object = None
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
                 "socket.gethostbyaddr"):  # fmt: skip
        target = host = args[0]
    elif event == "socket.getnameinfo":
        target, host = args[0], _address_host(args[0])
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg") and len(args) > 1:
        # args: (socket, address); address is None for sendmsg on a connected socket.
        target, host = args[1], _address_host(args[1])
    else:
        return
    if not _loopback(host):
        _refuse(event, target)


sys.addaudithook(_hook)
if _LOADED:
    _append(_LOADED, f"{os.getpid()} {' '.join(sys.argv)[:200]}\n")
