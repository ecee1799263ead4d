"""JSON lines are strict RFC 8259; pays lines are RFC 4180 CSV (quoted fields are valid)."""

from __future__ import annotations

import duckdb
import pytest

from jobs.bronze.events import json_problem, parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.pays import parse_pays

GOOD = '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7}'

NOT_STRICT = [
    (
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7,}',
        "invalid JSON: trailing comma",
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point" , }, "user_id": 7}',
        "invalid JSON: trailing comma",
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7, '
        '"tags": [1, 2,]}',
        "invalid JSON: trailing comma",
    ),
    (
        '{"day": "2020-11-01", "day": "2020-11-02", "event_data": {"position": 0, '
        '"value_prop": "point"}, "user_id": 7}',
        'invalid JSON: duplicate key "day"',
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point", '
        '"value_prop": "x"}, "user_id": 7}',
        'invalid JSON: duplicate key "value_prop"',
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7, '
        '"extra": [{"a": 1, "a": 1}]}',
        'invalid JSON: duplicate key "a"',
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": NaN, "value_prop": "point"}, "user_id": 7}',
        "invalid JSON: NaN is not a JSON number",
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": -Infinity}',
        "invalid JSON: -Infinity is not a JSON number",
    ),
    (
        '{"day": "2020-11-01", "event_data": {"position": inf, "value_prop": "point"}, "user_id": 7}',
        "invalid JSON",
    ),
]


@pytest.mark.parametrize(("line", "reason"), NOT_STRICT)
def test_json_duckdb_accepts_but_rfc_8259_does_not_is_quarantined_with_its_reason(
    line: str, reason: str
) -> None:
    assert duckdb.sql("SELECT json_valid(?)", params=[line]).fetchone() == (True,)  # lenient
    checked = parse_events(split_lines(f"{GOOD}\n{line}\n{GOOD}\n".encode())).collect()
    assert checked["reason"].to_list() == [None, reason, None]


@pytest.mark.parametrize(
    "line",
    [
        GOOD,
        '  {"user_id": 7, "event_data": {"value_prop": "p\\u00e9", "position": 1e0}, "day": "2020-11-01"}\t',
        '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7, '
        '"n": 123456789012345678901234567890, "f": 1e999, "s": "a, b}"}',
    ],
)
def test_strict_json_has_no_problem(line: str) -> None:
    assert json_problem(line) is None


def test_a_lone_surrogate_python_accepts_is_still_invalid_through_duckdb() -> None:
    line = GOOD.replace('"point"', '"\\ud800"')
    assert parse_events(split_lines(line.encode())).collect()["reason"].to_list() == ["invalid JSON"]


HEADER = "pay_date,total,user_id,value_prop"
QUOTED = [
    ('"2020-11-01","7.04","1","point"', (7, "point")),
    ('2020-11-01,7.04,1,"point"', (7, "point")),
    ('2020-11-01,7.04,1,"send,money"', (7, "send,money")),  # a comma inside quotes
    ('2020-11-01,7.04,1,"say ""hi"""', (7, 'say "hi"')),  # doubled quotes
    ('2020-11-01,7.04,1, "point" ', (7, "point")),  # spaces around a field are ignored
    ('2020-11-01,7.04,1,"a b"', (7, "a b")),
]


@pytest.mark.parametrize(("line", "values"), QUOTED)
def test_rfc_4180_quoted_fields_are_valid(line: str, values: tuple[int, str]) -> None:
    checked = parse_pays(split_lines(f"{HEADER}\n{line}\n".encode())).collect()
    assert checked.select("reason", "value_prop").row(0) == (None, values[1])
    assert str(checked["total"].item()) == "7.04"


MALFORMED = "malformed CSV quoting (RFC 4180)"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('2020-11-01,7.04,1,poi"nt', MALFORMED),  # a quote inside an unquoted field
        ('2020-11-01,7.04,1,"point', MALFORMED),  # unterminated (a quoted field spanning lines)
        ('2020-11-01,7.04,1,"po"int', MALFORMED),
        ('2020-11-01,7.04,1,"a"b"', MALFORMED),
        ('2020-11-01,"7.04,1,point', MALFORMED),
        ('2020-11-01,7.04,1,"point",x', "expected 4 comma-separated fields, got 5"),
        ('2020-11-01,7.04,1,"a,b,c"', None),
        ('2020-11-01,7.04,1,""', "value_prop is empty"),
        ('2020-11-01,7.04,1," "', "value_prop is empty"),
    ],
)
def test_malformed_csv_quoting_is_quarantined_with_its_reason(line: str, reason: str | None) -> None:
    checked = parse_pays(split_lines(f"{HEADER}\n{line}\n".encode())).collect()
    assert checked["reason"].to_list() == [reason]


def test_a_quoted_field_spanning_two_lines_quarantines_both_lines() -> None:
    content = f'{HEADER}\n2020-11-01,7.04,1,"two\nlines"\n2020-11-01,1,2,p\n'.encode()
    checked = parse_pays(split_lines(content)).collect()
    assert checked["reason"].to_list() == [MALFORMED, MALFORMED, None]
