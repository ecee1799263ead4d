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


def gold_audit_schema(features: Sequence[Feature] = GOLD_FEATURES) -> pl.Schema:
    """Audit columns the gold plan can compute beside the gold rows for the gold suite
    (jobs.gold.features.build_features(audit=True), or re-derived by jobs.quality.derive);
    never written: ``tap_same_day``, then per feature its ``expected_prior_<measure>`` (a
    decimal sum as its exact integer units, decimal(38,0): see AUDIT_UNITS). One set for all
    lookback windows: the suite picks each window's first-weeks rows from it."""
    return pl.Schema({TAP_SAME_DAY: pl.Boolean(), **audit_schema(features)})


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
