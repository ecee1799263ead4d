"""The DAGs' scheduling settings (part of :mod:`jobs.settings`).

Read at parse time from the Airflow processes' environment only (the env files configure the
tasks), importing nothing heavy.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any


def env_int(name: str, default: int) -> int:
    """A whole number from the environment; a bad value warns and falls back to ``default``."""
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        logging.getLogger(__name__).warning("%s=%r is not a whole number; using %d", name, value, default)
        return default


def schedule(name: str, default: str = "@daily") -> str | None:
    """A cron or preset from ``name``; ``none``/``manual``/``off`` mean triggered runs only."""
    value = os.environ.get(name, "").strip() or default
    return None if value.lower() in ("none", "manual", "off") else value


def task_defaults() -> dict[str, Any]:
    """Every DAG's ``default_args``: owner, retries with a doubling delay, a task timeout."""
    return {
        "owner": "data-eng",
        "retries": env_int("LAKEHOUSE_RETRIES", 2),
        "retry_delay": timedelta(seconds=env_int("LAKEHOUSE_RETRY_DELAY_SECONDS", 60)),
        "retry_exponential_backoff": 2.0,  # 60 s, 120 s, 240 s … capped
        "max_retry_delay": timedelta(seconds=env_int("LAKEHOUSE_MAX_RETRY_DELAY_SECONDS", 900)),
        "execution_timeout": timedelta(minutes=env_int("LAKEHOUSE_TASK_TIMEOUT_MINUTES", 120)),
    }
