"""Schema drift: fields the contract does not know are rescued into ``_rescued`` (never dropped,
never a reason to quarantine), reported per file (manifest ``drift``) and per run; a pays header
with other columns is read by name; bronze tables written before ``_rescued`` take new runs."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.bronze import read
from jobs.bronze.events import parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.pays import PAYS_COLUMNS, parse_pays
from jobs.schemas import BRONZE, RESCUED, SILVER, conform
from jobs.summary import drift_lines
from tests.conftest import LocalLake

ND = date(2020, 11, 2)  # a Monday
CANONICAL = '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7}'


def _events(*lines: str) -> pl.DataFrame:
    return parse_events(split_lines(("\n".join(lines) + "\n").encode())).collect()


def _pays(text: str) -> pl.DataFrame:
    return parse_pays(split_lines(text.encode())).collect()


# -- events -------------------------------------------------------------------------------------
def test_extra_top_level_and_nested_keys_are_rescued_and_the_line_stays_valid() -> None:
    line = (
        '{"day": "2020-11-01", "device": "ios", "event_data": {"position": 2, '
        '"value_prop": "point", "campaign": "x"}, "user_id": 7, "country": "España"}'
    )
    row = _events(line).row(0, named=True)
    assert row["reason"] is None
    assert (row["day"], row["user_id"], row["value_prop"], row["position"]) == (
        date(2020, 11, 1),
        7,
        "point",
        2,
    )
    assert json.loads(row[RESCUED]) == {"device": "ios", "event_data": {"campaign": "x"}, "country": "España"}
    assert row["new_fields"] == ["device", "country", "event_data.campaign"]
    assert row["missing_fields"] is None


def test_rescued_values_keep_their_json_values_nesting_and_odd_keys_included() -> None:
    line = (
        CANONICAL[:-1] + ', "meta": {"ratio": 1.10, "big": 123456789012345678901234, '
        '"tags": ["a", null, true]}, "a/b~c": 1, "q\\"k": "\\u00e9"}'
    )
    row = _events(line).row(0, named=True)
    assert row["reason"] is None
    assert row[RESCUED] == (
        '{"meta":{"ratio":1.1,"big":123456789012345678901234,"tags":["a",null,true]},"a/b~c":1,"q\\"k":"é"}'
    )
    assert row["new_fields"] == ["meta", "a/b~c", 'q"k']


def test_canonical_lines_have_no_rescued_fields() -> None:
    checked = _events(CANONICAL, CANONICAL.replace(" ", ""))
    assert checked[RESCUED].to_list() == [None, None]
    assert checked["new_fields"].to_list() == [None, None]


def test_a_line_with_extra_keys_still_breaks_the_contract_for_its_own_reason() -> None:
    line = '{"day": "2020-11-01", "device": "ios", "event_data": {"value_prop": "p"}, "user_id": 7}'
    row = _events(line).row(0, named=True)
    assert row["reason"] == "missing field: event_data.position"
    assert row["missing_fields"] == ["event_data.position"]
    assert row["new_fields"] == ["device"]


# -- pays ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("position", range(5))
def test_a_pays_file_with_an_extra_column_in_any_position_is_ingested_with_it_rescued(position: int) -> None:
    names = list(PAYS_COLUMNS)
    names.insert(position, "channel")
    values = {"pay_date": "2020-11-01", "total": "7.04", "user_id": "35994", "value_prop": "point"}
    rows = [
        {**values, "channel": "web"},
        {**values, "channel": '"app, ios"'},
        {**values, "channel": ""},
        {**values, "channel": " spaced "},
    ]
    text = ",".join(names) + "\n" + "".join(",".join(r[n] for n in names) + "\n" for r in rows)
    checked = _pays(text)
    assert checked["reason"].to_list() == [None] * 4
    assert checked.select("pay_date", "user_id", "value_prop").unique().rows() == [
        (date(2020, 11, 1), 35994, "point")
    ]
    assert [str(t) for t in checked["total"]] == ["7.04"] * 4
    assert [json.loads(r) for r in checked[RESCUED]] == [
        {"channel": "web"},
        {"channel": "app, ios"},
        {"channel": ""},
        {"channel": "spaced"},
    ]
    assert checked["new_fields"].to_list() == [["channel"]] * 4


def test_pays_extra_columns_keep_rfc4180_quoting_and_a_short_row_is_quarantined() -> None:
    text = (
        "note,total,pay_date,user_id,value_prop,ref\n"
        '"say ""hi""",7.04,2020-11-01,1,"send,money",9\n'
        "plain,1,2020-11-01,2,point\n"
    )
    checked = _pays(text)
    assert checked["reason"].to_list() == [None, "expected 6 comma-separated fields, got 5"]
    row = checked.row(0, named=True)
    assert row["value_prop"] == "send,money"
    assert json.loads(row[RESCUED]) == {"note": 'say "hi"', "ref": "9"}


