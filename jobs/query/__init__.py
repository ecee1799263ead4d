"""Ad-hoc SQL over the lake with DuckDB, in a sandbox made of DuckDB's own settings.

Every documented table is a view in a schema named after its layer (``gold.print_features``,
``silver.prints``, ``bronze.quarantine``), empty with its contract's columns until the table is
written; gold's tables are also available unqualified (``print_features``).

- :mod:`jobs.query.sandbox`: the connection of ``python -m jobs query`` (no file system for
  DuckDB at all, locked configuration; the tables arrive as Arrow datasets).
- :mod:`jobs.query.statements`: the friendly first check (one SELECT or EXPLAIN) and the
  one-line messages; the guarantee is the sandbox's.
- :mod:`jobs.query.shell`: the ``duckdb`` CLI's init file (``make duckdb``).
- :mod:`jobs.query.output`: CSV of nested columns.
"""

from __future__ import annotations

import duckdb
import polars as pl

from jobs.errors import PipelineError
from jobs.query.output import csv_text
from jobs.query.sandbox import SANDBOX, Connection, connect, open_lake, sandboxed, tables
from jobs.query.shell import EXTENSIONS, extension_path, init_sql, literal
from jobs.query.statements import REFUSED, failure, one_reading_statement
from jobs.run import RunContext

__all__ = [
    "EXTENSIONS",
    "REFUSED",
    "SANDBOX",
    "Connection",
    "connect",
    "csv_text",
    "extension_path",
    "init_sql",
    "literal",
    "open_lake",
    "run_query",
    "sandboxed",
    "tables",
]


def run_query(ctx: RunContext, sql: str) -> pl.DataFrame:
    """The result of ONE reading statement over the lake's views, or a one-line
    :class:`PipelineError` (refused, failed, or a result column the output cannot hold)."""
    with sandboxed() as bare:  # the statement first: no lake needed to say no
        one_reading_statement(bare, sql)
    lake = open_lake(ctx)
    try:
        return lake.con.sql(sql).pl()
    except duckdb.Error as exc:
        raise PipelineError(failure(exc, sql, lake.unreadable, _views(lake.con))) from None
    except pl.exceptions.PolarsError as exc:  # e.g. a UNION or a month INTERVAL column
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PipelineError(
            f"query failed: a result column has a type the output cannot hold ({first}); "
            "cast it, e.g. to VARCHAR"
        ) from None
    finally:
        lake.con.close()


def _views(con: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        rows = con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
            "AND schema_name <> 'main' ORDER BY ALL"
        ).fetchall()
    except duckdb.Error:
        return []
    return [f"{schema}.{name}" for schema, name in rows]
