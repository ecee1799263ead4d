"""Evaluate a suite's Great Expectations checks with Polars: one pass, GX-shaped results.

The suites stay Great Expectations suites (each :class:`~jobs.quality.suites.Check` names a GX
1.x expectation class and its arguments); this module computes, for the expectations and column
types the suites use, the result Great Expectations would return for the pandas frame
:func:`jobs.quality.validate.to_pandas` hands it (``SUMMARY`` format): the success, the
``unexpected_count`` and ``element_count`` of a column (pair) map expectation, the first
unexpected values and their row positions (only for a check that failed), or the
``observed_value`` of a table or schema-level expectation.

Every check's unexpected count is one aggregate of a single ``select`` over the frame; values and
rows of a failing check come from a second, filtered look at that check only. A check this
module cannot translate faithfully (an expectation class or a column type it does not know, say
a comparison of a text column with a date) returns ``None`` from :func:`plan`, and
:mod:`jobs.quality.validate` has Great Expectations itself evaluate it on the full frame.

Semantics followed (GX 1.x, pandas engine, ``mostly`` = 1):

* a value is *missing* when null (or NaN): column map expectations other than
  ``ExpectColumnValuesToNotBeNull`` ignore missing values; ``ExpectColumnPairValuesToBeEqual``
  ignores rows where both (default) or either (``ignore_row_if``) value is missing, and a pair
  with one missing value is unequal;
* Decimals are compared as float64, an integer column with a null is float64 (pandas' view);
* ``ExpectColumnValuesToBeOfType`` on a typed pandas column compares the column's dtype, whose
  name is the observed value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from jobs.quality.suites import Check

INDEX = "__jobs_quality_row"


def expectation_type(name: str) -> str:
    """GX's snake_case type of an expectation class: ``ExpectColumnValuesToBeBetween`` →
    ``expect_column_values_to_be_between`` (what ``expectation_config.type`` holds)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Outcome:
    """What GX's ``ExpectationValidationResult`` says: success and its ``result`` dict."""

    success: bool
    result: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """How one check is evaluated: either from the schema and a few column statistics
    (``decide``), or as a row condition (``unexpected``, True where a row is unexpected) whose
    failing rows show ``values`` (one column, or a pair as tuples)."""

    check: Check
    unexpected: pl.Expr | None = None
    values: tuple[str, ...] = ()
    decide: Callable[[Mapping[str, Any]], Outcome] | None = None


# -- pandas' view of a Polars frame ----------------------------------------------------------
def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or isinstance(dtype, pl.Decimal)


def pandas_dtype_name(dtype: pl.DataType, has_nulls: bool) -> str | None:
    """The ``__name__`` of the scalar type of the pandas column ``to_pandas`` makes (what
    ``ExpectColumnValuesToBeOfType`` observes), or None where GX would check value by value
    (object columns) or the type is one this module does not model."""
    if dtype.is_integer():
        return "float64" if has_nulls else str(dtype).lower()
    if dtype in (pl.Float32, pl.Float64):
        return str(dtype).lower()
    if isinstance(dtype, pl.Decimal):
        return "float64"
    if isinstance(dtype, pl.Datetime):
        return "Timestamp" if dtype.time_zone else "datetime64"
    if dtype == pl.Date:
        return "datetime64"
    if dtype == pl.Boolean and not has_nulls:
        return "bool"
    if dtype == pl.String:
        return "str"  # pandas ≥ 3 infers its str dtype for text
    return None


_TYPE_NAMES = {
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "datetime64",
    "Timestamp",
    "bool",
    "str",
}


