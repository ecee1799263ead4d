"""``run_stage(..., audits=NO_AUDITS)``, what the benchmark's gates-off figures rely on: same tables,
no quality checks recorded, and the next stage run with quality on audits as usual."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from infra.generator import generate
from jobs.audit import NO_AUDITS
from jobs.pipeline import run_stage
from jobs.quality.history import results_uri
from jobs.stages import STAGES
from tests.conftest import LocalLake
from tests.reference import canonical


def test_quality_off_writes_the_same_tables_and_records_no_checks(lake: LocalLake, tmp_path: Path) -> None:
    generate(out_dir=lake.raw, scale=0.005, days=8, bad_lines=6)
    off = lake.context()
    for stage in STAGES:
        run_stage(off, stage, audits=NO_AUDITS)
    assert not Path(results_uri(off)).exists()

    on_lake = LocalLake(tmp_path / "on")
    generate(out_dir=on_lake.raw, scale=0.005, days=8, bad_lines=6)
    on = on_lake.context()
    for stage in STAGES:
        run_stage(on, stage)
    assert pl.read_delta(results_uri(on)).height > 0
    assert_frame_equal(
        canonical(lake.table("gold", "print_features")), canonical(on_lake.table("gold", "print_features"))
    )

    # NO_AUDITS leaves nothing switched off behind it: the next run audits again
    generate(out_dir=lake.raw, scale=0.005, start=date(2020, 11, 10), days=1)
    run_stage(lake.context(), "bronze")
    assert pl.read_delta(results_uri(off)).height > 0
