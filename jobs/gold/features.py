"""The gold feature computation. Pure: silver LazyFrames in, gold LazyFrame out.

For every print of the target weeks: did the user tap the same value prop that day, and how
many prints, taps and pays of that value prop the user had in the lookback window (see
:mod:`jobs.weeks`), with the amount paid summed exactly in integer cents.

The features are the ones declared in :mod:`jobs.feature_registry` (``features=``, default
:data:`~jobs.feature_registry.GOLD_FEATURES`): both plans and the audit columns are generated
from it, one aggregate per feature, nothing here names a feature.

Exact arithmetic: a sum is carried in its integer units (cents: the physical Int128 value of
the decimal(18,2) totals) and summed as Int128 in both plans; ``prior_amount`` is decimal(38,2)
(:data:`jobs.schemas.SUM_AMOUNT`). Any number of payments (< 10**20) of at most the contract's
maximum total sums exactly: nothing wraps, nothing can fail on valid input.

How it scales: every event gets ONE packed Int64 key ``user | value-prop code | period``
(32 + 16 + 15 bits). Events are counted per key, the counts of the three sources are summed
into one frame and sorted by key; each window sums the rows whose key is at most W periods below
the row's (:func:`~jobs.gold.plan_parts.window_sum`: W shifted columns, or a ``rolling_sum_by``
for a window of more than 8 periods). Periods are offset by W inside the key, so a window never
reaches into the previous (user, value prop): the cost is one hash aggregation, one sort and
linear passes over the aggregated rows, with single-column integer joins only.

Several windows (``windows=(3, 1, 4)``, ``LOOKBACK_WEEKS=3,1,4``): the history read, the key's
period offset W and the packed-layout check are the widest window's; the aggregation, the sort
and the joins are shared, and each further window is one more linear window sum per feature over
the same sorted sums (the primary window's columns keep the feature names, the others get
``_<N>w``: :func:`jobs.feature_registry.window_names`).

The packed layout needs ``user_id < 2**32``, fewer than 65,536 distinct value props per call
and fewer than 32,768 periods; outside that (see :func:`fits_packed`) the generic plan with
multi-column keys (:mod:`jobs.gold.generic_plan`) is used instead: same results, slower. Both
are checked against the brute-force reference by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from jobs.feature_registry import GOLD_FEATURES, Feature, check_registry, window_names
from jobs.gold.generic_plan import generic_plan
from jobs.gold.plan_parts import (
    TAP_DAYS,
    day_bit,
    measures,
    no_expected,
    running,
    window_sum,
    windowed,
)
from jobs.schemas import TAP_SAME_DAY, conform, gold_audit_schema, gold_schema
from jobs.weeks import Mode, first_weeks_end, history_range, week_start, window_days

USER_BITS, VP_BITS, PERIOD_BITS = 32, 16, 15
MAX_USER_ID = 2**USER_BITS - 1
_VP_SHIFT = 2**PERIOD_BITS
_EPOCH_MONDAY_OFFSET = 3  # 1970-01-01 is a Thursday: (days + 3) // 7 counts Monday-weeks


def fits_packed(weeks: Sequence[date], *, n_weeks: int, max_user_id: int | None) -> bool:
    """Whether the packed Int64 key holds these weeks' periods and users up to ``max_user_id``."""
    if max_user_id is None or max_user_id > MAX_USER_ID:
        return False
    return not weeks or _span_fits(weeks, n_weeks)


def _span_fits(weeks: Sequence[date], n_weeks: int) -> bool:
    first, end = history_range(weeks, n_weeks=n_weeks)
    return (end - first).days + window_days(n_weeks) < 2**PERIOD_BITS


