"""``python -m jobs plan`` (``run --plan``, the DAG's ``detect``): what the next run would do.

Computed by the code the run uses, writing nothing (no table version, no manifest row, no lease:
the lease is not taken, so a run working meanwhile may change what is found):

- **bronze**, per source: the selection of :class:`jobs.bronze.selection.Planner` (new files,
  changed ones and what ``RAW_ON_CHANGE`` does with them, held paths listed no more), then every
  file to take in is read and judged as :meth:`jobs.bronze.job.Bronze.judge` judges it (its rows
  go to a temporary spool outside the lake, then away): duplicate deliveries, files rejected whole
  (unreadable, not text, over the quarantine threshold, ``--reject``), files still being written.
  The plan therefore reads the new files once, as bronze will.
- **silver**: the days each source's next silver commit rewrites: those of bronze commits silver
  has not consumed (:func:`jobs.silver.job.plan_rebuilds`) plus those of the rows this bronze run
  takes in, replaces or retracts.
- **gold**: the weeks (their Mondays) :func:`jobs.gold.job.plan_weeks` will rebuild once silver
  has those days, and why each one (new prints, new priors, requested, a full or first build,
  changed lookback settings).
- **maintenance**: due when a table has :data:`DUE_COMMITS` or more commits that changed rows
  since its last maintenance (``python -m jobs maintain``).

Exact for the files as they are now, with these caveats (the plan's ``notes`` says which apply):
a file modified within ``RAW_SETTLE_SECONDS`` is listed as *settling* (the run watches it and takes
it in only if it stops changing); a blocking quality gate can stop the run short of the plan; a
silver source rebuilt whole makes gold's weeks those of every silver day.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from jobs.bronze.selection import Planner
from jobs.errors import DataError
from jobs.raw.files import RawFile
from jobs.run import RunContext
from jobs.schemas import SILVER_PARTITION, SOURCES

log = logging.getLogger(__name__)

DUE_COMMITS = 10
"""Commits that changed a table's rows since its last maintenance from which maintenance is due."""


@dataclass
class SourcePlan:
    """What bronze does with one source's raw files."""

    source: str
    ingest: list[str] = field(default_factory=list)  # files whose lines the run takes in
    new: list[str] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)  # path, action
    duplicates: list[dict[str, str]] = field(default_factory=list)  # path, of
    settling: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)  # path, reason
    gone: list[dict[str, str]] = field(default_factory=list)  # path, action
    stops: str | None = None  # the run stops here (RAW_ON_CHANGE=fail)


