"""The plain record every check produces, how chunk results merge, and the failure message."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Severity = Literal["failure", "warning"]
Outcome = Literal["passed", "warning", "failed"]

RECONCILIATION = "reconciliation"
THRESHOLD = "threshold"


@dataclass(frozen=True)
class CheckResult:
    """One check of one suite over the data a stage is about to publish.

    ``observed`` is a short human-readable statement of what was seen; ``sample`` holds a few
    unexpected rows (or files) as plain dicts of strings.
    """

    layer: str
    table: str
    check: str
    expectation_type: str
    description: str
    severity: Severity
    success: bool
    observed: str
    unexpected_count: int = 0
    evaluated_rows: int = 0
    column: str | None = None
    sample: tuple[dict[str, str], ...] = field(default_factory=tuple)
    arguments: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def suite(self) -> str:
        return f"{self.layer}.{self.table}"

    @property
    def outcome(self) -> Outcome:
        if self.success:
            return "passed"
        return "failed" if self.severity == "failure" else "warning"

    @property
    def blocking(self) -> bool:
        return self.outcome == "failed"

    def as_row(self) -> dict[str, Any]:
        """The history-table columns of this result (without run id and timestamp)."""
        return {
            "layer": self.layer,
            "table_name": self.table,
            "suite": self.suite,
            "expectation": self.check,
            "expectation_type": self.expectation_type,
            "column_name": self.column,
            "description": self.description,
            "severity": self.severity,
            "success": self.success,
            "outcome": self.outcome,
            "observed_value": self.observed,
            "unexpected_count": self.unexpected_count,
            "evaluated_rows": self.evaluated_rows,
            "unexpected_rows": json.dumps(list(self.sample), default=str),
        }


def merge(first: CheckResult, second: CheckResult, *, max_sample: int = 5) -> CheckResult:
    """One result for a check evaluated on two chunks of the same data (files, batches, buckets).

    Counts add up; the observed value of a failing chunk wins over a passing one.
    """
    failing = [r for r in (first, second) if not r.success]
    observed = failing[0].observed if failing else second.observed
    if len(failing) == 2 and failing[0].observed != failing[1].observed:
        observed = f"{failing[0].observed}; {failing[1].observed}"
    return replace(
        first,
        success=first.success and second.success,
        observed=observed[:2000],
        unexpected_count=first.unexpected_count + second.unexpected_count,
        evaluated_rows=first.evaluated_rows + second.evaluated_rows,
        sample=(first.sample + second.sample)[:max_sample],
    )


def merge_all(results: Iterable[CheckResult], *, max_sample: int = 5) -> list[CheckResult]:
    """Merge results of the same (suite, check), keeping first-seen order."""
    merged: dict[tuple[str, str], CheckResult] = {}
    for r in results:
        key = (r.suite, r.check)
        merged[key] = merge(merged[key], r, max_sample=max_sample) if key in merged else r
    return list(merged.values())


def _row_text(row: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in row.items()) + "}"


def describe(result: CheckResult, *, rows: int = 3) -> str:
    """``name (type column): observed; e.g. {row}, {row}`` on one line."""
    what = result.expectation_type
    if result.column:
        what += f" {result.column}"
    text = f"{result.suite}.{result.check} ({what}): {result.observed}"
    if result.sample and rows:
        text += "; rows " + ", ".join(_row_text(r) for r in result.sample[:rows])
    return text


def failure_message(headline: str, results: Iterable[CheckResult], *, report: str | None = None) -> str:
    """The one message a failed gate raises: the headline, each failing check, the report."""
    failing = [r for r in results if r.blocking]
    lines = [headline]
    lines += [f"  ✗ {describe(r)}" for r in failing]
    if report:
        lines.append(f"  quality report: {report}")
    return "\n".join(lines)
