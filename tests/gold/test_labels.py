"""Point-in-time features for label rows (jobs.gold.labels) against the brute-force reference,
and as the lake was known at a moment."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from jobs.gold.label_io import versions_known_at, write_label_features
from jobs.gold.labels import ROW, LabelsError, label_features
from tests.conftest import LocalLake
from tests.reference import reference_label_features
from tests.strategies import EV, event_rows, pay_rows, silver_frames

START = date(2020, 10, 26)  # a Monday
event = event_rows(START, 49)
big_event = event_rows(START, 49, users=st.just(2**40))  # past the packed key's range: the generic plan
pay = pay_rows(START, 49)
# Label rows: days inside, before and after the data; known and unknown users and value props;
# extra columns of several types (nulls too).
label = st.tuples(
    st.integers(-20, 90).map(lambda i: START + timedelta(days=i)),
    st.one_of(st.integers(0, 6), st.sampled_from([-3, 2**40])),  # the last two: the generic plan
    st.sampled_from(["a", "b", "zz"]),
    st.one_of(st.none(), st.integers(-5, 5)),
    st.one_of(st.none(), st.text(max_size=3)),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
)
LABELS = {
    "day": pl.Date,
    "user_id": pl.Int64,
    "value_prop": pl.String,
    "target": pl.Int32,
    "note": pl.String,
    "score": pl.Float32,
    "flag": pl.Boolean,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prints=st.lists(event, max_size=40),
    taps=st.lists(event, max_size=20),
    big=st.lists(big_event, max_size=2),
    pays=st.lists(pay, max_size=30),
    labels=st.lists(label, min_size=1, max_size=25),
    duplicate=st.booleans(),
    mode=st.sampled_from(["calendar", "rolling"]),
    windows=st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True),
)
def test_label_rows_get_what_the_reference_gives_a_print_on_their_day(
    prints,
    taps,
    big,
    pays,
    labels,
    duplicate,
    mode,
    windows,  # type: ignore[no-untyped-def]
) -> None:
    p, t, y = silver_frames(prints + big, taps, pays)
    rows = labels + labels[:3] if duplicate else labels
    frame = pl.DataFrame(rows, schema=LABELS, orient="row")
    got = label_features(frame, prints=p.lazy(), taps=t.lazy(), pays=y.lazy(), mode=mode, windows=windows)
    expected = reference_label_features(frame, p, t, y, mode=mode, windows=windows)
    assert_frame_equal(got.collect(), expected)  # same rows, same order, same types, exact cents


def test_a_label_on_a_print_day_equals_that_prints_gold_row() -> None:
    from jobs.gold.features import build_features

    p, t, y = silver_frames(
        [(START + timedelta(days=d), 1, "a", 0) for d in (0, 3, 8, 9, 15, 22)],
        [(START + timedelta(days=3), 1, "a", 0)],
        [(START + timedelta(days=2), 1, "a", 1999)],
    )
    weeks = sorted({d - timedelta(days=d.weekday()) for d in p["day"].to_list()})
    for mode in ("calendar", "rolling"):
        gold = build_features(
            prints=p.lazy(), taps=t.lazy(), pays=y.lazy(), weeks=weeks, mode=mode, n_weeks=2
        ).collect()
        got = label_features(
            p.select("user_id", "value_prop", "day"),
            prints=p.lazy(),
            taps=t.lazy(),
            pays=y.lazy(),
            mode=mode,
            windows=[2],
        ).collect()
        cols = ["day", "prior_views", "prior_clicks", "prior_payments", "prior_amount"]
        assert_frame_equal(got.select(cols).sort("day"), gold.select(cols).sort("day"))
    assert got["prior_amount"].to_list()[-1] == Decimal("0.00")


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (pl.DataFrame({"user_id": [1], "day": [START]}), "missing column(s) value_prop"),
        (pl.DataFrame({"user_id": [1.5], "value_prop": ["a"], "day": [START]}), "user_id is Float64"),
        (
            pl.DataFrame({"user_id": [1], "value_prop": ["a"], "day": ["2020-13-01"]}),
            "'2020-13-01' is not a date",
        ),
        (
            pl.DataFrame({"user_id": ["x"], "value_prop": ["a"], "day": ["2020-11-01"]}),
            "'x' is not an integer",
        ),
        (
            pl.DataFrame(schema={"user_id": pl.Int64, "value_prop": pl.String, "day": pl.Date}),
            "no label rows",
        ),
        (
            pl.DataFrame({"user_id": [1], "value_prop": ["a"], "day": [START], "prior_views": [3]}),
            "prior_views would be overwritten",
        ),
    ],
)
def test_unusable_labels_name_the_problem(frame: pl.DataFrame, problem: str) -> None:
    empty = pl.LazyFrame(schema=EV)
    pays = pl.LazyFrame(schema={**EV, "total": pl.Decimal(18, 2)})
    with pytest.raises(LabelsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        label_features(frame, prints=empty, taps=empty, pays=pays)


def test_known_at_equals_the_features_on_a_copy_of_the_lake_made_then(
    lake: LocalLake, tmp_path: Path
) -> None:
    nd = date(2020, 11, 2)
    lake.land_events("prints", [(nd, 1, "point", 0), (nd + timedelta(days=7), 1, "point", 1)], "a.json")
    lake.land_events("taps", [(nd, 1, "point", 0)], "a.json")
    lake.land_pays([(nd + timedelta(days=1), "10.50", 1, "point")], "a.csv")
    lake.run()
    copy = tmp_path / "copy"
    shutil.copytree(lake.root, copy)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    # late data for days the labels look back on
    lake.land_events("prints", [(nd + timedelta(days=2), 1, "point", 3)], "late.json")
    lake.land_events("taps", [(nd + timedelta(days=3), 1, "point", 0)], "late.json")
    lake.land_pays([(nd + timedelta(days=4), "0.07", 1, "point")], "late.csv")
    lake.run()
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "day,user_id,value_prop,y\n2020-11-09,1,point,1\n2020-11-16,1,point,0\n2020-11-09,1,point,1\n"
    )
    ctx = lake.context()
    then = versions_known_at(ctx.lake, ctx.settings.lake_silver, between)
    out_live, out_copy, out_now = (
        tmp_path / "live.parquet",
        tmp_path / "copy.parquet",
        tmp_path / "now.parquet",
    )
    write_label_features(ctx, str(labels), str(out_live), mode="calendar", windows=[3], versions=then)
    copied = LocalLake(copy).context()
    now_copy = versions_known_at(copied.lake, copied.settings.lake_silver, datetime.now(UTC))
    write_label_features(copied, str(labels), str(out_copy), mode="calendar", windows=[3], versions=now_copy)
    now = versions_known_at(ctx.lake, ctx.settings.lake_silver, datetime.now(UTC))
    write_label_features(ctx, str(labels), str(out_now), mode="calendar", windows=[3], versions=now)
    live, copied_rows, today = (pl.read_parquet(p) for p in (out_live, out_copy, out_now))
    assert_frame_equal(live, copied_rows)
    assert live["prior_views"].to_list() == [1, 2, 1]  # the late print of 2020-11-04 is not known
    assert today["prior_views"].to_list() == [2, 3, 2]  # ... but it is today
    assert str(today["prior_amount"][0]) == "10.57" and str(live["prior_amount"][0]) == "10.50"


def test_buckets_change_nothing_but_memory(lake: LocalLake, tmp_path: Path) -> None:
    nd = date(2020, 11, 2)
    lake.land_events(
        "prints", [(nd + timedelta(days=i % 20), i % 7, "point", 0) for i in range(60)], "a.json"
    )
    lake.land_pays([(nd + timedelta(days=i % 20), f"{i}.01", i % 7, "point") for i in range(30)], "a.csv")
    lake.run()
    labels = pl.DataFrame(
        {
            "user_id": [i % 9 for i in range(50)],
            "value_prop": ["point"] * 50,
            "day": [nd + timedelta(days=i % 30) for i in range(50)],
            "row": list(range(50)),
        }
    )
    labels.write_parquet(tmp_path / "labels.parquet")
    ctx = lake.context()
    versions = versions_known_at(ctx.lake, ctx.settings.lake_silver, datetime.now(UTC))
    outs = []
    for buckets in (1, 4):
        out = tmp_path / f"out-{buckets}.csv"
        write_label_features(
            ctx,
            str(tmp_path / "labels.parquet"),
            str(out),
            mode="rolling",
            windows=[2, 1],
            versions=versions,
            buckets=buckets,
        )
        outs.append(pl.read_csv(out))
    assert_frame_equal(outs[0], outs[1])
    assert outs[0]["row"].to_list() == list(range(50))


# -- the look-up's paths: packed or generic keys, cut to the labels' pairs or not, buckets -------
NEW_YEAR = date(2020, 12, 14)  # a Monday: the events span ISO week 53 of 2020 and January 2021
year_event = event_rows(NEW_YEAR, 41)
year_pay = pay_rows(NEW_YEAR, 41)
year_label = st.tuples(
    st.integers(-10, 60).map(lambda i: NEW_YEAR + timedelta(days=i)),
    st.one_of(st.integers(0, 5), st.just(-3)),
    st.sampled_from(["a", "b", "zz"]),
    st.none(),
    st.none(),
    st.just(0.0),
    st.booleans(),
)


def _plan(labels: pl.DataFrame, p, t, y, **options) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """:func:`label_plan` as ``write_label_features`` calls it, with the path chosen by the test."""
    from jobs.gold.labels import check_labels, label_plan, public_labels, typed_labels

    typed = typed_labels(labels.lazy())
    stats = check_labels(typed)
    silver = {"prints": p.lazy(), "taps": t.lazy(), "pays": y.lazy()}
    return label_plan(public_labels(typed), silver, stats=stats, **options).collect()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prints=st.lists(year_event, max_size=40),
    taps=st.lists(year_event, max_size=20),
    pays=st.lists(year_pay, max_size=30),
    labels=st.lists(year_label, min_size=1, max_size=25),
    mode=st.sampled_from(["calendar", "rolling"]),
    windows=st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True),
    path=st.sampled_from(["packed", "packed, all silver", "generic", "packed, 3 buckets"]),
)
def test_every_path_of_the_look_up_gives_the_reference_across_a_year_boundary(
    prints,
    taps,
    pays,
    labels,
    mode,
    windows,
    path,  # type: ignore[no-untyped-def]
) -> None:
    p, t, y = silver_frames(prints, taps, pays)
    frame = pl.DataFrame(labels + labels[:2], schema=LABELS, orient="row")  # duplicates too
    options = {
        "mode": mode,
        "windows": windows,
        "silver_user_range": None if path == "generic" else (0, 4),
        "narrow": path != "packed, all silver",
    }
    buckets = [(b, 3) for b in range(3)] if path.endswith("buckets") else [None]
    parts = [_plan(frame, p, t, y, bucket=bucket, **options) for bucket in buckets]
    got = pl.concat(parts).sort(ROW).drop(ROW)  # each bucket's rows in order, merged by ROW
    expected = reference_label_features(frame, p, t, y, mode=mode, windows=windows)
    assert_frame_equal(got, expected)


def test_sums_past_int64_cents_stay_exact() -> None:
    most = "9999999999999999.99"  # decimal(18,2)'s largest: 10 of them pass 2**63 cents
    pays = pl.DataFrame(
        {
            "day": [NEW_YEAR + timedelta(days=i % 7) for i in range(12)],
            "user_id": [1] * 12,
            "value_prop": ["a"] * 12,
            "total": [Decimal(most)] * 11 + [Decimal("0.01")],
        },
        schema_overrides={"total": pl.Decimal(18, 2)},
    )
    empty = pl.LazyFrame(schema=EV)
    labels = pl.DataFrame(
        {"user_id": [1, 1], "value_prop": ["a", "a"], "day": [NEW_YEAR + timedelta(days=7)] * 2}
    )
    for mode in ("calendar", "rolling"):
        got = label_features(
            labels, prints=empty, taps=empty, pays=pays.lazy(), mode=mode, windows=[1]
        ).collect()
        assert got["prior_payments"].to_list() == [12, 12]
        assert got["prior_amount"].to_list() == [Decimal(most) * 11 + Decimal("0.01")] * 2
