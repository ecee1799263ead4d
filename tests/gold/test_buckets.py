"""How many user buckets gold computes in: enough for about GOLD_ROWS_PER_BUCKET rebuilt prints,
a print of the history they read counting 1/8 (a full build splits by its prints, a rebuild of
the newest week by the weeks of history it reads), and the rows do not depend on it."""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from jobs.gold.job import HISTORY_WEIGHT
from jobs.pipeline import run_all
from tests.conftest import LocalLake, days

START = date(2020, 11, 2)  # a Monday
PER_DAY = 12


def _land_day(lake: LocalLake, day: date) -> None:
    rows = [(day, u, "point", u % 4) for u in range(1, PER_DAY + 1)]
    lake.land_events("prints", rows, f"{day}.json")
    lake.land_events("taps", rows[:3], f"{day}.json")
    lake.land_pays([(day, "1.25", 1, "point")], f"{day}.csv")


def _buckets(note: str) -> int:
    return int(note.split(" bucket(s)")[0].rsplit(" ", 1)[1])


def test_buckets_count_the_rebuilt_prints_and_an_eighth_of_the_history_they_read(lake: LocalLake) -> None:
    for day in days(START, 35):  # five full weeks
        _land_day(lake, day)
    full = lake.run(gold_rows_per_bucket=50)["gold"]
    assert _buckets(full.note) == math.ceil(35 * PER_DAY / 50)  # 9: every print is rebuilt

    _land_day(lake, START + timedelta(days=35))  # a Monday: its week rebuilt, 3 weeks of history
    new_day = lake.run(gold_rows_per_bucket=6)["gold"]
    history = 22 * PER_DAY  # the lookback's 21 days and the new one
    assert _buckets(new_day.note) == math.ceil(math.ceil(history / HISTORY_WEIGHT) / 6)  # 6 buckets
    assert new_day.note.startswith("1 week(s) rebuilt")

    split = _gold(lake)
    run_all(lake.context(gold_buckets=1), full=True)  # the same weeks in one bucket
    assert_frame_equal(split, _gold(lake))
    assert split.height == 36 * PER_DAY


def _gold(lake: LocalLake) -> pl.DataFrame:
    return lake.table("gold", "print_features").sort("day", "user_id", "value_prop", "position")
