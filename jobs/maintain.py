"""Table maintenance: compact small files, checkpoint, vacuum superseded and orphan files.

``python -m jobs maintain`` (``make maintain``, the ``lakehouse_maintenance`` DAG) runs this over
every pipeline table: bronze prints/taps/pays, quarantine, ``_manifest`` and ``_quality_samples``; silver
prints/taps/pays; gold ``print_features`` and ``_quality_results``. Per table, in this order:

1. **Compaction** (``optimize.compact``): small files of a partition are rewritten into files of
   about ``MAINTAIN_TARGET_FILE_BYTES`` (default: the table's ``delta.targetFileSize``, else
   100 MB). Rows and their values are unchanged; only the file layout changes. With
   ``MAINTAIN_ZORDER_GOLD`` gold's weeks with more than one file are instead rewritten
   Z-ordered by ``user_id`` (``optimize.z_order``), so per-user reads skip most of a week.
2. **Vacuum** (``vacuum(full=True)``): deletes (a) data files a version older than
   ``MAINTAIN_RETENTION_HOURS`` removed (compacted away, a rebuilt gold week, a replaced silver
   day) and (b) files no Delta version references at all — the Parquet files of runs that died
   before their commit (gold's ``part-<run id>-*``) — once they are older than the retention by
   their modification time. A younger unreferenced file is kept: it may be a live writer's file
   that is about to be committed. Files and folders starting with ``_`` or ``.`` (the log, the
   lease, write probes) are never touched. delta-rs 1.6 checks the removal time of a removed
   file, not its modification time, so a long-lived file compacted away today stays for the
   whole retention (time travel keeps working).
3. **Checkpoint** (``create_checkpoint``) of the final version, so opening a table reads one
   Parquet checkpoint instead of replaying hundreds of JSON commits (``_quality_results`` gets
   three commits per run). Expired JSON commits (``delta.logRetentionDuration``, 30 days) are
   removed by delta-rs's own post-commit hook, not here.

**What a reader of an old version can expect after maintenance**: time travel works back to
``MAINTAIN_RETENTION_HOURS`` (default 168 h, a week): every version committed within the
retention still has all its files. An older version may still be listed in the history, but its
files may be gone, so reading it fails with file-not-found. A reader that opened a version
before maintenance keeps working as long as it finishes within the retention — hence the
retention's minimum (:data:`jobs.settings.MAINTAIN_MIN_RETENTION_HOURS`).

**Incremental stages are not disturbed**: compaction and vacuum commit ``OPTIMIZE``, ``VACUUM
START`` and ``VACUUM END`` operations (a checkpoint is no commit at all), carrying only
``maintenance_run`` as metadata — never ``run_id``, ``days``, ``bronze_version`` or
``silver_versions``. Silver skips those operations in bronze history (and a takeover's fence
commits, :mod:`jobs.tables.fence`), gold's planner skips them in silver history, and
:func:`data_changed_since` lets the orchestrator's ``detect`` do the same, so the run after a
maintenance writes no new table version. A gold version produced by
maintenance has exactly the rows of the version exported, so the export marker moves to it.

Like every writer, maintenance holds the lake lease (:func:`jobs.pipeline.holding_lease`): a
maintenance that finds a run holding it waits up to ``MAINTAIN_LEASE_WAIT_SECONDS`` (default
1800) for the run to finish, then fails (exit 5, the holder named; the DAG's task is retried),
rather than fail while a run works; each commit is
preceded by the lease check (``Lake.guard``), so a maintenance that lost the lease commits
nothing more.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from jobs.run import RunContext
from jobs.schemas import GOLD_PARTITION, GOLD_TABLE
from jobs.storage import join
from jobs.storage.errors import storage_error
from jobs.tables.commits import changes_rows, commit_properties

log = logging.getLogger(__name__)

ZORDER_COLUMNS = ("user_id",)


@dataclass
class TableMaintenance:
    """What maintenance did to one table."""

    table: str  # layer/name, e.g. silver/prints
    uri: str
    exists: bool = True
    version_before: int | None = None
    version_after: int | None = None
    live_files_before: int = 0  # data files of the current version
    live_files_after: int = 0
    stored_files_before: int = 0  # data files in storage (live + superseded + orphans)
    stored_files_after: int = 0
    stored_bytes_before: int = 0
    stored_bytes_after: int = 0
    compacted_files_removed: int = 0  # small files rewritten (now superseded, kept for readers)
    compacted_files_added: int = 0
    zordered: bool = False
    vacuumed_files: int = 0  # deleted from storage by vacuum
    vacuumed_bytes: int = 0
    checkpoint: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MaintenanceResult:
    """One maintenance run over the lake."""

    run_id: str
    retention_hours: int
    tables: list[TableMaintenance] = field(default_factory=list)
    seconds: float = 0.0

    def totals(self) -> dict[str, int]:
        keys = (
            "stored_files_before",
            "stored_files_after",
            "live_files_before",
            "live_files_after",
            "vacuumed_files",
            "vacuumed_bytes",
            "compacted_files_removed",
        )
        return {k: sum(getattr(t, k) for t in self.tables) for k in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": "maintain",
            "run_id": self.run_id,
            "retention_hours": self.retention_hours,
            "seconds": round(self.seconds, 3),
            "totals": self.totals(),
            "tables": [t.as_dict() for t in self.tables],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False)


def pipeline_tables(ctx: RunContext) -> list[tuple[str, str]]:
    """(layer/name, uri) of every table the pipeline writes, in pipeline order."""
    return [(t.name, t.uri) for t in ctx.tables()]


def data_changed_since(lake: Any, uri: str, version: int) -> bool:
    """Whether any commit after ``version`` of the table at ``uri`` may have changed rows
    (anything but maintenance operations)."""
    return any(changes_rows(c) for c in lake.history(uri, after=version))


def maintain(ctx: RunContext, *, tables: Iterable[str] | None = None) -> MaintenanceResult:
    """Maintain every pipeline table (or only those named ``layer/name``), holding the lease."""
    from jobs.pipeline import holding_lease

    wanted = set(tables) if tables is not None else None
    chosen = [(n, u) for n, u in pipeline_tables(ctx) if wanted is None or n in wanted]
    if wanted is not None and len(chosen) != len(wanted):
        from jobs.errors import ConfigError

        known = ", ".join(n for n, _ in pipeline_tables(ctx))
        raise ConfigError(f"unknown table(s) {sorted(wanted - {n for n, _ in chosen})}: choose from {known}")
    started = time.perf_counter()
    result = MaintenanceResult(ctx.run_id, ctx.settings.maintain_retention_hours)
    with holding_lease(ctx, wait=ctx.settings.maintain_lease_wait_seconds):
        for name, uri in chosen:
            done = maintain_table(ctx, name, uri)
            result.tables.append(done)
            log.info(
                "maintained %s: %d → %d stored files, %d vacuumed (%d bytes), %.2fs",
                name,
                done.stored_files_before,
                done.stored_files_after,
                done.vacuumed_files,
                done.vacuumed_bytes,
                done.seconds,
                extra={"event": "maintain_table", **done.as_dict()},
            )
    result.seconds = time.perf_counter() - started
    log.info("maintenance done in %.2fs", result.seconds, extra={"event": "maintain_done", **result.totals()})
    return result


def maintain_table(ctx: RunContext, name: str, uri: str) -> TableMaintenance:
    """Compact (or Z-order), vacuum and checkpoint one table; caller holds the lease."""
    started = time.perf_counter()
    lake, settings = ctx.lake, ctx.settings
    done = TableMaintenance(name, uri)
    table = lake.open(uri)
    if table is None:
        done.exists = False
        return done
    done.version_before = table.version()
    done.live_files_before = _live_files(table)
    inventory = _inventory(ctx, uri)
    done.stored_files_before, done.stored_bytes_before = len(inventory), sum(inventory.values())
    props = commit_properties({"maintenance_run": ctx.run_id})
    target = settings.maintain_target_file_bytes or None
    try:
        zorder = settings.maintain_zorder_gold and name == f"gold/{GOLD_TABLE}"
        if zorder:
            weeks = _partitions_with_several_files(table, GOLD_PARTITION)
            if weeks:
                lake.check_guard()
                metrics = table.optimize.z_order(
                    list(ZORDER_COLUMNS),
                    partition_filters=[(GOLD_PARTITION, "in", weeks)],
                    target_size=target,
                    commit_properties=props,
                )
                done.zordered = True
                _count_optimize(done, metrics)
        else:
            lake.check_guard()
            _count_optimize(done, table.optimize.compact(target_size=target, commit_properties=props))
        lake.check_guard()
        removed = table.vacuum(
            retention_hours=settings.maintain_retention_hours,
            dry_run=False,
            enforce_retention_duration=False,
            full=True,
            commit_properties=props,
        )
        done.vacuumed_files = len(removed)
        done.vacuumed_bytes = sum(inventory.get(_relative(p, uri), 0) for p in removed)
        if _last_checkpoint(ctx, uri) != table.version():
            lake.check_guard()
            table.create_checkpoint()
            done.checkpoint = True
    except Exception as exc:
        from deltalake.exceptions import CommitFailedError

        from jobs.errors import PipelineError

        if isinstance(exc, PipelineError):  # LeaseLost from the guard, a storage error
            raise
        if isinstance(exc, CommitFailedError):  # the table moved on: fenced by a takeover
            raise lake.refused(uri, done.version_before) from None
        raise storage_error(exc, uri=uri, storage=ctx.storage) from exc
    done.version_after = table.version()
    done.live_files_after = _live_files(table)
    inventory = _inventory(ctx, uri)
    done.stored_files_after, done.stored_bytes_after = len(inventory), sum(inventory.values())
    if name == f"gold/{GOLD_TABLE}" and done.version_after != done.version_before:
        _carry_export_marker(ctx, done.version_before, done.version_after)
    done.seconds = round(time.perf_counter() - started, 3)
    return done


# -- helpers -----------------------------------------------------------------------------------
def _count_optimize(done: TableMaintenance, metrics: dict[str, Any]) -> None:
    done.compacted_files_removed += int(metrics.get("numFilesRemoved") or 0)
    done.compacted_files_added += int(metrics.get("numFilesAdded") or 0)


def _live_files(table: Any) -> int:
    return int(table.get_add_actions(flatten=True).num_rows)


def _partitions_with_several_files(table: Any, column: str) -> list[str]:
    """Values of ``column`` whose partition has more than one live file."""
    import polars as pl

    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    name = f"partition.{column}"
    if actions.is_empty() or name not in actions.columns:
        return []
    counts = actions.group_by(name).len().filter(pl.col("len") > 1)
    return sorted(str(v) for v in counts[name].to_list())


def _hidden(rel: str) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.split("/"))


def _inventory(ctx: RunContext, uri: str) -> dict[str, int]:
    """Every data file stored under the table (relative path → bytes), the log excluded."""
    fs = ctx.storage.filesystem(uri)
    root = ctx.storage.strip_protocol(uri).rstrip("/")
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=ctx.storage) from exc
    files = {}
    for path, info in found.items():
        rel = path[len(root) :].lstrip("/")
        if info.get("type") == "file" and not _hidden(rel):
            files[rel] = int(info.get("size") or 0)
    return files


def _relative(path: str, uri: str) -> str:
    """A path vacuum returned, relative to the table root (it returns relative ones)."""
    for prefix in (uri.rstrip("/") + "/", uri.split("://", 1)[-1].rstrip("/") + "/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path.lstrip("/")


def _last_checkpoint(ctx: RunContext, uri: str) -> int | None:
    """Version of the table's last checkpoint (None: none yet or unreadable)."""
    payload = ctx.lake.read_file(join(uri, "_delta_log", "_last_checkpoint"))
    try:
        return int(json.loads(payload)["version"]) if payload else None
    except (ValueError, KeyError, TypeError):
        return None


def _carry_export_marker(ctx: RunContext, before: int | None, after: int | None) -> None:
    """Gold's maintenance commits changed no rows: the export of ``before`` is the export of
    ``after`` too, so the marker moves along (else the next tick would re-export for nothing)."""
    from jobs.export import read_marker

    marker = read_marker(ctx)
    if before is None or marker.get("gold_version") != before:
        return  # not exported yet, or exported from another version: export will handle it
    marker |= {"gold_version": after, "maintained_from_version": before, "maintenance_run": ctx.run_id}
    ctx.lake.put_file(
        join(ctx.settings.export_uri, "_export.json"), json.dumps(marker, indent=2).encode(), tag=ctx.run_id
    )
