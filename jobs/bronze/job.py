"""Bronze stage: ingest every new raw file exactly once.

Per source, the new files are parsed one at a time and streamed into ONE commit of the bronze
table (memory holds one file). Quarantined lines and the manifest are committed after the data,
so a crash in between leaves bronze rows whose run is not in the manifest: the next run finds
them through the commit metadata and deletes them before re-ingesting those files.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import polars as pl

from jobs.bronze.events import parse_events
from jobs.bronze.lines import split_lines
from jobs.bronze.manifest import plan_ingestion
from jobs.bronze.pays import first_line, parse_pays
from jobs.quality.gate import BronzeAudit
from jobs.raw.files import Chunk, RawFile, iter_chunks, list_raw_files
from jobs.run import RunContext
from jobs.schemas import BRONZE, DEFAULT_LIMITS, MANIFEST, QUARANTINE, SOURCES, Limits
from jobs.summary import StageResult

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class FileOutcome:
    """Accounting for one raw file: ``lines == bronze_rows + quarantined_rows``."""

    source: str
    path: str
    size_bytes: int
    checksum: str
    lines: int
    bronze_rows: int
    quarantined_rows: int


def parse_chunks(source: str, chunks: Iterable[Chunk], *,
                 limits: Limits = DEFAULT_LIMITS) -> Iterator[pl.DataFrame]:
    """Contract-checked rows chunk by chunk; a pays file's header comes from its first chunk."""
    header: str | None = None
    for chunk in chunks:
        lines = split_lines(chunk.content, first_line=chunk.first_line)
        if source == "pays":
            if chunk.first_line == 1:
                header = first_line(lines)
            yield parse_pays(lines, header=header, limits=limits).collect()
        else:
            yield parse_events(lines, limits=limits).collect()


def with_lineage(frame: pl.LazyFrame, *, source_file: str, ctx: RunContext) -> pl.LazyFrame:
    return frame.with_columns(
        pl.lit(source_file).alias("source_file"),
        pl.lit(ctx.run_id).alias("run_id"),
        pl.lit(ctx.started_at).alias("ingested_at"),
    )


def quarantine_rows(frame: pl.DataFrame, *, source: str, source_file: str,
                    ctx: RunContext) -> pl.DataFrame:
    bad = frame.lazy().filter(pl.col("reason").is_not_null()).select(
        pl.lit(source).alias("source"), "line_number", "raw_line", "reason"
    )
    return with_lineage(bad, source_file=source_file, ctx=ctx).collect()


def recover_interrupted(ctx: RunContext) -> list[str]:
    """Delete rows of runs that committed bronze data but never reached the manifest."""
    lake = ctx.lake
    manifest_runs: set[str] = set()
    if lake.exists(ctx.manifest_uri):
        runs = lake.scan(ctx.manifest_uri).select("run_id").unique().collect()
        manifest_runs = set(runs["run_id"].to_list())
    rolled_back = []
    for uri in [ctx.bronze(s) for s in SOURCES] + [ctx.quarantine_uri]:
        for commit in lake.history(uri, after=max(-1, (lake.version(uri) or 0) - 20)):
            run_id = commit.get("run_id")
            if run_id and run_id not in manifest_runs and commit.get("operation") == "WRITE":
                log.warning("rolling back rows of interrupted run %s in %s", run_id, uri)
                lake.delete(uri, f"run_id = '{run_id}'")
                rolled_back.append(run_id)
    return rolled_back


def pending_files(ctx: RunContext) -> dict[str, int]:
    """Number of raw files not ingested yet, per source (cheap: listing + manifest only).

    Orchestrators call this to short-circuit a tick with nothing new.
    """
    manifest = ctx.lake.scan_or_empty(ctx.manifest_uri, MANIFEST).select("path", "size_bytes").collect()
    pending = {}
    for source in SOURCES:
        plan = plan_ingestion(list_raw_files(ctx.storage, ctx.settings.lake_raw, source), manifest)
        pending[source] = len(plan.new)
    return pending


def run_bronze(ctx: RunContext, *, progress: Progress | None = None) -> StageResult:
    """Ingest new raw files of every source; no new file means no table version anywhere."""
    started = time.perf_counter()
    lake, settings = ctx.lake, ctx.settings
    result = StageResult("bronze")
    audit = BronzeAudit(ctx)  # quality hook (jobs/quality/gate.py)
    recover_interrupted(ctx)
    manifest = lake.scan_or_empty(ctx.manifest_uri, MANIFEST).select("path", "size_bytes").collect()
    outcomes: list[FileOutcome] = []
    quarantined: list[pl.DataFrame] = []

    for source in SOURCES:
        listed = list_raw_files(ctx.storage, settings.lake_raw, source)
        plan = plan_ingestion(listed, manifest)
        for f in plan.changed:
            log.warning("raw file %s changed size since it was ingested; not re-ingested", f.rel_path)
            result.note = f"{len(plan.changed)} changed file(s) skipped"
        if not plan.new:
            continue

        def stream(files: list[RawFile] = plan.new, source: str = source) -> Iterator[pl.DataFrame]:
            for f in files:
                if progress:
                    progress(f"bronze {f.rel_path}")
                digest = hashlib.md5()
                lines = good_rows = bad_rows = 0
                chunks = iter_chunks(ctx.storage, f.uri, chunk_bytes=settings.bronze_chunk_bytes,
                                     digest=digest)
                chunks = audit.lines(source, f.rel_path, chunks)  # quality hook: count lines
                limits = settings.limits(ctx.started_at.date())  # the run date's window
                for checked in parse_chunks(source, chunks, limits=limits):
                    good = checked.lazy().filter(pl.col("reason").is_null())
                    good = with_lineage(good, source_file=f.rel_path, ctx=ctx).collect()
                    bad = quarantine_rows(checked, source=source, source_file=f.rel_path, ctx=ctx)
                    audit.chunk(source, f.rel_path, good, bad)  # quality hook
                    if bad.height:
                        quarantined.append(bad)
                    lines += checked.height
                    good_rows += good.height
                    bad_rows += bad.height
                    yield good
                outcomes.append(FileOutcome(source, f.rel_path, f.size_bytes, digest.hexdigest(),
                                            lines, good_rows, bad_rows))

        # quality hook: audit.gate raises DataError at the end of the stream, before the commit
        version = lake.write(ctx.bronze(source), audit.gate(source, stream()), schema=BRONZE[source],
                             metadata={"run_id": ctx.run_id})
        if version is not None:
            result.versions[source] = version

    if quarantined:
        result.versions["quarantine"] = lake.write(
            ctx.quarantine_uri, quarantined, schema=QUARANTINE, metadata={"run_id": ctx.run_id}
        )
    if outcomes:
        rows = pl.DataFrame([o.__dict__ for o in outcomes]).with_columns(
            pl.lit(ctx.run_id).alias("run_id"), pl.lit(ctx.started_at).alias("ingested_at")
        )
        result.versions["manifest"] = lake.write(
            ctx.manifest_uri, rows, schema=MANIFEST, metadata={"run_id": ctx.run_id}
        )
    result.files = len(outcomes)
    result.rows_in = sum(o.lines for o in outcomes)
    result.rows_out = sum(o.bronze_rows for o in outcomes)
    result.quarantined = sum(o.quarantined_rows for o in outcomes)
    result.details = [o.__dict__ for o in outcomes]
    result.skipped = not outcomes
    audit.finish(result)  # quality hook: record results and the report, summary in details
    result.seconds = time.perf_counter() - started
    return result
