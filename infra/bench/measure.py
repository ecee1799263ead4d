"""Wall time, CPU time and peak resident memory of one command and all its descendants."""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

SAMPLE_SECONDS = 0.05


@dataclass
class Measurement:
    """One measured process: what it reported plus what the parent saw."""

    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    result: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_measured(
    name: str, args: list[str], *, env: dict[str, str], cwd: str | Path, timeout: float = 3600.0
) -> Measurement:
    """Run ``python -m infra.bench.task <args>`` in a fresh process and measure it.

    The task writes what it did (rows, in-stage seconds, its own peak RSS) to a result file,
    which becomes :attr:`Measurement.result`. See :func:`run_command` for the measurements.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "infra.bench.task", "--result", str(result_file), *args]
        return run_command(name, cmd, env=env, cwd=cwd, timeout=timeout, result_file=result_file)


def run_command(
    name: str,
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: str | Path,
    timeout: float = 3600.0,
    result_file: Path | None = None,
) -> Measurement:
    """Run ``cmd`` in a fresh process and measure it (any command: the plain alternatives too).

    Peak RSS is the larger of the sampled sum over the process tree (catches worker processes)
    and the ``max_rss_mb`` the process reported in ``result_file``, if any (its own ``VmHWM``:
    exact for a single process, not limited by sampling). CPU time is user +
    system of the child and every descendant it waited for.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        err_file = Path(tmp) / "stderr.txt"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        with open(err_file, "wb") as err:
            popen = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
            proc = psutil.Process(popen.pid)
            peak = 0
            while popen.poll() is None:
                peak = max(peak, _tree_rss(proc))
                if time.perf_counter() - started > timeout:
                    popen.kill()
                    break
                time.sleep(SAMPLE_SECONDS)
            popen.wait()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result: dict[str, Any] = {}
        if result_file is not None and result_file.exists():
            result = json.loads(result_file.read_text())
        peak_mb = max(peak / 2**20, float(result.get("max_rss_mb", 0.0)))
        tail = err_file.read_text(errors="replace")[-3000:] if popen.returncode else ""
        return Measurement(
            name, round(wall, 2), round(cpu, 2), round(peak_mb, 1), popen.returncode, result, tail
        )


def cache_bytecode() -> None:
    """Compile the project's modules once, as a user's first run would: without it every
    measured process would compile them again (``PYTHONDONTWRITEBYTECODE`` set, as here), a
    cost that no installed copy pays (~0.2 s per process, most of a no-op run)."""
    root = Path(__file__).resolve().parents[2]
    for package in ("jobs", "infra"):
        compileall.compile_dir(root / package, quiet=1)


def child_env(base: dict[str, str] | None = None, **values: str) -> dict[str, str]:
    """The environment of a measured process: ours, no env file, bytecode cached (see
    :func:`cache_bytecode`), plus ``values``."""
    env = dict(base if base is not None else os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["LAKEHOUSE_ENV_FILE"] = ""
    env.update(values)
    return env
