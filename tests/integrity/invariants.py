"""What "exactly once" means, checked on a whole local lake after any trial.

Independent of the pipeline's own bookkeeping where it can be: raw lines are counted from the
files' bytes (decompressed here with the standard library for ``.gz``/``.bz2``), gold is compared
with the brute-force reference. Deliveries are what the test knows it landed: identical files
of a source are one delivery (held by one of them under ``RAW_ON_DUPLICATE=skip``), and files
the test deleted whose rows must stay (``RAW_ON_DELETE=keep``) are named with their bytes.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import subprocess
import sys
import zlib
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
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        capture_output=True,
        text=True,
        env=lake_env(root, **env),
        timeout=timeout,
        cwd=REPO,
    )


def start(root: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=lake_env(root, **env),
        cwd=REPO,
    )


def one_clean_error_line(stderr: str) -> str:
    """The single ``error:`` line a failed command printed (and no traceback)."""
    assert "Traceback" not in stderr and "panicked" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


TEMPORARY = (".tmp", "._COPYING_", ".part", ".crdownload")
DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress}


def raw_files(root: Path) -> dict[str, bytes]:
    """Every raw data file now under raw/ (path under raw/ → its bytes as delivered)."""
    return {
        path.relative_to(root / "raw").as_posix(): path.read_bytes()
        for source in SOURCES
        for path in sorted((root / "raw" / source).rglob("*"))
        if path.is_file() and not path.name.startswith((".", "_")) and not path.name.endswith(TEMPORARY)
    }


def content_lines(path: str, delivered: bytes) -> int:
    """Data lines of a delivered file: of its content when compressed (0 when it cannot be
    decompressed: such a file is rejected whole without a line)."""
    source = path.split("/", 1)[0]
    suffix = Path(path).suffix
    try:
        content = DECOMPRESS[suffix](delivered) if suffix in DECOMPRESS else delivered
    except (OSError, EOFError, zlib.error, ValueError):
        return 0
    return data_lines(source, content)


def raw_lines(root: Path) -> dict[str, int]:
    """Data lines of every raw file now under raw/, counted from its bytes."""
    return {path: content_lines(path, delivered) for path, delivered in raw_files(root).items()}


def deliveries(files: Mapping[str, bytes]) -> list[list[str]]:
    """Paths grouped by delivery: identical bytes within one source."""
    groups: dict[tuple[str, bytes], list[str]] = {}
    for path, delivered in sorted(files.items()):
        groups.setdefault((path.split("/", 1)[0], delivered), []).append(path)
    return list(groups.values())


def table(root: Path, layer: str, name: str) -> pl.DataFrame:
    return pl.read_delta(str(root / layer / name))


def assert_exactly_once(
    root: Path,
    *,
    mode: str = "calendar",
    n_weeks: int = 3,
    kept: Mapping[str, bytes] | None = None,
    duplicates: str = "skip",
) -> Mapping[str, int]:
    """Every raw line in bronze or quarantine exactly once; silver = bronze; gold = reference.

    ``kept``: raw files deleted since their ingestion whose rows stay (path → their bytes).
    ``duplicates``: ``skip`` (identical files of a source are held once) or ``ingest``.
    """
    files = {**(kept or {}), **raw_files(root)}
    lines = {path: content_lines(path, delivered) for path, delivered in files.items()}
    quarantine = table(root, "bronze", "quarantine").select("source_file", "line_number")
    taken = [quarantine]
    for source in SOURCES:
        taken.append(table(root, "bronze", source).select("source_file", "line_number"))
    every = pl.concat(taken)
    twice = every.group_by("source_file", "line_number").len().filter(pl.col("len") > 1)
    assert twice.is_empty(), f"lines taken in twice: {twice.head(5)}"
    per_file = dict(every.group_by("source_file").len().iter_rows())
    held = {}  # path → the lines it must hold: one file of each delivery (under skip) or each
    for group in deliveries(files):
        holders = [p for p in group if per_file.get(p)] if duplicates == "skip" else group
        assert len(holders) <= 1 or duplicates == "ingest", f"one delivery held twice: {holders}"
        held |= {p: lines[p] for p in (holders or group[:1])}
    assert per_file == {p: n for p, n in held.items() if n}, json.dumps(
        {
            p: (held.get(p), per_file.get(p))
            for p in set(held) | set(per_file)
            if held.get(p) != per_file.get(p)
        },
        sort_keys=True,
    )
    assert_derived_exact(root, mode=mode, n_weeks=n_weeks)
    return lines


def assert_derived_exact(root: Path, *, mode: str = "calendar", n_weeks: int = 3) -> None:
    """Silver is what bronze says, gold equals the brute-force reference, and every engine
    reads every table the same (whatever bronze holds)."""
    silver = {}
    for source in SOURCES:
        bronze = table(root, "bronze", source)
        silver[source] = table(root, "silver", source)
        expected = to_silver(source, bronze.lazy()).collect().drop("run_id")
        got = silver[source].drop("run_id").select(expected.columns)
        assert_frame_equal(got.sort(got.columns), expected.sort(expected.columns), check_row_order=True)
    gold = table(root, "gold", "print_features")
    reference = reference_gold(silver["prints"], silver["taps"], silver["pays"], mode=mode, n_weeks=n_weeks)
    assert_frame_equal(canonical(gold), canonical(reference))
    assert_readable_by_every_engine(root)


def assert_readable_by_every_engine(root: Path) -> None:
    """deltalake, Polars and DuckDB read every table with the same row count."""
    from deltalake import DeltaTable

    from jobs.query import run_query
    from jobs.run import RunContext
    from jobs.settings import load_settings

    ctx = RunContext(
        load_settings(**{f"lake_{layer}": str(root / layer) for layer in ("raw", "bronze", "silver", "gold")})
    )
    views = (
        {f"bronze.{s}": ("bronze", s) for s in SOURCES}
        | {f"silver.{s}": ("silver", s) for s in SOURCES}
        | {"gold.print_features": ("gold", "print_features")}
    )
    counts = run_query(ctx, " UNION ALL ".join(f"SELECT '{v}' AS v, count(*) AS n FROM {v}" for v in views))
    by_duckdb = dict(counts.iter_rows())
    for view, (layer, name) in views.items():
        uri = str(root / layer / name)
        assert (
            DeltaTable(uri).to_pyarrow_table().num_rows == table(root, layer, name).height == by_duckdb[view]
        ), view


def unreferenced_data_files(root: Path) -> list[Path]:
    """Parquet files under a table folder that no version of the table references."""
    from deltalake import DeltaTable

    found = []
    for log_dir in root.rglob("_delta_log"):
        folder = log_dir.parent
        table = DeltaTable(str(folder))
        referenced = set()
        for version in range(table.version() + 1):
            uris = DeltaTable(str(folder), version=version).file_uris()
            referenced |= {str(Path(u).resolve()) for u in uris}
        for path in folder.rglob("*.parquet"):
            rel = path.relative_to(folder).parts
            if rel[0].startswith(("_", ".")):
                continue
            if str(path.resolve()) not in referenced:
                found.append(path)
    return sorted(found)
