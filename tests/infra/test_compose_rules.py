"""Each rule of infra/compose/rules.py holds on the real compose file and catches a variant
built to break it; the digest pinning (infra/compose/pin.py) and the secrets file generator
(infra/compose/secrets_env.py) are exercised offline."""

from __future__ import annotations

import base64
import copy
import os
import re
import stat
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from infra.compose import pin, rules, secrets_env

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "docker-compose.yml").read_text())


def test_the_tracked_compose_file_keeps_every_rule() -> None:
    assert rules.check_repository() == []


# -- secrets are required overrides; env files hold none -----------------------------------------
def test_a_literal_or_defaulted_secret_is_refused(compose: dict[str, Any]) -> None:
    assert rules.secrets_are_required_overrides(compose) == []
    literal = copy.deepcopy(compose)
    literal["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "Zq8v7Yx3kP0rLw9s"
    assert any("literal secret" in p for p in rules.secrets_are_required_overrides(literal))
    defaulted = copy.deepcopy(compose)
    defaulted["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] = "${POSTGRES_PASSWORD:-airflow}"
    assert any(":-airflow" in p for p in rules.secrets_are_required_overrides(defaulted))
    bare = copy.deepcopy(compose)  # ${VAR} alone: compose would start with an empty secret
    env = bare["services"]["airflow-api-server"]["environment"]
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "postgresql://airflow:${POSTGRES_PASSWORD}@postgres/airflow"
    assert any("SQL_ALCHEMY_CONN" in p for p in rules.secrets_are_required_overrides(bare))


def test_an_env_file_holding_a_secret_is_refused(compose: dict[str, Any]) -> None:
    def leaky(path: str) -> dict[str, str | None]:
        values = dict(dotenv_values(INFRA / path))
        return {**values, "AIRFLOW__API__SECRET_KEY": "api-secret"} if "airflow" in path else values

    problems = rules.secrets_are_required_overrides(compose, read_env_file=leaky)
    assert problems and all(
        "docker-airflow.env holds secret(s) AIRFLOW__API__SECRET_KEY" in p for p in problems
    )
    for name in ("docker.env", "docker-airflow.env"):  # and the tracked ones hold none
        assert not [v for v in dotenv_values(ROOT / "envs" / name) if rules.secret_named(v)], name


# -- each service only its own secrets ---------------------------------------------------------
@pytest.mark.parametrize(
    ("service", "variable", "secret"),
    [
        ("pipeline", "MINIO_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD"),  # root outside the init container
        ("airflow-api-server", "AWS_SECRET_ACCESS_KEY", "PIPELINE_SECRET_ACCESS_KEY"),
        ("airflow-scheduler", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"),
        ("dask-worker", "ADMIN_SECRET_ACCESS_KEY", "ADMIN_SECRET_ACCESS_KEY"),
        ("minio", "POSTGRES_PASSWORD", "POSTGRES_PASSWORD"),
    ],
)
def test_a_secret_handed_to_a_service_it_is_not_granted_to_is_refused(
    compose: dict[str, Any], service: str, variable: str, secret: str
) -> None:
    assert rules.secret_scope(compose) == []
    bad = copy.deepcopy(compose)
    svc = bad["services"][service]  # a new mapping: YAML anchors share one between services
    svc["environment"] = {**rules.environment(svc), variable: f"${{{secret}:?set it}}"}
    assert [p for p in rules.secret_scope(bad) if p.startswith(f"{service}: gets {secret}")]


def test_a_secret_missing_from_the_grant_table_is_refused_and_the_table_matches_the_generator(
    compose: dict[str, Any],
) -> None:
    bad = copy.deepcopy(compose)
    pipeline = bad["services"]["pipeline"]
    pipeline["environment"] = {**rules.environment(pipeline), "SLACK_TOKEN": "${SLACK_TOKEN:?set it}"}
    assert rules.secret_scope(bad) == [
        "pipeline: SLACK_TOKEN is not in the grant table (infra/compose/rules.py)"
    ]
    assert set(rules.SECRET_GRANTS) == set(secrets_env.GENERATORS)
    named = {
        ref
        for svc in compose["services"].values()
        for value in rules.environment(svc).values()
        for ref, _ in rules.INTERPOLATION.findall(value)
    }
    assert named == set(secrets_env.GENERATORS)  # every generated secret is used, none is missing


def test_minio_root_keys_reach_minio_and_its_init_container_only(compose: dict[str, Any]) -> None:
    holders = {
        name
        for name, svc in compose["services"].items()
        if any("MINIO_ROOT" in v for v in rules.environment(svc).values())
    }
    assert holders == {"minio", "minio-init"}
    script = (INFRA / "minio" / "init.sh").read_text()
    seed_at = script.index("\npython -m infra.stack seed")  # the first command that seeds
    assert (
        script.index("unset MINIO_ROOT_USER MINIO_ROOT_PASSWORD") < seed_at
    )  # seed runs as the scoped admin


# -- published ports -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "port", ["9000:9000", "0.0.0.0:9000:9000", "9000", {"target": 9000, "published": 9000}]
)
def test_a_port_published_beyond_loopback_is_refused(compose: dict[str, Any], port: Any) -> None:
    assert rules.ports_on_loopback(compose) == []
    bad = copy.deepcopy(compose)
    bad["services"]["minio"]["ports"].append(port)
    assert len(rules.ports_on_loopback(bad)) == 1


# -- dask ------------------------------------------------------------------------------------
def test_the_dask_scheduler_is_reachable_by_the_dask_services_only(compose: dict[str, Any]) -> None:
    assert rules.dask_isolated(compose) == []
    published = copy.deepcopy(compose)
    published["services"]["dask-scheduler"]["ports"] = ["127.0.0.1:8786:8786"]
    assert rules.dask_isolated(published) == ["dask-scheduler publishes ports"]
    shared = copy.deepcopy(compose)  # on `lake`, minio (and whoever owns it) could submit tasks
    shared["services"]["dask-scheduler"]["networks"] = ["dask", "lake"]
    assert any("network lake is shared with" in p and "minio" in p for p in rules.dask_isolated(shared))
    routed = copy.deepcopy(compose)
    routed["networks"]["dask"] = {}
    assert rules.dask_isolated(routed) == ["dask-scheduler: network dask is not internal"]
    keyed = copy.deepcopy(compose)
    keyed["services"]["dask-scheduler"]["environment"] = {
        "AWS_SECRET_ACCESS_KEY": "${PIPELINE_SECRET_ACCESS_KEY:?x}"
    }
    assert "dask-scheduler: gets a secret (it runs no task)" in rules.dask_isolated(keyed)
    unchecked = copy.deepcopy(compose)
    del unchecked["services"]["dask-worker"]["healthcheck"]
    assert rules.dask_isolated(unchecked) == ["dask-worker: no health check"]


def test_every_dask_connection_must_be_mutual_tls(compose: dict[str, Any]) -> None:
    plain = copy.deepcopy(compose)
    worker = plain["services"]["dask-worker"]
    worker["command"] = [a.replace("tls://", "tcp://") for a in worker["command"]]
    assert "dask-worker: talks plain tcp:// to the scheduler; use tls://" in rules.dask_isolated(plain)
    no_cert = copy.deepcopy(compose)
    scheduler = no_cert["services"]["dask-scheduler"]
    scheduler["command"] = scheduler["command"][: scheduler["command"].index("--tls-ca-file")]
    assert [
        p for p in rules.dask_isolated(no_cert) if p.startswith("dask-scheduler: not started with its TLS")
    ]
    optional = copy.deepcopy(compose)
    run = optional["services"]["pipeline-dask"]
    run["environment"] = {
        k: v for k, v in rules.environment(run).items() if k != "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"
    }
    assert rules.dask_isolated(optional) == [
        "pipeline-dask: DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION is not true"
    ]


def test_dask_workers_get_the_pipeline_keys_through_their_own_environment(compose: dict[str, Any]) -> None:
    env = rules.environment(compose["services"]["dask-worker"])
    refs = {ref for value in env.values() for ref, _ in rules.INTERPOLATION.findall(value)}
    assert refs == {"PIPELINE_ACCESS_KEY_ID", "PIPELINE_SECRET_ACCESS_KEY"}
    tls = compose["services"]["dask-tls"]  # the certificate issuer: no network, no secret
    assert tls["network_mode"] == "none" and not rules.environment(tls)


# -- images pinned by digest or allow-listed -----------------------------------------------------
def _images(compose: dict[str, Any]) -> dict[str, list[str]]:
    return pin.pulled_images(compose, {p.name: p.read_text() for p in pin.DOCKERFILES})


def test_a_tag_only_image_must_be_allow_listed_with_a_reason(compose: dict[str, Any]) -> None:
    allowed = pin.parse_allow_list(pin.ALLOW_LIST.read_text())
    assert all(reason for reason in allowed.values())
    assert pin.violations(_images(compose), allowed) == []
    bad = copy.deepcopy(compose)
    bad["services"]["postgres"]["image"] = "postgres:18.0"
    problems = pin.violations(_images(bad), allowed)
    assert "postgres:18.0 (compose:postgres) is not pinned by digest: make compose-pin" in problems
    assert any("lists postgres:17.6-bookworm, which nothing uses" in p for p in problems)  # stale entry
    latest = copy.deepcopy(compose)
    latest["services"]["postgres"]["image"] = "postgres:latest"
    assert any(
        "needs a fixed tag" in p for p in pin.violations(_images(latest), {**allowed, "postgres:latest": "x"})
    )
    pinned = copy.deepcopy(compose)
    pinned["services"]["postgres"]["image"] = f"postgres:17.6-bookworm@{DIGEST}"
    rest = {k: v for k, v in allowed.items() if k != "postgres:17.6-bookworm"}
    assert pin.violations(_images(pinned), rest) == []  # a digest needs no entry
    with pytest.raises(ValueError, match="has no reason"):
        pin.parse_allow_list("postgres:17.6-bookworm\n")


def test_every_dockerfile_base_and_pulled_service_image_is_seen(compose: dict[str, Any]) -> None:
    assert pin.dockerfile_bases("FROM a:1 AS build\nFROM build\nFROM scratch\nCOPY --from=build x y\n") == [
        "a:1"
    ]
    assert set(_images(compose)) == {
        "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
        "postgres:17.6-bookworm",
        "python:3.11.7-slim-bookworm",
        "apache/airflow:3.3.2-python3.11",
    }  # lakehouse-jobs / lakehouse-airflow are built, not pulled


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("postgres:17.6-bookworm", ("docker.io", "library/postgres", "17.6-bookworm", "")),
        ("apache/airflow:3.3.2-python3.11", ("docker.io", "apache/airflow", "3.3.2-python3.11", "")),
        ("quay.io/minio/minio:RELEASE.X", ("quay.io", "minio/minio", "RELEASE.X", "")),
        ("localhost:5000/app", ("localhost:5000", "app", "", "")),
        (f"python:3.11@{DIGEST}", ("docker.io", "library/python", "3.11", DIGEST)),
    ],
)
def test_image_references_are_parsed_as_docker_does(ref: str, parsed: tuple[str, ...]) -> None:
    got = pin.ImageRef.parse(ref)
    assert (got.registry, got.repository, got.tag, got.digest) == parsed


