"""The Polars fast path gives exactly the results of Great Expectations on the full frame.

:func:`jobs.quality.validate.validate_frame` evaluates the checks with Polars in one pass;
:func:`jobs.quality.validate.validate_frame_gx` is the reference: GX validating every check of
the suite on the whole frame. Every crafted bad case of ``test_suites`` (and the good data, and
a few cases with several failing rows and nulls) must give equal records: check names,
outcomes, observed values, unexpected counts and sample rows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from jobs.quality.suites import Check, Suite
from jobs.quality.validate import gx_evaluated, validate_frame, validate_frame_gx
from tests.quality.test_suites import CASES, ND, SUITES, add_one, audited_gold, put

MORE: list[tuple[str, str, Callable[[pl.DataFrame], pl.DataFrame]]] = [
    # several failing rows in one check, several failing checks at once
    (
        "silver.prints",
        "many_bad_rows",
        lambda f: pl.concat([f] * 4).with_columns(
            user_id=pl.when(pl.int_range(pl.len()) % 2 == 0)
            .then(-pl.col("user_id"))
            .otherwise(pl.col("user_id")),
            value_prop=pl.when(pl.int_range(pl.len()) % 3 == 0)
            .then(pl.lit("odd"))
            .otherwise(pl.col("value_prop")),
        ),
    ),
    (
        "silver.pays",
        "null_and_negative_total",
        lambda f: put("total", None, row=1)(put("total", Decimal("-2.50"), row=0)(f)),
    ),
    (
        "silver.prints",
        "null_and_negative_position",
        lambda f: put("position", None, row=0)(put("position", -3, row=2)(f)),
    ),
    (
        "bronze.prints",
        "null_line_number_changes_its_pandas_type",
        lambda f: put("line_number", None, row=1)(f),
    ),
    (
        "bronze.pays",
        "extra_and_missing_columns",
        lambda f: f.drop("value_prop").with_columns(pl.lit(1).alias("unexpected")),
    ),
    (
        "gold.print_features",
        "several_gold_checks_fail",
        lambda f: add_one("prior_clicks", 2)(
            put("user_id", -5, row=2)(put("week_start", date(2020, 11, 16), row=0)(f))
        ),
    ),
    (
        "gold.print_features",
        "null_prior_with_a_mismatch",
        lambda f: put("prior_views", None, row=0)(add_one("prior_views", 1)(f)),
    ),
]


def _frame(suite_name: str, mutate: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    frame = mutate(SUITES[suite_name][1]())
    return audited_gold(frame) if suite_name.startswith("gold.") else frame


ALL = [(s, "good_data", lambda f: f) for s in sorted(SUITES)] + CASES + MORE


@pytest.mark.parametrize(("suite_name", "case", "mutate"), ALL, ids=[f"{s}.{c}" for s, c, _ in ALL])
@pytest.mark.parametrize("sample_rows", [3])
def test_the_fast_path_equals_great_expectations_on_the_full_frame(
    suite_name: str, case: str, mutate: Callable[[pl.DataFrame], pl.DataFrame], sample_rows: int
) -> None:
    suite = SUITES[suite_name][0]()
    frame = _frame(suite_name, mutate)
    fast = validate_frame(frame, suite, sample_rows=sample_rows)
    reference = validate_frame_gx(frame, suite, sample_rows=sample_rows)
    assert [r.check for r in fast] == [c.name for c in suite.checks]
    assert fast == reference


def test_the_crafted_failures_are_evaluated_by_polars_not_by_great_expectations() -> None:
    """Only checks whose column has a type they cannot compare (a day retyped to text) or is
    missing are left to GX; every other crafted case runs on the fast path alone."""
    left = {}
    for suite_name, case, mutate in ALL:
        names = gx_evaluated(_frame(suite_name, mutate), SUITES[suite_name][0]())
        if names:
            left[(suite_name, case)] = names
    assert left == {
        ("bronze.prints", "day_type"): ["day_not_before_min_day", "day_not_after_run_date"],
        ("bronze.pays", "pay_date_type"): ["day_not_before_min_day", "day_not_after_run_date"],
        ("bronze.pays", "extra_and_missing_columns"): ["value_prop_type"],
    }


def test_a_check_polars_cannot_translate_is_validated_by_great_expectations() -> None:
    suite = SUITES["silver.prints"][0]()
    odd = Check(
        "user_id_mean_plausible",
        "ExpectColumnMeanToBeBetween",
        {"column": "user_id", "min_value": 10, "max_value": 20},
        "mean user id",
    )
    suite = replace(suite, checks=(*suite.checks, odd))
    frame = SUITES["silver.prints"][1]()
    assert gx_evaluated(frame, suite) == ["user_id_mean_plausible"]
    results = {r.check: r for r in validate_frame(frame, suite)}
    assert not results["user_id_mean_plausible"].success
    assert results == {r.check: r for r in validate_frame_gx(frame, suite)}


def test_the_fast_path_does_not_import_great_expectations() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from tests.quality.test_suites import SUITES\n"
        "from jobs.quality.validate import validate_frame\n"
        "for name, (suite, frame) in SUITES.items():\n"
        "    if not name.startswith('gold'):\n"
        "        assert all(r.success for r in validate_frame(frame(), suite()))\n"
        "assert 'great_expectations' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


def test_every_failing_row_counts_in_a_large_frame() -> None:
    """A batch far larger than the sample: counts cover every row, samples stay first-N."""
    suite: Suite = SUITES["silver.prints"][0]()
    base = SUITES["silver.prints"][1]()
    frame = pl.concat([base] * 20_000).with_columns(
        position=pl.when(pl.int_range(pl.len()) % 7 == 3).then(-1).otherwise(pl.col("position")),
        day=pl.lit(ND),
    )
    fast = {r.check: r for r in validate_frame(frame, suite, sample_rows=2)}
    r = fast["position_non_negative"]
    assert r.unexpected_count == sum(1 for i in range(frame.height) if i % 7 == 3)
    assert r.evaluated_rows == frame.height and len(r.sample) == 2
    assert fast == {r.check: r for r in validate_frame_gx(frame, suite, sample_rows=2)}
