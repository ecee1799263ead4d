"""Parsing does not depend on BRONZE_CHUNK_BYTES: every chunk size gives every line the same verdict."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from jobs.bronze.job import parse_chunks
from jobs.raw.files import iter_chunks
from jobs.settings import load_settings
from jobs.storage import Storage

GOOD = '{"day": "2020-11-02", "event_data": {"position": 1, "value_prop": "point"}, "user_id": 7}'
LINES = ["\ufeff" + GOOD, GOOD, "not json", "\ufeff" + GOOD, "", GOOD + "\r", '{"day": "2020-11-02"}']
PAYS = [
    "\ufeffpay_date,total,user_id,value_prop",
    "2020-11-02,1.50,7,point",
    "\ufeff2020-11-02,1,7,x",
    '"2020-11-02","2.00",7,point',
    "2020-11-02,abc,7,point",
]


def verdicts(path: Path, source: str, chunk_bytes: int) -> pl.DataFrame:
    storage = Storage(load_settings())
    chunks = iter_chunks(storage, str(path), chunk_bytes=chunk_bytes)
    frames = list(parse_chunks(source, chunks))
    return pl.concat(frames).select("line_number", "reason").sort("line_number")


@pytest.mark.parametrize(("source", "lines"), [("prints", LINES * 40), ("pays", PAYS + PAYS[1:] * 40)])
def test_every_chunk_size_gives_the_same_verdict_per_line_bom_included(
    tmp_path: Path, source: str, lines: list[str]
) -> None:
    path = tmp_path / "file"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    whole = verdicts(path, source, 1 << 30)
    assert whole["reason"].null_count() < whole.height  # some lines are bad
    for size in (7, 64, 1024, 4096):
        assert verdicts(path, source, size).equals(whole), size
    # the BOM of line 1 is tolerated, one inside the file is not
    first = whole.filter(pl.col("line_number") == (2 if source == "pays" else 1))
    assert first["reason"].item() is None
