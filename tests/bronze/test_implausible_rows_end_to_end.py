"""End to end: lines no stage could digest are quarantined in bronze; the lake keeps flowing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl

from jobs.schemas import MAX_TOTAL
from tests.conftest import LocalLake

ND = date(2020, 11, 2)  # a Monday
NEXT = ND + timedelta(days=7)
AFTER_RUN = "is after {} (the run date + QUALITY_MAX_FUTURE_DAYS)"
BEFORE_MIN = "is before QUALITY_MIN_DAY (2015-01-01)"


def land(lake: LocalLake) -> None:
    lake.land_events(
        "prints",
        [
            (ND, 1, "point", 0),
            ("2300-01-01", 1, "point", 1),
            ("1600-01-01", 1, "point", 2),
            ("2099-01-01", 1, "point", 3),
            (NEXT, 1, "point", 0),
            (NEXT, 2, "link_cobro", 1),
        ],
        "a.json",
    )
    with (lake.raw / "prints" / "a.json").open("a") as f:  # line 7: a trailing comma
        f.write('{"day": "2020-11-09", "event_data": {"position": 0, "value_prop": "point"},}\n')
    lake.land_events("taps", [(ND, 1, "point", 0), ("2099-01-01", 1, "point", 3)], "a.json")
    pays = [(ND + timedelta(days=1), MAX_TOTAL, 1, "point")] * 19
    pays += [
        ("2300-01-01", "1.00", 1, "point"),
        ("1600-01-01", "1.00", 1, "point"),
        ("2099-01-01", "1.00", 1, "point"),
        (ND, "10000000000000000.00", 1, "point"),
        (ND + timedelta(days=2), "0.01", 1, '"point"'),
    ]  # RFC 4180 quoted: valid
    lake.land_pays(pays, "a.csv")


def test_implausible_lines_are_quarantined_and_every_layer_holds_the_rest(lake: LocalLake) -> None:
    land(lake)
    results = lake.run()
    after = AFTER_RUN.format(lake.context().settings.limits(lake.context().started_at.date()).max_day)
    quarantine = lake.table("bronze", "quarantine").sort("source", "line_number")
    assert quarantine.select("source", "line_number", "reason").rows() == [
        ("pays", 21, f"pay_date {after}"),
        ("pays", 22, f"pay_date {BEFORE_MIN}"),
        ("pays", 23, f"pay_date {after}"),
        ("pays", 24, f"total is above the contract maximum {MAX_TOTAL}"),
        ("prints", 2, f"day {after}"),
        ("prints", 3, f"day {BEFORE_MIN}"),
        ("prints", 4, f"day {after}"),
        ("prints", 7, "invalid JSON: trailing comma"),
        ("taps", 2, f"day {after}"),
    ]
    assert results["bronze"].quarantined == 9
    assert lake.table("silver", "prints").height == 3
    assert lake.table("silver", "taps").height == 1
    assert lake.table("silver", "pays").height == 20
    gold = lake.table("gold", "print_features").sort("day", "user_id")
    assert gold.height == 3
    row = gold.filter((pl.col("day") == NEXT) & (pl.col("user_id") == 1)).row(0, named=True)
    assert row["prior_payments"] == 20
    assert row["prior_amount"] == MAX_TOTAL * 19 + Decimal("0.01")  # exact, no int64 wrap


def test_a_second_run_after_quarantining_is_a_no_op(lake: LocalLake) -> None:
    land(lake)
    lake.run()
    before = lake.versions()
    results = lake.run()
    assert lake.versions() == before
    assert all(r.skipped for r in results.values())
