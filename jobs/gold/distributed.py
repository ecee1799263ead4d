"""Gold on a Dask distributed cluster: one task per user bucket, ONE Delta commit.

``ENGINE=dask`` (``--engine dask``) runs the buckets of a :class:`~jobs.gold.buckets.GoldBuild`
as one task each on the cluster at ``DASK_SCHEDULER`` (or on a 2-worker ``LocalCluster`` on
127.0.0.1 when no scheduler is given). A task computes its bucket and writes its files exactly as
the local engine does (:func:`~jobs.gold.buckets.compute_bucket`,
:func:`~jobs.gold.buckets.write_bucket`) and returns their add actions. The driver waits for
every task, audits each bucket by reading its files back, and the stage commits once
(:func:`jobs.gold.job.run_gold`). If any bucket fails, the driver waits for the other tasks (none
writes after that) and raises; the stage then removes every file of the build.

Dask is imported lazily: ``jobs`` works without it installed.
"""

from __future__ import annotations

import logging
from datetime import date

import polars as pl

from jobs.audit import GoldAuditor
from jobs.errors import PipelineError
from jobs.gold.buckets import GoldBuild, compute_bucket, write_bucket
from jobs.run import RunContext
from jobs.schemas import GOLD_PARTITION
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.tables import Lake
from jobs.tables.external import AddActionDict

log = logging.getLogger(__name__)


def bucket_task(settings: Settings, build: GoldBuild, bucket: int) -> list[AddActionDict]:
    """Worker task: compute one user bucket and write its files; returns their add actions."""
    lake = Lake(Storage(settings))
    frame, _ = compute_bucket(build, lake, bucket)
    return write_bucket(build, lake, bucket, frame)


def read_back(lake: Lake, build: GoldBuild, actions: list[AddActionDict]) -> pl.DataFrame:
    """A bucket's rows as written (for the audit), from its uncommitted files."""
    root = build.uri.rstrip("/")
    options = lake.storage.polars_options(build.uri)
    frames = [
        pl.read_parquet(f"{root}/{a['path']}", storage_options=options).with_columns(
            pl.lit(date.fromisoformat(a["partition_values"][GOLD_PARTITION])).alias(GOLD_PARTITION)
        )
        for a in actions
    ]
    return pl.concat(frames, how="diagonal") if frames else pl.DataFrame(schema=build.schema)


def build_on_dask(ctx: RunContext, build: GoldBuild, audit: GoldAuditor) -> list[list[AddActionDict]]:
    """Every bucket as a task on the cluster, audited here; add actions per bucket."""
    from jobs.cluster import TaskFailed, run_tasks

    # Workers get this run's pipeline keys as resolved here (frozen), and no other identity's.
    worker_settings = ctx.storage.for_workers()
    buckets = list(range(build.buckets))
    try:
        # run_tasks waits for every task before anyone cleans up: none writes after that.
        with run_tasks(
            ctx.settings, bucket_task, [worker_settings] * build.buckets, [build] * build.buckets, buckets
        ) as results:
            per_bucket: list[list[AddActionDict]] = list(results)
    except TaskFailed as failed:
        version = ctx.lake.version(build.uri)
        raise PipelineError(
            f"gold on Dask: user bucket {failed.index + 1} of {build.buckets} failed ({failed.error}); "
            f"nothing was committed — gold stays at version {version} and this run's files are removed"
        ) from None
    if audit.reads_frames:
        for b, actions in enumerate(per_bucket):
            audit.bucket(b, read_back(ctx.lake, build, actions), build.inputs(ctx.lake, b))
    return per_bucket
