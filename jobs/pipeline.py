"""Runs the stages in order: bronze → silver → gold → export, and reports each one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from jobs.logs import stage_var
from jobs.run import RunContext
from jobs.summary import StageResult

log = logging.getLogger(__name__)

STAGES = ("bronze", "silver", "gold", "export")
Progress = Callable[[str], None]


def run_stage(ctx: RunContext, stage: str, *, progress: Progress | None = None,
              rebuild: list[date] | None = None, full: bool = False) -> StageResult:
    """Run one stage by name (imports lazily: a stage pays only for what it uses)."""
    token = stage_var.set(stage)
    try:
        if progress:
            progress(stage)
        if stage == "bronze":
            from jobs.bronze.job import run_bronze

            result = run_bronze(ctx, progress=progress)
        elif stage == "silver":
            from jobs.silver.job import run_silver

            result = run_silver(ctx)
        elif stage == "gold":
            from jobs.gold.job import run_gold

            result = run_gold(ctx, rebuild=rebuild, full=full)
        elif stage == "export":
            from jobs.export import run_export

            result = run_export(ctx)
        else:
            raise ValueError(f"unknown stage {stage!r}")
        log.info("%s done", stage, extra={"event": "stage_done", **result.as_dict()})
        return result
    finally:
        stage_var.reset(token)


def run_all(ctx: RunContext, *, progress: Progress | None = None,
            rebuild: list[date] | None = None, full: bool = False) -> list[StageResult]:
    return [run_stage(ctx, s, progress=progress, rebuild=rebuild, full=full) for s in STAGES]
