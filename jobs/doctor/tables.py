"""One table's Delta log, checkpoints and data files, read file by file (local or S3).

deltalake stops at the first problem it meets; doctor lists every one, with its file, so the
repair knows which commit, checkpoint or data file to move aside or remove.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import polars as pl
import pyarrow.parquet as pq

from jobs.doctor.findings import REPAIR, Finding
from jobs.errors import TableDamaged
from jobs.run import RunContext
from jobs.schemas import GOLD_TABLE, QUALITY_SAMPLES_TABLE, QUALITY_TABLE, SOURCES
from jobs.storage.errors import storage_error

COMMIT_NAME = re.compile(r"^(\d{20})\.json$")
CHECKPOINT_NAME = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")

BRONZE_DATA = (*(f"bronze/{s}" for s in SOURCES), "bronze/quarantine", "bronze/_manifest")
"""Tables holding what was taken in from raw files: never moved aside, repaired in place."""
DERIVED = (*(f"silver/{s}" for s in SOURCES), f"gold/{GOLD_TABLE}")
"""Tables a normal run rebuilds from their source when they are gone."""
RECORDS = (f"bronze/{QUALITY_SAMPLES_TABLE}", f"gold/{QUALITY_TABLE}")
"""Quality samples and results: a history, not data; a damaged one is moved aside."""


@dataclass
class TableState:
    """What one table's folder holds and what of it is damaged."""

    name: str  # layer/name
    uri: str
    exists: bool = False
    commits: list[int] = field(default_factory=list)  # versions of the JSON commit files
    gaps: list[int] = field(default_factory=list)  # versions missing between the first and last
    unparseable: list[int] = field(default_factory=list)  # commit files that are not JSON lines
    bad_checkpoints: list[str] = field(default_factory=list)  # checkpoint files that do not read
    bad_last_checkpoint: str = ""  # why _last_checkpoint is wrong ("" : fine or absent)
    open_error: str = ""  # the TableDamaged line deltalake gave
    missing_files: pl.DataFrame = field(default_factory=pl.DataFrame)  # add actions, flattened
    table: Any = None  # the DeltaTable when it opens

    @property
    def log_damaged(self) -> bool:
        """The JSON log itself is damaged (not only a checkpoint)."""
        return bool(self.gaps or self.unparseable or (self.open_error and not self.bad_checkpoints))

    @property
    def trailing_damage(self) -> int | None:
        """The first version of damage confined to the end of the log (None: none, or not only
        at the end): moving those commits aside leaves a table that opens."""
        if not self.log_damaged or self.gaps or not self.unparseable:
            return None
        first = min(self.unparseable)
        return first if self.unparseable == list(range(first, max(self.commits) + 1)) else None


def log_dir(ctx: RunContext, uri: str) -> str:
    return f"{ctx.storage.strip_protocol(uri).rstrip('/')}/_delta_log"


def inspect_table(ctx: RunContext, name: str, uri: str) -> TableState:
    """Read every commit file, checkpoint footer and data file listing of the table at ``uri``."""
    state = TableState(name, uri)
    fs = ctx.storage.filesystem(uri)
    folder = log_dir(ctx, uri)
    try:
        fs.invalidate_cache()
        names = [str(p).rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)] if fs.exists(folder) else []
        commits = {int(m.group(1)): m.group(0) for n in names if (m := COMMIT_NAME.match(n))}
        if not commits and not any(CHECKPOINT_NAME.match(n) for n in names):
            return state
        state.exists = True
        state.commits = sorted(commits)
        payloads = fs.cat([f"{folder}/{n}" for n in commits.values()]) if commits else {}
        state.unparseable = sorted(v for v, n in commits.items() if not _parses(payloads[f"{folder}/{n}"]))
        state.bad_checkpoints = [
            n for n in sorted(names) if CHECKPOINT_NAME.match(n) and not _reads(fs, f"{folder}/{n}")
        ]
        if "_last_checkpoint" in names:
            state.bad_last_checkpoint = _last_checkpoint_problem(
                fs.cat_file(f"{folder}/_last_checkpoint"), names
            )
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=ctx.storage) from exc
    if state.commits:
        checkpointed = [
            int(n[:20]) for n in names if CHECKPOINT_NAME.match(n) and n not in state.bad_checkpoints
        ]
        start = 0 if max(checkpointed, default=-1) < state.commits[0] - 1 else state.commits[0]
        state.gaps = sorted(set(range(start, state.commits[-1] + 1)) - set(state.commits))
    try:
        state.table = ctx.lake.open(uri)
    except TableDamaged as exc:
        state.open_error = str(exc)
    if state.table is not None:
        state.missing_files = missing_data_files(ctx, uri, state.table)
    return state


