"""Local server processes started by the project (weed, airflow standalone): found by the PID
they recorded, never by name, and only while that PID still runs the expected program."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def recorded_pid(pid_path: Path, *markers: bytes) -> int | None:
    """The PID in ``pid_path`` if that process is alive and its command line holds every marker
    (PIDs get reused)."""
    try:
        pid = int(pid_path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if all(m in cmdline for m in markers) and alive(pid) else None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie child of ours is reaped here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def port_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port now (TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
