"""Delta table I/O: the one place that reads, writes and inspects lake tables.

Files written elsewhere and committed later live in :mod:`jobs.tables.external`.

Stages hand this module frames (or streams of frames) plus commit metadata; it conforms them to
the table's schema, commits atomically and translates storage failures into one clear error.
Commit metadata (``run_id``, watermarks, settings) is what makes the stages incremental.

Every commit is *fenced*: it is made from the exact snapshot the run opened before its lease
check, with no automatic rebase onto newer versions (``max_commit_retries=0``). A run that took
the lake over from a stalled holder first commits a fence to every table
(:mod:`jobs.tables.fence`), so whatever the stalled run planned before can no longer land, however
long it was frozen: its commit is refused with :class:`~jobs.errors.CommitRefused` (exit 6).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from jobs.dictionary import TableDoc, arrow_schema_with_comments, lookup
from jobs.errors import CommitRefused, StorageError
from jobs.schemas import conform
from jobs.storage import Storage, is_remote
from jobs.storage.errors import storage_error, table_damage
from jobs.tables import metadata as table_metadata
from jobs.tables.commits import FENCED_BY, commit_properties, is_fence
from jobs.tables.threads import produce_on_own_thread, remember_errors

log = logging.getLogger(__name__)

Data = pl.DataFrame | pl.LazyFrame | Iterable[pl.DataFrame]


@dataclass(frozen=True)
class Table:
    """A table of the lake: its name (``layer/name``), location, contract and partitioning."""

    name: str
    uri: str
    schema: pl.Schema
    partition_by: str | None = None


@dataclass(frozen=True)
class Lake:
    """Table-level access to the lake described by a :class:`Storage`.

    ``guard`` is called right before every commit and raises to prevent it: the run's lake
    lease check (:meth:`jobs.lease.Lease.ensure`), so a run that lost its lease commits nothing.
    """

    storage: Storage
    guard: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.storage.trust_ca_bundle()  # before any Rust client (deltalake, polars) is built

    def check_guard(self) -> None:
        if self.guard is not None:
            self.guard()

    # -- inspection -------------------------------------------------------------------------
    def open(self, uri: str, version: int | None = None) -> Any:
        """The ``DeltaTable`` at ``uri`` (None when there is no table yet)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(uri, version=version, storage_options=self.storage.delta_options(uri))
        except TableNotFoundError:
            return None
        except Exception as exc:
            damaged = table_damage(exc, uri=uri, storage=self.storage)
            raise (damaged or storage_error(exc, uri=uri, storage=self.storage)) from exc

    def version(self, uri: str) -> int | None:
        """Current version of the table at ``uri``, None if there is no table yet."""
        table = self.open(uri)
        return None if table is None else table.version()

    def exists(self, uri: str) -> bool:
        return self.version(uri) is not None

    def history(self, uri: str, *, after: int = -1) -> list[dict[str, Any]]:
        """Commits with a version greater than ``after``, oldest first (custom metadata inline)."""
        table = self.open(uri)
        if table is None:
            return []
        wanted = table.version() - after
        if wanted <= 0:
            return []
        commits = [c for c in table.history(limit=wanted) if c.get("version", -1) > after]
        return sorted(commits, key=lambda c: c["version"])

    def last_commit_with(self, uri: str, key: str) -> dict[str, Any] | None:
        """The newest commit whose metadata holds ``key`` (e.g. a watermark)."""
        table = self.open(uri)
        if table is None:
            return None
        for commit in table.history():
            if key in commit:
                return commit
        return None

    def partitions(self, uri: str, column: str) -> list[str]:
        """Distinct values of a partition column in the current version."""
        table = self.open(uri)
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
        table = self.open(uri, version)
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
        table = self.open(uri, version)
        if table is None:
            raise StorageError(f"table {uri} does not exist yet: run the stage that builds it first")
        return self.scan_table(table)

    def scan_or_empty(self, uri: str, schema: pl.Schema) -> pl.LazyFrame:
        table = self.open(uri)
        return pl.LazyFrame(schema=schema) if table is None else self.scan_table(table)

    def scan_table(self, table: Any) -> pl.LazyFrame:
        """Lazy scan of an opened ``DeltaTable``: polars reads its data files with the table's
        options plus polars' own retry policy (Storage.polars_retry_options)."""
        return pl.scan_delta(table, storage_options=self.storage.polars_retry_options(table.table_uri))

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
        schema_mode: Literal["merge"] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> int | None:
        """Commit ``data`` to ``uri`` in ONE Delta transaction and return the new version.

        ``data`` may be a stream of frames: they are written as they come, so memory holds one
        frame at a time, and nothing is visible to readers until the single commit at the end.
        With ``mode="overwrite"`` and a ``predicate`` only the matching rows/partitions are
        replaced. ``schema_mode="merge"`` adds columns the table does not have yet (older lakes).
        If anything fails before the commit the table version is unchanged.
        An empty append commits nothing and returns None.
        ``properties`` (Delta table properties) are the table's from its creation; a table made
        before they were given gets them in one commit of their own before this write.

        The table carries the data dictionary's descriptions (:mod:`jobs.dictionary`): a new
        table is created with them; one that lacks them gets them once, right after this
        commit (:meth:`document`).
        """
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError

        table = self.open(uri)  # the snapshot this commit is made from (the guard runs after it)
        if properties and table is not None and not table_metadata.holds(table, properties):
            table_metadata.set_properties(self, uri, table, properties)
            table = self.open(uri)
        read_version = None if table is None else table.version()
        doc = lookup(uri, schema)
        pa_schema = arrow_schema_with_comments(arrow_schema(schema), doc)
        stream_errors: list[BaseException] = []
        batches = remember_errors(self._guarded(_batches(data, schema, pa_schema)), stream_errors)
        first = next(batches, None)
        if first is None and (mode == "append" or predicate is None):
            return None  # nothing to write: no table version at all
        if is_remote(uri):
            self.check_writable(uri)
        # Code inside the stream (quality gates) may use deltalake: keep it off its threads.
        rest = produce_on_own_thread(batches)  # a generator: close() stops the producer
        stream = itertools.chain([first] if first is not None else [], rest)
        reader = pa.RecordBatchReader.from_batches(pa_schema, stream)
        try:
            write_deltalake(  # type: ignore[misc]
                uri if table is None else table,
                reader,
                mode=mode,  # type: ignore[arg-type]
                partition_by=[partition_by] if partition_by else None,
                predicate=predicate,
                schema_mode=schema_mode,
                description=doc.description if doc is not None and table is None else None,
                storage_options=self.storage.delta_options(uri),
                commit_properties=commit_properties(metadata),
                configuration=dict(properties) if properties and table is None else None,
            )
        except StorageError:
            raise
        except CommitFailedError:
            raise self.refused(uri, read_version) from None
        except Exception as exc:
            if stream_errors:  # the data stream itself failed (e.g. a quality gate): say so
                raise stream_errors[0] from None
            raise storage_error(exc, uri=uri, storage=self.storage) from exc
        finally:
            rest.close()  # stops the producer thread if the writer gave up early
        version = self.committed_version(uri)
        self.document(uri, doc)
        return version

    def document(self, uri: str, doc: TableDoc | None) -> None:
        """Give the table at ``uri`` the descriptions of ``doc`` if it lacks them
        (:func:`jobs.tables.metadata.document`)."""
        table_metadata.document(self, uri, doc)

    def refused(self, uri: str, read_version: int | None) -> CommitRefused:
        """Why a commit planned from ``read_version`` was refused: the run that fenced the
        table after taking the lake over, or else the commit that got in first."""
        newer = self.history(uri, after=-1 if read_version is None else read_version)
        fence = next((c for c in newer if is_fence(c)), None)
        if fence is not None:
            why = (
                f"run {fence.get('fenced_run', '?')} was taken over by run {fence[FENCED_BY]}, "
                f"which fenced {uri} at version {fence.get('version')}"
            )
        elif newer:
            last = newer[-1]
            why = (
                f"{uri} moved on to version {last.get('version')} ({last.get('operation')} by "
                f"run {last.get('run_id') or last.get('maintenance_run') or '?'}) since this run read it"
            )
        else:
            why = f"{uri} changed since this run read it"
        return CommitRefused(
            f"this run's commit was refused and nothing of it landed: {why}; "
            "the run that holds the lake now does this work, or run again once it is done"
        )

    def commit_timestamp(self, uri: str, version: int) -> int | None:
        """When the commit ``version`` of ``uri`` was made (ms; its identity in watermarks),
        None when the log no longer holds it."""
        for commit in self.history(uri, after=version - 1):
            if commit.get("version") == version:
                return int(commit["timestamp"])
        return None

    def committed_version(self, uri: str) -> int:
        """The version a commit just made (a missing one is a storage failure, not a bug)."""
        version = self.version(uri)
        if version is None:
            raise StorageError(f"the commit to {uri} is not visible: check the object store")
        log.debug("committed %s version %s", uri, version)
        return version

    def _guarded(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The batches, then the guard: the writer commits only after the last batch."""
        yield from batches
        self.check_guard()

    def check_writable(self, uri: str) -> None:
        """Fail with one clear line before any data file is written if this identity may not
        write at ``uri`` (a refused upload inside deltalake also prints a Rust panic)."""
        fs = self.storage.filesystem(uri)
        probe = f"{self.storage.strip_protocol(uri)}/_write_check-{uuid.uuid4().hex}"
        try:
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc

    def delete(self, uri: str, predicate: str, *, metadata: Mapping[str, str] | None = None) -> bool:
        """Delete matching rows in one commit (rolling back a run); whether any row went."""
        from deltalake.exceptions import CommitFailedError

        table = self.open(uri)
        if table is None:
            return False
        before = table.version()
        self.check_guard()
        try:
            table.delete(predicate, commit_properties=commit_properties(metadata))
        except CommitFailedError:
            raise self.refused(uri, before) from None
        except Exception as exc:
            raise storage_error(exc, uri=uri, storage=self.storage) from exc
        return bool(table.version() != before)

    # -- small files next to the tables (export, markers, reports) -----------------------------
    def put_file(self, uri: str, payload: bytes, *, tag: str) -> None:
        """Write a whole file so no reader sees half of it: a temporary name, then a rename."""
        fs = self.storage.filesystem(uri)
        path = self.storage.strip_protocol(uri)
        tmp = f"{path}.tmp-{tag}"
        self.check_guard()
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


def arrow_schema(schema: pl.Schema) -> pa.Schema:
    """The Arrow schema Delta stores for a Polars table schema."""
    return pl.DataFrame(schema=schema).to_arrow().schema


def _batches(data: Data, schema: pl.Schema, pa_schema: pa.Schema) -> Iterator[pa.RecordBatch]:
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
        table = conform(frame.lazy(), schema).collect().to_arrow().cast(pa_schema)
        yield from table.to_batches()
