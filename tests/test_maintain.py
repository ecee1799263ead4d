"""Table maintenance (jobs/maintain.py) on real Delta tables: compaction, vacuum, checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from jobs.errors import ConfigError
from jobs.maintain import maintain
from jobs.run import RunContext
from jobs.tables.commits import MAINTENANCE_OPERATIONS
from tests.conftest import TABLES, LocalLake

REPO = Path(__file__).resolve().parents[1]
ND = date(2020, 11, 2)  # a Monday
ALL_TABLES = (*TABLES, "gold/_quality_results")
MAINTAINED = (*ALL_TABLES, "bronze/_quality_samples")  # written only when a check has samples
OVERRIDES = {"gold_buckets": 2}  # two files per gold week: something for compaction to merge


def _events(day: date, users: range) -> list[tuple[Any, ...]]:
    return [(day, u, "point" if u % 2 else "link_cobro", u % 3) for u in users]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake after three runs: appends to bronze and quarantine, a silver day rewritten, gold
    weeks rebuilt."""
    lake = LocalLake(tmp_path_factory.mktemp("maintain") / "lake")
    landings = [
        (ND, ND + timedelta(days=1)),
        (ND + timedelta(days=1), ND + timedelta(days=7)),
        (ND + timedelta(days=8), ND + timedelta(days=9)),
    ]
    for run, run_days in enumerate(landings):
        name = f"r{run}"
        path = lake.land_events(
            "prints", [e for d in run_days for e in _events(d, range(1, 9))], f"{name}.json"
        )
        path.write_text(path.read_text() + "not json\n")  # one line for quarantine per run
        lake.land_events("taps", [e for d in run_days for e in _events(d, range(1, 9, 3))], f"{name}.json")
        lake.land_pays([(d, "1.25", u, "point") for d in run_days for u in (1, 2, 5)], f"{name}.csv")
        lake.run(**OVERRIDES)
    return lake.root


@pytest.fixture
def copied(built: Path, tmp_path: Path) -> LocalLake:
    """A private copy of the built lake (modification times kept: raw files stay ingested)."""
    shutil.copytree(built, tmp_path / "lake", copy_function=shutil.copy2)
    return LocalLake(tmp_path / "lake")


def contents(lake: LocalLake, version: dict[str, int | None] | None = None) -> dict[str, Any]:
    """Every table's rows in a canonical order (at ``version`` per table, default current)."""
    out = {}
    for t in ALL_TABLES:
        layer, name = t.split("/")
        at = None if version is None else version[t]
        frame = pl.read_delta(str(lake.root / layer / name), version=at)
        out[t] = sorted_rows(frame)
    return out


def sorted_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)


def versions(lake: LocalLake) -> dict[str, int | None]:
    return {t: lake.version(*t.split("/")) for t in ALL_TABLES}


def stored_files(lake: LocalLake) -> int:
    """Parquet files in storage under the tables' folders (their logs excluded)."""
    return sum(
        1 for t in ALL_TABLES for p in (lake.root / t).rglob("*.parquet") if "_delta_log" not in p.parts
    )


def live_files(lake: LocalLake) -> int:
    ctx = lake.context()
    return sum(ctx.lake.open(str(lake.root / t)).get_add_actions().num_rows for t in ALL_TABLES)


def after_retention(lake: LocalLake) -> RunContext:
    """A context whose retention has passed for everything written so far (0 h). The settings
    refuse that (test_retention_below_the_minimum...), so it is built without validation, only
    to see what maintenance does once the real retention has gone by."""
    return RunContext(lake.settings().model_copy(update={"maintain_retention_hours": 0}))


def cli(*args: str, lake: LocalLake, **env: str) -> subprocess.CompletedProcess[str]:
    paths = {f"LAKE_{layer.upper()}": str(lake.root / layer) for layer in ("raw", "bronze", "silver", "gold")}
    full_env = {**os.environ, "LAKEHOUSE_ENV_FILE": "", **paths, **env}
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        cwd=REPO,
    )


