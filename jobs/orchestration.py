"""What an orchestrator calls: decide whether a tick has work, run one stage, report in JSON.

``dags/lakehouse.py`` (Airflow) is a thin shell around these functions; this module never imports
Airflow, so the same calls work from any scheduler or a plain script. Everything returned is a
small JSON-able dict (what Airflow keeps as the task's XCom).

A run's *request* comes from the orchestrator's parameters (Airflow ``params``, read and
validated by :meth:`jobs.options.RunOptions.from_params`) and overrides the settings for that run
only: extra gold weeks to rebuild, a full rebuild, another lookback mode/N (or windows N1,N2,...).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobs.errors import LeaseHeld, PipelineError, StorageError, StoreUnreachable
from jobs.options import RunOptions
from jobs.settings import load_settings
from jobs.stages import STAGES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunIdentity:
    """Ties the pipeline's run id (lineage columns, commit metadata) to the orchestrator's run."""

    orchestrator_run_id: str = ""
    started_at: datetime | None = None
    # The orchestrator's task run, parent of the stage's OpenLineage run (jobs.lineage):
    # {"namespace": …, "name": "<dag>.<task>", "run_id": <UUID>}, as its OpenLineage provider names it.
    lineage_parent: Mapping[str, str] | None = None

    def context(self, settings: Any) -> Any:
        from jobs.logs import stop_process
        from jobs.run import RunContext, new_run_id

        started = self.started_at or datetime.now(UTC)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        started = started.astimezone(UTC)
        if self.orchestrator_run_id:
            digest = hashlib.sha1(self.orchestrator_run_id.encode(), usedforsecurity=False).hexdigest()[:8]
            run_id = f"{started:%Y%m%dT%H%M%SZ}-{digest}"
        else:
            run_id = new_run_id(started)
        # A task whose store stopped answering ends (exit 3, Airflow retries it) instead of hanging.
        parent = dict(self.lineage_parent) if self.lineage_parent else None
        return RunContext(
            settings,
            started_at=started,
            run_id=run_id,
            on_store_unreachable=stop_process,
            lineage_parent=parent,
        )


@dataclass
class Detection:
    """What a tick found: raw files not ingested yet, and work left behind by an earlier run."""

    pending_files: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    request: RunOptions = field(default_factory=RunOptions)
    plan: dict[str, Any] | None = None  # what the run would do (jobs.plan), when there is work

    @property
    def proceed(self) -> bool:
        return bool(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": "detect",
            "proceed": self.proceed,
            "pending_files": self.pending_files,
            "reasons": self.reasons,
            "request": self.request.describe(),
            "plan": self.plan,
        }


def pending_work(ctx: Any) -> tuple[dict[str, int], list[str]]:
    """New raw files per source, and why a run is needed (empty: nothing to do).

    Besides new raw files, a run is needed when an earlier run stopped half-way: bronze rows
    silver has not consumed, silver commits gold has not consumed (or gold built with other
    lookback mode or windows), or a gold version not exported yet. Cheap: listings and Delta logs only.
    """
    from jobs.bronze.selection import pending_files
    from jobs.export import read_marker
    from jobs.gold.job import built_with_other_settings, consumed_versions, last_build, silver_versions
    from jobs.schemas import GOLD_TABLE, SOURCES
    from jobs.silver.job import pending_runs

    files = pending_files(ctx)
    reasons = []
    if any(files.values()):
        reasons.append("new raw files: " + ", ".join(f"{s} {n}" for s, n in files.items() if n))
    behind = [s for s in SOURCES if pending_runs(ctx, s)[0]]
    if behind:
        reasons.append(f"bronze rows not in silver yet: {', '.join(behind)}")
    current = silver_versions(ctx)
    if current:
        last = last_build(ctx)
        if last is None:
            reasons.append("gold not built yet")
        elif _silver_changed(ctx, consumed_versions(last), current):
            reasons.append("silver changed since gold was built")
        elif built_with_other_settings(last, ctx.settings):
            reasons.append("lookback settings changed since gold was built")
    gold_version = ctx.lake.version(ctx.gold(GOLD_TABLE))
    if gold_version is not None and read_marker(ctx).get("gold_version") != gold_version:
        reasons.append(f"gold version {gold_version} not exported yet")
    return files, reasons


def _silver_changed(ctx: Any, consumed: dict[str, int], current: dict[str, int]) -> bool:
    """Silver has commits gold has not read, other than maintenance (OPTIMIZE, VACUUM)."""
    from jobs.maintain import data_changed_since

    if set(consumed) != set(current):
        return True
    return any(
        v < consumed[s] or data_changed_since(ctx.lake, ctx.silver(s), consumed[s])
        for s, v in current.items()
        if v != consumed[s]
    )


def detect(params: Mapping[str, Any] | None = None, identity: RunIdentity | None = None) -> Detection:
    """Should this run go ahead? Yes if anything is pending or the request forces a run."""
    request = RunOptions.from_params(params)
    ctx = (identity or RunIdentity()).context(load_settings(**request.overrides))
    files, reasons = pending_work(ctx)
    if request.forces_run:
        reasons.insert(
            0, "requested: " + json.dumps({k: v for k, v in request.describe().items() if v}, sort_keys=True)
        )
    detection = Detection(pending_files=files, reasons=reasons, request=request)
    if detection.proceed:
        from jobs.plan import plan_run

        log.info("work to do: %s", "; ".join(reasons))
        plan = plan_run(ctx, rebuild=list(request.rebuild) or None, full=request.full)
        detection.plan = plan.as_dict()
        log.info("plan of this run:\n%s", "\n".join(plan.lines()))
    else:
        log.info(
            "nothing new under %s (pending files: %s): downstream stages skipped, no table version written",
            ctx.settings.lake_raw,
            files,
        )
    return detection


def run_stage_task(
    stage: str, params: Mapping[str, Any] | None = None, identity: RunIdentity | None = None
) -> dict[str, Any]:
    """Run one stage with this run's overrides; its StageResult as a JSON-able dict."""
    from jobs import logs
    from jobs.pipeline import run_stage

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    request = RunOptions.from_params(params)
    ctx = (identity or RunIdentity()).context(load_settings(**request.overrides))
    logs.run_id_var.set(ctx.run_id)
    result = run_stage(ctx, stage, rebuild=list(request.rebuild) or None, full=request.full)
    summary = result.as_dict()
    summary["run_id"] = ctx.run_id
    from jobs.lineage import summary_lines as lineage_lines

    if unsent := lineage_lines([result]):
        summary["lineage"] = unsent[0]
    for detail in result.details:
        if stage == "gold" and "weeks" in detail:
            summary["weeks"] = list(detail["weeks"])[:60]
            summary["full"] = bool(detail.get("full"))
        if isinstance(detail.get("quality"), dict):  # the data-quality gate's summary
            q = detail["quality"]
            summary["quality"] = {
                "checks": q.get("checks"),
                "passed": q.get("passed"),
                "warnings": list(q.get("warnings") or [])[:5],
                "failed": list(q.get("failed") or [])[:5],
                "report": q.get("report"),
            }
    log.info("%s summary: %s", stage, json.dumps(summary, sort_keys=True))
    return summary


def maintain_task(identity: RunIdentity | None = None) -> dict[str, Any]:
    """Compact, checkpoint and vacuum every table holding the lake lease (``jobs.maintain``);
    what it did per table as a JSON-able dict. Raises LeaseHeld (transient) while a run works."""
    from jobs import logs
    from jobs.maintain import maintain

    ctx = (identity or RunIdentity()).context(load_settings())
    logs.run_id_var.set(ctx.run_id)
    summary = maintain(ctx).as_dict()
    log.info("maintain summary: %s", json.dumps(summary["totals"], sort_keys=True))
    return summary


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the store did not answer, another run holds the lake lease, or the
    failure is unclassified.

    Wrong keys, denied access, a missing bucket, bad settings or bad data fail the same way
    on every retry, so orchestrators should fail those at once.
    """
    if isinstance(exc, StoreUnreachable | LeaseHeld):  # the store or the other run goes away
        return True
    if isinstance(exc, PipelineError):
        return type(exc) is StorageError
    return True
