"""Point-in-time label features vs the plain DuckDB anchor (``labels_duckdb.py``), same silver,
same labels: wall time, peak RSS, and whether the two outputs are equal.

``python -m infra.bench.labels --lake DIR --rows N`` where DIR holds a built lake (``silver/``)
and its silver flattened by the anchors' ``flatten_silver.py`` into ``DIR/flat`` (done here if
missing). The labels: N rows of the prints' (user, value prop) pairs (plus 1% unknown users)
on random days from two weeks before the data to two weeks after it, with a row id and two
extra columns; seed fixed. Prints one markdown row per contender (dated, with the load).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from infra.bench.measure import child_env, run_command

ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors"


def make_labels(flat: Path, rows: int, out: Path, seed: int = 7) -> None:
    prints = pl.scan_parquet(flat / "prints" / "*.parquet")
    pairs = prints.select("user_id", "value_prop").unique().sort("user_id", "value_prop").collect()
    lo, hi = prints.select(pl.col("day").min().alias("lo"), pl.col("day").max().alias("hi")).collect().row(0)
    span = (hi - lo).days + 29
    picked = pairs.sample(rows, with_replacement=True, seed=seed)
    days = pl.Series(range(span)).sample(rows, with_replacement=True, seed=seed + 1)
    unknown = pl.Series(range(rows)).sample(rows, with_replacement=True, seed=seed + 2) % 100 == 0
    pl.DataFrame(
        {
            "label_row": pl.int_range(rows, eager=True),
            "user_id": picked["user_id"].zip_with(~unknown, pl.Series([-1] * rows)),
            "value_prop": picked["value_prop"],
            "day": pl.Series([lo + timedelta(days=d - 14) for d in days], dtype=pl.Date),
            "label": days % 2,
            "score": days.cast(pl.Float64) / 7,
        }
    ).write_parquet(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--weeks", type=int, default=3)
    ap.add_argument("--anchors", type=Path, default=ANCHORS)
    a = ap.parse_args(argv)
    flat, work = a.lake / "flat", a.lake / f"labels-{a.rows}"
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    if not (flat / "prints").is_dir():
        run_command(
            "flatten",
            [py, str(a.anchors / "flatten_silver.py"), str(a.lake / "silver"), str(flat)],
            env=child_env(),
            cwd=".",
        )
    labels = work / "labels.parquet"
    if not labels.exists():
        make_labels(flat, a.rows, labels)
    env = child_env(**{f"LAKE_{x.upper()}": str(a.lake / x) for x in ("raw", "bronze", "silver", "gold")})
    anchor_out, ours_out = work / "anchor.parquet", work / "ours.parquet"
    runs = [
        run_command(
            "anchor: labels_duckdb.py",
            [
                py,
                str(a.anchors / "labels_duckdb.py"),
                str(flat),
                str(labels),
                str(anchor_out),
                "--weeks",
                str(a.weeks),
            ],
            env=env,
            cwd=".",
        ),
        run_command(
            "python -m jobs features",
            [
                py,
                "-m",
                "jobs",
                "features",
                "--labels",
                str(labels),
                "--out",
                str(ours_out),
                "--lookback-mode",
                "calendar",
                "--lookback-weeks",
                str(a.weeks),
            ],
            env=env,
            cwd=".",
        ),
    ]
    for r in runs:
        if not r.ok:
            print(f"{r.name} failed: {r.stderr_tail}", file=sys.stderr)
            return 1
    cols = ["prior_views", "prior_clicks", "prior_payments", "prior_amount"]
    mine = pl.read_parquet(ours_out)
    theirs = pl.read_parquet(anchor_out).sort("label_row")
    equal = (
        mine.select("label_row", *cols)
        .with_columns(pl.col("prior_amount").cast(pl.Decimal(38, 2)))
        .equals(
            theirs.select("label_row", *cols)
            .with_columns(pl.col(c).cast(pl.Int64) for c in cols[:3])
            .with_columns(pl.col("prior_amount").cast(pl.Decimal(38, 2)))
        )
    )
    in_order = mine["label_row"].to_list() == list(range(a.rows))
    load = os.getloadavg()[0]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    print(f"| {when} UTC, load {load:.1f} | labels | wall s | peak RSS MB | equal to anchor |")
    print("| --- | --- | --- | --- | --- |")
    for r in runs:
        print(f"| {r.name} | {a.rows:,} | {r.wall_s} | {r.peak_rss_mb} | {'yes' if equal else 'NO'} |")
    print(f"ours in label order: {in_order}")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
