"""Quality gates in the real pipeline: real Delta tables, real Great Expectations, tiny data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from jobs.cli import main
from jobs.errors import DataError
from jobs.pipeline import run_all, run_stage
from jobs.quality.report import summary_lines
from jobs.schemas import SILVER
from tests.conftest import LocalLake

pytestmark = pytest.mark.usefixtures("restore_logging")

ND = date(2020, 11, 2)  # a Monday
GOLD = "print_features"


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


def history(lake: LocalLake) -> pl.DataFrame:
    return lake.table("gold", "_quality_results").sort("recorded_at", maintain_order=True)


def gold_files(lake: LocalLake) -> dict[str, str]:
    """Every file of the gold table directory (data and log) → sha256: the bytes readers see."""
    root = lake.root / "gold" / GOLD
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def use_lake_env(lake: LocalLake, monkeypatch: pytest.MonkeyPatch) -> None:
    for layer in ("raw", "bronze", "silver", "gold"):
        monkeypatch.setenv(f"LAKE_{layer.upper()}", str(lake.root / layer))


def append_crafted_silver_pays(lake: LocalLake, rows: list[tuple[date, str, int, str]]) -> None:
    """Make silver inconsistent the way a bad upstream fix would: rows appended behind the
    pipeline's back (with the day metadata the gold planner reads)."""
    ctx = lake.context()
    frame = pl.DataFrame(
        {
            "day": [r[0] for r in rows],
            "user_id": [r[2] for r in rows],
            "value_prop": [r[3] for r in rows],
            "total": [Decimal(r[1]) for r in rows],
            "run_id": ["crafted"] * len(rows),
        },
        schema=SILVER["pays"],
    )
    days = ",".join(sorted({r[0].isoformat() for r in rows}))
    ctx.lake.write(
        ctx.silver("pays"),
        frame,
        schema=SILVER["pays"],
        partition_by="day",
        metadata={"run_id": "crafted", "days": days},
    )


# -- bronze -------------------------------------------------------------------------------------
def test_injected_bad_lines_are_quarantined_and_every_file_reconciles(lake: LocalLake) -> None:
    made = generate(out_dir=lake.raw, seed=3, scale=0.005, days=2, bad_lines=4)
    results = lake.run()
    assert results["bronze"].quarantined == sum(made.bad(s) for s in ("prints", "taps", "pays"))
    rec = history(lake).filter(pl.col("expectation") == "raw_lines_reconcile")
    assert rec["success"].all() and rec.height == 3
    for source in ("prints", "taps", "pays"):
        observed = rec.filter(pl.col("table_name") == source)["observed_value"].item()
        good = made.total(source) - made.bad(source)
        assert observed.startswith(
            f"{made.total(source):,} lines = {good:,} bronze + "
            f"{made.bad(source):,} quarantined over 2 file(s)"
        )
    quarantine = lake.table("bronze", "quarantine")
    assert quarantine.height == results["bronze"].quarantined
    assert any(line.startswith("  reconciled prints:") for line in summary_lines(results.values()))


def test_a_file_beyond_the_quarantine_threshold_is_rejected_on_its_own_and_the_rest_goes_on(
    lake: LocalLake,
) -> None:
    generate(out_dir=lake.raw, seed=3, scale=0.01, days=2, bad_fraction=0.2)
    (lake.raw / "prints" / "day=2020-11-02" / "part-0.json").unlink()
    land_small(lake)  # clean files next to the bad ones
    results = lake.run()
    rejected = sorted(results["bronze"].rejected)
    assert rejected == [
        "pays/day=2020-11-01/part-0.csv",
        "pays/day=2020-11-02/part-0.csv",
        "prints/day=2020-11-01/part-0.json",
    ]
    manifest = lake.table("bronze", "_manifest")
    marked = manifest.filter(pl.col("status") == "rejected")
    assert sorted(marked["path"].to_list()) == rejected
    assert all("over QUALITY_MAX_QUARANTINE_FRACTION=5.0%" in r for r in marked["reason"].to_list())
    assert marked["bronze_rows"].sum() == 0
    quarantine = lake.table("bronze", "quarantine")
    for row in marked.iter_rows(named=True):  # every line of a rejected file, exactly once
        lines = quarantine.filter(pl.col("source_file") == row["path"])
        assert lines.height == row["lines"] == row["quarantined_rows"]
        assert lines["line_number"].n_unique() == lines.height
        assert lines["reason"].str.contains("file rejected: ").sum() > 0
    bronze_files = set(lake.table("bronze", "prints")["source_file"].unique().to_list())
    assert bronze_files == {"prints/a.json"}  # the clean file went on
    assert results["gold"].rows_out == 3
    warned = history(lake).filter(pl.col("expectation") == "quarantined_fraction_per_file")
    assert set(warned["outcome"].to_list()) == {"warning"}
    again = lake.run()  # a rejected file is not retried until it changes
    assert again["bronze"].skipped and again["bronze"].rejected == []


