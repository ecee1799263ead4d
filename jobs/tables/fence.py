"""A takeover fences every table, so a stalled holder's planned commits can never land.

Leases alone cannot stop a writer that was frozen (SIGSTOP, a GC pause, a stalled request)
after its last lease check: when it resumes it commits whatever it planned. Delta commits are
put-if-absent of the next log version, and every commit here is made from the snapshot the run
opened before its lease check, with no rebase (:func:`jobs.tables.commits.commit_properties`). So
the run that takes the lake over first commits an empty *fence* to every table (creating a
missing one empty, with its contract): each version the stalled run could still be aiming at
is then taken, and its commit is refused (:class:`~jobs.errors.CommitRefused`, exit 6). A fence
changes no rows; readers skip it (:func:`jobs.tables.commits.is_fence`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from jobs.dictionary import arrow_schema_with_comments, lookup
from jobs.storage.errors import storage_error
from jobs.tables.commits import FENCED_BY
from jobs.tables.lake import Lake, Table, arrow_schema

log = logging.getLogger(__name__)


def fence_tables(lake: Lake, tables: Iterable[Table], *, taker: str, fenced: str) -> int:
    """Commit a fence (``fenced_by`` = ``taker``, ``fenced_run`` = ``fenced``) to every table;
    how many got one. Call right after taking the lake over, before reading any table."""
    from deltalake import CommitProperties, DeltaTable

    metadata = {FENCED_BY: taker, "fenced_run": fenced}
    count = 0
    for t in tables:
        partition_by = [t.partition_by] if t.partition_by else None
        props = CommitProperties(custom_metadata=metadata)  # an empty commit: rebasing is fine
        try:
            if lake.open(t.uri) is None:
                doc = lookup(t.uri, t.schema)
                DeltaTable.create(
                    t.uri,
                    schema=arrow_schema_with_comments(arrow_schema(t.schema), doc),
                    partition_by=partition_by,
                    description=None if doc is None else doc.description,
                    mode="ignore",  # someone created it meanwhile: fenced below instead
                    storage_options=lake.storage.delta_options(t.uri),
                    commit_properties=props,
                )
            table = lake.open(t.uri)
            if table.history(1)[0].get(FENCED_BY) != taker:
                table.create_write_transaction(
                    [],
                    mode="append",
                    schema=table.schema().to_arrow(),
                    partition_by=table.metadata().partition_columns or None,
                    commit_properties=props,
                )
        except Exception as exc:
            raise storage_error(exc, uri=t.uri, storage=lake.storage) from exc
        count += 1
    log.warning("fenced %d table(s): no commit run %s planned can land any more", count, fenced)
    return count
