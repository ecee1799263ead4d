"""The plain alternatives of ``../shared/anchors/`` (when present), run beside our stages.

They are what a user would write instead of this project: a raw → Parquet ingest (``ingest.py``,
with each engine among DuckDB and Polars that its ``--help`` offers) and gold in DuckDB SQL
(``duckdb_best.py``, the fastest plan known) and in Polars (``polars_best.py``, when present).
They are run where they lie, never copied here, each in a fresh process measured like our own
steps (:func:`infra.bench.measure.run_command`): the ingest on the cached raw files,
``flatten_silver.py`` (not reported) then the gold scripts on our gated run's silver. Both
:mod:`infra.bench.runner` and :mod:`infra.bench.gates` run them through :func:`run_anchors`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra.bench.measure import Measurement, run_command

ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors"
REQUIRED = ("ingest.py", "flatten_silver.py", "duckdb_best.py")

INGEST = {"duckdb": "plain ingest, DuckDB (ingest.py)", "polars": "plain ingest, Polars (ingest.py)"}
DUCKDB_GOLD = "DuckDB gold SQL (duckdb_best.py)"
POLARS_GOLD = "Polars gold (polars_best.py)"
GOLD = {DUCKDB_GOLD: "duckdb_best.py", POLARS_GOLD: "polars_best.py"}
FLATTEN = "flatten silver (flatten_silver.py)"


def find(explicit: str | None) -> Path | None:
    """The anchors directory given, else ``../shared/anchors`` next to the checkout if it holds
    ``ingest.py``, ``flatten_silver.py`` and ``duckdb_best.py`` (None if not: they are skipped).
    A directory given that lacks one of them is an error."""
    path = Path(explicit).resolve() if explicit else ANCHORS
    if all((path / name).is_file() for name in REQUIRED):
        return path
    if explicit:
        raise SystemExit(f"--anchors {explicit}: needs {', '.join(REQUIRED)}")
    return None


def ingest_engines(anchors: Path, *, env: dict[str, str], cwd: Path) -> list[str | None]:
    """The engines ``ingest.py --help`` offers among ``duckdb`` and ``polars``; ``[None]`` (run
    it without ``--engine``, its default is DuckDB) when its help names no ``--engine`` option."""
    done = subprocess.run(
        [sys.executable, str(anchors / "ingest.py"), "--help"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "--engine" not in done.stdout:
        return [None]
    return [e for e in INGEST if e in done.stdout] or [None]


def faster_ingest(measured: dict[str, Measurement]) -> Measurement | None:
    """The plain ingest with the least wall time among those that succeeded."""
    runs = [m for name, m in measured.items() if name in INGEST.values() and m.ok]
    return min(runs, key=lambda m: m.wall_s) if runs else None


def _output_rows(path: Path) -> int | None:
    """Rows of the Parquet file ``path``, or of the Parquet files under the directory ``path``
    (from their footers; the files may differ in schema). None if there are none."""
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        return None
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def run_anchors(
    anchors: Path,
    *,
    raw: Path,
    silver: Path,
    work: Path,
    env: dict[str, str],
    cwd: Path,
    log: Any = print,
) -> dict[str, Measurement]:
    """Each anchor's measurement by its name (``INGEST``'s, ``GOLD``'s), with ``result["rows"]``
    the rows it wrote. ``FLATTEN`` is in it only when it failed (then no gold script ran)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    measured: dict[str, Measurement] = {}

    def run(name: str, script: str, *args: str | Path, out: Path | None = None) -> Measurement:
        log(f"  {name} …")
        cmd = [sys.executable, str(anchors / script), *(str(a) for a in args)]
        m = run_command(name, cmd, env=env, cwd=cwd)
        if m.ok and out is not None:
            rows = _output_rows(out)
            if rows is not None:
                m.result["rows"] = rows
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink(missing_ok=True)
        log(
            f"    {m.wall_s:.1f}s wall, {m.cpu_s:.1f}s cpu, {m.peak_rss_mb:,.0f} MB"
            + ("" if m.ok else " FAILED")
        )
        return m

    for engine in ingest_engines(anchors, env=env, cwd=cwd):
        out = work / f"ingest-{engine or 'default'}"
        name = INGEST[engine or "duckdb"]
        measured[name] = run(name, "ingest.py", raw, out, *(["--engine", engine] if engine else []), out=out)
    flat = work / "flat"
    flattened = run(FLATTEN, "flatten_silver.py", silver, flat)
    if not flattened.ok:
        measured[FLATTEN] = flattened
    else:
        for name, script in GOLD.items():
            if (anchors / script).is_file():
                out = work / f"{script.removesuffix('.py')}.parquet"
                measured[name] = run(name, script, flat, out, out=out)
    shutil.rmtree(work, ignore_errors=True)
    return measured
