"""How fresh each layer is: ``python -m jobs freshness [--max-age 26h] [--format json]``.

Per layer (bronze, silver, gold) two ages, from the Delta logs only (no data file is read):

- its **newest data**: bronze's newest ``ingested_at``, silver's newest ``day``, gold's newest
  ``week_start`` (over the layer's tables; the ages of ``day`` and ``week_start`` count from
  the start of that day or week, UTC);
- its **last commit that changed rows** (:func:`jobs.tables.commits.changes_rows`: maintenance,
  fences and descriptions do not count), the last time a run wrote something there.

A layer is **stale** when its last commit that changed rows is older than the maximum age
(``--max-age``, else ``FRESHNESS_MAX_AGE``, 26h by default: a daily schedule plus slack), or
when it has no table at all. Exit 0 when every layer is fresh, 9 when one is stale (a monitor
or an Airflow check fails on it), the usual one line and code on errors (2 settings, 3 storage).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.run import RunContext

EXIT_STALE = 9


def duration_text(delta: timedelta | None) -> str:
    """A short age: ``45s``, ``12m``, ``5h12m``, ``3d4h``."""
    if delta is None:
        return "-"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


# layer → (the data column that says how new its data is, its tables under the layer)
def _layers(ctx: RunContext) -> dict[str, tuple[str, list[str]]]:
    from jobs.schemas import GOLD_TABLE, SOURCES

    return {
        "bronze": ("ingested_at", [ctx.bronze(s) for s in SOURCES]),
        "silver": ("day", [ctx.silver(s) for s in SOURCES]),
        "gold": ("week_start", [ctx.gold(GOLD_TABLE)]),
    }


@dataclass
class LayerFreshness:
    layer: str
    column: str
    newest_data: str | None  # ISO date or timestamp
    data_age_seconds: float | None
    last_commit: str | None  # ISO timestamp of the last commit that changed rows
    last_commit_version: int | None
    commit_age_seconds: float | None
    stale: bool


@dataclass
class Freshness:
    checked_at: str
    max_age_seconds: float
    layers: list[LayerFreshness]

    @property
    def stale(self) -> bool:
        return any(layer.stale for layer in self.layers)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "stale": self.stale}, sort_keys=False)

    def lines(self) -> list[str]:
        out = []
        for x in self.layers:
            data_age = None if x.data_age_seconds is None else timedelta(seconds=x.data_age_seconds)
            commit_age = None if x.commit_age_seconds is None else timedelta(seconds=x.commit_age_seconds)
            commit = f"{x.last_commit} (v{x.last_commit_version})" if x.last_commit else "never"
            out.append(
                f"{x.layer:<7}{'STALE' if x.stale else 'fresh':<7}newest {x.column} "
                f"{x.newest_data or '-'} ({duration_text(data_age)} old); last commit that "
                f"changed rows {commit} ({duration_text(commit_age)} ago)"
            )
        limit = duration_text(timedelta(seconds=self.max_age_seconds))
        stale = [x.layer for x in self.layers if x.stale]
        out.append(
            f"stale: {', '.join(stale)} (no commit that changed rows within {limit}; exit {EXIT_STALE})"
            if stale
            else f"fresh: every layer changed within {limit}"
        )
        return out


def _as_utc(value: Any) -> datetime | None:
    """A data value (date, datetime, ISO text) as the UTC moment it starts."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _newest(ctx: RunContext, uri: str, column: str) -> Any:
    """The newest value of ``column`` from the Delta log: partition values, else file stats."""
    values = ctx.lake.partitions(uri, column)
    if values:
        return max(values)
    return ctx.lake.column_max(uri, column)


def _last_change(ctx: RunContext, uri: str) -> tuple[datetime, int] | None:
    from jobs.tables.commits import changes_rows

    table = ctx.lake.open(uri)
    if table is None:
        return None
    for commit in table.history():  # newest first
        if changes_rows(commit) and "timestamp" in commit:
            return datetime.fromtimestamp(commit["timestamp"] / 1000, UTC), int(commit["version"])
    return None


def check(ctx: RunContext, max_age: timedelta, *, now: datetime | None = None) -> Freshness:
    """Every layer's freshness against ``max_age``."""
    now = now or datetime.now(UTC)
    layers = []
    for layer, (column, uris) in _layers(ctx).items():
        newest = [m for m in (_as_utc(_newest(ctx, u, column)) for u in uris) if m is not None]
        changes = [c for c in (_last_change(ctx, u) for u in uris) if c is not None]
        data = max(newest) if newest else None
        commit = max(changes) if changes else None
        commit_age = (now - commit[0]).total_seconds() if commit else None
        shown = None
        if data is not None:
            shown = data.date().isoformat() if column in ("day", "week_start") else data.isoformat()
        layers.append(
            LayerFreshness(
                layer=layer,
                column=column,
                newest_data=shown,
                data_age_seconds=None if data is None else round((now - data).total_seconds(), 3),
                last_commit=commit[0].isoformat() if commit else None,
                last_commit_version=commit[1] if commit else None,
                commit_age_seconds=None if commit_age is None else round(commit_age, 3),
                stale=commit_age is None or commit_age > max_age.total_seconds(),
            )
        )
    return Freshness(now.isoformat(), max_age.total_seconds(), layers)
