"""Watermarks name exact commits: a lost or rewritten upstream commit is noticed, said in one
line, and the downstream table is rebuilt from its source instead of being skipped.

The damage is real: a table's latest ``_delta_log`` entry is deleted, so the next commit to it
reuses that version number with other content (what a lost commit looks like to a reader).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from infra.generator import generate
from tests.integrity.invariants import assert_derived_exact, assert_exactly_once, cli, one_clean_error_line


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("watermarks")
    generate(out_dir=root / "raw", seed=5, scale=0.01, start=date(2020, 11, 2), days=6, bad_lines=5)
    generate(out_dir=root / "later", seed=6, scale=0.01, start=date(2020, 11, 8), days=2)
    return root


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template / "raw", tmp_path / "raw")
    assert cli(tmp_path, "run").returncode == 0
    return tmp_path


def drop_latest_commit(table: Path) -> int:
    """Delete a table's newest log entry (a lost commit); the version it had."""
    logs = sorted((table / "_delta_log").glob("*.json"))
    logs[-1].unlink()
    return int(logs[-1].stem)


def versions(layer: Path) -> dict[str, int]:
    """The newest log version of every table of a layer."""
    return {log.parent.name: int(max(log.glob("*.json")).stem) for log in layer.glob("*/_delta_log")}


def restore(layer: Path, before: dict[str, int]) -> None:
    """Put a layer back as it was (a restore from a backup): later log entries go."""
    for name, version in before.items():
        for entry in (layer / name / "_delta_log").glob("*.json"):
            if int(entry.stem) > version:
                entry.unlink()


def deliver_later_days(template: Path, lake: Path, day: str) -> None:
    for source in ("prints", "taps", "pays"):
        for path in (template / "later" / source).glob(f"day={day}/*"):
            target = lake / "raw" / source / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


def test_silver_rebuilds_from_bronze_restored_from_a_backup_older_than_what_it_consumed(
    template: Path, lake: Path
) -> None:
    backup = versions(lake / "bronze")
    deliver_later_days(template, lake, "2020-11-08")
    assert cli(lake, "run").returncode == 0
    consumed = versions(lake / "bronze")["prints"]
    restore(lake / "bronze", backup)  # the manifest forgets the day too: taken in again
    done = cli(lake, "run")  # bronze's next commits reuse the versions silver consumed
    assert done.returncode == 0, done.stderr
    assert f"silver prints was built from bronze prints version {consumed}, which was rewritten" in (
        done.stderr
    )
    assert "rebuilding silver prints from bronze" in done.stderr
    assert_exactly_once(lake)


def test_silver_rebuilds_when_bronze_went_back_past_the_commit_it_consumed(
    template: Path, lake: Path
) -> None:
    backup = versions(lake / "bronze")
    deliver_later_days(template, lake, "2020-11-08")
    assert cli(lake, "run").returncode == 0
    consumed = versions(lake / "bronze")["taps"]
    restore(lake / "bronze", backup)
    (lake / "raw" / "taps" / "day=2020-11-08").rename(lake / "later-taps")  # no new taps now
    done = cli(lake, "run")
    assert done.returncode == 0, done.stderr
    assert f"silver taps was built from bronze taps version {consumed}, which is gone" in done.stderr
    assert_derived_exact(lake)


def test_gold_rebuilds_in_full_from_silver_restored_from_a_backup_older_than_what_it_consumed(
    template: Path, lake: Path
) -> None:
    backup = versions(lake / "silver")
    deliver_later_days(template, lake, "2020-11-09")
    assert cli(lake, "run").returncode == 0
    consumed = versions(lake / "silver")["prints"]
    restore(lake / "silver", backup)  # silver redoes the day: its commits reuse the versions
    done = cli(lake, "run")
    assert done.returncode == 0, done.stderr
    assert f"gold was built from silver prints version {consumed}, which was rewritten" in done.stderr
    assert "silver prints version" in done.stdout  # the reason of the full rebuild
    assert_exactly_once(lake)


def test_a_run_stops_with_exit_8_when_bronze_lost_a_commit_the_manifest_recorded_and_doctor_repairs_it(
    template: Path, lake: Path
) -> None:
    # The manifest's last run recorded bronze prints at its latest version: lose that commit.
    drop_latest_commit(lake / "bronze" / "prints")
    deliver_later_days(template, lake, "2020-11-08")
    done = cli(lake, "run")
    assert done.returncode == 8, done.stderr
    line = one_clean_error_line(done.stderr)
    assert "bronze prints no longer holds version 0, which the manifest recorded" in line
    assert line.endswith("run python -m jobs doctor")
    assert cli(lake, "doctor", "--repair").returncode == 0
    assert cli(lake, "run").returncode == 0
    assert_exactly_once(lake)
