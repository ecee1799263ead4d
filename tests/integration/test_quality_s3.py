"""Data quality on a real S3 server: history, report and the gold gate work in the bucket too."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from infra.generator import generate
from infra.stack.seed import SeedOptions, seed_lake
from jobs.errors import DataError
from jobs.pipeline import run_all, run_stage
from jobs.quality.history import results_uri
from jobs.quality.report import latest_uri, report_uri
from jobs.query import run_query
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, SILVER
from tests.integration.conftest import S3Stack

pytestmark = pytest.mark.integration


def read_text(ctx: RunContext, uri: str) -> str:
    fs = ctx.storage.filesystem(uri)
    with fs.open(ctx.storage.strip_protocol(uri), "rb") as handle:
        return handle.read().decode()


def test_quality_history_and_report_land_in_the_bucket_and_gold_gate_holds_on_s3(
    s3: S3Stack, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    generate(out_dir=raw, scale=0.005, start=date(2020, 11, 2), days=8, bad_lines=3)
    settings = s3.lake()
    seed_lake(settings, SeedOptions(source=raw, identities=False))
    ctx = RunContext(settings)
    run_all(ctx)

    history = ctx.lake.scan(results_uri(ctx)).collect()
    assert set(history["layer"]) == {"bronze", "silver", "gold"}
    assert "failed" not in history["outcome"].to_list()
    page = read_text(ctx, report_uri(ctx))
    assert "Suite gold.print_features" in page and "Reconciliation" in page
    assert read_text(ctx, latest_uri(ctx)) == page
    counted = run_query(ctx, "select count(*) as n from gold.quality_results")
    assert counted["n"].item() == history.height

    # A negative payment appended behind the pipeline's back: gold must not publish.
    version = ctx.lake.version(ctx.gold(GOLD_TABLE))
    user = ctx.lake.scan(ctx.silver("prints")).select(pl.col("user_id").min()).collect().item()
    bad = pl.DataFrame(
        {
            "day": [date(2020, 11, 3)],
            "user_id": [user],
            "value_prop": ["point"],
            "total": [Decimal("-99.00")],
            "run_id": ["crafted"],
        },
        schema=SILVER["pays"],
    )
    ctx.lake.write(
        ctx.silver("pays"),
        bad,
        schema=SILVER["pays"],
        partition_by="day",
        metadata={"run_id": "crafted", "days": "2020-11-03"},
    )
    failing = RunContext(settings)
    with pytest.raises(DataError, match="prior_amount_non_negative"):
        run_stage(failing, "gold")
    assert ctx.lake.version(ctx.gold(GOLD_TABLE)) == version
    recorded = ctx.lake.scan(results_uri(ctx)).filter(pl.col("run_id") == failing.run_id).collect()
    assert "failed" in recorded["outcome"].to_list()
    assert "prior_amount_non_negative" in read_text(failing, report_uri(failing))
