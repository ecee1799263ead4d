"""Native Airflow 3 for the lakehouse, no Docker: ``make airflow-up`` / ``airflow-down`` / ``dag-test``.

    python -m infra.airflow.native up        # airflow standalone on 127.0.0.1, DAG unpaused
    python -m infra.airflow.native down      # stop it (SIGTERM to its process group)
    python -m infra.airflow.native status    # JSON: running, pid, url
    python -m infra.airflow.native dag-test  # `airflow dags test lakehouse` in a temp AIRFLOW_HOME

Settings come from two env files (real environment variables win):
- ``--airflow-env`` (default ``envs/airflow.env``): ports, schedule, retries, timeouts;
- ``--lake-env`` (default ``envs/stack.env``): where the lake is (the local S3 stack, started by
  ``make stack-up``); handed to the tasks as ``LAKEHOUSE_ENV_FILE``.

``airflow standalone`` runs the scheduler (LocalExecutor, parallelism 4), the DAG processor, the
triggerer and the API server/UI with SQLite metadata in ``AIRFLOW_HOME`` (default git-ignored
``.airflow/``). Its admin password is written by Airflow to
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``, 0600 in a 0700 home (Airflow runs
with umask 077, see :func:`private_home`). It runs with the project's
virtualenv (:mod:`infra.airflow.config` reads the env files with python-dotenv,
:mod:`infra.processes` finds processes by the PID they recorded) and starts Airflow from it.

A second copy of the dev stack (``STACK_PORT_OFFSET``) moves Airflow's ports, and the tasks are
handed the S3 endpoint of that copy (``AWS_ENDPOINT_URL``, a loopback one moved by the offset,
as :class:`infra.stack.settings.StackSettings` moves it for the stack itself): the product's
settings know nothing of the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from infra import processes
from infra.airflow.config import ROOT, Config, Failure, read_env_file, venv_bin
from infra.stack.security import FILE_MODE, private_dir, write_private
from infra.stack.settings import shift_port
from jobs.settings import is_loopback

__all__ = ["Config", "Failure", "admin_password", "main", "recorded_pid", "request", "token", "venv_bin"]
DAG_ID = "lakehouse"
MAINTENANCE_DAG_ID = "lakehouse_maintenance"
UMASK = 0o077  # every file Airflow writes (password file, DB, logs) owner-only from its first byte


# -- process helpers ----------------------------------------------------------------------------
def recorded_pid(cfg: Config) -> int | None:
    """The standalone PID from the pid file, if that process still runs ``airflow standalone``."""
    return processes.recorded_pid(cfg.pid_path, b"airflow", b"standalone")


# -- REST ---------------------------------------------------------------------------------------
def request(
    url: str, *, method: str = "GET", body: object = None, token: str | None = None, timeout: float = 30.0
) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if not url.startswith(("http://", "https://")):
        raise Failure(f"not an HTTP URL: {url}")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http only)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http only)
            text = resp.read().decode()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text


def admin_password(cfg: Config) -> str:
    users = json.loads(cfg.password_path.read_text())
    return users[cfg.values["AIRFLOW_ADMIN_USER"]]


def token(cfg: Config) -> str:
    user = cfg.values["AIRFLOW_ADMIN_USER"]
    status, body = request(
        f"{cfg.url}/auth/token", method="POST", body={"username": user, "password": admin_password(cfg)}
    )
    if status not in (200, 201) or not isinstance(body, dict):
        raise Failure(f"POST {cfg.url}/auth/token as {user} answered {status}: {body}")
    return str(body["access_token"])


def wait_until(
    what: str, check: Callable[[], object], timeout: float, cfg: Config, pid: int | None = None
) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if pid is not None and not processes.alive(pid):
            raise Failure(f"airflow standalone exited while waiting for {what}; see {cfg.log_path}")
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, KeyError, Failure) as exc:
            last = exc
        time.sleep(0.5)
    raise Failure(f"timed out after {timeout:.0f}s waiting for {what} ({last}); see {cfg.log_path}")


# -- commands -----------------------------------------------------------------------------------
def up(cfg: Config, timeout: float = 180.0) -> int:
    try:
        preflight_lake(cfg)
    except Failure as exc:  # Airflow can start anyway; the DAG's runs fail until the store answers
        print(f"warning: {exc}", file=sys.stderr)
    pid = recorded_pid(cfg)
    if pid:
        print(f"airflow standalone already running (pid {pid})")
    else:
        ports = [
            cfg.api_port,
            cfg.port("AIRFLOW_WORKER_LOG_SERVER_PORT"),
            cfg.port("AIRFLOW_TRIGGER_LOG_SERVER_PORT"),
        ]
        busy = processes.busy_ports(ports)
        if busy:
            raise Failure(
                f"port(s) {busy} on 127.0.0.1 are in use: change AIRFLOW_*_PORT in "
                f"{cfg.airflow_env} (or stop what listens there)"
            )
        private_home(cfg)
        started = time.monotonic()
        fd = os.open(cfg.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        with os.fdopen(fd, "ab") as log:
            proc = subprocess.Popen(
                [str(cfg.bin / "airflow"), "standalone"],
                env=cfg.environment(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                umask=UMASK,
            )
        pid = proc.pid
        write_private(cfg.pid_path, f"{pid}\n")
        print(f"started airflow standalone (pid {pid}); log {cfg.log_path}", flush=True)
        try:
            _wait_started(cfg, pid, started, timeout)
        except BaseException:
            processes.stop_group(pid)
            cfg.pid_path.unlink(missing_ok=True)
            print(f"stopped airflow standalone (pid {pid}) again", file=sys.stderr)
            raise
    _unpause(cfg, pid, timeout)
    return 0


def private_home(cfg: Config) -> Path:
    """AIRFLOW_HOME owner-only: created 0700 (an existing one tightened to 0700), and what an
    older start left readable to others (the admin password file, the metadata DB, the log, the
    PID file) made 0600. Airflow itself then runs with umask 077 (:data:`UMASK`), so every file
    it writes, the generated password file first of all, is 0600 from its first byte."""
    private_dir(cfg.home)
    for path in (cfg.password_path, cfg.home / "airflow.db", cfg.log_path, cfg.pid_path):
        if path.is_file() and not path.is_symlink():
            path.chmod(FILE_MODE)
    return cfg.home


def _wait_started(cfg: Config, pid: int, started: float, timeout: float) -> None:
    def healthy() -> bool:
        status, body = request(f"{cfg.url}/api/v2/monitor/health", timeout=3)
        return (
            status == 200
            and isinstance(body, dict)
            and all((body.get(c) or {}).get("status") == "healthy" for c in ("metadatabase", "scheduler"))
        )

    wait_until("the API server and scheduler", healthy, timeout, cfg, pid)
    print(f"API server and scheduler healthy after {time.monotonic() - started:.0f}s", flush=True)


def _unpause(cfg: Config, pid: int | None, timeout: float) -> None:
    wait_until("the admin password file", cfg.password_path.is_file, 60, cfg, pid)
    bearer = token(cfg)

    def dag_parsed() -> bool:
        status, _ = request(f"{cfg.url}/api/v2/dags/{DAG_ID}", token=bearer)
        return status == 200

    wait_until(f"the DAG {DAG_ID} to be parsed", dag_parsed, timeout, cfg, pid)
    status, body = request(
        f"{cfg.url}/api/v2/dags/{DAG_ID}", method="PATCH", body={"is_paused": False}, token=bearer
    )
    if status != 200:
        raise Failure(f"could not unpause {DAG_ID}: {status} {body}")
    # The maintenance DAG runs on its own daily schedule (02:30 UTC by default): unpaused, it waits
    # for its next tick (no start_date), so it never meets the pipeline's first tick.
    found, _ = request(f"{cfg.url}/api/v2/dags/{MAINTENANCE_DAG_ID}", token=bearer)
    if found == 200:
        request(
            f"{cfg.url}/api/v2/dags/{MAINTENANCE_DAG_ID}",
            method="PATCH",
            body={"is_paused": False},
            token=bearer,
        )
    schedule = (
        body.get("timetable_description") or body.get("timetable_summary") if isinstance(body, dict) else None
    )
    print()
    print("Airflow is up (native, no Docker):")
    print(f"  UI / REST API   {cfg.url}   (user {cfg.values['AIRFLOW_ADMIN_USER']})")
    print(f"  admin password  {cfg.password_path}")
    print(
        f"  DAG             {DAG_ID}, unpaused, schedule {cfg.values['LAKEHOUSE_SCHEDULE']!r}"
        + (f" ({schedule})" if schedule else "")
    )
    if found == 200:
        print(f"  DAG             {MAINTENANCE_DAG_ID}, unpaused, first run at its next scheduled time")
    print(f"  lake settings   {cfg.lake_env}")
    print(f"  AIRFLOW_HOME    {cfg.home}   (log {cfg.log_path})")
    print(f"Stop it with: make airflow-down{cfg.make_args()}")


def down(cfg: Config) -> int:
    pid = recorded_pid(cfg)
    if pid is None:
        cfg.pid_path.unlink(missing_ok=True)
        print("airflow standalone is not running")
        return 0
    processes.stop_group(pid)
    cfg.pid_path.unlink(missing_ok=True)
    print(f"stopped airflow standalone (process group {pid})")
    return 0


def status(cfg: Config) -> int:
    pid = recorded_pid(cfg)
    print(
        json.dumps(
            {
                "running": pid is not None,
                "pid": pid,
                "url": cfg.url,
                "airflow_home": str(cfg.home),
                "airflow_env": str(cfg.airflow_env),
                "lake_env": str(cfg.lake_env),
                "stack_port_offset": cfg.offset,
            }
        )
    )
    return 0 if pid else 1


def preflight_lake(cfg: Config) -> None:
    """Fail early with one line if the lake's object store does not answer at all."""
    lake = read_env_file(cfg.lake_env)
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or lake.get("AWS_ENDPOINT_URL")
    remote = any(v.startswith("s3://") for k, v in lake.items() if k.startswith("LAKE_"))
    if not (endpoint and remote):
        return
    if cfg.offset and is_loopback(endpoint):  # the tasks are handed it moved (lake_endpoint)
        endpoint = shift_port(endpoint, cfg.offset)
    parsed = urlparse(endpoint)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 80), timeout=3).close()
    except OSError as exc:
        raise Failure(
            f"nothing answers at {endpoint} ({exc.strerror or exc}): start the object "
            f"store first (make stack-up), or check AWS_ENDPOINT_URL in {cfg.lake_env}"
        ) from None


