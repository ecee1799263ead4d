"""Every check of every suite fails on a crafted bad data set and passes on a good one.

The good frames are tiny and realistic; each case changes one thing and asserts that the check
it targets fails (with its severity and, for a row check, one unexpected row), through the one
evaluation path (:func:`jobs.quality.validate.validate_frame`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from jobs.gold.features import build_features
from jobs.quality.derive import gold_audit_columns
from jobs.quality.results import CheckResult
from jobs.quality.suites import Suite, bronze_suite, gold_suite, silver_suite
from jobs.quality.validate import validate_frame
from jobs.schemas import BRONZE, SILVER, Limits

ND = date(2020, 11, 2)  # a Monday
RUN_DATE = date(2026, 11, 22)
KNOWN = ("cellphone_recharge", "link_cobro", "point")
AT = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


# -- good data ----------------------------------------------------------------------------------
def bronze_events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "line_number": [1, 2],
            "day": [ND, ND],
            "user_id": [1, 2],
            "value_prop": ["point", "link_cobro"],
            "position": [0, 1],
            "source_file": ["prints/a.json"] * 2,
            "run_id": ["r1"] * 2,
            "ingested_at": [AT] * 2,
            "_rescued": [None, None],
        },
        schema_overrides=dict(BRONZE["prints"]),
    )


def bronze_pays() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "line_number": [2, 3],
            "pay_date": [ND, ND],
            "total": [Decimal("10.50"), Decimal("0.01")],
            "user_id": [1, 2],
            "value_prop": ["point", "point"],
            "source_file": ["pays/a.csv"] * 2,
            "run_id": ["r1"] * 2,
            "ingested_at": [AT] * 2,
            "_rescued": [None, None],
        },
        schema_overrides=dict(BRONZE["pays"]),
    )


def silver_prints() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "day": [ND, date(2020, 11, 9), date(2020, 11, 10)],
            "user_id": [1, 1, 2],
            "value_prop": ["point", "point", "link_cobro"],
            "position": [0, 1, 0],
            "run_id": ["r1"] * 3,
        },
        schema=SILVER["prints"],
    )


def silver_taps() -> pl.DataFrame:
    return pl.DataFrame(
        {"day": [ND], "user_id": [1], "value_prop": ["point"], "position": [0], "run_id": ["r1"]},
        schema=SILVER["taps"],
    )


def silver_pays() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "day": [date(2020, 11, 3), date(2020, 11, 4)],
            "user_id": [1, 1],
            "value_prop": ["point", "point"],
            "total": [Decimal("10.50"), Decimal("0.01")],
            "run_id": ["r1"] * 2,
        },
        schema=SILVER["pays"],
    )


WEEKS = [ND, date(2020, 11, 9)]


def gold_rows() -> pl.DataFrame:
    return build_features(
        prints=silver_prints().lazy(),
        taps=silver_taps().lazy(),
        pays=silver_pays().lazy(),
        weeks=WEEKS,
        mode="calendar",
        n_weeks=3,
    ).collect()


def audited_gold(gold: pl.DataFrame) -> pl.DataFrame:
    """What the gold gate validates: gold rows plus audit columns from the same silver."""
    return gold_audit_columns(
        gold.lazy(),
        prints=silver_prints().lazy(),
        taps=silver_taps().lazy(),
        pays=silver_pays().lazy(),
        mode="calendar",
        n_weeks=3,
        first_day=ND,
    ).collect()


SUITES: dict[str, tuple[Callable[[], Suite], Callable[[], pl.DataFrame]]] = {
    "bronze.prints": (lambda: bronze_suite("prints", limits=Limits.for_run(RUN_DATE)), bronze_events),
    "bronze.pays": (lambda: bronze_suite("pays", limits=Limits.for_run(RUN_DATE)), bronze_pays),
    "silver.prints": (
        lambda: silver_suite("prints", known_value_props=KNOWN, min_day=date(2015, 1, 1), run_date=RUN_DATE),
        silver_prints,
    ),
    "silver.pays": (
        lambda: silver_suite("pays", known_value_props=KNOWN, min_day=date(2015, 1, 1), run_date=RUN_DATE),
        silver_pays,
    ),
    "gold.print_features": (lambda: gold_suite(WEEKS, first_day=ND, mode="calendar"), gold_rows),
}


def validate(suite_name: str, frame: pl.DataFrame, *, only: str | None = None) -> dict[str, CheckResult]:
    """Validate ``frame`` with the suite (or only its check ``only``, which is faster)."""
    suite = SUITES[suite_name][0]()
    if only:
        suite = replace(suite, checks=(suite.check(only),))
    if suite.layer == "gold":
        frame = audited_gold(frame)
    return {r.check: r for r in validate_frame(frame, suite)}


# -- crafted bad data ---------------------------------------------------------------------------
def put(
    column: str, value: Any, *, row: int = 0, dtype: Any = None
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Set one cell (``row``) of ``column`` to ``value``."""

    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        target = dtype or frame.schema[column]
        return frame.with_columns(
            pl.when(pl.int_range(pl.len()) == row)
            .then(pl.lit(value, dtype=target))
            .otherwise(pl.col(column))
            .cast(target)
            .alias(column)
        )

    return mutate


