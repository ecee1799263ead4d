"""Bronze rows → silver rows. Pure: LazyFrame in, LazyFrame out.

Bronze already enforces the contract, so silver's job is shape: one ``day`` column to partition
every source by (``pay_date`` becomes ``day``), exact decimal amounts, the ingestion ``run_id``
kept for reconciliation, and lineage columns that readers of silver do not need dropped.
"""

from __future__ import annotations

import polars as pl

from jobs.schemas import SILVER, conform


def to_silver(source: str, bronze: pl.LazyFrame) -> pl.LazyFrame:
    """Silver rows of ``source`` from its bronze rows."""
    if source == "pays":
        bronze = bronze.rename({"pay_date": "day"})
    return conform(bronze, SILVER[source])
