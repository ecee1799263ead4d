"""The benchmark run: raw → bronze → silver → gold with the quality gates on and off, the plain
alternatives and gold's baselines on the same data, checks, ratios and the issue's targets.

Every measured step runs in a fresh process (:func:`infra.bench.measure.run_measured`), so
import costs count as they would for a user and peak RSS is that step's alone. Layout under
``BENCH_DIR`` (default ``lake/_bench``, git-ignored):

* ``raw/scale-<S>-seed-<N>/`` — generated raw data, reused by later runs (``.complete`` marker);
* ``work-scale-<S>/`` — a throw-away lake, gated (raw files are hard links to the cache, plus one
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.bench import anchors as plain
from infra.bench.check import compare, fingerprint, scan_output
from infra.bench.consumers import run_labels, run_windows
from infra.bench.evaluate import evaluate
from infra.bench.markdown import markdown
from infra.bench.measure import Measurement, cache_bytecode, child_env, run_measured
from infra.bench.report import BASELINES, GATES_OFF, STAGES, Key, Report, Row

START = date(2020, 11, 1)
DAYS = 30
SEED = 42
__all__ = ["DAYS", "SEED", "STAGES", "START", "Bench", "Key", "Report", "Row", "dask_available"]


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
    return child_env(None, **(values | extra))


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
        consumers: bool = True,
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
        self.consumers = consumers and quality
        self.log = log
        tag = f"{scale:g}"
        self.raw_cache = bench_dir / "raw" / f"scale-{tag}-seed-{SEED}"
        self.work = bench_dir / f"work-scale-{tag}"
        self.results_dir = bench_dir / "results"
        self.report = Report(scale, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), _machine())
        self.cwd = Path(__file__).resolve().parents[2]
        self.pairs: dict[str, dict[bool, Measurement]] = {}  # per stage, gated -> its measurement
        self.alternatives: dict[str, Measurement] = {}  # the plain alternatives, by name

    # -- helpers ------------------------------------------------------------------------------
    def lake(self, gated: bool) -> Path:
        """The lake of the gated (or, with ``quality=False``, the only) run, or the ungated one."""
        return self.work if gated or not self.quality else self.work / "ungated"

    def env(self, *, gold: str = "gold", gated: bool = True, **extra: str) -> dict[str, str]:
        return lake_env(self.lake(gated), self.work / "raw", gold=gold, **extra)

    def measure(
        self, key: Key, group: str, args: list[str], env: dict[str, str], note: str = ""
    ) -> tuple[Measurement, Row]:
        """Run ``args`` as a measured process and record it as the row ``key``."""
        self.log(f"  {key.value} …")
        m = run_measured(key.value, args, env=env, cwd=self.cwd)
        return m, self.record(m, key, group, note=note, stage=args[0] == "stage" and args[1] != "run")

    def record(
        self,
        m: Measurement,
        key: Key,
        group: str,
        *,
        note: str = "",
        stage: bool = False,
        quiet: bool = False,
    ) -> Row:
        """Add ``m`` as the row ``key`` of the table (a failure as a problem of the run)."""
        rows = m.result.get("rows")
        row = Row(key, group, m.wall_s, m.cpu_s, m.peak_rss_mb, rows, note=note)
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
        m, _ = self.measure(
            Key.GENERATE,
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
                try:  # a hard link: bronze reads no symlink that leaves LAKE_RAW
                    os.link(path, link)
                except OSError:  # another file system
                    shutil.copyfile(path, link)

    def stage_pair(self, stage: str, order: tuple[bool, ...] = (True, False)) -> dict[bool, Measurement]:
        """``stage`` gated and ungated (in ``order``, back to back so both see the same load), each
        in its own lake over the same raw files; with ``quality=False``, ungated only."""
        out = {}
        for gated in order if self.quality else (False,):
            args = ["stage", stage, *([] if gated else ["--no-quality"])]
            out[gated], _ = self.measure(Key.of_stage(stage, gated), "pipeline", args, self.env(gated=gated))
        return out

    def pipeline(self) -> None:
        self.log(
            "pipeline stages "
            + ("with the quality gates on and off:" if self.quality else "(quality gates off):")
        )
        for stage in STAGES:
            self.pairs[stage] = self.stage_pair(stage)
            for measured in self.pairs[stage].values():
                if measured.ok and not measured.result.get("rows"):
                    self.report.problems.append(f"{measured.name} wrote no rows: {measured.stderr_tail}")
        self.measure(Key.EXPORT, "pipeline", ["stage", "export", *self.gates], self.env())

    def gold_fingerprint(self, gold: str = "gold") -> dict[str, Any]:
        return fingerprint(scan_output(self.work / gold / "print_features"))

    def run_baselines(self, expected: dict[str, Any]) -> None:
        self.log("gold baselines on the same silver data:")
        out_dir = self.work / "baselines"
        out_dir.mkdir(parents=True, exist_ok=True)
        outputs = {"duckdb": "duckdb.parquet", "pandas": "pandas.parquet", "io_floor": "io_floor"}
        for name, key in BASELINES.items():
            if isinstance(self.baselines, list) and name not in self.baselines:
                continue
            out = out_dir / outputs[name]
            args = ["baseline", name, "--out", str(out)]
            if name == "duckdb":
                args += ["--duckdb-memory", self.duckdb_memory]
            m, row = self.measure(key, "baseline", args, self.env())
            if m.ok:
                same, why = compare(expected, fingerprint(scan_output(out)), shape_only=name == "io_floor")
                self.check(row, same, why)

    def run_dask(self, expected: dict[str, Any]) -> None:
        self.log("gold on Dask (LocalCluster, 2 worker processes, 1 thread each):")
        m, row = self.measure(
            Key.DASK_GOLD,
            "gold",
            ["stage", "gold", "--no-quality"],
            self.env(gold="gold_dask", ENGINE="dask"),
            note="includes starting the 2-worker LocalCluster",
        )
        if m.ok:
            same, why = compare(expected, self.gold_fingerprint("gold_dask"))
            self.check(row, same, why)

    def check(self, row: Row, same: bool, why: str) -> None:
        """The comparison of ``row``'s output with gold's; a mismatch is a problem of the run."""
        row.check = why if same else f"MISMATCH: {why}"
        if not same:
            self.report.problems.append(f"{row.name.removesuffix(GATES_OFF)}: {why}")

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
        self.alternatives = measured
        for name, m in measured.items():
            row = self.record(m, Key.of_anchor(name), "anchor", quiet=True)
            if m.ok and name in plain.GOLD and gold_rows is not None:
                row.check = (
                    "same row count as gold"
                    if m.result.get("rows") == gold_rows
                    else f"row count {m.result.get('rows')} vs gold's {gold_rows} (note only)"
                )
        return measured

    def noop_and_incremental(self) -> None:
        self.log("no-op run, then one more day:")
        # Twice: after the anchors filled memory, the first run also reads its libraries (polars,
        # pyarrow, deltalake: ~0.4 s) back from disk; a tick every 5 minutes finds them cached.
        for key in (Key.NOOP, Key.NOOP_AGAIN):
            m, _ = self.measure(key, "incremental", ["stage", "run", *self.gates], self.env())
            if m.ok and not m.result.get("skipped"):
                self.report.problems.append("the no-op run wrote something")
        if not self.incremental:
            return
        from infra.generator import generate

        generate(
            out_dir=self.work / "raw", seed=SEED, scale=self.scale, start=START + timedelta(days=DAYS), days=1
        )
        for stage in STAGES:
            self.measure(
                Key.of_new_day(stage, self.quality), "incremental", ["stage", stage, *self.gates], self.env()
            )
        # The same rebuild with the gates off, to compare with the gates-off full build.
        weeks = self._last_gold_weeks() if self.quality else []
        if weeks:
            self.measure(
                Key.DAY_GOLD_OFF,
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
        """Totals, ratios and the issue's targets from the rows measured (:mod:`.evaluate`)."""
        evaluate(self.report, scale=self.scale, quality=self.quality)

    def markdown(self) -> str:
        return markdown(self.report)

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
        cache_bytecode()
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
        if expected and self.consumers:
            run_windows(self)
            run_labels(self)
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
