"""A tiny run of the benchmark (scale 0.01): the harness works end to end. No timing asserted.

One benchmark run (the module's ``smoke`` fixture) serves every test that needs one: the report's
checks and the gates table built from the same stage pairs and plain alternatives. The plain
alternatives are fakes (scripts that write a small Parquet file), so these tests check the
plumbing without depending on ``../shared/anchors``.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.bench import anchors as plain
from infra.bench import gates
from infra.bench.measure import child_env
from infra.bench.report import Key, Report
from infra.bench.runner import STAGES, Bench, Row, dask_available

WRITE = """
import sys
from pathlib import Path

import polars as pl

out = Path(sys.argv[-1])
"""
FAKES = {
    # the ingest offers both engines, like ../shared/anchors/ingest.py
    "ingest.py": WRITE
    + """
import argparse
a = argparse.ArgumentParser()
a.add_argument("raw")
a.add_argument("out")
a.add_argument("--engine", default="duckdb", choices=["duckdb", "polars"])
args = a.parse_args()
assert Path(args.raw, "prints").is_dir(), args.raw
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
pl.DataFrame({"engine": [args.engine] * 3}).write_parquet(out / "prints.parquet")
""",
    "flatten_silver.py": WRITE
    + """
for t in ("prints", "taps", "pays"):
    frame = pl.read_delta(str(Path(sys.argv[1], t))).rename({"pay_date": "day"}, strict=False)
    (out / t).mkdir(parents=True)
    frame.select([c for c in ("day", "user_id", "value_prop", "total") if c in frame.columns]).write_parquet(
        out / t / "all.parquet"
    )
""",
    # brute force: every label row joined with every event of its user and value prop
    "labels_duckdb.py": """
import sys
from datetime import date

import polars as pl

flat, labels, out, weeks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[5])
week = lambda c: (pl.col(c) - pl.lit(date(1970, 1, 5))).dt.total_days() // 7
rows = pl.read_parquet(labels)
keys = rows.select("label_row", "user_id", "value_prop", week("day").alias("lw"))
found = rows
for source, name in (("prints", "prior_views"), ("taps", "prior_clicks"), ("pays", "prior_payments")):
    events = pl.read_parquet(f"{flat}/{source}/all.parquet").with_columns(week("day").alias("ew"))
    hits = keys.join(events, on=["user_id", "value_prop"]).filter(
        pl.col("ew").is_between(pl.col("lw") - weeks, pl.col("lw") - 1)
    )
    aggs = [pl.len().alias(name)] + [pl.col("total").sum().alias("prior_amount")] * (source == "pays")
    found = found.join(hits.group_by("label_row").agg(aggs), on="label_row", how="left")
