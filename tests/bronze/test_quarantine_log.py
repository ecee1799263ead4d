"""A rejected raw line never sits in the quarantine table's Delta log in plain text.

Observed: a line holding a secret went into ``bronze.quarantine.raw_line`` and into the column
statistics (min/max) of the table's ``_delta_log/*.json``. The quarantine keeps statistics only
for the columns in ``delta.dataSkippingStatsColumns`` (jobs/schemas.py), set when the table is
created, and on a table made before that in one commit of its own at the next write.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from jobs.schemas import QUARANTINE, QUARANTINE_PROPERTIES
from jobs.tables.lake import arrow_schema
from tests.conftest import LocalLake

GOOD = '{"day": "2020-11-01", "event_data": {"position": 0, "value_prop": "point"}, "user_id": 7}'


def log_text(table: Path) -> str:
    return "".join(p.read_text() for p in sorted((table / "_delta_log").glob("*.json")))


def test_a_bad_line_is_in_the_quarantine_rows_but_not_in_its_delta_log(lake: LocalLake) -> None:
    bad = "ADMIN_SECRET_ACCESS_KEY=zz-bad-line-text-zz"
    lake.write_text("prints/day=2020-11-01/part-0.json", f"{GOOD}\n{bad}\n{{broken zz-second-bad-zz\n")
    lake.run()
    quarantine = lake.table("bronze", "quarantine")
    assert bad in quarantine["raw_line"].to_list()
    table = lake.root / "bronze" / "quarantine"
    text = log_text(table)
    assert "zz-bad-line-text-zz" not in text and "zz-second-bad-zz" not in text
    assert "minValues" in text and "source_file" in text  # statistics kept for the other columns
    configuration = DeltaTable(str(table)).metadata().configuration
    assert (
        configuration["delta.dataSkippingStatsColumns"]
        == QUARANTINE_PROPERTIES["delta.dataSkippingStatsColumns"]
    )
    assert "raw_line" not in configuration["delta.dataSkippingStatsColumns"].split(",")


def test_a_quarantine_made_before_gets_the_property_at_the_next_write(lake: LocalLake) -> None:
    table = lake.root / "bronze" / "quarantine"
    old = pa.Table.from_pylist([], schema=arrow_schema(QUARANTINE))
    write_deltalake(str(table), old)  # an older lake's quarantine: statistics for every column
    assert "delta.dataSkippingStatsColumns" not in DeltaTable(str(table)).metadata().configuration
    lake.write_text("prints/day=2020-11-01/part-0.json", f"{GOOD}\nzz-late-bad-line-zz\n")
    lake.run()
    assert "zz-late-bad-line-zz" in lake.table("bronze", "quarantine")["raw_line"].to_list()
    assert "zz-late-bad-line-zz" not in log_text(table)
    history = [c["operation"] for c in DeltaTable(str(table)).history()]
    assert history.count("SET TBLPROPERTIES") == 1
    lake.write_text("prints/day=2020-11-02/part-0.json", f"{GOOD}\nzz-third-zz\n")
    lake.run()  # once only
    assert [c["operation"] for c in DeltaTable(str(table)).history()].count("SET TBLPROPERTIES") == 1