def test_a_pays_header_missing_a_contract_column_quarantines_every_line_with_the_reason() -> None:
    checked = _pays("pay_date,user_id,value_prop,channel\n2020-11-01,1,point,web\n")
    assert checked.height == 2
    reason = (
        "file header is not pay_date,total,user_id,value_prop "
        "(got 'pay_date,user_id,value_prop,channel'): missing column(s) total"
    )
    assert checked["reason"].to_list() == [reason, reason]
    assert checked["missing_fields"].to_list() == [["total"], ["total"]]


def test_a_pays_header_naming_a_column_twice_is_wrong() -> None:
    checked = _pays("pay_date,total,user_id,value_prop,total\n2020-11-01,1,1,point,2\n")
    assert all(r.startswith("file header names column(s) total more than once") for r in checked["reason"])


# -- the stage ----------------------------------------------------------------------------------
def _land_drifted(lake: LocalLake) -> None:
    prints = [
        json.dumps(
            {
                "day": str(ND),
                "device": "ios",
                "event_data": {"position": 1, "value_prop": "point", "campaign": "c1"},
                "user_id": 1,
            }
        ),
        json.dumps(
            {
                "day": str(ND + timedelta(days=7)),
                "event_data": {"position": 0, "value_prop": "point"},
                "user_id": 1,
                "device": "android",
            }
        ),
        json.dumps({"day": str(ND), "event_data": {"position": 0, "value_prop": "point"}, "user_id": 2}),
    ]
    lake.write_text("prints/a.json", "\n".join(prints) + "\n")
    lake.land_events("taps", [(ND, 1, "point", 1)], "a.json")
    lake.write_text(
        "pays/a.csv",
        "pay_date,total,channel,user_id,value_prop\n"
        f"{ND + timedelta(days=1)},10.50,web,1,point\n"
        f"{ND + timedelta(days=8)},0.01,app,1,point\n",
    )


def _land_plain(lake: LocalLake) -> None:
    lake.land_events(
        "prints",
        [(ND, 1, "point", 1), (ND + timedelta(days=7), 1, "point", 0), (ND, 2, "point", 0)],
        "a.json",
    )
    lake.land_events("taps", [(ND, 1, "point", 1)], "a.json")
    lake.land_pays(
        [(ND + timedelta(days=1), "10.50", 1, "point"), (ND + timedelta(days=8), "0.01", 1, "point")], "a.csv"
    )


def test_drift_is_in_the_manifest_the_stage_result_and_the_summary(lake: LocalLake) -> None:
    _land_drifted(lake)
    results = lake.run()
    manifest = {r["source"]: r for r in lake.table("bronze", "_manifest").iter_rows(named=True)}
    assert json.loads(manifest["prints"]["drift"]) == {"new_fields": {"device": 2, "event_data.campaign": 1}}
    assert json.loads(manifest["pays"]["drift"]) == {"new_fields": {"channel": 2}}
    assert manifest["taps"]["drift"] is None
    assert manifest["prints"]["quarantined_rows"] == 0
    bronze = results["bronze"]
    assert bronze.drift == {
        "pays": {"new_fields": {"channel": 2}},
        "prints": {"new_fields": {"device": 2, "event_data.campaign": 1}},
    }
    assert bronze.as_dict()["drift"] == bronze.drift
    assert drift_lines([bronze]) == [
        "schema drift in pays: new fields channel (2 lines) rescued in bronze.pays._rescued",
        "schema drift in prints: new fields device (2 lines), event_data.campaign (1 line) "
        "rescued in bronze.prints._rescued",
    ]
    prints = lake.table("bronze", "prints").sort("line_number")
    assert [json.loads(r) if r else None for r in prints[RESCUED]] == [
        {"device": "ios", "event_data": {"campaign": "c1"}},
        {"device": "android"},
        None,
    ]
    assert lake.table("bronze", "pays").sort("line_number")[RESCUED].to_list() == [
        '{"channel":"web"}',
        '{"channel":"app"}',
    ]


