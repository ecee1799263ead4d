"""What every stage of one run shares: its id, start time, settings and lake handles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from jobs.schemas import (
    BRONZE,
    GOLD_PARTITION,
    GOLD_TABLE,
    MANIFEST,
    QUALITY_RESULTS,
    QUALITY_SAMPLES,
    QUALITY_SAMPLES_TABLE,
    QUALITY_TABLE,
    QUARANTINE,
    RUNS,
    RUNS_TABLE,
    SILVER,
    SILVER_PARTITION,
    SOURCES,
    gold_schema,
)
from jobs.settings import Settings
from jobs.storage import Storage, join
from jobs.tables import Lake
from jobs.tables.lake import Table

if TYPE_CHECKING:
    from jobs.lease import Lease, OnUnreachable


def new_run_id(now: datetime) -> str:
    """Sortable and unique: ``20261122T053000Z-1a2b3c4d``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunContext:
    """One pipeline run. Stages read locations from here, never from literals."""

    settings: Settings
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    run_id: str = ""
    lease: Lease | None = None  # the lake lease while the run holds it (jobs.pipeline)
    # What the lease heartbeat does when the store stopped answering for longer than the lease
    # TTL (commands: jobs.logs.stop_process); None: the run goes on waiting on its request.
    on_store_unreachable: OnUnreachable | None = None
    # The orchestrator's run this one belongs to, the parent of its OpenLineage stage runs
    # (jobs.lineage): {"namespace": …, "name": …, "run_id": <UUID>}; None when run by hand.
    lineage_parent: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = new_run_id(self.started_at)

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.settings)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.storage, guard=self._check_lease)

    def _check_lease(self) -> None:
        """Before every commit: this run still holds the lake lease (when it holds one)."""
        if self.lease is not None:
            self.lease.ensure()

    # -- table locations --------------------------------------------------------------------
    def bronze(self, name: str) -> str:
        return join(self.settings.lake_bronze, name)

    def silver(self, name: str) -> str:
        return join(self.settings.lake_silver, name)

    def gold(self, name: str) -> str:
        return join(self.settings.lake_gold, name)

    @property
    def manifest_uri(self) -> str:
        return self.bronze("_manifest")

    @property
    def quarantine_uri(self) -> str:
        return self.bronze("quarantine")

    def tables(self) -> list[Table]:
        """Every table the pipeline writes, in pipeline order."""
        tables = [Table(f"bronze/{s}", self.bronze(s), BRONZE[s]) for s in SOURCES]
        tables += [
            Table("bronze/quarantine", self.quarantine_uri, QUARANTINE),
            Table("bronze/_manifest", self.manifest_uri, MANIFEST),
            Table(f"bronze/{QUALITY_SAMPLES_TABLE}", self.bronze(QUALITY_SAMPLES_TABLE), QUALITY_SAMPLES),
        ]
        tables += [Table(f"silver/{s}", self.silver(s), SILVER[s], SILVER_PARTITION) for s in SOURCES]
        tables += [
            Table(
                f"gold/{GOLD_TABLE}",
                self.gold(GOLD_TABLE),
                gold_schema(windows=self.settings.lookback_weeks),
                GOLD_PARTITION,
            ),
            Table(f"gold/{QUALITY_TABLE}", self.gold(QUALITY_TABLE), QUALITY_RESULTS),
            Table(f"gold/{RUNS_TABLE}", self.gold(RUNS_TABLE), RUNS),
        ]
        return tables
