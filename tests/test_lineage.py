"""OpenLineage events of a real run on a tmp lake: a local HTTP receiver and the file transport
get START and COMPLETE (or FAIL) per stage; a backend that is down or slow fails nothing; with
nothing configured the client is never imported."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jobs.cli import main
from jobs.errors import DataError
from jobs.lineage import JOB_PREFIX, dataset_name, stage_run_id
from jobs.pipeline import run_all, run_stage
from jobs.stages import STAGES
from tests.conftest import LocalLake
from tests.quality.test_pipeline_quality import (
    ND,
    append_crafted_silver_pays,
    imported_on_a_noop_run,
    land_small,
    use_lake_env,
)


class Receiver:
    def __init__(self, delay: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver.events.append(json.loads(body))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture(autouse=True)
def _no_lineage_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(var)
    yield
    for var in [k for k in os.environ if k.startswith("OPENLINEAGE__")]:
        del os.environ[var]


def _receiver(delay: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(delay)
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _receiver()


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    yield from _receiver(delay=5.0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _by(events: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["job"]["name"].removeprefix(JOB_PREFIX), e["eventType"]): e for e in events}


def _check_run(lake: LocalLake, events: list[dict[str, Any]], results: dict[str, Any], run_id: str) -> None:
    assert len(events) == 2 * len(STAGES)
    by = _by(events)
    assert set(by) == {(s, t) for s in STAGES for t in ("START", "COMPLETE")}
    for s in STAGES:
        start, done = by[(s, "START")], by[(s, "COMPLETE")]
        assert start["run"]["runId"] == done["run"]["runId"] == stage_run_id(run_id, s)
        uuid.UUID(done["run"]["runId"])
        assert done["run"]["facets"]["lakehouse"]["runId"] == run_id
        assert done["job"]["namespace"] == "lakehouse"
    names = {
        s: ([i["name"] for i in by[(s, "COMPLETE")]["inputs"]], by[(s, "COMPLETE")]["outputs"])
        for s in STAGES
    }
    root = str(lake.root)
    assert names["bronze"][0] == [f"{root}/raw/{s}" for s in ("prints", "taps", "pays")]
    assert {o["namespace"] for s in STAGES for o in names[s][1]} == {"file"}
    bronze_out = {o["name"]: o for o in names["bronze"][1]}
    assert f"{root}/bronze/prints" in bronze_out and f"{root}/bronze/_manifest" in bronze_out
    assert names["silver"][0] == [f"{root}/bronze/{s}" for s in ("prints", "taps", "pays")]
    assert names["gold"][0] == [f"{root}/silver/{s}" for s in ("prints", "taps", "pays")]
    assert names["export"][0] == [f"{root}/gold/print_features"]
    assert [o["name"] for o in names["export"][1]] == [
        f"{root}/gold/export/final.parquet",
        f"{root}/gold/export/final.csv",
    ]
    # the Delta version each output got, rows written, the quality gate's assertions
    prints = bronze_out[f"{root}/bronze/prints"]
    assert prints["facets"]["version"]["datasetVersion"] == str(results["bronze"].versions["prints"])
    assert prints["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert {a["assertion"] for a in prints["facets"]["dataQualityAssertions"]["assertions"]}
    (gold,) = names["gold"][1]
    assert gold["name"] == f"{root}/gold/print_features"
    assert gold["facets"]["version"]["datasetVersion"] == str(results["gold"].versions["print_features"])
    assert gold["outputFacets"]["outputStatistics"]["rowCount"] == results["gold"].rows_out == 3
    checks = gold["facets"]["dataQualityAssertions"]["assertions"]
    assert any(a["assertion"] == "prior_amount_non_negative" and a["success"] for a in checks)
    silver = {o["name"]: o for o in names["silver"][1]}
    assert silver[f"{root}/silver/pays"]["facets"]["version"]["datasetVersion"] == str(
        results["silver"].versions["pays"]
    )
    schema = by[("gold", "START")]["outputs"][0]["facets"]["schema"]["fields"]
    assert {"user_id", "value_prop", "week_start"} <= {f["name"] for f in schema}


def test_http_receiver_gets_start_and_complete_per_stage(
    lake: LocalLake, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_small(lake)
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    ctx = lake.context()
    results = {r.stage: r for r in run_all(ctx)}
    _check_run(lake, receiver.events, results, ctx.run_id)
    assert not any("lineage" in d for r in results.values() for d in r.details)


def test_file_transport_from_openlineage_config(
    lake: LocalLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_small(lake)
    log = tmp_path / "events.jsonl"
    config = tmp_path / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {log}\n  append: true\n")
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    ctx = lake.context()
    results = {r.stage: r for r in run_all(ctx)}
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    _check_run(lake, events, results, ctx.run_id)


@pytest.mark.parametrize("backend", ["down", "slow"])
def test_a_backend_down_or_slow_fails_nothing_and_the_summary_says_so(
    lake: LocalLake,
    slow_receiver: Receiver,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    land_small(lake)
    use_lake_env(lake, monkeypatch)
    url = slow_receiver.url if backend == "slow" else f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    monkeypatch.setenv("LINEAGE_TIMEOUT_SECONDS", "1")
    started = time.monotonic()
    assert main(["run"]) == 0
    assert time.monotonic() - started < 60
    out = capsys.readouterr().out
    assert f"lineage: {2 * len(STAGES)} event(s) could not be sent to {url}" in out
    assert lake.version("gold", "print_features") is not None


def test_slow_backend_costs_the_run_at_most_its_timeout(
    lake: LocalLake, slow_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_small(lake)
    lake.run()  # the work is done: the next run is a no-op, its time is the lineage wait
    monkeypatch.setenv("OPENLINEAGE_URL", slow_receiver.url)
    started = time.monotonic()
    results = lake.run(lineage_timeout_seconds=1)
    assert time.monotonic() - started < 1 + 3  # the budget, plus a no-op run's own seconds
    assert results["export"].details[-1]["lineage"]["unsent"] == 2 * len(STAGES)


def test_a_failed_gold_gate_sends_fail(
    lake: LocalLake, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_small(lake)
    lake.run()
    append_crafted_silver_pays(lake, [(ND + timedelta(days=1), "-50.00", 1, "point")])
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    ctx = lake.context()
    with pytest.raises(DataError):
        run_stage(ctx, "gold")
    by = _by(receiver.events)
    assert set(by) == {("gold", "START"), ("gold", "FAIL")}
    fail = by[("gold", "FAIL")]
    assert fail["run"]["runId"] == stage_run_id(ctx.run_id, "gold")
    assert "prior_amount_non_negative" in fail["run"]["facets"]["errorMessage"]["message"]


def test_the_orchestrators_task_is_the_parent(
    lake: LocalLake, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.orchestration import RunIdentity, run_stage_task

    land_small(lake)
    use_lake_env(lake, monkeypatch)
    monkeypatch.setenv("RAW_SETTLE_SECONDS", "0")
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    parent = {"namespace": "default", "name": "lakehouse.bronze", "run_id": str(uuid.uuid4())}
    summary = run_stage_task("bronze", {}, RunIdentity("manual__2026-01-01", lineage_parent=parent))
    assert "lineage" not in summary
    for event in receiver.events:
        facet = event["run"]["facets"]["parent"]
        assert facet["run"]["runId"] == parent["run_id"]
        assert (facet["job"]["namespace"], facet["job"]["name"]) == ("default", "lakehouse.bronze")
        assert event["job"]["name"] == "lakehouse.stage.bronze" != facet["job"]["name"]


def test_dataset_names_follow_the_naming_spec() -> None:
    assert dataset_name("s3://lake/bronze/prints") == ("s3://lake", "bronze/prints")
    assert dataset_name("/data/lake/bronze/prints") == ("file", "/data/lake/bronze/prints")


def test_nothing_configured_imports_nothing_on_a_noop_run(lake: LocalLake) -> None:
    land_small(lake)
    lake.run()
    assert imported_on_a_noop_run(lake, "openlineage") == "False 0"
