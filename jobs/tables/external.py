"""Data files written outside deltalake's writer and committed later, in ONE transaction.

Engines that compute a table in pieces (gold, user bucket by user bucket, locally or on Dask
workers; bronze on Dask, raw file by raw file) write each piece as Parquet files straight into
the table's directory, collect their add actions, and commit them all at once: readers see
every piece or none. Files stay
invisible until the commit names them; a failed run removes its own files
(:func:`remove_data_files`), and ``VACUUM`` removes what a dead process left behind.

Delta file statistics (min/max/null counts) are read from each file's Parquet footer, so they
are exactly what the file holds (decimals included), not recomputed by hand.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from jobs.dictionary import arrow_schema_with_comments, lookup
from jobs.errors import StorageError
from jobs.schemas import conform
from jobs.storage.errors import storage_error
from jobs.tables.commits import commit_properties
from jobs.tables.lake import Lake, arrow_schema

log = logging.getLogger(__name__)

# Commit operations that add rows: a first commit of such files creates the table.
ADDING_OPERATIONS = ("WRITE", "CREATE TABLE")

AddActionDict = dict[str, Any]  # path, size, partition_values, modification_time, stats, rows


def write_data_files(
    lake: Lake, uri: str, frame: pl.DataFrame, *, schema: pl.Schema, partition_by: str | None, prefix: str
) -> list[AddActionDict]:
    """Write ``frame`` as Parquet data files of the table at ``uri`` WITHOUT committing.

    One file per partition value, named ``<partition>=<value>/<prefix>-<uuid>.parquet`` (the
    partition column is not stored in the file, as Delta does); an unpartitioned table gets one
    file ``<prefix>-<uuid>.parquet``. Returns one add action per file as a plain, picklable dict
    for :func:`commit_data_files`.
    """
    frame = conform(frame.lazy(), schema).collect()
    fs = lake.storage.filesystem(uri)
    root = lake.storage.strip_protocol(uri).rstrip("/")
    now = int(time.time() * 1000)
    actions = []
    for text, part in _parts(frame, partition_by):
        rel = f"{prefix}-{uuid.uuid4().hex}.parquet"
        if partition_by is not None:
            rel = f"{partition_by}={text}/{rel}"
            part = part.drop(partition_by)
        buffer = io.BytesIO()
        part.write_parquet(buffer, compression="snappy", statistics=True)
        payload = buffer.getvalue()
        try:
            fs.pipe_file(f"{root}/{rel}", payload)
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=lake.storage) from exc
        actions.append(
            {
                "path": rel,
                "size": len(payload),
                "partition_values": {} if partition_by is None else {partition_by: text},
                "modification_time": now,
                "stats": footer_stats(payload),
                "rows": part.height,
            }
        )
    return actions


def _parts(frame: pl.DataFrame, partition_by: str | None) -> list[tuple[str, pl.DataFrame]]:
    """(partition value as a path segment, rows in their order) per partition, in the order
    the values first appear; one part when unpartitioned or all rows share one value.

    One filter per value: a gold bucket of 5M rows in 53 chunks split into 6 weeks in 0.23 s,
    against 0.72 s for ``partition_by(maintain_order=True)`` (scale 10, 2026-12-07).
    """
    if partition_by is None:
        return [("", frame)]
    values = frame.get_column(partition_by).unique(maintain_order=True).to_list()
    parts = []
    for value in values:
        if len(values) == 1:
            part = frame
        elif value is None:
            part = frame.filter(pl.col(partition_by).is_null())
        else:
            part = frame.filter(pl.col(partition_by) == value)
        text = value.isoformat() if isinstance(value, date | datetime) else str(value)
        parts.append((text, part))
    return parts


def rewrite_without(
    lake: Lake, uri: str, *, column: str, values: Sequence[str], schema: pl.Schema, prefix: str
) -> tuple[list[AddActionDict], list[AddActionDict]]:
    """Files of the (unpartitioned) table at ``uri`` holding rows whose string ``column`` is
    one of ``values``: (the files, to remove; their other rows, written as new uncommitted
    files). Files whose statistics exclude every value are not read; a truncated maximum
    (a prefix of the real one) still counts as a possible match."""
    table = lake.open(uri)
    if table is None:
        return [], []
    files = pl.DataFrame(table.get_add_actions(flatten=True))
    root, options = uri.rstrip("/"), lake.storage.polars_options(uri)
    wanted = sorted(values)
    removed: list[AddActionDict] = []
    added: list[AddActionDict] = []
    for row in files.iter_rows(named=True):
        low, high = row.get(f"min.{column}"), row.get(f"max.{column}")
        if (
            low is not None
            and high is not None
            and not any(low <= v and (v <= high or v.startswith(high)) for v in wanted)
        ):
            continue
        frame = pl.read_parquet(f"{root}/{row['path']}", storage_options=options)
        kept = frame.filter(~pl.col(column).is_in(wanted))
        if kept.height == frame.height:
            continue
        removed.append({"path": row["path"], "size": row["size_bytes"], "partition_values": {}})
        if kept.height:
            added += write_data_files(lake, uri, kept, schema=schema, partition_by=None, prefix=prefix)
    return removed, added


def remove_data_files(lake: Lake, uri: str, pattern: str) -> int:
    """Delete uncommitted data files matching ``pattern`` (a glob under the table)."""
    fs = lake.storage.filesystem(uri)
    root = lake.storage.strip_protocol(uri).rstrip("/")
    try:
        found = fs.glob(f"{root}/{pattern}")
        for path in found:
            fs.rm_file(path)
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=lake.storage) from exc
    return len(found)


def commit_data_files(
    lake: Lake,
    uri: str,
    actions: Sequence[AddActionDict],
    *,
    schema: pl.Schema,
    partition_by: str | None,
    partitions: list[str] | None,
    metadata: Mapping[str, str] | None = None,
    append: bool = False,
    removes: Sequence[AddActionDict] = (),
) -> int:
    """ONE Delta commit adding the files of ``actions``; returns the new version.

    ``append`` keeps every row there is but the files of ``removes`` (see
    :func:`rewrite_without`); otherwise ``partitions`` None replaces the whole table and a list
    replaces only those values of the partition column (overwrite with partition filters). A
    table that does not exist yet is created by this commit.
    """
    from deltalake import Schema
    from deltalake.exceptions import CommitFailedError
    from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

    now = int(time.time() * 1000)
    adds = [
        AddAction(a["path"], a["size"], a["partition_values"], a["modification_time"], True, a["stats"])
        for a in actions
    ]
    gone = [RemoveAction(r["path"], True, now, r["size"], r["partition_values"]) for r in removes]
    props = commit_properties(metadata)
    doc = lookup(uri, schema)  # the data dictionary's descriptions (jobs.dictionary)
    pa_schema = arrow_schema_with_comments(arrow_schema(schema), doc)
    table = lake.open(uri)  # the snapshot the commit is made from, opened before the lease check
    read_version = None if table is None else table.version()
    lake.check_guard()
    try:
        if table is None:
            create_table_with_add_actions(
                uri,
                Schema.from_arrow(pa_schema),
                adds,
                mode="error",
                partition_by=[partition_by] if partition_by else None,
                description=None if doc is None else doc.description,
                storage_options=lake.storage.delta_options(uri),
                commit_properties=props,
            )
        else:
            filters = None if partitions is None else [(partition_by, "in", partitions)]
            table.create_write_transaction(
                [*adds, *gone],
                mode="append" if append else "overwrite",
                schema=pa_schema,
                partition_by=[partition_by] if partition_by else None,
                partition_filters=filters,
                commit_properties=props,
            )
    except StorageError:
        raise
    except CommitFailedError:
        raise lake.refused(uri, read_version) from None
    except Exception as exc:
        if table is None and lake.exists(uri):  # created meanwhile (a takeover's fence)
            raise lake.refused(uri, read_version) from None
        raise storage_error(exc, uri=uri, storage=lake.storage) from exc
    log.debug("committed %d file(s) to %s", len(adds), uri)
    version = lake.committed_version(uri)
    lake.document(uri, doc)  # a table made before the dictionary: its descriptions, once
    return version


_EXACT = re.compile(r'"\\u0000exact:([^"]*)"')


def footer_stats(payload: bytes) -> str:
    """Delta statistics JSON (numRecords, minValues, maxValues, nullCount) from a Parquet footer.

    Decimals are written as exact JSON numbers (never through ``float``).
    """
    meta = pq.read_metadata(io.BytesIO(payload))
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            name = column.path_in_schema
            stats = column.statistics
            if stats is None:
                continue
            nulls[name] = nulls.get(name, 0) + int(stats.null_count or 0)
            if not stats.has_min_max:
                continue
            lo, hi = stats.min, stats.max
            lows[name] = lo if name not in lows else min(lows[name], lo)
            highs[name] = hi if name not in highs else max(highs[name], hi)
    document = {"numRecords": meta.num_rows, "minValues": lows, "maxValues": highs, "nullCount": nulls}
    return _EXACT.sub(r"\1", json.dumps(document, default=_json_value))


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"\u0000exact:{value}"  # unquoted by footer_stats: an exact JSON number
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"no Delta statistics for {type(value).__name__}")
