"""A real S3 server for the integration tests: SeaweedFS ``weed mini`` on free loopback ports.

One server per test session, in a temp dir, with three identities besides the admin: the
pipeline (read raw, read/write bronze, silver, gold), the analyst (read gold) — both scoped to the
buckets ``raw``, ``bronze``, ``silver``, ``gold`` — and it is stopped by PID afterwards. Each test
works under its own prefix inside those buckets (``s3://raw/<name>`` …), so tests never see each
other's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.stack.settings import StackSettings
from infra.stack.weed import WeedPorts, WeedServer
from jobs.run import RunContext
from jobs.settings import Settings

KEYS = {
    "admin": ("test-admin", "test-admin-secret"),
    "pipeline": ("test-pipeline", "test-pipeline-secret"),
    "analyst": ("test-analyst", "test-analyst-secret"),
}
LAYERS = ("raw", "bronze", "silver", "gold")


def stack_settings(directory: Path, ports: WeedPorts, **overrides: Any) -> StackSettings:
    """Settings of a stack with these ports (the product's settings and the stack's), built
    without any env file or environment."""
    values: dict[str, Any] = {
        **{f"lake_{layer}": f"s3://{layer}" for layer in LAYERS},
        "lake_export": "",
        "aws_endpoint_url": f"http://127.0.0.1:{ports.s3}",
        "aws_access_key_id": KEYS["pipeline"][0],
        "aws_secret_access_key": KEYS["pipeline"][1],
        "aws_region": "us-east-1",
        "aws_allow_http": True,
        "admin_access_key_id": KEYS["admin"][0],
        "admin_secret_access_key": KEYS["admin"][1],
        "analyst_access_key_id": KEYS["analyst"][0],
        "analyst_secret_access_key": KEYS["analyst"][1],
        "stack_dir": str(directory),
        "stack_master_port": ports.master,
        "stack_master_grpc_port": ports.master_grpc,
        "stack_volume_port": ports.volume,
        "stack_volume_grpc_port": ports.volume_grpc,
        "stack_filer_port": ports.filer,
        "stack_filer_grpc_port": ports.filer_grpc,
        "stack_s3_grpc_port": ports.s3_grpc,
        "stack_admin_port": ports.admin,
        "stack_console_port": ports.console,
        "lookback_mode": "calendar",
        "lookback_weeks": 3,
        "gold_buckets": 0,
    }
    return StackSettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def env_lines(settings: Settings, *, own_keys_only: bool = False) -> str:
    """The settings as an env file (what a person would put in envs/*.env); ``own_keys_only``
    leaves out the other identities' keys (ADMIN_*, ANALYST_*), as a pipeline process gets."""
    import json

    lines = []
    for name, value in settings.model_dump(exclude_defaults=True).items():
        if value is None or (own_keys_only and name.startswith(("admin_", "analyst_"))):
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | tuple | dict | set):
            value = json.dumps(list(value) if isinstance(value, tuple | set) else value)
        lines.append(f"{name.upper()}={value}")
    return "\n".join(lines) + "\n"


@dataclass
class S3Stack:
    """The session's server plus helpers to give each test its own lake prefix."""

    server: WeedServer
    base: StackSettings  # bucket-level locations: what the identities file was written from

    def lake(self, name: str | None = None, **overrides: Any) -> Settings:
        """Settings for a fresh lake under ``s3://<layer>/<name>`` as the pipeline identity."""
        prefix = name or f"t-{uuid.uuid4().hex[:8]}"
        locations = {f"lake_{layer}": f"s3://{layer}/{prefix}" for layer in LAYERS}
        return stack_settings(self.server.directory, self.server.ports, **(locations | overrides))

    @staticmethod
    def as_identity(settings: Settings, identity: str) -> Settings:
        key, secret = KEYS[identity]
        update = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        return Settings(_env_file=None, **(settings.model_dump() | update))  # type: ignore[call-arg]

    @staticmethod
    def env_file(settings: Settings, path: Path) -> Path:
        """An env file with one identity's keys only (``settings.aws_*``), as processes get."""
        path.write_text(env_lines(settings, own_keys_only=True))
        return path


def start_server(directory: Path) -> tuple[WeedServer, Settings]:
    ports = WeedPorts.free()
    settings = stack_settings(directory, ports)
    server = WeedServer(directory, ports)
    server.start(settings)
    try:
        server.wait_ready(settings)
    except Exception:
        server.stop()
        raise
    return server, settings


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Stack]:
    directory = tmp_path_factory.mktemp("weed")
    server, settings = start_server(directory)
    try:
        from infra.stack.seed import Seeder, SeedReport

        Seeder(settings).ensure_buckets(SeedReport())
        yield S3Stack(server, settings)
    finally:
        server.stop(timeout=5)  # throw-away data: no need to wait for a slow graceful stop


@pytest.fixture(autouse=True)
def _no_stack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported envs/stack.env must not leak into these tests."""
    import os

    for var in list(os.environ):
        if var.startswith(("STACK_", "ADMIN_", "ANALYST_", "AWS_")):
            monkeypatch.delenv(var, raising=False)


def context(settings: Settings) -> RunContext:
    return RunContext(settings)
