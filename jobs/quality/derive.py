"""Audit columns the gold suite compares gold rows against, re-derived from silver. Pure:
LazyFrames in and out.

The local engine computes them inside the gold plan instead (``build_features(audit=True)``,
far cheaper); this derivation is for rows that come without them (gold read back from the Dask
workers) and is the reference the fused columns are tested against. Computed from the same
bucket of silver the gold rows were built from:

* ``tap_same_day`` — silver has a tap of the row's user, value prop and day (``clicked`` must
  equal it).
* ``expected_prior_<measure>`` per feature of :mod:`jobs.feature_registry` (``features=``;
  today ``views, clicks, payments, cents``) — for rows whose lookback window starts on or
  before the first day any silver data exists, the window holds *all* existing history before
  the print's period, so the prior features must equal a plain count of the events before that
  period; null for the other rows (not checked there). This catches features that count what
  does not exist (leakage from the print's own period, double counting, a wrong window origin)
  in the first weeks, and costs a join on those rows only. One column per feature for every
  lookback window (``windows``): the running sum is the same for every window, only the rows
  it is expected on differ, so it is given on the rows of the widest window and the gold suite
  picks each window's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from jobs.feature_registry import GOLD_FEATURES, Feature, sources
from jobs.quality.suites import TAP_SAME_DAY
from jobs.weeks import Mode, period, window_days

KEYS = ["user_id", "value_prop"]


def tap_same_day(gold: pl.LazyFrame, taps: pl.LazyFrame) -> pl.LazyFrame:
    tapped = taps.select(*KEYS, "day").unique().with_columns(pl.lit(True).alias(TAP_SAME_DAY))
    return gold.join(tapped, on=[*KEYS, "day"], how="left").with_columns(
        pl.col(TAP_SAME_DAY).fill_null(False)
    )


def _counts_before(
    targets: pl.LazyFrame, events: pl.LazyFrame, mode: Mode, features: Sequence[Feature]
) -> pl.LazyFrame:
    """Per target (user, value prop, _period): each feature's aggregate of the events with
    period < _period, as its audit column."""
    per_period = (
        events.with_columns(period(pl.col("day"), mode).alias("_event_period"))
        .group_by(*KEYS, "_event_period")
        .agg([f.per_period().alias(f.audit_column) for f in features])
    )
    return (
        targets.join(per_period, on=KEYS, how="inner")
        .filter(pl.col("_event_period") < pl.col("_period"))
        .group_by(*KEYS, "_period")
        .agg([pl.col(f.audit_column).sum() for f in features])
    )


def expected_first_week_priors(
    gold: pl.LazyFrame,
    *,
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    mode: Mode,
    n_weeks: int | None = None,
    first_day: date | None,
    features: Sequence[Feature] = GOLD_FEATURES,
    windows: Sequence[int] = (),
) -> pl.LazyFrame:
    """``gold`` plus ``expected_prior_*``: null where the widest of ``windows`` (or
    ``n_weeks``) starts after ``first_day``."""
    widest = max(windows) if windows else n_weeks
    if widest is None:
        raise ValueError("expected_first_week_priors: no lookback window given")
    with_period = gold.with_columns(period(pl.col("day"), mode).alias("_period"))
    if first_day is None:
        return with_period.with_columns([pl.lit(None, f.audit_dtype).alias(f.audit_column) for f in features])

    first_rows = pl.col("_period") - pl.duration(days=window_days(widest)) <= pl.lit(first_day)
    targets = with_period.filter(first_rows).select(*KEYS, "_period").unique()
    frames = {"prints": prints, "taps": taps, "pays": pays}
    expected = targets
    for source in sources(features):  # one join per source
        of_source = [f for f in features if f.source == source]
        before = _counts_before(targets, frames[source], mode, of_source)
        expected = expected.join(before, on=[*KEYS, "_period"], how="left")
    # Counts as Int64; sums exactly in Int128 units, given as their audit type (GOLD_AUDIT).
    return with_period.join(expected, on=[*KEYS, "_period"], how="left").with_columns(
        [
            pl.when(first_rows)
            .then(pl.col(f.audit_column).fill_null(0))
            .cast(f.audit_dtype)
            .alias(f.audit_column)
            for f in features
        ]
    )


def gold_audit_columns(
    gold: pl.LazyFrame,
    *,
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    mode: Mode,
    n_weeks: int | None = None,
    first_day: date | None,
    features: Sequence[Feature] = GOLD_FEATURES,
    windows: Sequence[int] = (),
) -> pl.LazyFrame:
    """Gold rows with every audit column the gold suite needs (row count unchanged), for
    ``windows`` (or the one window ``n_weeks``)."""
    return expected_first_week_priors(
        tap_same_day(gold, taps),
        prints=prints,
        taps=taps,
        pays=pays,
        mode=mode,
        n_weeks=n_weeks,
        first_day=first_day,
        features=features,
        windows=windows,
    )
