"""Silver stage: append the bronze rows of runs silver has not seen yet.

Each silver commit records the bronze version it has consumed (``bronze_version``) and the days
it touched (``days``), atomically with its data: a failed run is simply picked up again, and the
gold stage reads ``days`` to know which weeks to rebuild without scanning data.
"""

from __future__ import annotations

import logging
import time

import polars as pl

from jobs.audit import Audits
from jobs.run import RunContext
from jobs.schemas import SILVER, SILVER_PARTITION, SOURCES
from jobs.silver.transform import to_silver
from jobs.summary import StageResult

log = logging.getLogger(__name__)


def pending_runs(ctx: RunContext, source: str) -> tuple[list[str], int | None]:
    """Bronze run ids not yet in silver, and the bronze version they lead up to."""
    lake = ctx.lake
    bronze_version = lake.version(ctx.bronze(source))
    if bronze_version is None:
        return [], None
    last = lake.last_commit_with(ctx.silver(source), "bronze_version")
    consumed = int(last["bronze_version"]) if last else -1
    commits = lake.history(ctx.bronze(source), after=consumed)
    runs = [c["run_id"] for c in commits if c.get("run_id") and c.get("operation") == "WRITE"]
    return list(dict.fromkeys(runs)), bronze_version


def run_silver(ctx: RunContext, *, audits: Audits) -> StageResult:
    """Append each source's pending bronze runs; ``audits.silver`` sees every batch first."""
    started = time.perf_counter()
    result = StageResult("silver", skipped=True)
    lake = ctx.lake
    audit = audits.silver(ctx)
    for source in SOURCES:
        runs, bronze_version = pending_runs(ctx, source)
        if not runs:
            continue
        bronze = lake.scan(ctx.bronze(source), version=bronze_version)
        rows = to_silver(source, bronze.filter(pl.col("run_id").is_in(runs)))
        per_day = rows.group_by("day").len().sort("day").collect()  # one pass: days and count
        days, n_rows = per_day["day"].to_list(), int(per_day["len"].sum())
        version = lake.write(
            ctx.silver(source),
            # each batch is audited before the writer sees it; a DataError aborts the commit
            audit.gate(source, runs,
                       rows.collect_batches(engine="streaming", chunk_size=1_000_000)),
            schema=SILVER[source],
            partition_by=SILVER_PARTITION,
            metadata={
                "run_id": ctx.run_id,
                "bronze_version": str(bronze_version),
                "bronze_runs": ",".join(runs),
                "days": ",".join(d.isoformat() for d in days),
            },
        )
        result.rows_in += n_rows
        result.rows_out += n_rows
        result.skipped = False
        if version is not None:
            result.versions[source] = version
        log.info("silver %s: %d rows over %d day(s)", source, n_rows, len(days))
    audit.finish(result)  # records the results; summary in details
    result.seconds = time.perf_counter() - started
    return result
