"""``run_stage(..., audits=NO_AUDITS)``, what the benchmark's gates-off figures rely on: same tables,
no quality checks recorded, a file over the rejection threshold rejected all the same (bronze's
rule, not the audit's), and the next stage run with quality on audits as usual."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from infra.generator import generate
from jobs.audit import NO_AUDITS
from jobs.cli import exit_status
from jobs.errors import EXIT_REJECTED_INPUT
from jobs.pipeline import run_stage
from jobs.quality.history import results_uri
from jobs.stages import STAGES
from tests.conftest import LocalLake
from tests.reference import canonical

GARBAGE = "prints/day=2020-11-03/part-9.json"  # 150 lines, every one quarantined: over the threshold
BINARY = "taps/day=2020-11-04/part-9.json"  # 3 lines, under the threshold, but not text


def _land(lake: LocalLake) -> None:
    generate(out_dir=lake.raw, scale=0.005, days=8, bad_lines=6)
    lake.write_text(GARBAGE, "".join(f'{{"day": "2020-11-03", "user_id": "x{i}"}}\n' for i in range(150)))
    lake.write_text(BINARY, "\0\1\2 not json\n" * 3)


def test_quality_off_writes_the_same_tables_rejects_the_same_files_and_records_no_checks(
    lake: LocalLake, tmp_path: Path
) -> None:
    _land(lake)
    off = lake.context()
    off_results = [run_stage(off, stage, audits=NO_AUDITS) for stage in STAGES]
    assert not Path(results_uri(off)).exists()

    on_lake = LocalLake(tmp_path / "on")
    _land(on_lake)
    on = on_lake.context()
    on_results = [run_stage(on, stage) for stage in STAGES]
    assert pl.read_delta(results_uri(on)).height > 0
    assert_frame_equal(
        canonical(lake.table("gold", "print_features")), canonical(on_lake.table("gold", "print_features"))
    )

    # the file over the threshold and the binary one are rejected whole with the gates off too:
    # exit 7 either way
    for results in (off_results, on_results):
        assert results[0].rejected == [GARBAGE, BINARY]
        assert exit_status(results) == EXIT_REJECTED_INPUT
    off_bronze, on_bronze = off_results[0], on_results[0]
    assert (off_bronze.rows_out, off_bronze.quarantined) == (on_bronze.rows_out, on_bronze.quarantined)
    manifest = lake.table("bronze", "_manifest").filter(pl.col("path") == GARBAGE)
    assert manifest["status"].to_list() == ["rejected"]
    assert manifest["reason"][0].startswith("100.0% of its 150 lines quarantined")
    assert lake.table("bronze", "quarantine").filter(pl.col("source_file") == GARBAGE).height == 150
    assert lake.table("bronze", "prints").filter(pl.col("source_file") == GARBAGE).height == 0
    binary = lake.table("bronze", "_manifest").filter(pl.col("path") == BINARY)
    assert binary["status"].to_list() == ["rejected"]
    assert binary["reason"][0].startswith("not a text file: a NUL byte")

    # NO_AUDITS leaves nothing switched off behind it: the next run audits again
    generate(out_dir=lake.raw, scale=0.005, start=date(2020, 11, 10), days=1)
    run_stage(lake.context(), "bronze")
    assert pl.read_delta(results_uri(off)).height > 0
