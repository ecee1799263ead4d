"""The pays contract: CSV rows ``pay_date,total,user_id,value_prop`` checked line by line.

The header is line 1 and names the columns: the four contract names in any order, plus any
other columns (schema drift), are read by name. The values of the other columns are *rescued*
per row into ``_rescued``, JSON ``{"column": "value"}`` (null when the header has no other
column). A header that lacks a contract column, or names a column twice or with an empty name,
is wrong: every line of the file is quarantined with the reason. The run goes on.

Fast path: a line made of exactly the header's fields in its order, the contract's already valid
(a ``YYYY-MM-DD`` day, a plain decimal with at most 2 decimals, a plain positive integer, a
value prop of letters, digits, ``_`` or ``-``) is recognised by one regular expression and its
fields taken by position; if its day is a real date inside the run's window it is a valid row.
Every other line goes through the rules below, so every reason stays exactly the same. Other
columns' values on the fast path are plain fields (no quote, comma or U+FFFD), spaces around
them dropped, as the rules read them.

Work columns for the drift report (not bronze columns): ``new_fields`` lists the other columns
of the header on every data line, ``missing_fields`` the contract columns a wrong header lacks.

Fields follow RFC 4180: a field may be enclosed in double quotes (then it may hold commas, and
a doubled ``""`` stands for one quote); a quote anywhere else is malformed. Spaces around a
field are ignored (as before). A quoted field cannot span lines: its line is quarantined.
"""

from __future__ import annotations

import re

import polars as pl

from jobs.bronze.lines import INVALID_UTF8, day_window, first_failure, in_window, real_date
from jobs.schemas import DEFAULT_LIMITS, MAX_TOTAL, SUM_AMOUNT, Limits

PAYS_COLUMNS = ("pay_date", "total", "user_id", "value_prop")
AMOUNT_RE = r"^\d+(\.\d{1,2})?$"
# One RFC 4180 field (spaces around it tolerated), and a whole line of them.
_FIELD = r' *"(?:[^"]|"")*" *|[^,"]*'
CSV_LINE_RE = rf"^(?:{_FIELD})(?:,(?:{_FIELD}))*$"
UINT_RE = r"^\d{1,18}$"
_CANONICAL_FIELD = {
    "pay_date": r"\d{4}-\d{2}-\d{2}",
    "total": r"\d{1,16}(?:\.\d{1,2})?",
    "user_id": r"[1-9]\d{0,17}",
    "value_prop": r"[A-Za-z0-9_\-]+",
}


_PARTS = "__parts"  # a line split at its commas
_CANONICAL = "__canonical"
_EXTRA_FIELD = '[^,"\ufffd]*'  # another column's value on the fast path


def canonical_pay(order: list[str]) -> str:
    """The regular expression of a canonical, valid data line for a header's column order."""
    return "^" + ",".join(_CANONICAL_FIELD.get(name, _EXTRA_FIELD) for name in order) + "$"


def header_names(first_line: str) -> list[str]:
    """The column names of a header line: RFC 4180 fields, spaces around them and enclosing
    quotes dropped, lower-cased."""
    line = first_line.removeprefix("\ufeff")
    if not re.fullmatch(CSV_LINE_RE, line):
        return [n.strip().strip('"').lower() for n in line.split(",")]
    fields = [f.strip(" ") for f in re.findall(f",({_FIELD})", "," + line)]
    return [(f[1:-1].replace('""', '"') if f.startswith('"') else f).lower() for f in fields]


def header_problem(first_line: str | None) -> str | None:
    """Why line 1 is not a valid pays header (None when it is)."""
    got = f"(got {str(first_line)[:60]!r})"
    if first_line is None:
        return f"file header is not {','.join(PAYS_COLUMNS)} {got}"
    names = header_names(first_line)
    missing = [c for c in PAYS_COLUMNS if c not in names]
    if missing:
        return f"file header is not {','.join(PAYS_COLUMNS)} {got}: missing column(s) {','.join(missing)}"
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"file header names column(s) {','.join(twice)} more than once {got}"
    if "" in names:
        return f"file header has a column without a name {got}"
    return None


