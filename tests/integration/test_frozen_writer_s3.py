"""A writer frozen past its lease never commits, on a real S3 server (weed mini) too.

The same trial as ``tests/integrity/test_frozen_writer.py``: a real ``python -m jobs run`` with
only the pipeline's keys stops itself right before a Delta commit (at the deltalake call), its
lease expires, a second run takes over and finishes, the first is resumed and must commit
nothing (exit 6). Gold must then equal gold built by one undisturbed run of the same data, and
no raw line may be in bronze twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal

from infra.stack.seed import SeedOptions, seed_lake
from jobs.pipeline import run_all
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_TABLE, SOURCES
from jobs.settings import Settings
from tests.integration.conftest import S3Stack
from tests.integrity.invariants import REPO
from tests.integrity.lease_harness import wait_for

pytestmark = pytest.mark.integration

HOOK = str(REPO / "tests" / "integrity" / "freeze")
FAST_LEASE = {"LEASE_TTL_SECONDS": "3", "LEASE_HEARTBEAT_SECONDS": "0.5"}
OPTIONS = SeedOptions(generate=True, scale=0.01, start=date(2020, 11, 2), identities=False)


def run(env_file: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", "run", "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAW_SETTLE_SECONDS": "0", **FAST_LEASE, **env},
        cwd=REPO,
    )


def gold_of(settings: Settings) -> pl.DataFrame:
    ctx = RunContext(settings)
    return ctx.lake.scan(ctx.gold(GOLD_TABLE)).collect().sort(list(GOLD.names()))


# The commits of a run over an existing lake: silver prints, taps, pays, then gold.
@pytest.mark.parametrize(
    "commit", ["DeltaTable.create_write_transaction:1", "DeltaTable.create_write_transaction:4"]
)
def test_a_run_frozen_before_a_commit_on_s3_commits_nothing_once_taken_over(
    s3: S3Stack, tmp_path: Path, commit: str
) -> None:
    settings = s3.lake()
    seed_lake(settings, SeedOptions(**{**OPTIONS.__dict__, "days": 8}))
    run_all(RunContext(settings))
    seed_lake(settings, SeedOptions(**{**OPTIONS.__dict__, "days": 1}))  # the next day
    env_file = s3.env_file(settings, tmp_path / "pipeline.env")

    marker = tmp_path / "frozen.txt"
    victim = run(env_file, PYTHONPATH=HOOK, FREEZE_AT_COMMIT=commit, FREEZE_MARKER=str(marker))
    try:
        wait_for(lambda: marker.is_file() or victim.poll() is not None, "the run to reach the commit")
        assert victim.poll() is None, victim.communicate()
        wait_for(lambda: psutil.Process(victim.pid).status() == psutil.STATUS_STOPPED, "the freeze")
        taker = run(env_file, LEASE_WAIT_SECONDS="120")
        err = taker.communicate(timeout=600)[1]
        assert taker.returncode == 0, err[-3000:]
        assert "took over the expired lake lease" in err and "fenced" in err
    finally:
        victim.send_signal(signal.SIGCONT)
    assert victim.wait(timeout=300) == 6, victim.communicate()[1][-3000:]
    assert "was taken over by run" in victim.communicate()[1]
    again = run(env_file)
    assert again.wait(timeout=600) == 0, again.communicate()[1][-3000:]

    ctx = RunContext(settings)
    for source in SOURCES:
        lines = ctx.lake.scan(ctx.bronze(source)).group_by("source_file", "line_number").len().collect()
        assert lines["len"].max() == 1, f"a {source} line is in bronze twice"
    undisturbed = s3.lake()
    seed_lake(undisturbed, SeedOptions(**{**OPTIONS.__dict__, "days": 9}))
    run_all(RunContext(undisturbed))
    assert_frame_equal(gold_of(settings), gold_of(undisturbed))
