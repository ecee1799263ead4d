"""``python -m jobs plan``: what the next run would do, writing nothing, equal to what it does."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.pipeline import run_all
from jobs.plan import plan_run
from jobs.schemas import SOURCES
from tests.conftest import LocalLake, days
from tests.test_cli import cli

D = date(2020, 11, 2)  # a Monday


def land_week(lake: LocalLake, start: date, name: str, user: int = 1) -> None:
    lake.land_events("prints", [(d, user, "cash", 1) for d in days(start, 7)], f"{name}.json")
    lake.land_events("taps", [(start, user, "cash", 1)], f"{name}.json")
    lake.land_pays([(start, "10.50", user, "cash")], f"{name}.csv")


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under the lake (raw included) with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def what_the_run_did(lake: LocalLake, ctx: Any, results: dict[str, Any]) -> dict[str, Any]:
    """From the run's summary and commit metadata: files ingested, silver days, gold weeks."""
    bronze = [o for o in results["bronze"].details if "status" in o]
    silver: dict[str, list[str]] = {}
    for source in SOURCES:
        for commit in ctx.lake.history(ctx.silver(source)):
            if commit.get("run_id") == ctx.run_id and "days" in commit:
                silver[source] = [d for d in commit["days"].split(",") if d]
    gold = next((d for d in results["gold"].details if "weeks" in d), {"weeks": [], "full": False})
    return {
        "ingested": {o["path"] for o in bronze if o["status"] == "ingested"},
        "rejected": {o["path"] for o in bronze if o["status"] == "rejected"},
        "duplicates": {o["path"] for o in bronze if o["status"] == "duplicate"},
        "silver": silver,
        "weeks": list(gold["weeks"]),
        "full": bool(gold["full"]),
    }


def plan_then_run(
    lake: LocalLake, *, rebuild: list[date] | None = None, full: bool = False, **overrides: Any
) -> dict[str, Any]:
    """Plan, check nothing was written, run, check the run did exactly what was planned."""
    before, versions = listing(lake.root), lake.versions()
    plan = plan_run(lake.context(**overrides), rebuild=rebuild, full=full)
    assert listing(lake.root) == before, "the plan wrote something"
    assert lake.versions() == versions
    ctx = lake.context(**overrides)
    did = what_the_run_did(lake, ctx, {r.stage: r for r in run_all(ctx, rebuild=rebuild, full=full)})
    bronze = plan.as_dict()["bronze"]
    assert did["ingested"] == plan.ingest
    assert did["rejected"] == {r["path"] for s in bronze.values() for r in s["rejected"]}
    assert did["duplicates"] == {d["path"] for s in bronze.values() for d in s["duplicates"]}
    assert did["silver"] == {s: d for s, d in plan.silver.items() if d}
    assert did["weeks"] == plan.gold_weeks
    assert did["full"] == plan.gold.get("full", False) or not did["weeks"]
    return plan.as_dict()


def test_plan_writes_nothing_not_even_on_a_lake_no_run_has_written(lake: LocalLake) -> None:
    land_week(lake, D, "w1")
    before = listing(lake.root)
    plan = plan_run(lake.context())
    assert listing(lake.root) == before  # no table, no manifest, no _lease.json
    assert not (lake.root / "bronze").exists()
    assert plan.gold["weeks"] == ["2020-11-02"] and plan.gold["why"] == "first build"


@pytest.mark.parametrize("mode", ["calendar", "rolling"])
def test_plan_equals_what_the_next_run_does(lake: LocalLake, mode: str) -> None:
    settings = {"lookback_mode": mode}
    land_week(lake, D, "w1")
    land_week(lake, D + timedelta(days=14), "w3")
    first = plan_then_run(lake, **settings)
    assert first["gold"]["full"] and first["gold"]["why"] == "first build"

    # new files: a new week, and a late one (prints of the week between)
    land_week(lake, D + timedelta(days=28), "w5", user=2)
    lake.land_events("prints", [(D + timedelta(days=8), 3, "cash", 0)], "late.json")
    new = plan_then_run(lake, **settings)
    assert new["bronze"]["prints"]["new"] == ["prints/late.json", "prints/w5.json"]
    assert "new prints" in new["gold"]["reasons"]["2020-11-09"]
    assert "new priors" in new["gold"]["reasons"]["2020-11-16"]  # the late prints are its priors

    # a correction and a duplicate delivery
    lake.land_events("prints", [(D + timedelta(days=1), 1, "link_cobro", 2)], "w1.json")
    copy = (lake.raw / "taps/w3.json").read_bytes()
    (lake.raw / "taps/copy/w3.json").parent.mkdir(parents=True)
    (lake.raw / "taps/copy/w3.json").write_bytes(copy)
    fixed = plan_then_run(lake, **settings)
    assert fixed["bronze"]["prints"]["changed"][0]["path"] == "prints/w1.json"
    assert fixed["bronze"]["taps"]["duplicates"] == [{"path": "taps/copy/w3.json", "of": "taps/w3.json"}]
    assert "2020-11-02" in fixed["silver"]["prints"]  # the replaced rows' days too

    # a file rejected whole (not text), and requested weeks with nothing else new
    (lake.raw / "pays/binary.csv").write_bytes(b"pay_date,total\x00\x00\n" * 5)
    rejected = plan_then_run(lake, rebuild=[D + timedelta(days=3)], **settings)
    assert rejected["bronze"]["pays"]["rejected"][0]["path"] == "pays/binary.csv"
    assert rejected["gold"]["reasons"]["2020-11-02"] == ["requested"]

    # a changed lookback: every week, and why
    changed = plan_then_run(lake, lookback_weeks="2", **settings)
    assert changed["gold"]["full"] and changed["gold"]["why"] == "lookback settings changed"

    # a deleted file whose rows are retracted
    (lake.raw / "prints/late.json").unlink()
    gone = plan_then_run(lake, lookback_weeks="2", raw_on_delete="retract", **settings)
    assert gone["bronze"]["prints"]["gone"][0]["path"] == "prints/late.json"
    assert gone["silver"]["prints"] == ["2020-11-10"]

    # nothing new: nothing planned, nothing done
    idle = plan_then_run(lake, lookback_weeks="2", **settings)
    assert idle["gold"]["weeks"] == [] and not any(s["ingest"] for s in idle["bronze"].values())


