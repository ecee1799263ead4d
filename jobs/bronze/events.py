"""The prints/taps contract: JSON-lines events checked line by line.

DuckDB's JSON functions do the parsing because they tell, per line, whether the text is valid
JSON and what type each field has (Polars' JSON decoder fails the whole column on one bad
line). The rules themselves are Polars expressions, so every violation gets a precise reason.

Fast path: nearly every line has the canonical shape
``{"day": "YYYY-MM-DD", "event_data": {"position": P, "value_prop": "V"}, "user_id": U}``.
A strict regular expression (Polars, vectorised) recognises exactly those lines whose fields
already meet the contract — a plain positive integer user id, a plain non-negative integer
position, a value prop of letters, digits, ``_`` or ``-``, and a day that is a real date — and
takes their values from the match. Only the other lines (any other shape, spacing, key order,
escape or violation) go through DuckDB and the rules, so every reason stays exactly the same.
A canonical line whose day is not a real day inside the run's window goes through the rules too.

Schema drift: fields the contract does not know — top-level keys other than ``day``,
``event_data`` and ``user_id``, keys of ``event_data`` other than ``position`` and
``value_prop`` — do not make a line invalid: they are *rescued* into ``_rescued``, the JSON text
of those fields (nested ones under ``event_data``, in the order of the line; values as DuckDB
writes them back, e.g. ``1.10`` as ``1.1``), null when there are none. A line with extra keys
never matches the canonical regex, so it takes the slow path, where DuckDB's ``json_keys``
finds them (vectorised: cheaper than a second Python parse of each slow line, measured). Per
line, ``new_fields`` lists the unknown field paths (``device``, ``event_data.campaign``) and
``missing_fields`` the contract fields a JSON object lacks; both are null on the fast path and
are work columns for the drift report, not bronze columns.

Strict JSON (RFC 8259): DuckDB's ``json_valid`` also accepts trailing commas, ``NaN`` /
``Infinity`` and duplicate keys, so the lines of the slow path are first parsed by Python's
strict ``json`` parser (duplicate keys, at any depth, rejected); a line must pass both. The
canonical shape can hold none of these, so both paths keep the same verdict.
"""

from __future__ import annotations

import json

import polars as pl

from jobs.bronze.lines import INVALID_UTF8, day_window, first_failure, in_window, real_date
from jobs.schemas import DEFAULT_LIMITS, Limits

_EXTRACT = """
WITH parsed AS (
    SELECT line_number, raw_line,
           CASE WHEN json_problem IS NULL AND json_valid(raw_line) THEN raw_line::JSON END AS j,
    json_problem
    FROM lines
), fields AS (
    SELECT *,
       json_type(j) AS kind,
       json_type(j, '$.day') AS day_type, j->>'$.day' AS day_text,
       json_type(j, '$.user_id') AS user_type, j->>'$.user_id' AS user_text,
       json_type(j, '$.event_data') AS data_type,
       json_type(j, '$.event_data.value_prop') AS vp_type,
       j->>'$.event_data.value_prop' AS vp_text,
       json_type(j, '$.event_data.position') AS pos_type,
       j->>'$.event_data.position' AS pos_text
    FROM parsed
), keyed AS (
    SELECT *,
       CASE WHEN kind = 'OBJECT' THEN json_keys(j) END AS top_keys,
       CASE WHEN data_type = 'OBJECT'
            THEN list_filter(json_keys(j, '$.event_data'), k -> k NOT IN ('position', 'value_prop'))
            END AS data_new
    FROM fields
)
SELECT line_number, raw_line, json_problem, kind, day_type, day_text, user_type, user_text,
       data_type, vp_type, vp_text, pos_type, pos_text,
       CASE WHEN len(list_filter(top_keys, k -> k NOT IN ('day', 'event_data', 'user_id'))) > 0
                 OR len(data_new) > 0
            THEN to_json(map_from_entries(list_transform(
                list_filter(top_keys, k -> k NOT IN ('day', 'event_data', 'user_id')
                                           OR (k = 'event_data' AND len(data_new) > 0)),
                k -> {'k': k, 'v': CASE WHEN k = 'event_data'
                    THEN to_json(map_from_entries(list_transform(data_new, d -> {'k': d,
                         'v': json_extract(j, '/event_data/' || replace(replace(d, '~', '~0'), '/', '~1'))})))
                    ELSE json_extract(j, '/' || replace(replace(k, '~', '~0'), '/', '~1')) END}
            )))::VARCHAR END AS _rescued,
       list_concat(list_filter(top_keys, k -> k NOT IN ('day', 'event_data', 'user_id')),
                   list_transform(data_new, d -> 'event_data.' || d)) AS new_fields,
       CASE WHEN kind = 'OBJECT' THEN list_filter([
           CASE WHEN day_type IS NULL THEN 'day' END,
           CASE WHEN data_type IS NULL THEN 'event_data' END,
           CASE WHEN user_type IS NULL THEN 'user_id' END,
           CASE WHEN data_type = 'OBJECT' AND pos_type IS NULL THEN 'event_data.position' END,
           CASE WHEN data_type = 'OBJECT' AND vp_type IS NULL THEN 'event_data.value_prop' END
       ], f -> f IS NOT NULL) END AS missing_fields
FROM keyed
ORDER BY line_number
"""

