"""Shared fixtures: a throw-away lake per test and helpers that write tiny raw files on the fly."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from jobs.pipeline import run_all
from jobs.run import RunContext
from jobs.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's env file or AWS variables by accident."""
    monkeypatch.setenv("LAKEHOUSE_ENV_FILE", "")
    for var in (
        "LAKE_RAW",
        "LAKE_BRONZE",
        "LAKE_SILVER",
        "LAKE_GOLD",
        "LAKE_EXPORT",
        "LOOKBACK_MODE",
        "LOOKBACK_WEEKS",
        "GOLD_BUCKETS",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(var, raising=False)


class LocalLake:
    """A lake in a temp dir plus helpers to land raw files and run stages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.raw = root / "raw"

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            f"lake_{layer}": str(self.root / layer) for layer in ("raw", "bronze", "silver", "gold")
        }
        base["raw_settle_seconds"] = 0  # files land whole here; tests of settling set it
        return load_settings(**(base | overrides))

    def context(self, **overrides: Any) -> RunContext:
        return RunContext(self.settings(**overrides))

    def run(self, **overrides: Any) -> dict[str, Any]:
        ctx = self.context(**overrides)
        return {r.stage: r for r in run_all(ctx)}

    # -- landing raw files ------------------------------------------------------------------
    def write_text(self, rel: str, text: str) -> Path:
        path = self.raw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def land_events(self, source: str, rows: Iterable[tuple[Any, ...]], name: str) -> Path:
        """rows: (day, user_id, value_prop, position) → one JSON-lines file."""
        lines = [
            json.dumps({"day": str(d), "event_data": {"position": p, "value_prop": v}, "user_id": u})
            for d, u, v, p in rows
        ]
        return self.write_text(f"{source}/{name}", "\n".join(lines) + "\n")

    def land_pays(self, rows: Iterable[tuple[Any, ...]], name: str) -> Path:
        """rows: (pay_date, total, user_id, value_prop) → one CSV file with header."""
        body = "".join(f"{d},{t},{u},{v}\n" for d, t, u, v in rows)
        return self.write_text(f"pays/{name}", "pay_date,total,user_id,value_prop\n" + body)

    # -- reading ----------------------------------------------------------------------------
    def table(self, layer: str, name: str) -> pl.DataFrame:
        return pl.read_delta(str(self.root / layer / name))

    def version(self, layer: str, name: str) -> int | None:
        return self.context().lake.version(str(self.root / layer / name))

    def versions(self) -> dict[str, int | None]:
        return table_versions(self.settings())

    def commit_orphan_bronze_run(self, rel: str = "prints/a.json") -> None:
        """Commit one raw file's bronze rows as a run that crashed before quarantine + manifest."""
        from jobs.bronze.read import parse_chunks, with_lineage
        from jobs.raw.files import Chunk
        from jobs.schemas import BRONZE

        ctx = self.context()
        source = rel.split("/", 1)[0]
        [checked] = parse_chunks(source, [Chunk(1, (self.raw / rel).read_bytes())])
        orphan = with_lineage(checked.lazy().filter(pl.col("reason").is_null()), source_file=rel, ctx=ctx)
        ctx.lake.write(ctx.bronze(source), orphan, schema=BRONZE[source], metadata={"run_id": ctx.run_id})


TABLES = (
    "bronze/prints",
    "bronze/taps",
    "bronze/pays",
    "bronze/quarantine",
    "bronze/_manifest",
    "silver/prints",
    "silver/taps",
    "silver/pays",
    "gold/print_features",
    "gold/_runs",  # the run history: a run with nothing new records nothing either
)


def table_versions(settings: Settings) -> dict[str, int | None]:
    """Version of every pipeline table (None: no table yet), on local disk or S3."""
    ctx = RunContext(settings)
    roots = {"bronze": settings.lake_bronze, "silver": settings.lake_silver, "gold": settings.lake_gold}
    return {t: ctx.lake.version(f"{roots[t.split('/')[0]]}/{t.split('/')[1]}") for t in TABLES}


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


def days(start: date, n: int) -> list[date]:
    from datetime import timedelta

    return [start + timedelta(days=i) for i in range(n)]


Factory = Callable[..., LocalLake]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``main()`` reconfigures the root logger onto the captured stderr: undo it afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
