"""Bronze repairs: drop add actions of missing data files, and hand lost raw files back to the
next run (their remaining rows removed, a manifest row ``lost``)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from jobs.bronze.history import DAY_COLUMN, days_of, sql_list
from jobs.doctor.tables import TableState
from jobs.run import RunContext
from jobs.schemas import BRONZE, MANIFEST, QUARANTINE, SOURCES
from jobs.tables.external import commit_data_files


def remove_missing_files(ctx: RunContext, state: TableState) -> str:
    """One commit removing the missing files; it records the days their statistics span."""
    missing = state.missing_files
    source = state.name.split("/", 1)[1]
    days: list[str] = []
    if source in SOURCES and f"min.{DAY_COLUMN[source]}" in missing.columns:
        low, high = pl.col(f"min.{DAY_COLUMN[source]}"), pl.col(f"max.{DAY_COLUMN[source]}")
        spans = missing.select(
            pl.date_ranges(low.cast(pl.Date), high.cast(pl.Date)).explode().unique().sort()
        )
        days = [d.isoformat() for d in spans.to_series().drop_nulls().to_list()]
    removes = [
        {"path": p, "size": s, "partition_values": {}}
        for p, s in missing.select("path", "size_bytes").iter_rows()
    ]
    schema = {**BRONZE, "quarantine": QUARANTINE, "_manifest": MANIFEST}[source]
    metadata = {
        "run_id": ctx.run_id,
        "removed_run": ctx.run_id,
        "why": "doctor: data files missing",
        "days": ",".join(days),
    }
    commit_data_files(
        ctx.lake,
        state.uri,
        [],
        schema=schema,
        partition_by=None,
        partitions=None,
        metadata=metadata,
        append=True,
        removes=removes,
    )
    spanned = f" (rows of days {', '.join(days)})" if days else ""
    return f"{state.name}: removed {len(removes)} missing data file(s) from the table{spanned}"


def reingest(ctx: RunContext, bad: pl.DataFrame) -> list[str]:
    """Remove the remaining rows of raw files bronze lost rows of; mark them ``lost``."""
    if bad.is_empty():
        return []
    todo = bad.filter(pl.col("raw_exists"))
    why = "doctor: rows lost, the file is taken in again"
    for source in SOURCES:
        paths = todo.filter(pl.col("source") == source)["path"].to_list()
        if paths:
            days = days_of(ctx, source, pl.col("source_file").is_in(paths))
            predicate = f"source_file IN ({sql_list(paths)})"
            ctx.lake.delete(
                ctx.bronze(source),
                predicate,
                metadata={"run_id": ctx.run_id, "why": why, "days": ",".join(days)},
            )
    paths = todo["path"].to_list()
    if not paths:
        return []
    ctx.lake.delete(
        ctx.quarantine_uri, f"source_file IN ({sql_list(paths)})", metadata={"run_id": ctx.run_id, "why": why}
    )
    manifest = ctx.lake.scan_table(ctx.lake.open(ctx.manifest_uri)).filter(pl.col("path").is_in(paths))
    lost = (
        manifest.sort("ingested_at", maintain_order=True)
        .unique("path", keep="last", maintain_order=True)
        .with_columns(
            pl.lit(0, pl.Int64).alias("bronze_rows"),
            pl.lit(0, pl.Int64).alias("quarantined_rows"),
            pl.lit("lost").alias("status"),
            pl.lit("rows lost from bronze (doctor --repair): the next run takes the file in again").alias(
                "reason"
            ),
            pl.lit(ctx.run_id).alias("run_id"),
            pl.lit(datetime.now(UTC)).alias("ingested_at"),
        )
    )
    ctx.lake.write(
        ctx.manifest_uri, lost, schema=MANIFEST, metadata={"run_id": ctx.run_id}, schema_mode="merge"
    )
    return [
        f"bronze: the remaining rows of {len(paths)} raw file(s) removed (manifest status lost); "
        f"the next run takes them in again ({', '.join(paths[:3])}{', …' if len(paths) > 3 else ''})"
    ]


def record_bronze_as_is(ctx: RunContext) -> str:
    """An empty manifest commit of this repair: the last run's ``bronze_commits`` (naming
    commits that are gone) is no longer the newest record, once every file's rows add up."""
    commit_data_files(
        ctx.lake,
        ctx.manifest_uri,
        [],
        schema=MANIFEST,
        partition_by=None,
        partitions=None,
        metadata={"run_id": ctx.run_id, "why": "doctor: bronze history lost, its rows add up"},
        append=True,
    )
    return "bronze/_manifest: recorded that every raw file's rows add up after bronze lost commits"
