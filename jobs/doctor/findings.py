"""What doctor found and did, one line each: the table, what is wrong, what it means, the fix."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

REPAIR = "python -m jobs doctor --repair"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the lake; ``kind`` is stable for scripts (``--format json``)."""

    table: str  # layer/name, or "lease"
    kind: str
    problem: str
    meaning: str
    fix: str

    def line(self) -> str:
        return f"{self.table}: {self.problem}: {self.meaning}; fix: {self.fix}"


@dataclass
class Report:
    """A diagnosis (after a repair: of the repaired lake) and what the repair did."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts that need no fix (the lease holder)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        done = [f"repaired: {line}" for line in self.repaired]
        found = [f.line() for f in self.findings] or ["every table is healthy"]
        return done + found + self.notes

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "findings": [asdict(f) for f in self.findings],
            "repaired": self.repaired,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)