def build_features(
    *,
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    weeks: Sequence[date],
    mode: Mode,
    windows: Sequence[int] = (),
    n_weeks: int | None = None,
    packed: bool = True,
    audit: bool = False,
    first_day: date | None = None,
    features: Sequence[Feature] = GOLD_FEATURES,
) -> pl.LazyFrame:
    """Gold rows for the prints of ``weeks`` (one row per print, in the GOLD schema of
    ``features`` and ``windows``: :func:`jobs.schemas.gold_schema`).

    ``windows``: the lookback windows in weeks, the primary first (``LOOKBACK_WEEKS``, e.g.
    ``(3, 1, 4)``): every feature is computed for each, named by
    :func:`~jobs.feature_registry.window_names` (``prior_views``, ``prior_views_1w``, ...).
    ``n_weeks=N`` is the same as ``windows=(N,)``. The events are aggregated per period and
    sorted once; each window is one more rolling sum over those same sorted per-period sums
    (no re-scan, no other join), so extra windows cost little.

    Inputs need the silver columns ``day, user_id, value_prop`` (+ ``position`` for prints,
    ``total`` for pays); they may hold more history than needed, never less. With
    ``packed=True`` a user id of 2**32 or more makes the query fail (it never gives a wrong
    row): callers that cannot rule that out check :func:`fits_packed` first.

    ``audit=True`` adds the :data:`~jobs.schemas.GOLD_AUDIT` columns (of ``features``) the gold
    suite checks the rows against, computed in the same plan (sharing its scans and its aggregation) by other
    methods, which is much cheaper than re-deriving them from silver afterwards:

    * ``expected_prior_*``: for rows whose window starts on or before ``first_day`` (the first
      silver day) the window holds all existing history, so each prior must equal the running
      sum of its (user, value prop)'s counts of earlier periods. One column per feature for
      every window: it holds the running sum on the rows where the widest window starts on or
      before ``first_day`` (null elsewhere, and not computed at all when no print of ``weeks``
      can be such a row); the gold suite picks each window's rows from it. A window that
      leaks the print's own period, reaches across pairs or misses history, or a wrong merge,
      shows there.
    * ``tap_same_day``: read from a bit mask of the days with a tap, aggregated per (user,
      value prop, period) with the counts and merged in with the priors: another route than
      the click flag's join of the target weeks' taps by day key.
    """
    check_registry(features)
    windows = resolve_windows(windows, n_weeks)
    schema = (
        pl.Schema({**gold_schema(features, windows), **gold_audit_schema(features)})
        if audit
        else gold_schema(features, windows)
    )
    if not weeks:
        return pl.LazyFrame(schema=schema)
    frames = {"prints": prints, "taps": taps, "pays": pays}
    # The running sums are computed only when some row can be a first-weeks row (a rebuild of
    # recent weeks has none: its expected priors are all null, at no cost); they are kept on
    # the rows up to the last first-weeks day of the widest window.
    until = None
    if audit and first_day is not None and has_first_weeks(weeks, windows, first_day):
        until = first_weeks_end(first_day, n_weeks=max(windows), mode=mode)
    if packed and _span_fits(weeks, max(windows)):
        gold = _packed(
            frames, sorted(set(weeks)), mode, windows, audit=audit, first_weeks_until=until, features=features
        )
    else:
        gold = generic_plan(
            frames, weeks, mode, windows, audit=audit, first_weeks_until=until, features=features
        )
    if audit:
        tapped = (pl.col(TAP_DAYS) & day_bit(mode)) != 0
        gold = gold.with_columns(
            *(no_expected(features) if until is None else []),
            tapped.fill_null(False).alias(TAP_SAME_DAY),
        )
    return conform(gold, schema)


def has_first_weeks(weeks: Sequence[date], windows: Sequence[int], first_day: date) -> bool:
    """Whether a print of ``weeks`` can have a window starting on or before ``first_day`` (a
    print's period starts on or after its week's Monday, in both modes)."""
    return min(weeks) - timedelta(days=window_days(max(windows))) <= first_day


