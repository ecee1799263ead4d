"""The benchmark report as markdown: the per-stage table, every row, the ratios, the targets."""

from __future__ import annotations

from infra.bench.report import STAGES, Key, Report, Row

UNITS = {"x": "×", "%": " %"}


def markdown(report: Report) -> str:
    machine = report.machine
    lines = [
        f"## Benchmark at scale {report.scale:g} ({report.started})",
        "",
        f"Machine: {machine['cpus']} cores, {machine['memory_gib']} GiB, Python "
        f"{machine['python']}; load average at start "
        f"{', '.join(str(x) for x in machine['load_average_at_start'])}. "
        "wall/cpu/peak RSS: the whole process (fresh interpreter, imports included); "
        "stage s: the stage's own time inside it.",
        "",
        *per_stage(report),
        *rows_table(report),
        *ratios_table(report),
        *targets_table(report),
    ]
    if report.problems:
        lines += ["", "Problems:", *[f"- {p.splitlines()[0] if p else p}" for p in report.problems]]
    return "\n".join(lines) + "\n"


def rows_table(report: Report) -> list[str]:
    lines = [
        "| step | wall s | cpu s | stage s | peak RSS MB | rows | rows/s | check / note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in report.rows:
        rps = f"{row.rows_per_s:,.0f}" if row.rows_per_s else ""
        rows = f"{row.rows:,}" if row.rows else ""
        text = "; ".join(t for t in (row.check, row.note) if t)
        stage = f"{row.stage_s:.2f}" if row.stage_s is not None else ""
        lines.append(
            f"| {row.name} | {row.wall_s:.2f} | {row.cpu_s:.2f} | {stage} | "
            f"{row.peak_rss_mb:,.0f} | {rows} | {rps} | {text} |"
        )
    return lines


def ratios_table(report: Report) -> list[str]:
    if not report.ratios:
        return []
    return [
        "",
        "| ratio | value |",
        "| --- | ---: |",
        *[f"| {k} | {v:.2f} |" for k, v in report.ratios.items()],
    ]


def targets_table(report: Report) -> list[str]:
    if not report.targets:
        return []
    lines = ["", "| target | measured | met | measured as |", "| --- | ---: | --- | --- |"]
    for t in report.targets:
        value = f"{t['value']:.2f}{UNITS.get(t['unit'], ' ' + t['unit'])}"
        lines.append(f"| {t['target']} | {value} | {'yes' if t['met'] else 'NO'} | {t['basis']} |")
    return lines


def _cell(row: Row | None) -> str:
    if row is None:
        return ""
    stage = f" ({row.stage_s:.2f})" if row.stage_s is not None else ""
    return f"{row.wall_s:.2f}{stage} / {row.cpu_s:.2f} / {row.peak_rss_mb:,.0f}"


def per_stage(report: Report) -> list[str]:
    """Per stage: gates off, gates on, the gates' cost and the plain alternative beside it."""
    alternative = {
        "bronze": report.faster_ingest(),
        "gold": report.row(Key.DUCKDB_GOLD),
        "raw → gold": report.row(Key.DUCKDB_CHAIN),
    }
    steps = [(s, report.row(Key.of_stage(s)), report.row(Key.of_stage(s, False))) for s in STAGES]
    steps.append(("raw → gold", report.row(Key.RAW_TO_GOLD), report.row(Key.RAW_TO_GOLD_OFF)))
    if not any(on or off for _, on, off in steps):
        return []
    lines = [
        "Per stage, wall (stage) / cpu s / peak RSS MB; gates' cost from the in-stage seconds "
        "(from wall); plain alternative a whole process on the same data:",
        "",
        "| stage | gates off | gates on | gates' cost | plain alternative | wall / cpu s / MB "
        "| gates on / it |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for stage, on, off in steps:
        cost = report.ratios.get(f"gates' cost, {stage} (in-stage, %)")
        wall = report.ratios.get(f"gates' cost, {stage} (wall, %)")
        cost_text = f"{cost:+.1f} % ({wall:+.1f} %)" if cost is not None and wall is not None else ""
        alt = alternative.get(stage)
        versus = f"{on.wall_s / alt.wall_s:.2f}×" if on and alt and alt.wall_s and alt.ok else ""
        lines.append(
            f"| {stage} | {_cell(off)} | {_cell(on)} | {cost_text} | {alt.name if alt else ''} | "
            f"{_cell(alt)} | {versus} |"
        )
    return [*lines, ""]
