"""Does bronze hold what the manifest says, and do the watermarks name commits that exist?

Per raw file, the newest manifest row (``unchanged`` rows only renew a fingerprint) says how
many rows bronze and quarantine hold with that ``source_file``; a group-by on the lineage
column counts what they really hold. A silver commit records the bronze version it consumed
(``bronze_version``, and ``bronze_commit_ts``: that commit's timestamp), a gold commit the silver
versions (``silver_versions``, ``silver_commit_ts``), a manifest commit the bronze versions right
after its run (``bronze_commits``): a version past the table's last one means history went
backwards, another timestamp means it was rewritten. Lakes older than the timestamps are
checked by version only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import polars as pl

from jobs.doctor.findings import REPAIR, Finding
from jobs.doctor.tables import TableState
from jobs.raw.files import list_raw
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, SOURCES
from jobs.storage import join

NEWEST_COLUMNS = ("source", "path", "bronze_rows", "quarantined_rows", "status")


def file_counts(ctx: RunContext, states: Mapping[str, TableState]) -> pl.DataFrame:
    """Per raw file the manifest or bronze knows: its newest manifest row (``in_manifest``
    false and 0 rows when there is none), the rows bronze and quarantine hold (``in_bronze``,
    ``in_quarantine``) and whether the raw file is still listed."""
    keys = {"source": pl.String, "path": pl.String}
    manifest = states["bronze/_manifest"].table
    newest = (
        pl.LazyFrame(
            schema=keys | {"bronze_rows": pl.Int64, "quarantined_rows": pl.Int64, "status": pl.String}
        )
        if manifest is None
        else ctx.lake.scan_table(manifest)
        .with_columns(pl.col("status").fill_null("ingested"))
        .filter(pl.col("status") != "unchanged")
        .sort("ingested_at", maintain_order=True)
        .unique("path", keep="last", maintain_order=True)
        .select(*NEWEST_COLUMNS)
    )
    held = [
        ctx.lake.scan_table(states[f"bronze/{s}"].table).select(pl.lit(s).alias("source"), "source_file")
        for s in SOURCES
        if states[f"bronze/{s}"].table is not None
    ]
    quarantine = states["bronze/quarantine"].table
    held_q = [] if quarantine is None else [ctx.lake.scan_table(quarantine).select("source", "source_file")]
    counted = newest.with_columns(pl.lit(True).alias("in_manifest"))
    for frames, name in ((held, "in_bronze"), (held_q, "in_quarantine")):
        counted = counted.join(_per_file(frames, name), on=["source", "path"], how="full", coalesce=True)
    listed = [f.rel_path for s in SOURCES for f in list_raw(ctx.storage, ctx.settings.lake_raw, s).files]
    counts = ("bronze_rows", "quarantined_rows", "in_bronze", "in_quarantine")
    return (
        counted.with_columns(
            pl.col(*counts).fill_null(0).cast(pl.Int64), pl.col("in_manifest").fill_null(False)
        )
        .with_columns(pl.col("path").is_in(listed).alias("raw_exists"))
        .sort("source", "path")
        .collect(engine="streaming")  # one lineage column of every bronze row, in bounded memory
    )


def _per_file(frames: list[pl.LazyFrame], name: str) -> pl.LazyFrame:
    """Rows per (source, raw file) of the frames."""
    if not frames:
        return pl.LazyFrame(schema={"source": pl.String, "path": pl.String, name: pl.UInt32})
    return pl.concat(frames).group_by("source", pl.col("source_file").alias("path")).agg(pl.len().alias(name))


def mismatched_files(counts: pl.DataFrame) -> pl.DataFrame:
    """The files whose rows in bronze or quarantine differ from their newest manifest row."""
    if counts.is_empty():
        return counts
    return counts.filter(
        (pl.col("in_bronze") != pl.col("bronze_rows"))
        | (pl.col("in_quarantine") != pl.col("quarantined_rows"))
    )


def manifest_findings(bad: pl.DataFrame) -> list[Finding]:
    """One finding per raw file whose rows bronze no longer holds as the manifest says."""
    if bad.is_empty():
        return []
    columns = (*NEWEST_COLUMNS, "in_manifest", "in_bronze", "in_quarantine", "raw_exists")
    return [_file_finding(row) for row in bad.select(*columns).iter_rows(named=True)]


def _file_finding(row: Mapping[str, Any]) -> Finding:
    """What is wrong with one raw file's rows, what it means and its fix."""
    table, path = f"bronze/{row['source']}", row["path"]
    if row["in_manifest"]:
        problem = (
            f"raw file {path} has {row['in_bronze']:,} of its {row['bronze_rows']:,} rows in "
            f"bronze and {row['in_quarantine']:,} of its {row['quarantined_rows']:,} lines in quarantine"
        )
        meaning = (
            "bronze or quarantine lost rows the manifest says they hold (a missing commit or data "
            "file), so silver and gold miss them"
        )
        kind = "rows_lost"
    else:
        problem = (
            f"raw file {path} is not in the manifest, but bronze holds {row['in_bronze']:,} of its "
            f"rows and quarantine {row['in_quarantine']:,} of its lines"
        )
        meaning = "the manifest lost its row (or a run was interrupted): the file would be taken in twice"
        kind = "rows_unlisted"
    if row["raw_exists"]:
        fix = f"{REPAIR} (removes its remaining rows; the next run takes the file in again)"
    elif row["in_manifest"]:
        lost = row["bronze_rows"] - row["in_bronze"] + row["quarantined_rows"] - row["in_quarantine"]
        fix = (
            f"the raw file is gone too: {lost:,} rows are lost unless it is restored under LAKE_RAW, "
            f"then {REPAIR}"
        )
    else:
        fix = f"the raw file is gone: restore it under LAKE_RAW, then {REPAIR}"
    return Finding(table, kind, problem, meaning, fix)


