"""The compose Dask cluster's mutual TLS, run here without Docker: the scheduler and a worker
are started with the compose file's own commands and client settings (paths and addresses
mapped to this machine), and only a client holding the issued certificate gets in."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from infra.compose import dask_tls

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# how a refused connection ends a client (handshake failed, reset, or no answer in time)
REFUSED = re.compile(r"CommClosedError|OSError|TimeoutError|SSLError|ConnectionResetError")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _local(args: list[str], tls: Path, port: int) -> list[str]:
    """A compose command with its certificate paths, host and scheduler address made local."""
    out = []
    for arg in args:
        arg = arg.replace("/app/tls", str(tls)).replace("dask-scheduler:8786", f"127.0.0.1:{port}")
        out.append("127.0.0.1" if arg == "0.0.0.0" else arg)  # noqa: S104 - mapping, not binding
    if "--port" in out:
        out[out.index("--port") + 1] = str(port)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, dict[str, str]]]:
    services = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())["services"]
    tls = tmp_path_factory.mktemp("dask") / "tls"
    assert dask_tls.main([str(tls)]) == 0
    port = _free_port()
    client_env = {
        k: v.replace("/app/tls", str(tls)) for k, v in services["dask-worker"]["environment"].items()
    }
    client_env = {k: v for k, v in client_env.items() if k.startswith("DASK_")}
    env = {**os.environ, **client_env, "DASK_DISTRIBUTED__WORKER__DAEMON": "false"}
    procs = []
    for name in ("dask-scheduler", "dask-worker"):
        svc = services[name]
        command = [
            str(BIN / svc["entrypoint"][0]),
            *svc["entrypoint"][1:],
            *_local(svc["command"], tls, port),
        ]
        if name == "dask-worker":
            command += ["--host", "127.0.0.1"]
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tls.parent
            )
        )
        if name == "dask-scheduler":
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    time.sleep(0.3)
    try:
        yield tls, port, client_env
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter whose environment has ``env`` (as a container's has)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_certificates_are_owner_only_and_kept_on_a_second_run(tmp_path: Path) -> None:
    assert dask_tls.ensure(tmp_path / "tls") is True
    before = {n: (tmp_path / "tls" / n).read_bytes() for n in dask_tls.FILES}
    for name in dask_tls.FILES:
        assert stat.S_IMODE((tmp_path / "tls" / name).stat().st_mode) == 0o600, name
    assert dask_tls.ensure(tmp_path / "tls") is False
    assert {n: (tmp_path / "tls" / n).read_bytes() for n in dask_tls.FILES} == before


@pytest.mark.timeout(300)
def test_only_a_client_with_the_clusters_certificate_gets_in(
    cluster: tuple[Path, int, dict[str, str]], tmp_path: Path
) -> None:
    tls, port, client_env = cluster
    services = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())["services"]
    check = services["dask-worker"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"]
    health = check[3].replace("dask-scheduler:8786", f"127.0.0.1:{port}")
    deadline = time.monotonic() + 90
    while (res := _python(health, client_env)).returncode and time.monotonic() < deadline:
        time.sleep(1)  # the worker registers after the scheduler is up
    assert res.returncode == 0, res.stderr[-2000:]  # the compose health check passes, over TLS
    work = (
        "from distributed import Client\n"
        f"c = Client('tls://127.0.0.1:{port}', timeout=5)\n"
        "assert all(a.startswith('tls://') for a in c.scheduler_info()['workers'])\n"
        "print(c.submit(sum, [1, 2, 3]).result(timeout=60))"
    )
    res = _python(work, client_env)
    assert res.returncode == 0 and res.stdout.strip() == "6", res.stderr[-2000:]
    plain = f"from distributed import Client; Client('tcp://127.0.0.1:{port}', timeout=3)"
    res = _python(plain, {})  # plain TCP, no certificate: refused
    assert res.returncode != 0 and REFUSED.search(res.stderr), res.stderr[-500:]
    dask_tls.ensure(tmp_path / "other")  # a certificate from another CA: refused
    other = {k: v.replace(str(tls), str(tmp_path / "other")) for k, v in client_env.items()}
    res = _python(f"from distributed import Client; Client('tls://127.0.0.1:{port}', timeout=3)", other)
    assert res.returncode != 0 and REFUSED.search(res.stderr), res.stderr[-500:]
