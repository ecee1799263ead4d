"""STACK_PORT_OFFSET: one switch moves every port of a second dev stack (S3 and Airflow)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.airflow.native import Config
from infra.stack.settings import STACK_PORTS, StackSettings
from infra.stack.weed import WeedPorts
from jobs.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def settings(**values: object) -> StackSettings:
    return StackSettings(_env_file=None, **values)  # type: ignore[call-arg,arg-type]


@pytest.fixture(autouse=True)
def _no_offset_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STACK_PORT_OFFSET", "STACK_DIR", "AWS_ENDPOINT_URL", "AIRFLOW_HOME", "AIRFLOW_API_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_an_offset_moves_every_stack_port_the_loopback_endpoint_and_the_stack_dir() -> None:
    assert settings(stack_dir=".stack", stack_port_offset=3).stack_dir == ".stack-3"  # as envs/stack.env
    base = settings(aws_endpoint_url="http://127.0.0.1:18333")
    moved = settings(aws_endpoint_url="http://127.0.0.1:18333", stack_port_offset=100)
    for name in STACK_PORTS:
        assert getattr(moved, name) == getattr(base, name) + 100, name
    assert moved.aws_endpoint_url == "http://127.0.0.1:18433"
    assert moved.stack_dir == ".stack-100"
    ports = WeedPorts.from_settings(moved)
    assert [p - 100 for p in ports.all()] == WeedPorts.from_settings(base).all()


def test_an_offset_applies_once_when_settings_are_rebuilt_from_a_dump() -> None:
    moved = settings(aws_endpoint_url="http://localhost:18333", stack_port_offset=7, stack_master_port=20000)
    again = type(moved)(**moved.model_dump())
    assert (again.stack_master_port, again.aws_endpoint_url) == (20007, "http://localhost:18340")
    assert again.stack_port_offset == 0


def test_an_offset_leaves_a_remote_endpoint_and_an_explicit_stack_dir_alone() -> None:
    moved = settings(aws_endpoint_url="https://s3.example.net", stack_port_offset=5, stack_dir="/srv/stack")
    assert moved.aws_endpoint_url == "https://s3.example.net"
    assert moved.stack_dir == "/srv/stack"


def test_the_offset_moves_airflows_ports_and_home_and_its_hints_repeat_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow_env = tmp_path / "airflow.env"
    airflow_env.write_text("AIRFLOW_API_PORT=18080\nAIRFLOW_WORKER_LOG_SERVER_PORT=18793\n")
    lake_env = tmp_path / "lake.env"
    lake_env.write_text("STACK_PORT_OFFSET=100\n")
    cfg = Config(airflow_env=airflow_env, lake_env=lake_env)
    assert cfg.api_port == 18180 and cfg.port("AIRFLOW_WORKER_LOG_SERVER_PORT") == 18893
    assert cfg.home.name == ".airflow-100"
    assert "STACK_PORT_OFFSET=100" in cfg.make_args() and f"AIRFLOW_ENV={airflow_env}" in cfg.make_args()
    monkeypatch.setenv("STACK_PORT_OFFSET", "0")  # the environment wins over the files
    assert Config(airflow_env=airflow_env, lake_env=lake_env).api_port == 18080


def test_make_targets_of_a_second_stack_use_its_own_keys_directory() -> None:
    out = subprocess.run(
        ["make", "-n", "run-s3", "dag-test", "STACK_PORT_OFFSET=100", "STAMP=Makefile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".stack-100/keys/pipeline.env" in out
    assert ".stack/keys" not in out
    # the pipeline reads that stack's endpoint (written by its stack-up) before its keys
    assert "LAKEHOUSE_ENV_FILE=envs/stack.env,.stack-100/endpoint.env,.stack-100/keys/pipeline.env" in out


def test_the_product_settings_know_nothing_of_the_stack() -> None:
    product = Settings(_env_file=None, aws_endpoint_url="http://127.0.0.1:18333", stack_port_offset=100)  # type: ignore[call-arg]
    assert product.aws_endpoint_url == "http://127.0.0.1:18333"  # STACK_* are ignored there
    assert not {name for name in Settings.model_fields if name.startswith(("stack_", "bench_", "dask_fail"))}


def test_a_second_stacks_endpoint_file_hands_the_pipeline_the_moved_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.stack.__main__ import write_endpoint_file
    from infra.stack.weed import WeedServer
    from jobs.settings import load_settings

    stack = settings(
        aws_endpoint_url="http://127.0.0.1:18333", stack_port_offset=100, stack_dir=str(tmp_path / "s")
    )
    path = write_endpoint_file(stack, WeedServer.from_settings(stack))
    assert path == (tmp_path / "s" / "endpoint.env").resolve() and path.stat().st_mode & 0o077 == 0
    shared = tmp_path / "stack.env"
    shared.write_text("AWS_ENDPOINT_URL=http://127.0.0.1:18333\nSTACK_PORT_OFFSET=100\n")
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", f"{shared},{path}")
    assert load_settings().aws_endpoint_url == "http://127.0.0.1:18433"


def test_airflow_hands_the_tasks_of_a_second_stack_its_moved_endpoint(tmp_path: Path) -> None:
    airflow_env = tmp_path / "airflow.env"
    airflow_env.write_text("AIRFLOW_API_PORT=18080\n")
    lake_env = tmp_path / "lake.env"
    lake_env.write_text("AWS_ENDPOINT_URL=http://127.0.0.1:18333\nSTACK_PORT_OFFSET=100\n")
    env = Config(airflow_env=airflow_env, lake_env=lake_env).environment(tmp_path / "home")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:18433"
    lake_env.write_text("AWS_ENDPOINT_URL=http://127.0.0.1:18333\n")  # the first stack: as the file says
    assert "AWS_ENDPOINT_URL" not in Config(airflow_env=airflow_env, lake_env=lake_env).environment(tmp_path)
