"""Each way a raw line can break the contract lands in quarantine with its own reason."""

from __future__ import annotations

import pytest

from jobs.bronze.events import parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.pays import parse_pays

GOOD = '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7}'


def _event(day: object = '"2020-11-01"', user: object = 7, vp: object = '"point"', pos: object = 0) -> str:
    return f'{{"day": {day}, "event_data": {{"position": {pos}, "value_prop": {vp}}}, "user_id": {user}}}'


EVENT_CASES = [
    ("", "empty line"),
    ("   ", "empty line"),
    ('{"day": "2020-11-01", "user_id": 7', "invalid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"just a string"', "not a JSON object"),
    ('{"event_data": {"position": 0, "value_prop": "p"}, "user_id": 7}', "missing field: day"),
    (_event(day='"2020-02-30"'), "day is not a real calendar date (YYYY-MM-DD)"),
    (_event(day='"2021-02-29"'), "day is not a real calendar date (YYYY-MM-DD)"),
    (_event(day='"01/11/2020"'), "day is not a real calendar date (YYYY-MM-DD)"),
    (_event(day="20201101"), "day is not a real calendar date (YYYY-MM-DD)"),
    ('{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "p"}}', "missing field: user_id"),
    (_event(user=0), "user_id is not a positive integer"),
    (_event(user=-5), "user_id is not a positive integer"),
    (_event(user=12.5), "user_id is not a positive integer"),
    (_event(user='"12"'), "user_id is not a positive integer"),
    (_event(user="null"), "user_id is not a positive integer"),
    ('{"day": "2020-11-01", "user_id": 7}', "missing field: event_data"),
    (
        '{"day": "2020-11-01", "event_data": {"position": 0}, "user_id": 7}',
        "missing field: event_data.value_prop",
    ),
    (_event(vp='""'), "value_prop is empty or not a string"),
    (_event(vp="3"), "value_prop is empty or not a string"),
    (
        '{"day": "2020-11-01", "event_data": {"value_prop": "p"}, "user_id": 7}',
        "missing field: event_data.position",
    ),
    (_event(pos=-1), "position is not an integer >= 0"),
    (_event(pos=1.5), "position is not an integer >= 0"),
    (_event(pos='"x"'), "position is not an integer >= 0"),
]


@pytest.mark.parametrize(("line", "reason"), EVENT_CASES)
def test_bad_event_line_gets_its_reason(line: str, reason: str) -> None:
    content = f"{GOOD}\n{line}\n{GOOD}\n".encode()
    checked = parse_events(split_lines(content)).collect()
    assert checked["reason"].to_list() == [None, reason, None]
    assert checked["line_number"].to_list() == [1, 2, 3]


def test_valid_event_keeps_unknown_value_prop_and_extra_fields() -> None:
    line = _event(vp='"brand_new_prop"').replace("}", ', "extra": 1}', 1)
    checked = parse_events(split_lines(line.encode())).collect()
    assert checked["reason"].to_list() == [None]
    assert checked["value_prop"].to_list() == ["brand_new_prop"]


HEADER = "pay_date,total,user_id,value_prop"
PAY_CASES = [
    ("", "empty line"),
    ("2020-11-01,7.04,35994", "expected 4 comma-separated fields, got 3"),
    ("2020-11-01,7.04,35994,point,x", "expected 4 comma-separated fields, got 5"),
    ("2020-11-31,7.04,35994,point", "pay_date is not a real calendar date (YYYY-MM-DD)"),
    ("11/01/2020,7.04,35994,point", "pay_date is not a real calendar date (YYYY-MM-DD)"),
    ("2020-11-01,abc,35994,point", "total is not a decimal >= 0 with at most 2 decimals"),
    ("2020-11-01,-1.00,35994,point", "total is not a decimal >= 0 with at most 2 decimals"),
    ("2020-11-01,7.045,35994,point", "total is not a decimal >= 0 with at most 2 decimals"),
    ("2020-11-01,,35994,point", "total is not a decimal >= 0 with at most 2 decimals"),
    ("2020-11-01,7.04,0,point", "user_id is not a positive integer"),
    ("2020-11-01,7.04,-3,point", "user_id is not a positive integer"),
    ("2020-11-01,7.04,3.5,point", "user_id is not a positive integer"),
    ("2020-11-01,7.04,35994,", "value_prop is empty"),
]


@pytest.mark.parametrize(("line", "reason"), PAY_CASES)
def test_bad_pay_line_gets_its_reason(line: str, reason: str) -> None:
    content = f"{HEADER}\n2020-11-01,7.04,1,point\n{line}\n".encode()
    checked = parse_pays(split_lines(content)).collect()
    assert checked["reason"].to_list() == [None, reason]


def test_pays_totals_are_exact_decimals() -> None:
    content = f"{HEADER}\n2020-11-01,7.04,1,point\n2020-11-01,199.95,1,point\n2020-11-01,0,1,p\n"
    checked = parse_pays(split_lines(content.encode())).collect()
    assert [str(t) for t in checked["total"].to_list()] == ["7.04", "199.95", "0.00"]


def test_pays_header_in_another_order_maps_columns_by_name() -> None:
    content = "user_id,value_prop,pay_date,total\n35994,point,2020-11-01,7.04\n"
    checked = parse_pays(split_lines(content.encode())).collect()
    assert checked.select("user_id", "value_prop", "reason").row(0) == (35994, "point", None)


def test_pays_file_with_wrong_header_is_quarantined_line_by_line() -> None:
    content = b'{"day": "2020-11-01"}\n2020-11-01,7.04,1,point\n'
    checked = parse_pays(split_lines(content)).collect()
    assert checked.height == 2
    assert all(r.startswith("file header is not") for r in checked["reason"].to_list())


def test_crlf_line_endings_and_byte_order_mark_are_tolerated() -> None:
    content = ("\ufeff" + GOOD + "\r\n" + GOOD + "\r\n").encode()
    assert parse_events(split_lines(content)).collect()["reason"].to_list() == [None, None]


def test_invalid_utf8_is_quarantined_not_fatal() -> None:
    content = GOOD.encode() + b"\n\xff\xfe garbage\n"
    assert parse_events(split_lines(content)).collect()["reason"].to_list() == [None, "not valid UTF-8"]


def test_empty_file_has_no_lines_and_a_lone_newline_is_one_empty_line() -> None:
    assert split_lines(b"").collect().height == 0
    assert split_lines(b"\n").collect()["raw_line"].to_list() == [""]
