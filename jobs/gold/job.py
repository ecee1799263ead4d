"""Gold stage: rebuild exactly the weeks whose inputs changed, in one atomic commit.

Gold's commit metadata records the silver versions it was built from (with their commit times,
so a lost or rewritten silver commit forces a full rebuild) and the lookback settings.
The next run reads the ``days`` of the silver commits made since then, turns them into affected
weeks (plan), recomputes those weeks user bucket by user bucket with bounded memory (compute,
:mod:`jobs.gold.buckets`) and replaces their partitions in a single transaction (commit).
Changed lookback settings or a silver commit without day metadata trigger a full rebuild;
nothing new means no commit at all.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import polars as pl

from jobs.audit import Audits, GoldAuditor
from jobs.gold.buckets import (
    GoldBuild,
    commit_build,
    compute_bucket,
    remove_build_files,
    write_bucket,
)
from jobs.gold.features import fits_packed
from jobs.options import format_windows
from jobs.run import RunContext
from jobs.schemas import GOLD_PARTITION, GOLD_TABLE, SILVER_PARTITION, SOURCES
from jobs.settings import Settings
from jobs.summary import StageResult
from jobs.tables import Lake
from jobs.tables.commits import changes_rows, watermark_broken
from jobs.tables.external import AddActionDict
from jobs.weeks import affected_weeks, monday, week_start

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


def built_with_other_settings(build: dict[str, Any], settings: Settings) -> bool:
    """Whether a gold build used other lookback settings than ``settings`` (→ full rebuild):
    another mode, or other windows (``lookback_weeks`` records them as ``LOOKBACK_WEEKS``
    spells them, ``3`` or ``3,1,4``: another order is another primary window, so other
    columns)."""
    recorded = (build.get("lookback_mode"), build.get("lookback_weeks"))
    return recorded != (settings.lookback_mode, format_windows(settings.lookback_weeks))


def silver_days_since(
    ctx: RunContext, last: dict[str, Any], current: dict[str, int]
) -> dict[str, set[date]] | str:
    """Per source, the silver days committed since gold build ``last`` read them; or why gold
    must be rebuilt whole (a lost or rewritten silver commit, a commit without ``days``)."""
    consumed = consumed_versions(last)
    stamps = json.loads(last.get("silver_commit_ts") or "{}")
    per_source: dict[str, set[date]] = {}
    for source in SOURCES:
        days = per_source.setdefault(source, set())
        version = consumed.get(source, -1)
        history = ctx.lake.history(ctx.silver(source), after=version - 1)
        changed = watermark_broken(history, version, stamps.get(source), current.get(source, -1))
        if version >= 0 and changed:
            log.warning("gold was built from silver %s version %d, which %s", source, version, changed)
            return f"silver {source} version {version} {changed}"
        for commit in history:
            if commit["version"] <= version or not changes_rows(commit):
                continue
            if "days" not in commit:
                return f"silver {source} changed outside the pipeline"
            days.update(date.fromisoformat(d) for d in commit["days"].split(",") if d)
    return per_source


def plan_weeks(
    ctx: RunContext, current: dict[str, int], *, rebuild: list[date] | None = None, full: bool = False
) -> tuple[set[date], bool, str]:
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
    per_source = silver_days_since(ctx, last, current)
    if isinstance(per_source, str):
        return all_weeks, True, per_source
    days = set().union(*per_source.values())
    # Weeks that still have prints, and gold weeks whose prints went away (a corrected file)
    published = {
        date.fromisoformat(w[:10]) for w in ctx.lake.partitions(ctx.gold(GOLD_TABLE), GOLD_PARTITION)
    }
    # a new day reaches the prints of the widest window after it
    weeks = affected_weeks(days, n_weeks=max(settings.lookback_weeks)) & (all_weeks | published)
    return weeks, False, f"{len(days)} new day(s)"


def max_user_id(ctx: RunContext, current: dict[str, int]) -> int | None:
    """Largest user id in the silver tables, from Delta file statistics (None if unknown)."""
    maxima = [ctx.lake.column_max(ctx.silver(s), "user_id", version=v) for s, v in current.items() if v >= 0]
    if not maxima or any(m is None for m in maxima):
        return None
    return max(int(m) for m in maxima)


HISTORY_WEIGHT = 8
"""A print of the rebuilt weeks costs a bucket about as much memory as ``HISTORY_WEIGHT`` prints
of their lookback history (measured at scale 100, 2026-12-07: a full build's buckets of 5M
prints peak at 2.7 GB; a one-week rebuild reading 41M history prints, 3.4M of them rebuilt, at
1.9 GB in one bucket, 1.4 GB in two)."""


def bucket_count(settings: Settings, build: GoldBuild, lake: Lake) -> int:
    """GOLD_BUCKETS, or enough buckets for about GOLD_ROWS_PER_BUCKET gold rows each, a print of
    the lookback history counting as 1/:data:`HISTORY_WEIGHT` (a full build: its prints; a
    rebuild of recent weeks: mostly the history those weeks read)."""
    if settings.gold_buckets:
        return settings.gold_buckets
    prints = build.inputs(lake)["prints"]
    in_weeks = week_start(pl.col("day")).is_in(pl.Series(build.weeks, dtype=pl.Date))
    target, history = prints.select(in_weeks.sum(), pl.len()).collect().row(0)
    rows = max(target, math.ceil(history / HISTORY_WEIGHT))
    return max(1, math.ceil(rows / settings.gold_rows_per_bucket))


def plan_build(
    ctx: RunContext, *, rebuild: list[date] | None = None, full: bool = False
) -> tuple[GoldBuild | None, str]:
    """The build this run needs (None: nothing to do) and why."""
    current = silver_versions(ctx)
    if not current:
        return None, "no silver prints yet"
    weeks, is_full, why = plan_weeks(ctx, current, rebuild=rebuild, full=full)
    if not weeks:
        return None, "nothing new"
    s, week_list = ctx.settings, tuple(sorted(weeks))
    build = GoldBuild(
        silver_root=s.lake_silver,
        gold_root=s.lake_gold,
        silver_versions=current,
        silver_commit_ts={
            source: ctx.lake.commit_timestamp(ctx.silver(source), v) or 0
            for source, v in current.items()
            if v >= 0
        },
        weeks=week_list,
        is_full=is_full,
        buckets=1,
        run_id=ctx.run_id,
        packed=fits_packed(week_list, n_weeks=max(s.lookback_weeks), max_user_id=max_user_id(ctx, current)),
        mode=s.lookback_mode,
        windows=s.lookback_weeks,
    )
    buckets = bucket_count(s, build, ctx.lake)
    return replace(build, buckets=buckets), why


def build_metadata(build: GoldBuild) -> dict[str, str]:
    """What the commit records: the next run plans from it (see :func:`plan_weeks`)."""
    return {
        "run_id": build.run_id,
        "silver_versions": json.dumps(dict(build.silver_versions), sort_keys=True),
        "silver_commit_ts": json.dumps(dict(build.silver_commit_ts), sort_keys=True),
        "lookback_mode": build.mode,
        "lookback_weeks": format_windows(build.windows),
        "weeks": ",".join(w.isoformat() for w in build.weeks),
    }


BuildEngine = Callable[[RunContext, GoldBuild, GoldAuditor], list[list[AddActionDict]]]
"""How the buckets are computed and written (add actions per bucket): :func:`build_locally`
here, or :func:`jobs.gold.distributed.build_on_dask` (chosen by :func:`jobs.pipeline.engines`
from ``ENGINE``)."""


def build_locally(ctx: RunContext, build: GoldBuild, audit: GoldAuditor) -> list[list[AddActionDict]]:
    """The local engine: bucket after bucket in this process (memory holds one bucket)."""
    per_bucket = []
    for b in range(build.buckets):
        frame, inputs = compute_bucket(
            build, ctx.lake, b, audit=audit.audit_columns, first_day=audit.first_day
        )
        frame = audit.bucket(b, frame, inputs)  # DataError here: nothing is committed
        per_bucket.append(write_bucket(build, ctx.lake, b, frame))
    return per_bucket


def run_gold(
    ctx: RunContext,
    *,
    audits: Audits,
    rebuild: list[date] | None = None,
    full: bool = False,
    engine: BuildEngine = build_locally,
) -> StageResult:
    """Plan the weeks to rebuild, compute and audit them bucket by bucket, commit once."""
    started = time.perf_counter()
    result = StageResult("gold", skipped=True)
    build, why = plan_build(ctx, rebuild=rebuild, full=full)
    if build is None:
        result.note = why
        result.seconds = time.perf_counter() - started
        return result
    audit = audits.gold(ctx, list(build.weeks), build.buckets, build.target_prints(ctx.lake))
    try:
        per_bucket = engine(ctx, build, audit)
        version = commit_build(
            build, ctx.lake, [a for b in per_bucket for a in b], metadata=build_metadata(build)
        )
    except BaseException:
        removed = remove_build_files(build, ctx.lake)
        log.info("removed %d uncommitted gold file(s) of run %s", removed, ctx.run_id)
        raise
    result.skipped = False
    result.rows_out = sum(a["rows"] for b in per_bucket for a in b)
    result.rows_in = result.rows_out  # one gold row per silver print of the rebuilt weeks
    on = "" if engine is build_locally else f" on {ctx.settings.engine}"
    result.note = f"{len(build.weeks)} week(s) rebuilt ({why}), {build.buckets} bucket(s){on}"
    if version is not None:
        result.versions[GOLD_TABLE] = version
    result.details = [{"weeks": [w.isoformat() for w in build.weeks], "full": build.is_full}]
    audit.finish(result)  # records the results; summary in details
    result.seconds = time.perf_counter() - started
    return result