def test_rewriting_adds_the_digest_to_whole_references_only_and_once() -> None:
    text = (
        "FROM postgres:17.6 AS db\nimage: postgres:17.6  # c\nimage: mypostgres:17.6\nimage: postgres:17.65\n"
    )
    once = pin.rewrite(text, "postgres:17.6", DIGEST)
    assert once.splitlines() == [
        f"FROM postgres:17.6@{DIGEST} AS db",
        f"image: postgres:17.6@{DIGEST}  # c",
        "image: mypostgres:17.6",
        "image: postgres:17.65",
    ]
    assert pin.rewrite(once, "postgres:17.6", DIGEST) == once
    with pytest.raises(ValueError, match="not a sha256 digest"):
        pin.rewrite(text, "postgres:17.6", "sha256:made-up")
    allow = "# why\npostgres:17.6  # no registry\npython:3.11  # no registry\n"
    assert pin.remove_from_allow_list(allow, "postgres:17.6") == "# why\npython:3.11  # no registry\n"


class FakeRegistry:
    """A registry that wants an anonymous bearer token, as Docker Hub and quay.io do."""

    def __init__(self) -> None:
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(request)
        if request.full_url.startswith("https://auth.example.org/token"):
            return 200, {}, b'{"token": "t0k"}'
        if request.get_header("Authorization") != "Bearer t0k":
            challenge = 'Bearer realm="https://auth.example.org/token",service="registry.example.org"'
            return 401, {"WWW-Authenticate": challenge}, b""
        return 200, {"Docker-Content-Digest": DIGEST}, b""


