"""Totals, ratios and the issue's targets of a benchmark report, from the rows measured.

:func:`evaluate` adds them to the report in a fixed order (the report's tables follow it): the
pipeline's totals and the gates' cost per stage, then the ratios to the plain alternatives, to
the project's baselines and Dask, the scheduled tick and the consumers' steps, then the targets.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.bench.report import STAGES, Key, Report, Row

GATES_COST_LIMIT = 10.0  # % of the stage's ungated time
STAGE_PROCESSES = "sum of the three stage processes"


@dataclass
class Found:
    """What the targets are judged on, as the ratios were computed."""

    gates_cost: dict[str, float]  # stage -> in-stage %
    raw_to_gold: Row | None
    ingest: Row | None  # the faster plain ingest
    bronze_vs_ingest: float | None = None  # wall ratios from here on
    gold_vs_duckdb: float | None = None
    gold_off_vs_duckdb: float | None = None
    chain_vs_duckdb: float | None = None
    new_day: float | None = None  # +1 day raw → gold / full raw → gold
    windows: float | None = None  # several windows / one window
    labels: float | None = None  # ours / the DuckDB anchor
    labels_memory: float | None = None


def evaluate(report: Report, *, scale: float, quality: bool) -> None:
    raw_to_gold = total(report, Key.RAW_TO_GOLD, [Key.of_stage(s) for s in STAGES] if quality else [])
    total(report, Key.RAW_TO_GOLD_OFF, [Key.of_stage(s, False) for s in STAGES])
    found = Found(gates_cost_ratios(report), raw_to_gold, report.faster_ingest())
    anchor_ratios(report, found)
    baseline_ratios(report, found)
    tick_and_consumer_ratios(report, found)
    add_targets(report, scale, found)


def total(report: Report, key: Key, parts: list[Key], group: str = "pipeline", note: str = "") -> Row | None:
    """A row summing the rows of ``parts`` (None unless every one was measured and passed)."""
    rows = [report.ok_row(part) for part in parts]
    if not rows or not all(rows):
        return None
    measured = [row for row in rows if row]
    stage_s = [p.stage_s for p in measured if p.stage_s is not None]
    row = Row(
        key,
        group,
        round(sum(p.wall_s for p in measured), 2),
        round(sum(p.cpu_s for p in measured), 2),
        max(p.peak_rss_mb for p in measured),
        note=note or STAGE_PROCESSES,
        stage_s=round(sum(stage_s), 2) if len(stage_s) == len(measured) else None,
    )
    report.rows.append(row)
    return row


def ratio(report: Report, name: str, a: Row | Key | None, b: Row | Key | None) -> float | None:
    """``a / b`` in wall seconds and cpu seconds, as ratios ``<name> (wall)``/``(cpu)``; the wall
    ratio, or None when either side is missing or failed."""
    a, b = _row(report, a), _row(report, b)
    if not (a and b and a.ok and b.ok and b.wall_s):
        return None
    wall = report.ratios[f"{name} (wall)"] = round(a.wall_s / b.wall_s, 3)
    if b.cpu_s:
        report.ratios[f"{name} (cpu)"] = round(a.cpu_s / b.cpu_s, 3)
    return wall


def in_stage(report: Report, name: str, a: Key, b: Key) -> None:
    """``a / b`` in the stages' own seconds, as the ratio ``<name> (in-stage)``."""
    x, y = report.row(a), report.row(b)
    if x and y and x.stage_s and y.stage_s:
        report.ratios[f"{name} (in-stage)"] = round(x.stage_s / y.stage_s, 3)


def _row(report: Report, which: Row | Key | None) -> Row | None:
    return report.row(which) if isinstance(which, Key) else which


def gates_cost_ratios(report: Report) -> dict[str, float]:
    """Per stage, (gated − ungated) / ungated in %, in-stage and wall; the in-stage ones returned."""
    costs = {}
    for stage in STAGES:
        on, off = report.ok_row(Key.of_stage(stage)), report.ok_row(Key.of_stage(stage, False))
        if not (on and off):
            continue
        if on.stage_s and off.stage_s:
            cost = round(100 * (on.stage_s - off.stage_s) / off.stage_s, 1)
            costs[stage] = report.ratios[f"gates' cost, {stage} (in-stage, %)"] = cost
        if off.wall_s:
            report.ratios[f"gates' cost, {stage} (wall, %)"] = round(
                100 * (on.wall_s - off.wall_s) / off.wall_s, 1
            )
    return costs


def anchor_ratios(report: Report, found: Found) -> None:
    """Our stages against the plain alternatives (and their ingest + gold chain, a new row)."""
    chain = total(
        report,
        Key.DUCKDB_CHAIN,
        [Key.INGEST_DUCKDB, Key.DUCKDB_GOLD],
        "anchor",
        "sum of the two anchor processes (silver flattened between them, not counted)",
    )
    found.bronze_vs_ingest = ratio(report, "bronze / faster plain ingest", Key.BRONZE, found.ingest)
    ratio(report, "bronze, gates off / faster plain ingest", Key.BRONZE_OFF, found.ingest)
    found.gold_vs_duckdb = ratio(report, "gold / DuckDB gold SQL", Key.GOLD, Key.DUCKDB_GOLD)
    found.gold_off_vs_duckdb = ratio(
        report, "gold, gates off / DuckDB gold SQL", Key.GOLD_OFF, Key.DUCKDB_GOLD
    )
    ratio(report, "gold / Polars gold", Key.GOLD, Key.POLARS_GOLD)
    found.chain_vs_duckdb = ratio(
        report, "raw → gold / DuckDB ingest + DuckDB gold", found.raw_to_gold, chain
    )


