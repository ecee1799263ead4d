"""What ``python -m jobs`` prints: a spinner while stages run, then their summary (a table, or
one JSON object), and the maintenance table."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobs.summary import StageResult


@contextmanager
def progress(enabled: bool) -> Iterator[Any]:
    """A spinner with the current step on a terminal; plain silence otherwise."""
    if not enabled:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("starting…") as status:
        yield lambda text: status.update(f"[bold]{text}")


def print_summary(results: list[StageResult], run_id: str, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {run_id}", title_justify="left")
    for col in ("stage", "files", "rows in", "rows out", "quarantined", "seconds", "note"):
        table.add_column(col, justify="right" if col not in ("stage", "note") else "left")
    for r in results:
        note = "nothing new — no table version written" if r.skipped and not r.note else r.note
        table.add_row(
            r.stage,
            f"{r.files:,}",
            f"{r.rows_in:,}",
            f"{r.rows_out:,}",
            f"{r.quarantined:,}",
            f"{r.seconds:.2f}",
            note,
        )
    console = Console(width=max(Console().width, 130))
    console.print(table)
    for r in results:
        if r.stage == "bronze" and r.details:
            bad = [d for d in r.details if d.get("quarantined_rows")]
            if bad:
                console.print(f"{len(bad)} file(s) had quarantined lines; see bronze.quarantine:")
                for d in bad[:10]:
                    console.print(
                        f"  {d['path']}: {d['lines']:,} lines = {d['bronze_rows']:,} "
                        f"bronze + {d['quarantined_rows']:,} quarantined"
                    )
    from jobs.summary import drift_lines

    for line in drift_lines(results):  # fields the contract does not know, per source
        console.print(line, highlight=False, markup=False)
    from jobs.quality.report import summary_lines  # quality hook: reconciliation + report

    for line in summary_lines(results):
        console.print(line, highlight=False, markup=False)
    from jobs.lineage import summary_lines as lineage_lines  # events a lineage backend did not get

    for line in lineage_lines(results):
        console.print(line, highlight=False, markup=False)
    console.print(f"total {seconds:.1f}s")


def print_maintenance(done: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"maintenance {done.run_id} (retention {done.retention_hours} h)", title_justify="left"
    )
    for col in (
        "table",
        "version",
        "live files",
        "stored files",
        "compacted",
        "vacuumed",
        "MB freed",
        "seconds",
    ):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in done.tables:
        if not t.exists:
            table.add_row(t.table, "no table yet", "", "", "", "", "", "")
            continue
        version = (
            f"{t.version_before}"
            if t.version_after == t.version_before
            else f"{t.version_before} → {t.version_after}"
        )
        table.add_row(
            t.table,
            version,
            f"{t.live_files_before:,} → {t.live_files_after:,}",
            f"{t.stored_files_before:,} → {t.stored_files_after:,}",
            f"{t.compacted_files_removed:,} → {t.compacted_files_added:,}"
            + (" (z-order)" if t.zordered else ""),
            f"{t.vacuumed_files:,}",
            f"{t.vacuumed_bytes / 1e6:.2f}",
            f"{t.seconds:.2f}",
        )
    console = Console(width=max(Console().width, 130))
    console.print(table)
    totals = done.totals()
    console.print(
        f"stored files {totals['stored_files_before']:,} → "
        f"{totals['stored_files_after']:,}; total {done.seconds:.1f}s"
    )


def print_stages(results: list[StageResult], *, run_id: str, seconds: float, as_json: bool) -> None:
    """The stages' summary on stdout; files rejected whole said on stderr."""
    if as_json:
        stages = [r.as_dict() for r in results]
        print(json.dumps({"run_id": run_id, "seconds": round(seconds, 3), "stages": stages}, default=str))
    else:
        print_summary(results, run_id, seconds)
    if rejected := [path for r in results for path in r.rejected]:
        print(
            f"completed with rejected input: {len(rejected)} raw file(s) rejected whole "
            f"({', '.join(rejected[:3])}{', …' if len(rejected) > 3 else ''}); their lines and "
            "reasons are in bronze.quarantine, and a corrected file is taken in by the next run",
            file=sys.stderr,
        )
