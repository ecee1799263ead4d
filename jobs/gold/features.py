"""The gold feature computation. Pure: silver LazyFrames in, gold LazyFrame out.

For every print of the target weeks: did the user tap the same value prop that day, and how
many prints, taps and pays of that value prop the user had in the lookback window (see
:mod:`jobs.weeks`), with the amount paid summed exactly in integer cents.

Exact arithmetic: cents are the physical Int128 value of the decimal(18,2) totals and are
summed as Int128 in both plans; ``prior_amount`` is decimal(38,2) (:data:`jobs.schemas.
SUM_AMOUNT`). Any number of payments (< 10**20) of at most the contract's maximum total sums
exactly: nothing wraps, nothing can fail on valid input.

How it scales: every event gets ONE packed Int64 key ``user | value-prop code | period``
(32 + 16 + 15 bits). Events are counted per key, the counts of the three sources are summed
into one frame, sorted by key, and one ``rolling_sum_by`` over the key with an integer window
of W periods (closed on the left) sums each window. Periods are offset by W inside the key, so
a window never reaches into the previous (user, value prop): the cost is one hash aggregation,
one sort and a linear scan of the aggregated rows, with single-column integer joins only.

The packed layout needs ``user_id < 2**32``, fewer than 65,536 distinct value props per call
and fewer than 32,768 periods; outside that (see :func:`fits_packed`) the generic plan with
multi-column keys is used instead: same results, slower. Both are checked against the
brute-force reference by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import polars as pl

from jobs.schemas import AMOUNT, GOLD, GOLD_AUDIT, SUM_AMOUNT, conform
from jobs.weeks import Mode, history_range, period, week_start, window_days

PAIR = ["user_id", "value_prop"]
KEYS = [*PAIR, "period"]
COUNTS = ["views", "clicks", "payments", "cents"]
PRIORS = [f"prior_{c}" for c in COUNTS]
EXPECTED = [f"expected_prior_{c}" for c in COUNTS]  # audit columns (GOLD_AUDIT)
TAP_SAME_DAY = "tap_same_day"
TAP_DAYS = "tap_days"  # per (user, value prop, period): the days with a tap, one bit each

USER_BITS, VP_BITS, PERIOD_BITS = 32, 16, 15
MAX_USER_ID = 2**USER_BITS - 1
_VP_SHIFT = 2**PERIOD_BITS
_USER_SHIFT = 2 ** (PERIOD_BITS + VP_BITS)
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
    n_weeks: int,
    packed: bool = True,
    audit: bool = False,
    first_day: date | None = None,
) -> pl.LazyFrame:
    """Gold rows for the prints of ``weeks`` (one row per print, in the GOLD schema).

    Inputs need the silver columns ``day, user_id, value_prop`` (+ ``position`` for prints,
    ``total`` for pays); they may hold more history than needed, never less. With
    ``packed=True`` a user id of 2**32 or more makes the query fail (it never gives a wrong
    row): callers that cannot rule that out check :func:`fits_packed` first.

    ``audit=True`` adds the :data:`~jobs.schemas.GOLD_AUDIT` columns the gold suite checks the
    rows against, computed in the same plan (sharing its scans and its aggregation) by other
    methods, which is much cheaper than re-deriving them from silver afterwards:

    * ``expected_prior_*``: for rows whose window starts on or before ``first_day`` (the first
      silver day) the window holds all existing history, so each prior must equal the running
      sum of its (user, value prop)'s counts of earlier periods; null elsewhere. A window that
      leaks the print's own period, reaches across pairs or misses history, or a wrong merge,
      shows there.
    * ``tap_same_day``: read from a bit mask of the days with a tap, aggregated per (user,
      value prop, period) with the counts and merged in with the priors: another route than
      the click flag's join of the target weeks' taps by day key.
    """
    if not weeks:
        return pl.LazyFrame(schema=_schema(audit))
    if packed and _span_fits(weeks, n_weeks):
        gold = _packed(prints, taps, pays, sorted(set(weeks)), mode, n_weeks, audit=audit)
    else:
        gold = _generic(prints, taps, pays, weeks, mode, n_weeks, audit=audit)
    if audit:
        tapped = pl.col(TAP_DAYS).cast(pl.Int32) // _day_bit(mode) % 2 == 1
        gold = gold.with_columns(
            *_first_weeks_only(mode, n_weeks, first_day), tapped.fill_null(False).alias(TAP_SAME_DAY)
        )
    return conform(gold, _schema(audit))


def _day_bit(mode: Mode) -> pl.Expr:
    """A day's bit within its period (2 ** days since the period's first day: < 2**7)."""
    offset = (pl.col("day") - period(pl.col("day"), mode)).dt.total_days()
    return pl.lit(2, pl.Int32).pow(offset).cast(pl.UInt8)


def _schema(audit: bool) -> pl.Schema:
    return pl.Schema({**GOLD, **GOLD_AUDIT}) if audit else GOLD


def _before(counts: list[str]) -> list[pl.Expr]:
    """Per count, the sum over all earlier rows (a running sum minus the row itself)."""
    return [(pl.col(c).cum_sum() - pl.col(c)).alias(f"_before_{c}") for c in counts]


def _running(counts: list[str], pair: pl.Expr) -> list[pl.Expr]:
    """Per count, the sum over the earlier rows of the same ``pair`` (rows sorted by pair and
    period, the pair as one integer, :func:`_before` already added): the sum over all earlier
    rows minus its value at the pair's first row (no hash grouping)."""
    new_pair = pair != pair.shift(1, fill_value=-1)
    out = []
    for c in counts:
        before = pl.col(f"_before_{c}")
        out.append((before - pl.when(new_pair).then(before).forward_fill()).alias(f"expected_prior_{c}"))
    return out


