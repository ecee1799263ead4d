"""Bronze on a Dask cluster: one task per raw file, still ONE commit per table, by the driver.

With ``ENGINE=dask`` every raw file this run takes in (all sources at once) is one task on the
cluster (:mod:`jobs.cluster`). A task reads and checks its file exactly as the local engine does
(:func:`~jobs.bronze.read.read_raw`), writes the good rows as uncommitted Parquet files of the
source's bronze table and returns what it found (lines, quarantined lines with their reasons,
drift, checksum) with the files' add actions. Once EVERY task has ended, the driver judges the
files source by source as the local engine does (:meth:`~jobs.bronze.job.Bronze.judge`:
rejection, quarantine, manifest rows), passes their rows through the quality gate and commits
once, under the lake lease: the add actions, plus, when corrected files replace rows of earlier
runs, the removal of the files holding those rows, whose other rows the driver rewrites
(:func:`~jobs.tables.external.rewrite_without`). A failed task fails the run before any commit,
and every file of the run is removed.

The audit accounts for a file from its raw bytes and its rows (``lines`` / ``chunk``): the driver
replays both per file (re-reading the raw bytes, without parsing) so the reconciliation, the
quarantine threshold and the gate see what they see on the local engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import polars as pl

from jobs.audit import NoBronzeAudit
from jobs.bronze.commit import commit_metadata
from jobs.bronze.read import FileRead, ReadJob, read_raw
from jobs.bronze.spool import Spool
from jobs.errors import PipelineError
from jobs.raw.files import RawFile, iter_chunks
from jobs.schemas import BRONZE, QUARANTINE, SOURCES
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.tables import Lake
from jobs.tables.external import (
    AddActionDict,
    commit_data_files,
    remove_data_files,
    rewrite_without,
    write_data_files,
)

if TYPE_CHECKING:
    from jobs.bronze.job import Bronze
    from jobs.bronze.selection import Selection

log = logging.getLogger(__name__)

Found = tuple[FileRead, list[AddActionDict]]


def task_prefix(run_id: str, index: int) -> str:
    """Name prefix of the data files one task writes (to find them again for cleanup)."""
    return f"bronze-{run_id}-t{index:06d}"


def file_task(settings: Settings, job: ReadJob, f: RawFile, uri: str, index: int) -> Found:
    """Worker task: read and check one raw file, write its good rows; (what it found, files)."""
    lake = Lake(Storage(settings))
    actions: list[AddActionDict] = []

    def write(rows: pl.DataFrame) -> None:
        if rows.height:
            prefix = task_prefix(job.run_id, index)
            actions.extend(
                write_data_files(lake, uri, rows, schema=BRONZE[f.source], partition_by=None, prefix=prefix)
            )

    read = read_raw(lake.storage, f, job=job, audit=NoBronzeAudit(), sink=write)
    if read.unreadable is not None or read.moved:  # none of its rows may be committed
        remove_data_files(lake, uri, f"{task_prefix(job.run_id, index)}-*")
        return read, []
    return read, actions


@contextmanager
def read_files(stage: Bronze, tasks: list[tuple[str, RawFile]]) -> Iterator[Iterator[Found]]:
    """Run one task per (source, file) on the cluster; what each found, in order, one by one."""
    from jobs.cluster import TaskFailed, run_tasks

    ctx, n = stage.ctx, len(tasks)
    # Workers get this run's pipeline keys as resolved here (frozen), and no other identity's.
    worker_settings = ctx.storage.for_workers()
    try:
        with run_tasks(
            ctx.settings,
            file_task,
            [worker_settings] * n,
            [stage.job] * n,
            [f for _, f in tasks],
            [ctx.bronze(source) for source, _ in tasks],
            list(range(n)),
        ) as found:
            yield found
    except TaskFailed as failed:
        path = tasks[failed.index][1].rel_path
        raise PipelineError(
            f"bronze on Dask: raw file {path} (task {failed.index + 1} of {n}) failed "
            f"({failed.error}); nothing was committed — no bronze table changed and this "
            "run's files are removed"
        ) from None


def take_back(stage: Bronze, f: RawFile, read: FileRead, actions: list[AddActionDict]) -> Spool:
    """A file's good rows read back into a spool (memory bounded as on the local engine), shown
    to the audit as the local engine shows them: its raw chunks, then its rows."""
    rows = Spool(stage.spool_dir, budget_bytes=stage.budget)
    if read.unreadable is not None or read.moved:
        return rows  # judge() drops such a file from the audit
    audit, source, path = stage.audit, f.source, f.rel_path
    for _ in audit.lines(
        source, path, iter_chunks(stage.ctx.storage, f.uri, chunk_bytes=stage.job.chunk_bytes)
    ):
        pass
    uri = stage.ctx.bronze(source)
    root, options = uri.rstrip("/"), stage.ctx.storage.polars_options(uri)
    for a in actions:
        frame = pl.read_parquet(f"{root}/{a['path']}", storage_options=options)
        audit.chunk(source, path, frame, pl.DataFrame(schema=QUARANTINE))
        rows.add(frame)
    for bad in read.bad:
        audit.chunk(source, path, pl.DataFrame(schema=BRONZE[source]), bad)
    return rows


def commit_source(stage: Bronze, selection: Selection, found: Iterator[Found], first: int) -> int | None:
    """Judge a source's files as the local engine does and commit them ONCE."""
    ctx, source = stage.ctx, selection.source
    uri = ctx.bronze(source)
    accepted: list[AddActionDict] = []

    def stream() -> Iterator[pl.DataFrame]:
        for index, f in enumerate(selection.files, first):
            read, actions = next(found)
            rows = take_back(stage, f, read, actions)
            if stage.judge(source, f, selection.replaces(f), read):
                accepted.extend(actions)
                yield from rows.frames()
            else:  # rejected whole: its files are never committed
                rows.clear()
                remove_data_files(ctx.lake, uri, f"{task_prefix(ctx.run_id, index)}-*")

    metadata = commit_metadata(ctx, selection)  # before the commit: the days replaced rows had
    for _ in stage.audit.gate(source, stream()):  # DataError at its end: no commit
        pass
    # Corrected files: the files holding their earlier rows go, the other rows of those files
    # come back as new files (the local engine's predicate overwrite), all in the same commit.
    removes, kept = rewrite_without(
        ctx.lake,
        uri,
        column="source_file",
        values=selection.replacing,
        schema=BRONZE[source],
        prefix=f"bronze-{ctx.run_id}-rewritten",
    )
    if not accepted and not removes:
        return None
    return commit_data_files(
        ctx.lake,
        uri,
        [*accepted, *kept],
        schema=BRONZE[source],
        partition_by=None,
        partitions=None,
        metadata=metadata,
        append=True,
        removes=removes,
    )


def ingest_on_dask(stage: Bronze, manifest: pl.DataFrame) -> Iterator[tuple[str, int | None]]:
    """(source, new version or None) per source, as the driver commits them."""
    ctx = stage.ctx
    selections = [s for s in (stage.planner.select(source, manifest) for source in SOURCES) if s is not None]
    tasks = [(s.source, f) for s in selections for f in s.files]
    if not tasks:
        return
    if stage.progress:
        stage.progress(f"bronze on Dask: {len(tasks)} raw file(s), one task each")
    uncommitted = {s.source for s in selections}
    try:
        started, first = time.perf_counter(), 0
        with read_files(stage, tasks) as found:
            log.info(
                "bronze on Dask: %d raw file task(s) in %.1fs", len(tasks), time.perf_counter() - started
            )
            for selection in selections:
                version = commit_source(stage, selection, found, first)
                uncommitted.discard(selection.source)
                first += len(selection.files)
                yield selection.source, version
    finally:
        for source in sorted(uncommitted):
            removed = remove_data_files(ctx.lake, ctx.bronze(source), f"bronze-{ctx.run_id}-*")
            log.info("removed %d uncommitted bronze %s file(s) of run %s", removed, source, ctx.run_id)
