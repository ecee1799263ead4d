"""What is checked on each layer, as plain data: suites of named checks with a severity.

A :class:`Check` names a Great Expectations 1.x expectation class (``great_expectations.
expectations.<Name>``) and its arguments; nothing here imports Great Expectations, so defining,
listing and documenting suites is free. Severities come from the defaults below, overridden by
``QUALITY_SEVERITY`` (``check=warning`` where ``check`` is the check name, optionally prefixed by
its layer or suite: ``silver.value_prop_in_known_set``, ``silver.pays.total_non_negative``).

Arguments are compared in the column's own type (dates as ``datetime.date``, decimals exactly);
what each expectation class means is stated once, in :mod:`jobs.quality.validate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import pairwise
from typing import Any

import polars as pl

from jobs.feature_registry import GOLD_FEATURES, ONE_WINDOW, window_names
from jobs.quality.results import Severity
from jobs.schemas import BRONZE, DEFAULT_MAX_FUTURE_DAYS, LINEAGE, RESCUED, Limits, gold_schema
from jobs.weeks import Mode, first_weeks_end, week_start

# Columns the bronze parser carries for quarantining; Lake.write drops them (conform) and so
# does the bronze gate before validating the frame that is written.
BRONZE_WORK_COLUMNS = ("raw_line", "reason")


@dataclass(frozen=True)
class Check:
    """One named expectation. ``expectation`` is a class of ``great_expectations.expectations``."""

    name: str
    expectation: str
    kwargs: Mapping[str, Any]
    description: str
    severity: Severity = "failure"

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns the check looks at (shown next to the sample keys of an unexpected row)."""
        keys = ("column", "column_A", "column_B")
        return tuple(self.kwargs[k] for k in keys if k in self.kwargs)

    @property
    def column(self) -> str | None:
        cols = self.columns
        return ", ".join(cols) if cols else None


# A derived column: an expression, or a function of the frame's schema that gives one.
Derived = pl.Expr | Callable[[pl.Schema], pl.Expr]


@dataclass(frozen=True)
class Suite:
    """The checks of one table of one layer.

    ``derived`` columns are added (Polars expressions, or functions of the frame's schema
    giving one) before validation, for checks that compare against something computed;
    ``sample_columns`` identify an unexpected row.
    """

    layer: str
    table: str
    checks: tuple[Check, ...]
    derived: Mapping[str, Derived] = field(default_factory=dict)
    sample_columns: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.table}"

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no check {name!r}")


# -- helpers ------------------------------------------------------------------------------------
def not_null(column: str, what: str = "") -> Check:
    return Check(
        f"{column}_not_null",
        "ExpectColumnValuesToNotBeNull",
        {"column": column},
        f"{what or column} is never null",
    )


def at_least(
    column: str,
    minimum: Any,
    *,
    strict: bool = False,
    name: str | None = None,
    description: str | None = None,
) -> Check:
    kwargs: dict[str, Any] = {"column": column, "min_value": minimum}
    if strict:
        kwargs["strict_min"] = True
    op = ">" if strict else "≥"
    return Check(
        name or f"{column}_{'positive' if strict else 'non_negative'}",
        "ExpectColumnValuesToBeBetween",
        kwargs,
        description or f"{column} {op} {minimum}",
    )


def equal_columns(name: str, a: str, b: str, description: str, *, ignore_missing: bool = False) -> Check:
    kwargs: dict[str, Any] = {"column_A": a, "column_B": b}
    if ignore_missing:
        kwargs["ignore_row_if"] = "either_value_is_missing"
    return Check(name, "ExpectColumnPairValuesToBeEqual", kwargs, description)


def severity_of(
    name: str, default: Severity, *, layer: str, table: str, overrides: Mapping[str, str]
) -> Severity:
    """The severity of a check named ``name`` after ``QUALITY_SEVERITY`` overrides."""
    for key in (f"{layer}.{table}.{name}", f"{layer}.{name}", name):
        if key in overrides:
            return overrides[key]  # type: ignore[return-value]
    return default


def with_severities(
    checks: Iterable[Check], *, layer: str, table: str, overrides: Mapping[str, str]
) -> tuple[Check, ...]:
    """Apply ``QUALITY_SEVERITY`` overrides (most specific key wins)."""
    return tuple(
        replace(c, severity=severity_of(c.name, c.severity, layer=layer, table=table, overrides=overrides))
        for c in checks
    )


def day_window(column: str, limits: Limits) -> list[Check]:
    """The plausible-day checks: the same window bronze quarantines rows outside of."""
    return [
        Check(
            "day_not_before_min_day",
            "ExpectColumnValuesToBeBetween",
            {"column": column, "min_value": limits.min_day},
            f"{column} ≥ QUALITY_MIN_DAY ({limits.min_day})",
        ),
        Check(
            "day_not_after_run_date",
            "ExpectColumnValuesToBeBetween",
            {"column": column, "max_value": limits.max_day},
            f"{column} ≤ the run date + QUALITY_MAX_FUTURE_DAYS ({limits.max_day})",
        ),
    ]


