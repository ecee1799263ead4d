"""The native Airflow launcher's configuration (:mod:`infra.airflow.native`): its two env files
(python-dotenv reads them; real environment variables win), its ports moved by
``STACK_PORT_OFFSET``, its ``AIRFLOW_HOME`` and the environment every Airflow process gets."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dotenv import dotenv_values

from infra.stack.settings import shift_port
from jobs.settings import is_loopback

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = "simple_auth_manager_passwords.json.generated"
DEFAULTS = {
    "AIRFLOW_API_PORT": "18080",
    "AIRFLOW_WORKER_LOG_SERVER_PORT": "18793",
    "AIRFLOW_TRIGGER_LOG_SERVER_PORT": "18794",
    "AIRFLOW_PARALLELISM": "4",
    "AIRFLOW_ADMIN_USER": "admin",
    "LAKEHOUSE_SCHEDULE": "*/5 * * * *",
    # A second copy of the dev stack: every port here moves by this much, as the S3 stack's do.
    "STACK_PORT_OFFSET": "0",
}


class Failure(Exception):
    """A problem a person can fix; printed as one line."""


def read_env_file(path: Path) -> dict[str, str]:
    """An env file's ``KEY=value`` settings (python-dotenv: comments, quotes, ``export``)."""
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def venv_bin() -> Path:
    """The project virtualenv's bin (where ``airflow`` lives), else this Python's."""
    for candidate in (ROOT / ".venv" / "bin", Path(sys.executable).parent):
        if (candidate / "airflow").is_file():
            return candidate
    found = shutil.which("airflow")
    if found:
        return Path(found).parent
    raise Failure("the airflow command is missing: install the requirements (make venv)")


class Config:
    def __init__(
        self,
        airflow_env: Path,
        lake_env: Path,
        home: Path | None = None,
        overrides: dict[str, str] | None = None,
        lake_keys: Path | None = None,
    ) -> None:
        if not airflow_env.is_file():
            raise Failure(f"env file {airflow_env} not found")
        if not lake_env.is_file():
            raise Failure(f"lake env file {lake_env} not found (e.g. envs/stack.env)")
        if lake_keys is not None and not lake_keys.is_file():
            raise Failure(f"pipeline keys {lake_keys} not found: start the stack first (make stack-up)")
        self.airflow_env = airflow_env.resolve()
        self.lake_env = lake_env.resolve()
        # The pipeline identity's keys only (never the admin's or the analyst's), when separate.
        self.lake_keys = lake_keys.resolve() if lake_keys is not None else None
        file_values = read_env_file(self.airflow_env)
        lake_offset = read_env_file(self.lake_env).get("STACK_PORT_OFFSET")
        # Real environment variables win over the files, the files over the defaults.
        self.values = {
            **DEFAULTS,
            **({"STACK_PORT_OFFSET": lake_offset} if lake_offset else {}),
            **file_values,
            **{k: os.environ[k] for k in {*DEFAULTS, *file_values} if k in os.environ},
            **(overrides or {}),
        }
        default_home = ROOT / (f".airflow-{self.offset}" if self.offset else ".airflow")
        self.home = (home or Path(os.environ.get("AIRFLOW_HOME") or default_home)).resolve()
        self.bin = venv_bin()

    def port(self, name: str) -> int:
        """The port setting ``name``, moved by STACK_PORT_OFFSET."""
        try:
            return int(self.values[name]) + self.offset
        except (KeyError, ValueError):
            raise Failure(f"{name}={self.values.get(name)!r} in {self.airflow_env} is not a port") from None

    @property
    def offset(self) -> int:
        try:
            return int(self.values.get("STACK_PORT_OFFSET") or 0)
        except ValueError:
            raise Failure(f"STACK_PORT_OFFSET={self.values['STACK_PORT_OFFSET']!r} is not a number") from None

    def make_args(self) -> str:
        """The make variables a hint needs to reach this Airflow again (non-default ones only)."""
        args = []
        for var, path, default in (
            ("AIRFLOW_ENV", self.airflow_env, "envs/airflow.env"),
            ("AIRFLOW_LAKE_ENV", self.lake_env, "envs/stack.env"),
        ):
            if path != (ROOT / default).resolve():
                args.append(f"{var}={path}")
        if self.offset:
            args.append(f"STACK_PORT_OFFSET={self.offset}")
        return "".join(f" {a}" for a in args)

    def lake_endpoint(self) -> dict[str, str]:
        """``AWS_ENDPOINT_URL`` for the tasks of a second stack: the lake env file's loopback
        endpoint moved by the offset (empty without an offset, or for another endpoint)."""
        endpoint = read_env_file(self.lake_env).get("AWS_ENDPOINT_URL")
        if not (self.offset and endpoint and is_loopback(endpoint)):
            return {}
        return {"AWS_ENDPOINT_URL": shift_port(endpoint, self.offset)}

    @property
    def api_port(self) -> int:
        return self.port("AIRFLOW_API_PORT")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid_path(self) -> Path:
        return self.home / "standalone.pid"

    @property
    def log_path(self) -> Path:
        return self.home / "standalone.log"

    @property
    def password_path(self) -> Path:
        return self.home / PASSWORDS

    def environment(self, home: Path | None = None) -> dict[str, str]:
        """The environment of every Airflow process (and so of the tasks)."""
        home = home or self.home
        env = dict(os.environ)
        # Pass the lake through LAKEHOUSE_ENV_FILE only: no stray LAKE_*/AWS_* of this shell.
        for var in list(env):
            if var.startswith(("LAKE_", "AWS_", "STACK_", "ADMIN_", "ANALYST_")):
                del env[var]
        env.update({k: v for k, v in self.values.items() if not k.startswith("AIRFLOW_")})
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
                "LAKEHOUSE_ENV_FILE": ",".join(str(p) for p in (self.lake_env, self.lake_keys) if p),
                **self.lake_endpoint(),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": self.values["AIRFLOW_PARALLELISM"],
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.values['AIRFLOW_ADMIN_USER']}:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.port("AIRFLOW_WORKER_LOG_SERVER_PORT")),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(
                    self.port("AIRFLOW_TRIGGER_LOG_SERVER_PORT")
                ),
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            }
        )
        return env
