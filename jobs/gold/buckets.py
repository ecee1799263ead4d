"""One gold build, user bucket by user bucket: the path both engines share.

A build rebuilds some weeks of gold from fixed silver versions. Its users are split into
``buckets`` by ``user_id % buckets`` so memory holds one bucket at a time; each bucket is
computed (:func:`compute_bucket`), audited, and written as Parquet files of the gold table that
no reader sees yet (:func:`write_bucket`). When every bucket is written, :func:`commit_build`
publishes them in ONE Delta commit that replaces the rebuilt weeks' partitions (or the whole
table). If anything fails first, :func:`remove_build_files` deletes this build's files and the
table version is unchanged. The local engine (:mod:`jobs.gold.job`) runs the buckets in this
process, the Dask engine (:mod:`jobs.gold.distributed`) as one task per bucket on a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from jobs.gold.features import build_features
from jobs.schemas import GOLD_PARTITION, GOLD_TABLE, SILVER, SOURCES, gold_schema
from jobs.storage import join
from jobs.tables import Lake
from jobs.tables.external import AddActionDict, commit_data_files, remove_data_files, write_data_files
from jobs.weeks import Mode, history_range, week_start


@dataclass(frozen=True)
class GoldBuild:
    """Everything the buckets of one gold build share (plain data: travels to workers)."""

    silver_root: str
    gold_root: str
    silver_versions: Mapping[str, int]  # -1: the source has no silver table yet
    silver_commit_ts: Mapping[str, int]  # when each of those versions was committed (ms)
    weeks: tuple[date, ...]  # sorted Mondays
    is_full: bool  # replaces the whole table, not only the weeks' partitions
    buckets: int
    packed: bool  # the packed-key plan of build_features fits these users and weeks
    mode: Mode
    windows: tuple[int, ...]  # the lookback windows in weeks, the primary first (LOOKBACK_WEEKS)
    run_id: str

    @property
    def n_weeks(self) -> int:
        """The widest window: the history every window's rows need."""
        return max(self.windows)

    @property
    def schema(self) -> pl.Schema:
        """The gold contract of this build's windows."""
        return gold_schema(windows=self.windows)

    @property
    def uri(self) -> str:
        return join(self.gold_root, GOLD_TABLE)

    @property
    def prefix(self) -> str:
        """File name prefix of this build's data files (to find them again for cleanup)."""
        return f"part-{self.run_id}"

    @property
    def partitions(self) -> list[str] | None:
        """Gold partitions the commit replaces (None: the whole table)."""
        return None if self.is_full else [w.isoformat() for w in self.weeks]

    def bucket_of(self) -> pl.Expr:
        """A row's user bucket: ``user_id % buckets``."""
        return pl.col("user_id") % self.buckets

    def inputs(
        self, lake: Lake, bucket: int | None = None, *, sources: Sequence[str] = SOURCES
    ) -> dict[str, pl.LazyFrame]:
        """Silver rows the weeks need (their lookback history), of one bucket or all users."""
        first, end = history_range(self.weeks, n_weeks=self.n_weeks)
        wanted = (pl.col("day") >= first) & (pl.col("day") < end)
        if bucket is not None:
            wanted &= self.bucket_of() == bucket
        frames = {}
        for source in sources:
            version = self.silver_versions.get(source, -1)
            if version < 0:
                frames[source] = pl.LazyFrame(schema=SILVER[source])
            else:
                scan = lake.scan(join(self.silver_root, source), version=version)
                frames[source] = scan.filter(wanted)
        return frames

    def target_prints(self, lake: Lake) -> pl.LazyFrame:
        """The silver prints of the rebuilt weeks (each one gold row), with their ``bucket``:
        what the gold audit reconciles each bucket's rows with, counted in one scan."""
        in_weeks = week_start(pl.col("day")).is_in(pl.Series(self.weeks, dtype=pl.Date).implode())
        return (
            self.inputs(lake, sources=["prints"])["prints"]
            .filter(in_weeks)
            .select(self.bucket_of().alias("bucket"))
        )


def compute_bucket(
    build: GoldBuild, lake: Lake, bucket: int, *, audit: bool = False, first_day: date | None = None
) -> tuple[pl.DataFrame, dict[str, pl.LazyFrame]]:
    """One bucket's gold rows, and the silver inputs they were computed from (for the audit);
    with ``audit``, the rows also carry the first-weeks audit columns of
    :func:`~jobs.gold.features.build_features` (the audit drops them before the write)."""
    inputs = build.inputs(lake, bucket)
    frame = build_features(
        prints=inputs["prints"],
        taps=inputs["taps"],
        pays=inputs["pays"],
        weeks=list(build.weeks),
        mode=build.mode,
        windows=build.windows,
        packed=build.packed,
        audit=audit,
        first_day=first_day,
    ).collect(engine="streaming")
    return frame, inputs


def write_bucket(build: GoldBuild, lake: Lake, bucket: int, frame: pl.DataFrame) -> list[AddActionDict]:
    """Write one bucket's rows as uncommitted data files; their add actions."""
    if not frame.height:
        return []
    return write_data_files(
        lake,
        build.uri,
        frame,
        schema=build.schema,
        partition_by=GOLD_PARTITION,
        prefix=f"{build.prefix}-b{bucket:05d}",
    )


def commit_build(
    build: GoldBuild, lake: Lake, actions: Sequence[AddActionDict], *, metadata: Mapping[str, str]
) -> int | None:
    """Publish every bucket's files in one commit (a full build with no rows commits nothing)."""
    if not actions and build.is_full:
        return None
    return commit_data_files(
        lake,
        build.uri,
        actions,
        schema=build.schema,
        partition_by=GOLD_PARTITION,
        partitions=build.partitions,
        metadata=metadata,
    )


def remove_build_files(build: GoldBuild, lake: Lake) -> int:
    """Delete this build's uncommitted files (after a failure); how many there were."""
    return remove_data_files(lake, build.uri, f"{GOLD_PARTITION}=*/{build.prefix}-*")
