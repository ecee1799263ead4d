"""infra.processes: a server is found by the PID it recorded (and only while that PID runs the
expected program), stopped by that PID or its process group, never by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra import processes

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "lakehouse-test-sleeper"]


def test_a_recorded_pid_is_found_only_while_it_runs_the_expected_program(tmp_path: Path) -> None:
    proc = subprocess.Popen(SLEEPER)
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(f"{proc.pid}\n")
    try:
        assert processes.alive(proc.pid)
        assert processes.recorded_pid(pid_file, b"lakehouse-test-sleeper") == proc.pid
        assert processes.recorded_pid(pid_file, b"lakehouse-test-sleeper", b"weed") is None  # another program
    finally:
        processes.stop_process(proc.pid, timeout=10)
    assert not processes.alive(proc.pid)  # stopped, and the zombie reaped
    assert proc.poll() is not None
    assert processes.recorded_pid(pid_file, b"lakehouse-test-sleeper") is None  # the PID is gone
    pid_file.write_text("not a pid\n")
    assert processes.recorded_pid(pid_file) is None
    assert processes.recorded_pid(tmp_path / "missing.pid") is None
    processes.stop_process(proc.pid, timeout=1)  # already gone: nothing to do


def test_a_process_group_is_stopped_whole(tmp_path: Path) -> None:
    leader = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, time; subprocess.Popen({SLEEPER!r}); time.sleep(60)"],
        start_new_session=True,
    )
    try:
        assert processes.group_alive(leader.pid)
    finally:
        processes.stop_group(leader.pid, timeout=10)
    assert not processes.group_alive(leader.pid)
    assert leader.poll() is not None
