"""The data dictionary's text: what every table of :mod:`jobs.schemas` and each of its columns
means, one description each.

Written into each Delta table (the table's description, each column's ``comment`` metadata),
shown by ``python -m jobs describe`` and the DuckDB views, and generated into jobs/README.md's
data contract, all by :mod:`jobs.dictionary`. Gold's feature columns are described in the
feature registry (:mod:`jobs.feature_registry`).
"""

from __future__ import annotations

from jobs.schemas import (
    GOLD_TABLE,
    MANIFEST_STATUSES,
    QUALITY_SAMPLES_TABLE,
    QUALITY_TABLE,
    RESCUED,
    RUNS_TABLE,
)

LINEAGE_DOC = {
    "source_file": "path of the raw file the row came from, relative to LAKE_RAW",
    "line_number": "1-based line of the row in that file (a CSV header counts as line 1)",
    "run_id": "the pipeline run that took the row in",
    "ingested_at": "when that run took the row in (UTC)",
}
RESCUED_DOC = "JSON of the line's fields the contract does not know (schema drift), null when none"
BRONZE_EVENTS_DOC = {
    "day": "the day of the event",
    "user_id": "the user (a positive integer)",
    "value_prop": "the value prop shown (non-empty; unknown value props are kept)",
    "position": "the value prop's position in what the user was shown (0 or more)",
    **LINEAGE_DOC,
    RESCUED: RESCUED_DOC,
}
BRONZE_PAYS_DOC = {
    "pay_date": "the day of the pay",
    "total": "the pay's amount, at most 2 decimals, from 0 to MAX_TOTAL",
    "user_id": "the user who paid (a positive integer)",
    "value_prop": "the value prop paid for (non-empty; unknown value props are kept)",
    **LINEAGE_DOC,
    RESCUED: RESCUED_DOC,
}
BRONZE_DOC = {"prints": BRONZE_EVENTS_DOC, "taps": BRONZE_EVENTS_DOC, "pays": BRONZE_PAYS_DOC}
QUARANTINE_DOC = {
    "source": "the raw source of the line: prints, taps or pays",
    "source_file": LINEAGE_DOC["source_file"],
    "line_number": "1-based line in that file (a CSV header counts as line 1)",
    "raw_line": "the line as delivered",
    "reason": "the first contract rule the line breaks",
    "run_id": "the pipeline run that quarantined the line",
    "ingested_at": "when that run quarantined the line (UTC)",
}
MANIFEST_DOC = {
    "source": "the raw source of the file: prints, taps or pays",
    "path": "path of the raw file, relative to LAKE_RAW",
    "size_bytes": "size of the file as delivered, in bytes",
    "checksum": "MD5 of the bytes as delivered (compressed or not)",
    "lines": "lines of the file (bronze_rows + quarantined_rows; a valid CSV header is not counted)",
    "bronze_rows": "lines of the file taken into bronze",
    "quarantined_rows": "lines of the file put in quarantine",
    "run_id": "the pipeline run that handled this version of the file",
    "ingested_at": "when that run handled it (UTC)",
    "fingerprint": "what the listing saw: the S3 ETag or the local size:mtime",
    "status": "how bronze holds the file now: " + ", ".join(MANIFEST_STATUSES),
    "reason": "why the file was rejected, skipped as a duplicate, deleted or lost (null otherwise)",
    "replaces": "checksum of the version this row replaced (null for the first version)",
    "drift": "the file's new and missing fields with their line counts, JSON (null when none)",
}
SILVER_EVENTS_DOC = {
    "day": "the day of the event (the partition)",
    "user_id": "the user",
    "value_prop": "the value prop",
    "position": "the value prop's position in what the user was shown",
    "run_id": "the pipeline run that took the event into bronze",
}
SILVER_PAYS_DOC = {
    "day": "the day of the pay (bronze's pay_date; the partition)",
    "user_id": "the user who paid",
    "value_prop": "the value prop paid for",
    "total": "the pay's amount, exact to the cent",
    "run_id": "the pipeline run that took the pay into bronze",
}
SILVER_DOC = {"prints": SILVER_EVENTS_DOC, "taps": SILVER_EVENTS_DOC, "pays": SILVER_PAYS_DOC}
GOLD_PRINT_DOC = {
    "week_start": "Monday of the print's week (the partition)",
    "day": "the day of the print",
    "user_id": "the user the value prop was printed to",
    "value_prop": "the value prop printed",
    "position": "its position in the print",
    "clicked": "whether a tap exists for the same user_id, value_prop and day",
}
QUALITY_RESULTS_DOC = {
    "run_id": "the pipeline run that ran the check",
    "recorded_at": "when the check's result was recorded (UTC)",
    "layer": "the layer checked: bronze, silver or gold",
    "table_name": "the table checked: prints, taps, pays or print_features",
    "suite": "the suite of the check: layer.table, e.g. gold.print_features",
    "expectation": "the check's stable name, e.g. value_prop_in_known_set",
    "expectation_type": "the GX expectation type, or reconciliation / threshold",
    "column_name": "the column checked (null for a check of the whole table)",
    "description": "what the check asserts",
    "severity": "failure (holds the batch) or warning",
    "success": "whether the check passed",
    "outcome": "passed, warning or failed",
    "observed_value": "what the check observed, as text",
    "unexpected_count": "rows that broke the check",
    "evaluated_rows": "rows the check looked at",
    "unexpected_rows": "always null (sample rows are in bronze/_quality_samples)",
}
RUNS_DOC = {
    "run_id": "the pipeline run (as its summary and logs show it)",
    "stage": "the stage: bronze, silver, gold or export",
    "started_at": "when the stage started (UTC)",
    "ended_at": "when the stage ended, done or failed (UTC)",
    "seconds": "the stage's wall-clock seconds",
    "status": "succeeded, skipped (nothing new, no table version) or failed",
    "error": "the failure's one line (null unless failed)",
    "files": "raw files the stage handled (bronze) or files it wrote (export)",
    "rows_in": "rows the stage read",
    "rows_out": "rows the stage wrote",
    "quarantined": "lines put in quarantine (bronze)",
    "bytes_read": "raw bytes taken in (bronze; null for the other stages)",
    "checks": "quality checks the stage's gate ran",
    "checks_failed": "of them, failed (a failure holds the commit)",
    "checks_warned": "of them, passed with a warning",
    "versions": "JSON object: each table the stage committed and the version it got",
    "note": "the stage's note, as the run summary shows it",
}
QUALITY_SAMPLES_DOC = {
    "run_id": "the pipeline run whose check failed",
    "recorded_at": "when the sample was recorded (UTC)",
    "layer": "the layer checked: bronze, silver or gold",
    "table_name": "the table checked",
    "expectation": "the failing check's stable name",
    "unexpected_rows": "JSON list of a few rows that broke the check",
}
TABLE_DOC = {
    "bronze/prints": "Every valid prints line as landed, with its lineage: one row per raw line.",
    "bronze/taps": "Every valid taps line as landed, with its lineage: one row per raw line.",
    "bronze/pays": "Every valid pays row as landed, with its lineage: one row per raw line.",
    "bronze/quarantine": "Every raw line that broke the contract, with the rule it broke.",
    "bronze/_manifest": "One row per version of a raw file a run handled; the newest row of a "
    "path says how bronze holds it now.",
    f"bronze/{QUALITY_SAMPLES_TABLE}": "Sample rows of failing quality checks (pipeline identity only).",
    "silver/prints": "Clean, typed prints: one row per print event.",
    "silver/taps": "Clean, typed taps: one row per tap event.",
    "silver/pays": "Clean, typed pays: one row per pay.",
    f"gold/{GOLD_TABLE}": "One row per silver print: the print, its click flag and its lookback "
    "features (one column per feature of the registry).",
    f"gold/{QUALITY_TABLE}": "Data quality history: one row per check per table per stage of a run.",
    f"gold/{RUNS_TABLE}": "Run history: one row per stage of every run that did something "
    "(a run with nothing new records nothing).",
}
