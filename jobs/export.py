"""Export: the latest week of gold as ``final.parquet`` and ``final.csv`` (the original deliverable).

Written to ``LAKE_EXPORT`` (default ``<LAKE_GOLD>/export``) together with ``_export.json``, which
records the gold version exported; when gold has not changed the export is skipped. Each file
is written under a temporary name and moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import time
from datetime import date

import polars as pl

from jobs.run import RunContext
from jobs.schemas import GOLD_PARTITION, GOLD_TABLE
from jobs.storage import join
from jobs.summary import StageResult


def latest_week(gold: pl.LazyFrame, weeks: list[str]) -> pl.LazyFrame:
    """Rows of the most recent of ``weeks`` (gold's ``week_start`` partitions), sorted (pure).

    The week comes from the Delta log, not from the rows: a filter on one partition value reads
    only that week's files (the max over the rows read all of gold: 4 GB at scale 100)."""
    if not weeks:
        return gold.head(0)
    week = date.fromisoformat(max(weeks)[:10])
    return gold.filter(pl.col(GOLD_PARTITION) == week).sort("day", "user_id", "value_prop", "position")


def read_marker(ctx: RunContext) -> dict[str, object]:
    """What the last export wrote (``gold_version``, ``week_start``…), {} before the first."""
    payload = ctx.lake.read_file(join(ctx.settings.export_uri, "_export.json"))
    return json.loads(payload) if payload else {}


def run_export(ctx: RunContext) -> StageResult:
    started = time.perf_counter()
    result = StageResult("export", skipped=True)
    gold_uri = ctx.gold(GOLD_TABLE)
    version = ctx.lake.version(gold_uri)
    if version is None:
        result.note = "no gold table yet"
        return result
    if read_marker(ctx).get("gold_version") == version:
        result.note = "gold unchanged"
        return result
    weeks = ctx.lake.partitions(gold_uri, GOLD_PARTITION)
    frame = latest_week(ctx.lake.scan(gold_uri, version=version), weeks).collect()
    parquet, csv = io.BytesIO(), io.BytesIO()
    frame.write_parquet(parquet)
    frame.write_csv(csv)
    base = ctx.settings.export_uri
    ctx.lake.put_file(join(base, "final.parquet"), parquet.getvalue(), tag=ctx.run_id)
    ctx.lake.put_file(join(base, "final.csv"), csv.getvalue(), tag=ctx.run_id)
    week = frame[GOLD_PARTITION][0].isoformat() if frame.height else None
    marker = {"gold_version": version, "week_start": week, "rows": frame.height, "run_id": ctx.run_id}
    ctx.lake.put_file(join(base, "_export.json"), json.dumps(marker, indent=2).encode(), tag=ctx.run_id)
    result.skipped = False
    result.rows_out = frame.height
    result.files = 2
    result.note = f"week {week} → {base}"
    result.seconds = time.perf_counter() - started
    return result
