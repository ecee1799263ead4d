"""The gold audit columns the gold plan computes itself (``build_features(audit=True)``) equal
the ones re-derived from silver (:mod:`jobs.quality.derive`), and they still catch a wrong row.

The local engine validates gold with the fused columns (cheap: no join with silver after the
computation); derive.py stays the reference and the path for rows read back from Dask.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.errors import DataError
from jobs.gold import buckets
from jobs.pipeline import run_stage
from jobs.quality.derive import gold_audit_columns
from jobs.quality.suites import gold_suite
from jobs.quality.validate import validate_frame
from jobs.schemas import GOLD, GOLD_AUDIT, SILVER
from tests.conftest import LocalLake
from tests.quality.test_pipeline_quality import GOLD as GOLD_TABLE
from tests.quality.test_pipeline_quality import gold_files, land_small

D0 = date(2020, 11, 1)
ALL_WEEKS = [date(2020, 10, 26) + timedelta(weeks=i) for i in range(7)]


def _silver(n: int, source: str, rng: np.random.Generator) -> pl.LazyFrame:
    columns: dict[str, list] = {
        "day": [D0 + timedelta(days=int(x)) for x in rng.integers(0, 40, n)],
        "user_id": rng.integers(1, 30, n).tolist(),
        "value_prop": rng.choice(["a", "b", "c"], n).tolist(),
        "run_id": ["r"] * n,
    }
    if source == "pays":
        columns["total"] = [Decimal(int(x)) / 100 for x in rng.integers(1, 10**6, n)]
    else:
        columns["position"] = rng.integers(0, 5, n).tolist()
    return pl.DataFrame(columns, schema=SILVER[source]).lazy()


@pytest.fixture(scope="module")
def silver() -> dict[str, pl.LazyFrame]:
    rng = np.random.default_rng(7)
    return {s: _silver(n, s, rng) for s, n in (("prints", 3000), ("taps", 800), ("pays", 2000))}


def build_gold(
    silver: dict[str, pl.LazyFrame], weeks: list[date], mode: str, packed: bool, *, audit: bool
) -> pl.DataFrame:
    from jobs.gold.features import build_features

    return build_features(
        prints=silver["prints"],
        taps=silver["taps"],
        pays=silver["pays"],
        weeks=weeks,
        mode=mode,  # type: ignore[arg-type]
        n_weeks=3,
        packed=packed,
        audit=audit,
        first_day=D0,
    ).collect(engine="streaming")


@pytest.mark.parametrize("mode", ["calendar", "rolling"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
@pytest.mark.parametrize(
    "weeks",
    # the last week whose windows reach the first day, and the first whose windows do not
    # (there the running sums are not computed at all)
    [ALL_WEEKS, ALL_WEEKS[-2:], ALL_WEEKS[3:4], ALL_WEEKS[4:5]],
    ids=["full", "last-weeks", "last-first-week", "first-later-week"],
)
def test_fused_audit_columns_equal_the_ones_derived_from_silver(
    silver: dict[str, pl.LazyFrame], mode: str, packed: bool, weeks: list[date]
) -> None:
    fused = build_gold(silver, weeks, mode, packed, audit=True).with_row_index("row")
    assert fused.schema == pl.Schema({"row": pl.UInt32(), **GOLD, **GOLD_AUDIT})
    gold = fused.drop(GOLD_AUDIT.names())
    assert_frame_equal(gold.drop("row"), build_gold(silver, weeks, mode, packed, audit=False))
    derived = (
        gold_audit_columns(
            gold.lazy(),
            prints=silver["prints"],
            taps=silver["taps"],
            pays=silver["pays"],
            mode=mode,  # type: ignore[arg-type]
            n_weeks=3,
            first_day=D0,
        )
        .collect()
        .sort("row")
    )
    assert_frame_equal(fused.select("row", *GOLD_AUDIT.names()), derived.select("row", *GOLD_AUDIT.names()))
    # the weeks up to ALL_WEEKS[3] have prints whose 3-week windows reach the first day D0
    assert fused["expected_prior_views"].is_not_null().any() == (weeks[0] <= ALL_WEEKS[3])


def _one_first_week_row(frame: pl.DataFrame) -> int:
    """A row with history whose window holds everything (the first-weeks check covers it)."""
    rows = frame.with_row_index("row").filter(
        pl.col("expected_prior_views").is_not_null() & (pl.col("prior_views") > 0)
    )
    return int(rows["row"][0])


def _bump(frame: pl.DataFrame, column: str, row: int, by: object) -> pl.DataFrame:
    hit = pl.int_range(pl.len()) == row
    if frame.schema[column] == pl.Boolean:
        return frame.with_columns(pl.when(hit).then(~pl.col(column)).otherwise(pl.col(column)).alias(column))
    value = pl.lit(by, dtype=frame.schema[column])
    return frame.with_columns(
        pl.when(hit).then(pl.col(column) + value).otherwise(pl.col(column)).cast(frame.schema[column])
    )


@pytest.mark.parametrize(
    ("column", "by", "check"),
    [
        ("prior_views", 1, "first_weeks_prior_views_counts_only_existing_history"),
        ("prior_clicks", 1, "first_weeks_prior_clicks_counts_only_existing_history"),
        ("prior_payments", 1, "first_weeks_prior_payments_counts_only_existing_history"),
        ("prior_amount", Decimal("0.01"), "first_weeks_prior_amount_cents_counts_only_existing_history"),
        ("clicked", None, "clicked_iff_same_day_tap"),
    ],
)
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_a_wrong_gold_row_fails_its_check_against_the_fused_columns(
    silver: dict[str, pl.LazyFrame], column: str, by: object, check: str, packed: bool
) -> None:
    fused = build_gold(silver, ALL_WEEKS, "calendar", packed, audit=True)
    suite = gold_suite(ALL_WEEKS, first_day=D0, mode="calendar")
    assert [r.check for r in validate_frame(fused, suite) if not r.success] == []
    wrong = _bump(fused, column, _one_first_week_row(fused), by)
    failed = {r.check: r for r in validate_frame(wrong, suite) if not r.success}
    assert list(failed) == [check]
    assert failed[check].unexpected_count == 1


def test_the_local_engine_holds_the_commit_when_a_computed_gold_row_is_wrong(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the gold computation (simulated: one prior off by one after the plan ran) is
    caught by the fused first-weeks check, and nothing is published."""
    land_small(lake)
    lake.run()
    version, files = lake.version("gold", GOLD_TABLE), gold_files(lake)
    real = buckets.build_features

    def off_by_one(**kwargs: object) -> pl.LazyFrame:
        gold = real(**kwargs)  # type: ignore[arg-type]
        return gold.with_columns(
            pl.when(pl.col("prior_views") > 0)
            .then(pl.col("prior_views") + 1)
            .otherwise(pl.col("prior_views"))
        )

    monkeypatch.setattr(buckets, "build_features", off_by_one)
    with pytest.raises(DataError, match="first_weeks_prior_views_counts_only_existing_history"):
        run_stage(lake.context(), "gold", full=True)
    assert lake.version("gold", GOLD_TABLE) == version
    assert gold_files(lake) == files