_INTEGER_TYPES = ["UBIGINT", "BIGINT", "INTEGER", "UINTEGER"]

# The canonical line, fields already valid (at most 18 digits: always fits an Int64). Its
# values are the 4th, 9th, 12th and 15th pieces between double quotes.
CANONICAL_EVENT = (
    r'^\{"day": ?"\d{4}-\d{2}-\d{2}", ?"event_data": ?\{"position": ?(?:0|[1-9]\d{0,17}), ?'
    r'"value_prop": ?"[A-Za-z0-9_\-]+"\}, ?"user_id": ?[1-9]\d{0,17}\}$'
)
_PARTS = "__parts"  # a line split at its double quotes
_CANONICAL = "__canonical"
_COLUMNS = {
    "line_number": pl.Int64,
    "raw_line": pl.String,
    "day": pl.Date,
    "user_id": pl.Int64,
    "value_prop": pl.String,
    "position": pl.Int64,
    "_rescued": pl.String,
    "reason": pl.String,
    "new_fields": pl.List(pl.String),
    "missing_fields": pl.List(pl.String),
}


class _DuplicateKey(Exception):
    pass


class _NotANumber(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _no_constant(name: str) -> object:
    raise _NotANumber(name)


def _ignore(_text: str) -> int:
    return 0


def json_problem(line: str) -> str | None:
    """Why ``line`` is not one strict RFC 8259 JSON text, or None.

    Precise reasons for what DuckDB alone would accept (a trailing comma, NaN or Infinity, a
    duplicate key at any depth); plain ``invalid JSON`` for any other syntax error. Numbers are
    only scanned, never converted (no huge-integer or float overflow here).
    """
    try:
        json.loads(
            line,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_int=_ignore,
            parse_float=_ignore,
        )
    except _DuplicateKey as exc:
        return f"invalid JSON: duplicate key {json.dumps(exc.args[0])[:60]}"
    except _NotANumber as exc:
        return f"invalid JSON: {exc.args[0]} is not a JSON number"
    except json.JSONDecodeError as exc:
        at, before = exc.doc[exc.pos : exc.pos + 1], exc.doc[: exc.pos].rstrip()
        if at in ("}", "]") and before.endswith(","):
            return "invalid JSON: trailing comma"
        return "invalid JSON"
    except (ValueError, RecursionError):
        return "invalid JSON"
    return None


def extract_json_fields(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Per line: strict-JSON problem, JSON kind, each contract field's JSON type and text
    (nulls when absent), the rescued fields and the drift lists."""
    frame = lines.collect()
    frame = frame.with_columns(
        pl.Series(
            "json_problem", [json_problem(line) for line in frame["raw_line"].to_list()], dtype=pl.String
        )
    )
    import duckdb  # only the slow path needs it: a no-op run never pays for the import

    con = duckdb.connect()
    try:
        con.register("lines", frame)
        return con.sql(_EXTRACT).pl().lazy()
    finally:
        con.close()


def event_rules(fields: pl.LazyFrame, *, limits: Limits = DEFAULT_LIMITS) -> pl.LazyFrame:
    """Typed event columns plus ``reason`` (null for a line that meets the contract)."""
    raw = pl.col("raw_line")
    user = pl.col("user_text").cast(pl.Int64, strict=False)
    pos = pl.col("pos_text").cast(pl.Int64, strict=False)
    day = real_date(pl.col("day_text"))
    is_int = lambda col: pl.col(col).is_in(_INTEGER_TYPES)  # noqa: E731
    reason = first_failure(
        (raw.str.strip_chars() == "", "empty line"),
        (raw.str.contains(INVALID_UTF8, literal=True), "not valid UTF-8"),
        (pl.col("json_problem").is_not_null(), pl.col("json_problem")),
        (pl.col("kind").is_null(), "invalid JSON"),
        (pl.col("kind") != "OBJECT", "not a JSON object"),
        (pl.col("day_type").is_null(), "missing field: day"),
        ((pl.col("day_type") != "VARCHAR") | day.is_null(), "day is not a real calendar date (YYYY-MM-DD)"),
        *day_window(day, "day", limits),
        (pl.col("user_type").is_null(), "missing field: user_id"),
        (~is_int("user_type") | user.is_null() | (user <= 0), "user_id is not a positive integer"),
        (pl.col("data_type").fill_null("") != "OBJECT", "missing field: event_data"),
        (pl.col("vp_type").is_null(), "missing field: event_data.value_prop"),
        (
            (pl.col("vp_type") != "VARCHAR") | (pl.col("vp_text").str.strip_chars() == ""),
            "value_prop is empty or not a string",
        ),
        (pl.col("pos_type").is_null(), "missing field: event_data.position"),
        (~is_int("pos_type") | pos.is_null() | (pos < 0), "position is not an integer >= 0"),
    )
    return fields.select(
        "line_number",
        "raw_line",
        day.alias("day"),
        user.alias("user_id"),
        pl.col("vp_text").alias("value_prop"),
        pos.alias("position"),
        "_rescued",
        reason,
        *[_non_empty(name) for name in ("new_fields", "missing_fields")],
    )


def _non_empty(name: str) -> pl.Expr:
    """A list column with empty lists as nulls."""
    return pl.when(pl.col(name).list.len() > 0).then(pl.col(name)).alias(name)


def parse_events(lines: pl.LazyFrame, *, limits: Limits = DEFAULT_LIMITS) -> pl.LazyFrame:
    """Lines of a prints/taps file → contract-checked rows (``reason`` null when valid).

    ``limits`` are the run's plausible days (stages pass ``settings.limits(run date)``).
    """
    frame = lines.collect()
    # One streaming pass (both cores, morsel by morsel): the regex flags the canonical lines
    # and the split at double quotes, computed once, gives their fields (on other lines the
    # lenient casts give nulls, and those rows are dropped).
    parts = pl.col(_PARTS).struct.field
    flagged = (
        frame.lazy()
        .with_columns(
            pl.col("raw_line").str.contains(CANONICAL_EVENT).alias(_CANONICAL),
            pl.col("raw_line").str.split_exact('"', 14).alias(_PARTS),
        )
        .select(
            "line_number",
            "raw_line",
            parts("field_3").str.to_date("%Y-%m-%d", strict=False).alias("day"),
            parts("field_14").str.strip_chars(": }").cast(pl.Int64, strict=False).alias("user_id"),
            parts("field_11").alias("value_prop"),
            parts("field_8").str.strip_chars(": ,").cast(pl.Int64, strict=False).alias("position"),
            _CANONICAL,
        )
        .collect(engine="streaming")
    )
    canonical = flagged[_CANONICAL]
    fast = (
        (flagged if canonical.all() else flagged.filter(canonical))
        .drop(_CANONICAL)
        .with_columns(
            pl.lit(None, dtype=pl.String).alias("_rescued"),
            pl.lit(None, dtype=pl.String).alias("reason"),
            pl.lit(None, dtype=pl.List(pl.String)).alias("new_fields"),
            pl.lit(None, dtype=pl.List(pl.String)).alias("missing_fields"),
        )
    )
    real_day = in_window(fast["day"], limits)
    if not real_day.all():  # e.g. 2021-02-29 or 2099-01-01: the rules give the reason
        canonical = _with_real_days(frame, canonical, fast, real_day)
        fast = fast.filter(real_day)
    if fast.height == frame.height:
        return fast.lazy()
    rest = frame.filter(~canonical)
    checked = event_rules(extract_json_fields(rest.lazy()), limits=limits).collect()
    if rest.height == frame.height:
        return checked.lazy()
    return pl.concat([fast, checked.select(list(_COLUMNS))]).sort("line_number").lazy()


def _with_real_days(
    frame: pl.DataFrame, canonical: pl.Series, fast: pl.DataFrame, real_day: pl.Series
) -> pl.Series:
    """``canonical`` without the lines whose day is not a real calendar date in the window."""
    unreal = fast.filter(~real_day)["line_number"]
    return canonical & ~frame["line_number"].is_in(unreal.implode())
