"""Run a :class:`~jobs.quality.suites.Suite` on one frame with Great Expectations 1.x.

One ephemeral context per process with a pandas data source and a whole-dataframe batch
definition; each call converts the frame to pandas and validates an ``ExpectationSuite`` built
from the suite's checks (~0.05–0.1 s on small frames). Great Expectations is imported on the first
call only (it costs 4–7 s), with its analytics, progress bars and log noise switched off.
Results come back as plain :class:`~jobs.quality.results.CheckResult` records.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import polars as pl

from jobs.quality.evaluate import evaluate, expectation_type, plan
from jobs.quality.results import CheckResult
from jobs.quality.suites import Check, Suite

log = logging.getLogger(__name__)

_GX: dict[str, Any] = {}


def prepare(frame: pl.DataFrame | pl.LazyFrame, suite: Suite) -> pl.DataFrame:
    """The frame with the suite's derived columns added (pure)."""
    lazy = frame.lazy()
    if suite.derived:
        schema = lazy.collect_schema()
        lazy = lazy.with_columns(
            **{n: e if isinstance(e, pl.Expr) else e(schema) for n, e in suite.derived.items()}
        )
    return lazy.collect()


def to_pandas(frame: pl.DataFrame) -> Any:
    """pandas view Great Expectations validates: Decimals as float64, dates as datetime64[ns]
    (GX compares only nanosecond datetimes vectorised; other units go value by value)."""
    decimals = [n for n, t in frame.schema.items() if isinstance(t, pl.Decimal)]
    dates = [n for n, t in frame.schema.items() if t == pl.Date]
    return frame.with_columns(
        pl.col(decimals).cast(pl.Float64), pl.col(dates).cast(pl.Datetime("ns"))
    ).to_pandas()


def gx_value(value: Any) -> Any:
    """Expectation arguments as pandas compares them (a date → midnight datetime)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, list | tuple):
        return [gx_value(v) for v in value]
    return value


def _silence() -> None:
    """No analytics, and only errors from Great Expectations' loggers (it logs INFO noise such
    as the temporary docs directory of every ephemeral context)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


def _batch_definition() -> Any:
    """The process-wide ephemeral context's whole-dataframe batch definition (lazy import)."""
    if "batch_definition" not in _GX:
        _silence()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import ProgressBarsConfig

            _silence()  # again: importing great_expectations sets some of its loggers to INFO
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = context.data_sources.add_pandas("jobs_quality").add_dataframe_asset("frame")
            _GX["gx"], _GX["gxe"] = gx, gxe
            _GX["batch_definition"] = asset.add_batch_definition_whole_dataframe("whole_frame")
    return _GX["batch_definition"]


def _expectation(check: Check) -> Any:
    cls = getattr(_GX["gxe"], check.expectation)
    kwargs = {k: gx_value(v) for k, v in check.kwargs.items()}
    return cls(**kwargs, meta={"check": check.name})


def validate_frame(
    frame: pl.DataFrame | pl.LazyFrame, suite: Suite, *, sample_rows: int = 5
) -> list[CheckResult]:
    """Validate ``frame`` against every check of ``suite``; one result per check, suite order.

    The checks :mod:`jobs.quality.evaluate` can translate are evaluated with Polars in one pass
    over the frame (the result GX would give, see :func:`validate_frame_gx`); any other check
    is validated by Great Expectations on the full frame (imported then, and only then).
    """
    prepared = prepare(frame, suite)
    plans = [plan(check, prepared.schema) for check in suite.checks]
    fast = [p for p in plans if p is not None]
    outcomes = dict(
        zip([p.check.name for p in fast], evaluate(prepared, fast, partial=max(1, sample_rows)), strict=True)
    )
    rest = [c for c, p in zip(suite.checks, plans, strict=True) if p is None]
    if rest:
        reference = replace(suite, checks=tuple(rest))
        by_name = {r.check: r for r in _validate_gx(prepared, reference, sample_rows)}
    results = []
    for check in suite.checks:
        if check.name in outcomes:
            o = outcomes[check.name]
            results.append(
                _record(
                    suite,
                    check,
                    expectation_type(check.expectation),
                    o.success,
                    o.result,
                    None,
                    prepared,
                    sample_rows,
                )
            )
        else:
            results.append(by_name[check.name])
    return results


def validate_frame_gx(
    frame: pl.DataFrame | pl.LazyFrame, suite: Suite, *, sample_rows: int = 5
) -> list[CheckResult]:
    """The reference path: Great Expectations validates every check on the whole frame
    (converted to pandas). :func:`validate_frame` gives the same results (tests/quality)."""
    return _validate_gx(prepare(frame, suite), suite, sample_rows)