def test_rows_of_an_interrupted_run_are_planned_as_the_run_rolls_them_back(lake: LocalLake) -> None:
    land_week(lake, D, "w1")
    lake.run()
    lake.land_events("prints", [(D + timedelta(days=9), 5, "cash", 0)], "crashed.json")
    lake.commit_orphan_bronze_run("prints/crashed.json")  # bronze rows, no manifest row
    plan = plan_then_run(lake)
    assert any("interrupted before its manifest" in n for n in plan["notes"])
    assert plan["bronze"]["prints"]["ingest"] == ["prints/crashed.json"]
    assert plan["silver"]["prints"] == ["2020-11-11"]


def test_a_change_under_raw_on_change_skip_or_fail_is_planned_as_such(lake: LocalLake) -> None:
    land_week(lake, D, "w1")
    lake.run()
    lake.land_events("prints", [(D, 1, "link_cobro", 2)], "w1.json")
    skip = plan_run(lake.context(raw_on_change="skip")).as_dict()["bronze"]["prints"]
    assert skip["changed"] == [{"path": "prints/w1.json", "action": "skipped (RAW_ON_CHANGE=skip)"}]
    assert skip["ingest"] == []
    fail = plan_run(lake.context(raw_on_change="fail")).as_dict()["bronze"]["prints"]
    assert "RAW_ON_CHANGE=fail" in fail["stops"]


def test_a_file_still_being_written_is_settling(lake: LocalLake) -> None:
    land_week(lake, D, "w1")
    os.utime(lake.raw / "pays/w1.csv")  # just now
    plan = plan_run(lake.context(raw_settle_seconds=60)).as_dict()
    assert plan["bronze"]["pays"]["settling"] == ["pays/w1.csv"]


def test_maintenance_is_due_after_enough_commits(lake: LocalLake) -> None:
    from jobs.plan import DUE_COMMITS, maintenance_due

    land_week(lake, D, "w0")
    lake.run()
    assert not maintenance_due(lake.context())["due"]
    for i in range(1, DUE_COMMITS):
        land_week(lake, D + timedelta(days=7 * i), f"w{i}")
        lake.run()
    due = maintenance_due(lake.context())
    assert due["due"] and due["tables"]["bronze/prints"] >= DUE_COMMITS


def test_json_shape(lake: LocalLake) -> None:
    land_week(lake, D, "w1")
    plan = json.loads(plan_run(lake.context(), rebuild=[D]).to_json())
    assert set(plan) == {"options", "bronze", "silver", "gold", "maintenance", "notes"}
    assert set(plan["bronze"]) == set(SOURCES)
    assert set(plan["bronze"]["prints"]) == {
        "source",
        "ingest",
        "new",
        "changed",
        "duplicates",
        "settling",
        "rejected",
        "gone",
        "stops",
    }
    assert set(plan["gold"]) == {"weeks", "full", "why", "reasons"}
    assert plan["options"]["rebuild_weeks"] == ["2020-11-02"]
    assert set(plan["maintenance"]) == {"due", "threshold", "tables"}


def test_cli_plan_text_json_and_run_plan(lake: LocalLake) -> None:
    land_week(lake, D, "w1")
    before = listing(lake.root)
    text = cli("plan", root=lake.root)
    assert text.returncode == 0, text.stderr
    assert "bronze prints: 1 to ingest" in text.stdout
    assert "gold: 1 week(s) (full rebuild): first build" in text.stdout
    as_json = cli("plan", "--format", "json", "--weeks", "2020-11-04", root=lake.root)
    assert json.loads(as_json.stdout)["gold"]["weeks"] == ["2020-11-02"]
    dry = cli("run", "--plan", root=lake.root)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == text.stdout
    assert listing(lake.root) == before
