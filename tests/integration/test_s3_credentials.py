"""Credentials the standard way, on the real weed: a profile in shared files, a session token.

The lake runs as ``python -m jobs`` subprocesses with a clean environment whose only keys are
in a temporary shared-credentials file (AWS_PROFILE; no AWS_ACCESS_KEY_ID anywhere).

Session tokens: weed validates ``X-Amz-Security-Token`` itself (its STS issues JWT tokens;
GetFederationToken as the admin). A federated user acts within the admin's policy (list the lake
buckets, no bronze writes or reads), so weed answers "ok" or AccessDenied to a request that carries
the genuine token and InvalidAccessKeyId to the same key without it; that difference shows each
library sent the token.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra.generator import generate
from infra.stack.seed import SeedOptions, seed_lake
from jobs.settings import Settings
from jobs.storage import Storage
from tests.integration.conftest import KEYS, S3Stack, env_lines

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NO_KEYS = {
    "aws_access_key_id": None,
    "aws_secret_access_key": None,
    "aws_region": None,
    "admin_access_key_id": None,
    "admin_secret_access_key": None,
    "analyst_access_key_id": None,
    "analyst_secret_access_key": None,
}


def clean_env(tmp_path: Path, env_file: Path, **extra: str) -> dict[str, str]:
    """Nothing of this shell: a PATH, a HOME of our own, the settings file, and ``extra``."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "LAKEHOUSE_ENV_FILE": str(env_file),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role lookups on a test machine
        **extra,
    }


