"""Reading raw files ahead on threads (BRONZE_READ_WORKERS) changes no result: order, bounds,
errors, and bronze's tables equal to reading one file at a time."""

from __future__ import annotations

import contextvars
import threading
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from jobs.ahead import read_ahead
from jobs.pipeline import run_stage
from jobs.run import RunContext
from tests.conftest import LocalLake

TAG: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="none")


def test_results_come_back_in_the_order_of_the_items_whatever_finishes_first() -> None:
    def slow_first(i: int) -> int:
        time.sleep(0.05 if i % 3 == 0 else 0)
        return i * i

    assert list(read_ahead(slow_first, range(10), workers=3)) == [(i, i * i) for i in range(10)]


def test_no_more_than_workers_reads_run_ahead_of_the_consumer() -> None:
    started: list[int] = []
    seen = 0

    def read(i: int) -> int:
        started.append(i)
        return i

    for i, _ in read_ahead(read, range(20), workers=2):
        time.sleep(0.01)  # let the threads run as far ahead as they may
        assert max(started) <= i + 2, (i, started)
        seen += 1
    assert seen == 20


def test_a_failed_read_is_raised_at_its_item_and_the_reads_not_started_are_cancelled() -> None:
    started: list[int] = []
    release = threading.Event()

    def read(i: int) -> int:
        started.append(i)
        if i == 1:
            raise ValueError("file 1 is broken")
        if i > 1:
            release.wait(5)
        return i

    got = []
    with pytest.raises(ValueError, match="file 1 is broken"):
        for i, _ in read_ahead(read, range(50), workers=2):
            got.append(i)
            release.set()
    assert got == [0]
    assert len(started) < 10  # the other 40-odd files were never read


def test_reads_see_the_callers_context_and_one_worker_reads_in_the_callers_thread() -> None:
    TAG.set("run-7")
    threads: set[str] = set()

    def read(i: int) -> str:
        threads.add(threading.current_thread().name)
        return TAG.get()

    assert [tag for _, tag in read_ahead(read, range(4), workers=2)] == ["run-7"] * 4
    assert all(name.startswith("ahead") for name in threads)
    threads.clear()
    assert [tag for _, tag in read_ahead(read, range(3), workers=1)] == ["run-7"] * 3
    assert threads == {threading.current_thread().name}


def _bronze_tables(lake: LocalLake) -> dict[str, pl.DataFrame]:
    tables = {}
    for name in ("prints", "taps", "pays", "quarantine", "_manifest"):
        frame = lake.table("bronze", name)
        frame = frame.drop([c for c in ("run_id", "ingested_at", "fingerprint") if c in frame.columns])
        tables[name] = frame.sort(frame.columns, nulls_last=True)
    return tables


def test_bronze_reading_ahead_writes_the_tables_of_reading_one_file_at_a_time(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    generate(out_dir=raw, seed=5, scale=0.01, start=date(2020, 11, 2), days=6, bad_lines=9)
    garbage = raw / "prints" / "day=2020-11-03" / "part-9.json"  # rejected whole: all lines bad
    garbage.write_text("".join(f'{{"day": "2020-11-03", "user_id": "x{i}"}}\n' for i in range(150)))
    lakes = {workers: LocalLake(tmp_path / f"workers-{workers}") for workers in (1, 3)}
    results = {}
    for workers, lake in lakes.items():
        ctx = RunContext(lake.settings(lake_raw=str(raw), bronze_read_workers=workers))
        results[workers] = run_stage(ctx, "bronze")
    one, ahead = results[1], results[3]
    assert ahead.rejected == one.rejected == ["prints/day=2020-11-03/part-9.json"]
    assert (ahead.files, ahead.rows_in, ahead.rows_out, ahead.quarantined) == (
        one.files,
        one.rows_in,
        one.rows_out,
        one.quarantined,
    )
    paths = [[d["path"] for d in r.details if "path" in d] for r in (one, ahead)]
    assert paths[1] == paths[0] and len(paths[0]) > 10  # every file judged, in the same order
    tables = {workers: _bronze_tables(lake) for workers, lake in lakes.items()}
    for name, frame in tables[1].items():
        assert frame.height, name
        assert_frame_equal(tables[3][name], frame)
    assert lakes[3].versions() == lakes[1].versions()  # one commit per table either way
