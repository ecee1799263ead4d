"""The benchmark run: raw → bronze → silver → gold with the quality gates on and off, the plain
alternatives and gold's baselines on the same data, checks, ratios and the issue's targets.

Every measured step runs in a fresh process (:func:`infra.bench.measure.run_measured`), so
import costs count as they would for a user and peak RSS is that step's alone. Layout under
``BENCH_DIR`` (default ``lake/_bench``, git-ignored):

* ``raw/scale-<S>-seed-<N>/`` — generated raw data, reused by later runs (``.complete`` marker);
* ``work-scale-<S>/`` — a throw-away lake, gated (raw files are symlinks to the cache, plus one
  extra day for the incremental step), with the ungated lake in ``ungated/`` over the same raw
  files; deleted at the start of the next run at that scale;
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

from infra.bench import anchors as plain
from infra.bench.check import compare, fingerprint, scan_output
from infra.bench.measure import Measurement, child_env, run_measured

START = date(2020, 11, 1)
DAYS = 30
SEED = 42
STAGES = ("bronze", "silver", "gold")
GATES_OFF = ", quality gates off"
RAW_TO_GOLD = "raw → gold (bronze + silver + gold)"
RAW_TO_GOLD_OFF = "raw → gold" + GATES_OFF
NOOP = "no-op run (all stages)"
GATES_COST_LIMIT = 15.0  # % of the stage's ungated time


def stage_row(stage: str, gated: bool) -> str:
    """The table's name of a stage's row: ``gold`` gated, ``gold, quality gates off`` ungated."""
    return stage if gated else stage + GATES_OFF


def lake_env(root: Path, raw: Path, *, gold: str = "gold", **extra: str) -> dict[str, str]:
    """The environment of a measured process on the lake under ``root`` reading ``raw``.

    ``RAW_SETTLE_SECONDS=0``: the raw files are whole before any stage starts, so bronze does not
    watch freshly generated files for 5 s (idle seconds that would count as bronze's own).
    """
    values = {
        "RAW_SETTLE_SECONDS": "0",
        "LAKE_RAW": str(raw),
        "LAKE_BRONZE": str(root / "bronze"),
        "LAKE_SILVER": str(root / "silver"),
        "LAKE_GOLD": str(root / gold),
        "LAKE_EXPORT": str(root / "export"),
        "ENGINE": "local",
    }
    return child_env(**(values | extra))


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
    """One benchmark run at ``scale``; :meth:`run` does every step, :meth:`write` saves the report.

    ``quality=False`` runs the stages with the quality gates off only (no gated lake, no gates'
    cost). ``anchors``: the directory of the plain alternatives (:func:`infra.bench.anchors.find`),
    or None to skip them.
    """

    def __init__(
        self,
        *,
        scale: float,
        bench_dir: Path,
        dask: bool,
        baselines: bool | list[str],
        incremental: bool,
        quality: bool = True,
        anchors: Path | None = None,
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
        self.anchors = anchors
        self.log = log
        tag = f"{scale:g}"
        self.raw_cache = bench_dir / "raw" / f"scale-{tag}-seed-{SEED}"
        self.work = bench_dir / f"work-scale-{tag}"
        self.results_dir = bench_dir / "results"
        self.report = Report(scale, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), _machine())
        self.cwd = Path(__file__).resolve().parents[2]

    # -- helpers ------------------------------------------------------------------------------
    def lake(self, gated: bool) -> Path:
        """The lake of the gated (or, with ``quality=False``, the only) run, or the ungated one."""
        return self.work if gated or not self.quality else self.work / "ungated"

    def env(self, *, gold: str = "gold", gated: bool = True, **extra: str) -> dict[str, str]:
        return lake_env(self.lake(gated), self.work / "raw", gold=gold, **extra)

    def measure(
        self, name: str, group: str, args: list[str], env: dict[str, str], note: str = ""
    ) -> Measurement:
        self.log(f"  {name} …")
        m = run_measured(name, args, env=env, cwd=self.cwd)
        self.record(m, group, note=note, stage=args[0] == "stage" and args[1] != "run")
        return m

    def record(
        self, m: Measurement, group: str, *, note: str = "", stage: bool = False, quiet: bool = False
    ) -> Row:
        """Add ``m`` as a row of the table (a failure as a problem of the run)."""
        rows = m.result.get("rows")
        row = Row(m.name, group, m.wall_s, m.cpu_s, m.peak_rss_mb, rows, note=note)
        if stage and "seconds" in m.result:
            row.stage_s = round(float(m.result["seconds"]), 2)
        if not m.ok:
            row.check = "FAILED"
            self.report.problems.append(f"{m.name} failed (exit {m.returncode}): {m.stderr_tail}")
        self.report.rows.append(row)
        if quiet:
            return row
        self.log(
            f"    {m.wall_s:.1f}s wall, {m.cpu_s:.1f}s cpu, {m.peak_rss_mb:,.0f} MB"
            + (f", {rows:,} rows" if rows else "")
            + ("" if m.ok else "  FAILED")
        )
        return row

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

    def stage_pair(self, stage: str, order: tuple[bool, ...] = (True, False)) -> dict[bool, Measurement]:
        """``stage`` gated and ungated (in ``order``, back to back so both see the same load), each
        in its own lake over the same raw files; with ``quality=False``, ungated only."""
        out = {}
        for gated in order if self.quality else (False,):
            args = ["stage", stage, *([] if gated else ["--no-quality"])]
            out[gated] = self.measure(stage_row(stage, gated), "pipeline", args, self.env(gated=gated))
        return out

    def pipeline(self) -> None:
        self.log(
            "pipeline stages "
            + ("with the quality gates on and off:" if self.quality else "(quality gates off):")
        )
        for stage in STAGES:
            self.stage_pair(stage)
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

    def run_anchors(self, gold_rows: int | None = None) -> dict[str, Measurement]:
        """The plain alternatives (:mod:`infra.bench.anchors`) on the cached raw files and this
        run's silver, as rows of the table; a gold anchor's row count is checked against
        ``gold_rows`` (a note, not a problem)."""
        if self.anchors is None:
            self.log(f"plain alternatives: skipped (--no-anchors, or none in {plain.ANCHORS})")
            return {}
        self.log(f"plain alternatives in {self.anchors}, on the same raw data and silver:")
        measured = plain.run_anchors(
            self.anchors,
            raw=self.raw_cache,
            silver=self.work / "silver",
            work=self.work / "anchors",
            env=child_env(),
            cwd=self.cwd,
            log=self.log,
        )
        for name, m in measured.items():
            row = self.record(m, "anchor", quiet=True)
            if m.ok and name in plain.GOLD and gold_rows is not None:
                row.check = (
                    "same row count as gold"
                    if m.result.get("rows") == gold_rows
                    else f"row count {m.result.get('rows')} vs gold's {gold_rows} (note only)"
                )
        return measured

    def noop_and_incremental(self) -> None:
        self.log("no-op run, then one more day:")
        m = self.measure(NOOP, "incremental", ["stage", "run", *self.gates], self.env())
        if m.ok and not m.result.get("skipped"):
            self.report.problems.append("the no-op run wrote something")
        if not self.incremental:
            return
        from infra.generator import generate

        generate(
            out_dir=self.work / "raw", seed=SEED, scale=self.scale, start=START + timedelta(days=DAYS), days=1
        )
        for stage in STAGES:
            name = "+1 day: " + stage_row(stage, self.quality)
            self.measure(name, "incremental", ["stage", stage, *self.gates], self.env())
        # The same rebuild with the gates off, to compare with the gates-off full build.
        weeks = self._last_gold_weeks() if self.quality else []
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
        """Totals, ratios and the issue's targets from the rows measured."""
        r, ratios = self.report.row, self.report.ratios
        gold, gold_nq = r("gold"), r(stage_row("gold", False))

        def ok(row: Row | None) -> bool:
            return row is not None and row.check != "FAILED"

        def ratio(name: str, a: Row | None, b: Row | None) -> None:
            if a and b and ok(a) and ok(b) and b.wall_s:
                ratios[f"{name} (wall)"] = round(a.wall_s / b.wall_s, 3)
                if b.cpu_s:
                    ratios[f"{name} (cpu)"] = round(a.cpu_s / b.cpu_s, 3)

        def in_stage(name: str, a: Row | None, b: Row | None) -> None:
            if a and b and a.stage_s and b.stage_s:
                ratios[f"{name} (in-stage)"] = round(a.stage_s / b.stage_s, 3)

        def total(name: str, parts: list[Row | None], group: str, note: str) -> Row | None:
            if not parts or not all(ok(p) for p in parts):
                return None
            rows = [p for p in parts if p]
            stage_s = [p.stage_s for p in rows if p.stage_s is not None]
            row = Row(
                name,
                group,
                round(sum(p.wall_s for p in rows), 2),
                round(sum(p.cpu_s for p in rows), 2),
                max(p.peak_rss_mb for p in rows),
                note=note,
                stage_s=round(sum(stage_s), 2) if len(stage_s) == len(rows) else None,
            )
            self.report.rows.append(row)
            return row

        # the pipeline, gated and ungated: totals and the gates' cost per stage
        raw_to_gold = total(
            RAW_TO_GOLD,
            [r(s) for s in STAGES] if self.quality else [],
            "pipeline",
            "sum of the three stage processes",
        )
        total(
            RAW_TO_GOLD_OFF,
            [r(stage_row(s, False)) for s in STAGES],
            "pipeline",
            "sum of the three stage processes",
        )
        for stage in STAGES:
            on, off = r(stage), r(stage_row(stage, False))
            if not (on and off and ok(on) and ok(off)):
                continue
            if on.stage_s and off.stage_s:
                ratios[f"gates' cost, {stage} (in-stage, %)"] = round(
                    100 * (on.stage_s - off.stage_s) / off.stage_s, 1
                )
            if off.wall_s:
                ratios[f"gates' cost, {stage} (wall, %)"] = round(
                    100 * (on.wall_s - off.wall_s) / off.wall_s, 1
                )

        # the plain alternatives
        ingests = [row for row in map(r, plain.INGEST.values()) if row and ok(row)]
        ingest = min(ingests, key=lambda row: row.wall_s) if ingests else None
        duckdb_gold = r(plain.DUCKDB_GOLD)
        duckdb_chain = total(
            "DuckDB ingest + DuckDB gold",
            [r(plain.INGEST["duckdb"]), duckdb_gold],
            "anchor",
            "sum of the two anchor processes (silver flattened between them, not counted)",
        )
        ratio("bronze / faster plain ingest", r("bronze"), ingest)
        ratio("bronze, gates off / faster plain ingest", r(stage_row("bronze", False)), ingest)
        ratio("gold / DuckDB gold SQL", gold, duckdb_gold)
        ratio("gold, gates off / DuckDB gold SQL", gold_nq, duckdb_gold)
        ratio("gold / Polars gold", gold, r(plain.POLARS_GOLD))
        ratio("raw → gold / DuckDB ingest + DuckDB gold", raw_to_gold, duckdb_chain)

        # the project's baselines (gates off: they validate nothing), Dask, the new day
        ratio("gold, gates off / DuckDB SQL (duckdb_sql.py)", gold_nq, r("DuckDB SQL"))
        ratio("gold, gates off / pandas", gold_nq, r("pandas"))
        ratio("gold, gates off / I/O floor", gold_nq, r("I/O floor"))
        ratio("gold / DuckDB SQL (duckdb_sql.py)", gold, r("DuckDB SQL"))
        ratio("Dask / local gold, gates off", r("gold on Dask, quality gates off"), gold_nq)
        ratio("+1 day gold / full gold", r("+1 day: gold"), gold)
        in_stage("+1 day gold / full gold", r("+1 day: gold"), gold)
        ratio("+1 day gold / full gold, gates off", r("+1 day: gold" + GATES_OFF), gold_nq)
        in_stage("+1 day gold / full gold, gates off", r("+1 day: gold" + GATES_OFF), gold_nq)

        def target(what: str, value: float | None, limit: float, unit: str, basis: str) -> None:
            if value is None:
                return
            self.report.targets.append(
                {
                    "target": what,
                    "value": value,
                    "limit": limit,
                    "unit": unit,
                    "met": value <= limit,
                    "basis": basis,
                }
            )

        for stage in STAGES:
            target(
                f"quality gates ≤ 15% of {stage}'s ungated time",
                ratios.get(f"gates' cost, {stage} (in-stage, %)"),
                GATES_COST_LIMIT,
                "%",
                "in-stage seconds, (gated − ungated) / ungated",
            )
        target(
            "bronze (gates on) ≤ 2.5× the faster plain ingest",
            ratios.get("bronze / faster plain ingest (wall)"),
            2.5,
            "x",
            f"process wall, vs {ingest.name}" if ingest else "",
        )
        target(
            "gold (gates on) ≤ 0.8× the fastest DuckDB SQL",
            ratios.get("gold / DuckDB gold SQL (wall)"),
            0.8,
            "x",
            "process wall, vs duckdb_best.py on the same silver",
        )
        target(
            "gold (gates off) ≤ 0.6× the fastest DuckDB SQL",
            ratios.get("gold, gates off / DuckDB gold SQL (wall)"),
            0.6,
            "x",
            "process wall, vs duckdb_best.py on the same silver",
        )
        if self.scale < 100:
            target(
                "raw → gold (gates on) ≤ 2.5× DuckDB ingest + DuckDB gold",
                ratios.get("raw → gold / DuckDB ingest + DuckDB gold (wall)"),
                2.5,
                "x",
                "sums of process walls (the issue sets it at scale 10)",
            )
        elif raw_to_gold:
            target(
                "raw → gold (gates on) under 180 s", raw_to_gold.wall_s, 180.0, "s", "sum of process walls"
            )
            target(
                "raw → gold (gates on) peak RSS ≤ 4 GiB",
                raw_to_gold.peak_rss_mb,
                4096.0,
                "MB",
                "largest stage",
            )
        noop = r(NOOP)
        target(
            "no-op tick ≤ 1 s as a whole process",
            noop.wall_s if noop and ok(noop) else None,
            1.0,
            "s",
            "process wall, every stage, nothing new",
        )
        new_day = ratios.get("+1 day gold / full gold (wall)")
        target(
            "a new day ≤ 25% of a full gold build (gates on)",
            round(100 * new_day, 1) if new_day is not None else None,
            25.0,
            "%",
            "process wall, +1 day: gold / gold",
        )

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
            *self._per_stage(),
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
            lines += ["", "| target | measured | met | measured as |", "| --- | ---: | --- | --- |"]
            for t in rep.targets:
                value = f"{t['value']:.2f}{_unit(t['unit'])}"
                lines.append(f"| {t['target']} | {value} | {'yes' if t['met'] else 'NO'} | {t['basis']} |")
        if rep.problems:
            lines += ["", "Problems:", *[f"- {p.splitlines()[0] if p else p}" for p in rep.problems]]
        return "\n".join(lines) + "\n"

    def _per_stage(self) -> list[str]:
        """Per stage: gates off, gates on, the gates' cost and the plain alternative beside it."""
        r, ratios = self.report.row, self.report.ratios

        def cell(row: Row | None) -> str:
            if row is None:
                return ""
            stage = f" ({row.stage_s:.2f})" if row.stage_s is not None else ""
            return f"{row.wall_s:.2f}{stage} / {row.cpu_s:.2f} / {row.peak_rss_mb:,.0f}"

        ingests = [row for row in map(r, plain.INGEST.values()) if row and row.check != "FAILED"]
        alternative = {
            "bronze": min(ingests, key=lambda row: row.wall_s) if ingests else None,
            "gold": r(plain.DUCKDB_GOLD),
            "raw → gold": r("DuckDB ingest + DuckDB gold"),
        }
        steps = [(s, r(s), r(stage_row(s, False))) for s in STAGES]
        steps.append(("raw → gold", r(RAW_TO_GOLD), r(RAW_TO_GOLD_OFF)))
        if not any(on or off for _, on, off in steps):
            return []
        lines = [
            "Per stage, wall (stage) / cpu s / peak RSS MB; gates' cost from the in-stage seconds "
            "(from wall); plain alternative a whole process on the same data:",
            "",
            "| stage | gates off | gates on | gates' cost | plain alternative | wall / cpu s / MB "
            "| gates on / it |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
        ]
        for stage, on, off in steps:
            cost = ratios.get(f"gates' cost, {stage} (in-stage, %)")
            wall = ratios.get(f"gates' cost, {stage} (wall, %)")
            cost_text = f"{cost:+.1f} % ({wall:+.1f} %)" if cost is not None and wall is not None else ""
            alt = alternative.get(stage)
            versus = (
                f"{on.wall_s / alt.wall_s:.2f}×"
                if on and alt and alt.wall_s and alt.check != "FAILED"
                else ""
            )
            lines.append(
                f"| {stage} | {cell(off)} | {cell(on)} | {cost_text} | {alt.name if alt else ''} | "
                f"{cell(alt)} | {versus} |"
            )
        return [*lines, ""]

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
        if expected:
            self.run_anchors(expected["rows"])
        if expected and self.dask:
            self.run_dask(expected)
        self.noop_and_incremental()
        self.evaluate()
        self.log(f"benchmark done in {time.perf_counter() - started:.0f}s")
        return self.report


def _unit(unit: str) -> str:
    return {"x": "×", "%": " %"}.get(unit, " " + unit)


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True
