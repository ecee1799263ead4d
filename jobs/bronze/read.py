"""One raw file read and checked line by line: the per-file work both bronze engines share.

:func:`read_raw` parses a file chunk by chunk, splits each chunk into good rows (handed to a
``sink``: the local engine's spool, or a Dask worker writing Parquet files) and quarantined lines
(with their reason), and counts drift and lines. Whether the file is then taken in, rejected or
left waiting is the stage's decision (:class:`jobs.bronze.job.Bronze`), made on the driver.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import polars as pl

from jobs.audit import BronzeAuditor
from jobs.bronze.events import parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.pays import first_line, parse_pays
from jobs.bronze.text import TextProbe
from jobs.errors import StorageError
from jobs.raw.compression import CannotDecompress
from jobs.raw.files import Chunk, RawFile, iter_chunks, restat
from jobs.schemas import DEFAULT_LIMITS, Limits
from jobs.storage import Storage, is_remote

# parser columns that are not bronze columns
WORK_COLUMNS = ("raw_line", "reason", "new_fields", "missing_fields")
DRIFT_KEYS = ("new_fields", "missing_fields")


class Stamp(Protocol):
    """The run whose lineage columns rows get (a RunContext, or a :class:`ReadJob`)."""

    @property
    def run_id(self) -> str: ...

    @property
    def started_at(self) -> datetime: ...


@dataclass(frozen=True)
class ReadJob:
    """What reading a file needs from its run (plain data: travels to Dask workers)."""

    run_id: str
    started_at: datetime
    limits: Limits
    chunk_bytes: int


@dataclass
class FileRead:
    """What reading one raw file found; its good rows went to the sink."""

    checksum: str = ""
    lines: int = 0
    good_rows: int = 0
    bad: list[pl.DataFrame] = field(default_factory=list)  # quarantined lines, with reasons
    drift: str | None = None
    unreadable: str | None = None  # why a local file (or any compressed one) could not be read
    moved: bool = False  # it changed while it was read: the next run takes it
    nul_byte: bool = False  # signs that it is not text (jobs.bronze.text)
    invalid_utf8_lines: int = 0


class Drift:
    """Lines per new and per missing field, counted from parsed chunks (see schemas.MANIFEST)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {key: Counter() for key in DRIFT_KEYS}

    def add(self, checked: pl.DataFrame) -> None:
        for key, counter in self.counts.items():
            column = checked[key]
            if column.null_count() == column.len():
                continue  # the usual case: nothing to count
            names = column.explode().drop_nulls().value_counts()
            counter.update(dict(names.iter_rows()))

    def merge(self, other: dict[str, dict[str, int]]) -> None:
        for key, counts in other.items():
            self.counts[key].update(counts)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            key: dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
            for key, counter in self.counts.items()
            if counter
        }

    def as_json(self) -> str | None:
        found = self.as_dict()
        return json.dumps(found, sort_keys=False) if found else None


def parse_chunks(
    source: str, chunks: Iterable[Chunk], *, limits: Limits = DEFAULT_LIMITS
) -> Iterator[pl.DataFrame]:
    """Contract-checked rows chunk by chunk; a pays file's header comes from its first chunk."""
    header: str | None = None
    for chunk in chunks:
        lines = split_lines(chunk.content, first_line=chunk.first_line).collect().lazy()  # split once
        if source == "pays":
            if chunk.first_line == 1:
                header = first_line(lines)
            yield parse_pays(lines, header=header, limits=limits).collect()
        else:
            yield parse_events(lines, limits=limits).collect()


def with_lineage(frame: pl.LazyFrame, *, source_file: str, ctx: Stamp) -> pl.LazyFrame:
    return frame.with_columns(
        pl.lit(source_file).alias("source_file"),
        pl.lit(ctx.run_id).alias("run_id"),
        pl.lit(ctx.started_at).alias("ingested_at"),
    )


def quarantine_rows(
    frame: pl.DataFrame, *, source: str, source_file: str, ctx: Stamp, file_reason: str | None = None
) -> pl.DataFrame:
    """The quarantined lines of a parsed chunk (every line when the file is rejected)."""
    lines = frame.lazy()
    if file_reason is None:
        lines = lines.filter(pl.col("reason").is_not_null())
    else:
        lines = lines.with_columns(pl.col("reason").fill_null(pl.lit(file_reason)))
    bad = lines.select(pl.lit(source).alias("source"), "line_number", "raw_line", "reason")
    return with_lineage(bad, source_file=source_file, ctx=ctx).collect()


def read_raw(
    storage: Storage,
    f: RawFile,
    *,
    job: ReadJob,
    audit: BronzeAuditor,
    sink: Callable[[pl.DataFrame], None],
) -> FileRead:
    """Parse and check every line of ``f``; good rows go to ``sink`` chunk by chunk.

    A local file that cannot be read, or a compressed file that cannot be decompressed, comes
    back ``unreadable`` (a remote read failure raises: the store, not the file, failed and the run
    is retried), one that changed meanwhile ``moved``.
    """
    digest = hashlib.md5(usedforsecurity=False)  # delivery identity, not security
    read, drift, probe = FileRead(), Drift(), TextProbe()
    try:
        chunks = probe.chunks(iter_chunks(storage, f.uri, chunk_bytes=job.chunk_bytes, digest=digest))
        for checked in parse_chunks(f.source, audit.lines(f.source, f.rel_path, chunks), limits=job.limits):
            rows = (
                with_lineage(
                    checked.lazy().filter(pl.col("reason").is_null()), source_file=f.rel_path, ctx=job
                )
                .drop(WORK_COLUMNS)
                .collect()
            )
            quarantined = quarantine_rows(checked, source=f.source, source_file=f.rel_path, ctx=job)
            audit.chunk(f.source, f.rel_path, rows, quarantined)
            sink(rows)
            read.bad.append(quarantined)
            drift.add(checked)
            probe.lines(checked)
            read.lines += checked.height
            read.good_rows += rows.height
    except CannotDecompress as exc:
        return FileRead(moved=True) if restat(storage, f) != f else FileRead(unreadable=str(exc))
    except StorageError as exc:
        if is_remote(f.uri):
            raise
        return FileRead(unreadable=f"unreadable: {exc}")
    if restat(storage, f) != f:
        return FileRead(moved=True)
    read.checksum, read.drift = digest.hexdigest(), drift.as_json()
    read.nul_byte, read.invalid_utf8_lines = probe.nul_byte, probe.invalid_utf8_lines
    return read
