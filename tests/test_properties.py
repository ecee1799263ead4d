"""Properties that must hold for any input: no leakage, and every raw line accounted for."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from jobs.bronze.events import parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.pays import parse_pays
from jobs.gold.features import build_features
from tests.reference import canonical
from tests.strategies import event_rows, pay_rows, silver_frames

START = date(2020, 10, 26)  # a Monday
event = event_rows(START, 49)
pay = pay_rows(START, 49)


def _gold(prints, taps, pays, mode, n):  # type: ignore[no-untyped-def]
    weeks = sorted({d - timedelta(days=d.weekday()) for d in prints["day"].to_list()})
    if not weeks:
        return pl.DataFrame()
    return build_features(
        prints=prints.lazy(), taps=taps.lazy(), pays=pays.lazy(), weeks=weeks, mode=mode, n_weeks=n
    ).collect()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prints=st.lists(event, min_size=1, max_size=40),
    taps=st.lists(event, max_size=20),
    pays=st.lists(pay, max_size=30),
    cutoff_week=st.integers(1, 6),
    mode=st.sampled_from(["calendar", "rolling"]),
    n=st.integers(1, 4),
)
def test_no_leakage_events_from_the_cutoff_on_never_change_earlier_rows(
    prints,
    taps,
    pays,
    cutoff_week,
    mode,
    n,  # type: ignore[no-untyped-def]
) -> None:
    """Rows before a cutoff Monday are identical whether or not later events exist."""
    cutoff = START + timedelta(weeks=cutoff_week)
    full = _gold(*silver_frames(prints, taps, pays), mode, n)
    early = [e for e in prints if e[0] < cutoff]
    truncated = _gold(
        *silver_frames(early, [e for e in taps if e[0] < cutoff], [p for p in pays if p[0] < cutoff]), mode, n
    )
    if not early:
        return
    assert_frame_equal(canonical(full.filter(pl.col("day") < cutoff)), canonical(truncated))


bad_json = st.sampled_from(["", "{", "[]", "null", '{"day": 1}', "not json", '{"user_id": -1}'])
good_json = event.map(
    lambda e: json.dumps(
        {"day": str(e[0]), "event_data": {"position": e[3], "value_prop": e[2]}, "user_id": e[1]}
    )
)


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            good_json, bad_json, st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s)
        ),
        max_size=60,
    )
)
def test_every_event_line_is_either_a_bronze_row_or_quarantined(lines: list[str]) -> None:
    content = "\n".join(lines).encode() + (b"\n" if lines else b"")
    checked = parse_events(split_lines(content)).collect()
    assert checked.height == len(lines)
    assert checked["line_number"].to_list() == list(range(1, len(lines) + 1))
    good = checked.filter(pl.col("reason").is_null())
    assert (
        good.select(
            pl.col("line_number", "raw_line", "day", "user_id", "value_prop", "position").is_null().any()
        ).row(0)
        == (False,) * 6
    )
    assert (good["user_id"] > 0).all() and (good["position"] >= 0).all()


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            pay.map(lambda p: f"{p[0]},{p[3] / 100:.2f},{p[1]},{p[2]}"),
            st.text(alphabet="0123456789,.-abc ", max_size=25),
        ),
        max_size=60,
    )
)
def test_every_pay_line_is_either_a_bronze_row_or_quarantined(lines: list[str]) -> None:
    content = ("pay_date,total,user_id,value_prop\n" + "".join(f"{x}\n" for x in lines)).encode()
    checked = parse_pays(split_lines(content)).collect()
    assert checked.height == len(lines)
    good = checked.filter(pl.col("reason").is_null())
    assert (good["total"].cast(pl.Float64) >= 0).all()
    assert (
        good.select(
            pl.col("line_number", "raw_line", "pay_date", "total", "user_id", "value_prop").is_null().any()
        ).row(0)
        == (False,) * 6
    )
