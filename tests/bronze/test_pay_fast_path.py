"""The regex fast path of parse_pays gives exactly what the rules give, line for line."""

from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from jobs.bronze.lines import split_lines
from jobs.bronze.pays import _rules, header_order, parse_pays
from jobs.schemas import Limits

LIMITS = Limits.for_run(date(2024, 5, 1), min_day=date(2015, 1, 1), max_future_days=1)

HEADERS = [
    "pay_date,total,user_id,value_prop",
    "user_id,value_prop,pay_date,total",
    # schema drift: other columns anywhere, rescued by name
    "channel,pay_date,total,user_id,value_prop",
    "pay_date,total,note,user_id,value_prop,ref",
]


def _slow(content: bytes) -> pl.DataFrame:
    lines = split_lines(content)
    header = lines.filter(pl.col("line_number") == 1).collect()["raw_line"].item()
    order = header_order(header)
    assert order is not None
    return _rules(lines.filter(pl.col("line_number") > 1), order, limits=LIMITS).collect()


OTHER = ["web", "", " a b ", '"x,y"', '"say ""hi"""', "\\", "\t", "é"]


def _line(header: str, day: str, total: str, user: str, vp: str, other: str = "web") -> str:
    values = {"pay_date": day, "total": total, "user_id": user, "value_prop": vp}
    return ",".join(values.get(name, other) for name in header.split(","))


fields = st.tuples(
    st.sampled_from(
        [
            "2020-11-01",
            "2020-11-31",
            "2024-02-29",
            "2021-02-29",
            "2020-1-01",
            "",
            "2099-01-01",
            "2300-01-01",
            "1600-01-01",
            "2014-12-31",
            "2024-05-02",
            "2024-05-03",
            '"2020-11-01"',
        ]
    ),
    st.sampled_from(
        [
            "7.04",
            "0",
            "199.95",
            "7.045",
            "-1.00",
            "1e3",
            "12345678901234567",
            ".5",
            "3.",
            "",
            "9999999999999999.99",
            "10000000000000000",
            "0000000000000000001",
            '"7.04"',
            " 7.04",
        ]
    ),
    st.sampled_from(["1", "35994", "0", "007", "-3", "3.5", "999999999999999999", ""]),
    st.sampled_from(
        [
            "point",
            "link_cobro",
            "a-b",
            "",
            " x",
            '"point"',
            "x y",
            "é",
            '"a,b"',
            '"a""b"',
            'a"b',
            '"open',
            '" "',
        ]
    ),
    st.sampled_from(OTHER),
)


@settings(max_examples=80, deadline=None)
@given(
    header=st.sampled_from(HEADERS),
    rows=st.lists(fields, min_size=1, max_size=30),
    extra=st.lists(st.sampled_from(["", "a,b", "1,2,3,4,5", "\ufffd,1,2,3"]), max_size=3),
)
def test_fast_path_equals_rules(
    header: str, rows: list[tuple[str, str, str, str, str]], extra: list[str]
) -> None:
    lines = [_line(header, *r) for r in rows] + extra
    content = (header + "\n" + "\n".join(lines) + "\n").encode()
    assert_frame_equal(parse_pays(split_lines(content), limits=LIMITS).collect(), _slow(content))


def test_all_canonical_file_takes_the_fast_path_only() -> None:
    content = b"pay_date,total,user_id,value_prop\n2020-11-01,7.04,1,point\n2020-11-02,5,2,x\n"
    checked = parse_pays(split_lines(content)).collect()
    assert checked["reason"].to_list() == [None, None]
    assert [str(t) for t in checked["total"].to_list()] == ["7.04", "5.00"]
