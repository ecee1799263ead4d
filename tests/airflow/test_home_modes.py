"""Native Airflow's home and admin password file are owner-only from the first byte.

Observed: ``.airflow/`` was 0755 and the generated password file 0644, so any local user read the
admin password. ``infra.airflow.native.up`` now makes the home 0700 (tightening an old one) and
runs Airflow with umask 077; here Airflow's own simple auth manager writes its password file in a
real process started the way ``up`` starts ``airflow standalone``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from infra.airflow import native
from tests.airflow.conftest import ROOT

WRITE_PASSWORDS = (
    "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager;"
    "SimpleAuthManager().init()"
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config(home: Path) -> native.Config:
    return native.Config(ROOT / "envs" / "airflow.env", ROOT / "envs" / "local.env", home)


def test_a_new_home_is_0700_and_airflow_writes_its_password_file_0600(tmp_path: Path) -> None:
    cfg = config(tmp_path / "fresh" / ".airflow")
    native.private_home(cfg)
    assert mode(cfg.home) == 0o700
    old = os.umask(0o022)  # a typical login shell's umask: what made the file 0644 before
    try:
        subprocess.run(
            [sys.executable, "-c", WRITE_PASSWORDS],
            env=cfg.environment(),
            cwd=ROOT,
            check=True,
            timeout=300,
            capture_output=True,
            umask=native.UMASK,
        )
    finally:
        os.umask(old)
    assert cfg.password_path.is_file()
    assert json.loads(cfg.password_path.read_text())  # the admin's generated password
    assert mode(cfg.password_path) == 0o600
    assert mode(cfg.home) == 0o700


def test_an_old_readable_home_and_password_file_are_tightened(tmp_path: Path) -> None:
    cfg = config(tmp_path / ".airflow")
    cfg.home.mkdir(mode=0o755)
    cfg.home.chmod(0o755)
    cfg.password_path.write_text('{"admin": "secret"}')
    cfg.password_path.chmod(0o644)
    (cfg.home / "airflow.db").write_bytes(b"")
    (cfg.home / "airflow.db").chmod(0o644)
    native.private_home(cfg)
    assert mode(cfg.home) == 0o700
    assert mode(cfg.password_path) == 0o600
    assert mode(cfg.home / "airflow.db") == 0o600
