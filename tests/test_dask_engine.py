"""The Dask engine end to end: bronze, silver and gold on a real 2-worker ``LocalCluster`` (one
for the whole module) write exactly the tables the local engine writes from the same raw data
(bad lines, a rejected file and a corrected re-delivery included), one commit per table, and a
failed task leaves no table version and no file behind. Gold on Dask alone: equal to the local
engine's, one commit per build, atomic on a failed bucket, idempotent, only the affected weeks
replaced. Importing the product never imports Dask.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from infra.generator import generate
from jobs import cluster as dask_cluster
from jobs.errors import DataError, PipelineError
from jobs.pipeline import run_stage
from jobs.run import RunContext
from jobs.summary import StageResult
from tests.conftest import TABLES, LocalLake, table_versions
from tests.reference import canonical

distributed = pytest.importorskip("distributed")

START, DAYS, SCALE = date(2020, 11, 2), 10, 0.01
GOLD_DAYS = 21  # the gold-only test: three whole weeks and a fourth
LINEAGE = ("run_id", "ingested_at")
STAGES = ("bronze", "silver", "gold")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The local cluster's address; this process's Dask config holds its per-run certificate
    (as compose hands the TLS files to ``pipeline-dask``), so DASK_SCHEDULER clients get in."""
    import dask

    from jobs.cluster import local_cluster

    with local_cluster() as cluster, dask.config.set(client_tls(cluster.security)):
        yield cluster.scheduler_address


def client_tls(security: object) -> dict[str, object]:
    tls = security.get_tls_config_for_role("client")  # type: ignore[attr-defined]
    return {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": tls["ca_file"],
        "distributed.comm.tls.client.cert": tls["cert"],
        "distributed.comm.tls.client.key": tls["key"],
    }


def test_the_local_cluster_speaks_tls_and_refuses_a_client_without_its_certificate() -> None:
    """jobs.cluster's own cluster (ENGINE=dask, no DASK_SCHEDULER): another local user who finds
    the port gets nothing, with a plain client or TLS without the run's certificate."""
    import socket
    import ssl

    from distributed import Client

    from jobs.cluster import local_cluster

    with local_cluster() as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        host, port = address.removeprefix("tls://").rsplit(":", 1)
        with pytest.raises((OSError, TimeoutError)):  # plain TCP: the comm never opens
            Client(f"tcp://{host}:{port}", timeout="3s")
        # TLS without a client certificate (server not verified, as an intruder would): the
        # scheduler requires the run's certificate and ends the handshake
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            pytest.raises((ssl.SSLError, ConnectionError)),
            socket.create_connection((host, int(port)), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"\x00" * 8)
            if not tls.recv(1):
                raise ConnectionError("closed by the scheduler")
        # with the certificate (what jobs.cluster.client hands its Client) it works
        with Client(cluster, timeout="10s") as ok:
            assert len(ok.scheduler_info()["workers"]) == 2


def _table(lake: LocalLake, table: str) -> pl.DataFrame:
    """A table's rows in a canonical order, without the columns that differ by design."""
    layer, name = table.split("/")
    frame = lake.table(layer, name)
    if table == "gold/_runs":  # ids and timings differ by design, the accounting of what landed not
        kept = ["stage", "status", "files", "rows_in", "rows_out", "quarantined", "checks", "checks_failed"]
        return frame.select(kept).sort(kept, nulls_last=True)
    if layer == "gold":
        return canonical(frame)
    frame = frame.drop([c for c in LINEAGE if c in frame.columns])
    return frame.sort(frame.columns, nulls_last=True)


def _run(lake: LocalLake, raw: Path, **settings: object) -> dict[str, StageResult]:
    ctx = RunContext(lake.settings(lake_raw=str(raw), **settings))
    return {stage: run_stage(ctx, stage) for stage in STAGES}


def _same_results(local: dict[str, StageResult], dask: dict[str, StageResult]) -> None:
    """The stages report the same accounting and the same quality checks."""
    for stage in STAGES:
        a, b = local[stage].as_dict(), dask[stage].as_dict()
        for key in ("files", "rows_in", "rows_out", "quarantined", "rejected", "drift", "versions"):
            assert a.get(key) == b.get(key), (stage, key)
        checks = [_checks(r) for r in (local[stage], dask[stage])]
        assert checks[0] == checks[1], stage


