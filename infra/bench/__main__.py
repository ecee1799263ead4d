"""``python -m infra.bench --scale 10``: see :mod:`infra.bench.runner`."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.bench.anchors import find
from infra.bench.runner import Bench, dask_available
from infra.bench.settings import bench_dir as configured_bench_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench",
        description="Benchmark the stages (gates on and off), the plain alternatives, gold's baselines.",
    )
    parser.add_argument("--scale", type=float, default=10.0, help="1 ≈ the real data set")
    parser.add_argument("--dir", help="working directory (default BENCH_DIR, lake/_bench)")
    parser.add_argument("--no-baselines", action="store_true", help="skip DuckDB/pandas/I/O floor")
    parser.add_argument(
        "--baselines",
        help="only these, comma-separated: duckdb,pandas,io_floor (pandas needs ~35 GB at scale 100)",
    )
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask engine run")
    parser.add_argument("--no-incremental", action="store_true", help="skip the +1 day step")
    parser.add_argument(
        "--no-consumers", action="store_true", help="skip gold with several windows and the label features"
    )
    parser.add_argument(
        "--no-quality",
        action="store_true",
        help="run every stage with the quality gates off only (no gated run, so no gates' cost)",
    )
    parser.add_argument(
        "--anchors",
        help="directory of the plain alternatives (default ../shared/anchors when it exists); "
        "they run on the same raw data and the gated run's silver",
    )
    parser.add_argument("--no-anchors", action="store_true", help="skip the plain alternatives")
    parser.add_argument(
        "--duckdb-memory", default="8GB", help="memory_limit of the DuckDB baseline (it spills past it)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work lake afterwards")
    args = parser.parse_args(argv)
    bench_dir = Path(args.dir or configured_bench_dir()).resolve()
    bench = Bench(
        scale=args.scale,
        bench_dir=bench_dir,
        dask=not args.no_dask and dask_available(),
        baselines=(args.baselines.split(",") if args.baselines else not args.no_baselines),
        incremental=not args.no_incremental,
        quality=not args.no_quality,
        anchors=None if args.no_anchors else find(args.anchors),
        consumers=not args.no_consumers,
        duckdb_memory=args.duckdb_memory,
    )
    report = bench.run()
    js, md = bench.write()
    print()
    print(bench.markdown())
    print(f"results: {js} and {md}")
    if not args.keep:
        import shutil

        shutil.rmtree(bench.work, ignore_errors=True)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