def _first_weeks_only(mode: Mode, n_weeks: int, first_day: date | None) -> list[pl.Expr]:
    """Expected priors on rows whose window starts on or before ``first_day``, else null."""
    if first_day is None:
        return [pl.lit(None, GOLD_AUDIT[n]).alias(n) for n in EXPECTED]
    first_rows = period(pl.col("day"), mode) - pl.duration(days=window_days(n_weeks)) <= pl.lit(first_day)
    return [
        pl.when(first_rows).then(pl.col(n).fill_null(0)).otherwise(None).cast(GOLD_AUDIT[n]).alias(n)
        for n in EXPECTED
    ]


# -- the packed-key plan ------------------------------------------------------------------------
# Value-prop codes: the physical codes of a process-wide categorical mapping, kept alive for the
# life of the process so codes never change under a running query. UInt16 codes: past 65,536
# distinct value props the cast fails loudly instead of two props sharing a code.
_VP_CATEGORIES = pl.Categories("lakehouse-gold-value-prop", physical=pl.UInt16)
_VP_CODES = pl.Categorical(_VP_CATEGORIES)
_VP_KEEPALIVE = pl.Series("value_prop", [], dtype=_VP_CODES)


def cents(total: pl.Expr) -> pl.Expr:
    """Exact cents of a decimal(18,2) total: its physical Int128 value (sums cannot wrap)."""
    return total.cast(AMOUNT).to_physical()


def amount(cents_sum: pl.Expr) -> pl.Expr:
    """An Int128 sum of cents as decimal(38,2), exactly (no float, no rounding)."""
    return (cents_sum.cast(pl.Decimal(38, 0)) * pl.lit(Decimal("0.01"), dtype=SUM_AMOUNT)).cast(SUM_AMOUNT)


def _counts(agg: pl.Expr, name: str) -> pl.Expr:
    """Counters as Int64, the cents sum kept Int128."""
    return agg.cast(pl.Int128 if name == "cents" else pl.Int64)


def _day_number(day: pl.Expr) -> pl.Expr:
    return day.cast(pl.Int32)


def _week_number(day: pl.Expr) -> pl.Expr:
    return (_day_number(day) + _EPOCH_MONDAY_OFFSET) // 7