def resolve_windows(windows: Sequence[int], n_weeks: int | None = None) -> tuple[int, ...]:
    """``windows`` (or ``(n_weeks,)``) as a tuple, checked: at least one, none twice, each > 0."""
    if n_weeks is not None:
        if windows and tuple(windows) != (n_weeks,):
            raise ValueError(f"build_features: n_weeks={n_weeks} and windows={list(windows)}")
        windows = (n_weeks,)
    windows = tuple(int(n) for n in windows)
    window_names(windows)  # none, or one twice: ValueError
    if min(windows) < 1:
        raise ValueError(f"build_features: a window of {min(windows)} weeks")
    return windows


# -- the packed-key plan ------------------------------------------------------------------------
# Value-prop codes: the physical codes of a process-wide categorical mapping, kept alive for the
# life of the process so codes never change under a running query. UInt16 codes: past 65,536
# distinct value props the cast fails loudly instead of two props sharing a code.
_VP_CATEGORIES = pl.Categories("lakehouse-gold-value-prop", physical=pl.UInt16)
_VP_CODES = pl.Categorical(_VP_CATEGORIES)
_VP_KEEPALIVE = pl.Series("value_prop", [], dtype=_VP_CODES)


_EPOCH = date(1970, 1, 1)


def _week(day_number: int) -> int:
    """A day number's Monday-week number (as :func:`_week_number` computes it in a plan)."""
    return (day_number + _EPOCH_MONDAY_OFFSET) // 7


def _day_number(day: pl.Expr) -> pl.Expr:
    return day.cast(pl.Int32)


def _week_number(day: pl.Expr) -> pl.Expr:
    return (_day_number(day) + _EPOCH_MONDAY_OFFSET) // 7


def period_number(day: pl.Expr, mode: Mode) -> pl.Expr:
    """A day's period as an integer: its Monday-week since 1970 (calendar) or the day itself
    (rolling), so a window of N weeks is N periods, or 7·N."""
    return _week_number(day) if mode == "calendar" else _day_number(day)


def pair_number(user: pl.Expr, value_prop: pl.Expr) -> pl.Expr:
    """(user, value prop) as one Int64, the packed key's high bits: ``user | value-prop code``
    (32 + 16 bits). A user id outside [0, 2**32) makes the query fail."""
    return user.cast(pl.UInt32, strict=True).cast(pl.Int64) * 2**VP_BITS + value_prop.cast(
        _VP_CODES
    ).to_physical().cast(pl.Int64)


