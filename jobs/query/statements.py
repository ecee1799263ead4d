"""What ``python -m jobs query`` accepts, and its one-line messages.

The statement check here is only the friendly first message: ONE ``SELECT`` or ``EXPLAIN``
(``SHOW``, ``DESCRIBE``, ``SUMMARIZE``, ``FROM x`` and ``VALUES`` are selects too). What a
statement it lets through may still try (``EXPLAIN ANALYZE COPY … TO``, ``read_text('…')``,
``read_csv('http://…')``) is refused by DuckDB's sandbox (:mod:`jobs.query.sandbox`), and
:func:`failure` turns that refusal into one line too.
"""

from __future__ import annotations

import re

import duckdb

from jobs.errors import PipelineError

READ_ONLY = ("SELECT", "EXPLAIN")

REFUSED = "query refused: the query command is read-only and reads only the lake's views"


def one_reading_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise a one-line :class:`PipelineError` unless ``sql`` is exactly one statement that
    reads (nothing runs before this says yes)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise PipelineError(f"query failed: {_first_line(exc)}") from None
    if not statements:
        raise PipelineError("query refused: no SQL statement given (the text is empty or only comments)")
    if len(statements) > 1:
        raise PipelineError(
            f"query refused: {len(statements)} statements given, the query command runs one "
            "(it is read-only: one SELECT or EXPLAIN); nothing was run"
        )
    kind = statements[0].type.name
    if kind not in READ_ONLY:
        raise PipelineError(
            f"query refused: {kind} statements are not allowed here, only "
            f"{' and '.join(READ_ONLY)} (the query command is read-only); nothing was run"
        )


def is_sandbox_refusal(exc: duckdb.Error) -> bool:
    """True when DuckDB refused ``exc``'s statement because of the sandbox's settings."""
    return isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in str(exc)


def failure(exc: duckdb.Error, sql: str, unreadable: dict[str, str], views: list[str]) -> str:
    """One line: what failed; for a sandbox refusal, that it was refused; for an unknown name,
    why a documented view is absent or which views can be read instead."""
    first = _first_line(exc)
    if is_sandbox_refusal(exc):
        return f"{REFUSED} (DuckDB: {first}); nothing was run"
    if not isinstance(exc, duckdb.CatalogException):
        return f"query failed: {first}"
    named = [view for view in unreadable if re.search(rf"\b{re.escape(view)}\b", sql, re.IGNORECASE)]
    if named:
        return f"query failed: {unreadable[named[0]]}; nothing was read"
    return f"query failed: {first} (available views: {', '.join(views) or 'none'})"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
