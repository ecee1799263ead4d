"""What one bronze run found, file by file: the manifest rows it writes and its summary."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import polars as pl

from jobs.bronze.read import Drift
from jobs.raw.files import RawFile, Unreadable
from jobs.run import RunContext
from jobs.summary import StageResult

log = logging.getLogger(__name__)


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


@dataclass(kw_only=True)
class Ledger:
    """One bronze run's account of the raw files: what it took in, rejected, replaced, retracted
    and left waiting (the manifest rows and the summary are written from it)."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written: next run
    skipped_changes: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    taken_paths: list[str] = field(default_factory=list)  # files whose rows this run writes or replaces
    deleted: list[str] = field(default_factory=list)  # held paths listed no more (RAW_ON_DELETE)
    retracted: list[str] = field(default_factory=list)  # … whose rows this run removed
    duplicates: dict[str, str] = field(
        default_factory=dict
    )  # path → the path whose identical content bronze holds
    # (source, checksum) → paths whose lines bronze holds, for duplicate deliveries
    holdings: dict[tuple[str, str], list[str]] = field(default_factory=dict)

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

    def summarize(self, result: StageResult) -> None:
        """The stage result's counts, details and note (what the run summary shows)."""
        taken = [o for o in self.outcomes if o.status in ("ingested", "rejected")]
        result.files = len(taken)
        result.rows_in = sum(o.lines for o in taken)
        result.rows_out = sum(o.bronze_rows for o in taken)
        result.quarantined = sum(o.quarantined_rows for o in taken)
        result.details = [asdict(o) for o in self.outcomes]
        result.drift = drift_by_source(taken)
        result.skipped = not self.outcomes
        notes = []
        if rejected := [o for o in self.outcomes if o.status == "rejected"]:
            notes.append(f"{len(rejected)} file(s) rejected")
            result.rejected = [o.path for o in rejected]
        if self.replaced:
            notes.append(f"{len(self.replaced)} corrected file(s) replaced")
        if self.waiting:
            notes.append(f"{len(self.waiting)} file(s) still being written: next run")
        if self.skipped_changes:
            notes.append(f"{len(self.skipped_changes)} changed file(s) skipped")
        if self.duplicates:
            notes.append(f"{len(self.duplicates)} duplicate file(s) skipped ({first_paths(self.duplicates)})")
            result.duplicates = dict(self.duplicates)
        if self.deleted:
            done = "retracted" if self.retracted else "kept"
            notes.append(f"{len(self.deleted)} deleted file(s), rows {done} ({first_paths(self.deleted)})")
            result.deleted, result.retracted = list(self.deleted), list(self.retracted)
        result.note = "; ".join(notes)


def manifest_rows(ctx: RunContext, outcomes: Iterable[FileOutcome]) -> pl.DataFrame:
    """Manifest rows of this run for ``outcomes``."""
    return pl.DataFrame([asdict(o) for o in outcomes]).with_columns(
        pl.lit(ctx.run_id).alias("run_id"), pl.lit(ctx.started_at).alias("ingested_at")
    )


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
