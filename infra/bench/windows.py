"""``python -m infra.bench.windows --silver LAKE_SILVER``: what extra lookback windows cost.

Times the gold plan (:func:`jobs.gold.features.build_features`, as the local engine runs it:
every week, audit columns fused, streaming engine) on the same silver tables with one window
and with several (``3`` vs ``3,1,4`` by default), in both lookback modes, alternating the two
so drifting machine load hits both alike. Reports the median wall and CPU seconds of this
process (CPU is the steadier figure on a shared machine) and their ratio; the issue's target
is several windows ≤ 1.2× one window. Reads the silver tables only (any local lake).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from datetime import date

import polars as pl

from jobs.gold.features import build_features
from jobs.options import lookback_weeks
from jobs.weeks import monday

SOURCES = ("prints", "taps", "pays")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(silver: str) -> dict[str, pl.DataFrame]:
    """The silver tables in memory (so the timings are the plan's, not the disk's)."""
    return {s: pl.read_delta(os.path.join(silver, s)) for s in SOURCES}


def once(frames: dict[str, pl.DataFrame], mode: str, windows: tuple[int, ...]) -> tuple[float, float, int]:
    weeks = sorted({monday(d) for d in frames["prints"]["day"].unique().to_list()})
    first_day: date = min(f["day"].min() for f in frames.values() if f.height)  # type: ignore[assignment]
    wall, cpu = time.perf_counter(), _cpu()
    gold = build_features(
        prints=frames["prints"].lazy(),
        taps=frames["taps"].lazy(),
        pays=frames["pays"].lazy(),
        weeks=weeks,
        mode=mode,  # type: ignore[arg-type]
        windows=windows,
        audit=True,
        first_day=first_day,
    ).collect(engine="streaming")
    return time.perf_counter() - wall, _cpu() - cpu, gold.height


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.windows", description=__doc__)
    parser.add_argument("--silver", required=True, help="a local LAKE_SILVER (prints, taps, pays)")
    parser.add_argument("--one", default="3", help="the single window (default 3)")
    parser.add_argument("--several", default="3,1,4", help="the windows to compare (default 3,1,4)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="calendar,rolling")
    args = parser.parse_args()
    frames = load(args.silver)
    rows = frames["prints"].height
    print(
        f"# windows cost, silver {args.silver}: {rows:,} prints, {frames['pays'].height:,} pays; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores, polars {pl.__version__}"
    )
    one, several = lookback_weeks(args.one), lookback_weeks(args.several)
    for mode in args.modes.split(","):
        times: dict[tuple[int, ...], list[tuple[float, float]]] = {one: [], several: []}
        once(frames, mode, one)  # warm-up
        for _ in range(args.repeat):
            for windows in (one, several):
                wall, cpu, height = once(frames, mode, windows)
                if height != rows:
                    raise SystemExit(f"{height} gold rows for {rows} prints")
                times[windows].append((wall, cpu))
        med = {
            w: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
            for w, ts in times.items()
        }
        (w1, c1), (w3, c3) = med[one], med[several]
        print(
            f"{mode:8s} windows {args.one:>6s}: wall {w1:6.2f} s  cpu {c1:6.2f} s | "
            f"windows {args.several}: wall {w3:6.2f} s  cpu {c3:6.2f} s | "
            f"ratio wall {w3 / w1:.2f}x  cpu {c3 / c1:.2f}x  (median of {args.repeat})"
        )
    print(f"# done, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
