"""Each stage's results as Great Expectations validation results, the record GX tools read.

Checks are declared as GX expectations (:mod:`jobs.quality.suites`) and evaluated with Polars
(:mod:`jobs.quality.validate`); this module writes what they found in GX 1.x's own JSON shape (an
``ExpectationSuiteValidationResult`` per suite: each expectation's type and arguments, success,
element and unexpected counts, observed value), so the record loads into GX (its
``ExpectationSuiteValidationResultSchema``) without GX being imported at run time. Counts and
check names only: the sample rows stay in the pipeline-only history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from jobs.quality.results import RECONCILIATION, THRESHOLD, CheckResult


def _plain(value: Any) -> Any:
    """Arguments as JSON values (dates as ISO text, tuples as lists)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def expectation_result(result: CheckResult) -> dict[str, Any]:
    """One ``ExpectationValidationResult`` (reconciliations are not GX expectations: their type
    is kept in ``meta`` and the configuration names GX's generic row-count comparison)."""
    ours = result.expectation_type in (RECONCILIATION, THRESHOLD)
    element_count = result.evaluated_rows
    return {
        "success": result.success,
        "expectation_config": {
            "type": "expect_table_row_count_to_equal" if ours else result.expectation_type,
            "kwargs": {"value": element_count} if ours else _plain(dict(result.arguments)),
            "meta": {
                "name": result.check,
                "description": result.description,
                "severity": result.severity,
                **({"lakehouse_check": result.expectation_type} if ours else {}),
            },
        },
        "result": {
            "element_count": element_count,
            "unexpected_count": result.unexpected_count,
            "unexpected_percent": 100.0 * result.unexpected_count / element_count if element_count else 0.0,
            "observed_value": result.observed,
        },
        "meta": {"outcome": result.outcome},
        "exception_info": {"raised_exception": False, "exception_traceback": None, "exception_message": None},
    }


def validation_results(
    results: Sequence[CheckResult], *, run_id: str, stage: str, recorded_at: datetime
) -> list[dict[str, Any]]:
    """One ``ExpectationSuiteValidationResult`` per suite, in first-seen order (pure)."""
    suites: dict[str, list[CheckResult]] = {}
    for r in results:
        suites.setdefault(r.suite, []).append(r)
    documents = []
    for suite, members in suites.items():
        passed = sum(r.success for r in members)
        documents.append(
            {
                "success": all(r.success or r.severity == "warning" for r in members),
                "results": [expectation_result(r) for r in members],
                "suite_name": suite,
                "suite_parameters": {},
                "statistics": {
                    "evaluated_expectations": len(members),
                    "successful_expectations": passed,
                    "unsuccessful_expectations": len(members) - passed,
                    "success_percent": 100.0 * passed / len(members),
                },
                "meta": {"run_id": {"run_name": run_id, "run_time": recorded_at.isoformat()}, "stage": stage},
            }
        )
    return documents


def to_json(documents: list[dict[str, Any]]) -> bytes:
    return json.dumps(documents, indent=1, sort_keys=True).encode()