def test_a_digest_is_resolved_through_the_registrys_token_challenge() -> None:
    registry = FakeRegistry()
    assert pin.resolve_digest("postgres:17.6-bookworm", registry) == DIGEST
    first, token, last = registry.requests
    assert first.full_url == "https://registry-1.docker.io/v2/library/postgres/manifests/17.6-bookworm"
    assert first.get_method() == "HEAD" and "manifest.list.v2+json" in first.get_header("Accept")
    assert "scope=repository%3Alibrary%2Fpostgres%3Apull" in token.full_url
    assert "service=registry.example.org" in token.full_url and last.get_header("Authorization")
    with pytest.raises(RuntimeError, match="no digest"):
        pin.resolve_digest("postgres:17", lambda r: (404, {}, b""))
    plain = 'Bearer realm="http://auth.example.org/token"'
    with pytest.raises(RuntimeError, match="not HTTPS"):
        pin.resolve_digest("postgres:17", lambda r: (401, {"WWW-Authenticate": plain}, b""))


def test_pinning_rewrites_the_files_and_empties_the_allow_list(tmp_path: Path) -> None:
    files = [tmp_path / p.name for p in (pin.COMPOSE_FILE, *pin.DOCKERFILES, pin.ALLOW_LIST)]
    for source, target in zip((pin.COMPOSE_FILE, *pin.DOCKERFILES, pin.ALLOW_LIST), files, strict=True):
        target.write_text(source.read_text())
    compose_file, dockerfile, airflow_dockerfile, allow_list = files
    down = pin.pin(compose_file, [dockerfile, airflow_dockerfile], allow_list, lambda r: (503, {}, b""))
    assert down[0] == {} and len(down[1]) == 4  # nothing reachable: nothing changes, all reported
    assert compose_file.read_text() == pin.COMPOSE_FILE.read_text()
    done, failed = pin.pin(compose_file, [dockerfile, airflow_dockerfile], allow_list, FakeRegistry())
    assert (len(done), failed) == (4, {})
    images = pin.current(compose_file, [dockerfile, airflow_dockerfile])
    assert all(pin.is_digest_pinned(i) for i in images), images
    assert pin.parse_allow_list(allow_list.read_text()) == {}
    assert pin.violations(images, {}) == []
    assert (
        f"FROM quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z@{DIGEST} AS minio" in dockerfile.read_text()
    )
    assert yaml.safe_load(compose_file.read_text())  # still YAML, comments kept
    assert "# The lakehouse on MinIO" in compose_file.read_text()


