"""Delta table I/O: the one place that reads, writes and inspects lake tables.

Stages hand this module frames (or streams of frames) plus commit metadata; it conforms them to
the table's schema, commits atomically and translates storage failures into one clear error.
Commit metadata (``run_id``, watermarks, settings) is what makes the stages incremental.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from jobs.errors import (
    AccessDenied,
    BucketMissing,
    CredentialsRejected,
    StorageError,
    StoreUnreachable,
)
from jobs.schemas import conform
from jobs.storage import Storage, bucket_of, is_remote

log = logging.getLogger(__name__)

Data = pl.DataFrame | pl.LazyFrame | Iterable[pl.DataFrame]


@dataclass(frozen=True)
class Lake:
    """Table-level access to the lake described by a :class:`Storage`."""

    storage: Storage

    # -- inspection -------------------------------------------------------------------------
    def _open(self, uri: str, version: int | None = None) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(uri, version=version, storage_options=self.storage.delta_options(uri))
        except TableNotFoundError:
            return None
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc

    def version(self, uri: str) -> int | None:
        """Current version of the table at ``uri``, None if there is no table yet."""
        table = self._open(uri)
        return None if table is None else table.version()

    def exists(self, uri: str) -> bool:
        return self.version(uri) is not None

    def history(self, uri: str, *, after: int = -1) -> list[dict[str, Any]]:
        """Commits with a version greater than ``after``, oldest first (custom metadata inline)."""
        table = self._open(uri)
        if table is None:
            return []
        wanted = table.version() - after
        if wanted <= 0:
            return []
        commits = [c for c in table.history(limit=wanted) if c.get("version", -1) > after]
        return sorted(commits, key=lambda c: c["version"])

    def last_commit_with(self, uri: str, key: str) -> dict[str, Any] | None:
        """The newest commit whose metadata holds ``key`` (e.g. a watermark)."""
        table = self._open(uri)
        if table is None:
            return None
        for commit in table.history():
            if key in commit:
                return commit
        return None

    def partitions(self, uri: str, column: str) -> list[str]:
        """Distinct values of a partition column in the current version."""
        table = self._open(uri)
        if table is None:
            return []
        actions = pl.DataFrame(table.get_add_actions(flatten=True))
        name = f"partition.{column}"
        if actions.is_empty() or name not in actions.columns:
            return []
        return sorted(str(v) for v in actions[name].unique().to_list())

    def column_max(self, uri: str, column: str, *, version: int | None = None) -> Any:
        """Largest value of ``column`` from the file statistics of the Delta log (no data read).

        None when the table does not exist or a file has no statistics for the column.
        """
        table = self._open(uri, version)
        if table is None:
            return None
        actions = pl.DataFrame(table.get_add_actions(flatten=True))
        name = f"max.{column}"
        if actions.is_empty():
            return None
        if name not in actions.columns or actions[name].null_count():
            return None
        return actions[name].max()

    # -- reading ----------------------------------------------------------------------------
    def scan(self, uri: str, *, version: int | None = None) -> pl.LazyFrame:
        """Lazy scan of a Delta table (filters push down to partitions and file statistics)."""
        table = self._open(uri, version)
        if table is None:
            raise StorageError(f"table {uri} does not exist yet: run the stage that builds it first")
        return pl.scan_delta(table)

    def scan_or_empty(self, uri: str, schema: pl.Schema) -> pl.LazyFrame:
        table = self._open(uri)
        return pl.LazyFrame(schema=schema) if table is None else pl.scan_delta(table)

    # -- writing ----------------------------------------------------------------------------
    def write(
        self,
        uri: str,
        data: Data,
        *,
        schema: pl.Schema,
        mode: Literal["append", "overwrite"] = "append",
        partition_by: str | None = None,
        predicate: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> int | None:
        """Commit ``data`` to ``uri`` in ONE Delta transaction and return the new version.

        ``data`` may be a stream of frames: they are written as they come, so memory holds one
        frame at a time, and nothing is visible to readers until the single commit at the end.
        With ``mode="overwrite"`` and a ``predicate`` only the matching rows/partitions are
        replaced. If anything fails before the commit the table version is unchanged.
        An empty append commits nothing and returns None.
        """
        from deltalake import CommitProperties, write_deltalake

        arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
        stream_errors: list[BaseException] = []
        batches = _remember_errors(_batches(data, schema, arrow_schema), stream_errors)
        first = next(batches, None)
        if first is None and (mode == "append" or predicate is None):
            return None  # nothing to write: no table version at all
        if is_remote(uri):
            self._check_writable(uri)
        rest = _on_own_thread(batches)
        stream = itertools.chain([first] if first is not None else [], rest)
        reader = pa.RecordBatchReader.from_batches(arrow_schema, stream)
        try:
            write_deltalake(
                uri,
                reader,
                mode=mode,
                partition_by=[partition_by] if partition_by else None,
                predicate=predicate,
                storage_options=self.storage.delta_options(uri),
                commit_properties=CommitProperties(custom_metadata=dict(metadata or {})),
            )
        except StorageError:
            raise
        except Exception as exc:
            if stream_errors:  # the data stream itself failed (e.g. a quality gate): say so
                raise stream_errors[0] from None
            raise storage_error(exc, uri=uri, storage=self.storage) from exc
        finally:
            rest.close()  # stops the producer thread if the writer gave up early
        version = self.version(uri)
        assert version is not None
        log.debug("committed %s version %s", uri, version)
        return version

    def _check_writable(self, uri: str) -> None:
        """Fail with one clear line before any data file is written if this identity may not
        write at ``uri`` (a refused upload inside deltalake also prints a Rust panic)."""
        fs = self.storage.filesystem(uri)
        probe = f"{self.storage.strip_protocol(uri)}/_write_check-{uuid.uuid4().hex}"
        try:
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc

    # -- files written elsewhere, committed once (the Dask engine) ----------------------------
    def write_files(self, uri: str, frame: pl.DataFrame, *, schema: pl.Schema, partition_by: str,
                    prefix: str) -> list[dict[str, Any]]:
        """Write ``frame`` as Parquet data files of the table at ``uri`` WITHOUT committing.

        One file per partition value, named ``<partition>=<value>/<prefix>-<uuid>.parquet``
        (the partition column is not stored in the file, as Delta does). Returns one add action
        per file as a plain dict (see :meth:`commit_files`). Files stay invisible to readers
        until a commit names them; uncommitted ones are removed by :meth:`remove_files` or by
        ``VACUUM``.
        """
        import io
        import json

        frame = conform(frame.lazy(), schema).collect()
        fs = self.storage.filesystem(uri)
        root = self.storage.strip_protocol(uri).rstrip("/")
        now = int(time.time() * 1000)
        actions = []
        for (value,), part in frame.partition_by(partition_by, as_dict=True,
                                                 maintain_order=True).items():
            text = value.isoformat() if hasattr(value, "isoformat") else str(value)
            rel = f"{partition_by}={text}/{prefix}-{uuid.uuid4().hex}.parquet"
            data = part.drop(partition_by)
            buffer = io.BytesIO()
            data.write_parquet(buffer, compression="snappy", statistics=True)
            payload = buffer.getvalue()
            try:
                fs.pipe_file(f"{root}/{rel}", payload)
            except Exception as exc:
                raise storage_error(exc, uri=uri, storage=self.storage) from exc
            actions.append({"path": rel, "size": len(payload),
                            "partition_values": {partition_by: text},
                            "modification_time": now, "stats": json.dumps(_file_stats(data)),
                            "rows": data.height})
        return actions

    def remove_files(self, uri: str, pattern: str) -> int:
        """Delete uncommitted data files matching ``pattern`` (a glob under the table)."""
        fs = self.storage.filesystem(uri)
        root = self.storage.strip_protocol(uri).rstrip("/")
        found = fs.glob(f"{root}/{pattern}")
        for path in found:
            fs.rm_file(path)
        return len(found)

    def commit_files(self, uri: str, actions: list[dict[str, Any]], *, schema: pl.Schema,
                     partition_by: str, partitions: list[str] | None,
                     metadata: Mapping[str, str] | None = None) -> int:
        """ONE Delta commit adding the files of ``actions`` and return the new version.

        ``partitions`` None replaces the whole table; otherwise only those values of the
        partition column are replaced (overwrite with partition filters). A table that does not
        exist yet is created by this commit.
        """
        from deltalake import CommitProperties, DeltaTable, Schema
        from deltalake.transaction import AddAction, create_table_with_add_actions

        arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
        adds = [AddAction(a["path"], a["size"], a["partition_values"], a["modification_time"],
                          True, a["stats"]) for a in actions]
        props = CommitProperties(custom_metadata=dict(metadata or {}))
        options = self.storage.delta_options(uri)
        try:
            table = self._open(uri)
            if table is None:
                create_table_with_add_actions(uri, Schema.from_arrow(arrow_schema), adds,
                                              mode="error", partition_by=[partition_by],
                                              storage_options=options, commit_properties=props)
            else:
                filters = None if partitions is None else [(partition_by, "in", partitions)]
                table.create_write_transaction(adds, mode="overwrite", schema=arrow_schema,
                                               partition_by=[partition_by],
                                               partition_filters=filters,
                                               commit_properties=props)
        except StorageError:
            raise
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc
        version = DeltaTable(uri, storage_options=options).version()
        log.debug("committed %d file(s) to %s version %s", len(adds), uri, version)
        return version

    def delete(self, uri: str, predicate: str) -> None:
        """Delete matching rows (used to roll back an interrupted run's rows)."""
        table = self._open(uri)
        if table is not None:
            table.delete(predicate)

    # -- small files next to the tables (export, markers, reports) -----------------------------
    def put_file(self, uri: str, payload: bytes, *, tag: str) -> None:
        """Write a whole file so no reader sees half of it: a temporary name, then a rename."""
        fs = self.storage.filesystem(uri)
        path = self.storage.strip_protocol(uri)
        tmp = f"{path}.tmp-{tag}"
        try:
            with fs.open(tmp, "wb") as handle:
                handle.write(payload)
            fs.mv(tmp, path)
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc

    def read_file(self, uri: str) -> bytes | None:
        """A small file's content, None when it does not exist."""
        fs = self.storage.filesystem(uri)
        path = self.storage.strip_protocol(uri)
        try:
            if not fs.exists(path):
                return None
            with fs.open(path, "rb") as handle:
                return handle.read()
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc


def _remember_errors(batches: Iterator[pa.RecordBatch],
                     sink: list[BaseException]) -> Iterator[pa.RecordBatch]:
    """Pass ``batches`` through, remembering an exception their producer raises: deltalake
    consumes the stream in Rust and would turn it into an opaque Arrow error."""
    try:
        yield from batches
    except Exception as exc:
        sink.append(exc)
        raise


def _on_own_thread(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Produce ``batches`` on a plain Python thread, handing them over one at a time.

    deltalake pulls the stream from inside its async runtime; code in the stream that itself
    uses deltalake (reading another table, e.g. a quality check of bronze on S3) would panic
    there ("Cannot start a runtime from within a runtime"). Memory stays at ~2 batches.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(exc)

    context = contextvars.copy_context()  # keeps run id / stage for log records
    thread = threading.Thread(target=context.run, args=(produce,), daemon=True,
                              name="lake-write-stream")
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _file_stats(frame: pl.DataFrame) -> dict[str, Any]:
    """Delta file statistics (numRecords, minValues, maxValues, nullCount) as delta-rs writes."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return float(value)  # Decimal

    lows = frame.select(pl.all().min()).row(0, named=True) if frame.height else {}
    highs = frame.select(pl.all().max()).row(0, named=True) if frame.height else {}
    nulls = frame.null_count().row(0, named=True) if frame.height else {}
    return {
        "numRecords": frame.height,
        "minValues": {k: plain(v) for k, v in lows.items() if v is not None},
        "maxValues": {k: plain(v) for k, v in highs.items() if v is not None},
        "nullCount": {k: int(v) for k, v in nulls.items()},
    }


def _batches(data: Data, schema: pl.Schema, arrow_schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    frames: Iterable[pl.DataFrame]
    if isinstance(data, pl.LazyFrame):
        frames = [data.collect(engine="streaming")]
    elif isinstance(data, pl.DataFrame):
        frames = [data]
    else:
        frames = data
    for frame in frames:
        if frame.is_empty():
            continue
        table = conform(frame.lazy(), schema).collect().to_arrow().cast(arrow_schema)
        yield from table.to_batches()


def storage_error(exc: BaseException, *, uri: str, storage: Storage) -> StorageError:
    """One readable line for the usual ways object storage fails.

    It names the location, the endpoint and the access key (never the secret) and says what to
    check; the subclass (unreachable, credentials, access, bucket) lets callers react.
    """
    text = str(exc)
    low = _chain_text(exc).lower()
    if is_remote(uri):
        endpoint = storage.endpoint
        who = storage.settings.aws_access_key_id or "no access key"
        bucket = bucket_of(uri)
        if re.search(r"\b403\b|forbidden", low) and not _CODES.search(low):
            # A HEAD answer has no body: ask again with a GET to learn the real reason.
            low += " " + _probe(storage, uri).lower()
        if "invalidaccesskeyid" in low or "does not exist in our records" in low:
            return CredentialsRejected(
                f"the object store at {endpoint} does not know access key {who!r} (reading "
                f"{uri}): check {storage.key_variables[0]}, and that the identities were created "
                "(make stack-up / python -m infra.stack seed)"
            )
        if "signaturedoesnotmatch" in low or "signature we calculated does not match" in low:
            return CredentialsRejected(
                f"the object store at {endpoint} rejected the secret of access key {who!r} "
                f"(reading {uri}): check {storage.key_variables[1]}"
            )
        if "nosuchbucket" in low or "specified bucket does not exist" in low:
            return BucketMissing(
                f"bucket {bucket!r} does not exist at {endpoint} (for {uri}): check the LAKE_* "
                "settings or create the buckets (python -m infra.stack seed)"
            )
        if any(s in low for s in ("accessdenied", "access denied", "forbidden", " 403")):
            return AccessDenied(
                f"access denied: identity {who!r} may not use {uri} at {endpoint}: check that "
                f"these are the right keys and that bucket {bucket!r} exists and is granted to "
                "them (the pipeline reads raw and writes bronze/silver/gold; the analyst only "
                "reads gold)"
            )
        if "commitfailed" in low or ("concurrent" in low and "transaction" in low):
            return StorageError(
                f"another writer committed to {uri} at the same time, so this commit was "
                "refused and nothing was written: run the stage again"
            )
        if any(s in low for s in ("connection refused", "error sending request", "connect",
                                  "dns", "timed out", "timeout", "could not connect",
                                  "failed to lookup address", "unreachable")):
            return StoreUnreachable(
                f"cannot reach the object store at {endpoint} (for {uri}): check "
                "AWS_ENDPOINT_URL and that the server is running (make stack-up)"
            )
        where = f"{uri} at {endpoint} as {who}"
    else:
        where = uri
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return StorageError(f"cannot access {where}: {first}")


_CODES = re.compile(r"invalidaccesskeyid|signaturedoesnotmatch|accessdenied|nosuchbucket|"
                    r"does not exist in our records|signature we calculated")


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and its causes (s3fs hides the S3 error code in them)."""
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def _probe(storage: Storage, uri: str) -> str:
    """The S3 error code of a listing under ``uri`` ('' if the listing works)."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    try:
        storage.s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return f"{code} {exc}"
    return ""
