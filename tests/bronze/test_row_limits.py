"""Implausible days and oversized totals are quarantined with a precise reason, never a crash.

The run's window is a :class:`~jobs.schemas.Limits` passed to the parsers explicitly: from
QUALITY_MIN_DAY to the run date + QUALITY_MAX_FUTURE_DAYS, always inside the days every engine
(datetime64[ns] in pandas / Great Expectations) can hold.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from jobs.bronze.events import parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.pays import parse_pays
from jobs.errors import ConfigError
from jobs.schemas import ENGINE_MAX_DAY, ENGINE_MIN_DAY, MAX_TOTAL, Limits
from jobs.settings import load_settings

RUN_DATE = date(2024, 5, 1)
LIMITS = Limits.for_run(RUN_DATE, min_day=date(2015, 1, 1), max_future_days=1)
BEFORE = "is before QUALITY_MIN_DAY (2015-01-01)"
AFTER = "is after 2024-05-02 (the run date + QUALITY_MAX_FUTURE_DAYS)"


def _event(day: str, sep: str = " ") -> str:
    return (
        f'{{"day":{sep}"{day}",{sep}"event_data":{sep}{{"position":{sep}0,{sep}'
        f'"value_prop":{sep}"point"}},{sep}"user_id":{sep}7}}'
    )


DAYS = [
    ("2020-11-01", None),
    ("2015-01-01", None),  # QUALITY_MIN_DAY itself
    ("2024-05-02", None),  # the run date + 1 day of tolerance
    ("2014-12-31", BEFORE),
    ("2024-05-03", AFTER),
    ("2099-01-01", AFTER),
    ("2262-04-12", AFTER),  # past datetime64[ns]
    ("2300-01-01", AFTER),
    ("9999-12-31", AFTER),
    ("1677-09-21", BEFORE),  # before datetime64[ns]
    ("1600-01-01", BEFORE),
    ("0001-01-01", BEFORE),
]


@pytest.mark.parametrize("sep", [" ", "  "], ids=["fast-path", "duckdb-path"])
@pytest.mark.parametrize(("day", "reason"), DAYS)
def test_event_day_outside_the_run_window_is_quarantined_with_its_reason(
    day: str, reason: str | None, sep: str
) -> None:
    content = f"{_event('2020-11-01')}\n{_event(day, sep)}\n".encode()
    checked = parse_events(split_lines(content), limits=LIMITS).collect()
    assert checked["reason"].to_list() == [None, reason and f"day {reason}"]


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-path", "rules"])
@pytest.mark.parametrize(("day", "reason"), DAYS)
def test_pay_date_outside_the_run_window_is_quarantined_with_its_reason(
    day: str, reason: str | None, quoted: bool
) -> None:
    line = f'"{day}",7.04,1,point' if quoted else f"{day},7.04,1,point"
    content = f"pay_date,total,user_id,value_prop\n2020-11-01,1,1,p\n{line}\n".encode()
    checked = parse_pays(split_lines(content), limits=LIMITS).collect()
    assert checked["reason"].to_list() == [None, reason and f"pay_date {reason}"]


def test_without_a_run_date_the_parsers_still_refuse_days_no_engine_can_hold() -> None:
    content = "\n".join(_event(d) for d in ("2300-01-01", "1600-01-01", "2262-04-11")).encode()
    reasons = parse_events(split_lines(content)).collect()["reason"].to_list()
    assert reasons == [
        f"day is after {ENGINE_MAX_DAY} (the run date + QUALITY_MAX_FUTURE_DAYS)",
        f"day {BEFORE}",
        None,
    ]


def test_limits_are_capped_at_the_engine_range_and_refuse_an_impossible_min_day() -> None:
    assert Limits.for_run(date(2262, 4, 10), max_future_days=30).max_day == ENGINE_MAX_DAY
    assert Limits.for_run(RUN_DATE, max_future_days=0).max_day == RUN_DATE
    with pytest.raises(ValueError, match=r"inside 1677-09-22\.\.2262-04-11"):
        Limits(min_day=date(1600, 1, 1))
    assert date(1677, 9, 22) == ENGINE_MIN_DAY


def test_settings_build_the_window_from_the_run_date_and_refuse_a_min_day_engines_cannot_hold() -> None:
    settings = load_settings(quality_min_day="2018-01-01", quality_max_future_days=3)
    assert settings.limits(RUN_DATE) == Limits(date(2018, 1, 1), date(2024, 5, 4))
    assert load_settings().limits(RUN_DATE) == LIMITS
    with pytest.raises(ConfigError, match="QUALITY_MIN_DAY"):
        load_settings(quality_min_day="1600-01-01")
    with pytest.raises(ConfigError, match="QUALITY_MAX_FUTURE_DAYS"):
        load_settings(quality_max_future_days=-1)


HEADER = "pay_date,total,user_id,value_prop"
ABOVE = f"total is above the contract maximum {MAX_TOTAL}"
TOTALS = [
    (str(MAX_TOTAL), None, MAX_TOTAL),
    ("9999999999999999", None, Decimal("9999999999999999.00")),
    ("0000000000000000000000000001.50", None, Decimal("1.50")),  # leading zeros: same value
    ("000", None, Decimal("0.00")),
    ("10000000000000000", ABOVE, None),
    ("10000000000000000.00", ABOVE, None),
    ("99999999999999999999999999999999999999999999.99", ABOVE, None),
    ("-1.00", "total is not a decimal >= 0 with at most 2 decimals", None),  # today's rule
]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
@pytest.mark.parametrize(("total", "reason", "value"), TOTALS)
def test_total_above_the_contract_maximum_is_quarantined_never_overflowing(
    total: str, reason: str | None, value: Decimal | None, quoted: bool
) -> None:
    field = f'"{total}"' if quoted else total
    content = f"{HEADER}\n2020-11-01,{field},1,point\n".encode()
    checked = parse_pays(split_lines(content), limits=LIMITS).collect()
    assert checked.select("reason", "total").row(0) == (reason, value)