# -- bronze -------------------------------------------------------------------------------------
def bronze_suite(
    source: str, *, overrides: Mapping[str, str] | None = None, limits: Limits | None = None
) -> Suite:
    """Bronze rows as written: exactly the contract's columns, its types, lineage never null;
    with the run's ``limits``, days inside its window too (the parser's rule, re-checked)."""
    schema = BRONZE[source]
    checks = [
        Check(
            "columns_match_contract",
            "ExpectTableColumnsToMatchSet",
            {"column_set": list(schema.names()), "exact_match": True},
            "exactly the contract's columns (no missing, no unexpected ones)",
        ),
        *[
            Check(
                f"{col}_type",
                "ExpectColumnValuesToBeOfType",
                {"column": col, "type_": str(dtype)},
                f"{col} has type {dtype}",
            )
            for col, dtype in schema.items()
        ],
        *[not_null(col, f"lineage column {col}") for col in LINEAGE],
        Check(
            "no_unknown_fields",
            "ExpectColumnValuesToBeNull",
            {"column": RESCUED},
            "lines carry only the contract's fields (schema drift: others are kept in _rescued)",
            severity="warning",
        ),
    ]
    if limits is not None:
        checks += day_window("pay_date" if source == "pays" else "day", limits)
    return Suite(
        "bronze",
        source,
        with_severities(checks, layer="bronze", table=source, overrides=overrides or {}),
        sample_columns=("source_file", "line_number"),
    )


# -- silver -------------------------------------------------------------------------------------
def sub_cents(schema: pl.Schema) -> pl.Expr:
    """The part of each total below a cent, exactly, as an Int64 (null where total is null).

    A decimal's physical integer and scale give it without formatting every total as text for a
    regex (20x cheaper): none at all for decimal(18,2), silver's type; ``physical % 10**(scale-2)``
    for a finer scale. Any other type is cast to decimal(38,18) first.
    """
    dtype = schema.get("total")
    total = pl.col("total")
    if not isinstance(dtype, pl.Decimal):
        fine = pl.Decimal(38, 18)
        return (total.cast(fine) - total.cast(pl.Decimal(38, 2)).cast(fine)).to_physical().cast(pl.Int64)
    if (dtype.scale or 0) <= 2:
        return pl.when(total.is_not_null()).then(pl.lit(0, pl.Int64))
    return (total.to_physical() % 10 ** (dtype.scale - 2)).cast(pl.Int64)


def silver_suite(
    source: str,
    *,
    known_value_props: Iterable[str],
    min_day: date,
    run_date: date,
    max_future_days: int = DEFAULT_MAX_FUTURE_DAYS,
    overrides: Mapping[str, str] | None = None,
) -> Suite:
    """Silver rows appended by a run: keys present, values in range, dates plausible.

    The day window is bronze's (:meth:`jobs.schemas.Limits.for_run`): a day bronze accepts is
    a day silver accepts, so rows bronze let through can never freeze silver.
    """
    limits = Limits.for_run(run_date, min_day=min_day, max_future_days=max_future_days)
    checks = [
        not_null("day"),
        not_null("user_id"),
        not_null("value_prop"),
        not_null("run_id", "lineage column run_id"),
        at_least("user_id", 0, strict=True),
        Check(
            "value_prop_in_known_set",
            "ExpectColumnValuesToBeInSet",
            {"column": "value_prop", "value_set": sorted(known_value_props)},
            "value_prop is one of QUALITY_KNOWN_VALUE_PROPS (unknown: warning)",
            "warning",
        ),
        *day_window("day", limits),
    ]
    derived: dict[str, Derived] = {}
    if source == "pays":
        checks += [
            not_null("total"),
            at_least("total", 0),
            Check(
                "total_at_most_two_decimals",
                "ExpectColumnValuesToBeBetween",
                {"column": "total_sub_cents", "min_value": 0, "max_value": 0},
                "total has at most two decimals (nothing below a cent)",
            ),
        ]
        derived["total_sub_cents"] = sub_cents
    else:
        checks += [not_null("position"), at_least("position", 0)]
    return Suite(
        "silver",
        source,
        with_severities(checks, layer="silver", table=source, overrides=overrides or {}),
        derived=derived,
        sample_columns=("day", "user_id", "value_prop", "run_id"),
    )


# -- gold ---------------------------------------------------------------------------------------
# The integer features of jobs.feature_registry, compared with their expected priors as they
# are; a decimal sum (prior_amount) is compared in exact cents (its units) by a gap column. Every
# lookback window (LOOKBACK_WEEKS: the primary one, then prior_*_<N>w) gets the same checks.
# The audit columns (jobs.schemas.GOLD_AUDIT) the gold plan computes beside the rows, or
# jobs.quality.derive re-derives from silver, before the gold suite runs.
TAP_SAME_DAY = "tap_same_day"
WINDOWS_NESTED = "prior_windows_not_nested"


