"""What one measured benchmark process runs: ``python -m infra.bench.task --result F TASK``.

Tasks: ``generate`` raw data, one pipeline ``stage`` (or the whole ``run``), or a gold
``baseline``. The process writes what it did (rows, seconds in-process, its own peak RSS) to
the ``--result`` JSON file; the parent measures wall time, CPU time and the process tree's RSS.

``--no-quality`` runs a stage with ``run_stage(..., audits=NO_AUDITS)`` (pass-through audits),
so its compute can be compared with baselines that validate nothing; the benchmark reports both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from datetime import date
from pathlib import Path
from typing import Any


def _stage(args: argparse.Namespace) -> dict[str, Any]:
    from jobs.audit import NO_AUDITS
    from jobs.pipeline import run_stage
    from jobs.run import RunContext
    from jobs.settings import load_settings
    from jobs.stages import STAGES

    ctx = RunContext(load_settings())
    names = STAGES if args.name == "run" else (args.name,)
    rebuild = [date.fromisoformat(w) for w in args.weeks] if args.weeks else None
    extra = {"full": args.full, "rebuild": rebuild}
    audits = NO_AUDITS if args.no_quality else None
    results = [run_stage(ctx, n, audits=audits, **(extra if n == "gold" else {})) for n in names]
    out = {"stages": [r.as_dict() for r in results]}
    last = results[-1] if args.name != "run" else None
    if last is not None:
        out["rows"] = last.rows_out if last.stage != "bronze" else last.rows_in
        out["seconds"] = last.seconds
    else:
        out["rows"] = 0
        out["skipped"] = all(r.skipped for r in results)
    return out


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    from infra.generator import generate

    res = generate(
        out_dir=args.out,
        seed=args.seed,
        scale=args.scale,
        start=date.fromisoformat(args.start),
        days=args.days,
        skip_existing=True,
    )
    return {
        "rows": sum(res.total(s) for s in ("prints", "taps", "pays")),
        "lines": {s: res.total(s) for s in ("prints", "taps", "pays")},
    }


def _baseline(args: argparse.Namespace) -> dict[str, Any]:
    from infra.bench import duckdb_sql, io_floor, pandas_baseline
    from jobs.settings import load_settings

    settings = load_settings()
    if args.name == "duckdb":
        rows = duckdb_sql.run(settings, args.out, memory_limit=args.duckdb_memory)
    else:
        run = {"pandas": pandas_baseline.run, "io_floor": io_floor.run}
        rows = run[args.name](settings, args.out)
    return {"rows": rows}


def peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM``, the high-water mark of its memory map since its
    ``exec``. Not ``ru_maxrss``, which Linux carries across ``exec`` from the parent's map at
    ``fork``, so a child of a large bench process would report the parent's size."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.task")
    parser.add_argument("--result", required=True)
    sub = parser.add_subparsers(dest="task", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--out", required=True)
    gen.add_argument("--scale", type=float, required=True)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--start", default="2020-11-01")
    gen.add_argument("--days", type=int, default=30)
    st = sub.add_parser("stage")
    st.add_argument("name", choices=["bronze", "silver", "gold", "export", "run"])
    st.add_argument("--full", action="store_true")
    st.add_argument("--no-quality", action="store_true")
    st.add_argument("--weeks", nargs="+", help="gold: also rebuild these weeks")
    base = sub.add_parser("baseline")
    base.add_argument("name", choices=["duckdb", "pandas", "io_floor"])
    base.add_argument("--out", required=True)
    base.add_argument("--duckdb-memory", default="8GB", help="DuckDB memory_limit")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    handler = {"generate": _generate, "stage": _stage, "baseline": _baseline}[args.task]
    out = handler(args)
    out.setdefault("seconds", time.perf_counter() - started)
    out["process_seconds"] = time.perf_counter() - started
    out["max_rss_mb"] = peak_rss_mb()
    Path(args.result).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
