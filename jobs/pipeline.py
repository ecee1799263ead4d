"""Runs the stages in order: bronze → silver → gold → export, and reports each one.

This is where the stages get their audits: the Great Expectations gates by default
(:func:`jobs.quality.gate.quality_audits`), or whatever the caller passes (the benchmark passes
:data:`jobs.audit.NO_AUDITS` to time a stage's own work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from jobs.audit import Audits
from jobs.logs import stage_var
from jobs.run import RunContext
from jobs.stages import STAGES
from jobs.summary import StageResult

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def run_stage(ctx: RunContext, stage: str, *, audits: Audits | None = None,
              progress: Progress | None = None, rebuild: list[date] | None = None,
              full: bool = False) -> StageResult:
    """Run one stage by name (imports lazily: a stage pays only for what it uses)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    if audits is None:
        from jobs.quality.gate import quality_audits

        audits = quality_audits()
    token = stage_var.set(stage)
    try:
        if progress:
            progress(stage)
        if stage == "bronze":
            from jobs.bronze.job import run_bronze

            result = run_bronze(ctx, audits=audits, progress=progress)
        elif stage == "silver":
            from jobs.silver.job import run_silver

            result = run_silver(ctx, audits=audits)
        elif stage == "gold":
            from jobs.gold.job import run_gold

            result = run_gold(ctx, audits=audits, rebuild=rebuild, full=full)
        else:
            from jobs.export import run_export

            result = run_export(ctx)
        log.info("%s done", stage, extra={"event": "stage_done", **result.as_dict()})
        return result
    finally:
        stage_var.reset(token)


def run_all(ctx: RunContext, *, audits: Audits | None = None, progress: Progress | None = None,
            rebuild: list[date] | None = None, full: bool = False) -> list[StageResult]:
    """Every stage in order, as one run (``ctx``)."""
    return [run_stage(ctx, s, audits=audits, progress=progress, rebuild=rebuild, full=full)
            for s in STAGES]