def _checks(result: StageResult) -> list[str]:
    """A stage's quality summary and per-file outcomes, without timings and locations."""
    found = []
    for detail in result.details:
        quality = dict(detail.get("quality") or {})
        if not quality:
            found.append(json.dumps(detail, sort_keys=True, default=str))  # a raw file's outcome
            continue
        for key in ("report", "validation_seconds"):
            quality.pop(key, None)
        found.append(json.dumps(quality, sort_keys=True, default=str))
    return sorted(found)


def _same_tables(local: LocalLake, dask: LocalLake) -> None:
    assert {t: v is None for t, v in local.versions().items()} == {
        t: v is None for t, v in dask.versions().items()
    }
    for table in TABLES:
        if local.versions()[table] is not None:
            try:
                assert_frame_equal(_landed(dask, table), _landed(local, table))
            except AssertionError as exc:
                raise AssertionError(f"{table} differs: {exc}") from None


def _landed(lake: LocalLake, table: str) -> pl.DataFrame:
    """A table as :func:`_table` reads it, without the history's failed runs (only Dask's failed)."""
    frame = _table(lake, table)
    return frame.filter(pl.col("status") != "failed") if table == "gold/_runs" else frame


def _data_versions(lake: LocalLake) -> dict[str, int | None]:
    """Every table's version but the run history's, which records failed runs too (by design)."""
    return {t: v for t, v in lake.versions().items() if t != "gold/_runs"}


def _orphans(root: Path) -> list[Path]:
    """Data files under the lake that no commit of their table ever added."""
    found = []
    for log in root.rglob("_delta_log"):
        table = log.parent
        added = {
            json.loads(line)["add"]["path"]
            for commit in log.glob("*.json")
            for line in commit.read_text().splitlines()
            if '"add"' in line and "add" in json.loads(line)
        }
        found += [
            p
            for p in table.rglob("*.parquet")
            if "_delta_log" not in p.parts and p.relative_to(table).as_posix() not in added
        ]
    return sorted(found)


