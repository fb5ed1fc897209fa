"""No byte leaves the machine: switch off every library's telemetry and hub access.

Set before chromadb, gradio or any tokenizer library is imported. Tests prove it
(tests/test_offline.py) by running the product with every non-loopback connection refused.
"""

from __future__ import annotations

import ipaddress
import os

OFFLINE_ENV = {
    "ANONYMIZED_TELEMETRY": "False",  # chromadb / posthog
    "CHROMA_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "GRADIO_TELEMETRY_ENABLED": "False",
    "GRADIO_CHECK_UPDATE": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "POSTHOG_DISABLED": "1",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}


def enforce_offline_env() -> None:
    """Force the variables above (``setdefault`` would let a stray shell value re-enable them)."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server on this machine.

    Exact checks, no prefixes: "localhost.example.org" or "127.0.0.1.nip.io" are names that
    resolve anywhere, and "" means every interface to asyncio/uvicorn."""
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
