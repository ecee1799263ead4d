"""Bronze's commits: ONE per source of the files judged (a corrected file's earlier rows
replaced in it), then the quarantined lines, then the manifest rows, which record the bronze
versions they saw (:func:`jobs.bronze.history.bronze_commits`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import polars as pl

from jobs.audit import BronzeAuditor
from jobs.bronze.history import bronze_commits, days_of, sql_list
from jobs.bronze.outcome import Ledger, manifest_rows
from jobs.bronze.selection import Selection
from jobs.bronze.spool import Spool
from jobs.errors import StorageError
from jobs.run import RunContext
from jobs.schemas import BRONZE, MANIFEST, QUARANTINE, QUARANTINE_PROPERTIES
from jobs.summary import StageResult


def commit_metadata(ctx: RunContext, selection: Selection) -> dict[str, str]:
    """What a source's commit records; replacing rows, the days they had (for silver)."""
    metadata = {"run_id": ctx.run_id}
    if replacing := selection.replacing:
        where = pl.col("source_file").is_in(replacing)
        metadata["days"] = ",".join(days_of(ctx, selection.source, where))
        metadata["replaced_files"] = json.dumps(replacing)
    return metadata


def commit_source(
    ctx: RunContext, audit: BronzeAuditor, selection: Selection, frames: Iterator[pl.DataFrame]
) -> int | None:
    """ONE bronze commit of the frames (each file judged as they stream through the gate)."""
    source = selection.source
    uri, metadata = ctx.bronze(source), commit_metadata(ctx, selection)
    gated = audit.gate(source, frames)  # DataError at its end: no commit
    if selection.replacing:  # every file's rows are replaced (new ones have none)
        return ctx.lake.write(
            uri,
            gated,
            schema=BRONZE[source],
            mode="overwrite",
            predicate=f"source_file IN ({sql_list(selection.paths)})",
            metadata=metadata,
            schema_mode="merge",
        )
    # merge: a table written before _rescued existed gains the column
    return ctx.lake.write(uri, gated, schema=BRONZE[source], metadata=metadata, schema_mode="merge")


def commit_quarantine_and_manifest(
    ctx: RunContext, ledger: Ledger, quarantine: Spool, *, planned_from: int | None, result: StageResult
) -> None:
    """The run's quarantined lines, then its manifest rows (only if the manifest is still at
    ``planned_from``, the version the run planned from)."""
    lake = ctx.lake
    meta = {"run_id": ctx.run_id}
    if ledger.replaced or ledger.retracted:  # a replaced or retracted file's old lines go too
        version = lake.write(
            ctx.quarantine_uri,
            quarantine.frames(),
            schema=QUARANTINE,
            mode="overwrite",
            metadata=meta,
            predicate=f"source_file IN ({sql_list(ledger.taken_paths + ledger.retracted)})",
            properties=QUARANTINE_PROPERTIES,
        )
    else:
        version = lake.write(
            ctx.quarantine_uri,
            quarantine.frames(),
            schema=QUARANTINE,
            metadata=meta,
            properties=QUARANTINE_PROPERTIES,
        )
    if version is not None:
        result.versions["quarantine"] = version
    if ledger.outcomes:
        rows = manifest_rows(ctx, ledger.outcomes)
        if lake.version(ctx.manifest_uri) != planned_from:  # defense in depth
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
