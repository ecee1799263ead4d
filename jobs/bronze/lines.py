"""Split a raw file into numbered lines, the unit every later check accounts for."""

from __future__ import annotations

from typing import Any

import polars as pl

from jobs.schemas import Limits

DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
INVALID_UTF8 = "\ufffd"


def split_lines(content: bytes, *, first_line: int = 1) -> pl.LazyFrame:
    """``(line_number, raw_line)`` for every line of ``content``, numbered from ``first_line``.

    A trailing newline does not make an extra line; ``\\r\\n`` endings and a UTF-8 byte-order
    mark at the start of the file (line 1 only: a BOM inside a file is part of its line, whatever
    chunk the line falls in) are tolerated. Bytes that are not UTF-8 are kept (as U+FFFD) so the
    line can be quarantined with its reason instead of failing the file.
    """
    text = content.decode("utf-8", errors="replace")
    if first_line == 1:
        text = text.removeprefix("\ufeff")
    if not text:
        return pl.LazyFrame(schema={"line_number": pl.Int64, "raw_line": pl.String})
    lines = pl.Series("raw_line", [text]).str.split("\n").explode()
    if text.endswith("\n"):  # dropped here, not by str.removesuffix: that copies the whole text
        lines = lines.head(lines.len() - 1)
    frame = pl.LazyFrame([lines]).with_row_index("line_number", offset=first_line)
    if "\r" in text:  # CRLF endings (rare: not worth a pass over every line otherwise)
        frame = frame.with_columns(pl.col("raw_line").str.strip_suffix("\r"))
    return frame.select(pl.col("line_number").cast(pl.Int64), "raw_line")


def real_date(text: pl.Expr) -> pl.Expr:
    """A ``YYYY-MM-DD`` string that names a real calendar day, as a Date (null otherwise)."""
    return (
        pl.when(text.str.contains(DATE_RE))
        .then(text.str.strptime(pl.Date, "%Y-%m-%d", strict=False))
        .otherwise(None)
    )


def day_window(day: pl.Expr, name: str, limits: Limits) -> list[tuple[pl.Expr, str]]:
    """Rules for a real day outside the run's plausible window (QUALITY_MIN_DAY .. the run date
    + QUALITY_MAX_FUTURE_DAYS). Dates are compared as Polars Dates (32-bit day numbers): no
    year a ``YYYY-MM-DD`` string can name overflows here."""
    return [
        (day < limits.min_day, f"{name} is before QUALITY_MIN_DAY ({limits.min_day})"),
        (day > limits.max_day, f"{name} is after {limits.max_day} (the run date + QUALITY_MAX_FUTURE_DAYS)"),
    ]


def in_window(day: pl.Series, limits: Limits) -> pl.Series:
    """Whether each day is a real day inside the window (false for nulls)."""
    return day.is_between(limits.min_day, limits.max_day).fill_null(False)


def first_failure(*rules: tuple[pl.Expr, str | pl.Expr]) -> pl.Expr:
    """The reason of the first rule whose condition is true, null when every rule passes."""
    chain: Any = pl
    for condition, reason in rules:
        value = pl.lit(reason) if isinstance(reason, str) else reason
        chain = chain.when(condition.fill_null(False)).then(value)
    return chain.otherwise(pl.lit(None, dtype=pl.String)).alias("reason")