def test_a_run_without_drift_reports_none(lake: LocalLake) -> None:
    _land_plain(lake)
    results = lake.run()
    assert results["bronze"].drift == {}
    assert drift_lines(list(results.values())) == []
    assert lake.table("bronze", "_manifest")["drift"].to_list() == [None] * 3


def test_silver_and_gold_are_identical_with_and_without_extra_fields(tmp_path: Path) -> None:
    plain, drifted = LocalLake(tmp_path / "plain"), LocalLake(tmp_path / "drifted")
    _land_plain(plain)
    _land_drifted(drifted)
    plain.run()
    drifted.run()
    for source in ("prints", "taps", "pays"):
        a, b = (lk.table("silver", source).drop("run_id") for lk in (plain, drifted))
        assert RESCUED not in b.columns
        assert_frame_equal(a.sort(a.columns), b.sort(b.columns))
    gold = [lk.table("gold", "print_features") for lk in (plain, drifted)]
    assert_frame_equal(*(g.sort(g.columns) for g in gold))


def test_conform_to_silver_drops_rescued() -> None:
    row = {
        "day": ND,
        "user_id": 1,
        "value_prop": "p",
        "position": 0,
        "source_file": "f",
        "line_number": 1,
        "run_id": "r",
        "ingested_at": None,
        RESCUED: '{"a":1}',
    }
    frame = pl.DataFrame([row], schema=BRONZE["prints"])
    assert conform(frame.lazy(), SILVER["prints"]).collect().columns == list(SILVER["prints"])


def test_a_lake_written_before_rescued_existed_takes_a_new_run(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _land_plain(lake)
    with monkeypatch.context() as old:  # the contract before _rescued, everywhere it is read
        for source, schema in BRONZE.items():
            old.setitem(BRONZE, source, pl.Schema({n: t for n, t in schema.items() if n != RESCUED}))
        old.setattr(read, "WORK_COLUMNS", (*read.WORK_COLUMNS, RESCUED))
        lake.run()
    assert RESCUED not in lake.table("bronze", "prints").columns
    # a new file with extra keys (append) and a corrected pays file with a new column
    # (predicate overwrite), both merging the schema
    lake.write_text(
        "prints/b.json",
        json.dumps(
            {
                "day": str(ND + timedelta(days=1)),
                "event_data": {"position": 3, "value_prop": "point"},
                "user_id": 3,
                "device": "ios",
            }
        )
        + "\n",
    )
    lake.write_text(
        "pays/a.csv",
        "pay_date,total,user_id,value_prop,channel\n"
        f"{ND + timedelta(days=1)},10.50,1,point,web\n"
        f"{ND + timedelta(days=8)},0.02,1,point,web\n",
    )
    results = lake.run()
    assert results["bronze"].files == 2
    prints = lake.table("bronze", "prints").sort("source_file", "line_number")
    assert prints[RESCUED].to_list() == [None, None, None, '{"device":"ios"}']
    pays = lake.table("bronze", "pays").sort("line_number")
    assert pays[RESCUED].to_list() == ['{"channel":"web"}'] * 2
    assert [str(t) for t in lake.table("silver", "pays").sort("day")["total"]] == ["10.50", "0.02"]
    assert lake.table("silver", "prints").height == 4
    assert json.loads(
        lake.table("bronze", "_manifest")
        .filter(pl.col("path") == "pays/a.csv")
        .sort("ingested_at")["drift"][-1]
    ) == {"new_fields": {"channel": 2}}
