"""Local server processes started by the project (weed, airflow standalone): found by the PID
they recorded, never by name, and only while that PID still runs the expected program.

The processes are read with psutil (in the lock); signals to a process group are sent with
``os.killpg`` (psutil has none).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import psutil


def recorded_pid(pid_path: Path, *markers: bytes) -> int | None:
    """The PID in ``pid_path`` if that process is alive and its command line holds every marker
    (PIDs get reused)."""
    try:
        pid = int(pid_path.read_text().strip())
        cmdline = "\0".join(psutil.Process(pid).cmdline()).encode()
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if all(m in cmdline for m in markers) and alive(pid) else None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie child of ours is reaped here)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False  # our child, and it had ended: reaped now
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True


def stop_process(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM one process, then SIGKILL it if it still runs after ``timeout``."""
    try:
        proc = psutil.Process(pid)
        proc.terminate()
    except psutil.NoSuchProcess:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
        while alive(pid):
            time.sleep(0.1)


def group_alive(pgid: int) -> bool:
    """A process of the group ``pgid`` still runs (zombies, e.g. children of a test, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def stop_group(pgid: int, timeout: float = 30.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout``."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.2)
    if group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        while group_alive(pgid):
            time.sleep(0.1)


def port_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port now (TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def busy_ports(ports: list[int]) -> list[int]:
    """The ones of ``ports`` that something on 127.0.0.1 holds now."""
    return [p for p in ports if not port_free(p)]
