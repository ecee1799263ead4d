"""Runs the stages in order: bronze → silver → gold → export, and reports each one.

Every stage runs holding the lake lease (:mod:`jobs.lease`): one writer at a time, whoever
calls (the CLI, an orchestrator's task, a script); a run of several stages holds it throughout.
This is also where the stages get their audits: the quality gates by default
(:func:`jobs.quality.gate.quality_audits`), or whatever the caller passes (the benchmark passes
:data:`jobs.audit.NO_AUDITS` to time a stage's own work), and their engine: :func:`engines`
decides from ``ENGINE`` for every stage, and each stage runs on the one it is handed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from jobs import lineage
from jobs.audit import Audits
from jobs.logs import stage_var
from jobs.run import RunContext
from jobs.runs import recording
from jobs.stages import STAGES
from jobs.summary import StageResult

if TYPE_CHECKING:
    from jobs.bronze.job import IngestEngine
    from jobs.gold.job import BuildEngine
    from jobs.options import Engine
    from jobs.silver.job import RebuildEngine

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Engines:
    """The engine of every stage that has more than one (bronze, silver, gold), as chosen by
    :func:`engines`; each is imported when its stage asks (a local run never imports Dask)."""

    name: Engine

    def bronze(self) -> IngestEngine:
        if self.name == "dask":
            from jobs.bronze.distributed import ingest_on_dask

            return ingest_on_dask
        from jobs.bronze.job import ingest_locally

        return ingest_locally

    def silver(self) -> RebuildEngine:
        if self.name == "dask":
            from jobs.silver.distributed import rebuild_on_dask

            return rebuild_on_dask
        from jobs.silver.job import rebuild_all_locally

        return rebuild_all_locally

    def gold(self) -> BuildEngine:
        if self.name == "dask":
            from jobs.gold.distributed import build_on_dask

            return build_on_dask
        from jobs.gold.job import build_locally

        return build_locally


def engines(ctx: RunContext) -> Engines:
    """The one place the stages' engine is chosen: ``ENGINE`` (``--engine``), this process or
    a Dask cluster (:mod:`jobs.cluster`)."""
    return Engines(ctx.settings.engine)


@contextmanager
def holding_lease(ctx: RunContext, *, force: bool = False, wait: float | None = None) -> Iterator[None]:
    """Hold the lake lease for the block (a run that holds it already keeps it).

    Raises :class:`~jobs.errors.LeaseHeld` at once (or after ``wait``, by default
    ``LEASE_WAIT_SECONDS``) while another run holds it; every commit of the block checks it is
    still held. An S3 lease taken
    over (expired, its process gone, or ``force``) first fences every table against the run
    it belonged to, so nothing that run planned can land later.
    """
    if ctx.lease is not None:
        yield
        return
    from jobs.lease import Owner, acquire
    from jobs.tables.fence import fence_tables

    owner = Owner.this_process(ctx.run_id)
    with acquire(
        ctx.storage, owner=owner, wait=wait, on_unreachable=ctx.on_store_unreachable, force=force
    ) as lease:
        ctx.lease = lease
        try:
            if lease.took_over is not None:
                fence_tables(ctx.lake, ctx.tables(), taker=ctx.run_id, fenced=lease.took_over)
            yield
        finally:
            ctx.lease = None


def break_lease(ctx: RunContext) -> str | None:
    """Take the lake lease from whoever holds it, fence every table against that run, and
    release it; the run it was taken from (None: it was free). On S3 a live holder gets exit 6
    at its next lease check or commit; locally a live holder is refused (:class:`LeaseHeld`)."""
    with holding_lease(ctx, force=True):
        assert ctx.lease is not None  # noqa: S101 (set by holding_lease)
        return ctx.lease.took_over


def run_stage(
    ctx: RunContext,
    stage: str,
    *,
    audits: Audits | None = None,
    progress: Progress | None = None,
    rebuild: list[date] | None = None,
    full: bool = False,
) -> StageResult:
    """Run one stage by name, holding the lake lease (imports lazily: a stage pays only for
    what it uses)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    with (
        holding_lease(ctx),
        recording(ctx) as history,  # the run history row and the metrics file
        history.stage(stage) as done,
        lineage.stage(ctx, stage) as seen,  # OpenLineage START, COMPLETE/FAIL
    ):
        done.append(
            seen.done(_run_stage(ctx, stage, audits=audits, progress=progress, rebuild=rebuild, full=full))
        )
        return done[0]


def _run_stage(
    ctx: RunContext,
    stage: str,
    *,
    audits: Audits | None,
    progress: Progress | None,
    rebuild: list[date] | None,
    full: bool,
) -> StageResult:
    if audits is None:
        from jobs.quality.gate import quality_audits

        audits = quality_audits()
    token = stage_var.set(stage)
    try:
        if progress:
            progress(stage)
        engine = engines(ctx)
        if stage == "bronze":
            from jobs.bronze.job import run_bronze

            result = run_bronze(ctx, audits=audits, progress=progress, engine=engine.bronze())
        elif stage == "silver":
            from jobs.silver.job import run_silver

            result = run_silver(ctx, audits=audits, engine=engine.silver())
        elif stage == "gold":
            from jobs.gold.job import run_gold

            result = run_gold(ctx, audits=audits, rebuild=rebuild, full=full, engine=engine.gold())
        else:
            from jobs.export import run_export

            result = run_export(ctx)
        log.info("%s done", stage, extra={"event": "stage_done", **result.as_dict()})
        return result
    finally:
        stage_var.reset(token)


def run_all(
    ctx: RunContext,
    *,
    audits: Audits | None = None,
    progress: Progress | None = None,
    rebuild: list[date] | None = None,
    full: bool = False,
) -> list[StageResult]:
    """Every stage in order, as one run (``ctx``) holding the lake lease throughout; its
    history rows and metrics are recorded once, at its end (:mod:`jobs.runs`)."""
    with holding_lease(ctx), recording(ctx):
        return [
            run_stage(ctx, s, audits=audits, progress=progress, rebuild=rebuild, full=full) for s in STAGES
        ]
