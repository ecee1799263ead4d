"""Bronze's own history: the rows of one run or one file in a bronze table, the days they
touched, and the checks a run makes before it takes anything in (the manifest's record of the
bronze commits; rows of runs interrupted before their manifest)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

import polars as pl

from jobs.errors import TableDamaged
from jobs.run import RunContext
from jobs.schemas import MANIFEST, SOURCES
from jobs.tables.commits import watermark_broken
from jobs.tables.external import ADDING_OPERATIONS

log = logging.getLogger(__name__)

DAY_COLUMN = {"prints": "day", "taps": "day", "pays": "pay_date"}


def sql_list(values: Iterable[str]) -> str:
    """A SQL list of string literals for a Delta predicate (quotes doubled)."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def days_of(ctx: RunContext, source: str, predicate: pl.Expr) -> list[str]:
    """The days of the bronze rows of ``source`` matching ``predicate`` (ISO strings)."""
    uri = ctx.bronze(source)
    if not ctx.lake.exists(uri):
        return []
    column = DAY_COLUMN[source]
    days = ctx.lake.scan(uri).filter(predicate).select(pl.col(column).unique()).collect()
    return sorted(d.isoformat() for d in days[column].to_list() if d is not None)


def remove_run(ctx: RunContext, uri: str, source: str | None, run_id: str, *, why: str) -> bool:
    """Delete the rows of ``run_id`` from a bronze table, recording the days they touched."""
    days = days_of(ctx, source, pl.col("run_id") == run_id) if source else []
    return ctx.lake.delete(
        uri,
        f"run_id IN ({sql_list([run_id])})",
        metadata={"run_id": ctx.run_id, "removed_run": run_id, "why": why, "days": ",".join(days)},
    )


def bronze_commits(ctx: RunContext) -> str:
    """The bronze tables as they are now, version and commit time (JSON ``{name: [v, ts]}``):
    what the manifest commit records, so a bronze commit lost or rewritten later is noticed."""
    lake, now = ctx.lake, {}
    for name in (*SOURCES, "quarantine"):
        version = lake.version(ctx.bronze(name))
        if version is not None:
            now[name] = [version, lake.commit_timestamp(ctx.bronze(name), version)]
    return json.dumps(now, sort_keys=True)


def check_bronze_history(ctx: RunContext) -> None:
    """Bronze still holds the commits the manifest's last run recorded (``bronze_commits``).

    If one was lost (a deleted log file) or rewritten, rows of raw files the manifest calls
    ingested may be gone, and taking in more would bury that: stop with one line instead."""
    lake = ctx.lake
    last = lake.last_commit_with(ctx.manifest_uri, "run_id")
    if last is None:
        return
    recorded = json.loads(last.get("bronze_commits") or "{}")
    for name, (version, stamp) in sorted(recorded.items()):
        uri = ctx.bronze(name)
        current = lake.version(uri)
        history = lake.history(uri, after=version - 1)
        why = watermark_broken(history, version, stamp, -1 if current is None else current)
        if why:
            raise TableDamaged(
                f"bronze {name} no longer holds version {version}, which the manifest recorded "
                f"after run {last['run_id']}: it {why}, so rows of raw files the manifest lists "
                "may be gone: run python -m jobs doctor"
            )


def recover_interrupted(ctx: RunContext, *, remove: Callable[..., bool] = remove_run) -> list[str]:
    """Delete rows of runs that committed bronze data but never reached the manifest.

    Called while holding the lake lease: no other writer runs, so such a run is dead.
    A run whose rows were removed once is not warned about again. ``remove`` removes one run's
    rows (:func:`remove_run`; ``jobs.plan`` only notes what would go).
    """
    lake = ctx.lake
    manifest_runs: set[str] = set()
    if lake.exists(ctx.manifest_uri):
        runs = lake.scan(ctx.manifest_uri).select("run_id").unique().collect()
        manifest_runs = set(runs["run_id"].to_list())
    rolled_back = []
    tables = [(ctx.bronze(s), s) for s in SOURCES] + [(ctx.quarantine_uri, None)]
    for uri, source in tables:
        history = lake.history(uri, after=max(-1, (lake.version(uri) or 0) - 50))
        removed = {c.get("removed_run") for c in history}
        for commit in history:
            run_id = commit.get("run_id")
            if (
                run_id
                and run_id not in manifest_runs
                and run_id not in removed
                and commit.get("operation") in ADDING_OPERATIONS
            ):
                log.warning("rolling back rows of interrupted run %s in %s", run_id, uri)
                remove(ctx, uri, source, run_id, why="interrupted before its manifest")
                removed.add(run_id)
                rolled_back.append(run_id)
    return rolled_back


def read_manifest(ctx: RunContext) -> pl.DataFrame:
    return ctx.lake.scan_or_empty(ctx.manifest_uri, MANIFEST).collect()
