"""The benchmark run: raw → bronze → silver → gold, then gold's baselines, checks and ratios.

Every measured step runs in a fresh process (:func:`infra.bench.measure.run_measured`), so
import costs count as they would for a user and peak RSS is that step's alone. Layout under
``BENCH_DIR`` (default ``lake/_bench``, git-ignored):

* ``raw/scale-<S>-seed-<N>/`` — generated raw data, reused by later runs (``.complete`` marker);
* ``work-scale-<S>/`` — a throw-away lake (raw files are symlinks to the cache, plus one extra
  day for the incremental step), deleted at the start of the next run at that scale;
* ``results/`` — ``bench-scale-<S>-<time>.json`` / ``.md`` and ``latest-scale-<S>.*``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.bench.check import compare, fingerprint, scan_output
from infra.bench.measure import Measurement, child_env, run_measured

START = date(2020, 11, 1)
DAYS = 30
SEED = 42


@dataclass
class Row:
    """One line of the results table."""

    name: str
    group: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    rows: int | None = None
    check: str = ""
    note: str = ""
    stage_s: float | None = None  # the stage's own seconds inside the process (no start-up)

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.wall_s if self.rows and self.wall_s else None


@dataclass
class Report:
    scale: float
    started: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def as_json(self) -> dict[str, Any]:
        rows = [asdict(r) | {"rows_per_s": r.rows_per_s} for r in self.rows]
        return {
            "scale": self.scale,
            "started": self.started,
            "machine": self.machine,
            "rows": rows,
            "ratios": self.ratios,
            "targets": self.targets,
            "problems": self.problems,
        }


def _machine() -> dict[str, Any]:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


class Bench:
    def __init__(
        self,
        *,
        scale: float,
        bench_dir: Path,
        dask: bool,
        baselines: bool | list[str],
        incremental: bool,
        quality: bool = True,
        duckdb_memory: str = "8GB",
        log: Any = print,
    ) -> None:
        self.scale = scale
        self.duckdb_memory = duckdb_memory
        self.quality = quality
        self.gates = [] if quality else ["--no-quality"]
        self.dir = bench_dir
        self.dask = dask
        self.baselines = baselines
        self.incremental = incremental
        self.log = log
        tag = f"{scale:g}"
        self.raw_cache = bench_dir / "raw" / f"scale-{tag}-seed-{SEED}"
        self.work = bench_dir / f"work-scale-{tag}"
        self.results_dir = bench_dir / "results"
        self.report = Report(scale, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), _machine())
        self.cwd = Path(__file__).resolve().parents[2]

    # -- helpers ------------------------------------------------------------------------------
    def env(self, *, gold: str = "gold", **extra: str) -> dict[str, str]:
        w = self.work
        values = {
            "LAKE_RAW": str(w / "raw"),
            "LAKE_BRONZE": str(w / "bronze"),
            "LAKE_SILVER": str(w / "silver"),
            "LAKE_GOLD": str(w / gold),
            "LAKE_EXPORT": str(w / "export"),
            "ENGINE": "local",
        }
        return child_env(**(values | extra))

    def measure(
        self, name: str, group: str, args: list[str], env: dict[str, str], note: str = ""
    ) -> Measurement:
        self.log(f"  {name} …")
        m = run_measured(name, args, env=env, cwd=self.cwd)
        rows = m.result.get("rows")
        row = Row(name, group, m.wall_s, m.cpu_s, m.peak_rss_mb, rows, note=note)
        if args[0] == "stage" and args[1] != "run" and "seconds" in m.result:
            row.stage_s = round(float(m.result["seconds"]), 2)
        if not m.ok:
            row.check = "FAILED"
            self.report.problems.append(f"{name} failed (exit {m.returncode}): {m.stderr_tail}")
        self.report.rows.append(row)
        self.log(
            f"    {m.wall_s:.1f}s wall, {m.cpu_s:.1f}s cpu, {m.peak_rss_mb:,.0f} MB"
            + (f", {rows:,} rows" if rows else "")
            + ("" if m.ok else "  FAILED")
        )
        return m

    # -- steps --------------------------------------------------------------------------------
    def raw_data(self) -> None:
        marker = self.raw_cache / ".complete"
        if marker.exists():
            self.log(f"raw data: reusing {self.raw_cache}")
            return
        self.raw_cache.mkdir(parents=True, exist_ok=True)
        self.log(f"raw data: generating scale {self.scale:g} into {self.raw_cache}")
        m = self.measure(
            "generate raw",
            "setup",
            [
                "generate",
                "--out",
                str(self.raw_cache),
                "--scale",
                str(self.scale),
                "--seed",
                str(SEED),
                "--start",
                START.isoformat(),
                "--days",
                str(DAYS),
            ],
            child_env(),
        )
        if not m.ok:
            raise SystemExit("generating raw data failed:\n" + m.stderr_tail)
        marker.write_text(json.dumps(m.result.get("lines", {})))

    def fresh_lake(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        raw = self.work / "raw"
        for path in sorted(self.raw_cache.rglob("*")):
            if path.is_file() and not path.name.startswith((".", "_")):
                link = raw / path.relative_to(self.raw_cache)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path)

    def pipeline(self) -> None:
        self.log(
            "pipeline stages "
            + ("(as shipped, quality gates on):" if self.quality else "(quality gates off):")
        )
        for stage in ("bronze", "silver", "gold"):
            self.measure(stage, "pipeline", ["stage", stage, *self.gates], self.env())
        self.measure(
            "gold, quality gates off",
            "gold",
            ["stage", "gold", "--full", "--no-quality"],
            self.env(),
            note="features + Delta commit: the figure compared to baselines",
        )
        self.measure("export", "pipeline", ["stage", "export", *self.gates], self.env())

    def gold_fingerprint(self, gold: str = "gold") -> dict[str, Any]:
        return fingerprint(scan_output(self.work / gold / "print_features"))

    def run_baselines(self, expected: dict[str, Any]) -> None:
        self.log("gold baselines on the same silver data:")
        out_dir = self.work / "baselines"
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, label, out in [
            ("duckdb", "DuckDB SQL", out_dir / "duckdb.parquet"),
            ("pandas", "pandas", out_dir / "pandas.parquet"),
            ("io_floor", "I/O floor", out_dir / "io_floor"),
        ]:
            if isinstance(self.baselines, list) and name not in self.baselines:
                continue
            args = ["baseline", name, "--out", str(out)]
            if name == "duckdb":
                args += ["--duckdb-memory", self.duckdb_memory]
            m = self.measure(label, "baseline", args, self.env())
            row = self.report.rows[-1]
            if m.ok:
                same, why = compare(expected, fingerprint(scan_output(out)), shape_only=name == "io_floor")
                row.check = why if same else f"MISMATCH: {why}"
                if not same:
                    self.report.problems.append(f"{label}: {why}")

    def run_dask(self, expected: dict[str, Any]) -> None:
        self.log("gold on Dask (LocalCluster, 2 worker processes, 1 thread each):")
        m = self.measure(
            "gold on Dask, quality gates off",
            "gold",
            ["stage", "gold", "--no-quality"],
            self.env(gold="gold_dask", ENGINE="dask"),
            note="includes starting the 2-worker LocalCluster",
        )
        row = self.report.rows[-1]
        if m.ok:
            same, why = compare(expected, self.gold_fingerprint("gold_dask"))
            row.check = why if same else f"MISMATCH: {why}"
            if not same:
                self.report.problems.append(f"gold on Dask: {why}")

    def noop_and_incremental(self) -> None:
        self.log("no-op run, then one more day:")
        m = self.measure("no-op run (all stages)", "incremental", ["stage", "run", *self.gates], self.env())
        if m.ok and not m.result.get("skipped"):
            self.report.problems.append("the no-op run wrote something")
        if not self.incremental:
            return
        from infra.generator import generate

        generate(
            out_dir=self.work / "raw", seed=SEED, scale=self.scale, start=START + timedelta(days=DAYS), days=1
        )
        for stage in ("bronze", "silver", "gold"):
            self.measure(f"+1 day: {stage}", "incremental", ["stage", stage, *self.gates], self.env())
        # The same rebuild with the gates off, to compare with the gates-off full build.
        weeks = self._last_gold_weeks()
        if weeks:
            self.measure(
                "+1 day: gold, quality gates off",
                "incremental",
                ["stage", "gold", "--no-quality", "--weeks", *weeks],
                self.env(),
                note=f"rebuilds the {len(weeks)} week(s) the new day affects",
            )

    def _last_gold_weeks(self) -> list[str]:
        from deltalake import DeltaTable

        history = DeltaTable(str(self.work / "gold" / "print_features")).history(limit=1)
        weeks = history[0].get("weeks", "") if history else ""
        return [w for w in weeks.split(",") if w]

    # -- results ------------------------------------------------------------------------------
    def evaluate(self) -> None:
        r, ratios = self.report.row, self.report.ratios
        gold_nq, gold = r("gold, quality gates off"), r("gold")

        def ratio(name: str, a: Row | None, b: Row | None) -> None:
            if a and b and a.check != "FAILED" and b.check != "FAILED" and b.wall_s:
                ratios[f"{name} (wall)"] = round(a.wall_s / b.wall_s, 3)
                if b.cpu_s:
                    ratios[f"{name} (cpu)"] = round(a.cpu_s / b.cpu_s, 3)

        ratio("gold / DuckDB SQL", gold_nq, r("DuckDB SQL"))
        ratio("gold / pandas", gold_nq, r("pandas"))
        ratio("gold / I/O floor", gold_nq, r("I/O floor"))
        ratio("gold with quality gates / DuckDB SQL", gold, r("DuckDB SQL"))
        ratio("Dask / local gold", r("gold on Dask, quality gates off"), gold_nq)
        ratio("+1 day gold / full gold", r("+1 day: gold"), gold)
        ratio("+1 day gold / full gold, gates off", r("+1 day: gold, quality gates off"), gold_nq)
        inc, full = r("+1 day: gold, quality gates off"), gold_nq
        if inc and full and inc.stage_s and full.stage_s:
            ratios["+1 day gold / full gold, gates off (in-stage)"] = round(inc.stage_s / full.stage_s, 3)
        inc, full = r("+1 day: gold"), gold
        if inc and full and inc.stage_s and full.stage_s:
            ratios["+1 day gold / full gold (in-stage)"] = round(inc.stage_s / full.stage_s, 3)
        stages = [r(s) for s in ("bronze", "silver", "gold")]
        if all(stages):
            total = sum(s.wall_s for s in stages if s)
            peak = max(s.peak_rss_mb for s in stages if s)
            self.report.rows.append(
                Row(
                    "raw → gold (bronze + silver + gold)",
                    "pipeline",
                    round(total, 2),
                    round(sum(s.cpu_s for s in stages if s), 2),
                    peak,
                    note="sum of the three stage processes",
                )
            )

        def target(what: str, value: float | None, limit: float, unit: str = "x") -> None:
            if value is None:
                return
            self.report.targets.append(
                {"target": what, "value": value, "limit": limit, "unit": unit, "met": value <= limit}
            )

        target("gold ≤ 0.7x DuckDB SQL", ratios.get("gold / DuckDB SQL (wall)"), 0.7)
        target("gold ≤ 4x I/O floor", ratios.get("gold / I/O floor (wall)"), 4.0)
        noop = r("no-op run (all stages)")
        target("no-op run ≤ 3 s", noop.wall_s if noop else None, 3.0, "s")
        target(
            "+1 day gold ≤ 25% of full gold (gates off)",
            ratios.get("+1 day gold / full gold, gates off (wall)"),
            0.25,
        )
        target(
            "+1 day gold ≤ 25% of full gold (as shipped)", ratios.get("+1 day gold / full gold (wall)"), 0.25
        )
        target(
            "+1 day gold ≤ 25% of full gold (gates off, in-stage)",
            ratios.get("+1 day gold / full gold, gates off (in-stage)"),
            0.25,
        )
        total = r("raw → gold (bronze + silver + gold)")
        if total and self.scale >= 100:
            target("raw → gold < 300 s at scale 100", total.wall_s, 300.0, "s")
            target("raw → gold peak RSS ≤ 6 GiB", total.peak_rss_mb, 6144.0, "MB")

    def markdown(self) -> str:
        rep = self.report
        lines = [
            f"## Benchmark at scale {rep.scale:g} ({rep.started})",
            "",
            f"Machine: {rep.machine['cpus']} cores, {rep.machine['memory_gib']} GiB, Python "
            f"{rep.machine['python']}; load average at start "
            f"{', '.join(str(x) for x in rep.machine['load_average_at_start'])}. "
            "wall/cpu/peak RSS: the whole process (fresh interpreter, imports included); "
            "stage s: the stage's own time inside it.",
            "",
            "| step | wall s | cpu s | stage s | peak RSS MB | rows | rows/s | check / note |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in rep.rows:
            rps = f"{row.rows_per_s:,.0f}" if row.rows_per_s else ""
            rows = f"{row.rows:,}" if row.rows else ""
            text = "; ".join(t for t in (row.check, row.note) if t)
            stage = f"{row.stage_s:.2f}" if row.stage_s is not None else ""
            lines.append(
                f"| {row.name} | {row.wall_s:.2f} | {row.cpu_s:.2f} | {stage} | "
                f"{row.peak_rss_mb:,.0f} | {rows} | {rps} | {text} |"
            )
        if rep.ratios:
            lines += ["", "| ratio | value |", "| --- | ---: |"]
            lines += [f"| {k} | {v:.2f} |" for k, v in rep.ratios.items()]
        if rep.targets:
            lines += ["", "| target | measured | met |", "| --- | ---: | --- |"]
            for t in rep.targets:
                value = f"{t['value']:.2f}{'x' if t['unit'] == 'x' else ' ' + t['unit']}"
                lines.append(f"| {t['target']} | {value} | {'yes' if t['met'] else 'NO'} |")
        if rep.problems:
            lines += ["", "Problems:", *[f"- {p.splitlines()[0] if p else p}" for p in rep.problems]]
        return "\n".join(lines) + "\n"

    def write(self) -> tuple[Path, Path]:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.report.started.replace(":", "").replace("-", "")
        tag = f"scale-{self.scale:g}"
        js = self.results_dir / f"bench-{tag}-{stamp}.json"
        md = js.with_suffix(".md")
        js.write_text(json.dumps(self.report.as_json(), indent=2))
        md.write_text(self.markdown())
        shutil.copyfile(js, self.results_dir / f"latest-{tag}.json")
        shutil.copyfile(md, self.results_dir / f"latest-{tag}.md")
        return js, md

    def run(self) -> Report:
        started = time.perf_counter()
        self.raw_data()
        self.fresh_lake()
        self.pipeline()
        expected = self.gold_fingerprint() if not self.report.problems else {}
        if expected and self.baselines:
            self.run_baselines(expected)
        if expected and self.dask:
            self.run_dask(expected)
        self.noop_and_incremental()
        self.evaluate()
        self.log(f"benchmark done in {time.perf_counter() - started:.0f}s")
        return self.report


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True