def _missing(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    return col.is_null() | col.is_nan() if dtype in (pl.Float32, pl.Float64) else col.is_null()


def _value(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as pandas compares it (Decimal → float64)."""
    return pl.col(name).cast(pl.Float64) if isinstance(dtype, pl.Decimal) else pl.col(name)


def _comparable(dtype: pl.DataType, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return _numeric(dtype)
    if isinstance(value, date) and not isinstance(value, datetime):
        return dtype == pl.Date
    if isinstance(value, str):
        return dtype == pl.String
    return False


# -- plans ------------------------------------------------------------------------------------
def _table_columns(check: Check, schema: pl.Schema) -> Plan | None:
    kw = check.kwargs
    if set(kw) - {"column_set", "exact_match"} or kw.get("column_set") is None:
        return None
    expected, actual = set(kw["column_set"]), set(schema.names())
    exact = kw.get("exact_match", True) is True

    def decide(_: Mapping[str, Any]) -> Outcome:
        result: dict[str, Any] = {"observed_value": sorted(actual)}
        unexpected, missing = sorted(actual - expected), sorted(expected - actual)
        if not unexpected and not missing:
            return Outcome(True, result)
        mismatched: dict[str, list[str]] = {}
        if unexpected:
            mismatched["unexpected"] = unexpected
        if missing:
            mismatched["missing"] = missing
        result["details"] = {"mismatched": mismatched}
        return Outcome(not exact and not missing, result)

    return Plan(check, decide=decide)


def _of_type(check: Check, schema: pl.Schema) -> Plan | None:
    column, type_ = check.kwargs.get("column"), check.kwargs.get("type_")
    if (
        set(check.kwargs) - {"column", "type_"}
        or not isinstance(column, str)
        or column not in schema
        or type_ not in _TYPE_NAMES
    ):
        return None
    dtype = schema[column]
    if pandas_dtype_name(dtype, False) is None or pandas_dtype_name(dtype, True) is None:
        return None

    def decide(stats: Mapping[str, Any]) -> Outcome:
        observed = pandas_dtype_name(dtype, bool(stats[f"nulls:{column}"]))
        return Outcome(observed == type_, {"observed_value": observed})

    return Plan(check, decide=decide)


def _column_map(check: Check, schema: pl.Schema) -> Plan | None:
    kw = check.kwargs
    column = kw.get("column")
    if not isinstance(column, str) or column not in schema:
        return None
    dtype = schema[column]
    missing, value = _missing(column, dtype), _value(column, dtype)
    if check.expectation == "ExpectColumnValuesToNotBeNull" and set(kw) == {"column"}:
        return Plan(check, unexpected=missing, values=(column,))
    if check.expectation == "ExpectColumnValuesToBeNull" and set(kw) == {"column"}:
        return Plan(check, unexpected=~missing, values=(column,))
    ok: pl.Expr
    if check.expectation == "ExpectColumnValuesToBeBetween":
        if set(kw) - {"column", "min_value", "max_value", "strict_min", "strict_max"}:
            return None
        low, high = kw.get("min_value"), kw.get("max_value")
        if (low is None and high is None) or any(
            v is not None and not _comparable(dtype, v) for v in (low, high)
        ):
            return None
        ok = pl.lit(True)
        if low is not None:
            ok = ok & (value > low if kw.get("strict_min") else value >= low)
        if high is not None:
            ok = ok & (value < high if kw.get("strict_max") else value <= high)
    elif check.expectation == "ExpectColumnValuesToBeInSet":
        values = kw.get("value_set")
        if (
            set(kw) != {"column", "value_set"}
            or not values
            or not all(_comparable(dtype, v) for v in values)
            or _numeric(dtype)
        ):
            return None
        ok = pl.col(column).is_in(pl.Series(list(values), dtype=dtype).implode())
    else:
        return None
    return Plan(check, unexpected=~missing & ~ok.fill_null(False), values=(column,))


def _pair_equal(check: Check, schema: pl.Schema) -> Plan | None:
    kw = check.kwargs
    a, b = kw.get("column_A"), kw.get("column_B")
    ignore = kw.get("ignore_row_if", "both_values_are_missing")
    if not isinstance(a, str) or not isinstance(b, str) or a not in schema or b not in schema:
        return None
    if set(kw) - {"column_A", "column_B", "ignore_row_if"} or ignore not in (
        "both_values_are_missing",
        "either_value_is_missing",
    ):
        return None
    da, db = schema[a], schema[b]
    same = da == db or (_numeric(da) and _numeric(db))
    if not same or not (_numeric(da) or da in (pl.Date, pl.String, pl.Boolean)):
        return None
    ma, mb = _missing(a, da), _missing(b, db)
    skip = ma & mb if ignore == "both_values_are_missing" else ma | mb
    differ = (_value(a, da) != _value(b, db)).fill_null(True)
    return Plan(check, unexpected=~skip & differ, values=(a, b))


PLANNERS: dict[str, Callable[[Check, pl.Schema], Plan | None]] = {
    "ExpectTableColumnsToMatchSet": _table_columns,
    "ExpectColumnValuesToBeOfType": _of_type,
    "ExpectColumnValuesToNotBeNull": _column_map,
    "ExpectColumnValuesToBeNull": _column_map,
    "ExpectColumnValuesToBeBetween": _column_map,
    "ExpectColumnValuesToBeInSet": _column_map,
    "ExpectColumnPairValuesToBeEqual": _pair_equal,
}


def plan(check: Check, schema: pl.Schema) -> Plan | None:
    """How Polars evaluates ``check`` on a frame of ``schema``, or None (GX evaluates it)."""
    planner = PLANNERS.get(check.expectation)
    return planner(check, schema) if planner else None


# -- evaluation -------------------------------------------------------------------------------
def _pandas_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Values as pandas holds them: Decimals and integer columns with nulls as float64."""
    return frame.with_columns(
        [
            pl.col(n).cast(pl.Float64)
            for n, t in frame.schema.items()
            if isinstance(t, pl.Decimal) or (t.is_integer() and frame[n].null_count())
        ]
    )


def evaluate(frame: pl.DataFrame, plans: Sequence[Plan], *, partial: int) -> list[Outcome]:
    """GX-shaped outcomes of ``plans`` on ``frame``, in order: every count in one pass; the
    first ``partial`` unexpected values and row positions of failing checks only."""
    stats: dict[str, Any] = {}
    aggs = [
        p.unexpected.sum().alias(f"unexpected:{i}") for i, p in enumerate(plans) if p.unexpected is not None
    ]
    aggs += [pl.col(c).null_count().alias(f"nulls:{c}") for c in frame.columns]
    if aggs:
        stats = frame.select(aggs).row(0, named=True)
    rows = frame.height
    view: pl.DataFrame | None = None
    outcomes = []
    for i, p in enumerate(plans):
        if p.decide is not None:
            outcomes.append(p.decide(stats))
            continue
        if p.unexpected is None:  # a plan is a decision or a row condition
            raise ValueError(f"empty plan for {p.check.name}")
        unexpected = int(stats[f"unexpected:{i}"] or 0)
        result: dict[str, Any] = {"element_count": rows, "unexpected_count": unexpected}
        if unexpected:
            if view is None:
                view = _pandas_values(frame)
            positions = (
                frame.lazy()
                .with_row_index(INDEX)
                .filter(p.unexpected)
                .select(INDEX)
                .head(partial)
                .collect()[INDEX]
                .to_list()
            )
            picked = view[positions]
            if len(p.values) == 2:  # GX takes a pair's values from numpy: dates as epoch ns
                picked = picked.with_columns(
                    pl.col(c).cast(pl.Datetime("ns")).dt.epoch("ns")
                    for c in p.values
                    if picked.schema[c] == pl.Date
                )
            values = picked.select(p.values).rows()
            result["partial_unexpected_list"] = [v[0] for v in values] if len(p.values) == 1 else values
            result["partial_unexpected_index_list"] = positions
        else:
            result["partial_unexpected_list"] = []
            result["partial_unexpected_index_list"] = []
        outcomes.append(Outcome(unexpected == 0, result))
    return outcomes
