"""Importing jobs tunes Polars' allocator for the process, unless the caller chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

SHOW = "import jobs, os; print(os.environ['_RJEM_MALLOC_CONF'])"


def _conf(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    done = subprocess.run(
        [sys.executable, "-c", SHOW], env=base | env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_importing_jobs_keeps_freed_pages_for_a_second_by_default() -> None:
    assert "dirty_decay_ms:1000" in _conf()


def test_a_callers_own_allocator_setting_wins() -> None:
    assert _conf(_RJEM_MALLOC_CONF="narenas:2") == "narenas:2"
