"""Real Airflow 3 around the lakehouse DAG: helpers shared by the tests in this folder.

The S3 server is the integration suite's session fixture ``s3`` (SeaweedFS ``weed mini`` on free
loopback ports); every Airflow process gets its environment from :mod:`infra.airflow.native`, the
same code behind ``make airflow-up`` and ``make dag-test``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra.airflow import native
from tests.integration.conftest import S3Stack, s3  # noqa: F401  (the session's weed mini)

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
START = date(2020, 11, 1)
ARTIFACTS = ROOT / "test-artifacts"


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class AirflowHome:
    """A throw-away AIRFLOW_HOME with a migrated SQLite DB, wired to one lake env file."""

    home: Path
    lake_env: Path
    overrides: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        cfg = native.Config(
            ROOT / "envs" / "airflow.env", self.lake_env, self.home, overrides=self.overrides | extra
        )
        return cfg.environment(self.home)

    def airflow(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(native.venv_bin() / "airflow"), *args],
            env=self.env(**extra),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def dags_test(self, conf: dict[str, Any] | None = None, **extra: str) -> DagRun:
        args = ["dags", "test", "lakehouse"]
        extra = native.DAGS_TEST_ENV | extra  # as `make dag-test` runs it
        if conf:
            args += ["--conf", json.dumps(conf)]
        started = time.perf_counter()
        proc = self.airflow(*args, **extra)
        seconds = time.perf_counter() - started
        run = self.last_run()
        run.returncode, run.output, run.seconds = proc.returncode, proc.stdout + proc.stderr, seconds
        return run

    # -- the metadata DB (read directly: no extra 5 s Airflow start-up per question) -------------
    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(sql, args).fetchall()

    def last_run(self) -> DagRun:
        run_id, state = self.query(
            "SELECT run_id, state FROM dag_run WHERE dag_id = 'lakehouse' ORDER BY id DESC LIMIT 1"
        )[0]
        tasks = {
            t: (s, n)
            for t, s, n in self.query(
                "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = 'lakehouse' "
                "AND run_id = ?",
                run_id,
            )
        }
        xcoms = {
            t: json.loads(v)
            for t, v in self.query(
                "SELECT task_id, value FROM xcom WHERE dag_id = 'lakehouse' AND run_id = ? "
                "AND key = 'return_value'",
                run_id,
            )
        }
        return DagRun(
            run_id, state, {t: s for t, (s, _) in tasks.items()}, {t: n for t, (_, n) in tasks.items()}, xcoms
        )


@dataclass
class DagRun:
    run_id: str
    state: str
    states: dict[str, str]
    tries: dict[str, int]
    xcoms: dict[str, Any]
    returncode: int = 0
    output: str = ""
    seconds: float = 0.0


def make_home(path: Path, lake_env: Path, **overrides: str) -> AirflowHome:
    """A new AIRFLOW_HOME with `airflow db migrate` done (about 10 s)."""
    path.mkdir(parents=True, exist_ok=True)
    home = AirflowHome(path, lake_env, {"LAKEHOUSE_SCHEDULE": "*/5 * * * *", **overrides})
    proc = home.airflow("db", "migrate")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home


def weed_endpoint(stack: S3Stack) -> str:
    return stack.server.endpoint


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def env_without_lake() -> dict[str, str]:
    """This process's environment without settings that could leak into a child's lake."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKE_", "AWS_", "STACK_", "ADMIN_", "ANALYST_", "AIRFLOW"))
    }
