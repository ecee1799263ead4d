"""The gold features, each declared once: name, source, aggregation, exact type.

Everything else about a feature is generated from :data:`GOLD_FEATURES`:

* both plans of :func:`jobs.gold.features.build_features` (the packed-key and the generic one),
  and the audit columns that plan fuses beside the rows (``build_features(audit=True)``);
* the same audit columns re-derived from silver (:mod:`jobs.quality.derive`);
* the gold contract (:data:`jobs.schemas.GOLD`, :data:`jobs.schemas.GOLD_AUDIT`);
* the gold suite's non-negativity and first-weeks checks (:mod:`jobs.quality.suites`).

Adding a feature is one :class:`Feature` here (and its test); the functions above also take
``features=`` so a test can pass a registry of its own. The suite compares an integer feature
with its audit column as it is; a decimal sum is compared in exact units by a check of its own
in :mod:`jobs.quality.suites` (today ``prior_amount``'s cents gap), which a second decimal sum
would need too.

A feature is a lookback aggregate of one silver source over the same user's earlier events of
the print's value prop: the count of its rows, or the exact sum of one of its integer or
decimal columns. Sums are carried in exact integer units (a decimal's physical integer, e.g.
cents) as Int128 and only turned into the feature's type at the end, so nothing rounds or wraps.

Windows: ``LOOKBACK_WEEKS`` is one window N or several (``3,1,4``); every feature is computed
for each. The first (primary) window's column is the feature's name (``prior_views``), so
consumers of a single window never see a change; every other window N gets the suffix ``_<N>w``
(:func:`window_names`; :meth:`Feature.column` with ``window="1w"`` names ``prior_views_1w``).
The contract and audit columns are generated from the registry × windows
(:func:`feature_schema`, :func:`audit_schema`).

This module imports nothing of the project, so :mod:`jobs.schemas` can build the contract from
it without a cycle; it lives beside ``schemas.py``, not in ``jobs/gold/``, because ``jobs.gold``
imports ``jobs.schemas`` (a package cycle, which ``tests/infra/test_layout.py`` refuses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import polars as pl

Source = Literal["prints", "taps", "pays"]
Aggregation = Literal["count", "sum"]

# A sum of totals (gold's prior_amount). Summed exactly in Int128 cents: n totals of at most
# MAX_TOTAL (< 10**16) sum to less than 10**36 for any n < 10**20 rows, so the sum always fits
# decimal(38,2) exactly — no overflow, no checked error, whatever the number of payments.
SUM_AMOUNT = pl.Decimal(38, 2)
# The audit column of a decimal sum: its exact integer units as decimal(38,0), which Arrow,
# Parquet and the Dask workers' frames all keep exactly (Int128 is Polars-only).
AUDIT_UNITS = pl.Decimal(38, 0)
AUDIT_PREFIX = "expected_prior_"


@dataclass(frozen=True)
class Feature:
    """One gold feature: an aggregate of ``source`` rows of the print's user and value prop
    inside a lookback window (never the print's own period, never later).

    ``aggregation``: ``count`` (rows) or ``sum`` (of the source's column ``value``). ``dtype``:
    the exact type of the gold column (an integer type, or a decimal(38, s) for a sum of a
    decimal column of scale s). ``measure``: what one period holds, in exact integer units
    (``views``, ``cents``): the name of the per-period column inside the plans and of the audit
    column ``expected_prior_<measure>``.
    """

    name: str
    description: str
    source: Source
    aggregation: Aggregation
    measure: str
    value: str | None = None
    dtype: pl.DataType = field(default_factory=pl.Int64)

    def __post_init__(self) -> None:
        if (self.aggregation == "sum") != (self.value is not None):
            raise ValueError(f"feature {self.name}: a sum names its value column, a count does not")
        if not (self.dtype.is_integer() or isinstance(self.dtype, pl.Decimal)):
            raise ValueError(f"feature {self.name}: {self.dtype} is not an exact type")
        if self.aggregation == "count" and not self.dtype.is_integer():
            raise ValueError(f"feature {self.name}: a count is an integer")

    def column(self, window: str | None = None) -> str:
        """The gold column of this feature for ``window``: the name itself for the settings'
        lookback window (None), ``<name>_<window>`` for another (``prior_views_1w``)."""
        return self.name if window is None else f"{self.name}_{window}"

    @property
    def audit_column(self) -> str:
        """The audit column the gold suite compares this feature with in the first weeks."""
        return f"{AUDIT_PREFIX}{self.measure}"

    def audit_for(self, window: str | None = None) -> str:
        """What :meth:`column` for ``window`` is compared with (``expected_prior_views_1w``):
        the gold suite derives it from :attr:`audit_column` on that window's first-weeks rows."""
        return self.audit_column if window is None else f"{self.audit_column}_{window}"

    @property
    def audit_dtype(self) -> pl.DataType:
        """Integers as the feature's type; a decimal sum as its integer units (decimal(38,0))."""
        return AUDIT_UNITS if isinstance(self.dtype, pl.Decimal) else self.dtype

    @property
    def scale(self) -> int:
        """Decimal places of the feature (0 for an integer): units = value × 10**scale."""
        return self.dtype.scale if isinstance(self.dtype, pl.Decimal) else 0

    # -- expressions the plans share -----------------------------------------------------------
    def per_event(self) -> pl.Expr:
        """What one source row adds to its period, in exact integer units (named ``measure``):
        1 (Int32: narrow counters move less memory), or the value's physical integer (Int128,
        so no sum can wrap)."""
        if self.value is None:
            return pl.lit(1, dtype=pl.Int32).alias(self.measure)
        value = pl.col(self.value)
        if self.scale:
            value = value.cast(pl.Decimal(38, self.scale)).to_physical()
        return value.cast(pl.Int128).alias(self.measure)

    def per_period(self) -> pl.Expr:
        """The aggregate of one group of source rows (a period): its row count as Int64, or
        the sum of :meth:`per_event` as Int128."""
        if self.value is None:
            return pl.len().cast(pl.Int64).alias(self.measure)
        return self.per_event().sum()

    @property
    def period_dtype(self) -> pl.DataType:
        """The type of a per-period (and windowed) sum: Int64 counts, Int128 units."""
        return pl.Int64() if self.value is None else pl.Int128()

    def finish(self, units: pl.Expr) -> pl.Expr:
        """A windowed sum of units (null: no event) as the feature's exact type."""
        units = units.fill_null(0)
        if self.scale:
            step = pl.lit(Decimal(1).scaleb(-self.scale), dtype=pl.Decimal(38, self.scale))
            return (units.cast(pl.Decimal(38, 0)) * step).cast(self.dtype)
        return units.cast(self.dtype)


GOLD_FEATURES: tuple[Feature, ...] = (
    Feature(
        "prior_views",
        "the user's prints of this value prop inside the lookback window",
        source="prints",
        aggregation="count",
        measure="views",
    ),
    Feature(
        "prior_clicks",
        "the user's taps of this value prop inside the lookback window",
        source="taps",
        aggregation="count",
        measure="clicks",
    ),
    Feature(
        "prior_payments",
        "the user's pays of this value prop inside the lookback window",
        source="pays",
        aggregation="count",
        measure="payments",
    ),
    Feature(
        "prior_amount",
        "the sum of those pays' totals, exactly (summed as Int128 cents; 0 when there are none)",
        source="pays",
        aggregation="sum",
        measure="cents",
        value="total",
        dtype=SUM_AMOUNT,
    ),
)


# Columns the plans use beside the measures: a measure must not be one of them.
_PLAN_COLUMNS = frozenset(
    {"key", "day_key", "user_vp", "period", "week_start", "day", "user_id", "value_prop", "position"}
    | {"clicked", "total", "tap_days", "tap_same_day", "run_id"}
)


def check_registry(features: Sequence[Feature]) -> None:
    """Raise ValueError unless the names and measures are all distinct, and no measure is a
    column the plans already use."""
    for what, names in (
        ("name", [f.name for f in features]),
        ("measure", [f.measure for f in features]),
    ):
        if len(set(names)) != len(names):
            raise ValueError(f"gold features: a {what} is declared twice: {names}")
    clash = {f.measure for f in features} & (_PLAN_COLUMNS | {f.name for f in features})
    if clash:
        raise ValueError(f"gold features: measure(s) {sorted(clash)} name a column the plans use")


ONE_WINDOW: tuple[int, ...] = (3,)
"""A single window (its length does not change any column name)."""


def window_names(windows: Sequence[int]) -> tuple[str | None, ...]:
    """The column suffix of each window (weeks), in order: None for the first (primary) one,
    ``"<N>w"`` for the others: ``(3, 1, 4)`` → ``(None, "1w", "4w")``."""
    if not windows:
        raise ValueError("gold features: no lookback window")
    if len(set(windows)) != len(windows):
        raise ValueError(f"gold features: a window is given twice: {list(windows)}")
    return (None, *(f"{n}w" for n in windows[1:]))


def feature_schema(
    features: Sequence[Feature] = GOLD_FEATURES, windows: Sequence[int] = ONE_WINDOW
) -> pl.Schema:
    """The gold columns of the features, per window (the primary first), each window in
    declaration order, with their exact types."""
    check_registry(features)
    return pl.Schema({f.column(w): f.dtype for w in window_names(windows) for f in features})


def audit_schema(features: Sequence[Feature] = GOLD_FEATURES) -> pl.Schema:
    """The expected-prior audit column of each feature (``tap_same_day`` is not a feature): one
    for every window, since the gold suite picks each window's rows from it."""
    return pl.Schema({f.audit_column: f.audit_dtype for f in features})


def sources(features: Sequence[Feature]) -> list[Source]:
    """The sources the features read, in the silver order (prints, taps, pays)."""
    used = {f.source for f in features}
    return [s for s in ("prints", "taps", "pays") if s in used]
