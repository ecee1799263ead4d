"""The whole lake's diagnosis: every table, bronze against the manifest, watermarks, the lease.

Read-only and lease-free. Beside a live run it may report that run's bronze rows whose manifest
rows are not committed yet as a mismatch: run it again once the run is done.
"""

from __future__ import annotations

from jobs.doctor.findings import Finding, Report
from jobs.doctor.lineage import (
    export_findings,
    file_counts,
    manifest_findings,
    mismatched_files,
    watermark_findings,
)
from jobs.doctor.tables import BRONZE_DATA, TableState, inspect_table, table_findings
from jobs.lease import UnreadableLease, lease_uri, probe, state
from jobs.maintain import pipeline_tables
from jobs.run import RunContext

States = dict[str, TableState]


def inspect_lake(ctx: RunContext) -> States:
    return {name: inspect_table(ctx, name, uri) for name, uri in pipeline_tables(ctx)}


def diagnose(ctx: RunContext) -> Report:
    """Every finding about the lake (read-only; no lease needed)."""
    states = inspect_lake(ctx)
    report = Report([f for s in states.values() for f in table_findings(s)])
    if bronze_readable(states):
        report.findings += manifest_findings(mismatched_files(file_counts(ctx, states)))
    report.findings += watermark_findings(states) + export_findings(ctx, states)
    finding, note = lease_state(ctx)
    report.findings += [finding] if finding else []
    report.notes += [note] if note else []
    return report


def bronze_readable(states: States) -> bool:
    """Whether every bronze table opens with all its files (else the per-file counts wait)."""
    return all(states[n].table is not None or not states[n].exists for n in BRONZE_DATA) and all(
        states[n].missing_files.is_empty() for n in BRONZE_DATA
    )


def lease_state(ctx: RunContext) -> tuple[Finding | None, str]:
    """A finding when the S3 lease object does not parse; else a note on who holds it."""
    uri = lease_uri(ctx.settings)
    try:
        held, holder = probe(ctx.storage)
    except UnreadableLease as exc:
        fix = "python -m jobs lease break (once no run is writing)"
        return Finding("lease", "lease_unreadable", str(exc), "every run fails to take the lease", fix), ""
    return None, f"lease: {state(held, holder)} ({uri})"
