"""The quality history: every result of every run, appended to Delta tables in the lake.

Counts and check names go to ``<LAKE_GOLD>/_quality_results`` (schema
:data:`jobs.schemas.QUALITY_RESULTS`), next to gold so whoever may read gold may read its quality
record (``gold.quality_results`` in ``python -m jobs query``). The sample rows of failing checks
are data of bronze or silver, so they go to ``<LAKE_BRONZE>/_quality_samples``, which only the
pipeline identity reads. Each stage's results are also written as Great Expectations validation
results (:mod:`jobs.quality.gx_record`) to ``<LAKE_GOLD>/_quality_reports/R.<stage>.gx.json``. One
append per stage that validated something; a run with nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import polars as pl

from jobs.quality import gx_record
from jobs.quality.results import CheckResult
from jobs.run import RunContext
from jobs.schemas import (
    QUALITY_REPORTS,
    QUALITY_RESULTS,
    QUALITY_SAMPLES,
    QUALITY_SAMPLES_TABLE,
    QUALITY_TABLE,
)
from jobs.storage import join

KEYS = ["run_id", "recorded_at", "layer", "table_name", "expectation"]


def results_uri(ctx: RunContext) -> str:
    return ctx.gold(QUALITY_TABLE)


def gx_uri(ctx: RunContext, stage: str, run_id: str | None = None) -> str:
    """Where a stage's results are kept as GX validation results (counts only, beside gold)."""
    return join(ctx.settings.lake_gold, QUALITY_REPORTS, f"{run_id or ctx.run_id}.{stage}.gx.json")


def samples_uri(ctx: RunContext) -> str:
    return ctx.bronze(QUALITY_SAMPLES_TABLE)


def to_frame(
    run_id: str, results: Sequence[CheckResult], *, recorded_at: datetime | None = None
) -> pl.DataFrame:
    """History rows of ``results`` (pure)."""
    at = recorded_at or datetime.now(UTC)
    rows = [{"run_id": run_id, "recorded_at": at, **r.as_row()} for r in results]
    return pl.DataFrame(rows, schema=QUALITY_RESULTS)


def append(ctx: RunContext, results: Sequence[CheckResult], *, stage: str) -> int | None:
    """Append ``results``: counts to gold, sample rows beside bronze (one commit each);
    returns the new version of the gold history (None if nothing)."""
    if not results:
        return None
    rows = to_frame(ctx.run_id, results)
    metadata = {"run_id": ctx.run_id, "stage": stage}
    samples = rows.filter(pl.col("unexpected_rows").is_not_null() & (pl.col("unexpected_rows") != "[]"))
    if samples.height:
        ctx.lake.write(
            samples_uri(ctx),
            samples.select(QUALITY_SAMPLES.names()),
            schema=QUALITY_SAMPLES,
            metadata=metadata,
        )
    counts_only = rows.with_columns(pl.lit(None, pl.String).alias("unexpected_rows"))
    version = ctx.lake.write(results_uri(ctx), counts_only, schema=QUALITY_RESULTS, metadata=metadata)
    documents = gx_record.validation_results(
        results, run_id=ctx.run_id, stage=stage, recorded_at=rows["recorded_at"][0]
    )
    ctx.lake.put_file(gx_uri(ctx, stage), gx_record.to_json(documents), tag=ctx.run_id)
    return version


def run_results(ctx: RunContext, run_id: str | None = None, *, with_samples: bool = False) -> pl.DataFrame:
    """Every recorded result of one run (default: this run), in recording order; with the
    sample rows of failing checks when ``with_samples`` (pipeline identity only)."""
    wanted = run_id or ctx.run_id
    rows = ctx.lake.scan_or_empty(results_uri(ctx), QUALITY_RESULTS).filter(pl.col("run_id") == wanted)
    if with_samples:
        samples = ctx.lake.scan_or_empty(samples_uri(ctx), QUALITY_SAMPLES).filter(pl.col("run_id") == wanted)
        rows = (
            rows.drop("unexpected_rows")
            .join(samples, on=KEYS, how="left", nulls_equal=True)
            .select(QUALITY_RESULTS.names())
        )
    return rows.collect().sort("recorded_at", maintain_order=True)