def header_order(first_line: str | None) -> list[str] | None:
    """Column order named by a header line (contract columns and any others), None if it is
    not a valid pays header."""
    if first_line is None or header_problem(first_line) is not None:
        return None
    return header_names(first_line)


def missing_columns(first_line: str | None) -> list[str]:
    """The contract columns a header line does not name (all of them for no line)."""
    names = header_names(first_line) if first_line is not None else []
    return [c for c in PAYS_COLUMNS if c not in names]


def first_line(lines: pl.LazyFrame) -> str | None:
    """Line 1 of a file, if these lines include it."""
    first = lines.filter(pl.col("line_number") == 1).select("raw_line").collect()
    return first.item() if first.height else None


def parse_pays(
    lines: pl.LazyFrame, *, header: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> pl.LazyFrame:
    """Lines of a pays file → contract-checked rows (``reason`` null when valid).

    ``header`` is the file's line 1 (taken from ``lines`` when not given, i.e. when the lines
    are the whole file or its first chunk). Returns no row for a valid header line: it is
    structure, not data. ``limits`` are the run's plausible days (stages pass
    ``settings.limits(run date)``).
    """
    if header is None:
        header = first_line(lines)
    bad_header = header_problem(header)
    if bad_header is not None:
        # drift is reported for a header that names some contract column, not for a file
        # whose line 1 is no header at all
        header_like = len(missing_columns(header)) < len(PAYS_COLUMNS)
        return lines.select(
            "line_number",
            "raw_line",
            *[pl.lit(None, dtype=t).alias(c) for c, t in _TYPES.items()],
            pl.lit(None, dtype=pl.String).alias("_rescued"),
            pl.lit(bad_header).alias("reason"),
            _names(header_extras(header) if header_like else []).alias("new_fields"),
            _names(missing_columns(header) if header_like else []).alias("missing_fields"),
        )
    order = header_names(str(header))
    body = lines.filter(pl.col("line_number") > 1).collect()
    # One streaming pass, as for events (:func:`jobs.bronze.events.parse_events`): the regex
    # flags the canonical lines, the split (once) gives their fields; other lines' lenient
    # casts give nulls and those rows are dropped.
    part = pl.col(_PARTS).struct.field
    value = {name: part(f"field_{i}") for i, name in enumerate(order)}
    flagged = (
        body.lazy()
        .with_columns(
            pl.col("raw_line").str.contains(canonical_pay(order)).alias(_CANONICAL),
            pl.col("raw_line").str.split_exact(",", len(order) - 1).alias(_PARTS),
        )
        .select(
            "line_number",
            "raw_line",
            value["pay_date"].str.to_date("%Y-%m-%d", strict=False).alias("pay_date"),  # shape matched
            value["total"].cast(_TYPES["total"], strict=False).alias("total"),
            value["user_id"].cast(pl.Int64, strict=False).alias("user_id"),
            value["value_prop"].alias("value_prop"),
            _rescued({n: v.str.strip_chars(" ") for n, v in value.items()}, order),
            pl.lit(None, dtype=pl.String).alias("reason"),
            *_drift_columns(order),
            _CANONICAL,
        )
        .collect(engine="streaming")
    )
    canonical = flagged[_CANONICAL]
    fast = (flagged if canonical.all() else flagged.filter(canonical)).drop(_CANONICAL)
    real_day = in_window(fast["pay_date"], limits)
    if not real_day.all():  # e.g. 2020-11-31 or 2099-01-01: the rules give the reason
        unreal = fast.filter(~real_day)["line_number"].implode()
        canonical = canonical & ~body["line_number"].is_in(unreal)
        fast = fast.filter(real_day)
    if fast.height == body.height:
        return fast.lazy()
    checked = _rules(body.filter(~canonical).lazy(), order, limits=limits)
    if fast.is_empty():
        return checked
    return pl.concat([fast.lazy(), checked]).sort("line_number")


def header_extras(first_line: str | None) -> list[str]:
    """The columns of a header line other than the contract's."""
    if first_line is None:
        return []
    return [n for n in header_names(first_line) if n not in PAYS_COLUMNS]


def _names(names: list[str]) -> pl.Expr:
    """A list of field names on every line (null when empty)."""
    if not names:
        return pl.lit(None, dtype=pl.List(pl.String))
    return pl.lit(pl.Series([names], dtype=pl.List(pl.String)))


def _drift_columns(order: list[str]) -> list[pl.Expr]:
    extras = [n for n in order if n not in PAYS_COLUMNS]
    return [
        _names(extras).alias("new_fields"),
        pl.lit(None, dtype=pl.List(pl.String)).alias("missing_fields"),
    ]


def _rescued(field: dict[str, pl.Expr], order: list[str]) -> pl.Expr:
    """The other columns' values of a row as JSON ``{"column": "value"}`` (null: none)."""
    extras = [n for n in order if n not in PAYS_COLUMNS]
    if not extras:
        return pl.lit(None, dtype=pl.String).alias("_rescued")
    return pl.struct([field[n].alias(n) for n in extras]).struct.json_encode().alias("_rescued")


def csv_fields(raw: pl.Expr) -> pl.Expr:
    """The RFC 4180 fields of a well-formed line (see :data:`CSV_LINE_RE`), as a list: spaces
    around a field dropped, enclosing quotes removed, ``""`` inside them read as ``"``."""
    pieces = (pl.lit(",") + raw).str.extract_all(rf",({_FIELD})")
    return pieces.list.eval(_unquote(pl.element().str.strip_prefix(",").str.strip_chars(" ")))


def _unquote(field: pl.Expr) -> pl.Expr:
    quoted = field.str.starts_with('"')
    inner = field.str.slice(1, field.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
    return pl.when(quoted).then(inner).otherwise(field)


def _rules(lines: pl.LazyFrame, order: list[str], *, limits: Limits = DEFAULT_LIMITS) -> pl.LazyFrame:
    """The contract rules, line by line, for data lines (header excluded)."""
    raw = pl.col("raw_line")
    well_formed = raw.str.contains(CSV_LINE_RE)
    parts = csv_fields(raw)
    field = {name: parts.list.get(i, null_on_oob=True) for i, name in enumerate(order)}
    n_fields = parts.list.len()
    width = len(order)
    pay_date = real_date(field["pay_date"])
    total_ok = field["total"].str.contains(AMOUNT_RE)
    # Leading zeros dropped (one kept), then exact in decimal(38,2); past 36 digits: null.
    total = pl.concat_str(pl.lit("0"), field["total"].str.strip_chars_start("0")).cast(
        SUM_AMOUNT, strict=False
    )
    total_fits = total.is_not_null() & (total <= MAX_TOTAL)
    user_ok = field["user_id"].str.contains(UINT_RE)
    user = pl.when(user_ok).then(field["user_id"].cast(pl.Int64, strict=False))
    reason = first_failure(
        (raw.str.strip_chars() == "", "empty line"),
        (raw.str.contains(INVALID_UTF8, literal=True), "not valid UTF-8"),
        (~well_formed, "malformed CSV quoting (RFC 4180)"),
        (n_fields != width, pl.format(f"expected {width} comma-separated fields, got {{}}", n_fields)),
        (pay_date.is_null(), "pay_date is not a real calendar date (YYYY-MM-DD)"),
        *day_window(pay_date, "pay_date", limits),
        (~total_ok.fill_null(False), "total is not a decimal >= 0 with at most 2 decimals"),
        (~total_fits, f"total is above the contract maximum {MAX_TOTAL}"),
        (user.is_null() | (user <= 0), "user_id is not a positive integer"),
        (field["value_prop"].fill_null("").str.strip_chars() == "", "value_prop is empty"),
    )
    return lines.select(
        "line_number",
        "raw_line",
        pay_date.alias("pay_date"),
        pl.when(total_ok & total_fits).then(total).cast(_TYPES["total"]).alias("total"),
        user.alias("user_id"),
        field["value_prop"].alias("value_prop"),
        _rescued(field, order),
        reason,
        *_drift_columns(order),
    )


_TYPES: dict[str, pl.DataType] = {
    "pay_date": pl.Date(),
    "total": pl.Decimal(18, 2),
    "user_id": pl.Int64(),
    "value_prop": pl.String(),
}
