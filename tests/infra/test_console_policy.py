"""Compose's MinIO console: a read-only console user with its own policy (infra/minio/console-policy.json)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from dotenv import dotenv_values

from infra.compose.rules import SECRET_GRANTS
from infra.compose.secrets_env import GENERATORS
from infra.stack.identities import buckets
from jobs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MINIO = ROOT / "infra" / "minio"


def test_the_console_policy_lists_and_reads_the_lake_buckets_and_nothing_else() -> None:
    policy = json.loads((MINIO / "console-policy.json").read_text())
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert actions == {"s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"}
    assert all(st["Effect"] == "Allow" for st in policy["Statement"])
    values = {k.lower(): v for k, v in dotenv_values(ROOT / "envs" / "docker.env").items()}
    lake = buckets(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    by_action = {a: set(st["Resource"]) for st in policy["Statement"] for a in st["Action"]}
    assert by_action["s3:ListBucket"] == {f"arn:aws:s3:::{b}" for b in lake}
    assert by_action["s3:GetObject"] == {f"arn:aws:s3:::{b}/*" for b in lake}


def test_minio_init_creates_the_console_user_with_that_policy_only() -> None:
    script = (MINIO / "init.sh").read_text()
    assert 'mc admin policy create lake lakehouse-console "$here/console-policy.json"' in script
    assert 'mc admin user add lake "$CONSOLE_VIEWER_USER" "$CONSOLE_VIEWER_PASSWORD"' in script
    assert 'attach lakehouse-console "$CONSOLE_VIEWER_USER"' in script
    assert script.count("$CONSOLE_VIEWER_USER") == 2  # added, given the console policy, no other


def test_the_console_login_is_a_generated_secret_that_only_minio_init_gets() -> None:
    assert {"CONSOLE_VIEWER_USER", "CONSOLE_VIEWER_PASSWORD"} <= set(GENERATORS)
    assert len(GENERATORS["CONSOLE_VIEWER_PASSWORD"]()) >= 32
    compose = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())
    for var in ("CONSOLE_VIEWER_USER", "CONSOLE_VIEWER_PASSWORD"):
        assert SECRET_GRANTS[var] == frozenset({"minio-init"})
        holders = {n for n, svc in compose["services"].items() if var in (svc.get("environment") or {})}
        assert holders == {"minio-init"}, var
    assert "127.0.0.1:9001:9001" in compose["services"]["minio"]["ports"]
