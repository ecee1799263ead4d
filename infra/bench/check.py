"""Order-independent equality of a baseline's output and the gold table.

Both sides are cast to the GOLD schema and reduced to a fingerprint: the row count plus, per
hash seed, the sum of a 32-bit row hash over all rows (streaming, any size). Equal multisets of
rows give equal fingerprints; different ones collide with negligible probability. Column sums
are kept too, so a mismatch says which column differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from jobs.schemas import GOLD, conform

SEEDS = (17, 4242)


def scan_output(path: str | Path) -> pl.LazyFrame:
    path = Path(path)
    if (path / "_delta_log").is_dir():
        return pl.scan_delta(str(path))
    return pl.scan_parquet(str(path))


def fingerprint(frame: pl.LazyFrame) -> dict[str, Any]:
    rows = conform(frame, GOLD)
    row = pl.struct(pl.all())
    numeric = ["user_id", "position", "prior_views", "prior_clicks", "prior_payments"]
    out = rows.select(
        pl.len().alias("rows"),
        *[(row.hash(seed) % (2**32)).cast(pl.UInt64).sum().alias(f"hash_{seed}") for seed in SEEDS],
        *[pl.col(c).sum().alias(f"sum_{c}") for c in numeric],
        pl.col("clicked").sum().alias("sum_clicked"),
        (pl.col("prior_amount") * 100).cast(pl.Int64).sum().alias("sum_prior_cents"),
        pl.col("day").cast(pl.Int64).sum().alias("sum_day"),
        pl.col("week_start").cast(pl.Int64).sum().alias("sum_week_start"),
        pl.col("value_prop").str.len_bytes().sum().alias("sum_value_prop_bytes"),
    ).collect(engine="streaming")
    return {k: int(v) for k, v in out.row(0, named=True).items()}


def compare(
    expected: dict[str, Any], actual: dict[str, Any], *, shape_only: bool = False
) -> tuple[bool, str]:
    """(equal, what differs). ``shape_only`` compares the row count only (the I/O floor)."""
    keys = ["rows"] if shape_only else list(expected)
    diff = [k for k in keys if expected.get(k) != actual.get(k)]
    if not diff:
        return True, "same rows as gold" if not shape_only else "same row count and schema as gold"
    return False, "differs from gold in " + ", ".join(
        f"{k} ({actual.get(k)} vs {expected.get(k)})" for k in diff
    )
