"""Baseline: the gold features as the best DuckDB SQL we could write, Parquet out.

Same contract as :mod:`jobs.gold.features` (a full build: every print gets a row). The query
pre-aggregates events per (user, value prop, period) on ONE integer key
``(user_id * 2^16 + enum code of value_prop) * 2^15 + period`` (an ENUM gives value props dense
integer codes), then sums the lookback window with a RANGE window frame over that key,
partitioned by (user, value prop): ``RANGE BETWEEN W PRECEDING AND 1 PRECEDING``. Clicks join
on a second integer key (user, value prop, day). No range join anywhere.

Variants tried at scale 10 (same machine, same data): expanding every aggregate to the W later
periods it feeds and re-aggregating (``shift``), and W equi-joins of the print keys to the
aggregates (``joins``) were both slower than the partitioned window (infra/bench/README.md).
"""

from __future__ import annotations

import duckdb

from infra.bench.inputs import silver_files, window_width
from jobs.settings import Settings

_MONDAY = "DATE '1970-01-05'"  # a Monday: (day - Monday) // 7 numbers calendar weeks
_EPOCH = "DATE '1970-01-01'"
MEMORY_LIMIT = "8GB"


def query(settings: Settings) -> str:
    width = window_width(settings)
    calendar = settings.lookback_mode == "calendar"
    period = f"((day - {_MONDAY}) // 7)" if calendar else f"(day - {_EPOCH})"
    day_number = f"(day - {_EPOCH})"

    def key(p: str) -> str:
        return f"((user_id * 65536 + enum_code(value_prop::vp)) * 32768 + {p})"

    return f"""
WITH events AS (
    SELECT {key(period)} AS k, 1 AS v, 0 AS c, 0 AS n, 0::BIGINT AS cents FROM prints
    UNION ALL SELECT {key(period)}, 0, 1, 0, 0 FROM taps
    UNION ALL SELECT {key(period)}, 0, 0, 1, (total * 100)::BIGINT FROM pays
),
per_period AS (
    SELECT k, sum(v) AS views, sum(c) AS clicks, sum(n) AS payments, sum(cents) AS cents
    FROM events GROUP BY k
),
features AS (
    SELECT k,
           sum(views) OVER w AS prior_views, sum(clicks) OVER w AS prior_clicks,
           sum(payments) OVER w AS prior_payments, sum(cents) OVER w AS prior_cents
    FROM per_period
    WINDOW w AS (PARTITION BY k // 32768 ORDER BY k
                 RANGE BETWEEN {width} PRECEDING AND 1 PRECEDING)
),
tapped AS (SELECT DISTINCT {key(day_number)} AS dk FROM taps)
SELECT (day - (isodow(day) - 1) * INTERVAL 1 DAY)::DATE AS week_start,
       day, user_id, value_prop, position,
       tapped.dk IS NOT NULL AS clicked,
       coalesce(prior_views, 0)::BIGINT AS prior_views,
       coalesce(prior_clicks, 0)::BIGINT AS prior_clicks,
       coalesce(prior_payments, 0)::BIGINT AS prior_payments,
       (coalesce(prior_cents, 0) / 100)::DECIMAL(18, 2) AS prior_amount
FROM (SELECT *, {key(period)} AS k, {key(day_number)} AS dk FROM prints) p
LEFT JOIN features USING (k)
LEFT JOIN tapped USING (dk)
"""


def run(settings: Settings, out: str, *, memory_limit: str = MEMORY_LIMIT) -> int:
    """Write the baseline's gold rows to the Parquet file ``out``; return the row count."""
    con = duckdb.connect()
    try:
        # A bounded footprint on a shared machine: past this DuckDB spills to disk. Row order
        # is not part of the result, so DuckDB need not preserve it (less memory).
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = '{out}.tmp'")
        for source in ("prints", "taps", "pays"):
            files = silver_files(settings, source)
            con.execute(
                f"CREATE VIEW {source} AS SELECT * FROM read_parquet({files!r}, "
                "hive_partitioning = true, hive_types = {'day': DATE})"
            )
        con.execute(
            "CREATE TYPE vp AS ENUM (SELECT value_prop FROM prints UNION "
            "SELECT value_prop FROM taps UNION SELECT value_prop FROM pays)"
        )
        con.execute(f"COPY ({query(settings)}) TO '{out}' (FORMAT parquet)")
        return int(con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0])
    finally:
        con.close()
