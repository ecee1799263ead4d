"""Deterministic synthetic version of the "value prop" data set (prints, taps, pays).

The real files are not available, so the pipeline is developed and load-tested against this
generator. At ``scale=1`` it mirrors the published shape of the real data: 30 days from
2020-11-01, ~508k prints, ~51k taps, ~756k pays, user ids 1..100000, 7 value props, positions 0..3.

Model
-----
* Users: every user gets a lognormal activity weight (heavy tail: the top 1% of users produce
  roughly 15% of the events). The weights depend only on ``(seed, scale)``, never on the day, so
  the same users are the heavy ones on every day.
* Prints are carousel impressions. A *session* is a (user, day) visit that shows ``k`` distinct
  value props (k in 1..4) at positions ``0..k-1``; the props are drawn by popularity without
  replacement (Gumbel top-k), so popular props tend to sit in front. A user may have several
  sessions on a day, so the same value prop can be printed twice on one day for one user.
* Taps are sampled (~10%) from the same day's prints, more likely at the front of the carousel and
  for some props, so every tap matches a print (user, day, value prop, position).
* Pays are independent of prints (pays without prints exist) but use the same user weights.
  Totals are cents drawn from a gamma distribution (mean about 50), clipped to 0.00..199.95.
* Volumes vary from day to day (about +-10%); ``scale`` grows users and volumes linearly.

Determinism
-----------
Every (day, source) has its own RNG seeded from ``(day ordinal, source, purpose, seed)``, so a day's
file does not depend on which other days are generated in the same call: ``start=2020-11-05,
days=1`` writes byte-for-byte the file a 30-day run writes for Nov 5 ("trickle" seeding).
Deliberately bad lines use a separate RNG and are *inserted* between the good lines, so the good
lines of a file are the same with or without bad lines. Only the cycling through bad-line kinds
carries over from file to file within one call.

Memory stays bounded by one day's data: days are generated, written and dropped one at a time;
the "single" layout appends day by day to one file per source.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import polars as pl

__all__ = [
    "BAD_LINE_KINDS",
    "PAYS_HEADER",
    "SOURCES",
    "VALUE_PROPS",
    "GenerateResult",
    "GeneratedFile",
    "generate",
    "users_for_scale",
]

SOURCES: tuple[str, ...] = ("prints", "taps", "pays")
VALUE_PROPS: tuple[str, ...] = (
    "cellphone_recharge",
    "credits_consumer",
    "link_cobro",
    "point",
    "prepaid",
    "send_money",
    "transport",
)
PAYS_HEADER = "pay_date,total,user_id,value_prop"

# Published figures of the real data set (scale 1).
_REAL_DAYS = 30
_REAL_USERS = 100_000
_PRINTS_PER_DAY = 508_617 / _REAL_DAYS
_PAYS_PER_DAY = 756_483 / _REAL_DAYS
_TAP_RATE = 50_859 / 508_617

# Shape parameters of the model (see module docstring).
_USER_SIGMA = 1.3  # lognormal sigma of user activity weights
_DAY_SIGMA = 0.10  # relative day-to-day volume variation
_SESSION_SIZE_P = np.array([0.30, 0.30, 0.25, 0.15])  # P(k) for k = 1..4 props per session
_MEAN_SESSION_SIZE = float(np.dot(np.arange(1, 5), _SESSION_SIZE_P))
_PRINT_POPULARITY = np.array([0.22, 0.07, 0.16, 0.18, 0.10, 0.19, 0.08])
_PAY_POPULARITY = np.array([0.20, 0.05, 0.18, 0.21, 0.09, 0.20, 0.07])
_TAP_POSITION_REL = np.array([1.6, 1.1, 0.8, 0.6])
_TAP_PROP_REL = np.array([1.2, 0.7, 1.0, 1.1, 0.8, 1.0, 0.9])
_TOTAL_GAMMA_SHAPE = 1.6
_TOTAL_GAMMA_SCALE = 31.55  # mean about 50.25 after clipping
_MAX_CENTS = 19_995

# Seed-sequence tags: entropy is (day ordinal, source, purpose, seed). Fixed-width tags first and
# non-zero purposes, because SeedSequence pads short entropy with zeros ([a, b] == [a, b, 0]).
_SOURCE_TAG = {"users": 9, "prints": 1, "taps": 2, "pays": 3}
_PURPOSE_DATA = 1
_PURPOSE_BAD = 2

_VP_SERIES = pl.Series("vp", VALUE_PROPS, dtype=pl.String)
# "<position>, \"value_prop\": \"<name>" for every (position, prop): one gather instead of two.
_POS_VP_TOKENS = pl.Series(
    "pos_vp",
    [f'{p}, "value_prop": "{v}' for p in range(4) for v in VALUE_PROPS],
    dtype=pl.String,
)


@dataclass(frozen=True)
class GeneratedFile:
    """One written (or, with ``skip_existing``, kept) file and its exact line counts.

    The counts let downstream tests check ``lines == bronze rows + quarantined rows``.
    """

    source: str  # "prints" | "taps" | "pays"
    path: Path  # absolute path of the written file
    day: date | None  # day of a daily file, None for the single-file layout
    lines: int  # data lines written (excluding the CSV header), bad lines included
    bad_lines: int  # how many of those are deliberately bad


@dataclass(frozen=True)
class GenerateResult:
    """All files of one ``generate`` call, with per-source totals for quick assertions."""

    files: list[GeneratedFile]

    def total(self, source: str) -> int:
        """Data lines of ``source`` over all files (bad lines included)."""
        return sum(f.lines for f in self._of(source))

    def bad(self, source: str) -> int:
        """Deliberately bad lines of ``source`` over all files."""
        return sum(f.bad_lines for f in self._of(source))

    def _of(self, source: str) -> list[GeneratedFile]:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
        return [f for f in self.files if f.source == source]


def users_for_scale(scale: float) -> int:
    """Number of users (ids 1..n) at ``scale``: linear in scale, at least one."""
    return max(1, round(_REAL_USERS * scale))


# --------------------------------------------------------------------------------------------
# Random data per day
# --------------------------------------------------------------------------------------------


def _rng(day_ordinal: int, tag: str, purpose: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([day_ordinal, _SOURCE_TAG[tag], purpose, seed])


def _user_cdf(seed: int, n_users: int) -> np.ndarray:
    """Cumulative activity distribution of users; depends only on (seed, scale), not the day."""
    weights = _rng(0, "users", _PURPOSE_DATA, seed).lognormal(0.0, _USER_SIGMA, n_users)
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _sample_users(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    draws = rng.random(n)
    # Searching sorted draws walks the (up to 10M) cdf sequentially: ~10x faster than random
    # probes at scale 100, and the result is the same as searching the draws in their order.
    order = np.argsort(draws, kind="stable")
    idx = np.empty(n, dtype=np.int64)
    idx[order] = np.searchsorted(cdf, draws[order], side="right")
    return np.minimum(idx, len(cdf) - 1) + 1


def _day_factor(rng: np.random.Generator) -> float:
    return float(np.clip(1.0 + _DAY_SIGMA * rng.standard_normal(), 0.7, 1.3))


def _day_prints(seed: int, day: date, scale: float, cdf: np.ndarray) -> pl.DataFrame:
    """Carousel sessions of one day, one row per print (user_id, position, vp code)."""
    rng = _rng(day.toordinal(), "prints", _PURPOSE_DATA, seed)
    lam = scale * _PRINTS_PER_DAY / _MEAN_SESSION_SIZE * _day_factor(rng)
    n_sessions = int(rng.poisson(lam))
    users = _sample_users(rng, cdf, n_sessions)
    sizes = rng.choice(np.arange(1, 5), size=n_sessions, p=_SESSION_SIZE_P)
    # Gumbel top-k: distinct props per session, ordered by popularity-weighted random keys.
    keys = np.log(_PRINT_POPULARITY) + rng.gumbel(size=(n_sessions, len(VALUE_PROPS)))
    order = np.argsort(-keys, axis=1)[:, :4]
    positions = np.broadcast_to(np.arange(4, dtype=np.int8), order.shape)
    shown = positions < sizes[:, None]
    return pl.DataFrame(
        {
            "user_id": np.repeat(users, sizes),
            "position": positions[shown],
            "vp": order[shown].astype(np.uint8),
        }
    )


def _day_taps(seed: int, day: date, prints: pl.DataFrame) -> pl.DataFrame:
    """~10% of the day's prints, favouring front positions; so each tap matches a print."""
    rng = _rng(day.toordinal(), "taps", _PURPOSE_DATA, seed)
    if prints.height == 0:
        return prints.clear()
    rel = _TAP_POSITION_REL[prints["position"].to_numpy()] * _TAP_PROP_REL[prints["vp"].to_numpy()]
    p = np.minimum(_TAP_RATE * rel / rel.mean(), 1.0)
    return prints.filter(pl.Series(rng.random(prints.height) < p))


