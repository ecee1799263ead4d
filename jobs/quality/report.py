"""The human-readable side: an HTML report per run, and the lines the CLI summary prints.

The report of run ``R`` is written twice: ``<LAKE_BRONZE>/_quality_reports/R.html`` with the
sample rows of failing checks (for the pipeline's operators), and
``<LAKE_GOLD>/_quality_reports/R.html`` with counts and check names only (for whoever reads
gold); each is copied to ``latest.html``. Both are written through the storage filesystem (local
disk or S3), each under a temporary name first so a reader never sees half a page, and rebuilt
from the history after each stage, so they show every check recorded for the run so far.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import polars as pl

from jobs.quality.history import run_results
from jobs.quality.results import RECONCILIATION, THRESHOLD
from jobs.run import RunContext
from jobs.schemas import QUALITY_REPORTS
from jobs.storage import join

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.passed{color:#176f2c}.warning{color:#9a6700;font-weight:bold}.failed{color:#b00020;font-weight:bold}
pre{margin:0;white-space:pre-wrap;font-size:.85em}
"""


def report_uri(ctx: RunContext, run_id: str | None = None, *, with_samples: bool = False) -> str:
    root = ctx.settings.lake_bronze if with_samples else ctx.settings.lake_gold
    return join(root, QUALITY_REPORTS, f"{run_id or ctx.run_id}.html")


def latest_uri(ctx: RunContext, *, with_samples: bool = False) -> str:
    root = ctx.settings.lake_bronze if with_samples else ctx.settings.lake_gold
    return join(root, QUALITY_REPORTS, "latest.html")


def _status(rows: pl.DataFrame) -> str:
    outcomes = set(rows["outcome"].to_list())
    return "failed" if "failed" in outcomes else "warning" if "warning" in outcomes else "passed"


def _cell(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _sample(text: str | None) -> str:
    rows = json.loads(text) if text else []
    if not rows:
        return ""
    return "<pre>" + html.escape("\n".join(json.dumps(r, ensure_ascii=False) for r in rows)) + "</pre>"


def _table(rows: pl.DataFrame, *, with_suite: bool = False) -> str:
    head = [
        "status",
        *(["suite"] if with_suite else []),
        "check",
        "checks that",
        "column",
        "severity",
        "observed",
        "unexpected",
        "rows",
        "unexpected rows",
    ]
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows.iter_rows(named=True):
        cells = [f'<td class="{r["outcome"]}">{r["outcome"]}</td>']
        if with_suite:
            cells.append(f"<td>{_cell(r['suite'])}</td>")
        cells += [
            f"<td><code>{_cell(r['expectation'])}</code><br><small>"
            f"{_cell(r['expectation_type'])}</small></td>",
            f"<td>{_cell(r['description'])}</td>",
            f"<td>{_cell(r['column_name'])}</td>",
            f"<td>{_cell(r['severity'])}</td>",
            f"<td>{_cell(r['observed_value'])}</td>",
            f"<td>{r['unexpected_count']:,}</td>",
            f"<td>{r['evaluated_rows']:,}</td>",
            f"<td>{_sample(r['unexpected_rows'])}</td>",
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render(run_id: str, rows: pl.DataFrame, *, generated_at: datetime | None = None) -> str:
    """The HTML page for one run's results (pure)."""
    at = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Data quality — run {_cell(run_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Data quality — run <code>{_cell(run_id)}</code></h1>",
    ]
    if rows.is_empty():
        parts.append("<p>No quality results recorded for this run.</p></body></html>")
        return "\n".join(parts)
    counts = rows["outcome"].value_counts()
    tally = ", ".join(f"{n} {o}" for o, n in sorted(counts.iter_rows()))
    status = _status(rows)
    # HTML text showing a query to copy, never executed here
    parts.append(
        f"<p>Status: <span class='{status}'>{status}</span> ({tally}); generated {at}. "  # noqa: S608
        'History: <code>python -m jobs query "select * from gold.quality_results where '
        f"run_id = '{_cell(run_id)}'\"</code></p>"
    )
    kinds = pl.col("expectation_type").is_in([RECONCILIATION, THRESHOLD])
    recon = rows.filter(kinds)
    if recon.height:
        parts.append("<h2>Reconciliation</h2>")
        parts.append(_table(recon, with_suite=True))
    suites = rows.filter(~kinds)
    parts.append("<h2>Suites</h2><ul>")
    for suite in suites["suite"].unique(maintain_order=True).to_list():
        part = suites.filter(pl.col("suite") == suite)
        parts.append(
            f"<li><a href='#{_cell(suite)}'>{_cell(suite)}</a> — "
            f"<span class='{_status(part)}'>{_status(part)}</span></li>"
        )
    parts.append("</ul>")
    for suite in suites["suite"].unique(maintain_order=True).to_list():
        part = suites.filter(pl.col("suite") == suite)
        parts.append(
            f"<h3 id='{_cell(suite)}'>Suite {_cell(suite)} "
            f"<span class='{_status(part)}'>({_status(part)})</span></h3>"
        )
        parts.append(_table(part))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(ctx: RunContext) -> str:
    """Render this run's results to both reports and their ``latest.html``; returns the URI of
    the full one (with sample rows), which the failure messages name."""
    for with_samples in (False, True):
        rows = run_results(ctx, with_samples=with_samples)
        page = render(ctx.run_id, rows).encode()
        ctx.lake.put_file(report_uri(ctx, with_samples=with_samples), page, tag=ctx.run_id)
        ctx.lake.put_file(latest_uri(ctx, with_samples=with_samples), page, tag=ctx.run_id)
    return report_uri(ctx, with_samples=True)


# -- CLI summary --------------------------------------------------------------------------------
def stage_summary(
    stage: str, results: Iterable[Any], report: str | None, *, seconds: float = 0.0
) -> dict[str, Any]:
    """What a stage's quality hook puts in ``StageResult.details`` (plain JSON-able data)."""
    results = list(results)
    return {
        "quality": {
            "stage": stage,
            "checks": len(results),
            "passed": sum(r.outcome == "passed" for r in results),
            "warnings": [f"{r.suite}.{r.check}: {r.observed}" for r in results if r.outcome == "warning"],
            "failed": [f"{r.suite}.{r.check}: {r.observed}" for r in results if r.outcome == "failed"],
            "reconciliation": [
                f"{r.table}: {r.observed}" for r in results if r.expectation_type == RECONCILIATION
            ],
            "report": report,
            "validation_seconds": round(seconds, 3),
            # every check's verdict, per table (OpenLineage dataQualityAssertions: jobs.lineage)
            "assertions": [
                {
                    "table": r.table,
                    "assertion": r.check,
                    "success": r.success,
                    "column": r.column,
                    "severity": r.severity,
                }
                for r in results
            ],
        }
    }


def summary_lines(stage_results: Iterable[Any]) -> list[str]:
    """Lines for the run summary: reconciliation per stage, warnings, the report location."""
    lines: list[str] = []
    report = None
    for result in stage_results:
        for entry in getattr(result, "details", []) or []:
            q: Mapping[str, Any] | None = entry.get("quality") if isinstance(entry, dict) else None
            if not q:
                continue
            verdict = "FAILED" if q["failed"] else "ok"
            lines.append(
                f"quality {q['stage']}: {verdict}, {q['passed']}/{q['checks']} checks "
                f"passed, {len(q['warnings'])} warning(s)"
            )
            lines += [f"  reconciled {r}" for r in q["reconciliation"]]
            lines += [f"  warning {w}" for w in q["warnings"][:10]]
            report = q["report"] or report
    if report:
        lines.append(f"quality report: {report}")
    return lines
