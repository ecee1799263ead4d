"""The optional ``dask`` compose profile: a scheduler and 2 workers from the project image."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "docker-compose.yml"


def test_dask_profile_has_a_scheduler_two_workers_and_a_dask_pipeline() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    dask = {n: s for n, s in services.items() if "dask" in s.get("profiles", [])}
    assert set(dask) == {"dask-tls", "dask-scheduler", "dask-worker", "pipeline-dask"}
    assert dask["dask-scheduler"]["entrypoint"] == ["dask", "scheduler"]
    worker = dask["dask-worker"]
    assert worker["entrypoint"] == ["dask", "worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "tls://dask-scheduler:8786" in worker["command"]
    assert worker["environment"]["POLARS_MAX_THREADS"] == "1"
    assert all(s["image"] == services["pipeline"]["image"] for s in dask.values())
    run = dask["pipeline-dask"]["command"]
    assert run[run.index("--engine") + 1] == "dask"
    assert run[run.index("--scheduler") + 1] == "tls://dask-scheduler:8786"
    # published ports stay on the host's loopback
    assert all(p.startswith("127.0.0.1:") for s in dask.values() for p in s.get("ports", []))
