"""Which raw files a bronze run takes in: per source, the new ones, the corrected ones
``RAW_ON_CHANGE`` lets through, and the duplicates whose content is held no more, minus the
files still being written; held paths listed no more are recorded first (``RAW_ON_DELETE``)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import polars as pl

from jobs.bronze.history import days_of, read_manifest, sql_list
from jobs.bronze.manifest import Known, Plan, current_versions, held_content, plan_ingestion
from jobs.bronze.outcome import FileOutcome, Ledger, manifest_rows
from jobs.errors import DataError
from jobs.raw.files import RawFile, content_checksum, list_raw, restat
from jobs.run import RunContext
from jobs.schemas import SOURCES
from jobs.settings import Settings
from jobs.storage import is_remote

log = logging.getLogger(__name__)

NEVER = Known("", 0, None, "")  # the version of a path the manifest does not know


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True)
class Planner:
    """Plans one bronze run's files source by source; what it finds on the way (unchanged,
    skipped, deleted, still being written, unreadable) goes to the run's ledger."""

    ctx: RunContext
    ledger: Ledger

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def to_take(self, source: str, plan: Plan) -> list[RawFile]:
        """New files, plus the changed ones RAW_ON_CHANGE lets through, minus unsettled ones."""
        todo = list(plan.new)
        for f in plan.changed:
            held = plan.current[f.rel_path]
            if not is_remote(f.uri) and content_checksum(self.ctx.storage, f) == held.checksum:
                # touched, not changed: remember the new fingerprint, take nothing in
                self.ledger.outcomes.append(
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
                self.ledger.skipped_changes.append(f.rel_path)
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
        self.ledger.waiting += sorted(moving)
        return [f for f in files if f.rel_path not in moving]

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
                self.ledger.reject(bad)
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
        self.ledger.holdings |= held_content(
            {p: k for p, k in versions.items() if k.source == source and p not in taking}
        )
        # duplicates of content those replace: their own delivery now
        files += [
            f
            for f in listing.files
            if f.rel_path not in taking
            and versions.get(f.rel_path, NEVER).holds == "duplicate"
            and (source, versions[f.rel_path].checksum) not in self.ledger.holdings
        ]
        if not files:
            return None
        selection = Selection(source=source, files=files, plan=plan)
        self.ledger.taken_paths += selection.paths
        self.ledger.replaced += selection.replacing
        return selection

    def forget(self, source: str, gone: list[Known]) -> list[FileOutcome]:
        """Held paths listed no more: recorded once; under RAW_ON_DELETE=retract their rows and
        quarantined lines go (recording the days they touched, for silver)."""
        retract = self.settings.raw_on_delete == "retract"
        paths = [k.path for k in gone]
        if retract:
            self.retract(source, paths, days_of(self.ctx, source, pl.col("source_file").is_in(paths)))
            self.ledger.retracted += paths
        self.ledger.deleted += paths
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
        self.ledger.outcomes += outcomes
        return outcomes

    def retract(self, source: str, paths: list[str], days: list[str]) -> None:
        """Remove the rows of ``paths`` from bronze, recording the ``days`` they had (for silver)."""
        metadata = {"run_id": self.ctx.run_id, "days": ",".join(days), "retracted_files": json.dumps(paths)}
        self.ctx.lake.delete(
            self.ctx.bronze(source), f"source_file IN ({sql_list(paths)})", metadata=metadata
        )