def _validate_gx(prepared: pl.DataFrame, suite: Suite, sample_rows: int) -> list[CheckResult]:
    batch_definition = _batch_definition()
    gx = _GX["gx"]
    expectation_suite = gx.ExpectationSuite(name=suite.name)
    for check in suite.checks:
        expectation_suite.add_expectation(_expectation(check))
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": max(1, sample_rows)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = batch_definition.get_batch(batch_parameters={"dataframe": to_pandas(prepared)})
        outcome = batch.validate(expectation_suite, result_format=result_format)
    by_name = {r.expectation_config.meta["check"]: r for r in outcome.results}
    return [_result(suite, check, by_name[check.name], prepared, sample_rows) for check in suite.checks]


# -- turning GX results into records ------------------------------------------------------------
def _exception(gx_result: Any) -> str | None:
    info = gx_result.exception_info or {}
    if "raised_exception" not in info:  # keyed by metric
        info = next((v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")), {})
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "error").strip().splitlines()
        return message[0] if message else "error"
    return None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "NaT":
        return "null"
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text.removesuffix("T00:00:00")
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    if hasattr(value, "item"):  # numpy scalars
        return _text(value.item())
    return str(value)


def _observed(result: Mapping[str, Any], rows: int) -> str:
    if "observed_value" in result:
        observed = result["observed_value"]
        text = (
            _text(observed)
            if not isinstance(observed, list)
            else "[" + ", ".join(_text(v) for v in observed) + "]"
        )
        mismatch = (result.get("details") or {}).get("mismatched")
        if mismatch:
            text += "; mismatched: " + ", ".join(
                f"{k} {sorted(map(str, v))}" for k, v in mismatch.items() if v
            )
        return text[:500]
    unexpected = int(result.get("unexpected_count") or 0)
    total = int(result.get("element_count") or rows)
    text = f"{unexpected:,} of {total:,} rows unexpected"
    values = [v for v in result.get("partial_unexpected_list") or [] if _text(v) != "null"]
    if values:
        text += ", values " + ", ".join(_text(v) for v in values[:5])
    return text


def _sample(
    prepared: pl.DataFrame, indices: Sequence[Any], columns: Sequence[str], limit: int
) -> tuple[dict[str, str], ...]:
    positions = [int(i) for i in indices[:limit] if isinstance(i, int | float) or hasattr(i, "__index__")]
    if not positions:
        return ()
    cols = [c for c in dict.fromkeys(columns) if c in prepared.columns]
    rows = prepared[positions].select(cols).rows(named=True)
    return tuple({k: _text(v) for k, v in row.items()} for row in rows)


def _result(
    suite: Suite, check: Check, gx_result: Any, prepared: pl.DataFrame, sample_rows: int
) -> CheckResult:
    return _record(
        suite,
        check,
        gx_result.expectation_config.type,
        bool(gx_result.success),
        dict(gx_result.result or {}),
        _exception(gx_result),
        prepared,
        sample_rows,
    )


def _record(
    suite: Suite,
    check: Check,
    expectation_type: str,
    success: bool,
    result: Mapping[str, Any],
    error: str | None,
    prepared: pl.DataFrame,
    sample_rows: int,
) -> CheckResult:
    """The record of one check from a GX-shaped result (GX's own or :mod:`evaluate`'s)."""
    base: dict[str, Any] = {
        "layer": suite.layer,
        "table": suite.table,
        "check": check.name,
        "expectation_type": expectation_type,
        "description": check.description,
        "severity": check.severity,
        "column": check.column,
        "evaluated_rows": prepared.height,
    }
    if error:
        return CheckResult(**base, success=False, observed=f"could not evaluate: {error}")
    unexpected = int(result.get("unexpected_count") or 0)
    sample: tuple[dict[str, str], ...] = ()
    if not success and sample_rows:
        sample = _sample(
            prepared,
            result.get("partial_unexpected_index_list") or [],
            [*suite.sample_columns, *check.columns],
            sample_rows,
        )
    return CheckResult(
        **base,
        success=success,
        observed=_observed(result, prepared.height),
        unexpected_count=unexpected,
        sample=sample,
    )


def gx_evaluated(frame: pl.DataFrame | pl.LazyFrame, suite: Suite) -> list[str]:
    """The checks of ``suite`` :func:`validate_frame` leaves to Great Expectations on
    ``frame`` (those :mod:`jobs.quality.evaluate` has no faithful translation for)."""
    schema = prepare(frame.lazy().head(0), suite).schema
    return [c.name for c in suite.checks if plan(c, schema) is None]
