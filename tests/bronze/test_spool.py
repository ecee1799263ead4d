"""The spool holds a file's rows until the file is judged: in memory up to a byte budget, then on
local disk, always handed back whole and in order."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jobs.bronze.spool import Spool


def _frame(start: int, rows: int = 1000) -> pl.DataFrame:
    return pl.DataFrame({"line_number": range(start, start + rows), "raw_line": ["x" * 40] * rows})


def test_frames_under_the_byte_budget_stay_in_memory_and_come_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, budget_bytes=10 << 20)
    frames = [_frame(i * 1000) for i in range(5)]
    for frame in frames:
        spool.add(frame)
    assert list(tmp_path.iterdir()) == []  # nothing spilled
    assert spool.rows == 5000
    assert pl.concat(list(spool.frames())).equals(pl.concat(frames))


def test_frames_past_the_byte_budget_go_to_disk_and_come_back_whole_then_the_files_go(
    tmp_path: Path,
) -> None:
    one = _frame(0).estimated_size()
    spool = Spool(tmp_path, budget_bytes=2 * one + 1)  # room for two frames
    frames = [_frame(i * 1000) for i in range(6)]
    for frame in frames:
        spool.add(frame)
    assert len(list(tmp_path.glob("*.parquet"))) == 4  # the third frame on went to disk
    assert pl.concat(list(spool.frames())).equals(pl.concat(frames))
    assert list(tmp_path.iterdir()) == []


def test_clearing_a_spool_of_a_rejected_file_deletes_its_spilled_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path, budget_bytes=1)
    spool.add(_frame(0))
    spool.add(pl.DataFrame(schema={"line_number": pl.Int64, "raw_line": pl.String}))  # ignored
    assert len(list(tmp_path.iterdir())) == 1
    spool.clear()
    assert list(tmp_path.iterdir()) == [] and spool.rows == 0
    assert list(spool.frames()) == []
