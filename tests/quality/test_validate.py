"""The one evaluation path (:mod:`jobs.quality.validate`): what each expectation class means.

Small frames built on the fly: violating rows fail the check with the right name and count, clean
rows pass, decimals are compared exactly, a check that cannot be evaluated fails (never passes),
and every declared check is a valid Great Expectations expectation (the catalogue).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from jobs.quality.suites import Check, Suite, at_least, equal_columns, not_null
from jobs.quality.validate import RULES, SMALL_SET, validate_frame
from tests.quality.test_suites import ND, SUITES, put


def _suite(*checks: Check) -> Suite:
    return Suite("silver", "t", checks, sample_columns=("id",))


FRAME = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "n": [0, -1, None, -5],
        "s": ["a", "b", None, "zz"],
        "d": [ND, date(2001, 1, 1), ND, None],
        "a": [1, 2, None, None],
        "b": [1, 3, 7, None],
    }
)

CASES: list[tuple[Check, int, str]] = [
    (not_null("n"), 1, "1 of 4 rows unexpected"),
    (Check("s_null", "ExpectColumnValuesToBeNull", {"column": "s"}, ""), 3, "values a, b, zz"),
    (at_least("n", 0), 2, "values -1, -5"),
    (at_least("n", -2, strict=True), 1, "values -5"),
    (
        Check("d_window", "ExpectColumnValuesToBeBetween", {"column": "d", "min_value": ND}, ""),
        1,
        "values 2001-01-01",
    ),
    (Check("s_in", "ExpectColumnValuesToBeInSet", {"column": "s", "value_set": ["a", "b"]}, ""), 1, "zz"),
    (equal_columns("a_is_b", "a", "b", ""), 2, "values (2, 3), (null, 7)"),
    (equal_columns("a_is_b_if_both", "a", "b", "", ignore_missing=True), 1, "values (2, 3)"),
]


@pytest.mark.parametrize(("check", "count", "observed"), CASES, ids=[c.name for c, _, _ in CASES])
def test_each_expectation_counts_exactly_the_rows_it_guards(check: Check, count: int, observed: str) -> None:
    (result,) = validate_frame(FRAME, _suite(check), sample_rows=5)
    assert (result.check, result.success, result.unexpected_count, result.evaluated_rows) == (
        check.name,
        False,
        count,
        4,
    )
    assert observed in result.observed
    assert len(result.sample) == count and all("id" in row for row in result.sample)
    flagged = [int(row["id"]) for row in result.sample]
    for frame in (FRAME.head(0), FRAME.filter(~pl.col("id").is_in(flagged))):  # the rest passes
        (ok,) = validate_frame(frame, _suite(check))
        assert ok.success and ok.unexpected_count == 0, ok


@pytest.mark.parametrize("extra", [0, SMALL_SET], ids=["compared-with-each-value", "hashed"])
def test_a_string_value_set_counts_the_same_rows_whatever_its_size(extra: int) -> None:
    """A small set of strings is compared value by value, a larger one hashed (``is_in``): the
    same rows are unexpected, nulls never are."""
    values = ["a", "b", *[f"v{i}" for i in range(extra)]]
    check = Check("s_in", "ExpectColumnValuesToBeInSet", {"column": "s", "value_set": values}, "")
    frame = pl.concat([FRAME] * 3)
    (result,) = validate_frame(frame, _suite(check), sample_rows=5)
    assert (result.unexpected_count, [row["s"] for row in result.sample]) == (3, ["zz"] * 3)
    (clean,) = validate_frame(frame.filter(pl.col("s") != "zz"), _suite(check))
    assert clean.success


def test_schema_checks_compare_column_names_and_polars_types() -> None:
    columns = Check(
        "cols", "ExpectTableColumnsToMatchSet", {"column_set": ["id", "n", "x"], "exact_match": True}, ""
    )
    typed = Check("n_type", "ExpectColumnValuesToBeOfType", {"column": "n", "type_": "Int32"}, "")
    cols, n_type = validate_frame(FRAME.select("id", "n"), _suite(columns, typed))
    assert not cols.success and cols.observed == "[id, n]; mismatched: missing ['x']"
    assert not n_type.success and n_type.observed == "Int64"
    loose = replace(columns, kwargs={"column_set": ["id", "n"], "exact_match": False})
    assert all(r.success for r in validate_frame(FRAME.select("id", "n", "s"), _suite(loose)))


def test_decimals_are_compared_exactly_not_as_float64() -> None:
    big = pl.Decimal(38, 2)
    frame = pl.DataFrame(
        {"id": [1], "a": [Decimal("12345678901234567.89")], "b": [Decimal("12345678901234567.88")]},
        schema={"id": pl.Int64, "a": big, "b": big},
    )
    assert float(frame["a"][0]) == float(frame["b"][0])  # what a float64 comparison would pass
    (r,) = validate_frame(frame, _suite(equal_columns("a_is_b", "a", "b", "")))
    assert r.unexpected_count == 1 and "(12345678901234567.89, 12345678901234567.88)" in r.observed
    tiny = pl.DataFrame({"id": [1], "a": [Decimal("-0.01")]}, schema={"id": pl.Int64, "a": big})
    (neg,) = validate_frame(tiny, _suite(at_least("a", 0)))
    assert neg.unexpected_count == 1 and "values -0.01" in neg.observed


@pytest.mark.parametrize(
    "check",
    [
        Check("mean", "ExpectColumnMeanToBeBetween", {"column": "n", "min_value": 0}, ""),
        at_least("missing_column", 0),
        Check("text_vs_date", "ExpectColumnValuesToBeBetween", {"column": "s", "min_value": ND}, ""),
        Check("set_of_text", "ExpectColumnValuesToBeInSet", {"column": "n", "value_set": ["x"]}, ""),
    ],
    ids=lambda c: c.name,
)
def test_a_check_that_cannot_be_evaluated_fails_and_says_why(check: Check) -> None:
    (result,) = validate_frame(FRAME, _suite(check))
    assert not result.success and result.observed.startswith("could not evaluate: "), result.observed


def test_a_day_retyped_to_text_fails_its_type_and_window_checks_in_bronze() -> None:
    suite = SUITES["bronze.prints"][0]()
    frame = SUITES["bronze.prints"][1]().with_columns(pl.col("day").cast(pl.String))
    failed = {r.check: r.observed for r in validate_frame(frame, suite) if not r.success}
    assert set(failed) == {"day_type", "day_not_before_min_day", "day_not_after_run_date"}
    assert failed["day_type"] == "String"


def test_every_failing_row_counts_in_a_large_frame_and_samples_stay_first_n() -> None:
    suite = SUITES["silver.prints"][0]()
    base = SUITES["silver.prints"][1]()
    frame = pl.concat([base] * 20_000).with_columns(
        position=pl.when(pl.int_range(pl.len()) % 7 == 3).then(-1).otherwise(pl.col("position")),
        value_prop=pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("odd")).otherwise("value_prop"),
    )
    results = {r.check: r for r in validate_frame(frame, suite, sample_rows=2)}
    assert {c for c, r in results.items() if not r.success} == {
        "position_non_negative",
        "value_prop_in_known_set",
    }
    r = results["position_non_negative"]
    assert r.unexpected_count == sum(1 for i in range(frame.height) if i % 7 == 3) and len(r.sample) == 2
    assert [row["position"] for row in r.sample] == ["-1", "-1"] and r.evaluated_rows == frame.height
    assert results["value_prop_in_known_set"].unexpected_count == frame.height // 3


def test_a_null_in_a_lineage_column_fails_only_its_not_null_check() -> None:
    suite = SUITES["bronze.prints"][0]()
    frame = put("line_number", None, row=1)(SUITES["bronze.prints"][1]())
    failed = {r.check: r.unexpected_count for r in validate_frame(frame, suite) if not r.success}
    assert failed == {"line_number_not_null": 1}


def test_validation_does_not_import_great_expectations() -> None:
    code = (
        "import sys\n"
        "from tests.quality.test_suites import SUITES\n"
        "from jobs.quality.validate import validate_frame\n"
        "for name, (suite, frame) in SUITES.items():\n"
        "    if not name.startswith('gold'):\n"
        "        assert all(r.success for r in validate_frame(frame(), suite()))\n"
        "assert not any(m.startswith(('great_expectations', 'pandas')) for m in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


def _gx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def test_every_declared_check_is_a_great_expectations_expectation() -> None:
    """The catalogue: each check's class exists in GX 1.x and accepts its arguments; each class
    the suites use has its rule here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations.expectations as gxe

    for name, (factory, _) in SUITES.items():
        for check in factory().checks:
            assert check.expectation in RULES, (name, check.name)
            expectation = getattr(gxe, check.expectation)(**_gx_kwargs(dict(check.kwargs)))
            for key, value in check.kwargs.items():
                got = getattr(expectation, key)
                assert got == value or list(got) == list(value), (name, check.name, key)
