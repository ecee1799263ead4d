"""Baseline: the I/O floor — read the silver columns gold needs, write gold's shape, no logic.

Reads every column gold reads (prints, taps and pays, fully decoded) and writes one row per
print in the GOLD schema, as a Delta table partitioned by ``week_start`` like gold itself, with
constant features. No feature can be computed faster than this reads and writes.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from infra.bench.inputs import COLUMNS
from jobs.schemas import AMOUNT, GOLD, GOLD_PARTITION, conform
from jobs.settings import Settings
from jobs.storage import join
from jobs.weeks import week_start


def run(settings: Settings, out: str) -> int:
    from deltalake import write_deltalake

    scans = {
        s: pl.scan_delta(join(settings.lake_silver, s)).select(COLUMNS[s]) for s in ("prints", "taps", "pays")
    }
    # Decode every column of taps and pays (a cheap reduction, so nothing is skipped).
    pl.collect_all([scans[s].select(pl.all().max()) for s in ("taps", "pays")], engine="streaming")
    shaped = conform(
        scans["prints"].with_columns(
            week_start(pl.col("day")).alias("week_start"),
            pl.lit(False).alias("clicked"),
            *[pl.lit(0, dtype=pl.Int64).alias(c) for c in ("prior_views", "prior_clicks", "prior_payments")],
            pl.lit(0, dtype=pl.Int64).cast(AMOUNT).alias("prior_amount"),
        ),
        GOLD,
    )
    schema = pl.DataFrame(schema=GOLD).to_arrow().schema
    rows = 0

    def batches():  # type: ignore[no-untyped-def]
        nonlocal rows
        for frame in shaped.collect_batches(engine="streaming", chunk_size=1_000_000):
            rows += frame.height
            yield from frame.to_arrow().cast(schema).to_batches()

    write_deltalake(
        out,
        pa.RecordBatchReader.from_batches(schema, batches()),
        mode="overwrite",
        partition_by=[GOLD_PARTITION],
    )
    return rows
