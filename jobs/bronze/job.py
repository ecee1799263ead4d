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
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from jobs.ahead import read_ahead
from jobs.audit import Audits, BronzeAuditor
from jobs.bronze.manifest import Known, Plan, current_versions, held_content, plan_ingestion
from jobs.bronze.read import Drift, FileRead, ReadJob, parse_chunks, quarantine_rows, read_raw
from jobs.bronze.spool import Spool
from jobs.bronze.text import not_text
from jobs.errors import DataError, StorageError, TableDamaged
from jobs.raw.files import RawFile, Unreadable, content_checksum, iter_chunks, list_raw, restat
from jobs.run import RunContext
from jobs.schemas import BRONZE, MANIFEST, QUARANTINE, SOURCES
from jobs.storage import is_remote
from jobs.summary import StageResult
from jobs.tables.external import ADDING_OPERATIONS
from jobs.tables.lake import watermark_broken

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
NEVER = Known("", 0, None, "")  # the version of a path the manifest does not know
DAY_COLUMN = {"prints": "day", "taps": "day", "pays": "pay_date"}


@dataclass(kw_only=True)
class FileOutcome:
    """Accounting for one raw file: ``lines == bronze_rows + quarantined_rows`` (fields by
    keyword: the order is the manifest's columns, not something to count off)."""

    source: str
    path: str
    size_bytes: int
    checksum: str
    lines: int = 0
    bronze_rows: int = 0
    quarantined_rows: int = 0
    fingerprint: str = ""
    status: str = "ingested"  # see schemas.MANIFEST_STATUSES
    reason: str | None = None
    replaces: str | None = None
    drift: str | None = None  # JSON {"new_fields": {field: lines}, "missing_fields": {…}}


@dataclass(frozen=True)
class Selection:
    """The raw files of one source a run takes in, in order."""

    source: str
    files: list[RawFile]
    plan: Plan

    @property
    def paths(self) -> list[str]:
        return [f.rel_path for f in self.files]

    @property
    def replacing(self) -> list[str]:
        """Corrected files: their rows (and quarantined lines) of earlier runs are replaced."""
        return [f.rel_path for f in self.files if f.rel_path in self.plan.current]

    def replaces(self, f: RawFile) -> str | None:
        """The checksum of the version a corrected file replaces (None: a new file)."""
        held = self.plan.current.get(f.rel_path)
        return held.checksum if held else None


