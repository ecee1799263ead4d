"""``python -m infra.bench.gates --scale 1``: what the quality gates cost, stage by stage.

Each repetition builds two fresh lakes over the same raw data (symlinks to the cached raw files
of ``make bench``) and runs bronze, silver and gold in both, one fresh process per step: once
with ``audits=NO_AUDITS`` (ungated) and once as shipped (gated), the two steps of a stage back
to back so they see the same machine load. It prints, per stage, the median in-stage seconds
(``StageResult.seconds``: the stage's own time, without interpreter start-up) ungated and gated,
and the gates' cost as a share of the ungated time (the target is ≤ 15 %). When the plain
alternatives of ``../shared/anchors/`` are there (or ``--anchors DIR``), they run right after, on
the same raw data and the gated silver, and the table adds our gated process's ratio to them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

from infra.bench.anchors import find, run_anchors
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


def run(
    scale: float, bench_dir: Path, repeat: int, anchors: Path | None = None
) -> tuple[dict[str, list], dict[str, float]]:
    """Per stage, (in-stage s, wall s, cpu s) ungated and gated per repetition; then, with
    ``anchors``, the plain alternatives' wall seconds on the same raw data and gated silver."""
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
    alternatives = {}
    if anchors is not None:
        alternatives = run_anchors(
            anchors,
            raw=bench.raw_cache,
            silver=bench.work / "gates-on" / "silver",
            work=bench.work / "anchors",
            cwd=cwd,
        )
    for lake in (bench.work / "gates-off", bench.work / "gates-on"):
        shutil.rmtree(lake, ignore_errors=True)
    return times, alternatives


ALTERNATIVE = {"bronze": "duckdb ingest", "gold": "duckdb gold"}  # stage -> its anchor


def table(scale: float, times: dict[str, list], alternatives: dict[str, float] | None = None) -> str:
    lines = [
        f"gates cost at scale {scale:g} ({DAYS} days, seed {SEED}, from {START}), medians "
        f"of {len(times['bronze'])} run(s); in-stage seconds (process wall / cpu in brackets); "
        f"load average now {os.getloadavg()[0]:.1f}",
        "",
        "| stage | ungated s | gated s | gates cost | per-run costs | alternative (wall s) | gated / it |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    alternatives = alternatives or {}
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
            f"{statistics.median(costs):+.1f}%) | "
            + ", ".join(f"{c:+.0f}%" for c in costs)
            + " | "
            + _alternative(stage, wall_on, alternatives)
        )
    return "\n".join(lines)


def _alternative(stage: str, gated_wall: float, alternatives: dict[str, float]) -> str:
    """The stage's anchor and the ratio of our gated process to it (whole processes both)."""
    name = ALTERNATIVE.get(stage)
    if name is None or name not in alternatives:
        return "| |"
    return f"{name}: {alternatives[name]:.2f} | {gated_wall / alternatives[name]:.2f}× |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench.gates", description="Per stage: ungated vs gated seconds."
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", help="working directory (default BENCH_DIR, lake/_bench)")
    parser.add_argument(
        "--anchors",
        help="directory of the plain alternatives (default ../shared/anchors when it exists); "
        "they run after the stages, on the same raw data and silver",
    )
    parser.add_argument("--no-anchors", action="store_true", help="skip the plain alternatives")
    args = parser.parse_args(argv)
    bench_dir = Path(args.dir or load_settings().bench_dir).resolve()
    anchors = None if args.no_anchors else find(args.anchors)
    times, alternatives = run(args.scale, bench_dir, args.repeat, anchors)
    print()
    print(table(args.scale, times, alternatives))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
