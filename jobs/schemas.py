"""The data contract of every table: names, column types and partitioning.

Writers cast to these schemas before committing so a table's types never drift, and the
contract in jobs/README.md mirrors this file. Gold's feature columns (and their audit columns)
come from the feature registry, :mod:`jobs.feature_registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import polars as pl

from jobs.feature_registry import GOLD_FEATURES, ONE_WINDOW, Feature, audit_schema, feature_schema
from jobs.feature_registry import SUM_AMOUNT as SUM_AMOUNT  # re-exported: the contract's type
from jobs.stages import DEFAULT_MAX_FUTURE_DAYS, DEFAULT_MIN_DAY, ENGINE_MAX_DAY, ENGINE_MIN_DAY

SOURCES = ("prints", "taps", "pays")
EVENT_SOURCES = ("prints", "taps")

UTC_TS = pl.Datetime("us", "UTC")
AMOUNT = pl.Decimal(18, 2)
# SUM_AMOUNT, decimal(38,2): a sum of totals (gold's prior_amount), declared with the feature
# in jobs.feature_registry (why any number of totals fits it exactly is said there).

# -- row limits of the contract (bronze quarantines a row outside them, with its reason) -------
# The largest total a pay may have: the decimal(18,2) maximum (16 integer digits).
MAX_TOTAL = Decimal("9999999999999999.99")
# The engines' range of days (ENGINE_MIN_DAY, ENGINE_MAX_DAY) and the defaults of the plausible
# window (DEFAULT_MIN_DAY, DEFAULT_MAX_FUTURE_DAYS) live in jobs.stages, free of polars.


@dataclass(frozen=True)
class Limits:
    """The plausible days of a run: ``[min_day, max_day]``, inside the engines' range.

    Stages build it with :meth:`for_run` from the run date (the date the run started) and the
    settings, and pass it to the parsers explicitly, so they stay pure. The default is the widest
    window no engine overflows on (for callers that know no run date).
    """

    min_day: date = DEFAULT_MIN_DAY
    max_day: date = ENGINE_MAX_DAY

    def __post_init__(self) -> None:
        if not ENGINE_MIN_DAY <= self.min_day <= self.max_day <= ENGINE_MAX_DAY:
            raise ValueError(
                f"day limits {self.min_day}..{self.max_day} are not an ordered "
                f"window inside {ENGINE_MIN_DAY}..{ENGINE_MAX_DAY}"
            )

    @classmethod
    def for_run(
        cls,
        run_date: date,
        *,
        min_day: date = DEFAULT_MIN_DAY,
        max_future_days: int = DEFAULT_MAX_FUTURE_DAYS,
    ) -> Limits:
        """Days from ``min_day`` (QUALITY_MIN_DAY) to the run date + ``max_future_days``
        (QUALITY_MAX_FUTURE_DAYS), capped at :data:`ENGINE_MAX_DAY`."""
        latest = ENGINE_MAX_DAY - run_date
        return cls(min_day, run_date + min(timedelta(days=max_future_days), latest))


DEFAULT_LIMITS = Limits()

LINEAGE: dict[str, pl.DataType] = {
    "source_file": pl.String(),
    "line_number": pl.Int64(),
    "run_id": pl.String(),
    "ingested_at": UTC_TS,
}

# Schema drift: the fields of a raw line the contract does not know, as JSON text (null when
# there are none), like Auto Loader's rescued data column. Last, so a bronze table written
# before it existed gains it at the same place (schema_mode="merge").
RESCUED = "_rescued"
BRONZE_EVENTS = pl.Schema(
    {
        "day": pl.Date(),
        "user_id": pl.Int64(),
        "value_prop": pl.String(),
        "position": pl.Int64(),
        **LINEAGE,
        RESCUED: pl.String(),
    }
)
BRONZE_PAYS = pl.Schema(
    {
        "pay_date": pl.Date(),
        "total": AMOUNT,
        "user_id": pl.Int64(),
        "value_prop": pl.String(),
        **LINEAGE,
        RESCUED: pl.String(),
    }
)
BRONZE = {"prints": BRONZE_EVENTS, "taps": BRONZE_EVENTS, "pays": BRONZE_PAYS}

QUARANTINE = pl.Schema(
    {
        "source": pl.String(),
        "source_file": pl.String(),
        "line_number": pl.Int64(),
        "raw_line": pl.String(),
        "reason": pl.String(),
        "run_id": pl.String(),
        "ingested_at": UTC_TS,
    }
)
# Column statistics (min/max, kept in plain text in the Delta log) only for these: never for
# ``raw_line`` or ``reason`` (a rejected line, or a reason quoting it, may hold anything, even a
# secret that was never meant for the lake). deltalake 1.x honours it when writing.
QUARANTINE_PROPERTIES = {
    "delta.dataSkippingStatsColumns": ",".join(
        c for c in QUARANTINE.names() if c not in ("raw_line", "reason")
    )
}

# One row per raw file version a run took in (a corrected file gets a new row: the history of
# its versions). The newest row of a path says how bronze holds it now.
MANIFEST = pl.Schema(
    {
        "source": pl.String(),
        "path": pl.String(),
        "size_bytes": pl.Int64(),
        "checksum": pl.String(),  # MD5 of the content read
        "lines": pl.Int64(),
        "bronze_rows": pl.Int64(),
        "quarantined_rows": pl.Int64(),
        "run_id": pl.String(),
        "ingested_at": UTC_TS,
        "fingerprint": pl.String(),  # S3 ETag or local size+mtime when listed
        "status": pl.String(),  # one of MANIFEST_STATUSES
        "reason": pl.String(),  # why a file was rejected, skipped or forgotten (null otherwise)
        "replaces": pl.String(),  # checksum of the version this row replaced (null: first)
        # schema drift of the file: JSON {"new_fields": {field: lines}, "missing_fields": {…}}
        # (either key only when non-empty), null when the file has none
        "drift": pl.String(),
    }
)
# ingested; rejected (every line in quarantine, or the path unreadable); unchanged (touched, same
# content); duplicate (its bytes equal a file bronze holds: not taken in, counts 0 lines);
# deleted (listed no more, its rows kept) or retracted (… its rows removed): both count 0 lines;
# lost (doctor --repair removed what was left of its rows after bronze lost commits: the next run
# takes it in again)
MANIFEST_STATUSES = ("ingested", "rejected", "unchanged", "duplicate", "deleted", "retracted", "lost")

SILVER_EVENTS = pl.Schema(
    {
        "day": pl.Date(),
        "user_id": pl.Int64(),
        "value_prop": pl.String(),
        "position": pl.Int64(),
        "run_id": pl.String(),
    }
)
SILVER_PAYS = pl.Schema(
    {
        "day": pl.Date(),
        "user_id": pl.Int64(),
        "value_prop": pl.String(),
        "total": AMOUNT,
        "run_id": pl.String(),
    }
)
SILVER = {"prints": SILVER_EVENTS, "taps": SILVER_EVENTS, "pays": SILVER_PAYS}
SILVER_PARTITION = "day"

# Gold: the print and its click flag, then one column per feature of the registry.
GOLD_PRINT = pl.Schema(
    {
        "week_start": pl.Date(),
        "day": pl.Date(),
        "user_id": pl.Int64(),
        "value_prop": pl.String(),
        "position": pl.Int64(),
        "clicked": pl.Boolean(),
    }
)
TAP_SAME_DAY = "tap_same_day"


def gold_schema(
    features: Sequence[Feature] = GOLD_FEATURES, windows: Sequence[int] = ONE_WINDOW
) -> pl.Schema:
    """The gold table's contract for ``features`` and the lookback ``windows`` (weeks, the
    primary first: ``LOOKBACK_WEEKS``); :data:`GOLD` for the registry's with one window."""
    return pl.Schema({**GOLD_PRINT, **feature_schema(features, windows)})