def _day_pays(seed: int, day: date, scale: float, cdf: np.ndarray) -> pl.DataFrame:
    """Payments of one day, independent of prints but with the same user skew."""
    rng = _rng(day.toordinal(), "pays", _PURPOSE_DATA, seed)
    n = int(rng.poisson(scale * _PAYS_PER_DAY * _day_factor(rng)))
    users = _sample_users(rng, cdf, n)
    vps = rng.choice(len(VALUE_PROPS), size=n, p=_PAY_POPULARITY).astype(np.uint8)
    amounts = rng.gamma(_TOTAL_GAMMA_SHAPE, _TOTAL_GAMMA_SCALE, n)
    cents = np.clip(np.rint(amounts * 100), 0, _MAX_CENTS).astype(np.int32)
    return pl.DataFrame({"user_id": users, "cents": cents, "vp": vps})


# --------------------------------------------------------------------------------------------
# Line formatting (vectorized polars string expressions)
# --------------------------------------------------------------------------------------------


def _s(value: str) -> pl.Expr:
    return pl.lit(value, dtype=pl.String)


def _event_line(day_token: pl.Expr, pos_vp: pl.Expr, user_token: pl.Expr) -> pl.Expr:
    """Canonical prints/taps line; tokens are raw JSON text (already quoted where needed)."""
    return pl.concat_str(
        [
            _s('{"day": '),
            day_token,
            _s(', "event_data": {"position": '),
            pos_vp,
            _s('"}, "user_id": '),
            user_token,
            _s("}"),
        ]
    )


