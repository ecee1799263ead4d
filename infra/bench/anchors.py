"""The plain alternatives of ``../shared/anchors/`` (when present), timed beside the gates run.

They are what a user would write instead: a DuckDB raw → Parquet ingest and the fastest DuckDB
gold SQL known. They are run where they lie, never copied here: ``ingest.py`` on the cached raw
files, ``flatten_silver.py`` (untimed) then ``duckdb_best.py`` on the gated run's silver. The
figures go next to the stages' own so the ratios of issue targets come from one sitting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from infra.bench.measure import child_env

ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors"


def find(explicit: str | None) -> Path | None:
    """The anchors directory given, else ``../shared/anchors`` next to the checkout if it exists."""
    path = Path(explicit) if explicit else ANCHORS
    return path if (path / "ingest.py").is_file() and (path / "duckdb_best.py").is_file() else None


def run_anchors(anchors: Path, *, raw: Path, silver: Path, work: Path, cwd: Path) -> dict[str, float]:
    """Wall seconds of the DuckDB ingest (raw → Parquet) and of the DuckDB gold on ``silver``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = child_env()
    steps = {
        "duckdb ingest": [str(anchors / "ingest.py"), str(raw), str(work / "ingest"), "--engine", "duckdb"],
        "flatten silver": [str(anchors / "flatten_silver.py"), str(silver), str(work / "flat")],
        "duckdb gold": [str(anchors / "duckdb_best.py"), str(work / "flat"), str(work / "gold.parquet")],
    }
    seconds = {}
    for name, script in steps.items():
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *script], env=env, cwd=cwd, capture_output=True, text=True, timeout=3600
        )
        if done.returncode != 0:
            raise SystemExit(f"anchor {name} failed:\n" + done.stderr[-2000:])
        seconds[name] = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)
    return {k: v for k, v in seconds.items() if k != "flatten silver"}
