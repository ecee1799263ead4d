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
        }
