"""Pure pieces: line counting, thresholds, merging chunk results, the failure message, the page."""

from __future__ import annotations

from datetime import date

import polars as pl

from jobs.quality.history import to_frame
from jobs.quality.reconcile import (
    FileCount,
    bronze_lines_reconcile,
    data_lines,
    gold_rows_reconcile,
    physical_lines,
    quarantine_thresholds,
    silver_rows_reconcile,
)
from jobs.quality.report import render, stage_summary, summary_lines
from jobs.quality.results import CheckResult, failure_message, merge_all
from jobs.summary import StageResult


def test_physical_lines_count_like_the_parser_splits() -> None:
    assert physical_lines(b"") == 0
    assert physical_lines(b"\n") == 1
    assert physical_lines(b"a") == 1
    assert physical_lines(b"a\n") == 1
    assert physical_lines(b"a\r\nb\r\n") == 2
    assert physical_lines(b"a\n\nb") == 3


def test_a_valid_pays_header_is_not_a_data_line_but_an_invalid_one_is() -> None:
    assert data_lines("pays", b"pay_date,total,user_id,value_prop\n1\n2\n") == 2
    assert data_lines("pays", b"\xef\xbb\xbfuser_id,total,pay_date,value_prop\r\n1\n") == 1
    assert data_lines("pays", b"day,total\n1\n") == 2
    assert data_lines("pays", b"1\n2\n", first_line=1001) == 2  # a later chunk has no header
    assert data_lines("prints", b'{"day": 1}\n\n') == 2


def files() -> list[FileCount]:
    return [
        FileCount("prints", "prints/a.json", 200, 190, 10, {"invalid JSON": 10}),
        FileCount("prints", "prints/b.json", 1000, 1000, 0),
        FileCount("prints", "prints/tiny.json", 4, 1, 3, {"empty line": 2, "x": 1}),
    ]


def test_quarantine_threshold_records_the_big_files_bronze_rejected_and_warns_for_small_ones() -> None:
    big, small = quarantine_thresholds(
        "prints", files(), rejected={"prints/a.json"}, max_fraction=0.04, min_lines=100
    )
    assert (big.check, big.outcome, big.unexpected_count) == ("quarantined_fraction_per_file", "warning", 1)
    assert "prints/a.json 5.0%" in big.observed
    assert big.sample[0]["top reason"] == "invalid JSON (10)"
    assert (small.check, small.outcome) == ("quarantined_fraction_per_small_file", "warning")
    ok = quarantine_thresholds("prints", files(), rejected=(), max_fraction=0.06, min_lines=100)[0]
    assert ok.success and "max 5.00% (prints/a.json)" in ok.observed


def test_line_reconciliation_names_files_that_do_not_add_up() -> None:
    good = bronze_lines_reconcile("prints", files())
    assert good.success
    assert good.observed == "1,204 lines = 1,191 bronze + 13 quarantined over 3 file(s)"
    broken = bronze_lines_reconcile("prints", [FileCount("prints", "p/x", 5, 3, 1)])
    assert not broken.success and broken.sample[0]["file"] == "p/x"


def test_silver_and_gold_counts_reconcile_or_fail() -> None:
    assert silver_rows_reconcile("taps", silver_rows=5, bronze_rows=5).success
    off = silver_rows_reconcile("taps", silver_rows=6, bronze_rows=5)
    assert off.outcome == "failed" and off.unexpected_count == 1
    assert gold_rows_reconcile(gold_rows=3, silver_prints=3, weeks=[date(2020, 11, 2)]).success
    assert not gold_rows_reconcile(gold_rows=2, silver_prints=3, weeks=[]).success


def result(check: str, success: bool, **kw: object) -> CheckResult:
    base = {
        "layer": "silver",
        "table": "pays",
        "expectation_type": "expect_x",
        "description": "d",
        "severity": "failure",
        "observed": "ok",
        "evaluated_rows": 10,
    }
    return CheckResult(check=check, success=success, **(base | kw))  # type: ignore[arg-type]


def test_chunk_results_merge_into_one_result_per_check() -> None:
    merged = merge_all(
        [
            result("a", True),
            result("b", True),
            result(
                "a", False, observed="1 of 10 rows unexpected", unexpected_count=1, sample=({"user_id": "1"},)
            ),
        ]
    )
    assert [m.check for m in merged] == ["a", "b"]
    a = merged[0]
    assert (a.success, a.evaluated_rows, a.unexpected_count, a.observed) == (
        False,
        20,
        1,
        "1 of 10 rows unexpected",
    )


def test_failure_message_names_each_failing_check_its_values_and_rows() -> None:
    message = failure_message(
        "gate failed",
        [
            result(
                "total_non_negative",
                False,
                observed="1 of 10 rows unexpected, values -3.0",
                column="total",
                sample=({"user_id": "7", "total": "-3.00"},),
            ),
            result("value_prop_in_known_set", False, severity="warning"),
            result("day_not_null", True),
        ],
        report="/r.html",
    )
    assert message.splitlines() == [
        "gate failed",
        "  ✗ silver.pays.total_non_negative (expect_x total): 1 of 10 rows unexpected, values "
        "-3.0; rows {user_id: 7, total: -3.00}",
        "  quality report: /r.html",
    ]


def test_report_page_and_summary_lines_show_suites_reconciliation_and_warnings() -> None:
    results = [
        result("day_not_null", True),
        result("value_prop_in_known_set", False, severity="warning", observed="1 odd"),
        result(
            "rows_reconcile_with_bronze",
            True,
            expectation_type="reconciliation",
            observed="5 silver rows = 5 bronze rows of 1 bronze run(s)",
        ),
    ]
    page = render("run-1", to_frame("run-1", results))
    assert "Suite silver.pays" in page and "<h2>Reconciliation</h2>" in page
    assert "class='warning'>warning" in page
    stage = StageResult("silver", details=[stage_summary("silver", results, "/lake/r.html")])
    assert summary_lines([stage]) == [
        "quality silver: ok, 2/3 checks passed, 1 warning(s)",
        "  reconciled pays: 5 silver rows = 5 bronze rows of 1 bronze run(s)",
        "  warning silver.pays.value_prop_in_known_set: 1 odd",
        "quality report: /lake/r.html",
    ]
    assert to_frame("run-1", results).schema["unexpected_count"] == pl.Int64