def jobs(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def keyless_env_file(settings: Settings, path: Path) -> Path:
    """The lake's settings as an env file without any key or region."""
    path.write_text(env_lines(Settings(_env_file=None, **(settings.model_dump() | NO_KEYS))))  # type: ignore[call-arg]
    return path


def write_profile(tmp_path: Path, name: str, key: str, secret: str) -> dict[str, str]:
    """Shared config + credentials files holding one profile; the variables that name them."""
    credentials, config = tmp_path / "aws-credentials", tmp_path / "aws-config"
    credentials.write_text(f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    config.write_text(f"[profile {name}]\nregion = us-east-1\n")
    credentials.chmod(0o600)
    return {
        "AWS_PROFILE": name,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(config),
    }


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw-creds")
    generate(out_dir=out, scale=0.01, start=date(2020, 11, 1), days=8, bad_lines=0)
    return out


def test_a_run_and_a_query_with_keys_only_from_a_profile_file(
    s3: S3Stack, raw_dir: Path, tmp_path: Path
) -> None:
    settings = s3.lake(stack_dir=str(tmp_path / "no-stack"))
    seed_lake(settings, SeedOptions(source=raw_dir, identities=False))
    env_file = keyless_env_file(settings, tmp_path / "lake.env")
    assert "KEY" not in env_file.read_text() and "REGION" not in env_file.read_text()
    env = clean_env(tmp_path, env_file, **write_profile(tmp_path, "lake", *KEYS["pipeline"]))
    assert not any(name.endswith(("_ACCESS_KEY_ID", "_SECRET_ACCESS_KEY")) for name in env)

    run = jobs(env, tmp_path, "run")  # bronze (s3fs + deltalake), silver and gold (polars)
    assert run.returncode == 0, run.stderr
    query = jobs(env, tmp_path, "query", "SELECT count(*) AS n FROM gold.print_features", "--format", "csv")
    assert query.returncode == 0, query.stderr  # DuckDB's secret from the same profile
    assert int(query.stdout.splitlines()[1]) > 0


def test_a_missing_profile_is_one_line_and_exit_2(s3: S3Stack, tmp_path: Path) -> None:
    env_file = keyless_env_file(s3.lake(stack_dir=str(tmp_path / "no-stack")), tmp_path / "lake.env")
    env = clean_env(tmp_path, env_file, **write_profile(tmp_path, "lake", *KEYS["pipeline"]))
    env["AWS_PROFILE"] = "no-such-profile"
    res = jobs(env, tmp_path, "bronze")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "'no-such-profile' not found" in lines[0] and "AWS_SHARED_CREDENTIALS_FILE" in lines[0]


def test_no_credentials_anywhere_on_an_s3_lake_is_one_line_and_exit_2(s3: S3Stack, tmp_path: Path) -> None:
    env_file = keyless_env_file(s3.lake(stack_dir=str(tmp_path / "no-stack")), tmp_path / "lake.env")
    res = jobs(clean_env(tmp_path, env_file), tmp_path, "bronze")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().startswith("error: no credentials for the object store"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "access denied" not in res.stderr.lower()


# -- session tokens --------------------------------------------------------------------------------
def federation_credentials(s3: S3Stack) -> dict[str, str]:
    """Temporary keys + session token issued by weed's own STS."""
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=s3.server.endpoint,
        aws_access_key_id=KEYS["admin"][0],
        aws_secret_access_key=KEYS["admin"][1],
        region_name="us-east-1",
    )
    found: dict[str, Any] = sts.get_federation_token(Name="lake-test", DurationSeconds=900)
    return {k: str(v) for k, v in found["Credentials"].items()}


def failure_of(call: Callable[[], object]) -> str:
    try:
        call()
    except Exception as exc:
        return str(exc)
    return "ok"


def answers(storage: Storage, prefix: str) -> dict[str, str]:
    """What weed answered to each library reading or writing under ``s3://bronze/<prefix>``."""
    import deltalake
    import duckdb
    import polars as pl

    from jobs.query import EXTENSIONS, extension_path, literal

    uri = f"s3://bronze/{prefix}/t"

    def duck() -> object:
        con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        for name in EXTENSIONS:
            con.execute(f"LOAD {literal(str(extension_path(name)))}")
        secret = storage.duckdb_secret()
        assert secret is not None
        con.execute(*secret)
        return con.sql(f"SELECT * FROM read_parquet({literal(uri + '/x.parquet')})").fetchall()

    frame = pl.DataFrame({"a": [1]})
    return {
        "boto3": failure_of(lambda: storage.s3_client().list_objects_v2(Bucket="bronze", Prefix=prefix)),
        "s3fs": failure_of(lambda: storage.filesystem(uri).ls(f"bronze/{prefix}")),
        "deltalake": failure_of(
            lambda: deltalake.write_deltalake(
                uri, frame.to_arrow(), storage_options=storage.delta_options(uri)
            )
        ),
        "polars": failure_of(
            lambda: pl.scan_parquet(f"{uri}/*.parquet", storage_options=storage.polars_options(uri)).collect()
        ),
        "duckdb": failure_of(duck),
    }


def test_weed_validates_the_session_token_every_library_sends(s3: S3Stack) -> None:
    temporary = federation_credentials(s3)
    assert temporary["AccessKeyId"].startswith("ASIA")
    base = s3.lake(**(NO_KEYS | {"aws_region": "us-east-1"}))
    keys = {
        "aws_access_key_id": temporary["AccessKeyId"],
        "aws_secret_access_key": temporary["SecretAccessKey"],
    }

    def storage(token: str | None) -> Storage:
        return Storage(Settings(_env_file=None, **(base.model_dump() | keys | {"aws_session_token": token})))  # type: ignore[call-arg]

    with_token = answers(storage(temporary["SessionToken"]), "token")
    without = answers(storage(None), "token")
    for library in with_token:
        # The token was sent and accepted as weed's own; the federated user acts within the
        # admin's policy: it may list bronze (an empty listing), not write there.
        answer = with_token[library]
        assert "InvalidAccessKeyId" not in answer and "does not exist in our records" not in answer, (
            library,
            answer,
        )
        # The same key without its token is unknown to weed.
        unknown = (
            "InvalidAccessKeyId" in without[library] or "does not exist in our records" in without[library]
        )
        assert unknown, (library, without[library])
    assert "denied" in with_token["deltalake"].lower(), with_token  # the admin writes no bronze
    assert temporary["SessionToken"] not in "".join(with_token.values())  # no library echoed it