def gold_audit_schema(
    features: Sequence[Feature] = GOLD_FEATURES, windows: Sequence[int] = ONE_WINDOW
) -> pl.Schema:
    """Audit columns the gold plan can compute beside the gold rows for the gold suite
    (jobs.gold.features.build_features(audit=True), or re-derived by jobs.quality.derive);
    never written: ``tap_same_day``, then per feature its ``expected_prior_<measure>`` (a
    decimal sum as its exact integer units, decimal(38,0): see AUDIT_UNITS), per window."""
    return pl.Schema({TAP_SAME_DAY: pl.Boolean(), **audit_schema(features, windows)})


GOLD = gold_schema()
GOLD_AUDIT = gold_audit_schema()
GOLD_PARTITION = "week_start"
GOLD_TABLE = "print_features"

# Data quality history (jobs/quality): one row per check per table per stage of a run, appended to
# <LAKE_GOLD>/_quality_results; the HTML report of a run lives in <LAKE_GOLD>/_quality_reports/.
QUALITY_TABLE = "_quality_results"
# Sample rows of failing checks are data of the layer they come from: they are kept beside bronze
# (<LAKE_BRONZE>/_quality_samples, the pipeline identity only), never in the gold bucket.
QUALITY_SAMPLES_TABLE = "_quality_samples"
QUALITY_REPORTS = "_quality_reports"
QUALITY_RESULTS = pl.Schema(
    {
        "run_id": pl.String(),
        "recorded_at": UTC_TS,
        "layer": pl.String(),  # bronze | silver | gold
        "table_name": pl.String(),  # prints, taps, pays, print_features
        "suite": pl.String(),  # <layer>.<table>
        "expectation": pl.String(),  # the check's stable name, e.g. value_prop_in_known_set
        "expectation_type": pl.String(),  # GX expectation type, or reconciliation / threshold
        "column_name": pl.String(),
        "description": pl.String(),
        "severity": pl.String(),  # failure | warning
        "success": pl.Boolean(),
        "outcome": pl.String(),  # passed | warning | failed
        "observed_value": pl.String(),
        "unexpected_count": pl.Int64(),
        "evaluated_rows": pl.Int64(),
        "unexpected_rows": pl.String(),  # gold: always null; the rows are in QUALITY_SAMPLES
    }
)


