"""Silver on a Dask cluster: one task per day to rebuild, still ONE commit per source.

With ``ENGINE=dask`` every day silver rewrites this run (all sources at once) is one task: it
computes the day's rows exactly as the local engine does (:meth:`SilverInput.rows
<jobs.silver.job.SilverInput.rows>`) and writes them as uncommitted Parquet files of the day's
partition. Once EVERY task has ended the driver, source by source, passes the rows read back
through the silver gate (the suite and the count reconciled with bronze) and commits once,
replacing exactly the rebuilt days (the whole table on a full rebuild), under the lake lease and
with the local engine's commit metadata. A failed task fails the run before any commit, and
every file of the run is removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date

import polars as pl

from jobs.audit import SilverAuditor
from jobs.errors import PipelineError
from jobs.run import RunContext
from jobs.schemas import SILVER, SILVER_PARTITION
from jobs.settings import Settings
from jobs.silver.job import DAY_COLUMN, Rebuild, Rebuilt, SilverInput
from jobs.storage import Storage
from jobs.tables import Lake
from jobs.tables.external import AddActionDict, remove_data_files, write_data_files

log = logging.getLogger(__name__)

Day = tuple[int, list[AddActionDict]]  # rows written, their files


def day_task(settings: Settings, found: SilverInput, day: date, run_id: str, index: int) -> Day:
    """Worker task: one day's silver rows written as uncommitted files; (rows, add actions)."""
    lake = Lake(Storage(settings))
    frame = found.rows(lake, [day]).collect(engine="streaming")
    if not frame.height:
        return 0, []
    prefix = f"silver-{run_id}-t{index:06d}"
    schema = SILVER[found.source]
    return frame.height, write_data_files(
        lake, found.silver_uri, frame, schema=schema, partition_by=SILVER_PARTITION, prefix=prefix
    )


def every_day(lake: Lake, found: SilverInput) -> list[date]:
    """The days of a full rebuild: every day bronze has rows of."""
    column = DAY_COLUMN[found.source]
    days = found.bronze(lake).select(pl.col(column).unique()).collect()[column].to_list()
    return sorted(d for d in days if d is not None)


def read_back(
    lake: Lake, found: SilverInput, day: date, actions: list[AddActionDict]
) -> Iterator[pl.DataFrame]:
    """A day's rows as a worker wrote them (the partition column is in the path, not the file)."""
    root, options = found.silver_uri.rstrip("/"), lake.storage.polars_options(found.silver_uri)
    columns = list(SILVER[found.source])
    for a in actions:
        frame = pl.read_parquet(f"{root}/{a['path']}", storage_options=options)
        yield frame.with_columns(pl.lit(day).alias(SILVER_PARTITION)).select(columns)


def rebuild_on_dask(
    ctx: RunContext, rebuilds: list[Rebuild], audit: SilverAuditor
) -> Iterator[tuple[Rebuild, Rebuilt]]:
    """Every day of every rebuild as a task; then one gated commit per source, in order."""
    from jobs.cluster import TaskFailed, run_tasks

    lake = ctx.lake
    days = [r.days if r.days is not None else every_day(lake, r.input) for r in rebuilds]
    tasks = [(r, d) for r, ds in zip(rebuilds, days, strict=True) for d in ds]
    n = len(tasks)
    uncommitted = {r.input.silver_uri for r in rebuilds}
    worker_settings = ctx.storage.for_workers()  # this run's pipeline keys only, frozen
    try:
        started = time.perf_counter()
        with run_tasks(
            ctx.settings,
            day_task,
            [worker_settings] * n,
            [r.input for r, _ in tasks],
            [d for _, d in tasks],
            [ctx.run_id] * n,
            list(range(n)),
        ) as found:
            log.info("silver on Dask: %d day task(s) in %.1fs", n, time.perf_counter() - started)
            for rebuild, its_days in zip(rebuilds, days, strict=True):
                mine = [next(found) for _ in its_days]
                yield rebuild, commit_rebuild(ctx, rebuild, its_days, mine, audit)
                uncommitted.discard(rebuild.input.silver_uri)
    except TaskFailed as failed:
        rebuild, day = tasks[failed.index]
        raise PipelineError(
            f"silver on Dask: {rebuild.input.source} day {day} (task {failed.index + 1} of {n}) "
            f"failed ({failed.error}); nothing was committed — no silver table changed and "
            "this run's files are removed"
        ) from None
    finally:
        for uri in sorted(uncommitted):
            removed = remove_data_files(lake, uri, f"{SILVER_PARTITION}=*/silver-{ctx.run_id}-*")
            log.info("removed %d uncommitted silver file(s) of run %s in %s", removed, ctx.run_id, uri)


def commit_rebuild(
    ctx: RunContext, rebuild: Rebuild, days: list[date], found: list[Day], audit: SilverAuditor
) -> Rebuilt:
    """Gate a source's rows (read back) and commit its days' files ONCE."""
    source, lake = rebuild.input.source, ctx.lake
    n_rows = sum(rows for rows, _ in found)
    written = [d for d, (rows, _) in zip(days, found, strict=True) if rows]

    def batches() -> Iterator[pl.DataFrame]:
        for day, (_, actions) in zip(days, found, strict=True):
            yield from read_back(lake, rebuild.input, day, actions)

    for _ in audit.gate(source, n_rows, batches()):  # a DataError aborts the commit
        pass
    return rebuild.commit(ctx, [a for _, its in found for a in its], n_rows, written)
