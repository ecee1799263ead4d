"""The packed plan's window sum (shifted columns up to 8 periods, ``rolling_sum_by`` beyond)
equals a brute-force sum over the earlier keys in the window, for every width."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.gold.plan_parts import SHIFT_REACH, window_sum


def _brute(keys: list[int], units: list[int], width: int) -> list[int]:
    return [sum(u for k2, u in zip(keys, units, strict=True) if k - width <= k2 < k) for k in keys]


@settings(max_examples=80, deadline=None)
@given(
    rows=st.dictionaries(st.integers(0, 200), st.integers(-(10**20), 10**20), min_size=1, max_size=60),
    width=st.integers(1, SHIFT_REACH + 4),
)
def test_window_sum_equals_the_sum_over_earlier_keys_within_the_width(
    rows: dict[int, int], width: int
) -> None:
    keys = sorted(rows)
    units = [rows[k] for k in keys]
    frame = pl.DataFrame({"key": keys, "units": units}, schema={"key": pl.Int64, "units": pl.Int128})
    got = frame.select(window_sum("units", width).alias("sum"))["sum"].to_list()
    assert got == _brute(keys, units, width)
