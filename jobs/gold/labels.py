"""Point-in-time features for any label rows: what gold would give a print on each row's day.

A label row has at least ``user_id``, ``value_prop`` and ``day``; its other columns are carried
through unchanged. Each row gets the gold features (:data:`jobs.feature_registry.GOLD_FEATURES`)
of every window, exactly as a print of that user and value prop on that day gets them in gold:
same window semantics in both modes (:mod:`jobs.weeks`), zeros where there is no history (days
before or after the data, unknown users and value props).

How: a window is a range of periods (:mod:`jobs.weeks`: Monday-weeks in calendar mode, days in
rolling mode), so it is a range of ONE Int64 key ``pair * shift + period`` (the pair: gold's
packed ``user | value-prop code``, :func:`jobs.gold.features.pair_number`, or, when silver's
user ids do not fit it, a number per label pair). Per source, the events' keys are sorted once
(silver cut to the labels' pairs first: the other pairs cannot change a label row); a label
row's window [lo, hi) holds the events between the positions of lo and hi in those keys (two
binary searches, the label keys sorted so the searches walk forwards). A count is the
difference of the positions; a sum the difference of the running totals of its exact integer
units (cents as Int128) at those positions. Every feature is the registry's: its source, its
per-event units (:meth:`~jobs.feature_registry.Feature.per_event`) and its exact type
(:meth:`~jobs.feature_registry.Feature.finish`). No aggregation, no join of the label rows:
they come back in their order with the feature columns beside them, duplicates and all, and
no label row counts itself or another. The tests check it against the brute-force reference
and against gold's rows for prints.

Memory: :func:`jobs.gold.label_io.write_label_features` splits labels and silver into user buckets
(``user_id mod buckets``, as gold does) and writes each bucket's rows to a temporary Parquet
part, then merges the parts back into the label file's order. A bucket holds its sorted event
keys (and each sum's running totals) and a few integers per label row.

Point in time (:mod:`jobs.gold.label_io`): :func:`~jobs.gold.label_io.versions_known_at` names,
per silver table, the newest version committed at or before a moment (Delta time travel),
:func:`~jobs.gold.label_io.versions_of_gold` the silver versions a gold version was built from;
:func:`~jobs.gold.label_io.silver_at` scans those versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from jobs.errors import PipelineError
from jobs.feature_registry import GOLD_FEATURES, Feature, check_registry, sources, window_names
from jobs.gold.features import MAX_USER_ID, fits_packed, pair_number, period_number
from jobs.gold.plan_parts import measures, windowed
from jobs.weeks import Mode, history_range, week_start, window_days

LABEL_KEYS = ("user_id", "value_prop", "day")
PAIR = ["user_id", "value_prop"]
PAIR_ID = "__pair"  # a (user, value prop) as one integer
ROW = "__label_row"  # the label file's row number: output order, duplicates kept apart
NARROW_RATIO = 1  # silver is cut to the labels' pairs when it has more prints than labels


class LabelsError(PipelineError):
    """A label file (or the output named for it) cannot be used: one line naming the problem."""

    exit_code = 2


# -- the plan -------------------------------------------------------------------------------------
def feature_columns(windows: Sequence[int], features: Sequence[Feature] = GOLD_FEATURES) -> list[str]:
    """The output's feature columns: the first window's under the features' names
    (``prior_views``), each further window's with its suffix (``prior_views_1w``)."""
    return [f.column(None if i == 0 else f"{n}w") for i, n in enumerate(windows) for f in features]


@dataclass(frozen=True)
class LabelStats:
    """What the plan needs to know of the labels before it runs (one pass over them)."""

    rows: int
    weeks: tuple[date, ...]  # the Mondays of the label days
    min_user_id: int
    max_user_id: int


def label_stats(labels: pl.LazyFrame) -> LabelStats:
    stats = labels.select(
        pl.len().alias("rows"),
        pl.col("user_id").min().alias("lo"),
        pl.col("user_id").max().alias("hi"),
        week_start(pl.col("day")).unique().implode().alias("weeks"),
    ).collect(engine="streaming")
    row = stats.row(0, named=True)
    weeks = tuple(sorted(w for w in (row["weeks"] or []) if w is not None))
    lo, hi = row["lo"], row["hi"]
    return LabelStats(row["rows"], weeks, 0 if lo is None else int(lo), 0 if hi is None else int(hi))


def _bucket_of(buckets: int) -> pl.Expr:
    return ((pl.col("user_id") % buckets) + buckets) % buckets  # never negative