def test_a_failure_on_a_later_source_rolls_back_the_rows_already_committed(lake: LocalLake) -> None:
    land_small(lake)
    lake.write_text("taps/b.json", "not json\n")  # a small taps file, fully quarantined
    blocking = {"quality_severity": "quarantined_fraction_per_small_file=failure"}
    with pytest.raises(DataError, match=r"bronze quality gate failed on taps.*prints rows rolled back"):
        lake.run(**blocking)
    assert lake.table("bronze", "prints").height == 0  # committed, then rolled back
    assert lake.version("bronze", "_manifest") is None
    assert lake.version("silver", "prints") is None
    (lake.raw / "taps" / "b.json").unlink()  # the fix: remove the broken file
    lake.run(**blocking)
    assert lake.table("bronze", "prints").height == 3
    assert lake.table("silver", "prints").height == 3


def test_small_files_over_the_threshold_only_warn(lake: LocalLake) -> None:
    land_small(lake)
    lake.write_text("prints/bad.json", "not json\n")
    results = lake.run()
    assert results["gold"].rows_out == 3
    warned = history(lake).filter(pl.col("outcome") == "warning")
    assert warned["expectation"].to_list() == ["quarantined_fraction_per_small_file"]


# -- silver -------------------------------------------------------------------------------------
def test_rows_dated_after_the_run_date_are_quarantined_in_bronze_and_silver_moves_on(lake: LocalLake) -> None:
    land_small(lake)
    lake.land_events("prints", [(date(2099, 1, 5), 7, "point", 0)], "future.json")
    results = lake.run()  # before: the silver gate failed on this row on every run
    assert lake.table("silver", "prints").height == 3
    assert results["gold"].rows_out == 3
    quarantined = lake.table("bronze", "quarantine")
    assert quarantined.select("source_file", "line_number").rows() == [("prints/future.json", 1)]
    assert quarantined["reason"].item().startswith("day is after ")


def test_silver_blocks_rows_dated_after_its_window_unless_made_a_warning(lake: LocalLake) -> None:
    # Bronze rows of a run that allowed 30 days ahead; silver allows the default 1 day only.
    land_small(lake)
    soon = lake.context().started_at.date() + timedelta(days=5)
    lake.land_events("prints", [(soon, 7, "point", 0)], "future.json")
    run_stage(lake.context(quality_max_future_days=30), "bronze")
    with pytest.raises(DataError) as failure:
        run_stage(lake.context(), "silver")
    assert "silver.prints.day_not_after_run_date" in str(failure.value)
    assert str(soon) in str(failure.value)
    assert lake.version("silver", "prints") is None
    assert list((lake.root / "silver").rglob("*.parquet")) == []  # the days written are removed
    results = lake.run(quality_severity={"day_not_after_run_date": "warning"})
    assert lake.table("silver", "prints").height == 4
    assert any(
        "day_not_after_run_date" in w for d in results["silver"].details for w in d["quality"]["warnings"]
    )


def test_silver_never_takes_bronze_rows_of_a_run_the_manifest_does_not_know(lake: LocalLake) -> None:
    land_small(lake)
    lake.commit_orphan_bronze_run()  # crashed before quarantine + manifest
    assert run_stage(lake.context(), "silver").skipped
    assert lake.version("silver", "prints") is None
    lake.run()  # bronze removes the orphan rows, takes the file in again; silver follows
    assert lake.table("bronze", "prints").height == 3
    assert lake.table("silver", "prints").height == 3


def test_unknown_value_prop_publishes_with_a_recorded_warning(lake: LocalLake) -> None:
    land_small(lake)
    lake.land_events("prints", [(ND + timedelta(days=9), 5, "brand_new_prop", 2)], "new.json")
    results = lake.run()
    gold = lake.table("gold", GOLD)
    assert gold.filter(pl.col("value_prop") == "brand_new_prop").height == 1
    warned = history(lake).filter(pl.col("outcome") == "warning")
    assert warned.select("suite", "expectation", "severity", "success").rows() == [
        ("silver.prints", "value_prop_in_known_set", "warning", False)
    ]
    assert "brand_new_prop" in warned["observed_value"].item()
    assert any(
        "warning silver.prints.value_prop_in_known_set" in line for line in summary_lines(results.values())
    )


def test_sample_rows_stay_beside_bronze_and_gold_holds_counts_and_names_only(lake: LocalLake) -> None:
    land_small(lake)
    lake.land_events("prints", [(ND + timedelta(days=9), 5, "brand_new_prop", 2)], "new.json")
    lake.run()
    assert history(lake)["unexpected_rows"].null_count() == history(lake).height
    samples = lake.table("bronze", "_quality_samples")
    [row] = samples.filter(pl.col("expectation") == "value_prop_in_known_set").rows(named=True)
    assert '"user_id": "5"' in row["unexpected_rows"] and "brand_new_prop" in row["unexpected_rows"]
    gold_files = [p for p in (lake.root / "gold").rglob("*") if p.is_file()]
    leaked = [
        p
        for p in gold_files
        if p.suffix in (".html", ".json", ".parquet")
        and (b'"user_id": "5"' in p.read_bytes() or b"&quot;user_id&quot;" in p.read_bytes())
    ]
    assert leaked == []
    full = (lake.root / "bronze" / "_quality_reports" / "latest.html").read_text()
    assert "&quot;user_id&quot;: &quot;5&quot;" in full


