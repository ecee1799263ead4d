"""Scheduling settings the DAGs read from their environment at parse time (no heavy import)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def env_int(name: str, default: int) -> int:
    """A whole number from the environment; a bad value warns and falls back to ``default``."""
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        log.warning("%s=%r is not a whole number; using %d", name, value, default)
        return default


def schedule(name: str, default: str = "@daily") -> str | None:
    """A cron or preset from ``name``; ``none``/``manual``/``off`` mean triggered runs only."""
    value = os.environ.get(name, "").strip() or default
    return None if value.lower() in ("none", "manual", "off") else value
