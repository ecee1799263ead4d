"""The consumers' figures in the benchmark run: several lookback windows, label retrieval.

* **Windows**: gold (gates on) built again from the gated silver with ``LOOKBACK_WEEKS=3,1,4``
  into its own table, next to the gold of one window (``3``) the pipeline step built: the same
  rows, 16 more columns. Target: several windows ≤ 1.2× one window.
* **Labels**: ``python -m jobs features`` on ``LABEL_ROWS_PER_SCALE`` × scale label rows
  (:func:`make_labels`: known pairs, 1% unknown users, days from two weeks
  before the data to two weeks after it), calendar weeks, 3 weeks, against the plain DuckDB
  anchor ``labels_duckdb.py`` on the same silver (flattened by ``flatten_silver.py``, not
  counted). Both outputs are compared value by value before a time counts. Target: ours faster
  than the anchor with at most its peak memory. Without the anchor, ours is measured alone.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import polars as pl

from infra.bench.measure import Measurement, child_env, run_command
from infra.bench.report import Key, Report, Row


class BenchRun(Protocol):
    """What these steps use of the benchmark run (:class:`infra.bench.runner.Bench`)."""

    scale: float
    work: Path
    cwd: Path
    anchors: Path | None
    report: Report
    log: Callable[[str], None]

    def env(self, *, gold: str = "gold", gated: bool = True, **extra: str) -> dict[str, str]: ...

    def measure(
        self, key: Key, group: str, args: list[str], env: dict[str, str], note: str = ""
    ) -> tuple[Measurement, Row]: ...

    def record(self, m: Measurement, key: Key, group: str, *, note: str = "", stage: bool = False) -> Row: ...

    def check(self, row: Row, same: bool, why: str) -> None: ...


WINDOWS = "3,1,4"
LABEL_ROWS_PER_SCALE = 100_000
LABEL_WEEKS = 3


def run_windows(bench: BenchRun) -> None:
    """Gold with ``WINDOWS`` (gates on) on the gated silver, checked to hold gold's rows."""
    bench.log(f"gold with the lookback windows {WINDOWS}:")
    m, row = bench.measure(
        Key.GOLD_WINDOWS,
        "consumers",
        ["stage", "gold"],
        bench.env(gold="gold_windows", LOOKBACK_WEEKS=WINDOWS),
    )
    gold = bench.report.row(Key.GOLD)
    if m.ok and gold is not None:
        same = m.result.get("rows") == gold.rows
        bench.check(
            row, same, "same rows as gold" if same else f"{m.result.get('rows')} rows vs gold's {gold.rows}"
        )


def label_rows(scale: float) -> int:
    return max(1_000, int(LABEL_ROWS_PER_SCALE * scale))


def run_labels(bench: BenchRun) -> None:
    """Point-in-time features for label rows: ours, then the DuckDB anchor (when present)."""
    rows = label_rows(bench.scale)
    work = bench.work / "labels"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bench.log(f"point-in-time features for {rows:,} label rows:")
    labels = work / "labels.parquet"
    prints = pl.scan_delta(str(bench.work / "silver" / "prints")).select("user_id", "value_prop", "day")
    make_labels(prints, rows, labels)
    ours = work / "ours.parquet"
    args = ["features", "--labels", str(labels), "--out", str(ours)]
    args += ["--lookback-mode", "calendar", "--lookback-weeks", str(LABEL_WEEKS)]
    m, row = _measure(bench, Key.LABELS, [sys.executable, "-m", "jobs", *args], rows)
    anchor = bench.anchors / "labels_duckdb.py" if bench.anchors else None
    if not m.ok or anchor is None or not anchor.is_file():
        return
    flat = work / "flat"
    flatten = run_command(
        "flatten",
        [sys.executable, str(anchor.parent / "flatten_silver.py"), str(bench.work / "silver"), str(flat)],
        env=child_env(),
        cwd=bench.cwd,
    )
    if not flatten.ok:
        bench.report.problems.append(f"flatten_silver.py for the labels anchor failed: {flatten.stderr_tail}")
        return
    theirs = work / "anchor.parquet"
    cmd = [sys.executable, str(anchor), str(flat), str(labels), str(theirs), "--weeks", str(LABEL_WEEKS)]
    a, _ = _measure(bench, Key.LABELS_ANCHOR, cmd, rows)
    if a.ok:
        same, why = same_features(pl.read_parquet(ours), pl.read_parquet(theirs), rows)
        bench.check(row, same, why)
    shutil.rmtree(work, ignore_errors=True)


def _measure(bench: BenchRun, key: Key, cmd: list[str], rows: int) -> tuple[Measurement, Row]:
    bench.log(f"  {key.value} …")
    m = run_command(key.value, cmd, env=bench.env(), cwd=bench.cwd)
    m.result.setdefault("rows", rows)
    return m, bench.record(m, key, "consumers")


def make_labels(prints: pl.LazyFrame, rows: int, out: Path, seed: int = 7) -> None:
    """``rows`` label rows from the prints' (user, value prop) pairs and days, written to ``out``."""
    pairs = prints.select("user_id", "value_prop").unique().sort("user_id", "value_prop").collect()
    lo, hi = prints.select(pl.col("day").min().alias("lo"), pl.col("day").max().alias("hi")).collect().row(0)
    span = (hi - lo).days + 29
    picked = pairs.sample(rows, with_replacement=True, seed=seed)
    days = pl.Series(range(span)).sample(rows, with_replacement=True, seed=seed + 1)
    unknown = pl.Series(range(rows)).sample(rows, with_replacement=True, seed=seed + 2) % 100 == 0
    pl.DataFrame(
        {
            "label_row": pl.int_range(rows, eager=True),
            "user_id": picked["user_id"].zip_with(~unknown, pl.Series([-1] * rows)),
            "value_prop": picked["value_prop"],
            "day": pl.Series([lo + timedelta(days=d - 14) for d in days], dtype=pl.Date),
            "label": days % 2,
            "score": days.cast(pl.Float64) / 7,
        }
    ).write_parquet(out)


FEATURES = ["prior_views", "prior_clicks", "prior_payments", "prior_amount"]


def same_features(ours: pl.DataFrame, anchor: pl.DataFrame, rows: int) -> tuple[bool, str]:
    """Whether our label features equal the anchor's, value by value (ours in label order)."""
    if ours["label_row"].to_list() != list(range(rows)):
        return False, "our rows are not in label order"
    mine = ours.select("label_row", *FEATURES).with_columns(pl.col("prior_amount").cast(pl.Decimal(38, 2)))
    theirs = (
        anchor.sort("label_row")
        .select("label_row", *FEATURES)
        .with_columns(pl.col(c).cast(pl.Int64) for c in FEATURES[:3])
        .with_columns(pl.col("prior_amount").cast(pl.Decimal(38, 2)))
    )
    if mine.equals(theirs):
        return True, "same features as labels_duckdb.py"
    return False, "features differ from labels_duckdb.py"
