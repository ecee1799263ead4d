"""Credentials, region, endpoint and CA bundle are resolved once and reach every library.

Real botocore resolution over temporary shared config/credentials files (no mocks); the
options each library gets are read back from what Storage built.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from jobs.errors import CredentialsUnavailable
from jobs.settings import Settings
from jobs.storage import Storage

ENDPOINT = "http://127.0.0.1:9"
LAKE = {f"lake_{layer}": f"s3://{layer}" for layer in ("raw", "bronze", "silver", "gold")}


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test writes counts: no developer's AWS_* and no instance metadata lookups."""
    import os

    for var in list(os.environ):
        if var.startswith(("AWS_", "ADMIN_", "ANALYST_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings of an S3 lake whose shared files are this test's own (maybe absent)."""
    base: dict[str, Any] = {
        **LAKE,
        "aws_endpoint_url": ENDPOINT,
        "aws_config_file": str(tmp_path / "config"),
        "aws_shared_credentials_file": str(tmp_path / "credentials"),
    }
    return Settings(_env_file=None, **(base | values))  # type: ignore[call-arg]


def write_profile(tmp_path: Path, name: str = "lake", **values: str) -> None:
    lines = [f"[{name}]"] + [f"{k} = {v}" for k, v in values.items()]
    (tmp_path / "credentials").write_text("\n".join(lines) + "\n")


def options_everywhere(storage: Storage) -> dict[str, dict[str, Any]]:
    """What each library is handed: deltalake, polars, s3fs, boto3 and DuckDB's secret."""
    secret = storage.duckdb_secret()
    assert secret is not None
    sql, values = secret
    fs: Any = storage.filesystem("s3://bronze")
    client = storage.s3_client()
    frozen = client._request_signer._credentials.get_frozen_credentials()
    parts = [p.strip().split(" ")[0] for p in sql.split("(", 1)[1].rstrip(")").split(",")]
    duck = dict(zip([p for p in parts if p not in ("TYPE", "URL_STYLE")], values, strict=True))
    return {
        "deltalake": storage.delta_options("s3://bronze/t") or {},
        "polars": storage.polars_options("s3://bronze/t") or {},
        "s3fs": {"key": fs.key, "secret": fs.secret, "token": fs.token, "endpoint": fs.endpoint_url},
        "boto3": {"key": frozen.access_key, "token": frozen.token, "endpoint": client.meta.endpoint_url},
        "duckdb": duck,
    }


def keys_of(everywhere: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    """(access key, session token) as each library got them."""
    return {
        "deltalake": (
            everywhere["deltalake"]["AWS_ACCESS_KEY_ID"],
            everywhere["deltalake"].get("AWS_SESSION_TOKEN"),
        ),
        "polars": (everywhere["polars"]["aws_access_key_id"], everywhere["polars"].get("aws_session_token")),
        "s3fs": (everywhere["s3fs"]["key"], everywhere["s3fs"]["token"]),
        "boto3": (everywhere["boto3"]["key"], everywhere["boto3"]["token"]),
        "duckdb": (everywhere["duckdb"]["KEY_ID"], everywhere["duckdb"].get("SESSION_TOKEN")),
    }


def test_a_session_token_in_the_settings_reaches_every_library(tmp_path: Path) -> None:
    storage = Storage(
        settings(tmp_path, aws_access_key_id="ASIAKEY", aws_secret_access_key="s", aws_session_token="tok-1")
    )
    assert set(keys_of(options_everywhere(storage)).values()) == {("ASIAKEY", "tok-1")}


def test_without_a_token_no_library_gets_one(tmp_path: Path) -> None:
    storage = Storage(settings(tmp_path, aws_access_key_id="AKIAKEY", aws_secret_access_key="s"))
    assert set(keys_of(options_everywhere(storage)).values()) == {("AKIAKEY", None)}


def test_a_profile_in_the_shared_files_gives_every_library_its_keys_token_and_region(tmp_path: Path) -> None:
    write_profile(
        tmp_path, aws_access_key_id="PROFILEKEY", aws_secret_access_key="ps", aws_session_token="ptok"
    )
    (tmp_path / "config").write_text("[profile lake]\nregion = eu-west-3\n")
    storage = Storage(settings(tmp_path, aws_profile="lake"))
    everywhere = options_everywhere(storage)
    assert set(keys_of(everywhere).values()) == {("PROFILEKEY", "ptok")}
    assert everywhere["deltalake"]["AWS_REGION"] == "eu-west-3" == everywhere["duckdb"]["REGION"]
    assert storage.credentials().source.startswith("AWS profile 'lake'")


def test_the_settings_key_pair_wins_over_a_profile(tmp_path: Path) -> None:
    write_profile(tmp_path, aws_access_key_id="PROFILEKEY", aws_secret_access_key="ps")
    storage = Storage(
        settings(tmp_path, aws_profile="lake", aws_access_key_id="ENVKEY", aws_secret_access_key="es")
    )
    assert set(keys_of(options_everywhere(storage)).values()) == {("ENVKEY", None)}


def test_the_default_profile_is_used_when_none_is_named(tmp_path: Path) -> None:
    write_profile(tmp_path, "default", aws_access_key_id="DEFAULTKEY", aws_secret_access_key="ds")
    assert Storage(settings(tmp_path)).credentials().access_key == "DEFAULTKEY"


@pytest.mark.parametrize(
    ("values", "region"),
    [
        ({"aws_region": "eu-central-1", "aws_default_region": "ap-south-1"}, "eu-central-1"),
        ({"aws_default_region": "ap-south-1"}, "ap-south-1"),
        ({}, "sa-east-1"),  # the profile's
    ],
)
def test_region_is_aws_region_then_aws_default_region_then_the_profile(
    tmp_path: Path, values: dict[str, str], region: str
) -> None:
    (tmp_path / "config").write_text("[default]\nregion = sa-east-1\n")
    storage = Storage(settings(tmp_path, aws_access_key_id="k", aws_secret_access_key="s", **values))
    assert storage.region == region


def test_region_defaults_to_us_east_1(tmp_path: Path) -> None:
    assert Storage(settings(tmp_path)).region == "us-east-1"


def test_aws_endpoint_url_s3_wins_over_aws_endpoint_url_for_every_library(tmp_path: Path) -> None:
    specific = "http://127.0.0.1:19"
    storage = Storage(
        settings(tmp_path, aws_endpoint_url_s3=specific, aws_access_key_id="k", aws_secret_access_key="s")
    )
    everywhere = options_everywhere(storage)
    assert everywhere["deltalake"]["AWS_ENDPOINT_URL"] == specific == everywhere["polars"]["aws_endpoint_url"]
    assert everywhere["s3fs"]["endpoint"] == specific == everywhere["boto3"]["endpoint"]
    assert everywhere["duckdb"]["ENDPOINT"] == "127.0.0.1:19"


def test_a_ca_bundle_reaches_boto3_s3fs_and_duckdb(tmp_path: Path) -> None:
    bundle = str(tmp_path / "ca.pem")
    storage = Storage(
        settings(tmp_path, aws_ca_bundle=bundle, aws_access_key_id="k", aws_secret_access_key="s")
    )
    fs: Any = storage.filesystem("s3://bronze")
    assert fs.client_kwargs["verify"] == bundle
    assert storage.s3_client()._endpoint.http_session._verify == bundle
    assert f"SET ca_cert_file = '{bundle}'" in storage.duckdb_settings_sql()


def test_option_builders_leave_the_environment_alone_and_a_lake_sets_the_rust_clients_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from jobs.tables import Lake

    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/system.pem")  # as images often set it
    for name in [n for n in os.environ if n.startswith("POLARS_")]:
        monkeypatch.delenv(name)
    bundle = str(tmp_path / "ca.pem")
    storage = Storage(
        settings(
            tmp_path,
            aws_ca_bundle=bundle,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            s3_max_attempts=3,
        )
    )
    before = dict(os.environ)
    delta = storage.delta_options("s3://bronze/t") or {}
    polars = storage.polars_options("s3://bronze/t") or {}
    assert dict(os.environ) == before  # no option builder changes the process environment
    retries = storage.polars_retry_options("s3://bronze/t") or {}
    assert retries["max_retries"] == 2 and all(isinstance(v, int) for v in retries.values())
    assert retries.items() <= polars.items() and "max_retries" not in delta
    assert storage.polars_retry_options("lake/bronze/t") is None
    Lake(storage)  # what a stage's process (or a Dask worker) builds before any Rust client
    assert os.environ["SSL_CERT_FILE"] == bundle


def test_a_missing_profile_is_one_line_naming_it_and_the_files(tmp_path: Path) -> None:
    write_profile(tmp_path, "other", aws_access_key_id="k", aws_secret_access_key="s")
    with pytest.raises(CredentialsUnavailable) as caught:
        Storage(settings(tmp_path, aws_profile="nope")).delta_options("s3://bronze/t")
    message = str(caught.value)
    assert (
        "'nope' not found" in message
        and "AWS_PROFILE" in message
        and str(tmp_path / "credentials") in message
    )
    assert "\n" not in message and caught.value.exit_code == 2


def test_no_credentials_anywhere_is_one_line_saying_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(CredentialsUnavailable) as caught:
        Storage(settings(tmp_path)).credentials()
    message = str(caught.value)
    assert "no credentials" in message and "AWS_ACCESS_KEY_ID" in message and "AWS_PROFILE" in message
    assert "\n" not in message


def test_half_a_key_pair_is_refused_rather_than_mixed_with_a_profile(tmp_path: Path) -> None:
    write_profile(tmp_path, "default", aws_access_key_id="DEFAULTKEY", aws_secret_access_key="ds")
    with pytest.raises(CredentialsUnavailable, match="only one of AWS_ACCESS_KEY_ID"):
        Storage(settings(tmp_path, aws_access_key_id="lonely")).credentials()


def test_another_identity_gets_its_own_keys_without_this_process_token(tmp_path: Path) -> None:
    storage = Storage(
        settings(
            tmp_path,
            aws_access_key_id="PIPE",
            aws_secret_access_key="ps",
            aws_session_token="pipe-token",
            analyst_access_key_id="ANALYST",
            analyst_secret_access_key="as",
        )
    )
    assert set(keys_of(options_everywhere(storage.for_identity("analyst"))).values()) == {("ANALYST", None)}


def test_dask_workers_get_only_the_pipeline_keys_as_resolved(tmp_path: Path) -> None:
    write_profile(
        tmp_path, aws_access_key_id="PROFILEKEY", aws_secret_access_key="ps", aws_session_token="ptok"
    )
    driver = settings(
        tmp_path,
        aws_profile="lake",
        admin_access_key_id="ADMIN",
        admin_secret_access_key="adm",
        analyst_access_key_id="ANALYST",
        analyst_secret_access_key="an",
    )
    worker = Storage(driver).for_workers()
    values = {str(getattr(v, "get_secret_value", lambda v=v: v)()) for v in worker.model_dump().values()}
    assert not values & {"ADMIN", "adm", "ANALYST", "an"}
    assert worker.aws_profile is None and worker.aws_config_file is None
    assert set(keys_of(options_everywhere(Storage(worker))).values()) == {("PROFILEKEY", "ptok")}


def test_temporary_keys_near_expiry_are_fetched_again_when_options_are_built(tmp_path: Path) -> None:
    """A credential_process whose keys expire within botocore's refresh window: every set of
    options re-reads them (a long run gets fresh keys, not expired ones)."""
    counter = tmp_path / "count"
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "exp = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': f'TEMP{n}', 'SecretAccessKey': 's',\n"
        "    'SessionToken': f'tok{n}', 'Expiration': exp.isoformat()}))\n"
    )
    (tmp_path / "config").write_text(f"[profile role]\ncredential_process = {sys.executable} {script}\n")
    storage = Storage(settings(tmp_path, aws_profile="role"))
    first = storage.delta_options("s3://bronze/t") or {}
    second = storage.delta_options("s3://bronze/t") or {}
    assert first["AWS_ACCESS_KEY_ID"] != second["AWS_ACCESS_KEY_ID"]
    assert second["AWS_SESSION_TOKEN"] == "tok" + second["AWS_ACCESS_KEY_ID"].removeprefix("TEMP")
    fs: Any = storage.filesystem("s3://bronze")  # a new s3fs for the new keys
    assert fs.key not in (first["AWS_ACCESS_KEY_ID"], second["AWS_ACCESS_KEY_ID"])
    assert fs.token == "tok" + fs.key.removeprefix("TEMP")


def test_repr_of_resolved_credentials_shows_no_secret(tmp_path: Path) -> None:
    storage = Storage(
        settings(tmp_path, aws_access_key_id="k", aws_secret_access_key="very-secret", aws_session_token="tt")
    )
    shown = repr(storage.credentials())
    assert "very-secret" not in shown and "'tt'" not in shown


def test_a_credentials_failure_inside_a_table_read_keeps_its_own_line(tmp_path: Path) -> None:
    """Not re-worded as "cannot access ... as no access key" by the storage-error mapping."""
    from jobs.tables import Lake

    with pytest.raises(CredentialsUnavailable, match="'gone' not found") as caught:
        Lake(Storage(settings(tmp_path, aws_profile="gone"))).open("s3://bronze/t")
    assert caught.value.exit_code == 2