def plain_parquet_rows(folder: Path) -> int:
    """Rows a reader that ignores the Delta log sees: every Parquet file in the folder."""
    return sum(
        pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts
    )


# -- tests -------------------------------------------------------------------------------------
def test_a_lake_after_several_runs_has_fewer_files_after_maintain_and_identical_contents(
    copied: LocalLake,
) -> None:
    before_versions, before = versions(copied), contents(copied)
    live_before, stored_before = live_files(copied), stored_files(copied)
    gold = copied.root / "gold" / "print_features"
    assert plain_parquet_rows(gold) > before["gold/print_features"].height  # the problem today

    result = maintain(copied.context())

    assert live_files(copied) < live_before  # readers open fewer files at once
    assert {t.table for t in result.tables} == set(MAINTAINED)
    for table, frame in contents(copied).items():
        assert_frame_equal(frame, before[table])
    # within the retention, every older version is still readable (time travel)
    for table, frame in contents(copied, before_versions).items():
        assert_frame_equal(frame, before[table])

    # once the retention has passed, superseded files leave storage too
    later = maintain(after_retention(copied))
    assert stored_files(copied) < stored_before
    assert later.totals()["vacuumed_files"] > 0 and later.totals()["vacuumed_bytes"] > 0
    for table, frame in contents(copied).items():
        assert_frame_equal(frame, before[table])
    assert plain_parquet_rows(gold) == before["gold/print_features"].height


def test_an_orphan_parquet_older_than_the_retention_is_removed_and_a_fresh_one_kept(
    copied: LocalLake,
) -> None:
    gold = copied.root / "gold" / "print_features"
    week = sorted(gold.glob("week_start=*"))[0]
    old = week / "part-20201101T000000Z-deadbeef-b00000-0123abcd.parquet"  # a killed gold run
    fresh = week / "part-20201101T000000Z-cafebabe-b00001-4567ef01.parquet"  # one still writing
    for path in (old, fresh):
        pl.DataFrame({"user_id": [1]}).write_parquet(path)
    hours = copied.settings().maintain_retention_hours
    stale = time.time() - (hours + 1) * 3600
    os.utime(old, (stale, stale))
    size = old.stat().st_size
    rows = sorted_rows(copied.table("gold", "print_features"))

    result = maintain(copied.context())

    assert not old.exists()
    assert fresh.exists()
    gold_result = next(t for t in result.tables if t.table == "gold/print_features")
    assert gold_result.vacuumed_files == 1
    assert gold_result.vacuumed_bytes == size
    assert_frame_equal(sorted_rows(copied.table("gold", "print_features")), rows)


def test_maintain_while_another_process_holds_the_lease_exits_5_naming_the_holder(
    copied: LocalLake,
) -> None:
    from jobs.lease import Owner, acquire

    ctx = copied.context()
    before = versions(copied)
    with acquire(ctx.storage, owner=Owner.this_process("pipeline-run-holding"), wait=0):
        proc = cli("maintain", lake=copied, MAINTAIN_LEASE_WAIT_SECONDS="0.5")
    assert proc.returncode == 5, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "pipeline-run-holding" in line
    assert versions(copied) == before  # nothing committed


def test_maintain_waits_for_a_run_holding_the_lease_instead_of_failing(copied: LocalLake) -> None:
    """The maintenance DAG's first run meeting a pipeline tick: it waits, then maintains."""
    import threading

    from jobs.lease import Owner, acquire

    ctx = copied.context()
    held, release = threading.Event(), threading.Event()

    def pipeline_run() -> None:
        with acquire(ctx.storage, owner=Owner.this_process("pipeline-tick"), wait=0):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=pipeline_run)
    holder.start()
    assert held.wait(10)
    timer = threading.Timer(2.0, release.set)
    timer.start()
    try:
        proc = cli("maintain", "--format", "json", lake=copied)  # MAINTAIN_LEASE_WAIT_SECONDS: 1800
    finally:
        release.set()
        holder.join()
    assert proc.returncode == 0, proc.stderr
    assert "waiting for the lake lease" in proc.stderr and "pipeline-tick" in proc.stderr
    assert json.loads(proc.stdout)["tables"]