def _good_event_lines(frame: pl.DataFrame, day: date) -> pl.Series:
    pos_vp = pl.lit(_POS_VP_TOKENS).gather(
        pl.col("position").cast(pl.UInt32) * len(VALUE_PROPS) + pl.col("vp").cast(pl.UInt32)
    )
    expr = _event_line(_s(f'"{day.isoformat()}"'), pos_vp, pl.col("user_id").cast(pl.String))
    return frame.select(expr.alias("line")).to_series()


def _total_text(cents: pl.Expr) -> pl.Expr:
    return pl.concat_str(
        [(cents // 100).cast(pl.String), _s("."), (cents % 100).cast(pl.String).str.zfill(2)]
    )


def _pay_line(day: pl.Expr, total: pl.Expr, user: pl.Expr, vp: pl.Expr) -> pl.Expr:
    return pl.concat_str([day, _s(","), total, _s(","), user, _s(","), vp])


def _vp_name() -> pl.Expr:
    return pl.lit(_VP_SERIES).gather(pl.col("vp").cast(pl.UInt32))


def _good_pay_lines(frame: pl.DataFrame, day: date) -> pl.Series:
    expr = _pay_line(
        _s(day.isoformat()),
        _total_text(pl.col("cents")),
        pl.col("user_id").cast(pl.String),
        _vp_name(),
    )
    return frame.select(expr.alias("line")).to_series()


# --------------------------------------------------------------------------------------------
# Deliberately bad lines
# --------------------------------------------------------------------------------------------

# A kind builds its variants from a template row (columns user_id, position, vp, cents) of the
# same file; the j-th bad line of a call gets kind j % n_kinds, so a handful covers many kinds.
_KindBuilder = Callable[[date], list[pl.Expr]]


def _event_json(
    day: pl.Expr | None, position: pl.Expr | None, vp: pl.Expr | None, user: pl.Expr | None
) -> pl.Expr:
    """Prints/taps JSON with canonical spacing; ``None`` leaves the key out."""
    parts: list[pl.Expr] = []
    if day is not None:
        parts.append(pl.concat_str([_s('"day": '), day]))
    if position is not None or vp is not None:
        inner: list[pl.Expr] = []
        if position is not None:
            inner.append(pl.concat_str([_s('"position": '), position]))
        if vp is not None:
            inner.append(pl.concat_str([_s('"value_prop": '), vp]))
        parts.append(
            pl.concat_str([_s('"event_data": {'), pl.concat_str(inner, separator=", "), _s("}")])
        )
    if user is not None:
        parts.append(pl.concat_str([_s('"user_id": '), user]))
    return pl.concat_str([_s("{"), pl.concat_str(parts, separator=", "), _s("}")])


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.concat_str([_s('"'), expr, _s('"')])


def _event_kinds() -> dict[str, _KindBuilder]:
    pos = pl.col("position").cast(pl.String)
    vp = _quoted(_vp_name())
    user = pl.col("user_id").cast(pl.String)

    def iso(day: date) -> pl.Expr:
        return _s(f'"{day.isoformat()}"')

    def good(day: date) -> pl.Expr:
        return _event_json(iso(day), pos, vp, user)

    def with_day(text: str) -> pl.Expr:
        return _event_json(_s(f'"{text}"'), pos, vp, user)

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
            _event_json(iso(d), pos, vp, _quoted(pl.concat_str([_s("user_"), user]))),
        ],
        "negative_position": lambda d: [
            _event_json(
                iso(d), pl.concat_str([_s("-"), (pl.col("position") + 1).cast(pl.String)]), vp, user
            ),
        ],
        "empty_line": lambda d: [_s("")],
        "not_object": lambda d: [_s("[1, 2]"), _s('"not an object"'), _s("null"), user],
        "missing_user_id": lambda d: [_event_json(iso(d), pos, vp, None)],
        "bad_date_format": lambda d: [
            with_day(d.strftime("%d/%m/%Y")),
            with_day(d.strftime("%Y/%m/%d")),
        ],
        "non_positive_user_id": lambda d: [
            _event_json(iso(d), pos, vp, _s("0")),
            _event_json(iso(d), pos, vp, pl.concat_str([_s("-"), user])),
        ],
        "empty_value_prop": lambda d: [_event_json(iso(d), pos, _s('""'), user)],
        "non_integer_position": lambda d: [
            _event_json(iso(d), _s('"x"'), vp, user),
            _event_json(iso(d), pl.concat_str([pos, _s(".5")]), vp, user),
        ],
        "missing_event_data": lambda d: [_event_json(iso(d), None, None, user)],
        "float_user_id": lambda d: [
            _event_json(iso(d), pos, vp, pl.concat_str([user, _s(".5")])),
        ],
        "missing_value_prop": lambda d: [_event_json(iso(d), pos, None, user)],
    }


