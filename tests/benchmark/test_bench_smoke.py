"""A tiny run of the benchmark (scale 0.01): the harness works end to end. No timing asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.bench.runner import Bench, dask_available


@pytest.mark.slow
def test_bench_smoke_run_checks_every_baseline_against_gold(tmp_path: Path) -> None:
    bench = Bench(
        scale=0.01,
        bench_dir=tmp_path,
        dask=dask_available(),
        baselines=True,
        incremental=True,
        quality=False,
        log=lambda *_: None,
    )
    report = bench.run()
    js, md = bench.write()

    assert report.problems == []
    names = {r.name: r for r in report.rows}
    for step in (
        "bronze",
        "silver",
        "gold",
        "gold, quality gates off",
        "DuckDB SQL",
        "pandas",
        "I/O floor",
        "no-op run (all stages)",
        "+1 day: gold",
    ):
        assert step in names, step
        assert names[step].wall_s > 0 and names[step].peak_rss_mb > 0
    assert names["DuckDB SQL"].check == "same rows as gold"
    assert names["pandas"].check == "same rows as gold"
    assert names["I/O floor"].check.startswith("same row count")
    if dask_available():
        assert names["gold on Dask, quality gates off"].check == "same rows as gold"
    assert names["gold"].rows == names["DuckDB SQL"].rows > 0
    assert {"gold / DuckDB SQL (wall)", "gold / I/O floor (wall)"} <= set(report.ratios)

    saved = json.loads(js.read_text())
    assert saved["scale"] == 0.01 and len(saved["rows"]) == len(report.rows)
    assert "| gold / DuckDB SQL (wall) |" in md.read_text()
    assert (tmp_path / "results" / "latest-scale-0.01.md").exists()
    # the raw data is cached for the next run
    assert (tmp_path / "raw" / "scale-0.01-seed-42" / ".complete").exists()
