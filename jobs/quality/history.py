"""The quality history: every result of every run, appended to a Delta table in the lake.

Location: ``<LAKE_GOLD>/_quality_results`` (schema :data:`jobs.schemas.QUALITY_RESULTS`), next
to gold so whoever may read gold may read its quality record. ``python -m jobs query`` exposes it
as ``gold.quality_results``. One append per stage that validated something; a run with nothing
new writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from jobs.quality.results import CheckResult
from jobs.run import RunContext
from jobs.schemas import QUALITY_RESULTS, QUALITY_TABLE


def results_uri(ctx: RunContext) -> str:
    return ctx.gold(QUALITY_TABLE)


def to_frame(run_id: str, results: Sequence[CheckResult], *,
             recorded_at: datetime | None = None) -> pl.DataFrame:
    """History rows of ``results`` (pure)."""
    at = recorded_at or datetime.now(UTC)
    rows = [{"run_id": run_id, "recorded_at": at, **r.as_row()} for r in results]
    return pl.DataFrame(rows, schema=QUALITY_RESULTS)


def append(ctx: RunContext, results: Sequence[CheckResult], *, stage: str) -> int | None:
    """Append ``results`` in one commit; returns the new table version (None if nothing)."""
    if not results:
        return None
    return ctx.lake.write(results_uri(ctx), to_frame(ctx.run_id, results),
                          schema=QUALITY_RESULTS,
                          metadata={"run_id": ctx.run_id, "stage": stage})


def run_results(ctx: RunContext, run_id: str | None = None) -> pl.DataFrame:
    """Every recorded result of one run (default: this run), in recording order."""
    wanted = run_id or ctx.run_id
    return (
        ctx.lake.scan_or_empty(results_uri(ctx), QUALITY_RESULTS)
        .filter(pl.col("run_id") == wanted)
        .collect()
        .sort("recorded_at", maintain_order=True)
    )
