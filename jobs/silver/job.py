"""Silver stage: rebuild every day of silver whose bronze rows changed.

A silver day partition is a pure function of bronze's rows of that day (:func:`to_silver`).
Each run finds the bronze commits silver has not consumed yet, turns them into the days they
touched (the days of new rows, plus the ``days`` a replacing or removing commit recorded) and
overwrites exactly those partitions from one bronze version, in ONE commit per source. The
commit records the bronze version consumed (``bronze_version``) and the days rewritten
(``days``), atomically with its data: a failed run is simply picked up again, a repeated run
writes the same rows (never twice), and gold reads ``days`` to know which weeks to rebuild.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

import polars as pl

from jobs.audit import Audits
from jobs.run import RunContext
from jobs.schemas import MANIFEST, SILVER, SILVER_PARTITION, SOURCES
from jobs.silver.transform import to_silver
from jobs.summary import StageResult

log = logging.getLogger(__name__)

DAY_COLUMN = {"prints": "day", "taps": "day", "pays": "pay_date"}
MAINTENANCE = ("OPTIMIZE", "VACUUM START", "VACUUM END", "CHECKPOINT")


@dataclass(frozen=True)
class Pending:
    """Bronze commits of a source that silver has not consumed."""

    bronze_version: int
    runs: list[str]  # run ids of the rows they added
    recorded_days: set[date]  # days a replacing or removing commit touched
    everything: bool = False  # a commit says nothing about its days: rebuild every day


def pending(ctx: RunContext, source: str) -> Pending | None:
    """What silver has not consumed of bronze ``source`` (None: nothing)."""
    lake = ctx.lake
    bronze_version = lake.version(ctx.bronze(source))
    if bronze_version is None:
        return None
    last = lake.last_commit_with(ctx.silver(source), "bronze_version")
    consumed = int(last["bronze_version"]) if last else -1
    commits = [
        c for c in lake.history(ctx.bronze(source), after=consumed) if c.get("operation") not in MAINTENANCE
    ]
    if not commits:
        return None
    runs: list[str] = []
    days: set[date] = set()
    everything = False
    for c in commits:
        if c.get("operation") == "WRITE" and c.get("run_id") and "removed_run" not in c:
            runs.append(c["run_id"])
        if "days" in c:
            days.update(date.fromisoformat(d) for d in c["days"].split(",") if d)
        elif c.get("operation") != "WRITE" or not c.get("run_id"):
            everything = True  # changed outside the pipeline
    return Pending(bronze_version, list(dict.fromkeys(runs)), days, everything)


def pending_runs(ctx: RunContext, source: str) -> tuple[list[str], int | None]:
    """Bronze run ids not yet in silver, and the bronze version they lead up to."""
    found = pending(ctx, source)
    return ([], None) if found is None else (found.runs, found.bronze_version)


def days_to_rebuild(bronze: pl.LazyFrame, source: str, work: Pending) -> list[date] | None:
    """Sorted days to rewrite (None: every day, a full rebuild)."""
    if work.everything:
        return None
    column = DAY_COLUMN[source]
    new = bronze.filter(pl.col("run_id").is_in(work.runs)).select(pl.col(column).unique())
    days = set(new.collect()[column].to_list()) | work.recorded_days
    return sorted(d for d in days if d is not None)


def run_silver(ctx: RunContext, *, audits: Audits) -> StageResult:
    """Rebuild each source's changed days; ``audits.silver`` sees every batch first."""
    started = time.perf_counter()
    result = StageResult("silver", skipped=True)
    lake = ctx.lake
    audit = audits.silver(ctx)
    # Rows of a bronze run count only once its manifest rows exist (an interrupted run's rows
    # are removed by the next bronze run and never reach silver).
    complete = lake.scan_or_empty(ctx.manifest_uri, MANIFEST).select(pl.col("run_id").unique())
    complete_runs = complete.collect()["run_id"].implode()
    for source in SOURCES:
        work = pending(ctx, source)
        if work is None:
            continue
        bronze = lake.scan(ctx.bronze(source), version=work.bronze_version).filter(
            pl.col("run_id").is_in(complete_runs)
        )
        days = days_to_rebuild(bronze, source, work)
        if days is not None and not days:  # e.g. only rows of no day were removed
            continue
        column = DAY_COLUMN[source]
        if days is not None:
            bronze = bronze.filter(pl.col(column).is_in(pl.Series(days, dtype=pl.Date).implode()))
        rows = to_silver(source, bronze)
        per_day = rows.group_by("day").len().sort("day").collect()  # one pass: days and count
        written = per_day["day"].to_list()
        n_rows = int(per_day["len"].sum())
        predicate = (
            None
            if days is None
            else (f"{SILVER_PARTITION} IN ({', '.join(repr(d.isoformat()) for d in days)})")
        )
        version = lake.write(
            ctx.silver(source),
            # each batch is audited before the writer sees it; a DataError aborts the commit
            audit.gate(source, n_rows, rows.collect_batches(engine="streaming", chunk_size=1_000_000)),
            schema=SILVER[source],
            mode="overwrite",
            partition_by=SILVER_PARTITION,
            predicate=predicate,
            metadata={
                "run_id": ctx.run_id,
                "bronze_version": str(work.bronze_version),
                "bronze_runs": ",".join(work.runs),
                "days": ",".join(d.isoformat() for d in sorted(set(days or written))),
            },
        )
        result.rows_in += n_rows
        result.rows_out += n_rows
        result.skipped = False
        if version is not None:
            result.versions[source] = version
        log.info("silver %s: %d rows over %d day(s)", source, n_rows, len(days or written))
    audit.finish(result)  # records the results; summary in details
    result.seconds = time.perf_counter() - started
    return result
