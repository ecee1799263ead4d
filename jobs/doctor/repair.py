"""Repair what is safe while holding the lake lease; then diagnose again.

Repairs, in this order (each leaves the lake so that ONE normal run makes it exact again):

1. An unreadable checkpoint (or a wrong ``_last_checkpoint``) is moved aside into
   ``<table>/_damaged-<run id>/`` and, once the table opens from its JSON log, written anew.
2. Damaged commits at the end of a bronze table's log are moved aside there too, so the table
   opens at the last good version (damage in the middle of a bronze log is only reported:
   bronze is the one copy of what was taken in).
3. A derived table (silver, gold) that is damaged, or built from commits that are gone or
   rewritten, is moved aside whole to ``<table>._damaged-<run id>`` (kept for inspection; delete
   it when done): the next run rebuilds silver from bronze and gold from silver. Gold goes too
   whenever a silver table does, and the export marker with it. A damaged quality table is moved
   aside the same way (its history is kept there).
4. A data file a bronze table names but storage lacks is removed from the table (one commit
   recording the days its statistics span, so silver rebuilds them).
5. Every raw file whose rows bronze or quarantine no longer hold as the manifest says loses its
   remaining rows (commits recording the days they touched) and gets a manifest row ``lost``,
   so the next run takes it in as new. A file whose raw file is gone too is only reported.
6. When bronze lost commits but every file's rows add up, an empty manifest commit records that
   (the last run's ``bronze_commits`` no longer is the newest record).
"""

from __future__ import annotations

import polars as pl

from jobs.doctor.bronze_fixes import record_bronze_as_is, reingest, remove_missing_files
from jobs.doctor.diagnose import States, bronze_readable, diagnose, inspect_lake
from jobs.doctor.findings import Report
from jobs.doctor.lineage import export_findings, file_counts, mismatched_files, watermark_findings
from jobs.doctor.tables import (
    BRONZE_DATA,
    CHECKPOINT_NAME,
    COMMIT_NAME,
    DERIVED,
    RECORDS,
    TableState,
    log_dir,
)
from jobs.errors import TableDamaged
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE
from jobs.storage import join
from jobs.storage.errors import storage_error


def repair(ctx: RunContext) -> Report:
    """Apply the safe fixes holding the lake lease; the report is the diagnosis after them."""
    from jobs.pipeline import holding_lease

    done: list[str] = []
    with holding_lease(ctx):
        states = inspect_lake(ctx)
        rebuild = _to_rebuild(ctx, states)  # before bronze changes: what was built from lost commits
        for state in states.values():
            done += _fix_checkpoints(ctx, state)
            if state.name in BRONZE_DATA and state.trailing_damage is not None:
                done += [_trim_log(ctx, state, state.trailing_damage)]
        states = inspect_lake(ctx)
        rebuild |= _to_rebuild(ctx, states)
        for name in sorted(rebuild, key=lambda n: (n.startswith("gold/"), n)):
            done.append(_move_table_aside(ctx, states[name]))
        for name in BRONZE_DATA:
            if not states[name].missing_files.is_empty():
                done.append(remove_missing_files(ctx, states[name]))
        states = inspect_lake(ctx)
        if bronze_readable(states):
            bad = mismatched_files(file_counts(ctx, states))
            done += reingest(ctx, bad)
            lost = any(f.kind == "history_lost" for f in watermark_findings(inspect_lake(ctx)))
            if lost and bad.filter(~pl.col("raw_exists")).is_empty():  # else the loss stays reported
                done.append(record_bronze_as_is(ctx))
    report = diagnose(ctx)
    report.repaired = done
    return report


