"""affected_weeks / history_range: which gold weeks a new day changes, which days a week needs."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from jobs.weeks import affected_weeks, history_range, monday

THU = date(2020, 11, 5)  # week of Monday 2020-11-02


def test_a_day_affects_its_own_week_and_the_n_weeks_after() -> None:
    assert affected_weeks([THU], n_weeks=3) == {date(2020, 11, 2) + timedelta(days=7 * i) for i in range(4)}


def test_a_sunday_is_seen_up_to_the_sunday_seven_days_later_so_one_week_after_its_own() -> None:
    sunday = date(2020, 11, 8)
    assert affected_weeks([sunday], n_weeks=1) == {date(2020, 11, 2), date(2020, 11, 9)}


def test_no_days_affect_no_week() -> None:
    assert affected_weeks([], n_weeks=3) == set()


def test_history_range_covers_the_window_before_the_first_week_and_ends_after_the_last() -> None:
    first, end = history_range([date(2020, 11, 16), date(2020, 11, 2)], n_weeks=2)
    assert (first, end) == (date(2020, 10, 19), date(2020, 11, 23))


@given(day=st.dates(date(2000, 1, 1), date(2100, 1, 1)), n=st.integers(1, 52))
def test_every_affected_week_holds_the_day_in_its_history(day: date, n: int) -> None:
    for week in affected_weeks([day], n_weeks=n):
        assert week == monday(week)
        first, end = history_range([week], n_weeks=n)
        assert first <= day < end
    # and the weeks just outside do not
    before = monday(day) - timedelta(days=7)
    assert history_range([before], n_weeks=n)[1] <= day