def retype(column: str, dtype: Any) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        if dtype == pl.Int64:
            return frame.with_columns(pl.int_range(pl.len()).cast(pl.Int64).alias(column))
        return frame.with_columns(pl.col(column).cast(dtype))

    return mutate


def add_one(column: str, row: int) -> Callable[[pl.DataFrame], pl.DataFrame]:
    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        bump = pl.when(pl.int_range(pl.len()) == row).then(1).otherwise(0)
        return frame.with_columns((pl.col(column) + bump).cast(frame.schema[column]))

    return mutate


def _bronze_cases(source: str) -> list[tuple[str, str, Callable[..., pl.DataFrame]]]:
    suite = f"bronze.{source}"
    cases = [(suite, "columns_match_contract", lambda f: f.with_columns(pl.lit("x").alias("unexpected")))]
    for col, dtype in BRONZE[source].items():
        other = pl.Int64 if dtype == pl.String else pl.String
        cases.append((suite, f"{col}_type", retype(col, other)))
    for col in ("source_file", "line_number", "run_id", "ingested_at"):
        cases.append((suite, f"{col}_not_null", put(col, None)))
    day = "pay_date" if source == "pays" else "day"
    cases += [
        (suite, "day_not_before_min_day", put(day, date(2001, 1, 1))),
        (suite, "day_not_after_run_date", put(day, date(2099, 1, 1))),
        (suite, "no_unknown_fields", put("_rescued", '{"device": "ios"}')),
    ]
    return cases


def _silver_cases(source: str) -> list[tuple[str, str, Callable[..., pl.DataFrame]]]:
    suite = f"silver.{source}"
    cases = [
        (suite, "day_not_null", put("day", None)),
        (suite, "user_id_not_null", put("user_id", None)),
        (suite, "value_prop_not_null", put("value_prop", None)),
        (suite, "run_id_not_null", put("run_id", None)),
        (suite, "user_id_positive", put("user_id", 0)),
        (suite, "value_prop_in_known_set", put("value_prop", "mystery_prop")),
        (suite, "day_not_before_min_day", put("day", date(2001, 1, 1))),
        (suite, "day_not_after_run_date", put("day", date(2099, 1, 1))),
    ]
    if source == "pays":
        cases += [
            (suite, "total_not_null", put("total", None)),
            (suite, "total_non_negative", put("total", Decimal("-1.00"))),
            (suite, "total_at_most_two_decimals", put("total", Decimal("1.005"), dtype=pl.Decimal(18, 3))),
        ]
    else:
        cases += [
            (suite, "position_not_null", put("position", None)),
            (suite, "position_non_negative", put("position", -1)),
        ]
    return cases


def _gold_cases() -> list[tuple[str, str, Callable[..., pl.DataFrame]]]:
    suite = "gold.print_features"
    cases = [(suite, f"{c}_not_null", put(c, None)) for c in gold_rows().columns]
    # row 1 is user 1's print of 2020-11-09: it has prior history.
    cases += [
        (suite, "user_id_positive", put("user_id", -1)),
        (suite, "position_non_negative", put("position", -1)),
        (suite, "prior_views_non_negative", put("prior_views", -1)),
        (suite, "prior_clicks_non_negative", put("prior_clicks", -1)),
        (suite, "prior_payments_non_negative", put("prior_payments", -1)),
        (suite, "prior_amount_non_negative", put("prior_amount", Decimal("-0.01"))),
        (suite, "week_start_in_rebuilt_weeks", put("week_start", date(2020, 11, 16))),
        (suite, "week_start_is_monday_of_day", put("week_start", ND, row=1)),
        (suite, "clicked_iff_same_day_tap", put("clicked", False, row=0)),
        (suite, "first_weeks_prior_views_counts_only_existing_history", add_one("prior_views", 1)),
        (suite, "first_weeks_prior_clicks_counts_only_existing_history", add_one("prior_clicks", 1)),
        (suite, "first_weeks_prior_payments_counts_only_existing_history", add_one("prior_payments", 1)),
        (
            suite,
            "first_weeks_prior_amount_cents_counts_only_existing_history",
            put("prior_amount", Decimal("99.99"), row=1),
        ),
    ]
    return cases


CASES = [
    *_bronze_cases("prints"),
    *_bronze_cases("pays"),
    *_silver_cases("prints"),
    *_silver_cases("pays"),
    *_gold_cases(),
]


