#!/usr/bin/env python3
"""Scheduled ingestion for IT: the same as ``assistant ingest``, runnable from cron or a task
scheduler without activating anything but the project's virtual environment.

Usage (all options of ``assistant ingest`` are accepted)::

    .venv/bin/python scripts/ingest.py /srv/partage/deliberations --collection deliberations
    .venv/bin/python scripts/ingest.py /srv/partage/urbanisme -c urbanisme --json > rapport.json
    .venv/bin/python scripts/ingest.py --list
    .venv/bin/python scripts/ingest.py --data-dir /var/lib/assistant /srv/partage -c mairie

Example crontab line (every night at 2:30, JSON report kept, errors mailed by cron)::

    30 2 * * * cd /opt/assistant && .venv/bin/python scripts/ingest.py /srv/partage/actes \
        -c actes --json > /var/log/assistant/ingest.json

Each run only does what changed (new, modified, deleted files); a run interrupted by a reboot
or a kill is repaired by the next one. Exit codes: 0 done (bad files are listed in the report,
they do not fail the run), 1 error (message in French on stderr), 2 wrong usage or setting,
130 interrupted (the next run finishes the work). Global settings go through ``ASSISTANT_*``
variables or ``assistant.toml`` (e.g. ``ASSISTANT_DATA_DIR=/var/lib/assistant``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.cli import main

# Global options of ``assistant`` accepted here too (they must come before the command name).
GLOBAL_OPTIONS = ("--data-dir", "--models-dir", "--embedding-model", "--threads")


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(global options, ingest options) from a flat argument list."""
    globals_: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            globals_.append(arg)
            if "=" not in arg:
                globals_.append(next(args, ""))
        else:
            rest.append(arg)
    return globals_, rest


if __name__ == "__main__":
    global_args, ingest_args = split_args(sys.argv[1:])
    main([*global_args, "ingest", *ingest_args])
