"""Per-stage results: what a run did, in numbers a person can check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageResult:
    """Counts and timing of one stage; ``skipped`` means nothing new, no table version."""

    stage: str
    files: int = 0
    rows_in: int = 0
    rows_out: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    skipped: bool = False
    note: str = ""
    versions: dict[str, int] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # raw paths rejected whole (bronze)
    # bronze: duplicate deliveries skipped (path → the path whose identical content bronze holds)
    duplicates: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)  # bronze: held raw paths listed no more
    retracted: list[str] = field(default_factory=list)  # … of them, those whose rows were removed
    # bronze: schema drift per source, {"new_fields": {field: lines}, "missing_fields": {…}}
    drift: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "files": self.files,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "quarantined": self.quarantined,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
            "note": self.note,
            "versions": self.versions,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "deleted": self.deleted,
            "retracted": self.retracted,
            "drift": self.drift,
        }


def drift_lines(results: list[StageResult]) -> list[str]:
    """One line per source whose raw files carried fields the contract does not know (kept in
    the bronze ``_rescued`` column) or lacked contract fields."""
    lines = []
    for r in results:
        for source, drift in sorted(r.drift.items()):
            parts = []
            if new := drift.get("new_fields"):
                parts.append(f"new fields {_counts(new)} rescued in bronze.{source}._rescued")
            if missing := drift.get("missing_fields"):
                parts.append(f"missing fields {_counts(missing)}")
            if parts:
                lines.append(f"schema drift in {source}: " + "; ".join(parts))
    return lines


def _counts(fields: dict[str, int]) -> str:
    return ", ".join(f"{name} ({n:,} line{'' if n == 1 else 's'})" for name, n in fields.items())