@dataclass
class RunPlan:
    """The next run's work; :meth:`as_dict` is the JSON form."""

    options: dict[str, Any]
    sources: dict[str, SourcePlan] = field(default_factory=dict)
    silver: dict[str, list[str] | str] = field(default_factory=dict)  # source → days, or "all"
    gold: dict[str, Any] = field(default_factory=dict)
    maintenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def gold_weeks(self) -> list[str]:
        return list(self.gold.get("weeks") or [])

    @property
    def ingest(self) -> set[str]:
        return {p for s in self.sources.values() for p in s.ingest}

    def as_dict(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "bronze": {s: asdict(p) for s, p in self.sources.items()},
            "silver": self.silver,
            "gold": self.gold,
            "maintenance": self.maintenance,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def lines(self) -> list[str]:
        """The text form (``python -m jobs plan``)."""
        out = ["plan of the next run (nothing written)"]
        if any(self.options.values()):
            shown = {k: v for k, v in self.options.items() if v}
            out.append(f"options: {json.dumps(shown, sort_keys=True)}")
        for source, p in self.sources.items():
            counts = (
                f"{len(p.ingest)} to ingest; {len(p.new)} new, {len(p.changed)} changed, "
                f"{len(p.duplicates)} duplicate, {len(p.settling)} settling, {len(p.rejected)} rejected, "
                f"{len(p.gone)} gone"
            )
            out.append(f"bronze {source}: {counts}")
            out += [f"  new        {path}" for path in p.new]
            out += [f"  changed    {c['path']}: {c['action']}" for c in p.changed]
            out += [f"  duplicate  {d['path']} (of {d['of']}): skipped" for d in p.duplicates]
            out += [f"  settling   {path}: taken in only once it stops changing" for path in p.settling]
            out += [f"  rejected   {r['path']}: {r['reason']}" for r in p.rejected]
            out += [f"  gone       {g['path']}: {g['action']}" for g in p.gone]
            if p.stops:
                out.append(f"  STOPS      {p.stops}")
        for source, days in self.silver.items():
            if days == "all":
                out.append(f"silver {source}: every day (rebuilt whole)")
            elif days:
                out.append(f"silver {source}: {len(days)} day(s) {_span(list(days))}")
        g = self.gold
        if g.get("weeks"):
            full = " (full rebuild)" if g.get("full") else ""
            out.append(f"gold: {len(g['weeks'])} week(s){full}: {g['why']}")
            out += [f"  {w}  {', '.join(g['reasons'].get(w, []))}" for w in g["weeks"]]
        else:
            out.append(f"gold: nothing to rebuild ({g.get('why', 'nothing new')})")
        m = self.maintenance
        if m.get("due"):
            tables = ", ".join(f"{t} ({n})" for t, n in m["tables"].items() if n >= m["threshold"])
            out.append(f"maintenance: due (commits since last maintenance ≥ {m['threshold']}: {tables})")
        else:
            out.append("maintenance: not due")
        out += [f"note: {n}" for n in self.notes]
        return out


def _span(days: list[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


@dataclass(frozen=True)
class DryPlanner(Planner):
    """The bronze planner, with its two effects kept in memory: retracting rows (only the days
    they had are noted) and watching young files (listed as settling, not waited for)."""

    retracted_days: dict[str, set[str]] = field(default_factory=dict)
    young: list[str] = field(default_factory=list)

    def retract(self, source: str, paths: list[str], days: list[str]) -> None:
        self.retracted_days.setdefault(source, set()).update(days)

    def settled(self, files: list[RawFile]) -> list[RawFile]:
        wait = self.settings.raw_settle_seconds
        self.young.extend(f.rel_path for f in files if f.mtime and time.time() - f.mtime < wait)
        return files


def plan_run(ctx: RunContext, *, rebuild: list[date] | None = None, full: bool = False) -> RunPlan:
    """What ``run_all(ctx, rebuild=rebuild, full=full)`` would do now (writes nothing)."""
    from jobs.options import format_windows

    options = {
        "rebuild_weeks": [w.isoformat() for w in rebuild or []],
        "full_rebuild": full,
        "lookback_mode": ctx.settings.lookback_mode,
        "lookback_weeks": format_windows(ctx.settings.lookback_weeks),
    }
    plan = RunPlan(options)
    new_days = _plan_bronze(ctx, plan)
    silver_days = _plan_silver(ctx, plan, new_days)
    _plan_gold(ctx, plan, silver_days, new_days.get("prints", set()), rebuild=rebuild, full=full)
    plan.maintenance = maintenance_due(ctx)
    return plan


def _plan_bronze(ctx: RunContext, plan: RunPlan) -> dict[str, set[date]]:
    """Per source, the plan of its files; the days of the rows the bronze commit takes in,
    replaces or retracts (what silver reads from it)."""
    # bronze's own warnings ("… skipped", "rolling back …") say what the run does: the plan says it
    quiet = logging.getLogger("jobs.bronze")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        return _judge_files(ctx, plan)
    finally:
        quiet.setLevel(level)


def _judge_files(ctx: RunContext, plan: RunPlan) -> dict[str, set[date]]:
    from jobs.audit import NoBronzeAudit
    from jobs.bronze.commit import commit_metadata
    from jobs.bronze.history import check_bronze_history, days_of, read_manifest, recover_interrupted
    from jobs.bronze.job import Bronze
    from jobs.silver.job import DAY_COLUMN

    check_bronze_history(ctx)  # a lost bronze commit stops the run before anything else
    days: dict[str, set[date]] = {}

    def rolled_back(ctx: RunContext, uri: str, source: str | None, run_id: str, *, why: str) -> bool:
        """What recover_interrupted's removal would record (the days silver rebuilds)."""
        if source:
            removed = days_of(ctx, source, pl.col("run_id") == run_id)
            days.setdefault(source, set()).update(date.fromisoformat(d) for d in removed)
        plan.notes.append(f"the run first removes the rows of run {run_id} in {uri} ({why})")
        return True

    recover_interrupted(ctx, remove=rolled_back)
    manifest = read_manifest(ctx)
    with tempfile.TemporaryDirectory(prefix="plan-spool-") as spool_dir:
        stage = Bronze(ctx, NoBronzeAudit(), Path(spool_dir), None)
        planner = DryPlanner(ctx, stage.ledger)
        stage.planner = planner
        for source in SOURCES:
            p = plan.sources[source] = SourcePlan(source)
            found = days.setdefault(source, set())
            before = len(stage.ledger.outcomes)
            try:
                selection = planner.select(source, manifest)
            except DataError as exc:  # RAW_ON_CHANGE=fail
                p.stops = str(exc)
                plan.notes.append(f"the run stops in bronze {source}: nothing is committed")
                selection = None
            files = selection.files if selection else []
            if selection is not None:
                p.new = [f.rel_path for f in selection.plan.new]
                replaced = commit_metadata(ctx, selection).get("days", "")
                found.update(date.fromisoformat(d) for d in replaced.split(",") if d)
            found.update(date.fromisoformat(d) for d in planner.retracted_days.get(source, ()))
            column = DAY_COLUMN[source]
            for f in files:
                good, read = stage.read_file(f)
                if stage.judge(source, f, selection.replaces(f) if selection else None, read):
                    p.ingest.append(f.rel_path)
                    for frame in good.frames():
                        found.update(d for d in frame[column].unique().to_list() if d is not None)
                good.clear()
            _account(stage, planner, p, before, files, selection.replacing if selection else [])
        stage.quarantine.clear()
    return days


def _account(
    stage: Any, planner: DryPlanner, p: SourcePlan, before: int, files: list[RawFile], replacing: list[str]
) -> None:
    """The source's outcomes in the plan's terms."""
    ledger, on_change = stage.ledger, stage.settings.raw_on_change
    outcomes = ledger.outcomes[before:]
    paths = {f.rel_path for f in files}
    for o in outcomes:
        if o.status == "unchanged":
            p.changed.append({"path": o.path, "action": "touched, same content: nothing taken in"})
        elif o.status == "duplicate":
            p.duplicates.append({"path": o.path, "of": ledger.duplicates.get(o.path, "")})
        elif o.status == "rejected":
            p.rejected.append({"path": o.path, "reason": o.reason or ""})
        elif o.status in ("deleted", "retracted"):
            action = "rows removed" if o.status == "retracted" else "rows kept"
            p.gone.append({"path": o.path, "action": f"{o.status}: {action} (RAW_ON_DELETE)"})
    for path in replacing:
        p.changed.append({"path": path, "action": f"its rows replaced (RAW_ON_CHANGE={on_change})"})
    for path in ledger.skipped_changes:
        p.changed.append({"path": path, "action": "skipped (RAW_ON_CHANGE=skip)"})
    ledger.skipped_changes.clear()
    p.settling = sorted({*ledger.waiting, *(y for y in planner.young if y in paths)})
    ledger.waiting.clear()
    planner.young.clear()


def _plan_silver(
    ctx: RunContext, plan: RunPlan, new_days: dict[str, set[date]]
) -> dict[str, set[date] | None]:
    """Per source, the days its silver commit will record (None: every day, rebuilt whole)."""
    from jobs.silver.job import plan_rebuilds

    pending = {r.input.source: r.days for r in plan_rebuilds(ctx)}
    out: dict[str, set[date] | None] = {}
    for source in SOURCES:
        if source in pending and pending[source] is None:
            out[source] = None
            plan.silver[source] = "all"
            plan.notes.append(f"silver {source} is rebuilt whole: gold's weeks are those of every day")
            continue
        days = set(pending.get(source) or ()) | new_days.get(source, set())
        out[source] = days
        plan.silver[source] = sorted(d.isoformat() for d in days)
    return out


def _plan_gold(
    ctx: RunContext,
    plan: RunPlan,
    silver_days: dict[str, set[date] | None],
    new_prints: set[date],
    *,
    rebuild: list[date] | None,
    full: bool,
) -> None:
    """The weeks :func:`jobs.gold.job.plan_weeks` will rebuild after silver commits these days."""
    from jobs.gold.job import built_with_other_settings, last_build, silver_days_since, silver_versions
    from jobs.schemas import GOLD_PARTITION, GOLD_TABLE
    from jobs.weeks import affected_weeks, monday

    settings, n_weeks = ctx.settings, max(ctx.settings.lookback_weeks)
    current = silver_versions(ctx)
    all_weeks = {
        monday(date.fromisoformat(d)) for d in ctx.lake.partitions(ctx.silver("prints"), SILVER_PARTITION)
    } | {monday(d) for d in new_prints}
    reasons: dict[date, set[str]] = {}
    if not all_weeks:
        plan.gold = {"weeks": [], "full": False, "why": "no silver prints yet", "reasons": {}}
        return
    last = last_build(ctx)
    whole: str | None = None
    if full or last is None:
        whole = "full build" if full else "first build"
    elif built_with_other_settings(last, settings):
        whole = "lookback settings changed"
    per_source: dict[str, set[date]] = {}
    if whole is None and last is not None:
        since = silver_days_since(ctx, last, current) if current else {}
        if isinstance(since, str):
            whole = since
        else:
            per_source = since
    if whole is not None:
        weeks, is_full, why = set(all_weeks), True, whole
        for w in weeks:
            reasons.setdefault(w, set()).add(whole)
    else:
        for source in SOURCES:
            days = silver_days[source]
            if days is None:  # rebuilt whole: its commit records every day it has
                days = {
                    date.fromisoformat(d) for d in ctx.lake.partitions(ctx.silver(source), SILVER_PARTITION)
                }
                days |= new_prints if source == "prints" else set()
            per_source[source] = per_source.get(source, set()) | days
        published = {
            date.fromisoformat(w[:10]) for w in ctx.lake.partitions(ctx.gold(GOLD_TABLE), GOLD_PARTITION)
        }
        kept = all_weeks | published
        all_days: set[date] = set()
        for source, days in per_source.items():
            all_days |= days
            for d in days:
                for w in affected_weeks([d], n_weeks=n_weeks) & kept:
                    # a day's prints are its week's rows; any day's events are later weeks' priors
                    reasons.setdefault(w, set()).add(f"new {source if w == monday(d) else 'priors'}")
        weeks, is_full, why = set(reasons), False, f"{len(all_days)} new day(s)"
    if rebuild:
        requested = {monday(w) for w in rebuild} & all_weeks
        for w in requested:
            reasons.setdefault(w, set()).add("requested")
        weeks |= requested
        why = f"{len(requested)} week(s) requested; {why}"
    ordered = sorted(weeks)
    plan.gold = {
        "weeks": [w.isoformat() for w in ordered],
        "full": is_full,
        "why": why if ordered else "nothing new",
        "reasons": {w.isoformat(): sorted(reasons.get(w, ())) for w in ordered},
    }


def maintenance_due(ctx: RunContext) -> dict[str, Any]:
    """Per table, commits that changed rows since its last maintenance; due from DUE_COMMITS."""
    from jobs.maintain import pipeline_tables
    from jobs.tables.commits import changes_rows

    tables: dict[str, int] = {}
    for name, uri in pipeline_tables(ctx):
        history = ctx.lake.history(uri)
        since = 0
        for commit in history:
            if "maintenance_run" in commit:
                since = 0
            elif changes_rows(commit):
                since += 1
        if since:
            tables[name] = since
    return {
        "due": any(n >= DUE_COMMITS for n in tables.values()),
        "threshold": DUE_COMMITS,
        "tables": tables,
    }
