"""Gold sums amounts exactly: no int64 wrap, no float, at the contract's maximum total.

Cents are summed as Int128 and ``prior_amount`` is decimal(38,2): any number of payments of at
most MAX_TOTAL fits, so a valid input can neither give a wrong amount nor make gold fail.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.gold.features import build_features
from jobs.quality.derive import gold_audit_columns
from jobs.quality.suites import gold_suite
from jobs.quality.validate import validate_frame
from jobs.schemas import GOLD, MAX_TOTAL
from tests.reference import canonical, reference_gold

MONDAY = date(2020, 11, 2)
EVENTS = {"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "position": pl.Int64}
PAYS = {"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "total": pl.Decimal(18, 2)}


def _inputs(n_pays: int, total: Decimal = MAX_TOTAL) -> dict[str, pl.DataFrame]:
    """User 1 pays ``n_pays`` times ``total`` in the week before a print (+ one cent)."""
    pays = [(MONDAY + timedelta(days=i % 7), 1, "point", total) for i in range(n_pays)]
    pays.append((MONDAY, 1, "point", Decimal("0.01")))
    prints = [(MONDAY + timedelta(days=7), 1, "point", 0), (MONDAY + timedelta(days=8), 1, "point", 1)]
    return {
        "prints": pl.DataFrame(prints, schema=EVENTS, orient="row"),
        "taps": pl.DataFrame(schema=EVENTS),
        "pays": pl.DataFrame(pays, schema=PAYS, orient="row"),
    }


def _gold(ev: dict[str, pl.DataFrame], *, mode: str, packed: bool) -> pl.DataFrame:
    return build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=[MONDAY + timedelta(days=7)],
        mode=mode,
        n_weeks=3,
        packed=packed,
    ).collect()  # type: ignore[arg-type]


@pytest.mark.parametrize("n_pays", [19, 1000])
@pytest.mark.parametrize("mode", ["calendar", "rolling"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_prior_amount_of_many_maximum_totals_is_the_exact_decimal_sum(
    n_pays: int, mode: str, packed: bool
) -> None:
    ev = _inputs(n_pays)
    gold = _gold(ev, mode=mode, packed=packed)
    exact = MAX_TOTAL * n_pays + Decimal("0.01")  # Python Decimal arithmetic
    assert exact > Decimal(2**63) / 100  # past what int64 cents can hold
    assert gold["prior_amount"].to_list() == [exact, exact]
    assert gold["prior_payments"].to_list() == [n_pays + 1] * 2
    assert gold.schema["prior_amount"] == pl.Decimal(38, 2) == GOLD["prior_amount"]
    expected = reference_gold(ev["prints"], ev["taps"], ev["pays"], mode=mode, n_weeks=3)
    assert_frame_equal(canonical(gold), canonical(expected))


@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_nineteen_payments_whose_int64_cents_sum_wrapped_to_one_unit_sum_exactly(packed: bool) -> None:
    # 18 maximum totals + this one: 2**64 + 100 cents, which int64 cents summed to 1.00
    last = Decimal(2**64 + 100 - 18 * int(MAX_TOTAL * 100)) / 100
    assert last <= MAX_TOTAL
    ev = _inputs(18)
    ev["pays"] = (
        ev["pays"].head(18).vstack(pl.DataFrame([(MONDAY, 1, "point", last)], schema=PAYS, orient="row"))
    )
    gold = _gold(ev, mode="calendar", packed=packed)
    assert gold["prior_amount"].to_list() == [MAX_TOTAL * 18 + last] * 2
    assert str(gold["prior_amount"][0]) == "184467440737095517.16"


def test_gold_suite_passes_on_exact_sums_near_the_maximum() -> None:
    ev = _inputs(1000)
    gold = _gold(ev, mode="calendar", packed=True)
    audited = gold_audit_columns(
        gold.lazy(),
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        mode="calendar",
        n_weeks=3,
        first_day=MONDAY,
    ).collect()
    results = validate_frame(
        audited, gold_suite([MONDAY + timedelta(days=7)], first_day=MONDAY, mode="calendar")
    )
    assert [r.check for r in results if not r.success] == []
    bumped = gold.with_columns(pl.col("prior_amount") + Decimal("0.01"))
    audited = gold_audit_columns(
        bumped.lazy(),
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        mode="calendar",
        n_weeks=3,
        first_day=MONDAY,
    ).collect()
    failed = [
        r.check
        for r in validate_frame(
            audited, gold_suite([MONDAY + timedelta(days=7)], first_day=MONDAY, mode="calendar")
        )
        if not r.success
    ]
    assert failed == ["first_weeks_prior_amount_cents_counts_only_existing_history"]
