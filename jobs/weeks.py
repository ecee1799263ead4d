"""Calendar arithmetic for the lookback window, shared by the features and the job.

Both window modes reduce to one rule over a *period* column: the features of a print at period
``p`` sum the user's events with ``p - 7N days <= period(event) < p``. In ``calendar`` mode the
period is the Monday of the week (so the window is the N full weeks before the print's week); in
``rolling`` mode it is the day itself (the 7·N days before the print's day).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Literal

import polars as pl

Mode = Literal["calendar", "rolling"]


def week_start(day: pl.Expr) -> pl.Expr:
    """The Monday of ``day``'s ISO week."""
    return (day - pl.duration(days=day.dt.weekday() - 1)).cast(pl.Date)


def period(day: pl.Expr, mode: Mode) -> pl.Expr:
    return week_start(day) if mode == "calendar" else day


def monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def window_days(n_weeks: int) -> int:
    return 7 * n_weeks


def first_weeks_end(first_day: date, *, n_weeks: int, mode: Mode) -> date:
    """The last day of the gold audit's first-weeks rows: the prints whose window of
    ``n_weeks`` before their period starts on or before ``first_day`` (then it holds all
    history that exists), i.e. whose period starts at most 7·N days after it. A period is the
    day (rolling) or its Monday-week (calendar), so that is a plain ``day <= end`` (and
    ``period <= end`` for a row holding the period's start)."""
    last_start = first_day + timedelta(days=window_days(n_weeks))
    return monday(last_start) + timedelta(days=6) if mode == "calendar" else last_start


def affected_weeks(days: Iterable[date], *, n_weeks: int) -> set[date]:
    """Weeks whose gold rows can change when events of ``days`` arrive.

    An event on day d is seen by prints of week(d) (the click flag, and rolling windows within
    the week) and by every print up to d + 7N days later; in both modes that is the weeks from
    week(d) to week(d + 7N) inclusive.
    """
    weeks: set[date] = set()
    for d in days:
        w, last = monday(d), monday(d + timedelta(days=window_days(n_weeks)))
        while w <= last:
            weeks.add(w)
            w += timedelta(days=7)
    return weeks


def history_range(weeks: Iterable[date], *, n_weeks: int) -> tuple[date, date]:
    """Days ``[first, end)`` of events needed to compute the given weeks."""
    ws = sorted(weeks)
    return ws[0] - timedelta(days=window_days(n_weeks)), ws[-1] + timedelta(days=7)