def _to_rebuild(ctx: RunContext, states: States) -> set[str]:
    """Derived and quality tables to move aside: damaged, or built from lost commits."""
    names = {
        s.name
        for s in states.values()
        if s.name in (*DERIVED, *RECORDS) and (s.log_damaged or not s.missing_files.is_empty())
    }
    lost = watermark_findings(states) + export_findings(ctx, states)
    names |= {f.table for f in lost if f.table in DERIVED}
    if any(n.startswith("silver/") and states[n].exists for n in names):
        names.add(f"gold/{GOLD_TABLE}")
    return {n for n in names if states[n].exists}


def _aside(ctx: RunContext) -> str:
    return f"_damaged-{ctx.run_id}"


def _aside_dir(ctx: RunContext, uri: str) -> str:
    """Where log files of the table at ``uri`` are moved aside (deltalake and vacuum skip it)."""
    return f"{ctx.storage.strip_protocol(uri).rstrip('/')}/{_aside(ctx)}"


def _move(ctx: RunContext, uri: str, source: str, target: str) -> None:
    """Move a file, or every file under a folder (S3 has no folders to rename: file by file)."""
    fs = ctx.storage.filesystem(uri)
    ctx.lake.check_guard()
    try:
        fs.invalidate_cache()
        if not fs.isdir(source):
            fs.mv(source, target)
            return
        for path in fs.find(source):
            fs.mv(path, target + str(path)[len(source) :])
        if fs.exists(source):  # a local folder left with empty folders
            fs.rm(source, recursive=True)
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=ctx.storage) from exc


def _fix_checkpoints(ctx: RunContext, state: TableState) -> list[str]:
    """Move unreadable checkpoints (and a wrong ``_last_checkpoint``) aside; checkpoint anew."""
    if not state.bad_checkpoints and not state.bad_last_checkpoint:
        return []
    folder, aside = log_dir(ctx, state.uri), _aside_dir(ctx, state.uri)
    moved = [*state.bad_checkpoints, "_last_checkpoint"]
    for name in moved:
        if ctx.storage.filesystem(state.uri).exists(f"{folder}/{name}"):
            _move(ctx, state.uri, f"{folder}/{name}", f"{aside}/{name}")
    note = f"{state.name}: moved {', '.join(moved)} aside to {aside}"
    try:
        table = ctx.lake.open(state.uri)
    except TableDamaged:
        return [note + "; the table still does not open from its JSON log"]
    if table is not None and not state.log_damaged:
        ctx.lake.check_guard()
        table.create_checkpoint()
        note += f"; wrote a new checkpoint at version {table.version()}"
    return [note]


def _trim_log(ctx: RunContext, state: TableState, first: int) -> str:
    """Move the commits from ``first`` on (and later checkpoints) aside: the table opens at
    ``first - 1``."""
    fs = ctx.storage.filesystem(state.uri)
    folder, aside = log_dir(ctx, state.uri), _aside_dir(ctx, state.uri)
    names = [str(p).rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)]
    later = [
        n
        for n in names
        if n == "_last_checkpoint"
        or ((m := CHECKPOINT_NAME.match(n) or COMMIT_NAME.match(n)) and int(m.group(1)) >= first)
    ]
    for name in later:
        _move(ctx, state.uri, f"{folder}/{name}", f"{aside}/{name}")
    return (
        f"{state.name}: moved commit(s) from version {first} on aside to {aside}; "
        f"it opens at version {first - 1}"
    )


def _move_table_aside(ctx: RunContext, state: TableState) -> str:
    root = ctx.storage.strip_protocol(state.uri).rstrip("/")
    target = f"{root}.{_aside(ctx)}"
    _move(ctx, state.uri, root, target)
    if state.name == f"gold/{GOLD_TABLE}":
        marker = join(ctx.settings.export_uri, "_export.json")
        fs, path = ctx.storage.filesystem(marker), ctx.storage.strip_protocol(marker)
        if fs.exists(path):
            _move(ctx, marker, path, f"{path}.{_aside(ctx)}")
    then = "a new one starts with the next run" if state.name in RECORDS else "the next run rebuilds it"
    return f"{state.name}: moved the table aside to {target}; {then}"
