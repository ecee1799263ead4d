"""``python -m infra.bench.gates --scale 1``: what the quality gates cost, stage by stage.

Each repetition builds two fresh lakes over the same raw data (symlinks to the cached raw files
of ``make bench``) and runs bronze, silver and gold in both, one fresh process per step: once
with ``audits=NO_AUDITS`` (ungated) and once as shipped (gated), the two steps of a stage back
to back so they see the same machine load. It prints, per stage, the median in-stage seconds
(``StageResult.seconds``: the stage's own time, without interpreter start-up) ungated and gated,
and the gates' cost as a share of the ungated time (the target is ≤ 15 %).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

from infra.bench.measure import child_env, run_measured
from infra.bench.runner import DAYS, SEED, START, Bench
from jobs.settings import load_settings

STAGES = ("bronze", "silver", "gold")


def _lake_env(work: Path, raw: Path) -> dict[str, str]:
    return child_env(
        LAKE_RAW=str(raw),
        LAKE_BRONZE=str(work / "bronze"),
        LAKE_SILVER=str(work / "silver"),
        LAKE_GOLD=str(work / "gold"),
        LAKE_EXPORT=str(work / "export"),
        ENGINE="local",
    )


def run(scale: float, bench_dir: Path, repeat: int, log: object = print) -> dict[str, list]:
    bench = Bench(
        scale=scale, bench_dir=bench_dir, dask=False, baselines=False, incremental=False, log=lambda *a: None
    )
    bench.raw_data()
    bench.fresh_lake()  # bench.work/raw: symlinks to the cache
    raw = bench.work / "raw"
    cwd = bench.cwd
    times: dict[str, list] = {s: [] for s in STAGES}
    for rep in range(repeat):
        lakes = {gated: bench.work / f"gates-{'on' if gated else 'off'}" for gated in (False, True)}
        for lake in lakes.values():
            shutil.rmtree(lake, ignore_errors=True)
        for stage in STAGES:
            pair = {}
            # alternate which goes first, so a load trend does not favour one side
            order = (False, True) if rep % 2 == 0 else (True, False)
            for gated in order:
                args = ["stage", stage, *([] if gated else ["--no-quality"])]
                m = run_measured(stage, args, env=_lake_env(lakes[gated], raw), cwd=cwd)
                if not m.ok:
                    raise SystemExit(f"{stage} ({'gated' if gated else 'ungated'}) failed:\n" + m.stderr_tail)
                pair[gated] = (float(m.result["seconds"]), m.wall_s, m.cpu_s)
            times[stage].append(pair)
            off, on = pair[False][0], pair[True][0]
            print(
                f"rep {rep + 1} {stage:6s}: ungated {off:7.2f}s  gated {on:7.2f}s  "
                f"cost {100 * (on - off) / off:+6.1f}%  (process cpu {pair[False][2]:.1f}s / "
                f"{pair[True][2]:.1f}s; load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    for lake in (bench.work / "gates-off", bench.work / "gates-on"):
        shutil.rmtree(lake, ignore_errors=True)
    return times


def table(scale: float, times: dict[str, list]) -> str:
    lines = [
        f"gates cost at scale {scale:g} ({DAYS} days, seed {SEED}, from {START}), medians "
        f"of {len(times['bronze'])} run(s); in-stage seconds (process wall / cpu in brackets); "
        f"load average now {os.getloadavg()[0]:.1f}",
        "",
        "| stage | ungated s | gated s | gates cost | per-run costs |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for stage, pairs in times.items():
        off = statistics.median(p[False][0] for p in pairs)
        on = statistics.median(p[True][0] for p in pairs)
        wall_off = statistics.median(p[False][1] for p in pairs)
        wall_on = statistics.median(p[True][1] for p in pairs)
        cpu_off = statistics.median(p[False][2] for p in pairs)
        cpu_on = statistics.median(p[True][2] for p in pairs)
        costs = [100 * (p[True][0] - p[False][0]) / p[False][0] for p in pairs]
        lines.append(
            f"| {stage} | {off:.2f} ({wall_off:.1f} / {cpu_off:.1f}) | "
            f"{on:.2f} ({wall_on:.1f} / {cpu_on:.1f}) | "
            f"{100 * (on - off) / off:+.1f}% (median per run "
            f"{statistics.median(costs):+.1f}%) | " + ", ".join(f"{c:+.0f}%" for c in costs) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench.gates", description="Per stage: ungated vs gated seconds."
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", help="working directory (default BENCH_DIR, lake/_bench)")
    args = parser.parse_args(argv)
    bench_dir = Path(args.dir or load_settings().bench_dir).resolve()
    times = run(args.scale, bench_dir, args.repeat)
    print()
    print(table(args.scale, times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
