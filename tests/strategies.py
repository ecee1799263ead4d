"""Hypothesis strategies for silver rows, and the frames they make (shared by the property tests)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import strategies as st

EV = {"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "position": pl.Int64}


def days(start: date, count: int) -> st.SearchStrategy[date]:
    """One of the ``count`` days from ``start`` on."""
    return st.integers(0, count - 1).map(lambda i: start + timedelta(days=i))


def event_rows(
    start: date, count: int, *, users: st.SearchStrategy[int] | None = None
) -> st.SearchStrategy[tuple[Any, ...]]:
    """A print or tap ``(day, user_id, value_prop, position)`` in ``count`` days from ``start``."""
    return st.tuples(
        days(start, count), users or st.integers(1, 4), st.sampled_from(["a", "b"]), st.integers(0, 3)
    )


def pay_rows(start: date, count: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """A pay ``(day, user_id, value_prop, cents)`` in ``count`` days from ``start``."""
    return st.tuples(
        days(start, count), st.integers(1, 4), st.sampled_from(["a", "b"]), st.integers(0, 19995)
    )


def silver_frames(
    prints: Sequence[tuple[Any, ...]], taps: Sequence[tuple[Any, ...]], pays: Sequence[tuple[Any, ...]]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The rows as silver's prints, taps and pays (pays' cents as a decimal(18,2) ``total``)."""
    pays_frame = pl.DataFrame(
        pays,
        schema=["day", "user_id", "value_prop", "cents"],
        orient="row",
        schema_overrides={"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "cents": pl.Int64},
    ).select(
        "day",
        "user_id",
        "value_prop",
        (pl.col("cents").cast(pl.Decimal(18, 2)) / 100).cast(pl.Decimal(18, 2)).alias("total"),
    )
    return (
        pl.DataFrame(prints, schema=EV, orient="row"),
        pl.DataFrame(taps, schema=EV, orient="row"),
        pays_frame,
    )