found.with_columns(pl.col("^prior_.*$").fill_null(0)).write_parquet(out)
""",
    # one row: its row count differs from gold's, which is a note, not a failure
    "duckdb_best.py": WRITE + "pl.DataFrame({'x': [1]}).write_parquet(out)\n",
}

STAGE_ROWS = [
    f"{stage}{suffix}" for stage in ("bronze", "silver", "gold") for suffix in ("", ", quality gates off")
]
ISSUE_TARGETS = [
    "quality gates ≤ 10% of bronze's ungated time",
    "quality gates ≤ 10% of silver's ungated time",
    "quality gates ≤ 10% of gold's ungated time",
    "bronze (gates on) ≤ 2× the faster plain ingest",
    "gold (gates on) ≤ 0.7× the fastest DuckDB SQL",
    "raw → gold (gates on) ≤ 1.0× DuckDB ingest + DuckDB gold",
    "no-op tick ≤ 1 s as a whole process",
    "a new day ≤ 10% of a full raw → gold build (gates on)",
    "gold with windows 3,1,4 ≤ 1.2× one window",
    "label features ≤ 1.0× the DuckDB anchor's time",
    "label features ≤ 1.0× the DuckDB anchor's memory",
]


@dataclass
class Smoke:
    """The one benchmark run of this module, and where it wrote."""

    bench: Bench
    report: Report
    js: Path
    md: Path
    bench_dir: Path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    tmp_path = tmp_path_factory.mktemp("smoke")
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    for name, text in FAKES.items():
        (anchors / name).write_text(textwrap.dedent(text))
    bench = Bench(
        scale=0.01,
        bench_dir=tmp_path / "bench",
        dask=dask_available(),
        baselines=True,
        incremental=True,
        anchors=plain.find(str(anchors)),
        log=lambda *_: None,
    )
    report = bench.run()
    js, md = bench.write()
    return Smoke(bench, report, js, md, tmp_path / "bench")


@pytest.mark.slow
def test_bench_smoke_run_has_gated_and_ungated_stages_anchors_baselines_and_the_issue_targets(
    smoke: Smoke,
) -> None:
    report, js, md, tmp_path = smoke.report, smoke.js, smoke.md, smoke.bench_dir.parent

    assert report.problems == []
    names = {r.name: r for r in report.rows}
    for step in [
        *STAGE_ROWS,
        "DuckDB SQL",
        "pandas",
        "I/O floor",
        "no-op run (all stages)",
        "no-op run again (page cache warm)",
        "+1 day: gold",
        "+1 day: gold, quality gates off",
        "plain ingest, DuckDB (ingest.py)",
        "plain ingest, Polars (ingest.py)",
        "DuckDB gold SQL (duckdb_best.py)",
    ]:
        assert step in names, step
        assert names[step].wall_s > 0 and names[step].peak_rss_mb > 0, step
    for stage in STAGE_ROWS:
        assert names[stage].stage_s is not None and names[stage].stage_s > 0, stage
        assert names[stage].check == "", stage
    assert names["gold"].rows == names["gold, quality gates off"].rows == names["DuckDB SQL"].rows > 0
    assert names["DuckDB SQL"].check == "same rows as gold"
    assert names["pandas"].check == "same rows as gold"
    assert names["I/O floor"].check.startswith("same row count")
    if dask_available():
        assert names["gold on Dask, quality gates off"].check == "same rows as gold"
    # the anchors ran where they lie, on the same data, and their output was counted
    assert names["plain ingest, DuckDB (ingest.py)"].rows == 3
    assert names["DuckDB gold SQL (duckdb_best.py)"].rows == 1
    assert names["DuckDB gold SQL (duckdb_best.py)"].check.endswith("(note only)")
    assert "Polars gold (polars_best.py)" not in names  # not in the anchors directory
    assert "raw → gold (bronze + silver + gold)" in names and "DuckDB ingest + DuckDB gold" in names
    assert names["+1 day: raw → gold (bronze + silver + gold)"].wall_s > names["+1 day: gold"].wall_s
    # the consumers: several windows hold gold's rows; label features equal the (brute-force) anchor
    assert names["gold, lookback windows 3,1,4"].check == "same rows as gold"
    assert names["label features (python -m jobs features)"].rows == 1_000
    assert names["label features (python -m jobs features)"].check == "same features as labels_duckdb.py"
    assert names["label features, DuckDB (labels_duckdb.py)"].rows == 1_000

    assert [t["target"] for t in report.targets] == ISSUE_TARGETS
    for stage in ("bronze", "silver", "gold"):
        assert f"gates' cost, {stage} (in-stage, %)" in report.ratios
        assert f"gates' cost, {stage} (wall, %)" in report.ratios
    assert {
        "bronze / faster plain ingest (wall)",
        "gold / DuckDB gold SQL (wall)",
        "gold, gates off / DuckDB gold SQL (wall)",
        "raw → gold / DuckDB ingest + DuckDB gold (wall)",
        "gold, gates off / DuckDB SQL (duckdb_sql.py) (wall)",
        "gold, gates off / I/O floor (wall)",
    } <= set(report.ratios)

    saved = json.loads(js.read_text())
    assert saved["scale"] == 0.01 and len(saved["rows"]) == len(report.rows)
    assert [t["target"] for t in saved["targets"]] == ISSUE_TARGETS
    text = md.read_text()
    assert "| gold / DuckDB gold SQL (wall) |" in text
    assert "| bronze | " in text and "plain ingest, " in text  # the per-stage table
    assert (tmp_path / "bench" / "results" / "latest-scale-0.01.md").exists()
    # the raw data is cached for the next run
    assert (tmp_path / "bench" / "raw" / "scale-0.01-seed-42" / ".complete").exists()


@pytest.mark.slow
def test_gates_table_has_each_stage_gated_and_ungated_then_the_anchors(smoke: Smoke) -> None:
    """``python -m infra.bench.gates`` measures what the run's pipeline step measures
    (:meth:`Bench.stage_pair`, then :meth:`Bench.run_anchors`): its table from the run's."""
    times = {s: [gates.pair_times(s, smoke.bench.pairs[s])] for s in STAGES}
    alternatives = smoke.bench.alternatives

    assert set(times) == {"bronze", "silver", "gold"}
    for stage, pairs in times.items():
        assert len(pairs) == 1 and set(pairs[0]) == {False, True}, stage
    assert set(alternatives) == {
        "plain ingest, DuckDB (ingest.py)",
        "plain ingest, Polars (ingest.py)",
        "DuckDB gold SQL (duckdb_best.py)",
    }
    text = gates.table(0.01, times, alternatives)
    assert "| bronze |" in text and "plain ingest, " in text and "DuckDB gold SQL" in text


def test_targets_at_scale_100_add_seconds_and_peak_rss_and_a_stricter_bronze_limit(tmp_path: Path) -> None:
    bench = Bench(scale=100, bench_dir=tmp_path, dask=False, baselines=False, incremental=False)
    for stage in ("bronze", "silver", "gold"):
        bench.report.rows.append(Row(Key.of_stage(stage), "pipeline", 60.0, 70.0, 3000.0, stage_s=59.0))
    bench.report.rows.append(Row(Key.INGEST_DUCKDB, "anchor", 50.0, 55.0, 1000.0))
    bench.report.rows.append(Row(Key.GOLD_OFF, "pipeline", 55.0, 60.0, 2000.0, stage_s=54.0))
    bench.evaluate()

    targets = {t["target"]: t for t in bench.report.targets}
    assert targets["raw → gold (gates on) under 180 s"]["value"] == 180.0
    assert targets["raw → gold (gates on) peak RSS ≤ 3 GiB"]["limit"] == 3072.0
    assert targets["raw → gold (gates on) peak RSS ≤ 3 GiB"]["met"] is True
    assert targets["quality gates ≤ 10% of gold's ungated time"]["value"] == pytest.approx(9.3)
    assert targets["quality gates ≤ 10% of gold's ungated time"]["met"] is True
    assert targets["bronze (gates on) ≤ 1.5× the faster plain ingest"]["value"] == pytest.approx(1.2)


def test_anchors_dir_given_without_the_scripts_is_an_error_and_the_default_is_optional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit, match=r"needs ingest\.py"):
        plain.find(str(tmp_path))
    monkeypatch.setattr(plain, "ANCHORS", tmp_path / "nowhere")
    assert plain.find(None) is None


def test_ingest_without_an_engine_option_runs_once_as_the_duckdb_ingest(tmp_path: Path) -> None:
    (tmp_path / "ingest.py").write_text("import sys\nprint('usage: ingest.py RAW OUT')\n")
    assert plain.ingest_engines(tmp_path, env=child_env(), cwd=tmp_path) == [None]