# `airflow dags test` (Airflow 3.3.2) fails a DAG with a deadline alert when the run ends: it hands
# the alert's serialized dict where the scheduler hands its id ("'dict' object has no attribute
# 'hex'"). A run in the foreground needs no deadline, so dags test runs with the alert off.
DAGS_TEST_ENV = {"LAKEHOUSE_DEADLINE_MINUTES": "0"}


def dag_test(cfg: Config, keep: bool = False) -> int:
    preflight_lake(cfg)
    home = Path(tempfile.mkdtemp(prefix="airflow-dag-test-"))
    env = cfg.environment(home) | DAGS_TEST_ENV
    try:
        started = time.monotonic()
        migrate = subprocess.run(
            [str(cfg.bin / "airflow"), "db", "migrate"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            umask=UMASK,
        )
        if migrate.returncode:
            sys.stderr.write(migrate.stdout + migrate.stderr)
            raise Failure(f"airflow db migrate failed in {home}")
        print(f"metadata DB ready in {time.monotonic() - started:.0f}s ({home})", flush=True)
        run = subprocess.run(
            [str(cfg.bin / "airflow"), "dags", "test", DAG_ID], env=env, cwd=ROOT, umask=UMASK
        )
        print(
            f"airflow dags test {DAG_ID}: {'success' if run.returncode == 0 else 'FAILED'} in "
            f"{time.monotonic() - started:.0f}s (lake: {cfg.lake_env})"
        )
        return run.returncode
    finally:
        if keep:
            print(f"kept AIRFLOW_HOME {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.airflow.native", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "dag-test"])
    parser.add_argument("--airflow-env", type=Path, default=ROOT / "envs" / "airflow.env")
    parser.add_argument("--lake-env", type=Path, default=ROOT / "envs" / "stack.env")
    parser.add_argument(
        "--lake-keys",
        type=Path,
        default=None,
        help="env file with the pipeline identity's keys (.stack/keys/pipeline.env)",
    )
    parser.add_argument("--home", type=Path, help="AIRFLOW_HOME (default $AIRFLOW_HOME or .airflow/)")
    parser.add_argument("--timeout", type=float, default=180.0, help="up: seconds to wait")
    parser.add_argument("--keep", action="store_true", help="dag-test: keep the temp AIRFLOW_HOME")
    args = parser.parse_args(argv)
    try:
        cfg = Config(args.airflow_env, args.lake_env, args.home, lake_keys=args.lake_keys)
        if args.command == "up":
            return up(cfg, args.timeout)
        if args.command == "down":
            return down(cfg)
        if args.command == "status":
            return status(cfg)
        return dag_test(cfg, args.keep)
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
