"""The generic gold plan: multi-column keys, any Int64 user id (see :mod:`jobs.gold.features`;
the packed plan is used whenever its layout fits)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from jobs.feature_registry import Feature
from jobs.gold.plan_parts import (
    KEYS,
    PAIR,
    TAP_DAYS,
    day_bit,
    measures,
    windowed,
)
from jobs.weeks import Mode, period, week_start, window_days


def _per_period(events: pl.LazyFrame, mode: Mode, aggs: list[pl.Expr]) -> pl.LazyFrame:
    return events.with_columns(period(pl.col("day"), mode).alias("period")).group_by(KEYS).agg(aggs)


def generic_plan(
    frames: dict[str, pl.LazyFrame],
    weeks: Sequence[date],
    mode: Mode,
    windows: Sequence[int],
    *,
    audit: bool,
    first_weeks_until: date | None,
    features: Sequence[Feature],
) -> pl.LazyFrame:
    prints, taps = frames["prints"], frames["taps"]
    week_list = pl.Series("weeks", list(weeks), dtype=pl.Date)
    target = prints.filter(week_start(pl.col("day")).is_in(week_list.implode())).select(
        week_start(pl.col("day")).alias("week_start"),
        "day",
        "user_id",
        "value_prop",
        "position",
        period(pl.col("day"), mode).alias("period"),
    )
    aggs: dict[str, list[pl.Expr]] = {s: [f.per_period() for f in measures(features, s)] for s in frames}
    if audit:
        aggs["taps"].append(day_bit(mode).bitwise_or().alias(TAP_DAYS))
    history = pl.concat(
        [
            *[_per_period(frames[s], mode, a) for s, a in aggs.items() if a],
            target.select(KEYS).unique(),
        ],
        how="diagonal",
    )
    priors = [f.column(w) for _, w in windowed(windows) for f in features]
    per_period = (
        history.group_by(KEYS)
        .agg(
            *[pl.col(f.measure).sum().fill_null(0).cast(f.period_dtype) for f in features],
            *([pl.col(TAP_DAYS).bitwise_or()] if audit else []),
        )
        .sort(KEYS)
        .with_columns(
            *[
                pl.col(f.measure)
                .rolling_sum_by("period", f"{window_days(n)}d", closed="left")
                .over(PAIR)
                .fill_null(0)
                .alias(f.column(w))
                for n, w in windowed(windows)
                for f in features
            ],
            *(
                [
                    # on the periods that start by first_weeks_until (jobs.weeks.first_weeks_end)
                    pl.when(pl.col("period") <= first_weeks_until)
                    .then((pl.col(f.measure).cum_sum() - pl.col(f.measure)).over(PAIR).cast(f.audit_dtype))
                    .alias(f.audit_column)
                    for f in features
                ]
                if first_weeks_until
                else []
            ),
        )
        .select(
            *KEYS,
            *priors,
            *([f.audit_column for f in features] if first_weeks_until else []),
            *([TAP_DAYS] if audit else []),
        )
    )
    tapped = taps.select("user_id", "value_prop", "day").unique().with_columns(pl.lit(True).alias("clicked"))
    gold = (
        target.join(per_period, on=KEYS, how="left")
        .join(tapped, on=[*PAIR, "day"], how="left")
        .with_columns(
            pl.col("clicked").fill_null(False),
            *[
                f.finish(pl.col(f.column(w))).alias(f.column(w))
                for _, w in windowed(windows)
                for f in features
            ],
        )
        .sort("week_start", "user_id", "value_prop", "day", "position")
    )
    return gold