# -- the secrets file ----------------------------------------------------------------------------
def test_secrets_are_generated_owner_only_from_the_first_byte_and_never_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / ".env"
    modes: list[int] = []
    real_open = os.open

    def recording_open(file: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            modes.append(mode)
        return real_open(file, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    old_umask = os.umask(0)  # the mode must come from the open call, not from a lucky umask
    try:
        assert secrets_env.main(["--path", str(path)]) == 0
    finally:
        os.umask(old_umask)
    assert modes == [0o600] and stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dotenv_values(path)
    assert set(values) == set(secrets_env.GENERATORS)
    out = capsys.readouterr().out
    assert "generated" in out and not any(v and v in out for k, v in values.items() if "USER" not in k)
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"] or "")) == 32
    assert all(
        re.fullmatch(r"[\w-]{40,}", values[k] or "") for k in values if "SECRET" in k or "PASSWORD" in k
    )
    before = path.read_bytes()
    assert secrets_env.ensure(path) == [] and path.read_bytes() == before  # idempotent
    kept = "\n".join(
        line for line in before.decode().splitlines() if not line.startswith("AIRFLOW_JWT_SECRET=")
    )
    path.write_text(kept + "\n")
    assert secrets_env.ensure(path) == ["AIRFLOW_JWT_SECRET"]  # only the missing one is added
    after = dotenv_values(path)
    assert {k: v for k, v in after.items() if k != "AIRFLOW_JWT_SECRET"} == {
        k: v for k, v in values.items() if k != "AIRFLOW_JWT_SECRET"
    }
    assert after["AIRFLOW_JWT_SECRET"] != values["AIRFLOW_JWT_SECRET"]
    assert secrets_env.main(["--path", str(path), "--check"]) == 0


def test_a_secrets_file_readable_by_others_is_refused_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("POSTGRES_PASSWORD=hunter2hunter2\n")
    path.chmod(0o644)
    with pytest.raises(secrets_env.SecretsFileError, match="readable by others"):
        secrets_env.ensure(path)
    assert path.read_text() == "POSTGRES_PASSWORD=hunter2hunter2\n"
    assert secrets_env.main(["--path", str(path)]) == 1
    assert secrets_env.main(["--path", str(tmp_path / "absent.env"), "--check"]) == 1


def test_the_secrets_file_is_git_ignored() -> None:
    import subprocess

    res = subprocess.run(
        ["git", "check-ignore", "-q", str(secrets_env.SECRETS_FILE)],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert res.returncode == 0, "infra/.env must be git-ignored"


def test_the_make_targets_run_these_commands() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target, command in (
        ("compose-secrets", "-m infra.compose.secrets_env"),
        ("compose-pin", "-m infra.compose.pin"),
        ("compose-check", "-m infra.compose.pin --check"),
    ):
        assert re.search(rf"^{target}:.*\n\t\$\(PY\) {re.escape(command)}$", makefile, flags=re.MULTILINE), (
            target
        )
