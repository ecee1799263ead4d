"""The export's week comes from gold's partitions (the Delta log), so only its rows are read."""

from __future__ import annotations

from datetime import date

import polars as pl

from jobs.export import latest_week

GOLD = pl.LazyFrame(
    {
        "week_start": [date(2020, 11, 2), date(2020, 11, 9), date(2020, 11, 9)],
        "day": [date(2020, 11, 3), date(2020, 11, 10), date(2020, 11, 9)],
        "user_id": [1, 2, 3],
        "value_prop": ["a", "b", "c"],
        "position": [0, 1, 2],
    }
)


def test_latest_week_keeps_the_rows_of_the_newest_partition_sorted_by_day() -> None:
    rows = latest_week(GOLD, ["2020-11-02", "2020-11-09"]).collect()
    assert rows["week_start"].unique().to_list() == [date(2020, 11, 9)]
    assert rows["day"].to_list() == [date(2020, 11, 9), date(2020, 11, 10)]


def test_latest_week_of_a_gold_without_partitions_is_empty_with_gold_columns() -> None:
    rows = latest_week(GOLD, []).collect()
    assert rows.height == 0 and rows.columns == GOLD.collect_schema().names()
