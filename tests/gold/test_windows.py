"""Several lookback windows in one build (``LOOKBACK_WEEKS=3,1,4``): every window equals the
brute-force reference in both modes and both plans, the first window keeps today's column
names, the audit covers every window, and gold records (and rebuilds on a change of) them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.feature_registry import GOLD_FEATURES, window_names
from jobs.gold.features import build_features
from jobs.quality.derive import gold_audit_columns
from jobs.quality.suites import Suite, gold_suite
from jobs.quality.validate import prepare, validate_frame
from jobs.schemas import gold_audit_schema, gold_schema
from tests.conftest import LocalLake
from tests.gold.test_features_match_reference import all_weeks, edge_case_events
from tests.reference import canonical, reference_gold

WINDOWS = (3, 1, 4)


def _build(
    ev: dict[str, pl.DataFrame],
    windows: Sequence[int],
    *,
    mode: str,
    packed: bool,
    weeks: list[date] | None = None,
    audit: bool = False,
    first_day: date | None = None,
) -> pl.DataFrame:
    return build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=weeks or all_weeks(ev["prints"]),
        mode=mode,  # type: ignore[arg-type]
        windows=windows,
        packed=packed,
        audit=audit,
        first_day=first_day,
    ).collect()


def test_window_names_keep_the_first_window_unsuffixed() -> None:
    assert window_names((3, 1, 4)) == (None, "1w", "4w")
    assert window_names((2,)) == (None,)
    names = gold_schema(windows=WINDOWS).names()
    assert names[:10] == gold_schema().names()  # today's columns, unchanged and first
    assert names[10:] == [f.column(w) for w in ("1w", "4w") for f in GOLD_FEATURES]
    assert names[10:14] == ["prior_views_1w", "prior_clicks_1w", "prior_payments_1w", "prior_amount_1w"]
    assert gold_schema(windows=WINDOWS)["prior_amount_4w"] == pl.Decimal(38, 2)
    with pytest.raises(ValueError, match="twice"):
        window_names((3, 1, 3))


@pytest.mark.parametrize(
    ("start", "n_days"),
    [
        (date(2020, 11, 1), 30),
        (date(2023, 12, 18), 35),  # crosses a year boundary mid-week
    ],
)
@pytest.mark.parametrize(
    ("mode", "windows"), [("calendar", WINDOWS), ("rolling", WINDOWS), ("rolling", (2, 5))]
)
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_every_window_equals_the_reference(
    start: date, n_days: int, mode: str, windows: tuple[int, ...], packed: bool
) -> None:
    ev = edge_case_events(seed=n_days + len(windows), start=start, n_days=n_days)
    gold = _build(ev, windows, mode=mode, packed=packed)
    assert gold.schema == gold_schema(windows=windows)
    expected = reference_gold(ev["prints"], ev["taps"], ev["pays"], mode=mode, n_weeks=windows)
    assert gold.height == ev["prints"].height
    assert_frame_equal(canonical(gold), canonical(expected))
    # exact to the cent in every window, and the windows differ on these data
    assert gold["prior_amount_" + f"{windows[1]}w"].dtype == pl.Decimal(38, 2)
    assert (gold["prior_views"] != gold[f"prior_views_{windows[1]}w"]).any()


@pytest.mark.parametrize("mode", ["calendar", "rolling"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_the_first_window_is_the_single_window_build_and_the_others_are_theirs(
    mode: str, packed: bool
) -> None:
    ev = edge_case_events(seed=11, start=date(2020, 11, 1), n_days=30)
    several = _build(ev, WINDOWS, mode=mode, packed=packed)
    single = _build(ev, (3,), mode=mode, packed=packed)
    assert_frame_equal(several.select(single.columns), single)
    for n in (1, 4):
        alone = _build(ev, (n,), mode=mode, packed=packed)
        renamed = several.select(
            *gold_schema().names()[:6], *[pl.col(f"{f.name}_{n}w").alias(f.name) for f in GOLD_FEATURES]
        )
        assert_frame_equal(renamed, alone)


@pytest.mark.parametrize("mode", ["calendar", "rolling"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_late_out_of_order_data_for_an_old_week_rebuilds_every_window_exactly(
    mode: str, packed: bool
) -> None:
    """A late file for an old week: rebuilding the weeks it affects (as gold's planner does,
    for the widest window) gives every window the reference's values."""
    from jobs.weeks import affected_weeks

    ev = edge_case_events(seed=5, start=date(2023, 12, 4), n_days=60)
    late_day = date(2023, 12, 28)
    late = {
        "prints": pl.DataFrame(
            {"day": [late_day], "user_id": [7], "value_prop": ["point"], "position": [3]},
            schema=ev["prints"].schema,
        ),
        "taps": pl.DataFrame(
            {"day": [late_day], "user_id": [7], "value_prop": ["point"], "position": [3]},
            schema=ev["taps"].schema,
        ),
        "pays": pl.DataFrame(
            {"day": [late_day], "user_id": [7], "value_prop": ["point"], "total": [Decimal("123.45")]},
            schema=ev["pays"].schema,
        ),
    }
    before = _build(ev, WINDOWS, mode=mode, packed=packed)
    # the late rows arrive first in the frames: out of order
    after_ev = {s: pl.concat([late[s], ev[s]]) for s in ev}
    weeks = sorted(affected_weeks([late_day], n_weeks=max(WINDOWS)) & set(all_weeks(after_ev["prints"])))
    assert len(weeks) == 5  # its own week and the widest window's 4 weeks after it
    rebuilt = _build(after_ev, WINDOWS, mode=mode, packed=packed, weeks=weeks)
    merged = pl.concat([before.filter(~pl.col("week_start").is_in(weeks)), rebuilt])
    expected = reference_gold(
        after_ev["prints"], after_ev["taps"], after_ev["pays"], mode=mode, n_weeks=WINDOWS
    )
    assert_frame_equal(canonical(merged), canonical(expected))
    assert_frame_equal(canonical(merged), canonical(_build(after_ev, WINDOWS, mode=mode, packed=packed)))