def _packed(
    frames: dict[str, pl.LazyFrame],
    weeks: list[date],
    mode: Mode,
    windows: Sequence[int],
    *,
    audit: bool,
    first_weeks_until: date | None,
    features: Sequence[Feature],
) -> pl.LazyFrame:
    prints, taps = frames["prints"], frames["taps"]
    n_weeks = max(windows)  # the widest window: the history read and the key's period offset
    first, end = history_range(weeks, n_weeks=n_weeks)
    day0 = pl.Series([first], dtype=pl.Date).cast(pl.Int32).item()
    week_numbers = pl.Series(weeks, dtype=pl.Date).cast(pl.Int32).to_list()
    target_weeks = [_week(d) for d in week_numbers]
    if mode == "calendar":
        width, periods = n_weeks, {n: n for n in windows}
        number = _week_number
        base = _week(day0) - width
        target_periods = [w - base for w in target_weeks]
    else:
        width, periods = window_days(n_weeks), {n: window_days(n) for n in windows}
        number = _day_number
        base = day0 - width
        target_periods = [d - base + i for d in week_numbers for i in range(7)]

    def first_rows(last: date) -> pl.Expr:  # the keys of periods that start by ``last``
        day = (last - _EPOCH).days
        return pl.col("key") % _VP_SHIFT <= (_week(day) if mode == "calendar" else day) - base

    def user_vp(frame_user: pl.Expr, frame_vp: pl.Expr) -> pl.Expr:
        return pair_number(frame_user, frame_vp) * _VP_SHIFT

    def key(day: pl.Expr) -> pl.Expr:  # user | value prop | period (offset by the window)
        return user_vp(pl.col("user_id"), pl.col("value_prop")) + (number(day) - base)

    def day_key(day: pl.Expr) -> pl.Expr:  # user | value prop | day
        return user_vp(pl.col("user_id"), pl.col("value_prop")) + (_day_number(day) - day0)

    in_range = (pl.col("day") >= first) & (pl.col("day") < end)
    in_target = _week_number(pl.col("day")).is_in(target_weeks)
    target_prints = prints.filter(in_range & in_target)
    # A rebuild of a few weeks (e.g. one new day) needs the history of only the (user, value
    # prop) pairs printed in those weeks: a semi-join drops the others before aggregating.
    # Not worth it when the target weeks are most of the history range (a full build).
    selective = 2 * 7 * len(weeks) <= (end - first).days
    wanted = target_prints.select((key(pl.col("day")) // _VP_SHIFT).alias("user_vp")).unique()

    def history(frame: pl.LazyFrame, *values: pl.Expr) -> pl.LazyFrame:
        rows = frame.filter(in_range).select(key(pl.col("day")).alias("key"), *values)
        if selective:
            rows = (
                rows.with_columns((pl.col("key") // _VP_SHIFT).alias("user_vp"))
                .join(wanted, on="user_vp", how="semi")
                .drop("user_vp")
            )
        return rows

    # One frame of events: each source's rows with the measures of its features (prints
    # always, even without one: their keys are the rows the windows are read at).
    values: dict[str, list[pl.Expr]] = {s: [f.per_event() for f in measures(features, s)] for s in frames}
    if audit:
        values["taps"].append(day_bit(mode).alias(TAP_DAYS))
    events = pl.concat(
        [history(frames[s], *v) for s, v in values.items() if v or s == "prints"], how="diagonal"
    )
    per_key = (
        events.group_by("key")
        .agg(
            # Int32 counters summed as Int32 (< 2**31 events), then Int64; units as Int128
            *[pl.col(f.measure).sum().cast(f.period_dtype) for f in features],
            *([pl.col(TAP_DAYS).bitwise_or()] if audit else []),
        )
        .sort("key")
        .select(
            "key",
            # one linear window sum per window and feature over the same sorted sums
            *[
                window_sum(f.measure, periods[n]).alias(f.column(w))
                for n, w in windowed(windows)
                for f in features
            ],
            *(
                running(features, pl.col("key") // _VP_SHIFT, first_rows(first_weeks_until))
                if first_weeks_until
                else []
            ),
            *([pl.col(TAP_DAYS)] if audit else []),
        )
        .filter((pl.col("key") % _VP_SHIFT).is_in(target_periods))
    )
    tapped = (
        taps.filter(in_range & in_target)
        .select(day_key(pl.col("day")).alias("day_key"))
        .unique()
        .with_columns(pl.lit(True).alias("clicked"))
    )
    target = target_prints.select(
        "day",
        "user_id",
        "value_prop",
        "position",
        key(pl.col("day")).alias("key"),
        day_key(pl.col("day")).alias("day_key"),
    )
    # Both sides sorted by key: an as-of join with tolerance 0 is an exact-match merge join
    # (linear) instead of a hash join; rows come out ordered by user, value prop and period,
    # which keeps files compact and user_id statistics tight.
    gold = (
        target.sort("key")
        .join_asof(per_key, on="key", strategy="backward", tolerance=0)
        .join(tapped, on="day_key", how="left", maintain_order="left")
        .with_columns(
            week_start(pl.col("day")).alias("week_start"),
            pl.col("clicked").fill_null(False),
            *[
                f.finish(pl.col(f.column(w))).alias(f.column(w))
                for _, w in windowed(windows)
                for f in features
            ],
        )
    )
    return gold
