"""Silver stage: rebuild every day of silver whose bronze rows changed.

A silver day partition is a pure function of bronze's rows of that day (:func:`to_silver`).
Each run finds the bronze commits silver has not consumed yet, turns them into the days they
touched (the days of new rows, plus the ``days`` a replacing or removing commit recorded) and
overwrites exactly those partitions from one bronze version, in ONE commit per source. The
commit records the bronze version consumed (``bronze_version``, with that commit's time
``bronze_commit_ts``, so a lost or rewritten bronze commit is noticed) and the days rewritten
(``days``), atomically with its data: a failed run is simply picked up again, a repeated run
writes the same rows (never twice), and gold reads ``days`` to know which weeks to rebuild.

Engines: the local one computes, gates and writes a source's days one after the other (the next
one computed meanwhile); ``ENGINE=dask`` computes one day per task on a cluster
(:mod:`jobs.silver.distributed`). Both compute with :meth:`SilverInput.rows` and commit the
days' files once per source (:func:`~jobs.tables.external.commit_data_files`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date

import polars as pl

from jobs.ahead import read_ahead
from jobs.audit import Audits, SilverAuditor
from jobs.run import RunContext
from jobs.schemas import MANIFEST, SILVER, SILVER_PARTITION, SOURCES
from jobs.silver.transform import to_silver
from jobs.summary import StageResult
from jobs.tables import Lake
from jobs.tables.commits import changes_rows, watermark_broken
from jobs.tables.external import (
    ADDING_OPERATIONS,
    AddActionDict,
    commit_data_files,
    remove_data_files,
    write_data_files,
)

log = logging.getLogger(__name__)

DAY_COLUMN = {"prints": "day", "taps": "day", "pays": "pay_date"}


@dataclass(frozen=True)
class Pending:
    """Bronze commits of a source that silver has not consumed."""

    bronze_version: int
    bronze_commit_ts: int | None  # when that version was committed: its identity
    runs: list[str]  # run ids of the rows they added
    recorded_days: set[date]  # days a replacing or removing commit touched
    everything: bool = False  # rebuild every day: a commit says nothing of its days, or history changed


def pending(ctx: RunContext, source: str) -> Pending | None:
    """What silver has not consumed of bronze ``source`` (None: nothing).

    The watermark is the bronze version silver last consumed AND that commit's timestamp: if
    bronze went back past it (a lost commit) or it was rewritten, silver cannot know what it
    holds, so it is rebuilt whole from bronze (one warning line) rather than trusted."""
    lake = ctx.lake
    bronze_uri = ctx.bronze(source)
    bronze_version = lake.version(bronze_uri)
    if bronze_version is None:
        return None
    last = lake.last_commit_with(ctx.silver(source), "bronze_version")
    consumed = int(last["bronze_version"]) if last else -1
    history = lake.history(bronze_uri, after=consumed - 1)  # the consumed commit, and newer ones
    stamp = history[-1]["timestamp"] if history and history[-1]["version"] == bronze_version else None
    if last is not None:
        changed = watermark_broken(history, consumed, last.get("bronze_commit_ts") or None, bronze_version)
        if changed:
            log.warning(
                "silver %s was built from bronze %s version %d, which %s: rebuilding silver %s from bronze",
                source,
                source,
                consumed,
                changed,
                source,
            )
            return Pending(bronze_version, stamp, [], set(), everything=True)
    commits = [c for c in history if c["version"] > consumed and changes_rows(c)]
    if not commits:
        return None
    runs: list[str] = []
    days: set[date] = set()
    everything = False
    for c in commits:
        if c.get("operation") in ADDING_OPERATIONS and c.get("run_id") and "removed_run" not in c:
            runs.append(c["run_id"])
        if "days" in c:
            days.update(date.fromisoformat(d) for d in c["days"].split(",") if d)
        elif c.get("operation") not in ADDING_OPERATIONS or not c.get("run_id"):
            everything = True  # changed outside the pipeline
    return Pending(bronze_version, stamp, list(dict.fromkeys(runs)), days, everything)


def pending_runs(ctx: RunContext, source: str) -> tuple[list[str], int | None]:
    """Bronze run ids not yet in silver, and the bronze version they lead up to."""
    found = pending(ctx, source)
    return ([], None) if found is None else (found.runs, found.bronze_version)


@dataclass(frozen=True)
class SilverInput:
    """The bronze rows a silver rebuild of one source reads (plain data: travels to workers)."""

    source: str
    bronze_uri: str
    silver_uri: str
    bronze_version: int
    complete_runs: tuple[str, ...]  # bronze runs whose manifest rows exist

    def bronze(self, lake: Lake) -> pl.LazyFrame:
        runs = pl.Series(self.complete_runs, dtype=pl.String).implode()
        return lake.scan(self.bronze_uri, version=self.bronze_version).filter(pl.col("run_id").is_in(runs))

    def rows(self, lake: Lake, days: list[date] | None) -> pl.LazyFrame:
        """Silver rows of ``days`` (None: of every day): the work both engines share."""
        bronze = self.bronze(lake)
        if days is not None:
            wanted = pl.Series(days, dtype=pl.Date).implode()
            bronze = bronze.filter(pl.col(DAY_COLUMN[self.source]).is_in(wanted))
        return to_silver(self.source, bronze)


@dataclass(frozen=True)
class Rebuild:
    """One source's days to rewrite (``days`` None: every day, a full rebuild)."""

    input: SilverInput
    work: Pending
    days: list[date] | None

    @property
    def predicate(self) -> str | None:
        if self.days is None:
            return None
        return f"{SILVER_PARTITION} IN ({', '.join(repr(d.isoformat()) for d in self.days)})"

    def commit(
        self, ctx: RunContext, actions: list[AddActionDict], rows: int, written: list[date]
    ) -> Rebuilt:
        """ONE commit of the days' files (both engines): exactly the rebuilt days replaced, the
        whole table on a full rebuild (which, with no rows at all, commits nothing)."""
        if not actions and self.days is None:
            return Rebuilt(None, 0, [])
        version = commit_data_files(
            ctx.lake,
            self.input.silver_uri,
            actions,
            schema=SILVER[self.input.source],
            partition_by=SILVER_PARTITION,
            partitions=None if self.days is None else [d.isoformat() for d in self.days],
            metadata=self.metadata(ctx.run_id, written),
        )
        return Rebuilt(version, rows, written)

    def metadata(self, run_id: str, written: list[date]) -> dict[str, str]:
        """What the commit records: the bronze version consumed and the days rewritten."""
        return {
            "run_id": run_id,
            "bronze_version": str(self.work.bronze_version),
            "bronze_commit_ts": str(self.work.bronze_commit_ts or ""),
            "bronze_runs": ",".join(self.work.runs),
            "days": ",".join(d.isoformat() for d in sorted(set(self.days or written))),
        }


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild wrote: the new version (None: no commit), rows and days with rows."""

    version: int | None
    rows: int
    days: list[date]


def days_to_rebuild(bronze: pl.LazyFrame, source: str, work: Pending) -> list[date] | None:
    """Sorted days to rewrite (None: every day, a full rebuild)."""
    if work.everything:
        return None
    column = DAY_COLUMN[source]
    new = bronze.filter(pl.col("run_id").is_in(work.runs)).select(pl.col(column).unique())
    days = set(new.collect()[column].to_list()) | work.recorded_days
    return sorted(d for d in days if d is not None)


def plan_rebuilds(ctx: RunContext) -> list[Rebuild]:
    """Per source with unconsumed bronze commits, the days to rewrite."""
    # Rows of a bronze run count only once its manifest rows exist (an interrupted run's rows
    # are removed by the next bronze run and never reach silver).
    complete = ctx.lake.scan_or_empty(ctx.manifest_uri, MANIFEST).select(pl.col("run_id").unique())
    complete_runs = tuple(complete.collect()["run_id"].to_list())
    rebuilds = []
    for source in SOURCES:
        work = pending(ctx, source)
        if work is None:
            continue
        found = SilverInput(
            source, ctx.bronze(source), ctx.silver(source), work.bronze_version, complete_runs
        )
        days = days_to_rebuild(found.bronze(ctx.lake), source, work)
        if days is not None and not days:  # e.g. only rows of no day were removed
            continue
        rebuilds.append(Rebuild(found, work, days))
    return rebuilds


def rebuild_locally(ctx: RunContext, rebuild: Rebuild, audit: SilverAuditor) -> Rebuilt:
    """The local engine: day by day, every day's files committed ONCE for the source.

    Each day's rows are computed and written as uncommitted Parquet files of that day's
    partition on read-ahead threads while this thread gates the day before; the commit then
    replaces exactly the rebuilt days (the whole table on a full rebuild). Memory holds about
    three days (deltalake's partitioned writer kept every day's file open and held a whole
    source: 4.9 GB at scale 100). A failure removes the run's files before it is raised;
    nothing was committed.
    """
    source, found, lake = rebuild.input.source, rebuild.input, ctx.lake
    rows = found.rows(lake, rebuild.days)
    per_day = rows.group_by("day").len().sort("day").collect()  # one pass: days and count
    written = per_day["day"].to_list()
    n_rows = int(per_day["len"].sum())
    prefix = f"silver-{ctx.run_id}-{source}"
    actions: list[AddActionDict] = []

    def day_files(item: tuple[int, date]) -> tuple[pl.DataFrame, list[AddActionDict]]:
        """One day's rows (one scan of the table, pruned to the day's row groups), written as
        uncommitted files of its partition on a read-ahead thread."""
        index, day = item
        frame = rows.filter(pl.col("day") == day).collect(engine="streaming")
        return frame, write_data_files(
            lake,
            found.silver_uri,
            frame,
            schema=SILVER[source],
            partition_by=SILVER_PARTITION,
            prefix=f"{prefix}-d{index:05d}",
        )

    days = read_ahead(day_files, list(enumerate(written)), workers=2)

    def frames() -> Iterator[pl.DataFrame]:
        for _, (frame, files) in days:
            actions.extend(files)
            yield frame

    try:
        with closing(days):  # on any failure the threads are done before the files are removed
            for _ in audit.gate(source, n_rows, frames()):  # a DataError aborts the commit
                pass
        return rebuild.commit(ctx, actions, n_rows, written)
    except BaseException:
        try:
            remove_data_files(lake, found.silver_uri, f"{SILVER_PARTITION}=*/{prefix}-*")
        except Exception as exc:  # the failure itself matters more; VACUUM removes what is left
            log.warning("could not remove run %s's uncommitted silver files: %s", ctx.run_id, exc)
        raise


RebuildEngine = Callable[[RunContext, list[Rebuild], SilverAuditor], Iterator[tuple[Rebuild, Rebuilt]]]
"""How the planned rebuilds are computed and committed, in order: :func:`rebuild_all_locally`
here, or :func:`jobs.silver.distributed.rebuild_on_dask` (chosen by
:func:`jobs.pipeline.engines` from ``ENGINE``)."""


def rebuild_all_locally(
    ctx: RunContext, rebuilds: list[Rebuild], audit: SilverAuditor
) -> Iterator[tuple[Rebuild, Rebuilt]]:
    return ((r, rebuild_locally(ctx, r, audit)) for r in rebuilds)


def run_silver(
    ctx: RunContext, *, audits: Audits, engine: RebuildEngine = rebuild_all_locally
) -> StageResult:
    """Rebuild each source's changed days; ``audits.silver`` sees every batch first."""
    started = time.perf_counter()
    result = StageResult("silver", skipped=True)
    audit = audits.silver(ctx)
    rebuilds = plan_rebuilds(ctx)
    done = engine(ctx, rebuilds, audit) if rebuilds else iter(())
    for rebuild, rebuilt in done:
        source = rebuild.input.source
        result.rows_in += rebuilt.rows
        result.rows_out += rebuilt.rows
        result.skipped = False
        if rebuilt.version is not None:
            result.versions[source] = rebuilt.version
        log.info("silver %s: %d rows over %d day(s)", source, rebuilt.rows, len(rebuild.days or rebuilt.days))
    audit.finish(result)  # records the results; summary in details
    result.seconds = time.perf_counter() - started
    return result