def commit_times(state: TableState) -> dict[int, int]:
    """Version → commit timestamp (ms) of every commit still in the table's history."""
    if state.table is None:
        return {}
    return {int(c["version"]): int(c.get("timestamp") or 0) for c in state.table.history() if "version" in c}


def watermark_findings(states: Mapping[str, TableState]) -> list[Finding]:
    """Silver, gold and the manifest built from commits of their source that are gone or rewritten."""
    times = {  # a table that exists but does not open has its own finding: skipped here
        name: commit_times(s)
        for name, s in states.items()
        if name.startswith(("bronze/", "silver/")) and (s.table is not None or not s.exists)
    }
    found = []
    for source in SOURCES:
        built = _last_with(states[f"silver/{source}"], "bronze_version")
        if built:
            version, stamp = int(built["bronze_version"]), built.get("bronze_commit_ts")
            if problem := _gone(times.get(f"bronze/{source}"), version, stamp):
                found.append(
                    _rebuild(f"silver/{source}", f"bronze {source}", version, problem, f"bronze {source}")
                )
    gold = _last_with(states[f"gold/{GOLD_TABLE}"], "silver_versions")
    if gold:
        stamps = _json_object(gold.get("silver_commit_ts"))
        for source, version in json.loads(gold["silver_versions"]).items():
            problem = _gone(times.get(f"silver/{source}"), int(version), stamps.get(source))
            if problem and int(version) >= 0:
                found.append(
                    _rebuild(f"gold/{GOLD_TABLE}", f"silver {source}", int(version), problem, "silver")
                )
    runs = _last_with(states["bronze/_manifest"], "run_id")  # the last run's (or repair's) commit
    recorded = _json_object(runs.get("bronze_commits") if runs else None)
    pairs = {name: pair for name, pair in recorded.items() if isinstance(pair, list) and len(pair) == 2}
    for name, (version, stamp) in pairs.items():
        if problem := _gone(times.get(f"bronze/{name}"), int(version), stamp):
            found.append(
                Finding(
                    f"bronze/{name}",
                    "history_lost",
                    f"the manifest recorded bronze {name} at version {version}, which is {problem}",
                    "commits of bronze were lost or rewritten after the manifest recorded them",
                    f"{REPAIR} (raw files whose rows are gone are taken in again by the next run; "
                    "the manifest records bronze as it is now)",
                )
            )
    return found


def export_findings(ctx: RunContext, states: Mapping[str, TableState]) -> list[Finding]:
    """Gold exported at a version it no longer has: its last commits were lost."""
    gold = states[f"gold/{GOLD_TABLE}"]
    payload = ctx.lake.read_file(join(ctx.settings.export_uri, "_export.json"))
    if gold.table is None or payload is None:
        return []
    try:
        exported = int(json.loads(payload)["gold_version"])
    except (ValueError, KeyError, TypeError):
        return []  # export writes a new marker next time
    if exported <= gold.table.version():
        return []
    return [
        Finding(
            gold.name,
            "history_lost",
            f"the export recorded gold version {exported}, but gold ends at version {gold.table.version()}",
            "gold lost its last commit(s); the export would not be written again",
            f"{REPAIR} (moves gold aside with the export marker; the next run rebuilds and exports it)",
        )
    ]


def _json_object(text: Any) -> dict[str, Any]:
    """A commit's JSON metadata value as a dict ({} when absent or not a JSON object)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _last_with(state: TableState, key: str) -> dict[str, Any] | None:
    if state.table is None:
        return None
    return next((c for c in state.table.history() if key in c), None)


def _gone(times: Mapping[int, int] | None, version: int, stamp: Any) -> str:
    """'' when commit ``version`` exists (with timestamp ``stamp``, if recorded), else why not."""
    if times is None or version < 0 or (times and version < min(times)):
        return ""  # source unreadable, nothing consumed, or older than the log keeps
    if version not in times:
        return "gone"
    if stamp is not None and str(stamp) != str(times[version]):
        return "rewritten"
    return ""


def _rebuild(table: str, source: str, version: int, problem: str, rebuilt_from: str) -> Finding:
    layer, name = table.split("/")
    return Finding(
        table,
        "watermark_" + problem,
        f"{layer} {name} was built from {source} version {version}, which is {problem}",
        f"{layer} {name} may hold rows its source no longer has",
        f"{REPAIR} (moves {layer} {name} aside; the next run rebuilds it from {rebuilt_from})",
    )
