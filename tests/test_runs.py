"""Run history (``gold/_runs``), the Prometheus metrics file and ``jobs freshness``: after a real
run, a no-op run (records nothing, metrics say ``noop``) and a held gold gate (a failed row)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from jobs.cli import main
from jobs.errors import DataError
from jobs.freshness import EXIT_STALE, duration_text
from jobs.pipeline import run_all
from jobs.runs import METRICS, PREFIX, Recorder, metrics_text, write_metrics
from jobs.schemas import RUNS
from jobs.settings.durations import parse_duration
from tests.conftest import LocalLake
from tests.quality.test_pipeline_quality import ND, append_crafted_silver_pays, land_small, use_lake_env
from tests.test_cli import cli

pytestmark = pytest.mark.usefixtures("restore_logging")

# The text exposition format, strictly: HELP and TYPE lines, then samples of that metric.
HELP = re.compile(r"^# HELP (lakehouse_[a-z_]+) \S.*$")
TYPE = re.compile(r"^# TYPE (lakehouse_[a-z_]+) (gauge|counter)$")
SAMPLE = re.compile(
    r'^(lakehouse_[a-z_]+)(\{stage="(bronze|silver|gold|export)"\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|NaN)$'
)


def parse_metrics(text: str) -> dict[str, float]:
    """``name{labels}`` → value, checking the format line by line (prometheus_client is not
    installed; this is its grammar for what we write)."""
    assert text.endswith("\n")
    values: dict[str, float] = {}
    helped: set[str] = set()
    typed: set[str] = set()
    for line in text.splitlines():
        if m := HELP.match(line):
            assert m.group(1) not in helped, line
            helped.add(m.group(1))
        elif m := TYPE.match(line):
            assert m.group(1) in helped and m.group(1) not in typed, line
            typed.add(m.group(1))
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            assert m.group(1) in typed, line
            key = m.group(1) + (m.group(2) or "")
            assert key not in values, line
            values[key] = float(m.group(4))
    return values


def runs(lake: LocalLake) -> pl.DataFrame:
    return lake.table("gold", "_runs").sort("started_at", maintain_order=True)


def test_a_run_records_one_row_per_stage_and_a_no_op_records_nothing(lake: LocalLake, tmp_path: Path) -> None:
    land_small(lake)
    metrics = tmp_path / "textfile" / "lakehouse.prom"
    ctx = lake.context(metrics_file=str(metrics))
    results = {r.stage: r for r in run_all(ctx)}
    rows = runs(lake)
    assert rows.schema == RUNS
    assert rows["stage"].to_list() == ["bronze", "silver", "gold", "export"]
    assert set(rows["run_id"]) == {ctx.run_id}
    assert set(rows["status"]) == {"succeeded"} and rows["error"].null_count() == 4
    by = {r["stage"]: r for r in rows.to_dicts()}
    for stage, result in results.items():
        assert (by[stage]["files"], by[stage]["rows_in"], by[stage]["rows_out"]) == (
            result.files,
            result.rows_in,
            result.rows_out,
        )
        assert json.loads(by[stage]["versions"]) == result.versions
        assert by[stage]["ended_at"] >= by[stage]["started_at"]
    assert by["bronze"]["bytes_read"] == sum(p.stat().st_size for p in lake.raw.rglob("*") if p.is_file())
    assert by["silver"]["bytes_read"] is None
    assert by["gold"]["checks"] > 0 and by["gold"]["checks_failed"] == 0
    assert by["export"]["checks"] == 0

    values = parse_metrics(metrics.read_text())
    assert values["lakehouse_last_run_success"] == 1 and values["lakehouse_last_run_noop"] == 0
    assert values['lakehouse_stage_rows_out{stage="gold"}'] == results["gold"].rows_out == 3
    assert values['lakehouse_stage_success{stage="export"}'] == 1
    assert values['lakehouse_quality_checks{stage="gold"}'] == by["gold"]["checks"]
    assert values['lakehouse_stage_bytes_read{stage="bronze"}'] == by["bronze"]["bytes_read"]
    assert [p.name for p in metrics.parent.iterdir()] == ["lakehouse.prom"]  # no temp file left

    # nothing new: no history row, no _runs version; the metrics file says so
    version = lake.version("gold", "_runs")
    again = lake.context(metrics_file=str(metrics))
    assert all(r.skipped for r in run_all(again))
    assert lake.version("gold", "_runs") == version
    values = parse_metrics(metrics.read_text())
    assert values["lakehouse_last_run_noop"] == 1 and values["lakehouse_last_run_success"] == 1
    assert values['lakehouse_stage_skipped{stage="gold"}'] == 1


def test_a_held_gold_gate_records_a_failed_row_and_failed_metrics(
    lake: LocalLake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    land_small(lake)
    lake.run()
    append_crafted_silver_pays(lake, [(ND + timedelta(days=1), "-50.00", 1, "point")])
    use_lake_env(lake, monkeypatch)
    metrics = tmp_path / "lakehouse.prom"
    assert main(["run", "--metrics-file", str(metrics)]) == DataError.exit_code
    rows = runs(lake)
    last = rows.filter(pl.col("run_id") == rows["run_id"][-1])
    assert last.select("stage", "status").rows() == [
        ("bronze", "skipped"),
        ("silver", "skipped"),
        ("gold", "failed"),
    ]
    gold = last.row(2, named=True)
    assert gold["error"].startswith("gold quality gate failed") and "\n" not in gold["error"]
    assert gold["checks_failed"] >= 1 and gold["rows_out"] is None and gold["versions"] == "{}"
    values = parse_metrics(metrics.read_text())
    assert values["lakehouse_last_run_success"] == 0 and values["lakehouse_last_run_noop"] == 0
    assert values['lakehouse_stage_success{stage="gold"}'] == 0
    assert values['lakehouse_quality_checks_failed{stage="gold"}'] == gold["checks_failed"]
    assert 'lakehouse_stage_success{stage="export"}' not in values  # never ran


def test_metrics_text_documents_every_metric_and_writes_atomically(tmp_path: Path) -> None:
    from jobs.run import RunContext
    from jobs.runs import StageRecord
    from jobs.settings import load_settings
    from jobs.summary import StageResult

    ctx = RunContext(load_settings(lake_bronze=str(tmp_path)))
    recorder = Recorder(ctx)
    now = ctx.started_at
    recorder.stages.append(StageRecord("bronze", now, now, 1.5, StageResult("bronze", files=2, rows_out=10)))
    text = metrics_text(recorder, {"bronze": {"checks": 3, "failed": 0, "warned": 1}}, now=1_700_000_000.0)
    values = parse_metrics(text)
    assert values["lakehouse_last_run_timestamp_seconds"] == 1_700_000_000
    assert values['lakehouse_stage_duration_seconds{stage="bronze"}'] == 1.5
    assert values['lakehouse_quality_checks_warned{stage="bronze"}'] == 1
    assert {k.split("{")[0] for k in values} == {PREFIX + name for name in METRICS}
    path = tmp_path / "out" / "m.prom"
    write_metrics(path, text)
    write_metrics(path, text)
    assert path.read_text() == text and [p.name for p in path.parent.iterdir()] == ["m.prom"]


def test_durations() -> None:
    assert parse_duration("26h") == timedelta(hours=26)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1w") == timedelta(days=7)
    for bad in ("", "26", "h", "-1h", "0s", "2 days"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert duration_text(timedelta(hours=5, minutes=12)) == "5h12m"
    assert duration_text(timedelta(days=3, hours=4)) == "3d4h"


def test_the_cli_queries_the_history_and_checks_freshness(tmp_path: Path) -> None:
    root = tmp_path
    gen = cli("--scale", "0.01", "--days", "8", root=root, module="infra.generator")
    assert gen.returncode == 0, gen.stderr
    (root / "bronze").mkdir()
    empty = cli("freshness", root=root)  # a lake with no table yet: every layer stale
    assert empty.returncode == EXIT_STALE, empty.stderr
    assert "stale: bronze, silver, gold" in empty.stdout

    run = cli("run", "--metrics-file", str(root / "m.prom"), root=root)
    assert run.returncode == 0, run.stderr
    sql = "SELECT stage, status FROM gold.runs ORDER BY started_at"
    res = cli("query", sql, "--format", "json", root=root)  # the analyst reads it (gold)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [
        {"stage": s, "status": "succeeded"} for s in ("bronze", "silver", "gold", "export")
    ]

    fresh = cli("freshness", "--max-age", "1h", root=root)
    assert fresh.returncode == 0, fresh.stderr + fresh.stdout
    assert fresh.stdout.splitlines()[-1] == "fresh: every layer changed within 1h00m"
    assert [line.split()[:2] for line in fresh.stdout.splitlines()[:3]] == [
        ["bronze", "fresh"],
        ["silver", "fresh"],
        ["gold", "fresh"],
    ]
    stale = cli("freshness", "--max-age", "1s", "--format", "json", root=root, FRESHNESS_MAX_AGE="2d")
    assert stale.returncode == EXIT_STALE
    found = json.loads(stale.stdout)
    assert found["stale"] is True and [x["layer"] for x in found["layers"]] == ["bronze", "silver", "gold"]
    assert all(x["last_commit"] and x["stale"] for x in found["layers"])
    assert found["layers"][1]["column"] == "day" and found["layers"][1]["newest_data"] is not None
    setting = cli("freshness", root=root, FRESHNESS_MAX_AGE="1s")
    assert setting.returncode == EXIT_STALE
    bad = cli("freshness", "--max-age", "soon", root=root)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
