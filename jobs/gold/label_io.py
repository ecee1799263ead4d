"""Label files and lake versions for :mod:`jobs.gold.labels`: reading a label file (local or on
the object store), which silver versions to read (now, known at a moment, or those a gold
version was built from) and the ``features`` command's bucketed, whole-file write."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from jobs.gold.labels import (
    LABEL_KEYS,
    NARROW_RATIO,
    ROW,
    LabelsError,
    check_labels,
    label_plan,
    public_labels,
    typed_labels,
)
from jobs.schemas import SILVER, SOURCES
from jobs.storage import is_remote, join
from jobs.weeks import Mode

if TYPE_CHECKING:
    from jobs.run import RunContext
    from jobs.storage import Storage
    from jobs.tables import Lake

# A label bucket holds a silver event's key (and a pay's cents) where a gold bucket holds a
# print's row: silver rows count 1/4 and label rows (with their features) 1 towards
# GOLD_ROWS_PER_BUCKET (scale 10, 12.9M events and 1M labels in one bucket: about 0.6 GB at
# peak, of which 0.2 GB is the process before it reads any silver).
BUCKET_SCALE = 4
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def label_format(uri: str) -> str:
    suffix = Path(uri.split("?")[0]).suffix.lower()
    if suffix not in FORMATS:
        raise LabelsError(f"{uri}: name a .parquet or .csv file (the format goes by the extension)")
    return FORMATS[suffix]


def scan_labels(uri: str, storage: Storage | None = None) -> pl.LazyFrame:
    """A label file (Parquet or CSV, local or on the lake's object store), untyped keys."""
    fmt = label_format(uri)
    options = storage.polars_options(uri) if storage is not None else None
    if storage is not None and is_remote(uri):
        fs, path = storage.filesystem(uri), storage.strip_protocol(uri)
        try:
            size = fs.size(path) if fs.exists(path) else None
        except Exception as exc:
            from jobs.storage.errors import storage_error

            raise storage_error(exc, uri=uri, storage=storage) from exc
    else:
        size = os.path.getsize(uri) if os.path.isfile(uri) else None
    if size is None:
        raise LabelsError(f"label file {uri} not found")
    if size == 0:
        raise LabelsError(f"label file {uri} is empty")
    try:
        if fmt == "csv":
            frame = pl.scan_csv(
                uri,
                schema_overrides={k: pl.String for k in LABEL_KEYS},
                storage_options=options,
                infer_schema_length=10_000,
            )
        else:
            frame = pl.scan_parquet(uri, storage_options=options)
        frame.collect_schema()
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabelsError(f"label file {uri} is not a readable {fmt} file: {first}") from None
    return frame


# -- which silver versions: now, known at a moment, or those a gold version read ------------------
def versions_now(lake: Lake, silver_root: str) -> dict[str, int]:
    return {s: (-1 if (v := lake.version(join(silver_root, s))) is None else v) for s in SOURCES}


def versions_known_at(lake: Lake, silver_root: str, moment: datetime) -> dict[str, int]:
    """Per silver table, the newest version committed at or before ``moment`` (-1: the table
    did not exist yet). A moment older than the log still held raises :class:`LabelsError`."""
    stamp = int(moment.timestamp() * 1000)
    versions = {}
    for source in SOURCES:
        commits = lake.history(join(silver_root, source))
        known = [int(c["version"]) for c in commits if int(c["timestamp"]) <= stamp]
        if not known and commits and int(commits[0]["version"]) > 0:
            raise LabelsError(
                f"silver {source}'s log no longer reaches back to {moment.isoformat()} "
                f"(oldest commit kept: version {commits[0]['version']})"
            )
        versions[source] = max(known, default=-1)
    return versions


def versions_of_gold(lake: Lake, gold_uri: str, version: int) -> dict[str, Any]:
    """The newest gold build at or before gold ``version``: its silver versions and lookback."""
    import json

    current = lake.version(gold_uri)
    if current is None or not 0 <= version <= current:
        raise LabelsError(f"gold has no version {version} (its current version is {current})")
    builds = [c for c in lake.history(gold_uri) if "silver_versions" in c and int(c["version"]) <= version]
    if not builds:
        raise LabelsError(
            f"gold version {version} records no silver versions (no gold build at or before it)"
        )
    build = builds[-1]
    return {
        "silver_versions": {k: int(v) for k, v in json.loads(build["silver_versions"]).items()},
        "lookback_mode": build.get("lookback_mode"),
        "lookback_weeks": build.get("lookback_weeks"),
    }


def silver_at(lake: Lake, silver_root: str, versions: Mapping[str, int]) -> dict[str, pl.LazyFrame]:
    """Scans of the silver tables at ``versions`` (-1: an empty frame). An older version whose
    data files maintenance has vacuumed raises :class:`LabelsError` (before any work)."""
    frames = {}
    for source in SOURCES:
        v = versions.get(source, -1)
        if v < 0:
            frames[source] = pl.LazyFrame(schema=SILVER[source])
            continue
        uri = join(silver_root, source)
        table = lake.open(uri, v)
        if table is None:
            raise LabelsError(f"silver {source} has no version {v}")
        if v != lake.version(uri):
            fs = lake.storage.filesystem(uri)
            gone = [f for f in table.file_uris() if not fs.exists(lake.storage.strip_protocol(f))]
            if gone:
                raise LabelsError(
                    f"silver {source} version {v} is no longer readable: maintenance vacuumed "
                    f"{len(gone)} of its files (MAINTAIN_RETENTION_HOURS keeps older versions' files)"
                )
        frames[source] = lake.scan_table(table)
    return frames


def silver_user_range(lake: Lake, silver_root: str, versions: Mapping[str, int]) -> tuple[int, int] | None:
    """The smallest and largest user id of the silver tables at ``versions``, from the Delta
    log's file statistics (no data read); None when a file has none."""
    lows, highs = [], []
    for source in SOURCES:
        v = versions.get(source, -1)
        table = lake.open(join(silver_root, source), v) if v >= 0 else None
        if table is None:
            continue
        actions = pl.DataFrame(table.get_add_actions(flatten=True))
        if actions.is_empty():
            continue
        if {"min.user_id", "max.user_id"} - set(actions.columns):
            return None
        if actions["min.user_id"].null_count() or actions["max.user_id"].null_count():
            return None
        lows.append(int(actions["min.user_id"].min()))  # type: ignore[arg-type]
        highs.append(int(actions["max.user_id"].max()))  # type: ignore[arg-type]
    return (min(lows), max(highs)) if lows else (0, 0)


def parse_moment(text: str) -> datetime:
    """``--known-at``: an ISO date or timestamp; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise LabelsError(
            f"--known-at {text!r} is not an ISO timestamp (e.g. 2020-12-01T06:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- the command ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelRun:
    rows: int
    buckets: int
    versions: Mapping[str, int]
    mode: Mode
    windows: tuple[int, ...]
    out: str


def write_label_features(
    ctx: RunContext,
    labels_uri: str,
    out_uri: str,
    *,
    mode: Mode,
    windows: Sequence[int],
    versions: Mapping[str, int],
    buckets: int | None = None,
) -> LabelRun:
    """Read, check, compute bucket by bucket and write the label file's features to
    ``out_uri`` (Parquet or CSV by extension, local or on the object store), whole: parts in a
    temporary folder, then one file under a temporary name, then a rename."""
    out_format = label_format(out_uri)
    storage, lake, root = ctx.storage, ctx.lake, ctx.settings.lake_silver
    typed = typed_labels(scan_labels(labels_uri, storage), labels_uri)
    stats = check_labels(typed, labels_uri)
    labels = public_labels(typed)
    silver = silver_at(lake, root, versions)
    user_range = silver_user_range(lake, root, versions)
    rows = {s: f.select(pl.len()).collect().item() for s, f in silver.items()}  # Parquet metadata
    prints = rows["prints"]
    if buckets is None:  # GOLD_BUCKETS, or about GOLD_ROWS_PER_BUCKET labels + silver rows / 4 each
        weight = sum(rows.values()) / BUCKET_SCALE + stats.rows
        buckets = ctx.settings.gold_buckets or max(1, math.ceil(weight / ctx.settings.gold_rows_per_bucket))
    work = Path(tempfile.mkdtemp(prefix="label-features-"))
    try:

        def plan(bucket: tuple[int, int] | None) -> pl.LazyFrame:  # reads the bucket's silver
            return label_plan(
                labels,
                silver,
                mode=mode,
                windows=windows,
                stats=stats,
                silver_user_range=user_range,
                bucket=bucket,
                # only the labels' (user, value prop) pairs' events, unless labels outnumber prints
                narrow=NARROW_RATIO * stats.rows < prints,
            )

        if buckets == 1:
            merged = plan(None).drop(ROW)
        else:  # each bucket's rows to a part (memory holds one bucket), then merged in order
            parts = [work / f"part-{b:05d}.parquet" for b in range(buckets)]
            for b, part in enumerate(parts):
                plan((b, buckets)).sink_parquet(part, engine="streaming")
            merged = pl.scan_parquet(parts).sort(ROW).drop(ROW)
        local = work / f"out{Path(out_uri).suffix}"
        if out_format == "csv":
            merged.sink_csv(local, engine="streaming")
        else:
            merged.sink_parquet(local, engine="streaming")
        _publish(storage, local, out_uri)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return LabelRun(stats.rows, buckets, dict(versions), mode, tuple(windows), out_uri)


def _publish(storage: Storage, local: Path, out_uri: str) -> None:
    """Move the finished file into place under a temporary name, then rename it (no reader
    ever sees half a file)."""
    tag = uuid.uuid4().hex[:12]
    if not is_remote(out_uri):
        target = Path(out_uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{tag}")
        shutil.move(str(local), tmp)
        os.replace(tmp, target)
        return
    from jobs.storage.errors import storage_error

    fs, path = storage.filesystem(out_uri), storage.strip_protocol(out_uri)
    remote_tmp = f"{path}.tmp-{tag}"
    try:
        fs.put_file(str(local), remote_tmp)
        fs.mv(remote_tmp, path)
    except Exception as exc:
        raise storage_error(exc, uri=out_uri, storage=storage) from exc


def windows_of(weeks: object) -> tuple[int, ...]:
    """The lookback windows of a setting or a gold commit (``3``, ``"3,1,4"``, ``(3, 1, 4)``),
    checked like ``LOOKBACK_WEEKS``: the first keeps the features' names."""
    from jobs.options import lookback_weeks

    try:
        return lookback_weeks(weeks)
    except ValueError as exc:
        raise LabelsError(f"lookback weeks: {exc}") from None
