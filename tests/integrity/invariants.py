"""What "exactly once" means, checked on a whole local lake after any trial.

Independent of the pipeline's own bookkeeping where it can be: raw lines are counted from the
files' bytes, gold is compared with the brute-force reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from jobs.quality.reconcile import data_lines
from jobs.schemas import SOURCES
from jobs.silver.transform import to_silver
from tests.reference import canonical, reference_gold

REPO = Path(__file__).resolve().parents[2]
FAST_LEASE = {"LEASE_TTL_SECONDS": "3", "LEASE_HEARTBEAT_SECONDS": "0.5"}


def lake_env(root: Path, **extra: str) -> dict[str, str]:
    layers = {f"LAKE_{layer.upper()}": str(root / layer) for layer in ("raw", "bronze", "silver", "gold")}
    return {**os.environ, "LAKEHOUSE_ENV_FILE": "", "RAW_SETTLE_SECONDS": "0", **layers, **extra}


def cli(root: Path, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobs", *args], capture_output=True, text=True,
                          env=lake_env(root, **env), timeout=timeout, cwd=REPO)


def start(root: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "jobs", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=lake_env(root, **env), cwd=REPO)


def one_clean_error_line(stderr: str) -> str:
    """The single ``error:`` line a failed command printed (and no traceback)."""
    assert "Traceback" not in stderr and "panicked" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def raw_lines(root: Path) -> dict[str, int]:
    """Data lines of every raw file now under raw/, counted from its bytes."""
    out = {}
    for source in SOURCES:
        for path in sorted((root / "raw" / source).rglob("*")):
            if path.is_file() and not path.name.startswith((".", "_")):
                out[path.relative_to(root / "raw").as_posix()] = data_lines(source, path.read_bytes())
    return out


def table(root: Path, layer: str, name: str) -> pl.DataFrame:
    return pl.read_delta(str(root / layer / name))


def assert_exactly_once(root: Path, *, mode: str = "calendar", n_weeks: int = 3) -> Mapping[str, int]:
    """Every raw line in bronze or quarantine exactly once; silver = bronze; gold = reference."""
    lines = raw_lines(root)
    quarantine = table(root, "bronze", "quarantine").select("source_file", "line_number")
    taken = [quarantine]
    for source in SOURCES:
        taken.append(table(root, "bronze", source).select("source_file", "line_number"))
    every = pl.concat(taken)
    twice = every.group_by("source_file", "line_number").len().filter(pl.col("len") > 1)
    assert twice.is_empty(), f"lines taken in twice: {twice.head(5)}"
    per_file = dict(every.group_by("source_file").len().iter_rows())
    assert per_file == {p: n for p, n in lines.items() if n}, json.dumps(
        {p: (lines.get(p), per_file.get(p)) for p in set(lines) | set(per_file)
         if lines.get(p) != per_file.get(p)}, sort_keys=True)
    silver = {}
    for source in SOURCES:
        bronze = table(root, "bronze", source)
        silver[source] = table(root, "silver", source)
        expected = to_silver(source, bronze.lazy()).collect().drop("run_id")
        got = silver[source].drop("run_id").select(expected.columns)
        assert_frame_equal(got.sort(got.columns), expected.sort(expected.columns),
                           check_row_order=True)
    gold = table(root, "gold", "print_features")
    reference = reference_gold(silver["prints"], silver["taps"], silver["pays"], mode=mode,
                               n_weeks=n_weeks)
    assert_frame_equal(canonical(gold), canonical(reference))
    return lines