# -- the audit covers every window ---------------------------------------------------------------
START = date(2020, 11, 1)


@pytest.fixture(scope="module")
def events() -> dict[str, pl.DataFrame]:
    return edge_case_events(seed=21, start=START, n_days=42)


@pytest.mark.parametrize("mode", ["calendar", "rolling"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_fused_audit_columns_of_every_window_equal_the_derived_ones(
    events: dict[str, pl.DataFrame], mode: str, packed: bool
) -> None:
    fused = _build(events, WINDOWS, mode=mode, packed=packed, audit=True, first_day=START)
    audit_names = gold_audit_schema().names()
    assert fused.schema == pl.Schema({**gold_schema(windows=WINDOWS), **gold_audit_schema()})
    gold = fused.drop(audit_names).with_row_index("row")
    derived = (
        gold_audit_columns(
            gold.lazy(),
            prints=events["prints"].lazy(),
            taps=events["taps"].lazy(),
            pays=events["pays"].lazy(),
            mode=mode,  # type: ignore[arg-type]
            windows=WINDOWS,
            first_day=START,
        )
        .collect()
        .sort("row")
    )
    assert_frame_equal(fused.select(audit_names), derived.select(audit_names))
    # the suite picks each window's rows: a longer window is expected on more rows (its window
    # reaches the first day longer), the widest on every row the shared audit column covers
    suite = _suite(events, mode)
    expected = prepare(fused, suite).collect()
    counts = [
        expected[f"expected_prior_views{'' if w is None else '_' + w}"].count() for w in (None, "1w", "4w")
    ]
    assert counts[1] < counts[0] < counts[2] == fused["expected_prior_views"].count()
    assert [r.check for r in validate_frame(fused, suite) if not r.success] == []


def _suite(events: dict[str, pl.DataFrame], mode: str) -> Suite:
    return gold_suite(all_weeks(events["prints"]), first_day=START, mode=mode, windows=WINDOWS)  # type: ignore[arg-type]


def _corrupt(frame: pl.DataFrame, suite: Suite, column: str, expected: str, by: object) -> pl.DataFrame:
    """``column`` of one row whose first-weeks audit covers it (and has history) moved by ``by``."""
    with_expected = prepare(frame, suite).collect().with_row_index("row")
    rows = with_expected.filter(pl.col(expected).is_not_null() & (pl.col(column) > 0))
    hit = pl.int_range(pl.len()) == int(rows["row"][0])
    dtype = frame.schema[column]
    return frame.with_columns(
        pl.when(hit).then(pl.col(column) + pl.lit(by, dtype=dtype)).otherwise(pl.col(column)).cast(dtype)
    )


@pytest.mark.parametrize(
    ("column", "expected", "by", "check"),
    [
        (
            "prior_clicks_4w",
            "expected_prior_clicks_4w",
            1,
            "first_weeks_prior_clicks_4w_counts_only_existing_history",
        ),
        (
            "prior_views_1w",
            "expected_prior_views_1w",
            1,
            "first_weeks_prior_views_1w_counts_only_existing_history",
        ),
        (
            "prior_amount_4w",
            "expected_prior_cents_4w",
            Decimal("0.01"),
            "first_weeks_prior_amount_4w_cents_counts_only_existing_history",
        ),
    ],
)
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_a_wrong_value_in_a_secondary_window_fails_the_gold_gate(
    events: dict[str, pl.DataFrame], column: str, expected: str, by: object, check: str, packed: bool
) -> None:
    fused = _build(events, WINDOWS, mode="calendar", packed=packed, audit=True, first_day=START)
    suite = _suite(events, "calendar")
    wrong = _corrupt(fused, suite, column, expected, by)
    failed = {r.check: r for r in validate_frame(wrong, suite) if not r.success}
    assert check in failed
    assert failed[check].unexpected_count == 1
    assert set(failed) <= {check, "prior_windows_nested"}


def test_a_shorter_window_above_a_longer_one_fails_anywhere(events: dict[str, pl.DataFrame]) -> None:
    """Outside the first weeks too: a 1-week count above the 3-week one cannot be right."""
    fused = _build(events, WINDOWS, mode="rolling", packed=True, audit=True, first_day=START)
    suite = _suite(events, "rolling")
    late_rows = pl.col("expected_prior_views_4w").is_null() & (pl.col("prior_payments") > 0)
    row = int(prepare(fused, suite).collect().with_row_index("row").filter(late_rows)["row"][0])
    hit = pl.int_range(pl.len()) == row
    wrong = fused.with_columns(
        pl.when(hit)
        .then(pl.col("prior_payments") + 50)
        .otherwise(pl.col("prior_payments_1w"))
        .alias("prior_payments_1w")
    )
    failed = {r.check for r in validate_frame(wrong, suite) if not r.success}
    assert failed == {"prior_windows_nested"}


# -- the pipeline records the windows and rebuilds on a change -----------------------------------
ND = date(2020, 11, 2)  # a Monday


def _land(lake: LocalLake) -> None:
    lake.land_events(
        "prints",
        [(ND + timedelta(days=d), u, "point", 0) for d in (0, 3, 8, 15, 22, 29, 36) for u in (1, 2)],
        "a.json",
    )
    lake.land_events("taps", [(ND + timedelta(days=d), 1, "point", 0) for d in (0, 8, 22)], "a.json")
    lake.land_pays([(ND + timedelta(days=d), "10.05", 1, "point") for d in (1, 9, 16, 30)], "a.csv")


def _gold_and_reference(
    lake: LocalLake, mode: str, windows: Sequence[int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    prints, taps, pays = (lake.table("silver", s) for s in ("prints", "taps", "pays"))
    expected = reference_gold(prints, taps, pays, mode=mode, n_weeks=windows)
    return canonical(lake.table("gold", "print_features")), canonical(expected)


def _last_commit(lake: LocalLake) -> dict:
    from deltalake import DeltaTable

    return DeltaTable(str(lake.root / "gold" / "print_features")).history(1)[0]


def test_a_change_of_windows_rebuilds_gold_with_the_new_columns(lake: LocalLake) -> None:
    _land(lake)
    lake.run()
    assert lake.table("gold", "print_features").columns == gold_schema().names()
    assert _last_commit(lake)["lookback_weeks"] == "3"
    results = lake.run(lookback_weeks="3,1")
    assert "lookback settings changed" in results["gold"].note
    gold, expected = _gold_and_reference(lake, "calendar", (3, 1))
    assert lake.table("gold", "print_features").columns == gold_schema(windows=(3, 1)).names()
    assert_frame_equal(gold, expected)
    assert _last_commit(lake)["lookback_weeks"] == "3,1"
    # the same windows again: nothing to do; another order is another primary window: rebuild
    assert lake.run(lookback_weeks="3,1")["gold"].skipped
    assert "lookback settings changed" in lake.run(lookback_weeks="1,3")["gold"].note
    assert_frame_equal(*_gold_and_reference(lake, "calendar", (1, 3)))
    # and back to one window: the extra columns go
    lake.run(lookback_weeks=3)
    assert lake.table("gold", "print_features").columns == gold_schema().names()


def test_a_late_file_with_several_windows_rebuilds_the_widest_windows_weeks(lake: LocalLake) -> None:
    _land(lake)
    lake.run(lookback_mode="rolling", lookback_weeks="2,1,4")
    assert_frame_equal(*_gold_and_reference(lake, "rolling", (2, 1, 4)))
    late = ND + timedelta(days=4)  # the first week, after later weeks were built
    lake.land_pays([(late, "0.99", 2, "point")], "late.csv")
    lake.land_events("prints", [(late, 2, "point", 1)], "late.json")
    lake.run(lookback_mode="rolling", lookback_weeks="2,1,4")
    commit = _last_commit(lake)
    assert commit["lookback_weeks"] == "2,1,4" and commit["lookback_mode"] == "rolling"
    assert commit["weeks"].split(",") == [str(ND + timedelta(weeks=k)) for k in range(5)]
    assert_frame_equal(*_gold_and_reference(lake, "rolling", (2, 1, 4)))
    assert json.loads(commit["silver_versions"])["pays"] == 1