def sql_list(values: Iterable[str]) -> str:
    """A SQL list of string literals for a Delta predicate (quotes doubled)."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def days_of(ctx: RunContext, source: str, predicate: pl.Expr) -> list[str]:
    """The days of the bronze rows of ``source`` matching ``predicate`` (ISO strings)."""
    uri = ctx.bronze(source)
    if not ctx.lake.exists(uri):
        return []
    column = DAY_COLUMN[source]
    days = ctx.lake.scan(uri).filter(predicate).select(pl.col(column).unique()).collect()
    return sorted(d.isoformat() for d in days[column].to_list() if d is not None)


def remove_run(ctx: RunContext, uri: str, source: str | None, run_id: str, *, why: str) -> bool:
    """Delete the rows of ``run_id`` from a bronze table, recording the days they touched."""
    days = days_of(ctx, source, pl.col("run_id") == run_id) if source else []
    return ctx.lake.delete(
        uri,
        f"run_id IN ({sql_list([run_id])})",
        metadata={"run_id": ctx.run_id, "removed_run": run_id, "why": why, "days": ",".join(days)},
    )


def bronze_commits(ctx: RunContext) -> str:
    """The bronze tables as they are now, version and commit time (JSON ``{name: [v, ts]}``):
    what the manifest commit records, so a bronze commit lost or rewritten later is noticed."""
    lake, now = ctx.lake, {}
    for name in (*SOURCES, "quarantine"):
        version = lake.version(ctx.bronze(name))
        if version is not None:
            now[name] = [version, lake.commit_timestamp(ctx.bronze(name), version)]
    return json.dumps(now, sort_keys=True)


def check_bronze_history(ctx: RunContext) -> None:
    """Bronze still holds the commits the manifest's last run recorded (``bronze_commits``).

    If one was lost (a deleted log file) or rewritten, rows of raw files the manifest calls
    ingested may be gone, and taking in more would bury that: stop with one line instead."""
    lake = ctx.lake
    last = lake.last_commit_with(ctx.manifest_uri, "run_id")
    if last is None:
        return
    recorded = json.loads(last.get("bronze_commits") or "{}")
    for name, (version, stamp) in sorted(recorded.items()):
        uri = ctx.bronze(name)
        current = lake.version(uri)
        history = lake.history(uri, after=version - 1)
        why = watermark_broken(history, version, stamp, -1 if current is None else current)
        if why:
            raise TableDamaged(
                f"bronze {name} no longer holds version {version}, which the manifest recorded "
                f"after run {last['run_id']}: it {why}, so rows of raw files the manifest lists "
                "may be gone: run python -m jobs doctor"
            )


def recover_interrupted(ctx: RunContext) -> list[str]:
    """Delete rows of runs that committed bronze data but never reached the manifest.

    Called while holding the lake lease: no other writer runs, so such a run is dead.
    A run whose rows were removed once is not warned about again.
    """
    lake = ctx.lake
    manifest_runs: set[str] = set()
    if lake.exists(ctx.manifest_uri):
        runs = lake.scan(ctx.manifest_uri).select("run_id").unique().collect()
        manifest_runs = set(runs["run_id"].to_list())
    rolled_back = []
    tables = [(ctx.bronze(s), s) for s in SOURCES] + [(ctx.quarantine_uri, None)]
    for uri, source in tables:
        history = lake.history(uri, after=max(-1, (lake.version(uri) or 0) - 50))
        removed = {c.get("removed_run") for c in history}
        for commit in history:
            run_id = commit.get("run_id")
            if (
                run_id
                and run_id not in manifest_runs
                and run_id not in removed
                and commit.get("operation") in ADDING_OPERATIONS
            ):
                log.warning("rolling back rows of interrupted run %s in %s", run_id, uri)
                remove_run(ctx, uri, source, run_id, why="interrupted before its manifest")
                removed.add(run_id)
                rolled_back.append(run_id)
    return rolled_back


def read_manifest(ctx: RunContext) -> pl.DataFrame:
    return ctx.lake.scan_or_empty(ctx.manifest_uri, MANIFEST).collect()


def pending_files(ctx: RunContext) -> dict[str, int]:
    """Number of raw files new, changed or gone since ingestion, per source (cheap: listing +
    manifest).

    Orchestrators call this to short-circuit a tick with nothing new.
    """
    manifest = read_manifest(ctx)
    pending = {}
    for source in SOURCES:
        listing = list_raw(ctx.storage, ctx.settings.lake_raw, source)
        unreadable = [u.rel_path for u in listing.unreadable]
        plan = plan_ingestion(listing.files, manifest, source=source, unreadable=unreadable)
        pending[source] = len(plan.new) + len(plan.changed) + len(plan.gone)
    return pending


def over_threshold(read: FileRead, *, max_fraction: float, min_lines: int) -> str | None:
    """Why a file read is rejected whole for its quarantined lines (None: it is taken in).

    The rule of bronze, with or without a quality audit: a file of at least ``min_lines`` lines
    (``QUALITY_QUARANTINE_MIN_LINES``) with more than ``max_fraction`` of them quarantined
    (``QUALITY_MAX_QUARANTINE_FRACTION``). A smaller file goes in, its bad lines quarantined
    (the audit warns about it)."""
    lines, bad = read.lines, read.lines - read.good_rows
    if not lines or lines < min_lines or bad / lines <= max_fraction:
        return None
    reasons = Counter(reason for frame in read.bad for reason in frame["reason"].to_list())
    top = reasons.most_common(1)
    why = f"; most common: {top[0][0]}" if top else ""
    return (
        f"{bad / lines:.1%} of its {lines:,} lines quarantined, over "
        f"QUALITY_MAX_QUARANTINE_FRACTION={max_fraction:.1%}{why}"
    )


def manifest_rows(ctx: RunContext, outcomes: Iterable[FileOutcome]) -> pl.DataFrame:
    """Manifest rows of this run for ``outcomes``."""
    return pl.DataFrame([asdict(o) for o in outcomes]).with_columns(
        pl.lit(ctx.run_id).alias("run_id"), pl.lit(ctx.started_at).alias("ingested_at")
    )


class Bronze:
    """One bronze stage run: what it took in, rejected, replaced and left waiting."""

    def __init__(
        self, ctx: RunContext, audit: BronzeAuditor, spool_dir: Path, progress: Progress | None
    ) -> None:
        self.ctx, self.audit, self.progress = ctx, audit, progress
        self.settings = ctx.settings
        self.limits = ctx.settings.limits(ctx.started_at.date())  # plausible days of this run
        self.spool_dir = spool_dir
        # every file read at once (and the quarantine) has its share of BRONZE_SPOOL_MB
        self.budget = (ctx.settings.bronze_spool_mb << 20) // (ctx.settings.read_workers() + 2)
        self.outcomes: list[FileOutcome] = []
        self.waiting: list[str] = []  # still being written: next run
        self.skipped_changes: list[str] = []
        self.replaced: list[str] = []
        self.quarantine = Spool(spool_dir, budget_bytes=self.budget)
        self.taken_paths: list[str] = []  # files whose rows this run writes or replaces
        self.deleted: list[str] = []  # held paths listed no more (RAW_ON_DELETE)
        self.retracted: list[str] = []  # … whose rows this run removed
        self.duplicates: dict[str, str] = {}  # path → the path whose identical content bronze holds
        # (source, checksum) → paths whose lines bronze holds, for duplicate deliveries
        self.holdings: dict[tuple[str, str], list[str]] = {}
        self.manifest_version = ctx.lake.version(ctx.manifest_uri)  # what this run planned from
        self.job = ReadJob(ctx.run_id, ctx.started_at, self.limits, ctx.settings.bronze_chunk_bytes)

    # -- which files ------------------------------------------------------------------------
    def to_take(self, source: str, plan: Plan) -> list[RawFile]:
        """New files, plus the changed ones RAW_ON_CHANGE lets through, minus unsettled ones."""
        todo = list(plan.new)
        for f in plan.changed:
            held = plan.current[f.rel_path]
            if not is_remote(f.uri) and content_checksum(self.ctx.storage, f) == held.checksum:
                # touched, not changed: remember the new fingerprint, take nothing in
                self.outcomes.append(
                    FileOutcome(
                        source=source,
                        path=f.rel_path,
                        size_bytes=f.size_bytes,
                        checksum=held.checksum,
                        fingerprint=f.fingerprint,
                        status="unchanged",
                    )
                )
                continue
            if self.settings.raw_on_change == "fail":
                raise DataError(
                    f"raw file {f.rel_path} changed after it was ingested (RAW_ON_CHANGE"
                    "=fail): nothing was committed; restore it, or set RAW_ON_CHANGE="
                    "replace to replace its rows"
                )
            if self.settings.raw_on_change == "skip":
                log.warning(
                    "raw file %s changed since it was ingested; skipped (RAW_ON_CHANGE=skip)", f.rel_path
                )
                self.skipped_changes.append(f.rel_path)
                continue
            todo.append(f)
        return self.settled(todo)

    def settled(self, files: list[RawFile]) -> list[RawFile]:
        """Local files modified within RAW_SETTLE_SECONDS are watched that long (once for all);
        those that changed meanwhile wait for the next run."""
        wait = self.settings.raw_settle_seconds
        young = [f for f in files if f.mtime and time.time() - f.mtime < wait]
        if not young:
            return files
        time.sleep(max(0.0, wait - (time.time() - max(f.mtime for f in young))))
        moving = {f.rel_path for f in young if restat(self.ctx.storage, f) != f}
        for path in sorted(moving):
            log.warning("raw file %s is still being written; it waits for the next run", path)
        self.waiting += sorted(moving)
        return [f for f in files if f.rel_path not in moving]

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
            self.reject(Unreadable(source, f.rel_path, read.unreadable), f)
            return False
        if read.moved:
            audit.drop(source, f.rel_path)
            log.warning("raw file %s changed while it was read; it waits for the next run", f.rel_path)
            self.waiting.append(f.rel_path)
            return False
        if (original := self.duplicate_of(source, f, read)) is not None:
            audit.drop(source, f.rel_path)  # its lines are the original's
            log.warning(
                "raw file %s is a duplicate of %s; skipped (RAW_ON_DUPLICATE=skip)", f.rel_path, original
            )
            self.duplicates[f.rel_path] = original
            self.outcomes.append(
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
        s = self.settings
        verdict = not_text(
            nul_byte=read.nul_byte,
            invalid_utf8_lines=read.invalid_utf8_lines,
            lines=read.lines,
            max_fraction=s.quality_max_quarantine_fraction,
        )
        if verdict is not None:
            audit.drop(source, f.rel_path)  # accounted for in the manifest, not the reconciliation
        elif (
            verdict := over_threshold(
                read, max_fraction=s.quality_max_quarantine_fraction, min_lines=s.quality_quarantine_min_lines
            )
        ) is not None:
            audit.rejected(source, f.rel_path)  # the audit records the rejection, as a warning
        elif f.rel_path in s.raw_reject:
            verdict = f"rejected by the operator: {s.raw_reject[f.rel_path] or 'no reason given'}"
            audit.drop(source, f.rel_path)  # accounted for in the manifest, not the reconciliation
        status, bronze_rows, quarantined = "ingested", read.good_rows, read.lines - read.good_rows
        if verdict is not None:
            log.warning("raw file %s rejected: %s", f.rel_path, verdict)
            status, bronze_rows, quarantined = "rejected", 0, self.quarantine_whole_file(source, f, verdict)
        else:
            for frame in read.bad:
                self.quarantine.add(frame)
        self.outcomes.append(
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
        self.holdings.setdefault((source, read.checksum), []).append(f.rel_path)
        return verdict is None

    def duplicate_of(self, source: str, f: RawFile, read: FileRead) -> str | None:
        """The path whose identical content bronze holds (None: none, or RAW_ON_DUPLICATE=ingest).
        Only whole identical files of one source count; a file without lines never does."""
        if self.settings.raw_on_duplicate == "ingest" or not read.lines:
            return None
        return next((p for p in self.holdings.get((source, read.checksum), []) if p != f.rel_path), None)

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

    def reject(self, bad: Unreadable, f: RawFile | None = None) -> None:
        log.warning("raw path %s rejected: %s", bad.rel_path, bad.reason)
        self.outcomes.append(
            FileOutcome(
                source=bad.source,
                path=bad.rel_path,
                size_bytes=f.size_bytes if f else 0,
                checksum="",
                fingerprint=f.fingerprint if f else "",
                status="rejected",
                reason=bad.reason,
            )
        )

    # -- one source -------------------------------------------------------------------------
    def select(self, source: str, manifest: pl.DataFrame) -> Selection | None:
        """The files of ``source`` this run takes in (None: none); unreadable paths rejected."""
        listing = list_raw(self.ctx.storage, self.settings.lake_raw, source)
        rejected_before = (
            {
                r["path"]
                for r in manifest.filter(pl.col("status") == "rejected").select("path").iter_rows(named=True)
            }
            if "status" in manifest.columns
            else set()
        )
        for bad in listing.unreadable:
            if bad.rel_path not in rejected_before:
                self.reject(bad)
        unreadable = [u.rel_path for u in listing.unreadable]
        plan = plan_ingestion(listing.files, manifest, source=source, unreadable=unreadable)
        if plan.gone:  # before duplicates: a renamed file's old path goes first
            manifest = pl.concat(
                [manifest, manifest_rows(self.ctx, self.forget(source, plan.gone))], how="diagonal_relaxed"
            )
            plan = plan_ingestion(listing.files, manifest, source=source, unreadable=unreadable)
        files = self.to_take(source, plan)
        taking = {f.rel_path for f in files}  # their content held so far is replaced now
        versions = current_versions(manifest)
        self.holdings |= held_content(
            {p: k for p, k in versions.items() if k.source == source and p not in taking}
        )
        # duplicates of content those replace: their own delivery now
        files += [
            f
            for f in listing.files
            if f.rel_path not in taking
            and versions.get(f.rel_path, NEVER).holds == "duplicate"
            and (source, versions[f.rel_path].checksum) not in self.holdings
        ]
        if not files:
            return None
        selection = Selection(source, files, plan)
        self.taken_paths += selection.paths
        self.replaced += selection.replacing
        return selection

    def ingest(self, source: str, manifest: pl.DataFrame) -> int | None:
        """Take in a source's files in ONE bronze commit; the new version (None: no commit)."""
        selection = self.select(source, manifest)
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

        return self.commit(selection, stream())

    def forget(self, source: str, gone: list[Known]) -> list[FileOutcome]:
        """Held paths listed no more: recorded once; under RAW_ON_DELETE=retract their rows and
        quarantined lines go (recording the days they touched, for silver)."""
        retract = self.settings.raw_on_delete == "retract"
        paths = [k.path for k in gone]
        if retract:
            where = f"source_file IN ({sql_list(paths)})"
            days = days_of(self.ctx, source, pl.col("source_file").is_in(paths))
            metadata = {
                "run_id": self.ctx.run_id,
                "days": ",".join(days),
                "retracted_files": json.dumps(paths),
            }
            self.ctx.lake.delete(self.ctx.bronze(source), where, metadata=metadata)
            self.retracted += paths
        self.deleted += paths
        status, on_delete = ("retracted" if retract else "deleted"), self.settings.raw_on_delete
        why = "its rows were removed" if retract else "its rows are kept"
        outcomes = [
            FileOutcome(
                source=source,
                path=k.path,
                size_bytes=k.size_bytes,
                checksum=k.checksum,
                fingerprint=k.fingerprint or "",
                status=status,
                reason=f"no longer listed under LAKE_RAW: {why} (RAW_ON_DELETE={on_delete})",
            )
            for k in gone
        ]
        for path in paths:
            log.warning("raw file %s is no longer listed: %s", path, status)
        self.outcomes += outcomes
        return outcomes

    def commit_metadata(self, selection: Selection) -> dict[str, str]:
        """What a source's commit records; replacing rows, the days they had (for silver)."""
        metadata = {"run_id": self.ctx.run_id}
        if replacing := selection.replacing:
            where = pl.col("source_file").is_in(replacing)
            metadata["days"] = ",".join(days_of(self.ctx, selection.source, where))
            metadata["replaced_files"] = json.dumps(replacing)
        return metadata

    def commit(self, selection: Selection, frames: Iterator[pl.DataFrame]) -> int | None:
        """ONE bronze commit of the frames (each file judged as they stream through the gate)."""
        source = selection.source
        uri, metadata = self.ctx.bronze(source), self.commit_metadata(selection)
        gated = self.audit.gate(source, frames)  # DataError at its end: no commit
        if selection.replacing:  # every file's rows are replaced (new ones have none)
            return self.ctx.lake.write(
                uri,
                gated,
                schema=BRONZE[source],
                mode="overwrite",
                predicate=f"source_file IN ({sql_list(selection.paths)})",
                metadata=metadata,
                schema_mode="merge",
            )
        # merge: a table written before _rescued existed gains the column
        return self.ctx.lake.write(uri, gated, schema=BRONZE[source], metadata=metadata, schema_mode="merge")

    def commit_quarantine_and_manifest(self, result: StageResult) -> None:
        lake, ctx = self.ctx.lake, self.ctx
        meta = {"run_id": ctx.run_id}
        if self.replaced or self.retracted:  # a replaced or retracted file's old lines go too
            version = lake.write(
                ctx.quarantine_uri,
                self.quarantine.frames(),
                schema=QUARANTINE,
                mode="overwrite",
                metadata=meta,
                predicate=f"source_file IN ({sql_list(self.taken_paths + self.retracted)})",
            )
        else:
            version = lake.write(
                ctx.quarantine_uri, self.quarantine.frames(), schema=QUARANTINE, metadata=meta
            )
        if version is not None:
            result.versions["quarantine"] = version
        if self.outcomes:
            rows = manifest_rows(ctx, self.outcomes)
            if lake.version(ctx.manifest_uri) != self.manifest_version:  # defense in depth
                raise StorageError(
                    f"the manifest {ctx.manifest_uri} moved while this run was taking files in "
                    "(another writer without the lake lease?): this run's manifest rows were not "
                    "written, so its bronze rows are removed by the next run"
                )
            version = lake.write(
                ctx.manifest_uri,
                rows,
                schema=MANIFEST,
                metadata={**meta, "bronze_commits": bronze_commits(ctx)},
                schema_mode="merge",
            )
            if version is not None:
                result.versions["manifest"] = version