@pytest.mark.parametrize("n_buckets", [1, 3])
def test_the_local_engine_holds_the_commit_when_a_bucket_loses_a_gold_row(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch, n_buckets: int
) -> None:
    """A plan that drops a print (simulated: user 1's last row) fails the reconciliation of
    that bucket's rows with its silver prints, which are counted once for every bucket; nothing
    is published. The same build without the fault reconciles."""
    land_small(lake)
    lake.run(gold_buckets=n_buckets)
    clean = run_stage(lake.context(gold_buckets=n_buckets), "gold", full=True)
    assert "3 gold rows = 3 silver prints" in str(clean.details)
    version, files = lake.version("gold", GOLD_TABLE), gold_files(lake)
    real = buckets.build_features

    def drops_a_print(**kwargs: object) -> pl.LazyFrame:
        gold = real(**kwargs)  # type: ignore[arg-type]
        last = (pl.int_range(pl.len()) == pl.len() - 1).over("user_id")
        return gold.filter(~((pl.col("user_id") == 1) & last))

    monkeypatch.setattr(buckets, "build_features", drops_a_print)
    with pytest.raises(DataError) as failed:
        run_stage(lake.context(gold_buckets=n_buckets), "gold", full=True)
    where = f"user bucket {1 % n_buckets + 1} of {n_buckets}"
    assert "rows_reconcile_with_silver_prints" in str(failed.value) and where in str(failed.value)
    assert lake.version("gold", GOLD_TABLE) == version
    assert gold_files(lake) == files
