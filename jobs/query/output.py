"""Query results as CSV: columns CSV cannot hold (lists, arrays, structs, maps, bytes) become
JSON text, e.g. ``[1,2]`` or ``{"a":1}``, and bytes become hex (``\\x`` prefixed)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl


def csv_text(frame: pl.DataFrame) -> str:
    """``frame`` as CSV with a header; nested or binary columns serialised as JSON text."""
    try:
        return frame.write_csv()
    except pl.exceptions.PolarsError:  # a column CSV cannot hold: only those are rewritten
        pass
    return frame.with_columns(
        _as_json(frame[name]) for name in frame.columns if not _csv_ready(frame[name])
    ).write_csv()


def _csv_ready(column: pl.Series) -> bool:
    try:
        column.head(1).to_frame().write_csv()
    except pl.exceptions.PolarsError:
        return False
    return True


def _as_json(column: pl.Series) -> pl.Series:
    if column.dtype == pl.Binary:
        return pl.Series(
            column.name, [None if v is None else _plain(v) for v in column.to_list()], dtype=pl.String
        )
    values = [
        None if value is None else json.dumps(value, default=_plain, separators=(",", ":"))
        for value in column.to_list()
    ]
    return pl.Series(column.name, values, dtype=pl.String)


def _plain(value: Any) -> Any:
    """A JSON value for what ``json`` cannot write: bytes as ``\\x``-prefixed hex, else str."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)
