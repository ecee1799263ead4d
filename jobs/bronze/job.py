"""Bronze stage: take in every new or corrected raw file exactly once.

Per source, each file to take in is read in line-aligned chunks, parsed and judged as a whole
before any of its rows may reach the source's ONE bronze commit (its rows wait in a
:class:`~jobs.bronze.spool.Spool`; the next files are read ahead on ``BRONZE_READ_WORKERS``
threads while one is written, :mod:`jobs.ahead`). A file over the quarantine threshold
is *rejected* on its own (all its lines go to quarantine with the reason), a file that cannot
be read is rejected with the reason, and a file that changed while it was read waits for the
next run. The other files go on. A corrected file (its content changed after ingestion)
replaces its rows in the same commit (``RAW_ON_CHANGE``). A file whose bytes equal content
bronze holds is a duplicate delivery, judged and dropped unseen by any commit
(``RAW_ON_DUPLICATE``). A held path listed no more is recorded once, its rows kept or retracted
(``RAW_ON_DELETE``), before duplicates are looked for: a renamed file's old path goes first.

Quarantined lines and the manifest are committed after the data, so a crash in between leaves
bronze rows whose run is not in the manifest: the next run (holding the lake lease, so that
crashed run is certainly dead) finds them through the commit metadata and deletes them before
taking those files in again. Commits that remove rows record the days they touched (``days``)
so silver rebuilds exactly those days.

Schema drift: fields a line carries beyond the contract are kept in the bronze ``_rescued``
column, and each file's new and missing fields (lines per field) are its manifest row's
``drift``; the stage result sums them per source. Bronze commits merge the schema, so a table
written before ``_rescued`` existed gains the column.

Engines: the local one reads the files in this process; ``ENGINE=dask`` reads them as one task
each on a cluster (:mod:`jobs.bronze.distributed`). Both read with
:func:`~jobs.bronze.read.read_raw` and judge with :meth:`Bronze.judge`.

This module runs the stage and judges each file read; the other concerns have their modules:
which files (:mod:`~jobs.bronze.selection`), the rejection rule (:mod:`~jobs.bronze.rejection`),
the commits (:mod:`~jobs.bronze.commit`), the run's account of its files
(:mod:`~jobs.bronze.outcome`) and bronze's history and recovery (:mod:`~jobs.bronze.history`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from jobs.ahead import read_ahead
from jobs.audit import Audits, BronzeAuditor
from jobs.bronze.commit import commit_quarantine_and_manifest, commit_source
from jobs.bronze.history import check_bronze_history, read_manifest, recover_interrupted, remove_run
from jobs.bronze.outcome import FileOutcome, Ledger
from jobs.bronze.read import FileRead, ReadJob, parse_chunks, quarantine_rows, read_raw
from jobs.bronze.rejection import rejection
from jobs.bronze.selection import Planner
from jobs.bronze.spool import Spool
from jobs.errors import DataError
from jobs.raw.files import RawFile, Unreadable, iter_chunks
from jobs.run import RunContext
from jobs.schemas import SOURCES
from jobs.summary import StageResult

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class Bronze:
    """One bronze stage run: reads and judges the files its planner selects, into its ledger."""

    def __init__(
        self, ctx: RunContext, audit: BronzeAuditor, spool_dir: Path, progress: Progress | None
    ) -> None:
        self.ctx, self.audit, self.progress = ctx, audit, progress
        self.settings = ctx.settings
        self.limits = ctx.settings.limits(ctx.started_at.date())  # plausible days of this run
        self.spool_dir = spool_dir
        # every file read at once (and the quarantine) has its share of BRONZE_SPOOL_MB
        self.budget = (ctx.settings.bronze_spool_mb << 20) // (ctx.settings.read_workers() + 2)
        self.ledger = Ledger()
        self.planner = Planner(ctx, self.ledger)
        self.quarantine = Spool(spool_dir, budget_bytes=self.budget)
        self.manifest_version = ctx.lake.version(ctx.manifest_uri)  # what this run planned from
        self.job = ReadJob(ctx.run_id, ctx.started_at, self.limits, ctx.settings.bronze_chunk_bytes)

    # -- one file ---------------------------------------------------------------------------
    def read_file(self, f: RawFile) -> tuple[Spool, FileRead]:
        """Parse and check one file (safe on a read-ahead thread: it touches only that file's
        spool and the audit's tally of that file); its good rows wait in the spool."""
        good = Spool(self.spool_dir, budget_bytes=self.budget)
        return good, read_raw(self.ctx.storage, f, job=self.job, audit=self.audit, sink=good.add)

    def judge(self, source: str, f: RawFile, replaces: str | None, read: FileRead) -> bool:
        """Account for a file read (by this process or a worker); whether its rows may be
        committed. A rejected file's lines all go to quarantine."""
        audit = self.audit
        if read.unreadable is not None:
            audit.drop(source, f.rel_path)
            self.ledger.reject(Unreadable(source, f.rel_path, read.unreadable), f)
            return False
        if read.moved:
            audit.drop(source, f.rel_path)
            log.warning("raw file %s changed while it was read; it waits for the next run", f.rel_path)
            self.ledger.waiting.append(f.rel_path)
            return False
        if (original := self.duplicate_of(source, f, read)) is not None:
            audit.drop(source, f.rel_path)  # its lines are the original's
            log.warning(
                "raw file %s is a duplicate of %s; skipped (RAW_ON_DUPLICATE=skip)", f.rel_path, original
            )
            self.ledger.duplicates[f.rel_path] = original
            self.ledger.outcomes.append(
                FileOutcome(
                    source=source,
                    path=f.rel_path,
                    size_bytes=f.size_bytes,
                    checksum=read.checksum,
                    fingerprint=f.fingerprint,
                    status="duplicate",
                    reason=f"duplicate of {original}",
                    replaces=replaces,
                )
            )
            return False
        verdict = None
        if (rejected := rejection(read, f.rel_path, self.settings)) is not None:
            verdict = rejected.reason
            if rejected.audited:
                audit.rejected(source, f.rel_path)  # the audit records the rejection, as a warning
            else:
                audit.drop(source, f.rel_path)  # accounted for in the manifest, not the reconciliation
        status, bronze_rows, quarantined = "ingested", read.good_rows, read.lines - read.good_rows
        if verdict is not None:
            log.warning("raw file %s rejected: %s", f.rel_path, verdict)
            status, bronze_rows, quarantined = "rejected", 0, self.quarantine_whole_file(source, f, verdict)
        else:
            for frame in read.bad:
                self.quarantine.add(frame)
        self.ledger.outcomes.append(
            FileOutcome(
                source=source,
                path=f.rel_path,
                size_bytes=f.size_bytes,
                checksum=read.checksum,
                lines=read.lines,
                bronze_rows=bronze_rows,
                quarantined_rows=quarantined,
                fingerprint=f.fingerprint,
                status=status,
                reason=verdict,
                replaces=replaces,
                drift=read.drift,
            )
        )
        self.ledger.holdings.setdefault((source, read.checksum), []).append(f.rel_path)
        return verdict is None

    def duplicate_of(self, source: str, f: RawFile, read: FileRead) -> str | None:
        """The path whose identical content bronze holds (None: none, or RAW_ON_DUPLICATE=ingest).
        Only whole identical files of one source count; a file without lines never does."""
        if self.settings.raw_on_duplicate == "ingest" or not read.lines:
            return None
        return next(
            (p for p in self.ledger.holdings.get((source, read.checksum), []) if p != f.rel_path), None
        )

    def quarantine_whole_file(self, source: str, f: RawFile, reason: str) -> int:
        """Every line of a rejected file into quarantine (read again: rejection is rare)."""
        count = 0
        chunks = iter_chunks(self.ctx.storage, f.uri, chunk_bytes=self.settings.bronze_chunk_bytes)
        for checked in parse_chunks(source, chunks, limits=self.limits):
            rows = quarantine_rows(
                checked,
                source=source,
                source_file=f.rel_path,
                ctx=self.ctx,
                file_reason=f"file rejected: {reason}",
            )
            self.quarantine.add(rows)
            count += rows.height
        return count

    def ingest(self, source: str, manifest: pl.DataFrame) -> int | None:
        """Take in a source's files in ONE bronze commit; the new version (None: no commit)."""
        selection = self.planner.select(source, manifest)
        if selection is None:
            return None

        def stream() -> Iterator[pl.DataFrame]:
            files = selection.files
            reads = read_ahead(self.read_file, files, workers=self.settings.read_workers())
            for i, (f, (good, read)) in enumerate(reads, 1):
                if self.progress:
                    self.progress(f"bronze {source}: file {i} of {len(files)} ({f.rel_path})")
                if self.judge(source, f, selection.replaces(f), read):  # in the files' order
                    yield from good.frames()
                else:
                    good.clear()

        return commit_source(self.ctx, self.audit, selection, stream())


IngestEngine = Callable[["Bronze", pl.DataFrame], Iterator[tuple[str, int | None]]]
"""How the files are read and each source committed: (source, new version or None) per source.
:func:`ingest_locally` here, or :func:`jobs.bronze.distributed.ingest_on_dask` (chosen by
:func:`jobs.pipeline.engines` from ``ENGINE``)."""


def ingest_locally(stage: Bronze, manifest: pl.DataFrame) -> Iterator[tuple[str, int | None]]:
    return ((source, stage.ingest(source, manifest)) for source in SOURCES)


def run_bronze(
    ctx: RunContext,
    *,
    audits: Audits,
    progress: Progress | None = None,
    engine: IngestEngine = ingest_locally,
) -> StageResult:
    """Take in new and corrected raw files of every source; nothing new means no table version.

    Files over the quarantine threshold, and files that are not text, are rejected whole here
    (:meth:`Bronze.judge`), whatever the audits. ``audits.bronze`` sees every chunk, records
    those rejections and may refuse a source's commit (the quality gate): then this run's rows
    of the sources already committed are removed again and nothing reaches the manifest.
    """
    started = time.perf_counter()
    result = StageResult("bronze")
    audit = audits.bronze(ctx)
    check_bronze_history(ctx)
    recover_interrupted(ctx)
    manifest = read_manifest(ctx)
    with tempfile.TemporaryDirectory(prefix="bronze-spool-") as spool_dir:
        stage = Bronze(ctx, audit, Path(spool_dir), progress)
        committed: list[str] = []
        ingested = engine(stage, manifest)
        try:
            for source, version in ingested:
                if version is not None:
                    result.versions[source] = version
                    committed.append(source)
        except DataError as exc:
            rolled = [
                s
                for s in committed
                if remove_run(ctx, ctx.bronze(s), s, ctx.run_id, why="quality gate failed")
            ]
            if rolled:
                headline, _, rest = str(exc).partition("\n")
                note = f" (this run's {', '.join(rolled)} rows rolled back)"
                raise DataError(headline + note + ("\n" + rest if rest else "")) from None
            raise
        commit_quarantine_and_manifest(
            ctx, stage.ledger, stage.quarantine, planned_from=stage.manifest_version, result=result
        )
    stage.ledger.summarize(result)
    audit.finish(result)  # records the results; summary in details
    result.seconds = time.perf_counter() - started
    return result
