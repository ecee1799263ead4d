"""Parsing does not depend on BRONZE_CHUNK_BYTES: every chunk size gives every line the same verdict."""

from __future__ import annotations

import bz2
import gzip
import hashlib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from jobs.bronze.read import parse_chunks
from jobs.raw.compression import CannotDecompress
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

COMPRESS = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".zst": lambda content: pa.compress(content, "zstd", asbytes=True),
}


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


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zst"])
@pytest.mark.parametrize(("source", "lines"), [("prints", LINES * 40), ("pays", PAYS + PAYS[1:] * 40)])
def test_a_compressed_file_gives_every_chunk_size_the_verdicts_of_its_plain_content(
    tmp_path: Path, source: str, lines: list[str], suffix: str
) -> None:
    content = ("\n".join(lines) + "\n").encode()
    plain, packed = tmp_path / "file", tmp_path / f"file{suffix}"
    plain.write_bytes(content)
    packed.write_bytes(COMPRESS[suffix](content))
    whole = verdicts(plain, source, 1 << 30)
    for size in (7, 1024, 1 << 30):
        assert verdicts(packed, source, size).equals(whole), size


def test_the_digest_of_a_compressed_file_is_that_of_its_bytes_as_delivered(tmp_path: Path) -> None:
    packed = tmp_path / "file.gz"
    packed.write_bytes(gzip.compress(b"a\nb\n" * 1000) + gzip.compress(b"c\n"))  # two members
    digest = hashlib.md5(usedforsecurity=False)
    chunks = list(iter_chunks(Storage(load_settings()), str(packed), chunk_bytes=64, digest=digest))
    assert b"".join(c.content for c in chunks) == b"a\nb\n" * 1000 + b"c\n"
    assert digest.hexdigest() == hashlib.md5(packed.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.mark.parametrize(
    "damaged",
    [gzip.compress(b"a\n" * 10_000)[:-20], b"\x1f\x8b not really gzip", bz2.compress(b"a\n" * 10_000)[:-10]],
)
def test_a_truncated_or_corrupt_compressed_file_cannot_be_decompressed(
    tmp_path: Path, damaged: bytes
) -> None:
    path = tmp_path / ("file.bz2" if damaged.startswith(b"BZ") else "file.gz")
    path.write_bytes(damaged)
    with pytest.raises(CannotDecompress, match="cannot decompress: "):
        list(iter_chunks(Storage(load_settings()), str(path), chunk_bytes=1024))
