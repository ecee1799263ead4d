"""An operator is never stuck: a held batch is released for one run, or its file rejected whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from infra.generator import generate
from tests.integrity.invariants import assert_exactly_once, cli, table

BLOCKING = {"QUALITY_SEVERITY": "quarantined_fraction_per_small_file=failure"}


def held_lake(root: Path) -> Path:
    """A lake whose next run is held: a small taps file of junk under a blocking severity."""
    generate(out_dir=root / "raw", seed=5, scale=0.005, start=date(2020, 11, 2), days=3)
    (root / "raw" / "taps" / "junk.json").write_text("not json\nnot json either\n")
    held = cli(root, "run", **BLOCKING)
    assert held.returncode == 4, held.stderr  # the gate held the batch
    return root


def test_a_held_batch_is_released_for_one_run_and_recorded_as_a_warning(tmp_path: Path) -> None:
    lake = held_lake(tmp_path)
    released = cli(lake, "run", "--release", "quarantined_fraction_per_small_file", **BLOCKING)
    assert released.returncode == 0, released.stderr
    history = table(lake, "gold", "_quality_results").filter(
        pl.col("expectation") == "quarantined_fraction_per_small_file"
    )
    last_run = history.sort("recorded_at")["run_id"].to_list()[-1]
    outcomes = history.filter(pl.col("run_id") == last_run)["outcome"].to_list()
    assert "warning" in outcomes and "failed" not in outcomes
    assert "failed" in history.filter(pl.col("run_id") != last_run)["outcome"].to_list()
    assert_exactly_once(lake)
    again = cli(lake, "run", **BLOCKING)  # the release held for that run only, and nothing is left
    assert again.returncode == 0, again.stderr


def test_a_held_file_is_rejected_whole_by_the_operator_and_the_rest_goes_on(tmp_path: Path) -> None:
    lake = held_lake(tmp_path)
    rejected = cli(lake, "run", "--reject", "taps/junk.json=upstream sent garbage", **BLOCKING)
    assert rejected.returncode == 7, rejected.stderr  # done, with rejected input
    manifest = table(lake, "bronze", "_manifest").filter(pl.col("path") == "taps/junk.json")
    assert manifest["status"].to_list() == ["rejected"]
    assert manifest["reason"].item() == "rejected by the operator: upstream sent garbage"
    lines = table(lake, "bronze", "quarantine").filter(pl.col("source_file") == "taps/junk.json")
    assert lines.height == 2
    assert_exactly_once(lake)
    assert cli(lake, "run", **BLOCKING).returncode == 0  # not retried: it stays rejected
