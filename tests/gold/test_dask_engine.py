"""The Dask engine: gold identical to the local engine, one commit, atomic on failure, idempotent.

A real ``LocalCluster`` with 2 worker processes on loopback runs the bucket tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from jobs import cluster as dask_cluster
from jobs.errors import PipelineError
from jobs.pipeline import run_stage
from jobs.run import RunContext
from tests.conftest import LocalLake
from tests.reference import canonical

distributed = pytest.importorskip("distributed")

START, DAYS, SCALE = date(2020, 11, 2), 21, 0.01


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from jobs.cluster import local_cluster

    with local_cluster() as cluster:
        yield cluster.scheduler_address


def _gold(lake: LocalLake, name: str) -> pl.DataFrame:
    return canonical(lake.table(name, "print_features"))


def _gold_stage(lake: LocalLake, gold: str, **settings: object) -> None:
    ctx = RunContext(lake.settings(lake_gold=str(lake.root / gold), **settings))
    run_stage(ctx, "gold")


def _files_of_run(table: Path, run_id: str) -> list[Path]:
    return list(table.glob(f"week_start=*/part-{run_id}-*"))


@pytest.mark.slow
def test_dask_gold_equals_local_commits_once_is_atomic_and_idempotent(
    lake: LocalLake, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(out_dir=lake.raw, seed=7, scale=SCALE, start=START, days=DAYS)
    local_ctx = lake.context()
    for stage in ("bronze", "silver", "gold"):
        run_stage(local_ctx, stage)
    dask = {"engine": "dask", "dask_scheduler": scheduler, "gold_buckets": 3}

    # first build on Dask creates the table in one commit, equal to the local engine's
    _gold_stage(lake, "gold_dask", **dask)
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))
    table = lake.root / "gold_dask" / "print_features"
    assert lake.version("gold_dask", "print_features") == 0
    first = lake.version("gold_dask", "print_features")

    # a failing bucket: nothing committed, version unchanged, this run's files removed
    ctx = RunContext(lake.settings(lake_gold=str(lake.root / "gold_dask"), **dask))
    with monkeypatch.context() as hook:
        hook.setattr(dask_cluster, "FAIL_TASK", 1)  # the second user bucket's task raises on its worker
        with pytest.raises(PipelineError, match=r"bucket 2 of 3 failed.*nothing was committed"):
            run_stage(ctx, "gold", full=True)
    assert lake.version("gold_dask", "print_features") == first
    assert _files_of_run(table, ctx.run_id) == []
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))

    # a re-run (full rebuild) writes identical rows in one more commit
    rerun = RunContext(lake.settings(lake_gold=str(lake.root / "gold_dask"), **dask))
    run_stage(rerun, "gold", full=True)
    assert lake.version("gold_dask", "print_features") == first + 1
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))

    # nothing new: no commit at all
    _gold_stage(lake, "gold_dask", **dask)
    assert lake.version("gold_dask", "print_features") == first + 1

    # one more day: only the affected weeks are replaced (overwrite with partition filters)
    generate(out_dir=lake.raw, seed=7, scale=SCALE, start=START + timedelta(days=DAYS), days=1)
    for stage in ("bronze", "silver", "gold"):
        run_stage(lake.context(), stage)
    _gold_stage(lake, "gold_dask", **dask)
    assert lake.version("gold_dask", "print_features") == first + 2
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))
    history = pl.read_delta(str(table)).select("week_start").unique().height
    assert history == len({START + timedelta(days=7 * i) for i in range(4)})


def test_jobs_import_without_touching_dask() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jobs.cli, jobs.gold.job, jobs.pipeline; "
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
