"""to_silver: bronze rows keep their values, take silver's shape and drop bronze lineage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl

from jobs.schemas import BRONZE, SILVER
from jobs.silver.transform import to_silver

LINEAGE = {
    "source_file": "x",
    "line_number": 1,
    "run_id": "r1",
    "ingested_at": datetime(2020, 11, 2, tzinfo=UTC),
}


def test_pays_pay_date_becomes_day_and_totals_stay_exact() -> None:
    bronze = pl.DataFrame(
        [
            {
                "pay_date": date(2020, 11, 2),
                "total": Decimal("123456789012.34"),
                "user_id": 7,
                "value_prop": "cellphone",
                **LINEAGE,
            }
        ],
        schema=BRONZE["pays"],
    )
    silver = to_silver("pays", bronze.lazy()).collect()
    assert silver.schema == SILVER["pays"]
    assert silver.row(0, named=True) == {
        "day": date(2020, 11, 2),
        "user_id": 7,
        "value_prop": "cellphone",
        "total": Decimal("123456789012.34"),
        "run_id": "r1",
    }


def test_events_keep_their_fields_and_the_run_id_only() -> None:
    bronze = pl.DataFrame(
        [{"day": date(2020, 11, 3), "user_id": 9, "value_prop": "prepaid", "position": 2, **LINEAGE}],
        schema=BRONZE["prints"],
    )
    silver = to_silver("prints", bronze.lazy()).collect()
    assert silver.schema == SILVER["prints"]
    assert "source_file" not in silver.columns and silver["run_id"].to_list() == ["r1"]