def _packed(
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    weeks: list[date],
    mode: Mode,
    n_weeks: int,
    *,
    audit: bool,
) -> pl.LazyFrame:
    first, end = history_range(weeks, n_weeks=n_weeks)
    day0 = pl.Series([first], dtype=pl.Date).cast(pl.Int32).item()
    week_numbers = pl.Series(weeks, dtype=pl.Date).cast(pl.Int32).to_list()
    target_weeks = [(d + _EPOCH_MONDAY_OFFSET) // 7 for d in week_numbers]
    if mode == "calendar":
        width = n_weeks
        number = _week_number
        base = (day0 + _EPOCH_MONDAY_OFFSET) // 7 - width
        target_periods = [w - base for w in target_weeks]
    else:
        width = window_days(n_weeks)
        number = _day_number
        base = day0 - width
        target_periods = [d - base + i for d in week_numbers for i in range(7)]

    def user_vp(frame_user: pl.Expr, frame_vp: pl.Expr) -> pl.Expr:
        return (
            frame_user.cast(pl.UInt32, strict=True).cast(pl.Int64) * _USER_SHIFT
            + frame_vp.cast(_VP_CODES).to_physical().cast(pl.Int64) * _VP_SHIFT
        )

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

    def history(frame: pl.LazyFrame, **values: pl.Expr) -> pl.LazyFrame:
        rows = frame.filter(in_range).select(key(pl.col("day")).alias("key"), **values)
        if selective:
            rows = (
                rows.with_columns((pl.col("key") // _VP_SHIFT).alias("user_vp"))
                .join(wanted, on="user_vp", how="semi")
                .drop("user_vp")
            )
        return rows

    one = pl.lit(1, dtype=pl.Int32)  # narrow counters: less memory traffic in the aggregation
    events = pl.concat(
        [
            history(prints, views=one),
            history(taps, clicks=one, **({TAP_DAYS: _day_bit(mode)} if audit else {})),
            history(pays, payments=one, cents=cents(pl.col("total"))),
        ],
        how="diagonal",
    )
    window = f"{width}i"
    features = (
        events.group_by("key")
        .agg(
            *[_counts(pl.col(c).sum(), c) for c in COUNTS],  # Int32 sums: < 2**31 events
            *([pl.col(TAP_DAYS).bitwise_or()] if audit else []),
        )
        .sort("key")
        .with_columns(_before(COUNTS) if audit else [])
        .select(
            "key",
            *[
                pl.col(c).rolling_sum_by("key", window, closed="left").fill_null(0).alias(f"prior_{c}")
                for c in COUNTS
            ],
            *(_running(COUNTS, pl.col("key") // _VP_SHIFT) if audit else []),
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
        .join_asof(features, on="key", strategy="backward", tolerance=0)
        .join(tapped, on="day_key", how="left", maintain_order="left")
        .with_columns(
            week_start(pl.col("day")).alias("week_start"),
            pl.col("clicked").fill_null(False),
            *[pl.col(c).fill_null(0) for c in PRIORS[:3]],
            amount(pl.col("prior_cents").fill_null(0)).alias("prior_amount"),
        )
    )
    return gold


# -- the generic plan (multi-column keys; any Int64 user id) -------------------------------------
def _per_period(events: pl.LazyFrame, mode: Mode, **aggs: pl.Expr) -> pl.LazyFrame:
    return events.with_columns(period(pl.col("day"), mode).alias("period")).group_by(KEYS).agg(**aggs)


def _generic(
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    weeks: Sequence[date],
    mode: Mode,
    n_weeks: int,
    *,
    audit: bool,
) -> pl.LazyFrame:
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
            _per_period(taps, mode, clicks=n, **({TAP_DAYS: _day_bit(mode).bitwise_or()} if audit else {})),
            _per_period(pays, mode, payments=n, cents=cents(pl.col("total")).sum()),
            target.select(KEYS).unique(),
        ],
        how="diagonal",
    )
    window = f"{window_days(n_weeks)}d"
    features = (
        history.group_by(KEYS)
        .agg(
            *[_counts(pl.col(c).sum().fill_null(0), c) for c in COUNTS],
            *([pl.col(TAP_DAYS).bitwise_or()] if audit else []),
        )
        .sort(KEYS)
        .with_columns(
            *[
                pl.col(c)
                .rolling_sum_by("period", window, closed="left")
                .over(PAIR)
                .fill_null(0)
                .alias(f"prior_{c}")
                for c in COUNTS
            ],
            *(
                [(pl.col(c).cum_sum() - pl.col(c)).over(PAIR).alias(f"expected_prior_{c}") for c in COUNTS]
                if audit
                else []
            ),
        )
        .select(*KEYS, *PRIORS, *([*EXPECTED, TAP_DAYS] if audit else []))
    )
    tapped = taps.select("user_id", "value_prop", "day").unique().with_columns(pl.lit(True).alias("clicked"))
    gold = (
        target.join(features, on=KEYS, how="left")
        .join(tapped, on=[*PAIR, "day"], how="left")
        .with_columns(
            pl.col("clicked").fill_null(False),
            pl.col("prior_views").fill_null(0),
            pl.col("prior_clicks").fill_null(0),
            pl.col("prior_payments").fill_null(0),
            amount(pl.col("prior_cents").fill_null(0)).alias("prior_amount"),
        )
        .sort("week_start", "user_id", "value_prop", "day", "position")
    )
    return gold
