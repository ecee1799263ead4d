"""The Airflow services of infra/docker-compose.yml, checked statically (no Docker here).

The compose spec validation and the generic checks (paths, pinned images, depends_on targets)
are in tests/infra/test_compose.py; these are the Airflow-specific ones.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCKERFILE = INFRA / "airflow.Dockerfile"
AIRFLOW = (
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def env() -> dict[str, str | None]:
    return dotenv_values(ROOT / "envs" / "docker.env")


@pytest.fixture(scope="module")
def airflow_env() -> dict[str, str | None]:
    return dotenv_values(ROOT / "envs" / "docker-airflow.env")


def test_all_airflow_services_use_the_airflow_image_and_the_docker_env(services: dict) -> None:
    for name in AIRFLOW:
        svc = services[name]
        assert svc["image"] == "lakehouse-airflow:0.1.0"
        assert svc["build"] == {"context": "..", "dockerfile": "infra/airflow.Dockerfile"}
        assert svc["env_file"] == ["../envs/docker.env", "../envs/docker-airflow.env"]
        assert "../dags:/opt/airflow/dags:ro" in svc["volumes"]
    assert [services[n]["command"] for n in AIRFLOW[1:]] == [
        ["api-server"],
        ["scheduler"],
        ["dag-processor"],
        ["triggerer"],
    ]


def test_init_runs_first_after_postgres_and_minio_init(services: dict) -> None:
    init = services["airflow-init"]
    assert init["restart"] == "no"
    assert "compose-init.sh" in " ".join(init["entrypoint"])
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert init["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    for name in AIRFLOW[1:]:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"
        assert deps["minio-init"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped"


def test_the_ui_is_published_on_loopback_only(services: dict) -> None:
    assert services["airflow-api-server"]["ports"] == ["127.0.0.1:8080:8080"]
    for name in AIRFLOW:
        if name != "airflow-api-server":
            assert "ports" not in services[name]


def test_the_image_is_the_pinned_official_airflow_3_plus_the_lock_and_the_package() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert [b.split("@")[0] for b in bases] == ["apache/airflow:3.3.2-python3.11"]  # digest: make compose-pin
    pinned = re.search(
        r"^apache-airflow==([^\s\\]+)", (ROOT / "requirements.txt").read_text(), flags=re.MULTILINE
    )
    assert pinned and pinned.group(1) == "3.3.2"
    assert "-r /opt/lakehouse/requirements.txt" in text
    assert "pip install --no-cache-dir --no-deps /opt/lakehouse" in text
    # every COPY source is in the build context the .dockerignore lets through
    ignore = (INFRA / "airflow.Dockerfile.dockerignore").read_text().split()
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s", text, flags=re.MULTILINE):
        assert (ROOT / source).exists(), source
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source


def test_airflow_is_wired_to_postgres_and_the_lake_with_generated_secrets(
    services: dict, env: dict, airflow_env: dict
) -> None:
    postgres = services["postgres"]["environment"]
    for name in AIRFLOW:
        secrets = services[name]["environment"]
        # as compose interpolates it (a generated password is URL-safe)
        url = re.sub(r"\$\{(\w+):\?[^}]*\}", r"urlsafe-\1", secrets["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        conn = urlparse(url)
        assert conn.scheme.startswith("postgresql")
        assert (conn.hostname, conn.username, conn.path.lstrip("/")) == (
            "postgres",
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_DB"],
        )
        assert conn.password == "urlsafe-POSTGRES_PASSWORD"
        assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
        for var, source in (
            ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY"),
            ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET"),
            ("AIRFLOW__API__SECRET_KEY", "AIRFLOW_API_SECRET_KEY"),
        ):
            assert secrets[var].startswith(f"${{{source}:?"), (name, var)
    assert "AIRFLOW_ADMIN_PASSWORD" in services["airflow-init"]["environment"]
    assert airflow_env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert airflow_env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-api-server:8080")
    assert (
        airflow_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        == f"{airflow_env['AIRFLOW_ADMIN_USER']}:admin"
    )
    assert airflow_env["LAKEHOUSE_SCHEDULE"] == "*/5 * * * *"
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["LAKE_RAW"].startswith("s3://")


def test_compose_init_script_is_posix_sh() -> None:
    script = INFRA / "airflow" / "compose-init.sh"
    res = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "airflow db migrate" in script.read_text()
