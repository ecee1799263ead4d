"""Native Airflow as `make airflow-up` starts it: a run triggered through the REST API, and the UI.

Airflow standalone (scheduler + LocalExecutor, DAG processor, triggerer, API server, SQLite)
starts ONCE for this module on free loopback ports, through ``python -m infra.airflow.native up``,
and is stopped by its process group afterwards (``... down``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from infra.processes import group_alive
from infra.stack.seed import SeedOptions, seed_lake
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE
from jobs.settings import Settings
from tests.airflow.conftest import ROOT, SCALE, START, env_without_lake, free_ports, native
from tests.integration.conftest import S3Stack
from tests.reference import canonical, reference_gold
from tests.test_generated_data_end_to_end import read_clean_raw

pytestmark = pytest.mark.integration

DAYS = 8
STAGES = ("detect", "bronze", "silver", "gold", "export")
# How long an assertion waits for the page: a UI still loading on a busy 2-core machine took more
# than Playwright's default 5 s to render a run's row (CI, 2026-12-07).
UI_WAIT_MS = 60_000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Standalone:
    cfg: Any  # native.Config
    lake: Settings
    raw: Path
    up_output: str
    up_seconds: float
    token: str = ""

    def api(self, path: str, *, attempts: int = 3, **kwargs: Any) -> tuple[int, Any]:
        """A REST call; a busy 2-core machine can make the API server slow, so retry timeouts."""
        for attempt in range(attempts):
            try:
                return native.request(f"{self.cfg.url}/api/v2{path}", token=self.token, timeout=60, **kwargs)
            except TimeoutError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")


def command(
    action: str, airflow_env: Path, lake_env: Path, home: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.airflow.native",
            action,
            "--airflow-env",
            str(airflow_env),
            "--lake-env",
            str(lake_env),
            "--home",
            str(home),
            "--timeout",
            "240",
        ],
        cwd=ROOT,
        env=env_without_lake(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def standalone(s3: S3Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    work = tmp_path_factory.mktemp("standalone")
    raw = work / "raw"
    generate(out_dir=raw, scale=SCALE, start=START, days=DAYS)
    lake = s3.lake("airflow-standalone")
    seed_lake(lake, SeedOptions(source=raw, identities=False))
    lake_env = s3.env_file(lake, work / "lake.env")
    api, worker_logs, trigger_logs = free_ports(3)
    airflow_env = work / "airflow.env"
    # envs/airflow.env as make airflow-up uses it, on free ports (later lines win)
    airflow_env.write_text(
        (ROOT / "envs" / "airflow.env").read_text()
        + (
            f"\nAIRFLOW_API_PORT={api}\nAIRFLOW_WORKER_LOG_SERVER_PORT={worker_logs}\n"
            f"AIRFLOW_TRIGGER_LOG_SERVER_PORT={trigger_logs}\n"
        )
    )
    home = work / "home"
    started = time.perf_counter()
    up = command("up", airflow_env, lake_env, home)
    seconds = time.perf_counter() - started
    cfg = native.Config(airflow_env, lake_env, home)
    try:
        assert up.returncode == 0, up.stdout + up.stderr + _tail(cfg.log_path)
        yield Standalone(cfg, lake, raw, up.stdout, seconds, native.token(cfg))
    finally:
        pid = native.recorded_pid(cfg)
        down = command("down", airflow_env, lake_env, home)
        assert down.returncode == 0, down.stderr
        if pid:
            assert not group_alive(pid), f"airflow process group {pid} still alive"


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else ""


def test_airflow_up_prints_url_and_password_and_unpauses_the_dag(standalone: Standalone) -> None:
    out = standalone.up_output
    assert standalone.cfg.url in out
    assert str(standalone.cfg.password_path) in out
    assert standalone.cfg.password_path.is_file()
    status, dag = standalone.api("/dags/lakehouse")
    assert status == 200
    assert dag["is_paused"] is False
    assert dag["timetable_summary"] == "*/5 * * * *"
    assert dag["max_active_runs"] == 1
    # the API server listens on loopback only
    assert standalone.cfg.environment()["AIRFLOW__API__HOST"] == "127.0.0.1"


def wait_for_run(standalone: Standalone, run_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, run = standalone.api(f"/dags/lakehouse/dagRuns/{run_id}")
        assert status == 200, run
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise AssertionError(
        f"run {run_id} not finished after {timeout}s: {run}\n{_tail(standalone.cfg.log_path)}"
    )


@pytest.fixture(scope="module")
def triggered(standalone: Standalone) -> dict[str, Any]:
    """A run triggered through the REST API with a rebuild request (so never short-circuited)."""
    started = time.perf_counter()
    status, run = standalone.api(
        "/dags/lakehouse/dagRuns",
        method="POST",
        attempts=1,
        body={"logical_date": None, "conf": {"rebuild_weeks": ["2020-11-04"]}},
    )
    assert status == 200, run
    finished = wait_for_run(standalone, run["dag_run_id"])
    finished["seconds"] = time.perf_counter() - started
    return finished


def test_a_run_triggered_through_the_rest_api_succeeds(
    standalone: Standalone, triggered: dict[str, Any]
) -> None:
    run_id = triggered["dag_run_id"]
    assert triggered["state"] == "success", _tail(standalone.cfg.log_path)
    assert triggered["run_type"] == "manual"
    status, body = standalone.api(f"/dags/lakehouse/dagRuns/{run_id}/taskInstances")
    assert status == 200
    assert {t["task_id"]: t["state"] for t in body["task_instances"]} == dict.fromkeys(STAGES, "success")
    status, xcom = standalone.api(
        f"/dags/lakehouse/dagRuns/{run_id}/taskInstances/detect/xcomEntries/return_value"
    )
    assert status == 200, xcom
    value = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
    assert value["proceed"] and value["reasons"][0].startswith("requested:")
    # the task log holds the stage's summary
    logs = list(
        (standalone.cfg.home / "logs" / "dag_id=lakehouse").glob(
            f"run_id={run_id}/task_id=gold/attempt=*.log"
        )
    )
    assert logs and "gold summary:" in logs[0].read_text()


def test_the_schedule_runs_and_gold_on_s3_equals_the_reference(
    standalone: Standalone, triggered: dict[str, Any]
) -> None:
    # Unpausing a */5 DAG makes the scheduler run the latest tick at once (catchup off): one
    # scheduled run besides ours (max_active_runs=1: one after the other). Wait for all of them.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        _, runs = standalone.api("/dags/lakehouse/dagRuns")
        if all(r["state"] in ("success", "failed") for r in runs["dag_runs"]):
            break
        time.sleep(2)
    assert {r["state"] for r in runs["dag_runs"]} == {"success"}
    assert "scheduled" in {r["run_type"] for r in runs["dag_runs"]}, runs
    ctx = RunContext(standalone.lake)
    gold = canonical(ctx.lake.scan(ctx.gold(GOLD_TABLE)).collect())
    ev = read_clean_raw(standalone.raw)
    expected = canonical(reference_gold(ev["prints"], ev["taps"], ev["pays"], mode="calendar", n_weeks=3))
    assert gold.height > 0
    assert_frame_equal(gold, expected)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is missing (.ci/apt-packages.txt installs it)")
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    return found


def test_the_ui_shows_the_last_run_as_successful(
    standalone: Standalone, triggered: dict[str, Any], artifacts: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    run_id = triggered["dag_run_id"]
    password = native.admin_password(standalone.cfg)
    shot = artifacts / "airflow-ui-lakehouse-runs.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(f"{standalone.cfg.url}/dags/lakehouse/runs")
            # not logged in: the simple auth manager's sign-in form
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r".*/dags/lakehouse/runs"))
            row = page.locator("tr", has_text=run_id)
            expect(row).to_contain_text("Success", timeout=UI_WAIT_MS)
            expect(row).to_contain_text("Manual", timeout=UI_WAIT_MS)
            # the DAG header's "Latest Run" links to the newest run
            expect(page.get_by_text("Latest Run")).to_be_visible(timeout=UI_WAIT_MS)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def test_measured_startup(standalone: Standalone, triggered: dict[str, Any]) -> None:
    """Not a limit, a record: printed with -s / in the CI log."""
    print(
        f"\nairflow-up (standalone start, healthy, DAG unpaused): {standalone.up_seconds:.0f}s; "
        f"REST-triggered run to success: {triggered['seconds']:.0f}s"
    )
    assert standalone.up_seconds < 240