# Run history (jobs/runs.py): one row per stage of every run that did something, appended to
# <LAKE_GOLD>/_runs beside the quality history (counts and versions only, no data rows).
RUNS_TABLE = "_runs"
RUNS = pl.Schema(
    {
        "run_id": pl.String(),
        "stage": pl.String(),  # bronze | silver | gold | export
        "started_at": UTC_TS,
        "ended_at": UTC_TS,
        "seconds": pl.Float64(),
        "status": pl.String(),  # succeeded | skipped | failed
        "error": pl.String(),  # failed: the error's one line
        "files": pl.Int64(),
        "rows_in": pl.Int64(),
        "rows_out": pl.Int64(),
        "quarantined": pl.Int64(),
        "bytes_read": pl.Int64(),  # bronze: raw bytes taken in; null for the other stages
        "checks": pl.Int64(),
        "checks_failed": pl.Int64(),
        "checks_warned": pl.Int64(),
        "versions": pl.String(),  # JSON {table: version} of the versions the stage committed
        "note": pl.String(),
    }
)
RUN_STATUSES = ("succeeded", "skipped", "failed")


def conform(frame: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """Select exactly the schema's columns, in order, cast to its types."""
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


QUALITY_SAMPLES = pl.Schema(
    {
        "run_id": pl.String(),
        "recorded_at": UTC_TS,
        "layer": pl.String(),
        "table_name": pl.String(),
        "expectation": pl.String(),
        "unexpected_rows": pl.String(),  # JSON list of a few unexpected rows
    }
)


# -- the data dictionary: what every table and column means ----------------------------------
# One description per column of every contract above (and per table below), written into each
# Delta table (the table's description, each column's ``comment`` metadata), shown by
# ``python -m jobs describe`` and the DuckDB views, and generated into jobs/README.md's data
# contract (jobs.dictionary). Gold's feature columns are described in the feature registry.
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
