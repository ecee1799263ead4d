"""Rows of the model as raw text: prints/taps as JSON lines, pays as CSV lines.

Lines are built with vectorized polars string expressions (no per-row Python), in the canonical
spacing of the real files (``{"day": "2020-11-01", "event_data": {"position": 0, ...}``).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from infra.generator.model import VALUE_PROPS

PAYS_HEADER = "pay_date,total,user_id,value_prop"

_VP_SERIES = pl.Series("vp", VALUE_PROPS, dtype=pl.String)
# "<position>, \"value_prop\": \"<name>" for every (position, prop): one gather instead of two.
_POS_VP_TOKENS = pl.Series(
    "pos_vp",
    [f'{p}, "value_prop": "{v}' for p in range(4) for v in VALUE_PROPS],
    dtype=pl.String,
)


def text(value: str) -> pl.Expr:
    """A string literal expression."""
    return pl.lit(value, dtype=pl.String)


def _event_line(day_token: pl.Expr, pos_vp: pl.Expr, user_token: pl.Expr) -> pl.Expr:
    """Canonical prints/taps line; tokens are raw JSON text (already quoted where needed)."""
    return pl.concat_str(
        [
            text('{"day": '),
            day_token,
            text(', "event_data": {"position": '),
            pos_vp,
            text('"}, "user_id": '),
            user_token,
            text("}"),
        ]
    )


def good_event_lines(frame: pl.DataFrame, day: date) -> pl.Series:
    """One prints/taps JSON line per row (user_id, position, vp)."""
    pos_vp = pl.lit(_POS_VP_TOKENS).gather(
        pl.col("position").cast(pl.UInt32) * len(VALUE_PROPS) + pl.col("vp").cast(pl.UInt32)
    )
    expr = _event_line(text(f'"{day.isoformat()}"'), pos_vp, pl.col("user_id").cast(pl.String))
    return frame.select(expr.alias("line")).to_series()


def total_text(cents: pl.Expr) -> pl.Expr:
    """Cents as the CSV's two-decimal total (``704`` → ``7.04``)."""
    return pl.concat_str(
        [(cents // 100).cast(pl.String), text("."), (cents % 100).cast(pl.String).str.zfill(2)]
    )


def pay_line(day: pl.Expr, total: pl.Expr, user: pl.Expr, vp: pl.Expr) -> pl.Expr:
    """A pays CSV line from its four field texts."""
    return pl.concat_str([day, text(","), total, text(","), user, text(","), vp])


def vp_name() -> pl.Expr:
    """The value prop's name from the ``vp`` code column."""
    return pl.lit(_VP_SERIES).gather(pl.col("vp").cast(pl.UInt32))


def good_pay_lines(frame: pl.DataFrame, day: date) -> pl.Series:
    """One pays CSV line per row (user_id, cents, vp)."""
    expr = pay_line(
        text(day.isoformat()),
        total_text(pl.col("cents")),
        pl.col("user_id").cast(pl.String),
        vp_name(),
    )
    return frame.select(expr.alias("line")).to_series()


def good_lines(source: str, frame: pl.DataFrame, day: date) -> pl.Series:
    """The lines of one source's good rows of one day."""
    return good_pay_lines(frame, day) if source == "pays" else good_event_lines(frame, day)
