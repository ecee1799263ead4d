"""Gold equals the brute-force reference, row for row, on data full of edge cases."""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.gold.features import build_features
from tests.reference import canonical, reference_gold

VPS = ["cellphone_recharge", "link_cobro", "point"]


def edge_case_events(seed: int, start: date, n_days: int) -> dict[str, pl.DataFrame]:
    """Random events plus hand-placed edge cases (same-day repeats, pays without prints)."""
    rng = random.Random(seed)
    day = lambda: start + timedelta(days=rng.randrange(n_days))  # noqa: E731
    prints = [(day(), rng.randint(1, 25), rng.choice(VPS), rng.randint(0, 3)) for _ in range(900)]
    # the same value prop printed twice on one day to one user
    prints += [(start + timedelta(days=9), 7, "point", 0), (start + timedelta(days=9), 7, "point", 2)]
    # a user with no history at all, printed once at the very end
    prints.append((start + timedelta(days=n_days - 1), 999, "link_cobro", 1))
    taps = [(d, u, v, p) for (d, u, v, p) in prints if rng.random() < 0.15]
    pays = [
        (day(), rng.randint(1, 30), rng.choice(VPS), f"{rng.randint(0, 19995) / 100:.2f}") for _ in range(700)
    ]
    pays.append((start, 500, "point", "12.34"))  # pays of a user who never sees a print
    ev = {"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "position": pl.Int64}
    return {
        "prints": pl.DataFrame(prints, schema=ev, orient="row"),
        "taps": pl.DataFrame(taps, schema=ev, orient="row"),
        "pays": pl.DataFrame(
            pays, schema=["day", "user_id", "value_prop", "total"], orient="row"
        ).with_columns(pl.col("total").cast(pl.Decimal(18, 2))),
    }


def all_weeks(prints: pl.DataFrame) -> list[date]:
    return sorted({d - timedelta(days=d.weekday()) for d in prints["day"].to_list()})


@pytest.mark.parametrize(
    ("start", "n_days"),
    [
        (date(2020, 11, 1), 30),  # the real data's month: starts on a Sunday, ends on a Monday
        (date(2023, 12, 18), 35),  # crosses a year boundary mid-week
        (date(2024, 2, 12), 30),  # contains the leap day 2024-02-29
    ],
)
@pytest.mark.parametrize(
    ("mode", "n_weeks"), [("calendar", 3), ("rolling", 3), ("calendar", 1), ("rolling", 2)]
)
@pytest.mark.parametrize("packed", [True, False], ids=["packed-key", "generic"])
def test_gold_features_equal_reference(
    start: date, n_days: int, mode: str, n_weeks: int, packed: bool
) -> None:
    ev = edge_case_events(seed=n_days + n_weeks, start=start, n_days=n_days)
    gold = build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=all_weeks(ev["prints"]),
        mode=mode,
        n_weeks=n_weeks,  # type: ignore[arg-type]
        packed=packed,
    ).collect()
    expected = reference_gold(ev["prints"], ev["taps"], ev["pays"], mode=mode, n_weeks=n_weeks)
    assert gold.height == ev["prints"].height
    assert_frame_equal(canonical(gold), canonical(expected))


def test_gold_for_a_subset_of_weeks_equals_the_same_rows_of_a_full_build() -> None:
    ev = edge_case_events(seed=3, start=date(2020, 11, 1), n_days=30)
    weeks = all_weeks(ev["prints"])
    full = build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=weeks,
        mode="calendar",
        n_weeks=3,
    )
    part = build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=weeks[-2:],
        mode="calendar",
        n_weeks=3,
    )
    expected = full.filter(pl.col("week_start").is_in(weeks[-2:])).collect()
    assert_frame_equal(canonical(part.collect()), canonical(expected))


def test_first_week_prints_have_no_history() -> None:
    ev = edge_case_events(seed=5, start=date(2020, 11, 2), n_days=28)
    first = all_weeks(ev["prints"])[0]
    gold = build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=[first],
        mode="calendar",
        n_weeks=3,
    )
    totals = gold.select(pl.col("^prior_(views|clicks|payments)$").sum()).collect().row(0)
    assert totals == (0, 0, 0)


