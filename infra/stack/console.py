"""The native stack's bucket console: SeaweedFS's own web UI (``weed admin``) behind a login.

``make stack-up`` starts it after ``weed mini`` answers, as a separate process on
``http://127.0.0.1:STACK_CONSOLE_PORT`` (its worker gRPC port is that + 10000), and ``make
stack-down`` stops it by the PID it recorded. It has two logins, generated into the owner-only
``STACK_DIR/keys/console.env`` (:func:`infra.stack.keys.ensure_console_logins`):

- ``viewer``: weed's read-only console user: browses every bucket (object store, file browser,
  downloads); uploads, deletes, new folders and bucket changes answer 403;
- ``console-admin``: weed's full console user (weed refuses a read-only user without one). It
  can change anything, as the stack's TLS certificate can: it is the stack owner's, never handed
  out. Identities still change only through ``python -m infra.stack identities apply``.

Anonymous requests get the login page (pages redirect to ``/login``, ``/api/*`` answers 401);
the only anonymous answers are ``/health`` and ``/metrics``, which weed serves without a login;
the console's ``/metrics`` holds its own process's counters (no bucket names, measured).

The passwords never reach a command line (other users can read ``ps``): they are in
``STACK_DIR/console/options`` (0600), which ``weed admin -options=`` reads. The console runs from
``STACK_DIR/console`` and reads ``console/security.toml`` there (:mod:`infra.stack.security`):
weed's certificate for the gRPC and HTTPS of master and filer, the filer's JWT keys for
downloads, and no ``[https.admin]``, so its own port is plain http on 127.0.0.1 (the browser
has no client certificate; mini's admin port, which does, stays owner-only).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

from infra import processes
from infra.stack.keys import console_file, ensure_console_logins
from infra.stack.security import CONSOLE_DIR, private_dir, write_private
from infra.stack.settings import StackSettings
from infra.stack.weed import ADMIN_GRPC_OFFSET, WeedServer, weed_binary
from jobs.errors import StorageError


@dataclass
class Console:
    """One ``weed admin`` process; its directory holds options, data/, console.pid and console.log."""

    directory: Path
    port: int
    master: str  # host:httpPort.grpcPort, weed's form for a master with an explicit gRPC port

    @classmethod
    def of(cls, server: WeedServer) -> Console:
        p = server.ports
        return cls(server.directory / CONSOLE_DIR, p.console, f"127.0.0.1:{p.master}.{p.master_grpc}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_path(self) -> Path:
        return self.directory / "console.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "console.log"

    @property
    def options_path(self) -> Path:
        return self.directory / "options"

    def pid(self) -> int | None:
        """The recorded PID if that process is still a running ``weed admin``."""
        return processes.recorded_pid(self.pid_path, b"weed", b"admin", str(self.options_path).encode())

    def options(self, logins: dict[str, tuple[str, str]]) -> str:
        (admin, admin_pw), (viewer, viewer_pw) = logins["admin"], logins["viewer"]
        return "\n".join(
            [
                "ip=127.0.0.1",
                f"port={self.port}",
                f"port.grpc={self.port + ADMIN_GRPC_OFFSET}",
                f"master={self.master}",
                f"dataDir={self.directory / 'data'}",
                f"adminUser={admin}",
                f"adminPassword={admin_pw}",
                f"readOnlyUser={viewer}",
                f"readOnlyPassword={viewer_pw}",
                "iceberg.port=0",
                "lance.port=0",
                "",
            ]
        )

    def start(self, settings: StackSettings) -> int:
        """Start the console unless it runs already; returns its PID."""
        if pid := self.pid():
            return pid
        if not (self.directory / "security.toml").is_file():
            raise StorageError(
                f"the bucket console needs {self.directory / 'security.toml'}, written when weed "
                "starts: restart the stack once (make stack-down, then make stack-up)"
            )
        busy = processes.busy_ports([self.port, self.port + ADMIN_GRPC_OFFSET])
        if busy:
            raise StorageError(
                f"cannot start the bucket console: port(s) {busy} on 127.0.0.1 are in use; "
                "change STACK_CONSOLE_PORT"
            )
        private_dir(self.directory / "data")
        write_private(self.options_path, self.options(ensure_console_logins(settings)))
        cmd = [weed_binary(), "admin", f"-options={self.options_path}"]
        self.log_path.touch(mode=0o600)
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.directory,  # weed admin reads ./security.toml
                umask=0o077,
            )
        write_private(self.pid_path, f"{proc.pid}\n")
        return proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the login page answers (weed admin discovers the filer before it listens)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise StorageError(f"the bucket console exited while starting; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (URLError, OSError) as exc:
                last = exc
            time.sleep(0.2)
        raise StorageError(
            f"the bucket console did not answer on {self.url} within {timeout:.0f}s ({last}); "
            f"see {self.log_path}"
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the recorded process (SIGTERM, then SIGKILL); True if one was running."""
        pid = self.pid()
        if pid is not None:
            processes.stop_process(pid, timeout)
        self.pid_path.unlink(missing_ok=True)
        return pid is not None


def describe(console: Console, settings: StackSettings) -> str:
    """The stack-up line about the console: URL, the viewer's name, where the passwords are."""
    return (
        f"{console.url}   (log in as viewer: read-only, every bucket; passwords in {console_file(settings)})"
    )
