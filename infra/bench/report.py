"""The benchmark's report: its rows, each keyed by a :class:`Key`, its ratios, targets and problems.

A row is found by its key, never by the text shown for it: each key's value is that text (the
``name`` in the JSON and the first column of the markdown table), written here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from infra.bench import anchors as plain

STAGES = ("bronze", "silver", "gold")
GATES_OFF = ", quality gates off"


class Key(Enum):
    """Every row the benchmark can report; the value is the row's name in the report."""

    GENERATE = "generate raw"
    BRONZE = "bronze"
    BRONZE_OFF = "bronze" + GATES_OFF
    SILVER = "silver"
    SILVER_OFF = "silver" + GATES_OFF
    GOLD = "gold"
    GOLD_OFF = "gold" + GATES_OFF
    EXPORT = "export"
    RAW_TO_GOLD = "raw → gold (bronze + silver + gold)"
    RAW_TO_GOLD_OFF = "raw → gold" + GATES_OFF
    DUCKDB_SQL = "DuckDB SQL"
    PANDAS = "pandas"
    IO_FLOOR = "I/O floor"
    INGEST_DUCKDB = plain.INGEST["duckdb"]
    INGEST_POLARS = plain.INGEST["polars"]
    FLATTEN = plain.FLATTEN
    DUCKDB_GOLD = plain.DUCKDB_GOLD
    POLARS_GOLD = plain.POLARS_GOLD
    DUCKDB_CHAIN = "DuckDB ingest + DuckDB gold"
    DASK_GOLD = "gold on Dask" + GATES_OFF
    NOOP = "no-op run (all stages)"
    NOOP_AGAIN = "no-op run again (page cache warm)"
    DAY_BRONZE = "+1 day: bronze"
    DAY_BRONZE_OFF = "+1 day: bronze" + GATES_OFF
    DAY_SILVER = "+1 day: silver"
    DAY_SILVER_OFF = "+1 day: silver" + GATES_OFF
    DAY_GOLD = "+1 day: gold"
    DAY_GOLD_OFF = "+1 day: gold" + GATES_OFF
    DAY_RAW_TO_GOLD = "+1 day: raw → gold (bronze + silver + gold)"
    GOLD_WINDOWS = "gold, lookback windows 3,1,4"
    LABELS = "label features (python -m jobs features)"
    LABELS_ANCHOR = "label features, DuckDB (labels_duckdb.py)"

    @classmethod
    def of_stage(cls, stage: str, gated: bool = True) -> Key:
        """``bronze``/``silver``/``gold`` gated (``BRONZE``) or ungated (``BRONZE_OFF``)."""
        return cls[stage.upper() + ("" if gated else "_OFF")]

    @classmethod
    def of_new_day(cls, stage: str, gated: bool = True) -> Key:
        """The incremental step's row of ``stage`` (``DAY_GOLD``, ``DAY_GOLD_OFF``, ...)."""
        return cls["DAY_" + cls.of_stage(stage, gated).name]

    @classmethod
    def of_anchor(cls, name: str) -> Key:
        """The row of a plain alternative, from the name :func:`anchors.run_anchors` gives it."""
        return cls(name)


INGESTS = (Key.INGEST_DUCKDB, Key.INGEST_POLARS)
BASELINES = {"duckdb": Key.DUCKDB_SQL, "pandas": Key.PANDAS, "io_floor": Key.IO_FLOOR}


@dataclass
class Row:
    """One line of the results table."""

    key: Key
    group: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    rows: int | None = None
    check: str = ""
    note: str = ""
    stage_s: float | None = None  # the stage's own seconds inside the process (no start-up)

    @property
    def name(self) -> str:
        return self.key.value

    @property
    def ok(self) -> bool:
        return self.check != "FAILED"

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.wall_s if self.rows and self.wall_s else None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "peak_rss_mb": self.peak_rss_mb,
            "rows": self.rows,
            "check": self.check,
            "note": self.note,
            "stage_s": self.stage_s,
            "rows_per_s": self.rows_per_s,
        }


@dataclass
class Report:
    scale: float
    started: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def row(self, key: Key) -> Row | None:
        return next((r for r in self.rows if r.key is key), None)

    def ok_row(self, key: Key) -> Row | None:
        """The row of ``key`` if it was measured and did not fail."""
        row = self.row(key)
        return row if row is not None and row.ok else None

    def faster_ingest(self) -> Row | None:
        """The plain ingest with the least wall time among those that succeeded."""
        rows = [row for row in map(self.ok_row, INGESTS) if row]
        return min(rows, key=lambda row: row.wall_s) if rows else None

    def as_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "started": self.started,
            "machine": self.machine,
            "rows": [r.as_json() for r in self.rows],
            "ratios": self.ratios,
            "targets": self.targets,
            "problems": self.problems,
        }