def test_calendar_mode_gives_every_print_of_a_user_week_and_value_prop_the_same_features() -> None:
    ev = edge_case_events(seed=11, start=date(2020, 11, 1), n_days=30)
    gold = build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=all_weeks(ev["prints"]),
        mode="calendar",
        n_weeks=3,
    ).collect()
    distinct = gold.group_by("week_start", "user_id", "value_prop").agg(
        pl.struct("prior_views", "prior_clicks", "prior_payments", "prior_amount").n_unique()
    )
    assert distinct.get_column(distinct.columns[-1]).max() == 1


def test_clicked_means_a_same_day_tap_not_a_tap_in_the_window() -> None:
    d = date(2020, 11, 10)
    ev = {"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "position": pl.Int64}
    prints = pl.DataFrame(
        [(d, 1, "point", 0), (d + timedelta(days=1), 1, "point", 0)], schema=ev, orient="row"
    )
    taps = pl.DataFrame([(d, 1, "point", 0)], schema=ev, orient="row")
    pays = pl.DataFrame(
        schema={"day": pl.Date, "user_id": pl.Int64, "value_prop": pl.String, "total": pl.Decimal(18, 2)}
    )
    gold = build_features(
        prints=prints.lazy(),
        taps=taps.lazy(),
        pays=pays.lazy(),
        weeks=[date(2020, 11, 9)],
        mode="calendar",
        n_weeks=3,
    ).collect()
    assert gold.sort("day")["clicked"].to_list() == [True, False]
    # the tap is in the same week: no leakage into calendar-mode history
    assert gold["prior_clicks"].to_list() == [0, 0]


def test_packed_key_limits_fail_loudly_or_fall_back() -> None:
    from jobs.gold.features import MAX_USER_ID, fits_packed

    weeks = [date(2020, 11, 2)]
    assert fits_packed(weeks, n_weeks=3, max_user_id=MAX_USER_ID)
    assert not fits_packed(weeks, n_weeks=3, max_user_id=MAX_USER_ID + 1)
    assert not fits_packed(weeks, n_weeks=3, max_user_id=None)
    # a user id past the packed range is an error, never a silently wrong row
    ev = edge_case_events(seed=1, start=date(2020, 11, 2), n_days=7)
    big = ev["prints"].with_columns(pl.lit(MAX_USER_ID + 1, dtype=pl.Int64).alias("user_id"))
    with pytest.raises(pl.exceptions.PolarsError):
        build_features(
            prints=big.lazy(),
            taps=ev["taps"].lazy(),
            pays=ev["pays"].lazy(),
            weeks=weeks,
            mode="calendar",
            n_weeks=3,
        ).collect()
    # ... and the generic plan handles it
    generic = build_features(
        prints=big.lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=weeks,
        mode="calendar",
        n_weeks=3,
        packed=False,
    ).collect()
    assert generic.height == big.filter(pl.col("day") < date(2020, 11, 9)).height


@pytest.mark.parametrize("mode", ["calendar", "rolling"])
def test_rebuilding_one_week_only_uses_the_history_of_its_users_and_equals_reference(mode: str) -> None:
    ev = edge_case_events(seed=21, start=date(2020, 11, 1), n_days=30)
    week = all_weeks(ev["prints"])[-2]  # a selective rebuild: one week of a long history
    gold = build_features(
        prints=ev["prints"].lazy(),
        taps=ev["taps"].lazy(),
        pays=ev["pays"].lazy(),
        weeks=[week],
        mode=mode,  # type: ignore[arg-type]
        n_weeks=3,
    ).collect()
    expected = reference_gold(ev["prints"], ev["taps"], ev["pays"], mode=mode, n_weeks=3)
    assert_frame_equal(canonical(gold), canonical(expected.filter(pl.col("week_start") == week)))
