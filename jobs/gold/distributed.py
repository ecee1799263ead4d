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
from typing import Any

import polars as pl

from jobs.audit import GoldAuditor
from jobs.errors import PipelineError
from jobs.gold.buckets import GoldBuild, compute_bucket, write_bucket
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_PARTITION
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.tables import Lake
from jobs.tables.external import AddActionDict

log = logging.getLogger(__name__)

WORKER_ENV = {"POLARS_MAX_THREADS": "1"}  # one Polars thread per single-threaded Dask worker


def bucket_task(settings: Settings, build: GoldBuild, bucket: int) -> list[AddActionDict]:
    """Worker task: compute one user bucket and write its files; returns their add actions."""
    if bucket == settings.dask_fail_bucket:
        raise RuntimeError(f"injected failure in user bucket {bucket} (DASK_FAIL_BUCKET)")
    lake = Lake(Storage(settings))
    frame, _ = compute_bucket(build, lake, bucket)
    return write_bucket(build, lake, bucket, frame)


def _client(settings: Settings) -> tuple[Any, Any]:
    """(client, cluster-to-close-or-None) for DASK_SCHEDULER, or a 2-worker LocalCluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is in the lock
        raise PipelineError("ENGINE=dask needs dask[distributed] installed") from exc
    if settings.dask_scheduler:
        try:
            return Client(settings.dask_scheduler, timeout="10s"), None
        except OSError as exc:
            raise PipelineError(
                f"cannot reach the Dask scheduler at {settings.dask_scheduler}: "
                f"{exc}; check DASK_SCHEDULER and that the cluster runs"
            ) from exc
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        env=WORKER_ENV,
    )
    return Client(cluster), cluster


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
    return pl.concat(frames, how="diagonal") if frames else pl.DataFrame(schema=GOLD)


def build_on_dask(ctx: RunContext, build: GoldBuild, audit: GoldAuditor) -> list[list[AddActionDict]]:
    """Every bucket as a task on the cluster, audited here; add actions per bucket."""
    from distributed import wait

    # Workers get this run's pipeline keys as resolved here (frozen), and no other identity's.
    worker_settings = ctx.storage.for_workers()
    client, cluster = _client(ctx.settings)
    try:
        futures = client.map(
            bucket_task,
            [worker_settings] * build.buckets,
            [build] * build.buckets,
            list(range(build.buckets)),
            pure=False,
        )
        wait(futures)  # every task ends before anyone cleans up: none writes after that
        failed = [(b, f) for b, f in enumerate(futures) if f.status != "finished"]
        if failed:
            b, future = failed[0]
            error = future.exception() if future.status == "error" else future.status
            version = ctx.lake.version(build.uri)
            raise PipelineError(
                f"gold on Dask: user bucket {b + 1} of {build.buckets} failed ({error}); nothing "
                f"was committed — gold stays at version {version} and this run's files are removed"
            )
        per_bucket: list[list[AddActionDict]] = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if audit.reads_frames:
        for b, actions in enumerate(per_bucket):
            audit.bucket(b, read_back(ctx.lake, build, actions), build.inputs(ctx.lake, b))
    return per_bucket