def test_run_then_maintain_then_run_writes_no_new_table_version(
    copied: LocalLake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobs.orchestration import detect

    maintain(copied.context())
    maintain(after_retention(copied))  # superseded silver/gold files go: VACUUM commits as well
    ctx = copied.context()
    for layer in ("bronze/prints", "silver/prints", "gold/print_features"):
        ops = {c.get("operation") for c in ctx.lake.history(str(copied.root / layer))}
        assert ops & set(MAINTENANCE_OPERATIONS), f"{layer} got no maintenance commit"
    maintained = versions(copied)

    for layer in ("raw", "bronze", "silver", "gold"):
        monkeypatch.setenv(f"LAKE_{layer.upper()}", str(copied.root / layer))
    monkeypatch.setenv("RAW_SETTLE_SECONDS", "0")
    monkeypatch.setenv("GOLD_BUCKETS", "2")
    assert detect().reasons == []  # the orchestrator sees nothing new either
    results = copied.run(**OVERRIDES)

    assert versions(copied) == maintained
    assert all(r.skipped for r in results.values())


def test_retention_below_the_minimum_is_refused_with_one_clear_line(copied: LocalLake) -> None:
    with pytest.raises(ConfigError, match=r"MAINTAIN_RETENTION_HOURS=0: .*at least 1 hour"):
        copied.settings(maintain_retention_hours=0)
    assert copied.settings(maintain_retention_hours=1).maintain_retention_hours == 1
    before = versions(copied)
    proc = cli("maintain", lake=copied, MAINTAIN_RETENTION_HOURS="0")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "MAINTAIN_RETENTION_HOURS" in lines[0], proc.stderr
    assert versions(copied) == before


def test_format_json_reports_files_bytes_and_seconds_per_table(copied: LocalLake) -> None:
    proc = cli("maintain", "--format", "json", lake=copied)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["stage"] == "maintain" and report["retention_hours"] == 168
    tables = {t["table"]: t for t in report["tables"]}
    assert set(tables) == set(MAINTAINED)
    prints = tables["bronze/prints"]
    assert prints["live_files_before"] == 3 and prints["live_files_after"] == 1
    for key in (
        "stored_files_before",
        "stored_files_after",
        "vacuumed_files",
        "vacuumed_bytes",
        "stored_bytes_before",
        "seconds",
        "version_before",
        "version_after",
    ):
        assert key in prints
    assert report["totals"]["live_files_after"] < report["totals"]["live_files_before"]

    table = cli("maintain", lake=copied)  # the same, as a table for people
    assert table.returncode == 0, table.stderr
    assert "gold/_quality_results" in table.stdout and "stored files" in table.stdout


def test_the_orchestrator_call_returns_a_json_able_summary(
    copied: LocalLake,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobs.orchestration import RunIdentity, maintain_task

    for layer in ("raw", "bronze", "silver", "gold"):
        monkeypatch.setenv(f"LAKE_{layer.upper()}", str(copied.root / layer))
    summary = maintain_task(RunIdentity(orchestrator_run_id="scheduled__2020-11-20"))
    assert json.loads(json.dumps(summary)) == summary
    assert summary["totals"]["compacted_files_removed"] > 0


def test_zorder_gold_setting_rewrites_weeks_with_several_files_by_user_id(
    copied: LocalLake,
) -> None:
    rows = sorted_rows(copied.table("gold", "print_features"))
    result = maintain(RunContext(copied.settings(maintain_zorder_gold=True)))

    gold = next(t for t in result.tables if t.table == "gold/print_features")
    assert gold.zordered and gold.live_files_after < gold.live_files_before
    assert_frame_equal(sorted_rows(copied.table("gold", "print_features")), rows)
    table = copied.context().lake.open(str(copied.root / "gold" / "print_features"))
    weeks = pl.DataFrame(table.get_add_actions(flatten=True))["partition.week_start"]
    assert weeks.is_unique().all()  # one file per week now
