"""The DAG as Airflow's own DagBag sees it: imports cleanly, configured as documented, cheap."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.airflow.conftest import ROOT

DAGS = ROOT / "dags"
STAGES = ["detect", "bronze", "silver", "gold", "export"]


def dagbag(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    for name in (
        "LAKEHOUSE_SCHEDULE",
        "LAKEHOUSE_MAINTENANCE_SCHEDULE",
        "LAKEHOUSE_RETRIES",
        "LAKEHOUSE_RETRY_DELAY_SECONDS",
        "LAKEHOUSE_MAX_RETRY_DELAY_SECONDS",
        "LAKEHOUSE_TASK_TIMEOUT_MINUTES",
        "LAKEHOUSE_DEADLINE_MINUTES",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def bag_timing() -> dict[str, float]:
    return {}


def test_dagbag_imports_the_dag_without_errors(
    monkeypatch: pytest.MonkeyPatch, bag_timing: dict[str, float]
) -> None:
    started = time.perf_counter()
    bag = dagbag(monkeypatch, LAKEHOUSE_SCHEDULE="*/5 * * * *")
    bag_timing["parse"] = time.perf_counter() - started
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["lakehouse", "lakehouse_maintenance"]


def test_schedule_catchup_concurrency_and_tags_are_as_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag = dagbag(monkeypatch, LAKEHOUSE_SCHEDULE="*/5 * * * *").dags["lakehouse"]
    assert dag.schedule == "*/5 * * * *"
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.timetable.expression == "*/5 * * * *"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert {"lakehouse", "polars", "delta"} <= set(dag.tags)
    assert "short-circuit" in dag.doc_md.lower() or "skipped" in dag.doc_md.lower()
    assert set(dag.params) == {"rebuild_weeks", "full_rebuild", "lookback_mode", "lookback_weeks"}
    assert dag.params["full_rebuild"] is False


def test_schedule_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dagbag(monkeypatch, LAKEHOUSE_SCHEDULE="@weekly").dags["lakehouse"].schedule == "@weekly"
    assert dagbag(monkeypatch, LAKEHOUSE_SCHEDULE="none").dags["lakehouse"].schedule is None
    # unset: a daily production default
    assert dagbag(monkeypatch).dags["lakehouse"].schedule == "@daily"


def test_one_task_per_stage_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = dagbag(monkeypatch).dags["lakehouse"]
    assert [t.task_id for t in dag.topological_sort()] == STAGES
    for upstream, downstream in itertools.pairwise(STAGES):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert type(dag.get_task("detect")).__name__ == "_ShortCircuitDecoratedOperator"


def test_gold_task_declares_the_gold_asset_for_downstream_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = dagbag(monkeypatch).dags["lakehouse"]
    outlets = {t.task_id: [a.name for a in t.outlets] for t in dag.tasks}
    assert outlets == {
        "detect": [],
        "bronze": [],
        "silver": [],
        "gold": ["lakehouse.gold.print_features"],
        "export": [],
    }


def test_retries_backoff_and_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = dagbag(monkeypatch).dags["lakehouse"]
    for task in dag.tasks:
        assert task.retries == 2
        assert task.retry_delay == timedelta(seconds=60)
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == timedelta(minutes=15)
        assert task.execution_timeout is not None
    assert dag.get_task("detect").execution_timeout == timedelta(minutes=10)
    assert dag.get_task("gold").execution_timeout == timedelta(minutes=120)

    tuned = dagbag(
        monkeypatch,
        LAKEHOUSE_RETRIES="5",
        LAKEHOUSE_RETRY_DELAY_SECONDS="7",
        LAKEHOUSE_TASK_TIMEOUT_MINUTES="30",
    ).dags["lakehouse"]
    assert tuned.get_task("bronze").retries == 5
    assert tuned.get_task("bronze").retry_delay == timedelta(seconds=7)
    assert tuned.get_task("bronze").execution_timeout == timedelta(minutes=30)


def test_maintenance_dag_has_one_thin_task_on_its_own_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag = dagbag(monkeypatch, LAKEHOUSE_SCHEDULE="*/5 * * * *").dags["lakehouse_maintenance"]
    assert dag.timetable.expression == "30 2 * * *"  # daily at 02:30 UTC, not the pipeline's */5
    assert [t.task_id for t in dag.tasks] == ["maintain"]
    assert dag.catchup is False and dag.max_active_runs == 1
    assert "maintenance" in dag.tags and "retention" in dag.doc_md.lower()
    task = dag.get_task("maintain")
    assert task.retries == 2 and task.retry_exponential_backoff == 2.0  # lease held → retried
    assert task.execution_timeout == timedelta(minutes=120)
    tuned = dagbag(monkeypatch, LAKEHOUSE_MAINTENANCE_SCHEDULE="0 3 * * *")
    assert tuned.dags["lakehouse_maintenance"].timetable.expression == "0 3 * * *"
    assert (
        dagbag(monkeypatch, LAKEHOUSE_MAINTENANCE_SCHEDULE="none").dags["lakehouse_maintenance"].schedule
        is None
    )


def first_run_after(dag: Any) -> Any:
    """When the scheduler would start a DAG's first run (as it computes it, from the serialized DAG)."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    info = serialized.next_dagrun_info(last_automated_run_info=None)
    return info.run_after


