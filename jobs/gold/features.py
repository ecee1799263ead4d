"""The gold feature computation. Pure: silver LazyFrames in, gold LazyFrame out.

For every print of the target weeks: did the user tap the same value prop that day, and how
many prints, taps and pays of that value prop the user had in the lookback window (see
:mod:`jobs.gold.windows`), with the amount paid summed exactly in integer cents.

How it scales: events are pre-aggregated per (user, value prop, period), the periods where
prints need features are added as zero rows, and one sorted ``rolling_sum_by`` over the period
column per (user, value prop) sums each window, so the cost is linear in the aggregated rows
and no event is ever joined to a range of others.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from jobs.gold.windows import Mode, period, week_start, window_days
from jobs.schemas import AMOUNT, GOLD, conform

KEYS = ["user_id", "value_prop", "period"]
COUNTS = ["views", "clicks", "payments", "cents"]


def _per_period(events: pl.LazyFrame, mode: Mode, **aggs: pl.Expr) -> pl.LazyFrame:
    return (
        events.with_columns(period(pl.col("day"), mode).alias("period"))
        .group_by(KEYS)
        .agg(**aggs)
    )


def build_features(
    *,
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    weeks: Sequence[date],
    mode: Mode,
    n_weeks: int,
) -> pl.LazyFrame:
    """Gold rows for the prints of ``weeks`` (one row per print, in the GOLD schema).

    Inputs need the silver columns ``day, user_id, value_prop`` (+ ``position`` for prints,
    ``total`` for pays); they may hold more history than needed, never less.
    """
    week_list = pl.Series("weeks", list(weeks), dtype=pl.Date)
    target = prints.filter(week_start(pl.col("day")).is_in(week_list.implode())).select(
        week_start(pl.col("day")).alias("week_start"),
        "day",
        "user_id",
        "value_prop",
        "position",
        period(pl.col("day"), mode).alias("period"),
    )
    n = pl.len().cast(pl.Int64)
    history = pl.concat(
        [
            _per_period(prints, mode, views=n),
            _per_period(taps, mode, clicks=n),
            _per_period(
                pays, mode, payments=n, cents=(pl.col("total") * 100).cast(pl.Int64).sum()
            ),
            target.select(KEYS).unique(),
        ],
        how="diagonal",
    )
    window = f"{window_days(n_weeks)}d"
    features = (
        history.group_by(KEYS)
        .agg([pl.col(c).sum().fill_null(0).cast(pl.Int64) for c in COUNTS])
        .sort(KEYS)
        .with_columns(
            [
                pl.col(c).rolling_sum_by("period", window, closed="left")
                .over(["user_id", "value_prop"])
                .fill_null(0)
                .alias(f"prior_{c}")
                for c in COUNTS
            ]
        )
        .select(*KEYS, *[f"prior_{c}" for c in COUNTS])
    )
    tapped = taps.select("user_id", "value_prop", "day").unique().with_columns(
        pl.lit(True).alias("clicked")
    )
    return conform(
        target.join(features, on=KEYS, how="left")
        .join(tapped, on=["user_id", "value_prop", "day"], how="left")
        .with_columns(
            pl.col("clicked").fill_null(False),
            pl.col("prior_views").fill_null(0),
            pl.col("prior_clicks").fill_null(0),
            pl.col("prior_payments").fill_null(0),
            (pl.col("prior_cents").fill_null(0).cast(AMOUNT) / 100).cast(AMOUNT).alias("prior_amount"),
        )
        .sort("week_start", "user_id", "value_prop", "day", "position"),
        GOLD,
    )