def drift_by_source(outcomes: Iterable[FileOutcome]) -> dict[str, dict[str, dict[str, int]]]:
    """The files' drift summed per source (sources without drift left out)."""
    per_source: dict[str, Drift] = {}
    for o in outcomes:
        if o.drift:
            per_source.setdefault(o.source, Drift()).merge(json.loads(o.drift))
    return {source: d.as_dict() for source, d in sorted(per_source.items())}


def first_paths(paths: Iterable[str], shown: int = 3) -> str:
    """The first few paths for a summary note."""
    paths = list(paths)
    return ", ".join(paths[:shown]) + (f", … ({len(paths) - shown} more)" if len(paths) > shown else "")


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
        stage.commit_quarantine_and_manifest(result)
    taken = [o for o in stage.outcomes if o.status in ("ingested", "rejected")]
    result.files = len(taken)
    result.rows_in = sum(o.lines for o in taken)
    result.rows_out = sum(o.bronze_rows for o in taken)
    result.quarantined = sum(o.quarantined_rows for o in taken)
    result.details = [asdict(o) for o in stage.outcomes]
    result.drift = drift_by_source(taken)
    result.skipped = not stage.outcomes
    notes = []
    if rejected := [o for o in stage.outcomes if o.status == "rejected"]:
        notes.append(f"{len(rejected)} file(s) rejected")
        result.rejected = [o.path for o in rejected]
    if stage.replaced:
        notes.append(f"{len(stage.replaced)} corrected file(s) replaced")
    if stage.waiting:
        notes.append(f"{len(stage.waiting)} file(s) still being written: next run")
    if stage.skipped_changes:
        notes.append(f"{len(stage.skipped_changes)} changed file(s) skipped")
    if stage.duplicates:
        notes.append(f"{len(stage.duplicates)} duplicate file(s) skipped ({first_paths(stage.duplicates)})")
        result.duplicates = dict(stage.duplicates)
    if stage.deleted:
        done = "retracted" if stage.retracted else "kept"
        notes.append(f"{len(stage.deleted)} deleted file(s), rows {done} ({first_paths(stage.deleted)})")
        result.deleted, result.retracted = list(stage.deleted), list(stage.retracted)
    result.note = "; ".join(notes)
    audit.finish(result)  # records the results; summary in details
    result.seconds = time.perf_counter() - started
    return result
