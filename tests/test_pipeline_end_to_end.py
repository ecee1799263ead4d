"""The whole local pipeline on real Delta tables: accounting, idempotence, incremental weeks."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.errors import DataError
from tests.conftest import LocalLake
from tests.reference import canonical, reference_gold

ND = date(2020, 11, 2)  # a Monday


def land_small(lake: LocalLake) -> None:
    lake.land_events(
        "prints",
        [
            (ND, 1, "point", 0),
            (ND + timedelta(days=7), 1, "point", 1),
            (ND + timedelta(days=8), 2, "link_cobro", 0),
        ],
        "a.json",
    )
    lake.land_events("taps", [(ND, 1, "point", 0)], "a.json")
    lake.land_pays(
        [(ND + timedelta(days=1), "10.50", 1, "point"), (ND + timedelta(days=2), "0.01", 1, "point")], "a.csv"
    )


def silver_as_reference_input(lake: LocalLake) -> tuple[pl.DataFrame, ...]:
    return tuple(lake.table("silver", s) for s in ("prints", "taps", "pays"))


def test_run_builds_every_layer_and_gold_matches_reference(lake: LocalLake) -> None:
    land_small(lake)
    results = lake.run()
    assert results["bronze"].files == 3
    gold = lake.table("gold", "print_features")
    prints, taps, pays = silver_as_reference_input(lake)
    expected = reference_gold(prints, taps, pays, mode="calendar", n_weeks=3)
    assert_frame_equal(canonical(gold), canonical(expected))
    row = gold.filter(pl.col("day") == ND + timedelta(days=7)).row(0, named=True)
    assert (row["prior_views"], row["prior_clicks"], row["prior_payments"]) == (1, 1, 2)
    assert str(row["prior_amount"]) == "10.51"


def test_second_run_writes_no_table_version_and_gold_is_identical(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    before, gold_before = lake.versions(), lake.table("gold", "print_features")
    results = lake.run()
    assert lake.versions() == before
    assert all(r.skipped for r in results.values())
    assert_frame_equal(lake.table("gold", "print_features"), gold_before)


def test_every_raw_file_is_ingested_exactly_once(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    lake.land_events("prints", [(ND + timedelta(days=14), 3, "point", 0)], "b.json")
    lake.run()
    manifest = lake.table("bronze", "_manifest")
    assert sorted(manifest["path"].to_list()) == [
        "pays/a.csv",
        "prints/a.json",
        "prints/b.json",
        "taps/a.json",
    ]
    assert lake.table("bronze", "prints").height == 4


def test_a_corrected_raw_file_replaces_its_rows_in_every_layer(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    lake.land_events("prints", [(ND, 1, "point", 0)] * 5, "a.json")  # rewritten in place
    results = lake.run()
    assert "1 corrected file(s) replaced" in results["bronze"].note
    prints = lake.table("bronze", "prints")
    assert prints.height == 5 and prints["source_file"].unique().to_list() == ["prints/a.json"]
    assert lake.table("silver", "prints").height == 5
    assert lake.table("gold", "print_features").height == 5
    history = lake.table("bronze", "_manifest").filter(pl.col("path") == "prints/a.json")
    assert history.height == 2 and history["replaces"].null_count() == 1


def test_a_corrected_file_is_skipped_or_fails_when_raw_on_change_says_so(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    lake.land_events("prints", [(ND, 1, "point", 0)] * 5, "a.json")
    skipped = lake.run(raw_on_change="skip")
    assert "1 changed file(s) skipped" in skipped["bronze"].note
    assert lake.table("bronze", "prints").height == 3
    with pytest.raises(DataError, match=r"prints/a.json changed after it was ingested"):
        lake.run(raw_on_change="fail")
    assert lake.table("bronze", "prints").height == 3


def test_adding_one_day_replaces_only_the_affected_week_partitions(lake: LocalLake) -> None:
    start = date(2020, 10, 5)  # a Monday; 8 weeks of prints
    rows = [(start + timedelta(days=i), 1 + i % 5, "point", i % 4) for i in range(56)]
    lake.land_events("prints", rows, "history.json")
    lake.land_events("taps", rows[::3], "history.json")
    lake.land_pays(
        [(start + timedelta(days=i), "1.25", 1 + i % 5, "point") for i in range(56)], "history.csv"
    )
    lake.run()
    table_uri = str(lake.root / "gold" / "print_features")
    from deltalake import DeltaTable

    def files_by_week() -> dict[str, set[str]]:
        actions = pl.DataFrame(DeltaTable(table_uri).get_add_actions(flatten=True))
        return {str(w): set(g["path"]) for (w,), g in actions.group_by("partition.week_start")}

    before = files_by_week()
    new_day = start + timedelta(days=24)  # Thursday of the 4th week
    lake.land_pays([(new_day, "99.99", 2, "point")], "late.csv")
    lake.run()
    after = files_by_week()
    week = new_day - timedelta(days=new_day.weekday())
    affected = {str(week + timedelta(weeks=k)) for k in range(4)}
    changed = {w for w in after if after[w] != before.get(w)}
    assert changed == affected
    commit = DeltaTable(table_uri).history(1)[0]
    assert commit["weeks"].split(",") == sorted(affected)
    assert json.loads(commit["silver_versions"])["pays"] == 1
    prints, taps, pays = silver_as_reference_input(lake)
    expected = reference_gold(prints, taps, pays, mode="calendar", n_weeks=3)
    assert_frame_equal(canonical(lake.table("gold", "print_features")), canonical(expected))


def test_changing_the_lookback_settings_rebuilds_gold_with_them(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    results = lake.run(lookback_mode="rolling", lookback_weeks=2)
    assert "lookback settings changed" in results["gold"].note
    prints, taps, pays = silver_as_reference_input(lake)
    expected = reference_gold(prints, taps, pays, mode="rolling", n_weeks=2)
    assert_frame_equal(canonical(lake.table("gold", "print_features")), canonical(expected))
    from deltalake import DeltaTable

    commit = DeltaTable(str(lake.root / "gold" / "print_features")).history(1)[0]
    assert (commit["lookback_mode"], commit["lookback_weeks"]) == ("rolling", "2")


def test_bad_lines_are_quarantined_and_every_line_is_accounted_for(lake: LocalLake) -> None:
    land_small(lake)
    lake.write_text(
        "prints/bad.json",
        '{"day": "2020-02-30"}\nnot json\n\n'
        '{"day": "2020-11-03", "event_data": {"position": 0, "value_prop": "point"},'
        ' "user_id": 4}\n',
    )
    lake.write_text("pays/bad.csv", "pay_date,total,user_id,value_prop\n2020-11-03,1.001,1,p\n")
    lake.write_text("pays/not_csv.csv", '{"day": "2020-11-01"}\n{"day": "2020-11-02"}\n')
    results = lake.run()
    manifest = lake.table("bronze", "_manifest")
    assert (manifest["lines"] == manifest["bronze_rows"] + manifest["quarantined_rows"]).all()
    quarantine = lake.table("bronze", "quarantine")
    bronze_by_file = pl.concat(
        [lake.table("bronze", s).select("source_file") for s in ("prints", "taps", "pays")]
    )
    for row in manifest.iter_rows(named=True):
        assert row["bronze_rows"] == bronze_by_file.filter(pl.col("source_file") == row["path"]).height
        assert row["quarantined_rows"] == quarantine.filter(pl.col("source_file") == row["path"]).height
    assert results["bronze"].quarantined == 3 + 1 + 2
    assert set(quarantine.filter(pl.col("source_file") == "pays/not_csv.csv")["line_number"]) == {1, 2}
    prints, taps, pays = silver_as_reference_input(lake)
    assert prints.height == 4
    expected = reference_gold(prints, taps, pays, mode="calendar", n_weeks=3)
    assert_frame_equal(canonical(lake.table("gold", "print_features")), canonical(expected))


def test_interrupted_bronze_run_is_rolled_back_before_reingesting(lake: LocalLake) -> None:
    land_small(lake)
    lake.commit_orphan_bronze_run()  # crashed before quarantine + manifest
    lake.run()
    assert lake.table("bronze", "prints").height == 3
    assert lake.table("silver", "prints").height == 3


def test_export_writes_the_latest_week_as_parquet_and_csv(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    export = lake.root / "gold" / "export"
    parquet = pl.read_parquet(export / "final.parquet")
    csv = pl.read_csv(export / "final.csv", try_parse_dates=True)
    latest = lake.table("gold", "print_features")["week_start"].max()
    assert parquet["week_start"].unique().to_list() == [latest]
    assert csv.height == parquet.height == 2
    assert json.loads((export / "_export.json").read_text())["week_start"] == str(latest)


def test_pending_files_counts_only_files_not_yet_ingested(lake: LocalLake) -> None:
    from jobs.bronze.selection import pending_files

    land_small(lake)
    assert pending_files(lake.context()) == {"prints": 1, "taps": 1, "pays": 1}
    lake.run()
    assert pending_files(lake.context()) == {"prints": 0, "taps": 0, "pays": 0}
    lake.land_events("taps", [(ND, 2, "point", 0)], "b.json")
    assert pending_files(lake.context()) == {"prints": 0, "taps": 1, "pays": 0}


def test_files_parsed_in_small_chunks_give_the_same_bronze_and_accounting(lake: LocalLake, tmp_path) -> None:
    from infra.generator import generate

    generate(out_dir=lake.raw, seed=1, scale=0.002, days=8, layout="single", bad_lines=12)
    other = LocalLake(tmp_path / "chunked")
    generate(out_dir=other.raw, seed=1, scale=0.002, days=8, layout="single", bad_lines=12)
    lake.run()
    other.run(bronze_chunk_bytes=4096)  # hundreds of chunks per file, header only in the first
    for name in ("prints", "taps", "pays", "quarantine"):
        cols = ["source_file", "line_number"]
        assert_frame_equal(
            lake.table("bronze", name).drop("run_id", "ingested_at").sort(cols),
            other.table("bronze", name).drop("run_id", "ingested_at").sort(cols),
        )
    keep = ["path", "checksum", "lines", "bronze_rows", "quarantined_rows"]
    assert_frame_equal(
        lake.table("bronze", "_manifest").select(keep).sort("path"),
        other.table("bronze", "_manifest").select(keep).sort("path"),
    )
