"""Settings and audit checks of the security work that need no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.audit import judge, scan_text
from jobs.errors import ConfigError
from jobs.settings import Settings, load_settings


def test_example_secrets_are_refused_when_the_endpoint_is_not_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", "")
    for secret in ("pipeline-example-secret", "x-change-me", "admin-dev-secret-change-me"):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert "example value" in str(caught.value) and secret not in str(caught.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:18333")  # loopback: a dev stack
    assert load_settings().aws_secret_access_key is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.net")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "Zq8v7Yx3kP0rLw9sTn2b")
    assert load_settings().aws_endpoint_url == "https://s3.example.net"
    with pytest.raises(ValueError, match="example value"):
        Settings(
            _env_file=None,
            aws_endpoint_url="http://10.0.0.5:9000",  # type: ignore[call-arg]
            analyst_secret_access_key="analyst-example-secret",
        )


def test_several_env_files_are_read_in_order_and_one_file_still_works(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared, keys = tmp_path / "stack.env", tmp_path / "pipeline.env"
    shared.write_text("LAKE_GOLD=s3://gold\nAWS_ACCESS_KEY_ID=shared\nLOOKBACK_WEEKS=4\n")
    keys.write_text("AWS_ACCESS_KEY_ID=lakehouse-pipeline\nAWS_SECRET_ACCESS_KEY=s3cr3t\n")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "LAKE_GOLD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", f"{shared},{keys}")
    s = load_settings()
    assert (s.lake_gold, s.aws_access_key_id, s.lookback_weeks) == ("s3://gold", "lakehouse-pipeline", (4,))
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", f"{shared}:{tmp_path / 'missing.env'}")
    with pytest.raises(ConfigError, match=r"missing.env not found"):  # every named file must exist
        load_settings()
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", str(shared))
    assert load_settings().aws_access_key_id == "shared"


def test_pip_audit_skipping_every_package_is_not_an_all_clear() -> None:
    skipped = [
        {"name": "a", "skip_reason": "Dependency not found on PyPI and could not be audited: a (1.0)"},
        {"name": "b", "skip_reason": "Dependency not found on PyPI"},
    ]
    passed, line = judge(skipped, feed_optional=False)
    assert not passed and "NOT AUDITED" in line and "all 2 packages were skipped" in line
    passed, line = judge(skipped, feed_optional=True)  # CI: reported, not failed
    assert passed and "NOT AUDITED" in line
    assert judge([{"name": "a", "version": "1", "vulns": []}], False)[0]
    vulnerable = [{"name": "a", "version": "1", "vulns": [{"id": "X"}]}]
    assert not judge(vulnerable, feed_optional=True)[0]


def test_secret_scan_finds_keys_and_real_looking_secrets_but_not_placeholders() -> None:
    key_block = "-----BEGIN " + "PRIVATE KEY-----"
    text = "\n".join(
        [
            "AWS_SECRET_ACCESS_KEY=pipeline-example-secret",
            "ADMIN_SECRET_ACCESS_KEY=${ADMIN_SECRET_ACCESS_KEY:?set it}",
            "MINIO_ROOT_PASSWORD=Zq8v7Yx3kP0rLw9sTn2b",
            key_block,
            "id = AKIA" + "ABCDEFGHIJKLMNOP",
        ]
    )
    found = scan_text(text)
    assert [n for n, _ in found] == [3, 4, 5]


def test_pip_audit_is_pinned_in_the_dev_lock_with_its_dependencies() -> None:
    """``make audit`` needs pip-audit from ``make venv``, at a pinned version, not whatever is on PATH."""
    import re

    from infra import lock

    pins = {lock.normalise(n): v for n, v in lock.pins(lock.DEV.read_text()).items()}
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins.get("pip-audit", "")), "pin pip-audit in requirements-dev.txt"
    for dependency in ("cyclonedx-python-lib", "pip-api", "pip-requirements-parser", "cachecontrol"):
        assert dependency in pins, dependency
