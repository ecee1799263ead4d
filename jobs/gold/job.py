"""Gold stage: rebuild exactly the weeks whose inputs changed, in one atomic commit.

Gold's commit metadata records the silver versions it was built from and the lookback settings.
The next run reads the ``days`` of the silver commits made since then, turns them into affected
weeks, recomputes those weeks user bucket by user bucket (bounded memory) and replaces their
partitions in a single transaction. Changed lookback settings or a silver commit without day
metadata trigger a full rebuild; nothing new means no commit at all.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import polars as pl

from jobs.gold.features import build_features, fits_packed
from jobs.gold.windows import affected_weeks, history_range, monday
from jobs.quality.gate import GoldAudit
from jobs.run import RunContext
from jobs.schemas import GOLD, GOLD_PARTITION, GOLD_TABLE, SILVER_PARTITION, SOURCES
from jobs.summary import StageResult

log = logging.getLogger(__name__)


def silver_versions(ctx: RunContext) -> dict[str, int]:
    versions = {s: ctx.lake.version(ctx.silver(s)) for s in SOURCES}
    missing = [s for s, v in versions.items() if v is None]
    if "prints" in missing:
        return {}
    return {s: (-1 if v is None else v) for s, v in versions.items()}


def weeks_with_prints(ctx: RunContext) -> set[date]:
    days = ctx.lake.partitions(ctx.silver("prints"), SILVER_PARTITION)
    return {monday(date.fromisoformat(d)) for d in days}


def last_build(ctx: RunContext) -> dict[str, Any] | None:
    """The newest gold commit made by this stage (its metadata says what it was built from)."""
    return ctx.lake.last_commit_with(ctx.gold(GOLD_TABLE), "silver_versions")


def consumed_versions(build: dict[str, Any]) -> dict[str, int]:
    """Silver version per source that a gold build read."""
    return {k: int(v) for k, v in json.loads(build["silver_versions"]).items()}


def built_with_other_settings(build: dict[str, Any], settings: Any) -> bool:
    """Whether a gold build used other lookback settings than ``settings`` (→ full rebuild)."""
    recorded = (build.get("lookback_mode"), build.get("lookback_weeks"))
    return recorded != (settings.lookback_mode, str(settings.lookback_weeks))


def plan_weeks(ctx: RunContext, current: dict[str, int], *,
               rebuild: list[date] | None = None, full: bool = False) -> tuple[set[date], bool, str]:
    """(weeks to rebuild, whether that is a full rebuild, why)."""
    settings = ctx.settings
    all_weeks = weeks_with_prints(ctx)
    if rebuild:
        weeks, is_full, why = plan_weeks(ctx, current, full=full)
        requested = {monday(w) for w in rebuild} & all_weeks
        return weeks | requested, is_full, f"{len(requested)} week(s) requested; {why}"
    last = last_build(ctx)
    if full or last is None:
        return all_weeks, True, "full build" if full else "first build"
    if built_with_other_settings(last, settings):
        return all_weeks, True, "lookback settings changed"
    consumed = consumed_versions(last)
    days: set[date] = set()
    for source in SOURCES:
        for commit in ctx.lake.history(ctx.silver(source), after=consumed.get(source, -1)):
            if commit.get("operation") in ("OPTIMIZE", "VACUUM START", "VACUUM END"):
                continue
            if "days" not in commit:
                return all_weeks, True, f"silver {source} changed outside the pipeline"
            days.update(date.fromisoformat(d) for d in commit["days"].split(",") if d)
    weeks = affected_weeks(days, n_weeks=settings.lookback_weeks) & all_weeks
    return weeks, False, f"{len(days)} new day(s)"


def max_user_id(ctx: RunContext, current: dict[str, int]) -> int | None:
    """Largest user id in the silver tables, from Delta file statistics (None if unknown)."""
    maxima = [ctx.lake.column_max(ctx.silver(s), "user_id", version=v)
              for s, v in current.items() if v >= 0]
    if not maxima or any(m is None for m in maxima):
        return None
    return max(int(m) for m in maxima)


def bucket_count(ctx: RunContext, prints: pl.LazyFrame) -> int:
    if ctx.settings.gold_buckets:
        return ctx.settings.gold_buckets
    rows = prints.select(pl.len()).collect().item()
    return max(1, math.ceil(rows / ctx.settings.gold_rows_per_bucket))


def write_then_commit(ctx: RunContext, frames: Iterator[pl.DataFrame], *, weeks: list[date],
                      is_full: bool, metadata: dict[str, str]) -> int | None:
    """Write each bucket's frame as Parquet files (Polars' writer), then commit them ONCE.

    The commit replaces the rebuilt weeks' partitions (the whole table for a full build). If
    anything fails first — a bucket, its quality gate, the commit — this run's files are removed
    and the table version is unchanged. A full build with no rows commits nothing.
    """
    lake, uri = ctx.lake, ctx.gold(GOLD_TABLE)
    prefix = f"part-{ctx.run_id}"
    actions: list[dict[str, Any]] = []
    try:
        for b, frame in enumerate(frames):
            if frame.height:
                actions += lake.write_files(uri, frame, schema=GOLD, partition_by=GOLD_PARTITION,
                                            prefix=f"{prefix}-b{b:05d}")
        if not actions and is_full:
            return None
        return lake.commit_files(uri, actions, schema=GOLD, partition_by=GOLD_PARTITION,
                                 partitions=None if is_full else [w.isoformat() for w in weeks],
                                 metadata=metadata)
    except BaseException:
        lake.remove_files(uri, f"{GOLD_PARTITION}=*/{prefix}-*")
        raise


def run_gold(ctx: RunContext, *, rebuild: list[date] | None = None,
             full: bool = False) -> StageResult:
    started = time.perf_counter()
    result = StageResult("gold", skipped=True)
    settings, lake = ctx.settings, ctx.lake
    current = silver_versions(ctx)
    if not current:
        result.note = "no silver prints yet"
        return result
    weeks, is_full, why = plan_weeks(ctx, current, rebuild=rebuild, full=full)
    if not weeks:
        result.note = "nothing new"
        result.seconds = time.perf_counter() - started
        return result

    first, end = history_range(weeks, n_weeks=settings.lookback_weeks)
    in_range = (pl.col("day") >= first) & (pl.col("day") < end)

    def silver(source: str) -> pl.LazyFrame:
        if current[source] < 0:
            from jobs.schemas import SILVER

            return pl.LazyFrame(schema=SILVER[source])
        return lake.scan(ctx.silver(source), version=current[source]).filter(in_range)

    inputs = {s: silver(s) for s in SOURCES}
    buckets = bucket_count(ctx, inputs["prints"])
    packed = fits_packed(sorted(weeks), n_weeks=settings.lookback_weeks,
                         max_user_id=max_user_id(ctx, current))
    counts: list[int] = []
    audit = GoldAudit(ctx, weeks=weeks, buckets=buckets)  # quality hook: write-audit-publish

    def stream() -> Iterator[pl.DataFrame]:
        for b in range(buckets):
            mine = {s: f.filter(pl.col("user_id") % buckets == b) for s, f in inputs.items()}
            frame = build_features(
                prints=mine["prints"], taps=mine["taps"], pays=mine["pays"],
                weeks=sorted(weeks), mode=settings.lookback_mode, n_weeks=settings.lookback_weeks,
                packed=packed,
            ).collect(engine="streaming")
            counts.append(frame.height)
            yield audit.bucket(b, frame, mine)  # quality hook: DataError here → no commit

    week_list = sorted(weeks)
    metadata = {
        "run_id": ctx.run_id,
        "silver_versions": json.dumps(current, sort_keys=True),
        "lookback_mode": settings.lookback_mode,
        "lookback_weeks": str(settings.lookback_weeks),
        "weeks": ",".join(w.isoformat() for w in week_list),
    }
    if settings.engine == "dask":  # one task per bucket on the cluster, one commit here
        from jobs.gold.distributed import run_on_dask

        version, counts = run_on_dask(
            ctx, weeks=week_list, is_full=is_full, current=current, buckets=buckets,
            packed=packed, metadata=metadata, audit=audit,
            bucket_inputs=lambda b: {s: f.filter(pl.col("user_id") % buckets == b)
                                     for s, f in inputs.items()})
    else:
        version = write_then_commit(ctx, stream(), weeks=week_list, is_full=is_full,
                                    metadata=metadata)
    result.skipped = False
    result.rows_out = sum(counts)
    engine = "" if settings.engine == "local" else f" on {settings.engine}"
    result.note = f"{len(week_list)} week(s) rebuilt ({why}), {buckets} bucket(s){engine}"
    if version is not None:
        result.versions[GOLD_TABLE] = version
    result.details = [{"weeks": [w.isoformat() for w in week_list], "full": is_full}]
    audit.finish(result)  # quality hook: record results and the report, summary in details
    result.seconds = time.perf_counter() - started
    return result
