"""Gold on a Dask distributed cluster: one Polars task per user bucket, ONE Delta commit.

``ENGINE=dask`` (``--engine dask``) runs the same per-bucket computation as the local engine,
:func:`jobs.gold.features.build_features` on the silver rows of the users with
``user_id % buckets == b``, as one task per bucket on the cluster at ``DASK_SCHEDULER`` (or on a
2-worker ``LocalCluster`` on 127.0.0.1 when no scheduler is given). Each task writes its rows as
Parquet files straight into the gold table's directory (one file per week partition, named
``part-<run id>-b<bucket>-…``) and returns their add actions; nothing is visible yet. The driver
audits each bucket (the quality gate reads the bucket's files back), then commits every file in
ONE Delta transaction: an overwrite of the rebuilt weeks' partitions (or of the whole table, or a
new table).

If any bucket fails, the driver waits for the other tasks, deletes every file of this run
(``part-<run id>-*``) and raises: no commit, the table version is unchanged. Files of a driver
that died before cleaning up are never referenced by the log; ``VACUUM`` (``vacuum(full=True)``)
removes them. Re-running rebuilds the same weeks with the same rows (the commit replaces their
partitions), so a re-run is idempotent.

Silver stays on the local engine: it is one streaming pass per source, partitioned by day, with
bounded memory; splitting it by user would add a shuffle for no gain.

Dask is imported lazily: ``jobs`` works without it installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from jobs.errors import PipelineError
from jobs.gold.features import build_features
from jobs.gold.windows import history_range
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_PARTITION, GOLD_TABLE, SILVER, SOURCES
from jobs.settings import Settings
from jobs.storage import Storage, join
from jobs.tables import Lake

log = logging.getLogger(__name__)

WORKER_ENV = {"POLARS_MAX_THREADS": "1"}  # one Polars thread per single-threaded Dask worker


@dataclass(frozen=True)
class BucketJob:
    """Everything a worker needs to build one bucket (picklable; settings carry credentials)."""

    settings: Settings
    silver_versions: Mapping[str, int]
    weeks: tuple[date, ...]
    buckets: int
    packed: bool
    prefix: str  # file name prefix of this run: part-<run id>

    def inputs(self, lake: Lake, bucket: int) -> dict[str, pl.LazyFrame]:
        first, end = history_range(self.weeks, n_weeks=self.settings.lookback_weeks)
        mine = (pl.col("day") >= first) & (pl.col("day") < end) & (
            pl.col("user_id") % self.buckets == bucket)
        frames = {}
        for source in SOURCES:
            version = self.silver_versions.get(source, -1)
            if version < 0:
                frames[source] = pl.LazyFrame(schema=SILVER[source])
            else:
                uri = join(self.settings.lake_silver, source)
                frames[source] = lake.scan(uri, version=version).filter(mine)
        return frames


def build_bucket(job: BucketJob, bucket: int) -> list[dict[str, Any]]:
    """Worker task: compute one user bucket and write its files; returns their add actions."""
    if bucket == job.settings.dask_fail_bucket:
        raise RuntimeError(f"injected failure in user bucket {bucket} (DASK_FAIL_BUCKET)")
    lake = Lake(Storage(job.settings))
    inputs = job.inputs(lake, bucket)
    s = job.settings
    frame = build_features(prints=inputs["prints"], taps=inputs["taps"], pays=inputs["pays"],
                           weeks=list(job.weeks), mode=s.lookback_mode, n_weeks=s.lookback_weeks,
                           packed=job.packed).collect(engine="streaming")
    return lake.write_files(join(s.lake_gold, GOLD_TABLE), frame, schema=GOLD,
                            partition_by=GOLD_PARTITION, prefix=f"{job.prefix}-b{bucket:05d}")


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
            raise PipelineError(f"cannot reach the Dask scheduler at {settings.dask_scheduler}: "
                                f"{exc}; check DASK_SCHEDULER and that the cluster runs") from exc
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, env=WORKER_ENV)
    return Client(cluster), cluster


def _read_back(lake: Lake, uri: str, actions: list[dict[str, Any]]) -> pl.DataFrame:
    """A bucket's rows as written (for the quality gate), from its uncommitted files."""
    storage = lake.storage
    root = uri.rstrip("/")
    frames = [
        pl.read_parquet(f"{root}/{a['path']}", storage_options=storage.polars_options(uri))
        .with_columns(pl.lit(date.fromisoformat(a["partition_values"][GOLD_PARTITION]))
                      .alias(GOLD_PARTITION))
        for a in actions
    ]
    return pl.concat(frames, how="diagonal") if frames else pl.DataFrame(schema=GOLD)


def run_on_dask(ctx: RunContext, *, weeks: list[date], is_full: bool,
                current: Mapping[str, int], buckets: int, packed: bool,
                metadata: Mapping[str, str], audit: Any,
                bucket_inputs: Callable[[int], Mapping[str, pl.LazyFrame]]) -> tuple[int, list[int]]:
    """Build every bucket on the cluster, audit, commit once; returns (version, rows per bucket)."""
    settings, lake = ctx.settings, ctx.lake
    uri = ctx.gold(GOLD_TABLE)
    prefix = f"part-{ctx.run_id}"
    job = BucketJob(settings, dict(current), tuple(weeks), buckets, packed, prefix)
    before = lake.version(uri)

    def clean_up() -> int:
        removed = lake.remove_files(uri, f"{GOLD_PARTITION}=*/{prefix}-*")
        log.info("removed %d uncommitted file(s) of run %s", removed, ctx.run_id)
        return removed

    from distributed import wait

    client, cluster = _client(settings)
    try:
        futures = client.map(build_bucket, [job] * buckets, list(range(buckets)), pure=False)
        wait(futures)  # every task ends before cleaning up: none writes after it
        failed = [(b, f) for b, f in enumerate(futures) if f.status != "finished"]
        if failed:
            b, future = failed[0]
            error = future.exception() if future.status == "error" else future.status
            removed = clean_up()
            raise PipelineError(
                f"gold on Dask: user bucket {b + 1} of {buckets} failed ({error}); nothing was "
                f"committed — gold {GOLD_TABLE} stays at version {before} ({removed} "
                "uncommitted file(s) removed)")
        per_bucket: list[list[dict[str, Any]]] = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    try:
        if getattr(audit, "audits_frames", True):
            for b, actions in enumerate(per_bucket):
                audit.bucket(b, _read_back(lake, uri, actions), bucket_inputs(b))
        actions = [a for bucket in per_bucket for a in bucket]
        partitions = None if is_full else [w.isoformat() for w in weeks]
        version = lake.commit_files(uri, actions, schema=GOLD, partition_by=GOLD_PARTITION,
                                    partitions=partitions, metadata=metadata)
    except BaseException:
        clean_up()
        raise
    return version, [sum(a["rows"] for a in bucket) for bucket in per_bucket]
