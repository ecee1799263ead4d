"""python -m jobs doctor on a real local lake damaged for real: the run says exit 8 (or doctor
catches what the run cannot see), doctor names the table and the problem, ``doctor --repair``
fixes it, and after ONE normal run the lake is exact again (tests/integrity/invariants).

The lake is built once by the real CLI in two runs (6 days, then 2 more), so every table has at
least two commits; each test damages a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from deltalake import CommitProperties, DeltaTable

from infra.generator import generate
from jobs.lease import Owner, acquire
from jobs.settings import load_settings
from jobs.storage import Storage
from tests.integrity.invariants import assert_exactly_once, cli, one_clean_error_line, table

DOCTOR_LINE = "run python -m jobs doctor"
FIRST_DAYS = 6


def _copy_days(source: Path, target: Path, days: list[str]) -> None:
    for folder in sorted(source.glob("*/day=*")):
        if folder.name.removeprefix("day=") in days:
            shutil.copytree(folder, target / folder.relative_to(source))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``plain/``: a lake of 8 days taken in by two runs (6 days, then 2); ``maintained/``: the
    same after ``python -m jobs maintain`` (checkpoints)."""
    generated = tmp_path_factory.mktemp("generated") / "raw"
    generate(out_dir=generated, seed=7, scale=0.01, start=date(2020, 11, 2), days=8, bad_lines=20)
    days = sorted({p.name.removeprefix("day=") for p in generated.glob("*/day=*")})
    base = tmp_path_factory.mktemp("built")
    plain, maintained = base / "plain", base / "maintained"
    _copy_days(generated, plain / "raw", days[:FIRST_DAYS])
    assert cli(plain, "run").returncode == 0
    _copy_days(generated, plain / "raw", days[FIRST_DAYS:])
    assert cli(plain, "run").returncode == 0
    shutil.copytree(plain, maintained)
    assert cli(maintained, "maintain").returncode == 0
    return base


@pytest.fixture
def lake(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built / "plain", tmp_path / "lake")
    return tmp_path / "lake"


@pytest.fixture
def maintained_lake(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built / "maintained", tmp_path / "lake")
    return tmp_path / "lake"


def latest_commit(lake: Path, table: str) -> Path:
    return sorted((lake / table / "_delta_log").glob("*.json"))[-1]


def remove_latest_commit(table: str) -> Callable[[Path], None]:
    def damage(lake: Path) -> None:
        latest_commit(lake, table).unlink()

    return damage


