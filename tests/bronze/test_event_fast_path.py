"""The regex fast path of parse_events gives exactly what the DuckDB path gives, line for line."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from jobs.bronze.events import CANONICAL_EVENT, event_rules, extract_json_fields, parse_events
from jobs.bronze.lines import split_lines
from jobs.schemas import Limits

LIMITS = Limits.for_run(date(2024, 5, 1), min_day=date(2015, 1, 1), max_future_days=1)


def _slow(content: bytes, limits: Limits = LIMITS) -> pl.DataFrame:
    return event_rules(extract_json_fields(split_lines(content)), limits=limits).collect()


def _fast(content: bytes, limits: Limits = LIMITS) -> pl.DataFrame:
    return parse_events(split_lines(content), limits=limits).collect()


def _line(day: str, pos: str, vp: str, user: str, sep: str = " ") -> str:
    return (
        f'{{"day":{sep}"{day}",{sep}"event_data":{sep}{{"position":{sep}{pos},{sep}'
        f'"value_prop":{sep}"{vp}"}},{sep}"user_id":{sep}{user}}}'
    )


TRICKY = [
    _line("2020-11-01", "0", "point", "7"),
    _line("2020-11-01", "3", "cellphone_recharge", "98702", sep=""),
    _line("2020-11-01", "0", "point", "7", sep="  "),  # two spaces: DuckDB path, still valid
    _line("2021-02-29", "0", "point", "7"),  # matches the shape, not a real day
    _line("2020-13-01", "0", "point", "7"),
    _line("2020-11-01", "01", "point", "7"),  # leading zero: invalid JSON
    _line("2020-11-01", "0", "point", "007"),
    _line("2020-11-01", "0", "point", "0"),
    _line("2020-11-01", "0", "point", "-7"),
    _line("2020-11-01", "-0", "point", "7"),
    _line("2020-11-01", "1.0", "point", "7"),
    _line("2020-11-01", "0", "point", "9" * 18),
    _line("2020-11-01", "0", "point", "9" * 19),  # past Int64
    _line("2020-11-01", "0", "poi\\u006et", "7"),  # an escape: same value via DuckDB
    _line("2020-11-01", "0", " ", "7"),
    _line("2020-11-01", "0", "", "7"),
    _line("2020-11-01", "0", "new-prop_2", "7"),
    _line("2020-11-01", "0", "point", "7") + " ",
    _line("2020-11-01", "0", "point", "7") + ',"x":1}',
    '{"day": "2020-11-01", "event_data": {"value_prop": "point", "position": 0}, "user_id": 7}',
    '{"user_id": 7, "day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}}',
    '{"day": "2020-11-01", "day": "2020-11-02", "event_data": {"position": 0, "value_prop": "p"}, '
    '"user_id": 7}',
    _line("2099-01-01", "0", "point", "7"),  # matches the shape, after the run date
    _line("2024-05-02", "0", "point", "7"),  # the last day of the window
    _line("2300-01-01", "0", "point", "7"),
    _line("1600-01-01", "0", "point", "7"),
    _line("0000-01-01", "0", "point", "7"),
    _line("2014-12-31", "0", "point", "7", sep=""),
    _line("2020-11-01", "0", "point", "7")[:-1] + ",}",  # trailing comma
    _line("2020-11-01", "NaN", "point", "7"),
    _line("2020-11-01", "0", "point", "7")[:-1] + ', "user_id": 8}',  # duplicate key
    "",
    "not json",
    # schema drift: extra keys at the top level and inside event_data (slow path, rescued)
    _line("2020-11-01", "0", "point", "7")[:-1] + ', "device": "ios"}',
    '{"device": "ios", ' + _line("2020-11-01", "0", "point", "7")[1:],
    _line("2020-11-01", "0", 'point", "campaign": "x', "7"),
    '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point", "campaign": '
    '{"id": [1, 2.50, null]}}, "user_id": 7, "country": "Espa\u00f1a", "n": 1e5}',
    _line("2099-01-01", "0", "point", "7")[:-1] + ', "device": "ios"}',  # drift + bad day
    _line("2020-11-01", "0", "point", "7")[:-1] + ', "device": "ios",}',  # drift + trailing comma
    '{"day": "2020-11-01", "device": "ios", "event_data": {"value_prop": "p"}, "user_id": 7}',
]


def test_canonical_shape_is_what_the_generator_writes() -> None:
    line = json.dumps(
        {"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 47307}
    )
    assert pl.Series([line]).str.contains(CANONICAL_EVENT).item()


def test_tricky_lines_get_the_same_rows_and_reasons_on_both_paths() -> None:
    content = ("\n".join(TRICKY) + "\n").encode()
    assert_frame_equal(_fast(content), _slow(content))
    assert_frame_equal(_fast(content, Limits()), _slow(content, Limits()))


fields = st.tuples(
    st.sampled_from(
        [
            "2020-11-01",
            "2020-02-30",
            "2024-02-29",
            "2020-1-01",
            "99999-01-01",
            "2099-01-01",
            "2300-01-01",
            "1600-01-01",
            "2014-12-31",
            "2015-01-01",
            "2024-05-02",
            "2024-05-03",
            "9999-12-31",
        ]
    ),
    st.sampled_from(["0", "3", "01", "-1", "2.5", "12345678901234567890", '"1"', "NaN", "1,"]),
    st.sampled_from(["point", "link_cobro", "a-b", "", " ", "x y", "\\u00e9t\\u00e9", "3"]),
    st.sampled_from(["1", "98702", "0", "-4", "1e3", "999999999999999999", "null"]),
    st.sampled_from([" ", "", "  "]),
)
# extra keys (schema drift) after the top-level object's last field / the value prop's
extras = st.sampled_from(["", ', "device": "ios"', ', "n": 1.50', ', "x": {"y": [1, "z"]}', ', "day": "dup"'])


def _drifted(row: tuple[str, str, str, str, str], top: str, nested: str) -> str:
    line = _line(*row)
    if nested:
        at = line.index("}")  # the end of event_data
        line = line[:at] + nested + line[at:]
    return line[:-1] + top + "}"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(fields, extras, extras), min_size=1, max_size=30))
def test_fast_path_equals_duckdb_path(rows: list[tuple[tuple[str, str, str, str, str], str, str]]) -> None:
    content = ("\n".join(_drifted(*r) for r in rows) + "\n").encode()
    assert_frame_equal(_fast(content), _slow(content))
