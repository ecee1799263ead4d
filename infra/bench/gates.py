"""``python -m infra.bench.gates --scale 1``: what the quality gates cost, stage by stage, repeated.

The same measurements as the pipeline step of ``make bench`` (:meth:`infra.bench.runner.Bench.
stage_pair`), repeated: each repetition builds the gated and the ungated lake afresh over the same
raw data (hard links to the cached raw files of ``make bench``) and runs bronze, silver and gold in
both, one fresh process per step: once with ``audits=NO_AUDITS`` (ungated) and once as shipped
(gated), the two steps of a stage back to back so they see the same machine load (which goes first
alternates). It prints, per stage, the median in-stage seconds (``StageResult.seconds``: the
stage's own time, without interpreter start-up) ungated and gated, and the gates' cost as a share
of the ungated time (the target is ≤ 10 %). When the plain alternatives of ``../shared/anchors/``
are there (or ``--anchors DIR``), they run right after (:meth:`Bench.run_anchors`), on the same
raw data and the last gated silver, and the table adds our gated process's ratio to them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

from infra.bench import anchors as plain
from infra.bench.measure import Measurement, cache_bytecode
from infra.bench.runner import DAYS, SEED, STAGES, START, Bench
from infra.bench.settings import bench_dir as configured_bench_dir


def run(
    scale: float, bench_dir: Path, repeat: int, anchors: Path | None = None
) -> tuple[dict[str, list], dict[str, Measurement]]:
    """Per stage, (in-stage s, wall s, cpu s) ungated and gated per repetition; then, with
    ``anchors``, the plain alternatives' measurements on the same raw data and gated silver."""
    bench = Bench(
        scale=scale,
        bench_dir=bench_dir,
        dask=False,
        baselines=False,
        incremental=False,
        anchors=anchors,
        log=lambda *a: None,
    )
    cache_bytecode()
    bench.raw_data()
    times: dict[str, list] = {s: [] for s in STAGES}
    for rep in range(repeat):
        bench.fresh_lake()  # bench.work/raw: hard links to the cache; both lakes empty
        for stage in STAGES:
            # alternate which goes first, so a load trend does not favour one side
            measured = bench.stage_pair(stage, (False, True) if rep % 2 == 0 else (True, False))
            pair = pair_times(stage, measured)
            times[stage].append(pair)
            off, on = pair[False][0], pair[True][0]
            print(
                f"rep {rep + 1} {stage:6s}: ungated {off:7.2f}s  gated {on:7.2f}s  "
                f"cost {100 * (on - off) / off:+6.1f}%  (process cpu {pair[False][2]:.1f}s / "
                f"{pair[True][2]:.1f}s; load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    alternatives = bench.run_anchors()
    for name, m in alternatives.items():
        if not m.ok:
            raise SystemExit(f"anchor {name} failed:\n" + m.stderr_tail)
    shutil.rmtree(bench.work, ignore_errors=True)
    return times, alternatives


def pair_times(stage: str, measured: dict[bool, Measurement]) -> dict[bool, tuple[float, float, float]]:
    """(in-stage s, wall s, cpu s) of one stage's gated and ungated run; a failure ends the run."""
    for gated, m in measured.items():
        if not m.ok:
            raise SystemExit(f"{stage} ({'gated' if gated else 'ungated'}) failed:\n" + m.stderr_tail)
    return {gated: (float(m.result["seconds"]), m.wall_s, m.cpu_s) for gated, m in measured.items()}


def table(scale: float, times: dict[str, list], alternatives: dict[str, Measurement] | None = None) -> str:
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


def _alternative(stage: str, gated_wall: float, alternatives: dict[str, Measurement]) -> str:
    """The stage's anchor (bronze: the faster plain ingest; gold: the DuckDB gold SQL) and the
    ratio of our gated process to it (whole processes both)."""
    m = plain.faster_ingest(alternatives) if stage == "bronze" else alternatives.get(plain.DUCKDB_GOLD)
    if stage not in ("bronze", "gold") or m is None or not m.ok:
        return "| |"
    return f"{m.name}: {m.wall_s:.2f} | {gated_wall / m.wall_s:.2f}× |"


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
    bench_dir = Path(args.dir or configured_bench_dir()).resolve()
    anchors = None if args.no_anchors else plain.find(args.anchors)
    times, alternatives = run(args.scale, bench_dir, args.repeat, anchors)
    print()
    print(table(args.scale, times, alternatives))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
