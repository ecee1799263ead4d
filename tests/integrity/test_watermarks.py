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
from tests.integrity.invariants import assert_derived_exact, cli, one_clean_error_line


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("watermarks")
    generate(out_dir=root / "raw", seed=5, scale=0.01, start=date(2020, 11, 2), days=6)
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


def deliver_later_days(template: Path, lake: Path, day: str) -> None:
    for source in ("prints", "taps", "pays"):
        for path in (template / "later" / source).glob(f"day={day}/*"):
            target = lake / "raw" / source / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


def test_silver_rebuilds_from_bronze_when_the_bronze_commit_it_consumed_was_lost_and_reused(
    template: Path, lake: Path
) -> None:
    lost = drop_latest_commit(lake / "bronze" / "prints")
    deliver_later_days(template, lake, "2020-11-08")  # bronze's next commit reuses that version
    done = cli(lake, "run")
    assert done.returncode == 0, done.stderr
    assert f"silver prints was built from bronze prints version {lost}, which was rewritten" in done.stderr
    assert "rebuilding silver prints from bronze" in done.stderr
    assert_derived_exact(lake)  # silver is bronze again (bronze itself lost rows: see doctor)


def test_silver_rebuilds_when_bronze_went_back_past_the_commit_it_consumed(
    template: Path, lake: Path
) -> None:
    deliver_later_days(template, lake, "2020-11-08")
    assert cli(lake, "run").returncode == 0
    lost = drop_latest_commit(lake / "bronze" / "taps")
    done = cli(lake, "run")
    assert done.returncode == 0, done.stderr
    assert f"silver taps was built from bronze taps version {lost}, which is gone" in done.stderr
    assert_derived_exact(lake)


def test_gold_rebuilds_in_full_when_the_silver_commit_it_was_built_from_was_lost_and_reused(
    template: Path, lake: Path
) -> None:
    lost = drop_latest_commit(lake / "silver" / "pays")
    deliver_later_days(template, lake, "2020-11-09")  # silver pays is rewritten at that version
    done = cli(lake, "run")
    assert done.returncode == 0, done.stderr
    assert f"gold was built from silver pays version {lost}, which" in done.stderr
    assert "full" in done.stdout or "silver pays version" in done.stdout
    assert_derived_exact(lake)


def test_a_run_stops_with_exit_8_when_bronze_lost_a_commit_the_manifest_recorded(
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