def _gap(column: str) -> str:
    return f"{column}_cents_gap"


def _first_weeks(audit: str, dtype: pl.DataType, n_weeks: int, first_day: date | None, mode: Mode) -> pl.Expr:
    """``audit`` on the rows whose window of ``n_weeks`` starts on or before ``first_day``, else null."""
    if first_day is None:
        return pl.lit(None, dtype)
    end = first_weeks_end(first_day, n_weeks=n_weeks, mode=mode)
    return pl.when(pl.col("day") <= end).then(pl.col(audit))


def gold_suite(
    weeks: Iterable[date],
    *,
    first_day: date | None,
    mode: Mode,
    overrides: Mapping[str, str] | None = None,
    windows: Sequence[int] = ONE_WINDOW,
) -> Suite:
    """Gold rows of the rebuilt weeks, checked before they are published (built with the
    lookback ``windows``, the primary first, in lookback ``mode``; ``first_day``: the first
    silver day, from which the first-weeks rows are counted, None when silver is empty)."""
    week_list = sorted(weeks)
    named = list(zip(windows, window_names(windows), strict=True))
    per_window = [(f, f.column(w), f.audit_for(w)) for _, w in named for f in GOLD_FEATURES]
    # Each window's expected priors: the shared audit column on the rows whose window starts
    # on or before the first silver day (the window then holds all existing history).
    expected_of = {
        f.audit_for(w): _first_weeks(f.audit_column, f.audit_dtype, n, first_day, mode)
        for n, w in named
        for f in GOLD_FEATURES
    }
    checks = [
        *[not_null(col) for col in gold_schema(windows=windows).names()],
        at_least("user_id", 0, strict=True),
        at_least("position", 0),
        *[at_least(col, 0) for _, col, _ in per_window],
        Check(
            "week_start_in_rebuilt_weeks",
            "ExpectColumnValuesToBeInSet",
            {"column": "week_start", "value_set": week_list},
            "rows belong to the weeks being rebuilt (the partitions replaced)",
        ),
        equal_columns(
            "week_start_is_monday_of_day", "week_start", "day_week_start", "week_start is the Monday of day"
        ),
        equal_columns(
            "clicked_iff_same_day_tap",
            "clicked",
            TAP_SAME_DAY,
            "clicked is true exactly where silver has a tap of the same user, value prop and day",
        ),
    ]
    derived: dict[str, pl.Expr] = {"day_week_start": week_start(pl.col("day")), **expected_of}
    for f, col, expected in per_window:
        if f.dtype.is_integer():
            checks.append(
                equal_columns(
                    f"first_weeks_{col}_counts_only_existing_history",
                    col,
                    expected,
                    f"{col} of rows whose lookback window starts on or before the first "
                    "silver day equals the events that exist before the print",
                    ignore_missing=True,
                )
            )
            continue
        checks.append(
            Check(
                f"first_weeks_{col}_cents_counts_only_existing_history",
                "ExpectColumnValuesToBeBetween",
                {"column": _gap(col), "min_value": 0, "max_value": 0},
                f"{col} of rows whose lookback window starts on or before the first silver "
                "day equals the exact units paid before the print (gap in cents is 0)",
            )
        )
        # The exact units difference, clipped into Int64: zero exactly where the amounts are
        # equal; null where nothing is expected.
        gap = pl.col(col).to_physical() - expected_of[expected].to_physical()
        derived[_gap(col)] = gap.clip(-(2**62), 2**62).cast(pl.Int64)
    if len(windows) > 1:
        # A shorter window lies inside a longer one (both end where the print's period
        # starts): every feature of a shorter window is at most the same feature of a longer
        # one, on every row (the first-weeks checks see only the first weeks).
        by_length = sorted(named)
        pairs = [
            (f.column(short), f.column(long))
            for (_, short), (_, long) in pairwise(by_length)
            for f in GOLD_FEATURES
        ]
        derived[WINDOWS_NESTED] = pl.sum_horizontal(
            [(pl.col(a) > pl.col(b)).cast(pl.Int32) for a, b in pairs]
        ).cast(pl.Int64)
        checks.append(
            Check(
                "prior_windows_nested",
                "ExpectColumnValuesToBeBetween",
                {"column": WINDOWS_NESTED, "min_value": 0, "max_value": 0},
                "every feature of a shorter lookback window is at most the same feature of a "
                "longer one (windows " + ",".join(map(str, windows)) + ")",
            )
        )
    return Suite(
        "gold",
        "print_features",
        with_severities(checks, layer="gold", table="print_features", overrides=overrides or {}),
        derived=derived,
        sample_columns=("week_start", "day", "user_id", "value_prop", "position"),
    )