def truncate_latest_commit(table: str) -> Callable[[Path], None]:
    def damage(lake: Path) -> None:
        log = latest_commit(lake, table)
        payload = log.read_bytes()
        log.write_bytes(payload[: len(payload) // 2])

    return damage


def remove_a_data_file(table: str) -> Callable[[Path], None]:
    def damage(lake: Path) -> None:
        Path(sorted(DeltaTable(str(lake / table)).file_uris())[-1].removeprefix("file://")).unlink()

    return damage


def doctor(lake: Path, *args: str) -> tuple[int, str]:
    done = cli(lake, "doctor", *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def repaired_by_one_run(lake: Path) -> None:
    """doctor --repair, then ONE normal run: exact again, and doctor finds nothing."""
    code, out = doctor(lake, "--repair")
    assert code == 0, out
    rerun = cli(lake, "run")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_exactly_once(lake)
    code, out = doctor(lake)
    assert code == 0 and "every table is healthy" in out, out


def assert_run_fails_with_the_doctor_line(lake: Path, *args: str) -> str:
    run = cli(lake, "run", *args)
    assert run.returncode == 8, run.stderr[-3000:]
    line = one_clean_error_line(run.stderr)
    assert line.endswith(DOCTOR_LINE), line
    return line


@pytest.mark.parametrize("names", ["gold/print_features", "silver/taps", "bronze/prints"])
def test_a_half_written_log_file_fails_the_run_with_exit_8_and_doctor_repairs_it(
    lake: Path, names: str
) -> None:
    half = latest_commit(lake, names)
    truncate_latest_commit(names)(lake)
    line = assert_run_fails_with_the_doctor_line(lake)
    assert f"table {names} is damaged: commit file _delta_log/{half.name} cannot be parsed" in line, line
    code, out = doctor(lake)
    assert code == 8 and f"{names}: commit file(s) {int(half.stem)} cannot be parsed" in out, out
    repaired_by_one_run(lake)


def test_a_bronze_log_damaged_before_its_end_is_reported_for_a_restore_and_left_alone(lake: Path) -> None:
    first = lake / "bronze" / "prints" / "_delta_log" / f"{0:020d}.json"
    first.unlink()
    line = assert_run_fails_with_the_doctor_line(lake)
    assert "bronze/prints" in line and "first commits" in line, line
    for args in ((), ("--repair",)):
        code, out = doctor(lake, *args)
        assert code == 8, out
        assert "bronze/prints: commit(s) 0 missing from the log" in out, out
        assert "restore" in out and "from a backup" in out, out
    assert sorted(p.name for p in first.parent.iterdir()) == [f"{1:020d}.json"]  # nothing moved


def test_a_lost_latest_bronze_commit_is_not_silently_accepted_doctor_re_ingests_its_files(lake: Path) -> None:
    remove_latest_commit("bronze/prints")(lake)
    run = cli(lake, "run")  # the table opens at the version before, but the manifest recorded it
    assert run.returncode == 8, run.stderr[-3000:]
    assert one_clean_error_line(run.stderr).endswith("run python -m jobs doctor")
    code, out = doctor(lake)
    assert code == 8, out
    assert "bronze/prints: raw file prints/" in out and "of its" in out, out
    assert "silver/prints: silver prints was built from bronze prints version 1, which is gone" in out
    repaired_by_one_run(lake)


def test_rows_lost_with_their_raw_file_gone_too_are_reported_with_their_count_and_kept_reported(
    lake: Path,
) -> None:
    gone = "prints/day=2020-11-09/part-0.json"
    manifest = table(lake, "bronze", "_manifest").filter(pl.col("path") == gone)
    rows = manifest["bronze_rows"].to_list()[-1]
    remove_latest_commit("bronze/prints")(lake)
    (lake / "raw" / gone).unlink()
    for args in ((), ("--repair",)):
        code, out = doctor(lake, *args)
        assert code == 8, out
        assert f"the raw file is gone too: {rows:,} rows are lost unless it is restored" in out, out
    assert "prints/day=2020-11-08/part-0.json" not in cli(lake, "doctor").stdout  # taken in again
    assert cli(lake, "run").returncode == 0
    assert table(lake, "bronze", "prints").filter(pl.col("source_file") == gone).is_empty()


def test_a_lost_latest_silver_commit_is_found_through_gold_and_repaired(lake: Path) -> None:
    remove_latest_commit("silver/prints")(lake)
    code, out = doctor(lake)
    assert code == 8, out
    assert "gold/print_features: gold print_features was built from silver prints version 1" in out, out
    repaired_by_one_run(lake)


def test_a_lost_latest_gold_commit_is_found_through_the_export_and_repaired(lake: Path) -> None:
    remove_latest_commit("gold/print_features")(lake)
    code, out = doctor(lake)
    assert code == 8, out
    assert "gold/print_features: the export recorded gold version 1, but gold ends at version 0" in out
    repaired_by_one_run(lake)


def test_a_garbage_checkpoint_fails_the_run_with_exit_8_and_doctor_rewrites_it(maintained_lake: Path) -> None:
    lake = maintained_lake
    checkpoint = sorted((lake / "silver" / "prints" / "_delta_log").glob("*.checkpoint.parquet"))[-1]
    checkpoint.write_bytes(b"PAR1 not a parquet file at all " * 20)
    line = assert_run_fails_with_the_doctor_line(lake)
    assert f"table silver/prints is damaged: checkpoint _delta_log/{checkpoint.name} cannot be read" in line
    code, out = doctor(lake)
    assert code == 8 and f"silver/prints: checkpoint {checkpoint.name} cannot be read" in out, out
    assert "gold/print_features" not in out  # a source that does not open is not a lost watermark
    repaired_by_one_run(lake)
    assert DeltaTable(str(lake / "silver" / "prints")).version() >= 0
    assert checkpoint.exists()  # written anew


def test_a_missing_silver_data_file_fails_a_full_run_with_exit_8_and_doctor_rebuilds_silver(
    lake: Path,
) -> None:
    remove_a_data_file("silver/prints")(lake)
    line = assert_run_fails_with_the_doctor_line(lake, "--full")
    assert "table silver/prints is damaged: data file day=" in line and "is missing" in line, line
    code, out = doctor(lake)
    assert code == 8 and "silver/prints: 1 data file(s) named by the log are missing" in out, out
    repaired_by_one_run(lake)


def test_a_missing_bronze_data_file_is_removed_and_its_raw_files_taken_in_again(lake: Path) -> None:
    remove_a_data_file("bronze/prints")(lake)
    code, out = doctor(lake)
    assert code == 8 and "bronze/prints: 1 data file(s) named by the log are missing" in out, out
    repaired_by_one_run(lake)


def test_a_missing_manifest_data_file_is_removed_and_its_raw_files_taken_in_once_again(lake: Path) -> None:
    remove_a_data_file("bronze/_manifest")(lake)
    code, out = doctor(lake)
    assert code == 8 and "bronze/_manifest: 1 data file(s) named by the log are missing" in out, out
    code, out = doctor(lake, "--repair")
    assert code == 0, out
    assert "is not in the manifest" not in out  # its rows are gone: the next run takes it in as new
    rerun = cli(lake, "run")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_exactly_once(lake)


def _commit_metadata(lake: Path, table: str, metadata: dict[str, str]) -> None:
    """An empty commit carrying ``metadata`` (what a stage's watermark commit records)."""
    target = DeltaTable(str(lake / table))
    target.create_write_transaction(
        [],
        mode="append",
        schema=target.schema(),
        partition_by=target.metadata().partition_columns,
        commit_properties=CommitProperties(custom_metadata=metadata),
    )


def _commit_ms(lake: Path, table: str, version: int) -> int:
    history = DeltaTable(str(lake / table)).history()
    return int(next(c["timestamp"] for c in history if c["version"] == version))


def test_a_silver_watermark_naming_a_bronze_version_that_is_gone_is_a_finding(lake: Path) -> None:
    _commit_metadata(lake, "silver/prints", {"bronze_version": "99"})
    code, out = doctor(lake, "--format", "json")
    assert code == 8
    report = json.loads(out)
    assert report["healthy"] is False
    found = [f for f in report["findings"] if f["table"] == "silver/prints"]
    assert [f["kind"] for f in found] == ["watermark_gone"], report
    assert "bronze prints version 99, which is gone" in found[0]["problem"]
    repaired_by_one_run(lake)


def test_watermarks_whose_commit_timestamps_differ_are_rewritten_history(lake: Path) -> None:
    bronze_version = DeltaTable(str(lake / "bronze" / "taps")).version()
    real = _commit_ms(lake, "bronze/taps", bronze_version)
    _commit_metadata(
        lake, "silver/taps", {"bronze_version": str(bronze_version), "bronze_commit_ts": str(real + 1)}
    )
    silver_version = DeltaTable(str(lake / "silver" / "pays")).version()
    gold = DeltaTable(str(lake / "gold" / "print_features")).history()
    versions = json.loads(next(c for c in gold if "silver_versions" in c)["silver_versions"])
    stamps = {s: str(_commit_ms(lake, f"silver/{s}", v)) for s, v in versions.items() if v >= 0}
    stamps["pays"] = "1"  # silver pays at that version was committed at another time
    assert versions["pays"] == silver_version
    _commit_metadata(
        lake,
        "gold/print_features",
        {"silver_versions": json.dumps(versions), "silver_commit_ts": json.dumps(stamps)},
    )
    prints = DeltaTable(str(lake / "bronze" / "prints")).version()  # recorded as it is: fine
    recorded = {"prints": [prints, _commit_ms(lake, "bronze/prints", prints)]}
    _commit_metadata(lake, "bronze/_manifest", {"run_id": "r2", "bronze_commits": json.dumps(recorded)})
    code, out = doctor(lake, "--format", "json")
    assert code == 8, out
    kinds = {(f["table"], f["kind"]) for f in json.loads(out)["findings"]}
    assert kinds == {("silver/taps", "watermark_rewritten"), ("gold/print_features", "watermark_rewritten")}
    repaired_by_one_run(lake)


def test_a_manifest_naming_a_bronze_commit_that_is_gone_is_a_finding_until_repaired(lake: Path) -> None:
    _commit_metadata(
        lake, "bronze/_manifest", {"run_id": "r1", "bronze_commits": json.dumps({"taps": [99, 1]})}
    )
    code, out = doctor(lake, "--format", "json")
    assert code == 8, out
    found = json.loads(out)["findings"]
    assert [(f["table"], f["kind"]) for f in found] == [("bronze/taps", "history_lost")], found
    assert "the manifest recorded bronze taps at version 99, which is gone" in found[0]["problem"]
    repaired_by_one_run(lake)


def test_doctor_on_a_healthy_lake_exits_0_and_its_json_says_so(lake: Path) -> None:
    code, out = doctor(lake)
    assert code == 0 and "every table is healthy" in out and "lease: free" in out, out
    code, out = doctor(lake, "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["healthy"] is True and report["findings"] == [], report


def test_doctor_on_a_lake_with_no_table_yet_exits_0(tmp_path: Path) -> None:
    for layer in ("raw", "bronze", "silver", "gold"):  # a lake set up, never run (no folder: exit 2)
        (tmp_path / layer).mkdir()
    code, out = doctor(tmp_path)
    assert code == 0 and "every table is healthy" in out, out


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_diagnosis_needs_no_lease_and_changes_no_file_while_repair_waits_for_the_lease(lake: Path) -> None:
    truncate_latest_commit("gold/print_features")(lake)
    storage = Storage(load_settings(lake_bronze=str(lake / "bronze")))
    with acquire(storage, owner=Owner.this_process("other-run"), wait=0):  # a live holder
        before = _files(lake)
        code, out = doctor(lake)
        assert code == 8 and "gold/print_features: commit file(s) 1 cannot be parsed" in out, out
        assert f"lease: held by run other-run (pid {os.getpid()} on {socket.gethostname()}" in out, out
        assert _files(lake) == before
        repair = cli(lake, "doctor", "--repair")
        assert repair.returncode == 5, repair.stderr
        assert f"kill {os.getpid()}" in one_clean_error_line(repair.stderr)
        assert _files(lake) == before


def test_a_dead_holders_record_is_a_free_lease_not_a_finding(lake: Path) -> None:
    # Locally only the flock holds the lake: what a killed holder left in the file, even
    # garbage, blocks nothing (an unreadable S3 lease object is a finding: jobs/doctor/diagnose.py).
    (lake / "bronze" / "_lease.json").write_text("{not json")
    code, out = doctor(lake)
    assert code == 0 and "lease: free" in out, out