def _pay_kinds() -> dict[str, _KindBuilder]:
    total = _total_text(pl.col("cents"))
    user = pl.col("user_id").cast(pl.String)
    vp = _vp_name()

    def iso(day: date) -> pl.Expr:
        return _s(day.isoformat())

    return {
        "wrong_field_count": lambda d: [
            pl.concat_str([iso(d), total, user], separator=","),
            pl.concat_str([iso(d), total, user, vp, total], separator=","),
        ],
        "impossible_pay_date": lambda d: [
            _pay_line(_s("2020-02-30"), total, user, vp),
            _pay_line(_s("2021-02-29"), total, user, vp),
            _pay_line(_s("2020-11-31"), total, user, vp),
        ],
        "non_positive_user_id": lambda d: [
            _pay_line(iso(d), total, _s("0"), vp),
            _pay_line(iso(d), total, pl.concat_str([_s("-"), user]), vp),
        ],
        "non_numeric_total": lambda d: [
            _pay_line(iso(d), _s("n/a"), user, vp),
            _pay_line(iso(d), pl.concat_str([_s("$"), total]), user, vp),
        ],
        "empty_line": lambda d: [_s("")],
        "negative_total": lambda d: [
            _pay_line(
                iso(d),
                pl.concat_str([_s("-"), _total_text(pl.max_horizontal(pl.col("cents"), 1))]),
                user,
                vp,
            ),
        ],
        "empty_value_prop": lambda d: [_pay_line(iso(d), total, user, _s(""))],
        "three_decimal_total": lambda d: [
            _pay_line(
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
    expr: pl.Expr = _s("")
    for k in range(len(kinds) - 1, -1, -1):
        variants = kinds[k](day)
        kind_expr = variants[-1]
        for v in range(len(variants) - 2, -1, -1):
            kind_expr = (
                pl.when(pl.col("round") % len(variants) == v).then(variants[v]).otherwise(kind_expr)
            )
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
        source: {
            name: [template.select(e).item() for e in build(day)] for name, build in kinds.items()
        }
        for source, kinds in _KINDS.items()
    }


# Source -> bad-line kind (in cycling order) -> example lines, one per variant. Built from the
# same expressions the generator uses, so the examples cannot drift from the real bad lines.
BAD_LINE_KINDS: dict[str, dict[str, list[str]]] = _examples()


def _template(good: pl.DataFrame, rng: np.random.Generator, n: int, n_users: int) -> pl.DataFrame:
    """Rows the bad lines are derived from: real rows of the file, or made up if it is empty."""
    if good.height:
        rows = good[rng.integers(0, good.height, n)]
    else:
        rows = pl.DataFrame(
            {
                "user_id": rng.integers(1, n_users + 1, n),
                "position": np.zeros(n, dtype=np.int8),
                "vp": rng.integers(0, len(VALUE_PROPS), n).astype(np.uint8),
            }
        )
    cols = [
        pl.col("user_id").cast(pl.Int64),
        (pl.col("position") if "position" in rows.columns else pl.lit(0))
        .cast(pl.Int8)
        .alias("position"),
        pl.col("vp").cast(pl.UInt8),
        (pl.col("cents") if "cents" in rows.columns else pl.lit(704)).cast(pl.Int32).alias("cents"),
    ]
    return rows.select(cols)


def _file_lines(
    source: str,
    good: pl.DataFrame,
    day: date,
    n_bad: int,
    first_bad: int,
    seed: int,
    n_users: int,
) -> pl.Series:
    """All data lines of one file: the good lines with ``n_bad`` bad lines inserted."""
    lines = _good_pay_lines(good, day) if source == "pays" else _good_event_lines(good, day)
    if n_bad == 0:
        return lines
    rng = _rng(day.toordinal(), source, _PURPOSE_BAD, seed)
    n_total = good.height + n_bad
    bad_slots = np.sort(rng.choice(n_total, size=n_bad, replace=False))
    bad = _bad_lines(source, _template(good, rng, n_bad, n_users), day, first_bad)
    is_bad = np.zeros(n_total, dtype=bool)
    is_bad[bad_slots] = True
    order = np.empty(n_total, dtype=np.int64)
    order[~is_bad] = np.arange(good.height)
    order[is_bad] = good.height + np.arange(n_bad)
    return pl.concat([lines, bad]).gather(order)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_EXT = {"prints": "json", "taps": "json", "pays": "csv"}


def _write_lines(fh: BinaryIO, lines: pl.Series) -> None:
    # A one-column CSV without quoting is exactly "line\n" per line, written by polars in one go.
    if len(lines):
        lines.to_frame("line").write_csv(fh, include_header=False, quote_style="never")


def _header(source: str) -> bytes:
    return (PAYS_HEADER + "\n").encode() if source == "pays" else b""


def _daily_path(out_dir: Path, source: str, day: date) -> Path:
    return out_dir / source / f"day={day.isoformat()}" / f"part-0.{_EXT[source]}"


def _single_path(out_dir: Path, source: str) -> Path:
    return out_dir / source / f"{source}.{_EXT[source]}"


def _tmp(path: Path) -> Path:
    # Hidden name: raw-file listings skip dot-files, so a half-written file is never ingested.
    return path.with_name(f".{path.name}.tmp")


def _spread(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def _fraction_count(fraction: float, good: int) -> int:
    # ``fraction`` of the file's lines are bad: bad / (good + bad) ~= fraction.
    return round(fraction * good / (1.0 - fraction)) if fraction else 0


def _days(start: date, days: int) -> Iterator[date]:
    return (start + timedelta(days=i) for i in range(days))


def generate(
    *,
    out_dir: str | Path,
    seed: int = 42,
    scale: float = 1.0,
    start: date = date(2020, 11, 1),
    days: int = 30,
    layout: Literal["daily", "single"] = "daily",
    bad_fraction: float = 0.0,
    bad_lines: int = 0,
    skip_existing: bool = False,
) -> GenerateResult:
    """Write the synthetic prints, taps and pays under ``out_dir`` and return exact line counts.

    ``bad_lines`` (per source, spread evenly over the files, earlier files first) and
    ``bad_fraction`` (share of each file's lines) insert deliberately broken lines, cycling through
    ``BAD_LINE_KINDS``. With ``skip_existing`` a file that already exists is left untouched; its
    counts are those this call would have written (recomputed in memory, cheap), which is right
    when the file came from a run with the same arguments. Files are written to a hidden
    ``.<name>.tmp`` and renamed, so a half-written file is neither ingested nor skipped later.
    """
    if isinstance(start, datetime):
        start = start.date()
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days!r}")
    if layout not in ("daily", "single"):
        raise ValueError(f"layout must be 'daily' or 'single', got {layout!r}")
    if not 0.0 <= bad_fraction < 1.0:
        raise ValueError(f"bad_fraction must be in [0, 1), got {bad_fraction!r}")
    if bad_lines < 0:
        raise ValueError(f"bad_lines must be >= 0, got {bad_lines!r}")

    out = Path(out_dir).resolve()
    n_users = users_for_scale(scale)
    cdf = _user_cdf(seed, n_users)
    per_file_bad = _spread(bad_lines, days)
    bad_so_far = dict.fromkeys(SOURCES, 0)
    files: list[GeneratedFile] = []
    single_counts = {s: [0, 0] for s in SOURCES}

    with ExitStack() as stack:
        single_fh: dict[str, BinaryIO] = {}
        if layout == "single":
            for source in SOURCES:
                path = _single_path(out, source)
                if skip_existing and path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = stack.enter_context(open(_tmp(path), "wb"))
                fh.write(_header(source))
                single_fh[source] = fh

        for i, day in enumerate(_days(start, days)):
            prints = _day_prints(seed, day, scale, cdf)
            frames = {
                "prints": prints,
                "taps": _day_taps(seed, day, prints),
                "pays": _day_pays(seed, day, scale, cdf),
            }
            for source, good in frames.items():
                n_bad = per_file_bad[i] + _fraction_count(bad_fraction, good.height)
                first_bad = bad_so_far[source]
                bad_so_far[source] += n_bad
                n_lines = good.height + n_bad
                if layout == "single":
                    single_counts[source][0] += n_lines
                    single_counts[source][1] += n_bad
                    if source in single_fh:
                        _write_lines(
                            single_fh[source],
                            _file_lines(source, good, day, n_bad, first_bad, seed, n_users),
                        )
                    continue
                path = _daily_path(out, source, day)
                if not (skip_existing and path.exists()):
                    lines = _file_lines(source, good, day, n_bad, first_bad, seed, n_users)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(_tmp(path), "wb") as fh:
                        fh.write(_header(source))
                        _write_lines(fh, lines)
                    os.replace(_tmp(path), path)
                files.append(GeneratedFile(source, path, day, n_lines, n_bad))

    if layout == "single":
        for source in SOURCES:
            path = _single_path(out, source)
            if source in single_fh:
                os.replace(_tmp(path), path)
            lines_total, bad_total = single_counts[source]
            files.append(GeneratedFile(source, path, None, lines_total, bad_total))
    return GenerateResult(files)