# -- tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("suite_name", sorted(SUITES))
def test_good_data_passes_every_check_of_the_suite(suite_name: str) -> None:
    results = validate(suite_name, SUITES[suite_name][1]())
    failed = {name: r.observed for name, r in results.items() if not r.success}
    assert failed == {}
    assert set(results) == {c.name for c in SUITES[suite_name][0]().checks}


@pytest.mark.parametrize(("suite_name", "check", "mutate"), CASES, ids=[f"{s}.{c}" for s, c, _ in CASES])
def test_crafted_bad_data_fails_the_check_it_targets(
    suite_name: str, check: str, mutate: Callable[..., pl.DataFrame]
) -> None:
    result = validate(suite_name, mutate(SUITES[suite_name][1]()), only=check)[check]
    assert not result.success, result
    assert not result.observed.startswith("could not evaluate"), result.observed
    expected = "warning" if check in ("value_prop_in_known_set", "no_unknown_fields") else "failed"
    assert result.outcome == expected
    if not check.endswith(("_type", "columns_match_contract")):  # a row check: the one changed row
        assert (result.unexpected_count, len(result.sample)) == (1, 1), result


def test_every_check_of_every_suite_has_a_crafted_bad_case() -> None:
    covered = {(s, c) for s, c, _ in CASES}
    defined = {(name, c.name) for name, (factory, _) in SUITES.items() for c in factory().checks}
    assert defined - covered == set()


def test_a_failing_check_reports_observed_values_and_the_unexpected_rows() -> None:
    results = validate("silver.pays", put("total", Decimal("-3.00"), row=1)(silver_pays()))
    r = results["total_non_negative"]
    assert r.unexpected_count == 1 and r.evaluated_rows == 2
    assert "1 of 2 rows unexpected" in r.observed and "values -3.00" in r.observed
    assert r.sample == (
        {"day": "2020-11-04", "user_id": "1", "value_prop": "point", "run_id": "r1", "total": "-3.00"},
    )


def test_severity_overrides_turn_a_failure_into_a_warning_and_back() -> None:
    overrides = {"silver.day_not_after_run_date": "warning", "value_prop_in_known_set": "failure"}
    suite = silver_suite(
        "prints", known_value_props=KNOWN, min_day=date(2015, 1, 1), run_date=RUN_DATE, overrides=overrides
    )
    assert suite.check("day_not_after_run_date").severity == "warning"
    assert suite.check("value_prop_in_known_set").severity == "failure"
    assert suite.check("user_id_positive").severity == "failure"


def test_validation_prints_no_progress_bars(capfd: pytest.CaptureFixture[str]) -> None:
    validate("silver.prints", silver_prints())
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out
    assert "%|" not in captured.err


def test_a_correct_gold_bucket_passes_every_check() -> None:
    from jobs.quality.gate import audit_gold_bucket

    inputs = {"prints": silver_prints().lazy(), "taps": silver_taps().lazy(), "pays": silver_pays().lazy()}
    results = audit_gold_bucket(
        gold_rows(),
        inputs,
        weeks=list(WEEKS),
        mode="calendar",
        windows=(3,),
        first_day=ND,
        severity={},
        sample_rows=3,
    )
    assert all(r.success for r in results) and len(results) == 23


def test_bronze_and_silver_suites_check_the_window_bronze_quarantines_outside_of() -> None:
    limits = Limits.for_run(RUN_DATE, min_day=date(2015, 1, 1), max_future_days=1)
    silver = silver_suite(
        "prints", known_value_props=KNOWN, min_day=date(2015, 1, 1), run_date=RUN_DATE, max_future_days=1
    )
    bronze = bronze_suite("prints", limits=limits)
    for suite in (silver, bronze):
        assert suite.check("day_not_before_min_day").kwargs["min_value"] == limits.min_day
        assert suite.check("day_not_after_run_date").kwargs["max_value"] == limits.max_day
    assert limits.max_day == date(2026, 11, 23)


@pytest.mark.parametrize(
    ("day", "passes"),
    [
        (date(2015, 1, 1), True),
        (date(2026, 11, 23), True),
        (date(2014, 12, 31), False),
        (date(2026, 11, 24), False),
    ],
)
def test_silver_accepts_exactly_the_days_bronze_accepts(day: date, passes: bool) -> None:
    from jobs.bronze.events import parse_events
    from jobs.bronze.lines import split_lines

    line = f'{{"day": "{day}", "event_data": {{"position": 0, "value_prop": "point"}}, "user_id": 1}}'
    parsed = parse_events(split_lines(line.encode()), limits=Limits.for_run(RUN_DATE)).collect()
    assert (parsed["reason"].item() is None) == passes
    results = validate(
        "silver.prints",
        put("day", day)(silver_prints()),
        only="day_not_after_run_date" if day > ND else "day_not_before_min_day",
    )
    assert all(r.success == passes for r in results.values())
