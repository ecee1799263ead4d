"""A feature declared in the registry (jobs/feature_registry.py) is all it takes: it appears in
both plans, in the contract and in the audit columns (fused and re-derived), with the values
a brute-force reading of its declaration gives."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.feature_registry import GOLD_FEATURES, SUM_AMOUNT, Feature, feature_schema
from jobs.gold.features import build_features
from jobs.quality.derive import gold_audit_columns
from jobs.quality.suites import gold_suite
from jobs.schemas import GOLD, GOLD_AUDIT, TAP_SAME_DAY, gold_audit_schema, gold_schema
from tests.gold.test_features_match_reference import all_weeks, edge_case_events

START = date(2020, 11, 1)
# Test-only features: an integer sum of another source's column, a second count of a source
# that already has one, and a decimal sum.
POSITIONS = Feature(
    "prior_tap_positions",
    "the sum of the positions of the user's taps of this value prop in the window",
    source="taps",
    aggregation="sum",
    measure="tap_positions",
    value="position",
    dtype=pl.Int64(),
)
PRINTS_AGAIN = Feature("prior_prints", "prints again", source="prints", aggregation="count", measure="prints")
TOTALS = Feature(
    "prior_total",
    "pays' totals again",
    source="pays",
    aggregation="sum",
    measure="total_cents",
    value="total",
    dtype=SUM_AMOUNT,
)
EXTENDED = (*GOLD_FEATURES, POSITIONS, PRINTS_AGAIN)
PAYS_ONLY = (TOTALS,)  # no feature of prints: their keys still carry the windows


def reference(
    ev: dict[str, pl.DataFrame], features: Sequence[Feature], *, mode: str, n_weeks: int
) -> pl.DataFrame:
    """Brute force, one print at a time, from the declarations alone."""
    rows = []
    for p in ev["prints"].iter_rows(named=True):
        day, week = p["day"], p["day"] - timedelta(days=p["day"].weekday())
        lo, hi = (
            (week - timedelta(weeks=n_weeks), week)
            if mode == "calendar"
            else (day - timedelta(weeks=n_weeks), day)
        )
        taps = ev["taps"].filter(user_id=p["user_id"], value_prop=p["value_prop"])
        row = {
            "week_start": week,
            "day": day,
            "user_id": p["user_id"],
            "value_prop": p["value_prop"],
            "position": p["position"],
            "clicked": day in taps["day"].to_list(),
        }
        for f in features:
            events = ev[f.source].filter(
                pl.col("user_id") == p["user_id"],
                pl.col("value_prop") == p["value_prop"],
                pl.col("day") >= lo,
                pl.col("day") < hi,
            )
            if f.value is None:
                row[f.column()] = events.height
            else:
                row[f.column()] = sum(events[f.value].to_list(), Decimal(0) if f.scale else 0)
        rows.append(row)
    return pl.DataFrame(rows, schema=gold_schema(features), orient="row")


def _build(ev: dict[str, pl.DataFrame], features: Sequence[Feature], **kwargs: object) -> pl.DataFrame:
    return build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=all_weeks(ev["prints"]),
        features=features,
        **kwargs,  # type: ignore[arg-type]
    ).collect()


def test_the_registry_gives_todays_contract_and_names_windows() -> None:
    assert list(feature_schema()) == ["prior_views", "prior_clicks", "prior_payments", "prior_amount"]
    assert gold_schema(GOLD_FEATURES) == GOLD and gold_audit_schema(GOLD_FEATURES) == GOLD_AUDIT
    assert list(GOLD_AUDIT) == [
        TAP_SAME_DAY,
        "expected_prior_views",
        "expected_prior_clicks",
        "expected_prior_payments",
        "expected_prior_cents",
    ]
    views = GOLD_FEATURES[0]
    assert views.column() == "prior_views" and views.column("1w") == "prior_views_1w"
    with pytest.raises(ValueError, match="names its value column"):
        Feature("prior_x", "", source="pays", aggregation="sum", measure="x")
    with pytest.raises(ValueError, match="not an exact type"):
        Feature(
            "prior_x", "", source="pays", aggregation="sum", measure="x", value="total", dtype=pl.Float64()
        )
    with pytest.raises(ValueError, match="declared twice"):
        build_features(
            prints=pl.LazyFrame(),
            taps=pl.LazyFrame(),
            pays=pl.LazyFrame(),
            weeks=[],
            mode="calendar",
            n_weeks=3,
            features=(views, views),
        )


def test_every_feature_of_the_registry_is_checked_non_negative() -> None:
    checks = {c.name for c in gold_suite([START], first_day=START, mode="calendar").checks}
    assert {f"{f.column()}_non_negative" for f in GOLD_FEATURES} <= checks


@pytest.mark.parametrize("features", [EXTENDED, PAYS_ONLY], ids=["extended", "pays-only"])
@pytest.mark.parametrize(("mode", "n_weeks"), [("calendar", 3), ("rolling", 2)])
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_a_declared_feature_is_in_both_plans_the_contract_and_the_audit(
    features: Sequence[Feature], mode: str, n_weeks: int, packed: bool
) -> None:
    ev = edge_case_events(seed=5, start=START, n_days=30)
    fused = _build(ev, features, mode=mode, n_weeks=n_weeks, packed=packed, audit=True, first_day=START)
    assert fused.schema == pl.Schema({**gold_schema(features), **gold_audit_schema(features)})
    gold = fused.select(gold_schema(features).names())
    expected = reference(ev, features, mode=mode, n_weeks=n_weeks)
    assert_frame_equal(gold.sort(gold.columns), expected.sort(expected.columns))
    assert_frame_equal(gold, _build(ev, features, mode=mode, n_weeks=n_weeks, packed=packed))

    derived = gold_audit_columns(
        gold.with_row_index("row").lazy(),
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        mode=mode,  # type: ignore[arg-type]
        n_weeks=n_weeks,
        first_day=START,
        features=features,
    ).collect()
    derived = derived.sort("row")
    audit = gold_audit_schema(features).names()
    assert_frame_equal(fused.select(audit), derived.select(audit))
    # In the first weeks each audit column is the feature itself, in its exact integer units.
    for f in features:
        first = fused.filter(pl.col(f.audit_column).is_not_null())
        assert first.height > 0
        units = first[f.column()].to_physical() if f.scale else first[f.column()]
        assert (
            units.cast(pl.Int128).to_list() == first[f.audit_column].to_physical().cast(pl.Int128).to_list()
        )
