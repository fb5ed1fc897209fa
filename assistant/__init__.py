"""Assistant de rédaction souverain pour les collectivités territoriales."""

from assistant.offline import enforce_offline_env

__version__ = "0.1.0"

# Before any third-party import can read them: no telemetry, no hub, no analytics.
enforce_offline_env()
