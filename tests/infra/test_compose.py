"""infra/docker-compose.yml cannot run here (no Docker): it is checked statically."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from infra.stack.identities import iam_policies
from jobs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_compose_file_validates_against_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    res = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_depends_on_target_is_a_service(compose: dict[str, Any]) -> None:
    names = set(services(compose))
    for name, svc in services(compose).items():
        deps = svc.get("depends_on", {})
        targets = deps if isinstance(deps, list) else list(deps)
        assert set(targets) <= names, f"{name} depends on unknown {set(targets) - names}"


def test_every_env_file_volume_bind_and_build_path_exists(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, svc in services(compose).items():
        env_files = svc.get("env_file", [])
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            path = entry if isinstance(entry, str) else entry["path"]
            assert (INFRA / path).is_file(), f"{name}: env_file {path} missing"
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source.startswith((".", "/")):
                assert (INFRA / source).exists(), f"{name}: bind source {source} missing"
            else:
                assert source in named, f"{name}: named volume {source} not declared"
        if build := svc.get("build"):
            context = INFRA / (build if isinstance(build, str) else build["context"])
            assert context.is_dir(), f"{name}: build context {context} missing"
            dockerfile = context / (
                build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            )
            assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} missing"


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_every_image_is_pinned_to_a_tag_other_than_latest(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        assert "image" in svc or "build" in svc, f"{name} has neither image nor build"
        if "image" in svc:
            assert _pinned(svc["image"]), f"{name}: image {svc['image']} is not pinned"
    dockerfile = (INFRA / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert bases and all(_pinned(b) for b in bases), bases
    assert not any(_pinned(bad) for bad in ("postgres", "postgres:latest"))


def test_minio_is_the_pinned_quay_image_with_console_health_check_and_named_volume(
    compose: dict[str, Any],
) -> None:
    minio = services(compose)["minio"]
    assert minio["image"].split("@")[0] == "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    assert "9001" in " ".join(minio["command"]) and any("9001" in p for p in minio["ports"])
    assert minio["healthcheck"]["test"]
    assert any(v.startswith("minio-data:") for v in minio["volumes"])
    init = services(compose)["minio-init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert init["restart"] == "no" and "init.sh" in " ".join(init["entrypoint"])
    assert services(compose)["postgres"]["healthcheck"]["test"]


def _environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    return dict(e.split("=", 1) for e in env) if isinstance(env, list) else dict(env)


KEY_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "ADMIN_ACCESS_KEY_ID",
    "ADMIN_SECRET_ACCESS_KEY",
    "ANALYST_ACCESS_KEY_ID",
    "ANALYST_SECRET_ACCESS_KEY",
    "PIPELINE_ACCESS_KEY_ID",
    "PIPELINE_SECRET_ACCESS_KEY",
)


def test_no_env_file_holds_object_store_keys_and_every_key_is_a_required_override(
    compose: dict[str, Any],
) -> None:
    for name in ("docker.env", "docker-airflow.env", "stack.env"):
        values = dotenv_values(ROOT / "envs" / name)
        assert not set(values) & set(KEY_VARIABLES), name
    for name, svc in services(compose).items():
        for var, value in _environment(svc).items():
            if var in KEY_VARIABLES:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), (name, var, value)


def test_each_service_gets_only_its_own_identitys_keys(compose: dict[str, Any]) -> None:
    def keys(name: str) -> set[str]:
        return {v for v in _environment(services(compose)[name]) if v in KEY_VARIABLES}

    pipeline = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    root = {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    assert keys("minio") == root
    assert root < keys("minio-init")  # root only there: it creates the scoped users
    for name in ("pipeline", "pipeline-dask", "dask-worker", "airflow-scheduler"):
        assert keys(name) == pipeline, name
        env = _environment(services(compose)[name])
        assert "PIPELINE_ACCESS_KEY_ID" in env["AWS_ACCESS_KEY_ID"]
    for name in set(services(compose)) - {
        "minio",
        "minio-init",
        "pipeline",
        "pipeline-dask",
        "dask-worker",
        "airflow-scheduler",
    }:
        assert not keys(name), name
    script = (INFRA / "minio" / "init.sh").read_text()
    assert 'mc alias set lake "$AWS_ENDPOINT_URL" "$MINIO_ROOT_USER"' in script
    assert "lakehouse-admin" in script and "admin-policy.json" in script


def test_dask_runs_on_the_internal_network_only_with_health_checks(
    compose: dict[str, Any],
) -> None:
    assert compose["networks"]["lake"]["internal"] is True
    assert compose["networks"]["dask"]["internal"] is True
    assert services(compose)["dask-scheduler"]["networks"] == ["dask"]
    for name in ("dask-scheduler", "dask-worker", "pipeline-dask"):
        svc = services(compose)[name]
        assert "dask" in svc["networks"] and "ports" not in svc, name
    for name in ("dask-scheduler", "dask-worker"):
        assert services(compose)[name]["healthcheck"]["test"], name
    assert "lake" in services(compose)["minio"]["networks"]


def test_the_project_image_never_holds_env_files() -> None:
    ignore = (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
    assert "envs/" in ignore and "!envs/" not in ignore
    assert not re.search(r"^COPY\s+envs", (INFRA / "Dockerfile").read_text(), re.MULTILINE)


def test_docker_env_uses_the_same_variables_and_buckets_as_the_native_stack() -> None:
    docker = dotenv_values(ROOT / "envs" / "docker.env")
    stack = dotenv_values(ROOT / "envs" / "stack.env")
    shared = ("LAKE_", "AWS_", "ANALYST_", "ADMIN_")
    assert {k for k in docker if k.startswith(shared)} == {k for k in stack if k.startswith(shared)}
    for layer in ("RAW", "BRONZE", "SILVER", "GOLD"):
        assert docker[f"LAKE_{layer}"] == stack[f"LAKE_{layer}"]


def test_minio_policy_files_match_the_grants_rendered_from_docker_env() -> None:
    values = {k.lower(): v for k, v in dotenv_values(ROOT / "envs" / "docker.env").items()}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    import json

    for identity, policy in iam_policies(settings).items():
        committed = json.loads((INFRA / "minio" / f"{identity}-policy.json").read_text())
        assert committed == policy, (
            f"regenerate: LAKEHOUSE_ENV_FILE=envs/docker.env "
            f"python -m infra.stack.identities infra/minio ({identity})"
        )
    analyst = iam_policies(settings)["analyst"]
    resources = [r for st in analyst["Statement"] for r in st["Resource"]]
    assert all(r.startswith("arn:aws:s3:::gold") for r in resources)
    assert not any("Put" in a for st in analyst["Statement"] for a in st["Action"])


def test_minio_init_script_is_posix_sh_and_names_existing_policy_files() -> None:
    script = (INFRA / "minio" / "init.sh").read_text()
    res = subprocess.run(
        ["sh", "-n", str(INFRA / "minio" / "init.sh")], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, res.stderr
    for name in re.findall(r'"\$here/([\w.-]+)"', script):
        assert (INFRA / "minio" / name).is_file(), name
    assert "python -m infra.stack seed" in script


def test_project_image_copies_and_admits_every_file_the_seed_command_imports() -> None:
    """minio-init runs ``python -m infra.stack seed`` in the project image: each ``infra`` module
    that command loads must be copied by infra/Dockerfile and let through its .dockerignore."""
    from tests.infra.test_layout import import_graph, modules

    graph, files = import_graph(), modules()
    loaded, todo = set(), ["infra.stack.__main__", "infra.compose.dask_tls"]  # minio-init, dask-tls
    while todo:  # what the command imports, lazily too, and the packages around each module
        name = todo.pop()
        if name not in loaded:
            loaded.add(name)
            parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
            todo += [*graph[name], *parents]
    needed = sorted(files[m].relative_to(ROOT).as_posix() for m in loaded if m.startswith("infra"))
    assert {"infra/__init__.py", "infra/processes.py", "infra/stack/seed.py"} <= set(needed)
    copies = [
        line.split()[1:-1]
        for line in (INFRA / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    ]
    sources = [src.rstrip("/") for srcs in copies for src in srcs]
    allowed = [
        line[1:].rstrip("/")
        for line in (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for path in needed:
        assert any(path == s or path.startswith(s + "/") for s in sources), f"not copied: {path}"
        assert any(path == a or path.startswith(a + "/") for a in allowed), f"ignored: {path}"