@pytest.mark.parametrize("schedule", [None, "@daily", "*/5 * * * *"])
def test_maintenance_never_runs_at_once_when_unpaused(
    monkeypatch: pytest.MonkeyPatch, schedule: str | None
) -> None:
    """Unpaused by `make airflow-up`, maintenance waits for its next tick; the pipeline's first
    tick runs at once, so the two never meet at start-up (issue 19)."""
    from datetime import UTC, datetime

    env = {"LAKEHOUSE_SCHEDULE": "*/5 * * * *"}
    if schedule:
        env["LAKEHOUSE_MAINTENANCE_SCHEDULE"] = schedule
    bag = dagbag(monkeypatch, **env)
    maintenance = bag.dags["lakehouse_maintenance"]
    assert maintenance.start_date is None and maintenance.catchup is False
    assert all(t.start_date is None for t in maintenance.tasks)
    assert type(maintenance.timetable).__name__ == "CronTriggerTimetable"
    now = datetime.now(UTC)
    assert first_run_after(maintenance) > now
    assert first_run_after(bag.dags["lakehouse"]) <= now  # the pipeline's first tick: at once


@pytest.mark.parametrize("dag_file", ["lakehouse.py", "lakehouse_maintenance.py"])
def test_parsing_imports_no_heavy_module_and_is_fast(dag_file: str) -> None:
    """Import the DAG file in a fresh interpreter: no polars/deltalake/GX/pyarrow/duckdb."""
    code = f"""
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("lakehouse_dag", {str(DAGS / dag_file)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - started
heavy = ("polars", "deltalake", "great_expectations", "pyarrow", "duckdb", "pandas", "s3fs",
         "boto3", "jobs.pipeline", "jobs.tables", "jobs.maintain", "jobs.orchestration")
print(json.dumps({{"loaded": [m for m in heavy if m in sys.modules], "seconds": seconds}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    # airflow.sdk itself takes a few seconds on a busy 2-core machine; the DAG adds nothing heavy
    assert report["seconds"] < 30


def test_the_trigger_form_takes_one_window_or_a_list_of_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lookback_weeks`` accepts N or "3,1,4" in the form (options.py checks them again)."""
    param = dagbag(monkeypatch).dags["lakehouse"].params.get_param("lookback_weeks")
    for value in (None, 3, "3,1,4", " 3, 1 "):
        assert param.resolve(value) == value
    for bad in (0, 53, "3;1", "three"):
        with pytest.raises(Exception, match=r"lookback_weeks|not valid|does not match|less than|greater"):
            param.resolve(bad)


def test_failure_callbacks_and_the_deadline_alert_log_one_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    from jobs import notify

    dag = dagbag(monkeypatch).dags["lakehouse"]
    callbacks = dag.on_failure_callback
    assert notify.run_failed in (callbacks if isinstance(callbacks, list) else [callbacks])
    for task in dag.tasks:
        assert notify.task_failed in (task.on_failure_callback or []), task.task_id
    deadline = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline
    assert deadline.interval == timedelta(minutes=90)
    assert deadline.callback.path == "jobs.notify.run_late"
    assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
    assert dagbag(monkeypatch, LAKEHOUSE_DEADLINE_MINUTES="0").dags["lakehouse"].deadline in (None, [])

    run = SimpleNamespace(run_id="scheduled__1", dag_id="lakehouse")
    ti = SimpleNamespace(dag_id="lakehouse", task_id="gold")
    with caplog.at_level("WARNING", logger="lakehouse.notify"):
        notify.task_failed({"ti": ti, "dag_run": run, "exception": ValueError("gate held\nmore")})
        notify.run_failed({"dag_run": run})
        notify.run_late({"dag_run": run})
    failed = "lakehouse task failed: dag=lakehouse run=scheduled__1 task=gold: gate held"
    assert caplog.records[0].getMessage() == failed
    assert [r.levelname for r in caplog.records] == ["ERROR", "ERROR", "WARNING"]
    assert all("\n" not in r.getMessage() for r in caplog.records)
