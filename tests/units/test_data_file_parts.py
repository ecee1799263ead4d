"""Rows written as uncommitted data files: one file per partition value, each holding exactly that
value's rows in their original order (the order keeps files compact and statistics tight)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from jobs.settings import Settings
from jobs.storage import Storage
from jobs.tables import Lake
from jobs.tables.external import write_data_files

SCHEMA = pl.Schema({"week": pl.Date(), "key": pl.Int64(), "value": pl.String()})


def _chunked(frame: pl.DataFrame, pieces: int) -> pl.DataFrame:
    """The frame in several chunks, as the streaming engine returns it."""
    size = frame.height // pieces + 1
    return pl.concat([frame.slice(i * size, size) for i in range(pieces)], rechunk=False)


def _write(
    tmp_path: Path, frame: pl.DataFrame, partition_by: str | None
) -> list[tuple[dict[str, str], pl.DataFrame]]:
    lake = Lake(Storage(Settings(lake_bronze=str(tmp_path / "bronze"))))
    uri = str(tmp_path / "table")
    actions = write_data_files(lake, uri, frame, schema=SCHEMA, partition_by=partition_by, prefix="part-t")
    out = []
    for action in actions:
        rows = pl.from_arrow(pq.read_table(Path(uri) / action["path"]))
        assert isinstance(rows, pl.DataFrame)
        assert action["rows"] == rows.height
        out.append((action["partition_values"], rows))
    return out


def test_each_partition_file_holds_its_rows_in_their_original_order(tmp_path: Path) -> None:
    weeks = [date(2020, 11, 2), date(2020, 11, 9), date(2020, 10, 26)]
    frame = pl.DataFrame(
        {
            "week": [weeks[i % 3] for i in range(3000)],
            "key": list(range(3000, 0, -1)),  # descending: an order a sort would undo
            "value": [f"v{i}" for i in range(3000)],
        },
        schema=SCHEMA,
    )
    written = _write(tmp_path, _chunked(frame, 7), "week")
    assert [values for values, _ in written] == [{"week": w.isoformat()} for w in weeks]  # first seen first
    for values, rows in written:
        expected = frame.filter(pl.col("week") == date.fromisoformat(values["week"])).drop("week")
        assert_frame_equal(rows, expected)


def test_a_single_partition_and_an_unpartitioned_table_get_one_file_each(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"week": [date(2020, 11, 2)] * 5, "key": [5, 3, 4, 1, 2], "value": list("abcde")}, schema=SCHEMA
    )
    one = _write(tmp_path / "one", frame, "week")
    assert [values for values, _ in one] == [{"week": "2020-11-02"}]
    assert_frame_equal(one[0][1], frame.drop("week"))
    flat = _write(tmp_path / "flat", frame, None)
    assert [values for values, _ in flat] == [{}]
    assert_frame_equal(flat[0][1], frame)