@pytest.mark.slow
def test_dask_pipeline_equals_local_commits_once_and_fails_atomically(
    tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    local, dask = LocalLake(tmp_path / "local"), LocalLake(tmp_path / "dask")
    on_dask = {"engine": "dask", "dask_scheduler": scheduler, "gold_buckets": 2}
    generate(out_dir=raw, seed=11, scale=SCALE, start=START, days=DAYS, bad_lines=12)
    garbage = raw / "prints" / "day=2020-11-03" / "part-9.json"  # rejected whole: all lines bad
    garbage.write_text("".join(f'{{"day": "2020-11-03", "user_id": "x{i}"}}\n' for i in range(150)))

    results = _run(local, raw), _run(dask, raw, **on_dask)
    _same_results(*results)
    assert results[1]["bronze"].rejected == ["prints/day=2020-11-03/part-9.json"]
    assert results[1]["bronze"].quarantined > 150  # the rejected file and the bad lines
    _same_tables(local, dask)
    # one commit per table and run, as the local engine makes
    assert _data_versions(dask) == _data_versions(local)
    assert _orphans(dask.root) == []  # the rejected file's worker files are gone
    for layer in ("bronze", "silver"):  # written by the workers, committed by the driver
        assert list((dask.root / layer).rglob(f"{layer}-*.parquet")), layer

    # a failed task: nothing committed anywhere, no file of the run left in the lake
    generate(out_dir=raw, seed=11, scale=SCALE, start=START + timedelta(days=DAYS), days=2)
    before = _data_versions(dask)
    ctx = RunContext(dask.settings(lake_raw=str(raw), **on_dask))
    with monkeypatch.context() as hook:
        hook.setattr(dask_cluster, "FAIL_TASK", 1)  # the second raw file's task raises on its worker
        with pytest.raises(PipelineError, match=r"task 2 of \d+\) failed .*nothing was committed") as failed:
            run_stage(ctx, "bronze")
    assert "\n" not in str(failed.value)
    assert _data_versions(dask) == before
    failures = _table(dask, "gold/_runs").filter(pl.col("status") == "failed")
    assert failures.select("stage", "rows_out").rows() == [("bronze", None)]  # kept, with no rows
    assert _orphans(dask.root) == []

    # a corrected re-delivery (and the two new days): its rows replaced in one commit per table
    corrected = raw / "taps" / "day=2020-11-05" / "part-0.json"
    lines = corrected.read_text().splitlines(keepends=True)
    corrected.write_text("".join(lines[: len(lines) // 2]))
    local_results = _run(local, raw)
    settings = dask.settings(lake_raw=str(raw), **on_dask)
    dask_results = {"bronze": run_stage(RunContext(settings), "bronze")}
    # a failed silver day task: no silver version, no file left; the next run rebuilds
    before = _data_versions(dask)
    failing = RunContext(dask.settings(lake_raw=str(raw), **on_dask))
    with monkeypatch.context() as hook:
        hook.setattr(dask_cluster, "FAIL_TASK", 0)  # the first silver day task raises on its worker
        with pytest.raises(PipelineError, match=r"silver on Dask: .* \(task 1 of \d+\) failed .*nothing"):
            run_stage(failing, "silver")
    assert _data_versions(dask) == before
    assert _orphans(dask.root) == []
    ctx = RunContext(settings)
    dask_results |= {stage: run_stage(ctx, stage) for stage in ("silver", "gold")}
    _same_results(local_results, dask_results)
    _same_tables(local, dask)
    assert _data_versions(dask) == _data_versions(local)
    manifest = _table(dask, "bronze/_manifest")
    assert manifest.filter(pl.col("replaces").is_not_null())["path"].to_list() == [
        "taps/day=2020-11-05/part-0.json"
    ]
    assert _orphans(dask.root) == []  # every worker file committed or removed


def test_table_versions_cover_every_table(tmp_path: Path) -> None:
    assert set(table_versions(LocalLake(tmp_path).settings())) == set(TABLES)


def _land_prints(lake: LocalLake, name: str) -> None:
    rows = [(date(2020, 11, 2), u, "cash", 1) for u in (1, 2, 3)]
    lake.land_events("prints", rows, name)


@pytest.mark.slow
def test_dask_bronze_gate_failure_rolls_back_like_the_local_engine(lake: LocalLake, scheduler: str) -> None:
    _land_prints(lake, "a.json")
    lake.write_text("taps/b.json", "not json\n")  # a small taps file, fully quarantined
    on_dask = {"engine": "dask", "dask_scheduler": scheduler}
    blocking = {"quality_severity": "quarantined_fraction_per_small_file=failure", **on_dask}
    with pytest.raises(DataError, match=r"bronze quality gate failed on taps.*prints rows rolled back"):
        run_stage(lake.context(**blocking), "bronze")
    assert lake.table("bronze", "prints").height == 0  # committed, then rolled back
    assert lake.version("bronze", "_manifest") is None
    assert _orphans(lake.root) == []  # the taps files the gate refused are gone
    (lake.raw / "taps" / "b.json").unlink()  # the fix: remove the broken file
    run_stage(lake.context(**blocking), "bronze")
    assert lake.table("bronze", "prints").height == 3


@pytest.mark.slow
def test_a_dask_run_interrupted_before_its_manifest_is_rolled_back_by_the_next_run(
    lake: LocalLake, scheduler: str
) -> None:
    _land_prints(lake, "a.json")
    run_stage(lake.context(engine="dask", dask_scheduler=scheduler), "bronze")  # creates the table
    for table in ("_manifest", "quarantine"):  # as if it died before committing them
        shutil.rmtree(lake.root / "bronze" / table, ignore_errors=True)
    run_stage(lake.context(), "bronze")  # rolls the rows of the unknown run back, takes a.json again
    assert lake.table("bronze", "prints").height == 3
    assert lake.table("bronze", "_manifest").height == 1


@pytest.mark.slow
def test_dask_replaces_a_corrected_file_inside_files_the_local_engine_wrote(
    tmp_path: Path, scheduler: str
) -> None:
    landing = LocalLake(tmp_path)  # raw files under tmp_path/raw
    day = date(2020, 11, 2)
    landing.land_events("prints", [(day, u, "cash", 1) for u in (1, 2, 3)], "a.json")
    landing.land_events("prints", [(day, u, "cash", 2) for u in (4, 5)], "b.json")
    local, dask = LocalLake(tmp_path / "local"), LocalLake(tmp_path / "dask")
    for lake in (local, dask):  # one local run: a.json and b.json share a data file
        run_stage(RunContext(lake.settings(lake_raw=str(landing.raw))), "bronze")
    landing.land_events("prints", [(day, u, "cash", 3) for u in (1, 9)], "a.json")  # corrected
    run_stage(RunContext(local.settings(lake_raw=str(landing.raw))), "bronze")
    on_dask = {"engine": "dask", "dask_scheduler": scheduler}
    run_stage(RunContext(dask.settings(lake_raw=str(landing.raw), **on_dask)), "bronze")
    _same_tables(local, dask)
    assert _data_versions(dask) == _data_versions(local)
    assert _table(dask, "bronze/prints")["user_id"].sort().to_list() == [1, 4, 5, 9]
    assert list((dask.root / "bronze" / "prints").glob("bronze-*-rewritten-*.parquet"))  # b.json's rows
    assert _orphans(dask.root) == []


def _gold(lake: LocalLake, name: str) -> pl.DataFrame:
    return canonical(lake.table(name, "print_features"))


def _gold_stage(lake: LocalLake, gold: str, **settings: object) -> None:
    ctx = RunContext(lake.settings(lake_gold=str(lake.root / gold), **settings))
    run_stage(ctx, "gold")


def _files_of_run(table: Path, run_id: str) -> list[Path]:
    return list(table.glob(f"week_start=*/part-{run_id}-*"))


@pytest.mark.slow
def test_dask_gold_equals_local_commits_once_is_atomic_and_idempotent(
    lake: LocalLake, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(out_dir=lake.raw, seed=7, scale=SCALE, start=START, days=GOLD_DAYS)
    local_ctx = lake.context()
    for stage in STAGES:
        run_stage(local_ctx, stage)
    dask = {"engine": "dask", "dask_scheduler": scheduler, "gold_buckets": 3}

    # first build on Dask creates the table in one commit, equal to the local engine's
    _gold_stage(lake, "gold_dask", **dask)
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))
    table = lake.root / "gold_dask" / "print_features"
    assert lake.version("gold_dask", "print_features") == 0
    first = lake.version("gold_dask", "print_features")

    # a failing bucket: nothing committed, version unchanged, this run's files removed
    ctx = RunContext(lake.settings(lake_gold=str(lake.root / "gold_dask"), **dask))
    with monkeypatch.context() as hook:
        hook.setattr(dask_cluster, "FAIL_TASK", 1)  # the second user bucket's task raises on its worker
        with pytest.raises(PipelineError, match=r"bucket 2 of 3 failed.*nothing was committed"):
            run_stage(ctx, "gold", full=True)
    assert lake.version("gold_dask", "print_features") == first
    assert _files_of_run(table, ctx.run_id) == []
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))

    # a re-run (full rebuild) writes identical rows in one more commit
    rerun = RunContext(lake.settings(lake_gold=str(lake.root / "gold_dask"), **dask))
    run_stage(rerun, "gold", full=True)
    assert lake.version("gold_dask", "print_features") == first + 1
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))

    # nothing new: no commit at all
    _gold_stage(lake, "gold_dask", **dask)
    assert lake.version("gold_dask", "print_features") == first + 1

    # one more day: only the affected weeks are replaced (overwrite with partition filters)
    generate(out_dir=lake.raw, seed=7, scale=SCALE, start=START + timedelta(days=GOLD_DAYS), days=1)
    for stage in STAGES:
        run_stage(lake.context(), stage)
    _gold_stage(lake, "gold_dask", **dask)
    assert lake.version("gold_dask", "print_features") == first + 2
    assert_frame_equal(_gold(lake, "gold_dask"), _gold(lake, "gold"))
    history = pl.read_delta(str(table)).select("week_start").unique().height
    assert history == len({START + timedelta(days=7 * i) for i in range(4)})


def test_jobs_import_without_touching_dask() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jobs.cli, jobs.gold.job, jobs.pipeline; "
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_gold_with_several_windows_equals_local_and_is_audited_per_window(
    lake: LocalLake, scheduler: str
) -> None:
    """LOOKBACK_WEEKS=3,1,4 on Dask: the workers write the windows' columns, the stage audits
    the rows read back (audit columns re-derived from silver, checked for every window) and commits the
    same table as the local engine."""
    generate(out_dir=lake.raw, seed=7, scale=SCALE, start=START, days=GOLD_DAYS)
    windows = {"lookback_weeks": "3,1,4"}
    local_ctx = lake.context(**windows)
    for stage in STAGES:
        run_stage(local_ctx, stage)
    _gold_stage(lake, "gold_dask", engine="dask", dask_scheduler=scheduler, gold_buckets=2, **windows)
    dask_gold = _gold(lake, "gold_dask")
    assert "prior_clicks_4w" in dask_gold.columns and "prior_amount_1w" in dask_gold.columns
    assert_frame_equal(dask_gold, _gold(lake, "gold"))