def label_plan(
    labels: pl.LazyFrame,
    silver: Mapping[str, pl.LazyFrame],
    *,
    mode: Mode,
    windows: Sequence[int],
    stats: LabelStats,
    silver_user_range: tuple[int, int] | None,
    features: Sequence[Feature] = GOLD_FEATURES,
    bucket: tuple[int, int] | None = None,
    narrow: bool = True,
) -> pl.LazyFrame:
    """The label rows (typed keys, the :data:`ROW` column first) with their features, one row
    per label row, ordered by :data:`ROW`; only the users of ``bucket`` = (b, buckets).

    The work is done here: one pass over the labels' keys, one over the bucket's silver (its
    events of the labels' pairs, sorted in memory), the look-ups. The result is lazy only in
    the labels' other columns, read again beside the features when it is collected."""
    if not windows:
        raise ValueError("at least one lookback window")
    check_registry(features)
    window_names(windows)  # none twice
    taken = [c for c in feature_columns(windows, features) if c in labels.collect_schema()]
    if taken:
        raise LabelsError(f"labels: column(s) {', '.join(taken)} would be overwritten by the features")
    if bucket is not None:
        b, n = bucket
        labels = labels.filter(_bucket_of(n) == b)
        silver = {s: f.filter(_bucket_of(n) == b) for s, f in silver.items()}
    widest = max(windows)
    first, end = history_range(stats.weeks, n_weeks=widest)  # the days any window reads
    # Every event and every label row gets ONE Int64 key, pair * shift + period, the period
    # counted from ``first`` (so 0 <= period < shift): a label row's window of N weeks is the
    # keys from its own key - periods(N) up to its own key (excluded). The pair is gold's
    # packed (user | value-prop code) when silver's user ids fit it (a label user outside has
    # no event: no pair, key -1, zeros), else a number for each of the labels' pairs.
    shift = (end - first).days + 1
    lo, hi = silver_user_range if silver_user_range is not None else (-1, MAX_USER_ID + 1)
    if lo >= 0 and fits_packed(stats.weeks, n_weeks=widest, max_user_id=hi):
        user = pl.when(pl.col("user_id").is_between(0, MAX_USER_ID)).then("user_id")
        keyed = labels.with_columns(pair_number(user, pl.col("value_prop")).alias(PAIR_ID))
        event_pairs = [pair_number(pl.col("user_id"), pl.col("value_prop")).alias(PAIR_ID)]
    else:
        ids = labels.select(PAIR).unique().with_row_index(PAIR_ID).collect(engine="streaming")
        keyed = labels.join(ids.lazy(), on=PAIR, how="left", maintain_order="left")
        event_pairs = []  # the events get their pair's number by a join, which drops the others

    def key(day: pl.Expr) -> pl.Expr:
        number = period_number(day, mode) - period_number(pl.lit(first, pl.Date), mode)
        return pl.col(PAIR_ID).cast(pl.Int64) * shift + number.cast(pl.Int64)

    # The label rows' keys in key order, so that the searches walk the sorted events forwards.
    at = keyed.select(key(pl.col("day")).fill_null(-1)).collect(engine="streaming").to_series()
    order = at.arg_sort()
    at, inverse = at.gather(order), order.arg_sort()
    wanted = (at.filter(at >= 0) // shift).unique().alias(PAIR_ID).to_frame().lazy()

    def paired(frame: pl.LazyFrame) -> pl.LazyFrame:  # the other pairs cannot change a label row
        if event_pairs:
            frame = frame.with_columns(event_pairs)
            return frame.join(wanted, on=PAIR_ID, how="semi") if narrow else frame
        return frame.join(ids.lazy(), on=PAIR, how="inner")

    # Per source, its events' keys sorted (and each sum's running total of exact units, 0
    # first): the events of a window are those between the positions of its ends in the keys
    # (binary search). A count is the difference of the positions, a sum that of the totals.
    backs = [periods(n, mode) for n in windows]
    units: dict[str, pl.Series] = {}
    for source in sources(features):
        sums = [f for f in measures(features, source) if f.value is not None]
        events = (
            paired(silver[source].filter(pl.col("day").is_between(first, end, closed="left")))
            .select(key(pl.col("day")).alias("key"), *[f.per_event().cast(f.period_dtype) for f in sums])
            .collect(engine="streaming")
            .sort("key")
        )
        position = {
            back: events["key"].search_sorted(at - back, side="left").cast(pl.Int64) for back in {0, *backs}
        }
        for f in measures(features, source):
            zero = pl.Series([0], dtype=f.period_dtype)
            totals = pl.concat([zero, events[f.measure].cum_sum()]) if f in sums else None
            for back, (_, w) in zip(backs, windowed(windows), strict=True):
                stop, start = position[0], position[back]
                found = stop - start if totals is None else totals.gather(stop) - totals.gather(start)
                units[f.column(w)] = found.gather(inverse)  # back in the labels' order
    columns = [(f, f.column(w)) for _, w in windowed(windows) for f in features]
    found_rows = pl.DataFrame([units[c].alias(c) for _, c in columns]).lazy()
    return pl.concat([labels, found_rows], how="horizontal").with_columns(
        f.finish(pl.col(c)).alias(c) for f, c in columns
    )


def periods(n_weeks: int, mode: Mode) -> int:
    """A window of ``n_weeks`` in periods: weeks (calendar) or days (rolling)."""
    return n_weeks if mode == "calendar" else window_days(n_weeks)


def label_features(
    labels: pl.LazyFrame | pl.DataFrame,
    *,
    prints: pl.LazyFrame,
    taps: pl.LazyFrame,
    pays: pl.LazyFrame,
    mode: Mode = "calendar",
    windows: Sequence[int] = (3,),
    features: Sequence[Feature] = GOLD_FEATURES,
) -> pl.LazyFrame:
    """The label rows, in their order, each with the features of every window, as a print of
    its user and value prop on its day gets them in gold (silver frames as gold reads them).

    ``labels`` needs ``user_id`` (integer), ``value_prop`` (string) and ``day`` (date, or a
    ``YYYY-MM-DD`` string); the other columns come back unchanged. The first window's columns
    are named as in gold (``prior_views``), the others with their suffix (``prior_views_1w``).
    Raises :class:`LabelsError` for unusable labels. The features are computed here (the labels'
    keys and silver are read: :func:`label_plan`); the result is lazy only in the labels' other
    columns."""
    typed = typed_labels(labels.lazy())
    stats = check_labels(typed, "labels")
    silver = {"prints": prints, "taps": taps, "pays": pays}
    ranges = pl.concat(
        [
            f.select(
                pl.col("user_id").min().cast(pl.Int64).alias("lo"),
                pl.col("user_id").max().cast(pl.Int64).alias("hi"),
            )
            for f in silver.values()
        ]
    ).collect()
    lo, hi = ranges["lo"].min(), ranges["hi"].max()
    plan = label_plan(
        public_labels(typed),
        silver,
        mode=mode,
        windows=windows,
        stats=stats,
        silver_user_range=(0, 0) if lo is None else (int(lo), int(hi)),  # type: ignore[arg-type]
        features=features,
    )
    return plan.drop(ROW)


# -- reading and checking label files -------------------------------------------------------------
def typed_labels(labels: pl.LazyFrame, name: str = "labels") -> pl.LazyFrame:
    """The labels with typed keys (user_id Int64, value_prop String, day Date) and :data:`ROW`
    first; a missing key column or one of a wrong type raises :class:`LabelsError`. Values
    that do not parse become nulls, which :func:`check_labels` names."""
    try:
        schema = labels.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise LabelsError(f"{name}: cannot be read: {str(exc).splitlines()[0]}") from None
    missing = [k for k in LABEL_KEYS if k not in schema]
    if missing:
        raise LabelsError(
            f"{name}: missing column(s) {', '.join(missing)} (a label file needs user_id, value_prop and day)"
        )
    taken = [c for c in [ROW, *feature_columns((1,))] if c in schema]
    if taken:
        raise LabelsError(
            f"{name}: column(s) {', '.join(taken)} would be overwritten by the features: rename them"
        )
    exprs = []
    uid, vp, day = schema["user_id"], schema["value_prop"], schema["day"]
    if uid.is_integer():
        exprs.append(pl.col("user_id").cast(pl.Int64))
    elif uid == pl.String:
        exprs.append(pl.col("user_id").str.strip_chars().cast(pl.Int64, strict=False))
    else:
        raise LabelsError(f"{name}: column user_id is {uid}, not an integer")
    if vp in (pl.String, pl.Categorical) or isinstance(vp, pl.Enum):
        exprs.append(pl.col("value_prop").cast(pl.String))
    else:
        raise LabelsError(f"{name}: column value_prop is {vp}, not a string")
    if day == pl.Date:
        exprs.append(pl.col("day"))
    elif isinstance(day, pl.Datetime):
        exprs.append(pl.col("day").dt.date())
    elif day == pl.String:
        exprs.append(pl.col("day").str.strip_chars().str.to_date("%Y-%m-%d", strict=False))
    else:
        raise LabelsError(f"{name}: column day is {day}, not a date")
    raw = [pl.col(k).alias(f"__raw_{k}") for k in LABEL_KEYS]  # for check_labels' message
    return labels.with_columns(*raw).with_columns(exprs).with_row_index(ROW)


def check_labels(typed: pl.LazyFrame, name: str = "labels") -> LabelStats:
    """One pass over typed labels: a null or unparseable key raises :class:`LabelsError` (the
    first such row named); no rows too. Their :class:`LabelStats` otherwise."""
    bad = (
        typed.filter(pl.any_horizontal(pl.col(k).is_null() for k in LABEL_KEYS))
        .head(1)
        .select(ROW, *LABEL_KEYS, *[f"__raw_{k}" for k in LABEL_KEYS])
        .collect(engine="streaming")
    )
    if bad.height:
        row = bad.row(0, named=True)
        for key in LABEL_KEYS:
            if row[key] is None:
                raw = row[f"__raw_{key}"]
                what = "is empty" if raw is None or str(raw).strip() == "" else f"{str(raw)[:40]!r} is not "
                if raw is not None and str(raw).strip():
                    what += {"user_id": "an integer", "day": "a date (YYYY-MM-DD)", "value_prop": "a string"}[
                        key
                    ]
                raise LabelsError(f"{name}: row {row[ROW] + 1}: {key} {what}")
    stats = label_stats(typed)
    if not stats.rows:
        raise LabelsError(f"{name}: no label rows")
    return stats


def public_labels(typed: pl.LazyFrame) -> pl.LazyFrame:
    return typed.drop([f"__raw_{k}" for k in LABEL_KEYS])
