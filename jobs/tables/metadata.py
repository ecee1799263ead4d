"""Table metadata beside the rows: the data dictionary's descriptions and Delta table
properties, set on tables made before they existed, in commits that change no rows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import pyarrow as pa

from jobs.dictionary import TableDoc, arrow_schema_with_comments, undocumented
from jobs.storage import Storage, is_remote
from jobs.storage.errors import storage_error
from jobs.tables.commits import DOCUMENTED, commit_properties


class Lake(Protocol):
    """What these commits need of :class:`jobs.tables.lake.Lake` (which calls them)."""

    @property
    def storage(self) -> Storage: ...

    def open(self, uri: str, version: int | None = None) -> Any: ...
    def check_guard(self) -> None: ...
    def check_writable(self, uri: str) -> None: ...
    def refused(self, uri: str, read_version: int | None) -> Exception: ...


log = logging.getLogger(__name__)


def document(lake: Lake, uri: str, doc: TableDoc | None) -> None:
    """Give the table at ``uri`` the dictionary's descriptions of ``doc`` if it lacks them
    (a table created before the dictionary, or a description changed since): its
    description, and each column's ``comment`` metadata, in metadata-only commits marked
    :data:`DOCUMENTED` (which change no rows). Called after a data commit, so a no-op run
    commits nothing and a failed write leaves the version unchanged. Fenced like any
    commit: from the snapshot just read, guarded, no rebase; if another commit got in
    first (a takeover's fence), the descriptions are left to the next write."""
    from deltalake import write_deltalake
    from deltalake.exceptions import CommitFailedError

    table = None if doc is None else lake.open(uri)
    if doc is None or table is None or not undocumented(table, doc):
        return
    lake.check_guard()
    props = commit_properties({DOCUMENTED: doc.name})
    try:
        if table.metadata().description != doc.description:
            table.alter.set_table_description(doc.description, commit_properties=props)
        current = pa.schema(table.schema().to_arrow())
        wanted = arrow_schema_with_comments(current, doc)
        if not wanted.equals(current, check_metadata=True):
            # Column metadata of an existing table: a schema overwrite that matches no
            # rows (predicate 1 = 0) adds and removes no file; types and columns are the
            # table's own, only the comments are new.
            write_deltalake(
                table,
                pa.RecordBatchReader.from_batches(wanted, []),
                mode="overwrite",
                schema_mode="overwrite",
                predicate="1 = 0",
                partition_by=table.metadata().partition_columns or None,
                storage_options=lake.storage.delta_options(uri),
                commit_properties=props,
            )
    except CommitFailedError:
        log.warning("%s moved on before its descriptions were set: the next write sets them", uri)
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=lake.storage) from exc


def set_properties(lake: Lake, uri: str, table: Any, properties: Mapping[str, str]) -> None:
    """One ``SET TBLPROPERTIES`` commit (an older table; rows unchanged: see
    :data:`~jobs.tables.commits.MAINTENANCE_OPERATIONS`)."""
    from deltalake.exceptions import CommitFailedError

    if is_remote(uri):
        lake.check_writable(uri)
    try:
        table.alter.set_table_properties(dict(properties), commit_properties=commit_properties(None))
    except CommitFailedError:
        raise lake.refused(uri, table.version()) from None
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=lake.storage) from exc


def holds(table: Any, properties: Mapping[str, str]) -> bool:
    """Whether the table's properties hold ``properties`` already."""
    held = table.metadata().configuration
    return all(held.get(k) == v for k, v in properties.items())