def baseline_ratios(report: Report, found: Found) -> None:
    """Gold against the project's baselines (gates off: they validate nothing), Dask against the
    local engine, the new day against a full build."""
    ratio(report, "gold, gates off / DuckDB SQL (duckdb_sql.py)", Key.GOLD_OFF, Key.DUCKDB_SQL)
    ratio(report, "gold, gates off / pandas", Key.GOLD_OFF, Key.PANDAS)
    ratio(report, "gold, gates off / I/O floor", Key.GOLD_OFF, Key.IO_FLOOR)
    ratio(report, "gold / DuckDB SQL (duckdb_sql.py)", Key.GOLD, Key.DUCKDB_SQL)
    ratio(report, "Dask / local gold, gates off", Key.DASK_GOLD, Key.GOLD_OFF)
    ratio(report, "+1 day gold / full gold", Key.DAY_GOLD, Key.GOLD)
    in_stage(report, "+1 day gold / full gold", Key.DAY_GOLD, Key.GOLD)
    ratio(report, "+1 day gold / full gold, gates off", Key.DAY_GOLD_OFF, Key.GOLD_OFF)
    in_stage(report, "+1 day gold / full gold, gates off", Key.DAY_GOLD_OFF, Key.GOLD_OFF)


def tick_and_consumer_ratios(report: Report, found: Found) -> None:
    """The scheduled tick (+1 day, all sources, against the full build) and the consumers' steps."""
    day = total(
        report,
        Key.DAY_RAW_TO_GOLD,
        [Key.DAY_BRONZE, Key.DAY_SILVER, Key.DAY_GOLD],
        "incremental",
        "sum of the three stage processes of the new day",
    )
    found.new_day = ratio(report, "+1 day raw → gold / full raw → gold", day, found.raw_to_gold)
    found.windows = ratio(report, "gold, windows 3,1,4 / gold, window 3", Key.GOLD_WINDOWS, Key.GOLD)
    found.labels = ratio(report, "label features / DuckDB anchor", Key.LABELS, Key.LABELS_ANCHOR)
    ours, anchor = report.ok_row(Key.LABELS), report.ok_row(Key.LABELS_ANCHOR)
    if ours and anchor and anchor.peak_rss_mb:
        found.labels_memory = report.ratios["label features / DuckDB anchor (peak RSS)"] = round(
            ours.peak_rss_mb / anchor.peak_rss_mb, 3
        )


def target(report: Report, what: str, value: float | None, limit: float, unit: str, basis: str) -> None:
    if value is not None:
        report.targets.append(
            {
                "target": what,
                "value": value,
                "limit": limit,
                "unit": unit,
                "met": value <= limit,
                "basis": basis,
            }
        )


def add_targets(report: Report, scale: float, found: Found) -> None:
    """The issue's targets, each met when its value is at most its limit."""
    duckdb_best = "process wall, vs duckdb_best.py on the same silver"
    for stage in STAGES:
        basis = "in-stage seconds, (gated − ungated) / ungated"
        limit = f"{GATES_COST_LIMIT:g}%"
        what = f"quality gates ≤ {limit} of {stage}'s ungated time"
        target(report, what, found.gates_cost.get(stage), GATES_COST_LIMIT, "%", basis)
    bronze_limit = 1.5 if scale >= 100 else 2.0
    basis = f"process wall, vs {found.ingest.name}" if found.ingest else ""
    what = f"bronze (gates on) ≤ {bronze_limit:g}× the faster plain ingest"
    target(report, what, found.bronze_vs_ingest, bronze_limit, "x", basis)
    what = "gold (gates on) ≤ 0.7× the fastest DuckDB SQL"
    target(report, what, found.gold_vs_duckdb, 0.7, "x", duckdb_best)
    what = "raw → gold (gates on) ≤ 1.0× DuckDB ingest + DuckDB gold"
    target(report, what, found.chain_vs_duckdb, 1.0, "x", "sums of process walls")
    if scale >= 100 and found.raw_to_gold:
        whole = found.raw_to_gold
        target(report, "raw → gold (gates on) under 180 s", whole.wall_s, 180.0, "s", "sum of process walls")
        what = "raw → gold (gates on) peak RSS ≤ 3 GiB"
        target(report, what, whole.peak_rss_mb, 3072.0, "MB", "largest stage")
    noop = report.ok_row(Key.NOOP_AGAIN)
    basis = "process wall, every stage, nothing new, page cache warm (the row before: not)"
    target(report, "no-op tick ≤ 1 s as a whole process", noop.wall_s if noop else None, 1.0, "s", basis)
    new_day = round(100 * found.new_day, 1) if found.new_day is not None else None
    basis = "process walls, +1 day bronze + silver + gold / full bronze + silver + gold"
    target(report, "a new day ≤ 10% of a full raw → gold build (gates on)", new_day, 10.0, "%", basis)
    basis = "process wall, gold gates on, on the same silver"
    target(report, "gold with windows 3,1,4 ≤ 1.2× one window", found.windows, 1.2, "x", basis)
    basis = "process wall, same label rows and silver, outputs equal"
    target(report, "label features ≤ 1.0× the DuckDB anchor's time", found.labels, 1.0, "x", basis)
    basis = "peak RSS of the process, same label rows and silver"
    target(report, "label features ≤ 1.0× the DuckDB anchor's memory", found.labels_memory, 1.0, "x", basis)
