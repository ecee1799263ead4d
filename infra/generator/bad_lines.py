"""Deliberately bad lines: the kinds the raw contract must quarantine, and their injection.

A kind builds its variants from a template row (columns user_id, position, vp, cents) of the same
file; the j-th bad line of a call gets kind j % n_kinds, so a handful covers many kinds. Bad
lines use their own RNG (purpose "bad") and are *inserted* between the good lines, so the good
lines of a file are the same with or without bad lines. Only the cycling through the kinds
carries over from file to file within one call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import polars as pl

from infra.generator.model import PURPOSE_BAD, VALUE_PROPS, rng
from infra.generator.render import good_lines, pay_line, text, total_text, vp_name

_KindBuilder = Callable[[date], list[pl.Expr]]


def _event_json(
    day: pl.Expr | None, position: pl.Expr | None, vp: pl.Expr | None, user: pl.Expr | None
) -> pl.Expr:
    """Prints/taps JSON with canonical spacing; ``None`` leaves the key out."""
    parts: list[pl.Expr] = []
    if day is not None:
        parts.append(pl.concat_str([text('"day": '), day]))
    if position is not None or vp is not None:
        inner: list[pl.Expr] = []
        if position is not None:
            inner.append(pl.concat_str([text('"position": '), position]))
        if vp is not None:
            inner.append(pl.concat_str([text('"value_prop": '), vp]))
        parts.append(
            pl.concat_str([text('"event_data": {'), pl.concat_str(inner, separator=", "), text("}")])
        )
    if user is not None:
        parts.append(pl.concat_str([text('"user_id": '), user]))
    return pl.concat_str([text("{"), pl.concat_str(parts, separator=", "), text("}")])


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str([text('"'), expr, text('"')])


def _event_kinds() -> dict[str, _KindBuilder]:
    pos = pl.col("position").cast(pl.String)
    vp = _quoted(vp_name())
    user = pl.col("user_id").cast(pl.String)

    def iso(day: date) -> pl.Expr:
        return text(f'"{day.isoformat()}"')

    def good(day: date) -> pl.Expr:
        return _event_json(iso(day), pos, vp, user)

    def with_day(value: str) -> pl.Expr:
        return _event_json(text(f'"{value}"'), pos, vp, user)

    # Interleaved categories (syntax, date, user, position, ...) so few lines cover a lot.
    return {
        "invalid_json": lambda d: [
            good(d).str.slice(0, good(d).str.len_chars() - 1),
            good(d).str.slice(0, good(d).str.len_chars() // 2),
        ],
        "impossible_date": lambda d: [
            with_day("2020-02-30"),
            with_day("2021-02-29"),
            with_day("2020-11-31"),
        ],
        "string_user_id": lambda d: [
            _event_json(iso(d), pos, vp, _quoted(user)),
            _event_json(iso(d), pos, vp, _quoted(pl.concat_str([text("user_"), user]))),
        ],
        "negative_position": lambda d: [
            _event_json(
                iso(d), pl.concat_str([text("-"), (pl.col("position") + 1).cast(pl.String)]), vp, user
            ),
        ],
        "empty_line": lambda d: [text("")],
        "not_object": lambda d: [text("[1, 2]"), text('"not an object"'), text("null"), user],
        "missing_user_id": lambda d: [_event_json(iso(d), pos, vp, None)],
        "bad_date_format": lambda d: [
            with_day(d.strftime("%d/%m/%Y")),
            with_day(d.strftime("%Y/%m/%d")),
        ],
        "non_positive_user_id": lambda d: [
            _event_json(iso(d), pos, vp, text("0")),
            _event_json(iso(d), pos, vp, pl.concat_str([text("-"), user])),
        ],
        "empty_value_prop": lambda d: [_event_json(iso(d), pos, text('""'), user)],
        "non_integer_position": lambda d: [
            _event_json(iso(d), text('"x"'), vp, user),
            _event_json(iso(d), pl.concat_str([pos, text(".5")]), vp, user),
        ],
        "missing_event_data": lambda d: [_event_json(iso(d), None, None, user)],
        "float_user_id": lambda d: [
            _event_json(iso(d), pos, vp, pl.concat_str([user, text(".5")])),
        ],
        "missing_value_prop": lambda d: [_event_json(iso(d), pos, None, user)],
    }


def _pay_kinds() -> dict[str, _KindBuilder]:
    total = total_text(pl.col("cents"))
    user = pl.col("user_id").cast(pl.String)
    vp = vp_name()

    def iso(day: date) -> pl.Expr:
        return text(day.isoformat())

    return {
        "wrong_field_count": lambda d: [
            pl.concat_str([iso(d), total, user], separator=","),
            pl.concat_str([iso(d), total, user, vp, total], separator=","),
        ],
        "impossible_pay_date": lambda d: [
            pay_line(text("2020-02-30"), total, user, vp),
            pay_line(text("2021-02-29"), total, user, vp),
            pay_line(text("2020-11-31"), total, user, vp),
        ],
        "non_positive_user_id": lambda d: [
            pay_line(iso(d), total, text("0"), vp),
            pay_line(iso(d), total, pl.concat_str([text("-"), user]), vp),
        ],
        "non_numeric_total": lambda d: [
            pay_line(iso(d), text("n/a"), user, vp),
            pay_line(iso(d), pl.concat_str([text("$"), total]), user, vp),
        ],
        "empty_line": lambda d: [text("")],
        "negative_total": lambda d: [
            pay_line(
                iso(d),
                pl.concat_str([text("-"), total_text(pl.max_horizontal(pl.col("cents"), 1))]),
                user,
                vp,
            ),
        ],
        "empty_value_prop": lambda d: [pay_line(iso(d), total, user, text(""))],
        "three_decimal_total": lambda d: [
            pay_line(
                iso(d),
                pl.concat_str([total, (pl.col("cents") % 9 + 1).cast(pl.String)]),
                user,
                vp,
            ),
        ],
    }


_KINDS: dict[str, dict[str, _KindBuilder]] = {
    "prints": _event_kinds(),
    "taps": _event_kinds(),
    "pays": _pay_kinds(),
}


def _bad_lines(source: str, template: pl.DataFrame, day: date, first: int) -> pl.Series:
    """Bad lines for the template rows; the i-th row is the (first + i)-th bad line of the call."""
    kinds = list(_KINDS[source].values())
    cycle = np.arange(first, first + template.height, dtype=np.int64)
    kind_idx = cycle % len(kinds)
    rounds = cycle // len(kinds)
    frame = template.with_columns(kind=pl.Series(kind_idx), round=pl.Series(rounds))
    expr: pl.Expr = text("")
    for k in range(len(kinds) - 1, -1, -1):
        variants = kinds[k](day)
        kind_expr = variants[-1]
        for v in range(len(variants) - 2, -1, -1):
            kind_expr = pl.when(pl.col("round") % len(variants) == v).then(variants[v]).otherwise(kind_expr)
        expr = pl.when(pl.col("kind") == k).then(kind_expr).otherwise(expr)
    return frame.select(expr.alias("line")).to_series()


def _examples() -> dict[str, dict[str, list[str]]]:
    template = pl.DataFrame(
        {
            "user_id": [98702],
            "position": pl.Series([0], dtype=pl.Int8),
            "vp": pl.Series([0], dtype=pl.UInt8),
            "cents": pl.Series([704], dtype=pl.Int32),
        }
    )
    day = date(2020, 11, 1)
    return {
        source: {name: [template.select(e).item() for e in build(day)] for name, build in kinds.items()}
        for source, kinds in _KINDS.items()
    }


# Source -> bad-line kind (in cycling order) -> example lines, one per variant. Built from the
# same expressions the generator uses, so the examples cannot drift from the real bad lines.
BAD_LINE_KINDS: dict[str, dict[str, list[str]]] = _examples()


def _template(good: pl.DataFrame, gen: np.random.Generator, n: int, n_users: int) -> pl.DataFrame:
    """Rows the bad lines are derived from: real rows of the file, or made up if it is empty."""
    if good.height:
        rows = good[gen.integers(0, good.height, n)]
    else:
        rows = pl.DataFrame(
            {
                "user_id": gen.integers(1, n_users + 1, n),
                "position": np.zeros(n, dtype=np.int8),
                "vp": gen.integers(0, len(VALUE_PROPS), n).astype(np.uint8),
            }
        )
    cols = [
        pl.col("user_id").cast(pl.Int64),
        (pl.col("position") if "position" in rows.columns else pl.lit(0)).cast(pl.Int8).alias("position"),
        pl.col("vp").cast(pl.UInt8),
        (pl.col("cents") if "cents" in rows.columns else pl.lit(704)).cast(pl.Int32).alias("cents"),
    ]
    return rows.select(cols)


def file_lines(
    source: str,
    good: pl.DataFrame,
    day: date,
    n_bad: int,
    first_bad: int,
    seed: int,
    n_users: int,
) -> pl.Series:
    """All data lines of one file: the good lines with ``n_bad`` bad lines inserted."""
    lines = good_lines(source, good, day)
    if n_bad == 0:
        return lines
    gen = rng(day.toordinal(), source, PURPOSE_BAD, seed)
    n_total = good.height + n_bad
    bad_slots = np.sort(gen.choice(n_total, size=n_bad, replace=False))
    bad = _bad_lines(source, _template(good, gen, n_bad, n_users), day, first_bad)
    is_bad = np.zeros(n_total, dtype=bool)
    is_bad[bad_slots] = True
    order = np.empty(n_total, dtype=np.int64)
    order[~is_bad] = np.arange(good.height)
    order[is_bad] = good.height + np.arange(n_bad)
    return pl.concat([lines, bad]).gather(order)