# -- gold: write-audit-publish ------------------------------------------------------------------
def test_gold_failure_keeps_the_published_version_byte_identical_and_the_cli_fails(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    land_small(lake)
    lake.run()
    version, files, content = lake.version("gold", GOLD), gold_files(lake), lake.table("gold", GOLD)
    append_crafted_silver_pays(lake, [(ND + timedelta(days=1), "-50.00", 1, "point")])
    use_lake_env(lake, monkeypatch)
    assert main(["gold"]) == DataError.exit_code
    err = capsys.readouterr().err
    assert "gold quality gate failed" in err and "nothing was published" in err
    assert f"stays at version {version}" in err
    assert "gold.print_features.prior_amount_non_negative" in err
    assert "-39.49" in err  # the observed value: 10.50 + 0.01 - 50.00
    assert lake.version("gold", GOLD) == version
    assert gold_files(lake) == files
    assert_frame_equal(lake.table("gold", GOLD), content)
    failed = history(lake).filter(pl.col("outcome") == "failed")
    assert failed.select("layer", "expectation").rows() == [("gold", "prior_amount_non_negative")]


def test_gold_failure_in_a_later_bucket_still_aborts_the_commit(lake: LocalLake) -> None:
    land_small(lake)
    lake.run(gold_buckets=2)
    version, files = lake.version("gold", GOLD), gold_files(lake)
    # user 1 is in bucket 1: bucket 0 (user 2) is already streaming into the writer.
    append_crafted_silver_pays(lake, [(ND + timedelta(days=1), "-50.00", 1, "point")])
    with pytest.raises(DataError, match="user bucket 2 of 2"):
        run_stage(lake.context(gold_buckets=2), "gold")
    assert lake.version("gold", GOLD) == version
    assert gold_files(lake) == files


# -- history, report, summary -------------------------------------------------------------------
def test_history_accumulates_across_runs_and_is_queryable_with_duckdb(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    land_small(lake)
    use_lake_env(lake, monkeypatch)
    assert main(["run"]) == 0
    first = capsys.readouterr().out
    assert "reconciled prints: 3 lines = 3 bronze + 0 quarantined" in first
    assert "reconciled print_features: 3 gold rows = 3 silver prints" in first
    assert "quality report: " in first
    lake.land_events("prints", [(ND + timedelta(days=14), 3, "point", 0)], "b.json")
    assert main(["run"]) == 0
    capsys.readouterr()
    sql = (
        "select run_id, count(distinct layer) as layers, count(*) as checks, "
        "bool_and(success) as ok from gold.quality_results group by run_id order by run_id"
    )
    assert main(["query", sql, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2
    assert [r["layers"] for r in rows] == [3, 3]
    assert all(r["ok"] for r in rows) and rows[0]["checks"] > rows[1]["checks"] > 0


def test_html_report_names_the_suites_and_the_reconciliation(lake: LocalLake) -> None:
    land_small(lake)
    results = lake.run()
    location = results["gold"].details[-1]["quality"]["report"]
    page = Path(location).read_text()
    for suite in (
        "bronze.prints",
        "bronze.taps",
        "bronze.pays",
        "silver.prints",
        "silver.taps",
        "silver.pays",
        "gold.print_features",
    ):
        assert f"Suite {suite}" in page
    assert "Reconciliation" in page and "rows_reconcile_with_silver_prints" in page
    assert Path(location).name == f"{history(lake)['run_id'][0]}.html"
    assert (Path(location).parent / "latest.html").read_text() == page


def imported_on_a_noop_run(lake: LocalLake, package: str) -> str:
    """``"<imported> <exit code>"`` of ``main(['run'])`` in a fresh process with only the lake's
    settings (no ``OPENLINEAGE_*``, ``HOME`` the lake): whether a module of ``package`` was imported."""
    script = (
        "import sys; from jobs.cli import main; code = main(['run']); "
        f"print(any(m.startswith({package!r}) for m in sys.modules), code)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    env |= {
        "LAKEHOUSE_ENV_FILE": "",
        "HOME": str(lake.root),
        **{f"LAKE_{layer.upper()}": str(lake.root / layer) for layer in ("raw", "bronze", "silver", "gold")},
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_noop_run_does_not_import_great_expectations(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    rows = history(lake).height
    assert imported_on_a_noop_run(lake, "great_expectations") == "False 0"
    assert history(lake).height == rows  # nothing validated, nothing recorded


def test_results_are_recorded_in_run_all_order_with_one_row_per_check(lake: LocalLake) -> None:
    land_small(lake)
    run_all(lake.context())
    h = history(lake)
    assert h.select(pl.struct("suite", "expectation").is_unique().all()).item()
    assert h["layer"].unique(maintain_order=True).to_list() == ["bronze", "silver", "gold"]
    assert (h["evaluated_rows"] >= 0).all() and h["run_id"].n_unique() == 1
