"""A deliberately simple reference for gold: brute force, one print at a time, plain Python.

It shares no code with jobs.gold; it restates the contract from the README so the tests
compare two independent readings of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import polars as pl


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def reference_gold(
    prints: pl.DataFrame, taps: pl.DataFrame, pays: pl.DataFrame, *, mode: str, n_weeks: int | Sequence[int]
) -> pl.DataFrame:
    """prints/taps: day,user_id,value_prop(,position); pays: day,user_id,value_prop,total.

    ``n_weeks``: one window N, or several (3, 1, 4): the first gives ``prior_*``, every other
    window N ``prior_*_<N>w`` (restated here, not imported)."""
    windows = [n_weeks] if isinstance(n_weeks, int) else list(n_weeks)
    suffixes = ["", *(f"_{n}w" for n in windows[1:])]
    by_key: dict[str, dict[tuple[int, str], list]] = {
        "prints": defaultdict(list),
        "taps": defaultdict(list),
        "pays": defaultdict(list),
    }
    for r in prints.iter_rows(named=True):
        by_key["prints"][(r["user_id"], r["value_prop"])].append(r["day"])
    for r in taps.iter_rows(named=True):
        by_key["taps"][(r["user_id"], r["value_prop"])].append(r["day"])
    for r in pays.iter_rows(named=True):
        by_key["pays"][(r["user_id"], r["value_prop"])].append((r["day"], Decimal(str(r["total"]))))
    rows = []
    for r in prints.iter_rows(named=True):
        key, d = (r["user_id"], r["value_prop"]), r["day"]
        week = _monday(d)
        row = {
            "week_start": week,
            "day": d,
            "user_id": r["user_id"],
            "value_prop": r["value_prop"],
            "position": r["position"],
            "clicked": d in by_key["taps"][key],
        }
        for n, suffix in zip(windows, suffixes, strict=True):
            if mode == "calendar":
                lo, hi = week - timedelta(weeks=n), week
            else:
                lo, hi = d - timedelta(days=7 * n), d
            pays_in = [t for (pd, t) in by_key["pays"][key] if lo <= pd < hi]
            row |= {
                f"prior_views{suffix}": sum(lo <= x < hi for x in by_key["prints"][key]),
                f"prior_clicks{suffix}": sum(lo <= x < hi for x in by_key["taps"][key]),
                f"prior_payments{suffix}": len(pays_in),
                f"prior_amount{suffix}": sum(pays_in, Decimal("0.00")),
            }
        rows.append(row)
    schema = {
        "week_start": pl.Date,
        "day": pl.Date,
        "user_id": pl.Int64,
        "value_prop": pl.String,
        "position": pl.Int64,
        "clicked": pl.Boolean,
    }
    for suffix in suffixes:
        schema |= {
            f"prior_views{suffix}": pl.Int64,
            f"prior_clicks{suffix}": pl.Int64,
            f"prior_payments{suffix}": pl.Int64,
            f"prior_amount{suffix}": pl.Decimal(38, 2),
        }
    return pl.DataFrame(rows, schema=schema, orient="row")


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Order-independent form for row-for-row comparison (with the other windows' columns,
    ``prior_*_<N>w``, when the frame has them)."""
    cols = [
        "week_start",
        "day",
        "user_id",
        "value_prop",
        "position",
        "clicked",
        "prior_views",
        "prior_clicks",
        "prior_payments",
        "prior_amount",
    ]
    cols += sorted(
        c for c in frame.columns if c.startswith("prior_") and c.endswith("w") and c[-2:-1].isdigit()
    )
    return frame.select(cols).sort(cols)


def reference_label_features(
    labels: pl.DataFrame,
    prints: pl.DataFrame,
    taps: pl.DataFrame,
    pays: pl.DataFrame,
    *,
    mode: str,
    windows: list[int],
) -> pl.DataFrame:
    """Each label row (user_id, value_prop, day, any other columns) with the priors a print of
    its user and value prop on its day would get (the contract above), per window: the first
    window's columns unsuffixed, the others ``_<N>w``; rows in the labels' order."""
    events: dict[str, dict[tuple[int, str], list]] = {
        s: defaultdict(list) for s in ("prints", "taps", "pays")
    }
    for name, frame in (("prints", prints), ("taps", taps)):
        for r in frame.iter_rows(named=True):
            events[name][(r["user_id"], r["value_prop"])].append(r["day"])
    for r in pays.iter_rows(named=True):
        events["pays"][(r["user_id"], r["value_prop"])].append((r["day"], Decimal(str(r["total"]))))
    rows = []
    for r in labels.iter_rows(named=True):
        key, d = (r["user_id"], r["value_prop"]), r["day"]
        out = dict(r)
        for i, n in enumerate(windows):
            suffix = "" if i == 0 else f"_{n}w"
            hi = _monday(d) if mode == "calendar" else d
            lo = hi - timedelta(weeks=n)
            pays_in = [t for (pd, t) in events["pays"][key] if lo <= pd < hi]
            out[f"prior_views{suffix}"] = sum(lo <= x < hi for x in events["prints"][key])
            out[f"prior_clicks{suffix}"] = sum(lo <= x < hi for x in events["taps"][key])
            out[f"prior_payments{suffix}"] = len(pays_in)
            out[f"prior_amount{suffix}"] = sum(pays_in, Decimal("0.00"))
        rows.append(out)
    schema = dict(labels.schema)
    for i, n in enumerate(windows):
        suffix = "" if i == 0 else f"_{n}w"
        schema |= {
            f"prior_views{suffix}": pl.Int64,
            f"prior_clicks{suffix}": pl.Int64,
            f"prior_payments{suffix}": pl.Int64,
            f"prior_amount{suffix}": pl.Decimal(38, 2),
        }
    return pl.DataFrame(rows, schema=schema, orient="row")