def missing_data_files(ctx: RunContext, uri: str, table: Any) -> pl.DataFrame:
    """The add actions (flattened: path, size_bytes, partition.*, min.*, max.*) of the current
    version whose data file storage lacks."""
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    if actions.is_empty():
        return actions
    fs = ctx.storage.filesystem(uri)
    root = ctx.storage.strip_protocol(uri).rstrip("/")
    try:
        stored = [str(p)[len(root) + 1 :] for p in fs.find(root)]
    except Exception as exc:
        raise storage_error(exc, uri=uri, storage=ctx.storage) from exc
    spelled = stored + [quote(p, safe="/=") for p in stored]  # add actions percent-encode
    return actions.filter(~pl.col("path").is_in(spelled))


def _parses(payload: bytes) -> bool:
    """Whether a commit file is non-empty JSON lines, each an object."""
    lines = [line for line in payload.splitlines() if line.strip()]
    try:
        return bool(lines) and all(isinstance(json.loads(line), dict) for line in lines)
    except ValueError:
        return False


def _reads(fs: Any, path: str) -> bool:
    """Whether a checkpoint's Parquet footer reads."""
    try:
        with fs.open(path, "rb") as handle:
            pq.read_metadata(handle)
    except Exception:  # any failure to read the footer is the finding itself
        return False
    return True


def _last_checkpoint_problem(payload: bytes, names: list[str]) -> str:
    """Why ``_last_checkpoint`` is wrong: not JSON, or naming a checkpoint that is not there."""
    try:
        version = int(json.loads(payload)["version"])
    except (ValueError, KeyError, TypeError):
        return "_last_checkpoint is not a JSON object with a version"
    if not any((m := CHECKPOINT_NAME.match(n)) and int(m.group(1)) == version for n in names):
        return f"_last_checkpoint names version {version}, which has no checkpoint file"
    return ""


def table_findings(state: TableState) -> list[Finding]:
    """One finding per kind of damage of one table, with what it means and its fix."""
    found = []

    def add(kind: str, problem: str, meaning: str, fix: str) -> None:
        found.append(Finding(state.name, kind, problem, meaning, fix))

    if state.bad_checkpoints:
        add(
            "checkpoint_unreadable",
            f"checkpoint {', '.join(state.bad_checkpoints)} cannot be read",
            "the table does not open although its JSON log may be whole",
            f"{REPAIR} (moves the checkpoint aside and writes a new one from the JSON log)",
        )
    if state.bad_last_checkpoint:
        add(
            "last_checkpoint_wrong",
            state.bad_last_checkpoint,
            "readers fall back to listing the log (slower)",
            f"{REPAIR} (moves it aside and writes a new checkpoint)",
        )
    if state.log_damaged:
        problems = []
        if state.gaps:
            problems.append(f"commit(s) {_versions(state.gaps)} missing from the log")
        if state.unparseable:
            problems.append(f"commit file(s) {_versions(state.unparseable)} cannot be parsed")
        meaning = "the table does not open (or not at its last version), so every run fails on it"
        add("log_damaged", "; ".join(problems) or state.open_error, meaning, _log_fix(state))
    if not state.missing_files.is_empty():
        paths = state.missing_files["path"].to_list()
        add(
            "data_file_missing",
            f"{len(paths)} data file(s) named by the log are missing ({', '.join(paths[:3])})",
            "reading the table fails",
            _file_fix(state.name),
        )
    return found


def _versions(versions: list[int]) -> str:
    return ", ".join(str(v) for v in versions[:5]) + (", …" if len(versions) > 5 else "")


def _log_fix(state: TableState) -> str:
    if state.name in DERIVED:
        return f"{REPAIR} (moves the table aside; the next run rebuilds it from its source)"
    if state.name in RECORDS:
        return f"{REPAIR} (moves the table aside; its history is kept there, a new one starts)"
    if state.trailing_damage is not None:
        return (
            f"{REPAIR} (moves commit(s) from version {state.trailing_damage} on aside, so the table "
            "opens at the version before; raw files whose rows go with them are taken in again)"
        )
    return f"cannot be repaired in place: restore {state.uri}/_delta_log from a backup"


def _file_fix(name: str) -> str:
    if name in DERIVED:
        return f"{REPAIR} (moves the table aside; the next run rebuilds it from its source)"
    if name in BRONZE_DATA:
        return (
            f"{REPAIR} (removes the file from the table; the raw files whose rows it held are taken in again)"
        )
    return f"{REPAIR} (removes the file from the table)"
