"""A run's options, validated in one place: which gold weeks to rebuild, the lookback, the engine.

Every caller builds them here: the CLI from its arguments (:meth:`RunOptions.from_args`), an
orchestrator from its run parameters (:meth:`RunOptions.from_params`, Airflow ``params``), and
the DAG's trigger form from :data:`PARAMS`. The settings' ``LOOKBACK_WEEKS`` goes through the
same :func:`lookback_weeks`, so changing what a lookback is (e.g. several windows) is one change
here. A bad value is one :class:`~jobs.errors.ConfigError` line (exit 2).

The DAG module imports this at parse time, so it stays free of polars, deltalake and pydantic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, cast

from jobs.errors import ConfigError

LookbackMode = Literal["calendar", "rolling"]
Engine = Literal["local", "dask"]
LOOKBACK_MODES: tuple[LookbackMode, ...] = ("calendar", "rolling")
ENGINES: tuple[Engine, ...] = ("local", "dask")

LOOKBACK_WEEKS_MIN, LOOKBACK_WEEKS_MAX = 1, 52
"""Bounds of a lookback window N in weeks."""
WINDOWS_PATTERN = r"^\s*[0-9]+(\s*,\s*[0-9]+)*\s*$"
"""A list of windows as one string (``3,1,4``), for the DAG's trigger form."""


def _one_window(value: object) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        n = int(str(value).strip()) if isinstance(value, str) else int(cast(Any, value))
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a whole number") from None
    if not LOOKBACK_WEEKS_MIN <= n <= LOOKBACK_WEEKS_MAX:
        raise ValueError(f"{n} is not between {LOOKBACK_WEEKS_MIN} and {LOOKBACK_WEEKS_MAX} weeks")
    return n


def lookback_weeks(value: object) -> tuple[int, ...]:
    """``LOOKBACK_WEEKS`` (a setting, ``--lookback-weeks`` or a run parameter) → the lookback
    windows in weeks, the first being the primary one: ``3`` → ``(3,)``, ``"3,1,4"`` (or a
    list ``[3, 1, 4]``) → ``(3, 1, 4)``. Each window 1..52, none twice.

    Raises ValueError with one line (the caller names the option)."""
    if isinstance(value, str):
        items: list[object] = [v for v in value.replace(" ", ",").split(",") if v.strip()]
        if not items:
            raise ValueError(f"{value!r} names no window")
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise ValueError("no window given")
    else:
        items = [value]
    windows = tuple(_one_window(v) for v in items)
    repeated = sorted({n for n in windows if windows.count(n) > 1})
    if repeated:
        raise ValueError(
            f"window(s) {', '.join(map(str, repeated))} given twice in {format_windows(windows)}"
        )
    return windows


def format_windows(windows: Iterable[int]) -> str:
    """The windows as ``LOOKBACK_WEEKS`` spells them (``"3,1,4"``; ``"3"`` for one window), as
    gold records them in its commit metadata."""
    return ",".join(str(n) for n in windows)


def lookback_mode(value: object) -> LookbackMode:
    """``LOOKBACK_MODE`` → ``calendar`` or ``rolling``; ValueError otherwise."""
    if value not in LOOKBACK_MODES:
        raise ValueError(f"{value!r} is not 'calendar' or 'rolling'")
    return value


def engine(value: object) -> Engine:
    """``ENGINE`` → ``local`` or ``dask``; ValueError otherwise."""
    if value not in ENGINES:
        raise ValueError(f"{value!r} is not 'local' or 'dask'")
    return value


def rebuild_weeks(value: object) -> tuple[date, ...]:
    """Dates (any day of the week), as a list or one string separated by commas/whitespace;
    sorted, without repeats. Empty strings and None mean none."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    weeks = set()
    for item in cast(Iterable[object], value or []):
        if isinstance(item, date):
            weeks.add(item)
            continue
        text = str(item).strip()
        if not text:
            continue
        try:
            weeks.add(date.fromisoformat(text[:10]))
        except ValueError:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD, any day of the week to rebuild)") from None
    return tuple(sorted(weeks))


def _checked(name: str, check: Any, value: object, setting: str = "") -> Any:
    """``check(value)``, its ValueError as one ConfigError line naming the option (and the
    setting it overrides); None and "" stay None."""
    if value is None or value == "":
        return None
    try:
        return check(value)
    except ValueError as exc:
        overrides = f" (overrides {setting})" if setting else ""
        raise ConfigError(f"{name}: {exc}{overrides}") from None


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What one run is asked to do beyond the settings; empty means 'process whatever is new
    with the configured settings'. The lookback and engine override the settings for this run."""

    rebuild: tuple[date, ...] = ()
    full: bool = False
    lookback_mode: LookbackMode | None = None
    lookback_weeks: tuple[int, ...] | None = None
    engine: Engine | None = None
    dask_scheduler: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> RunOptions:
        """From an orchestrator's parameters (:data:`PARAMS`): ``rebuild_weeks``,
        ``full_rebuild``, ``lookback_mode``, ``lookback_weeks``; empty or None means 'not set'."""
        params = dict(params or {})
        return cls(
            rebuild=_checked("rebuild_weeks", rebuild_weeks, params.get("rebuild_weeks")) or (),
            full=bool(params.get("full_rebuild")),
            lookback_mode=_checked(
                "lookback_mode", lookback_mode, params.get("lookback_mode"), "LOOKBACK_MODE"
            ),
            lookback_weeks=_checked(
                "lookback_weeks", lookback_weeks, params.get("lookback_weeks"), "LOOKBACK_WEEKS"
            ),
        )

    @classmethod
    def from_args(cls, args: Any) -> RunOptions:
        """From ``python -m jobs`` arguments (a command without an option leaves it unset)."""

        def arg(name: str) -> Any:
            return getattr(args, name, None)

        return cls(
            rebuild=_checked("--weeks", rebuild_weeks, arg("weeks")) or (),
            full=bool(arg("full")),
            lookback_mode=_checked("--lookback-mode", lookback_mode, arg("lookback_mode"), "LOOKBACK_MODE"),
            lookback_weeks=_checked(
                "--lookback-weeks", lookback_weeks, arg("lookback_weeks"), "LOOKBACK_WEEKS"
            ),
            engine=_checked("--engine", engine, arg("engine"), "ENGINE"),
            dask_scheduler=arg("scheduler") or None,
        )

    @property
    def forces_run(self) -> bool:
        """A rebuild or another lookback must run even when no new raw file arrived."""
        return bool(self.rebuild or self.full or self.lookback_mode or self.lookback_weeks)

    def describe(self) -> dict[str, Any]:
        """JSON-able, with the parameters' names."""
        return {
            "rebuild_weeks": [w.isoformat() for w in self.rebuild],
            "full_rebuild": self.full,
            "lookback_mode": self.lookback_mode,
            "lookback_weeks": None if self.lookback_weeks is None else format_windows(self.lookback_weeks),
        }

    @property
    def overrides(self) -> dict[str, Any]:
        """The settings these options override (``load_settings(**options.overrides)``; None:
        the configured one)."""
        return {
            "lookback_mode": self.lookback_mode,
            "lookback_weeks": self.lookback_weeks,
            "engine": self.engine,
            "dask_scheduler": self.dask_scheduler,
        }


PARAMS: dict[str, dict[str, Any]] = {
    "rebuild_weeks": {
        "default": [],
        "type": "array",
        "items": {"type": "string"},
        "title": "Rebuild weeks",
        "description": "ISO dates (any day of the week) whose gold weeks are rebuilt in this run.",
    },
    "full_rebuild": {
        "default": False,
        "type": "boolean",
        "title": "Full rebuild",
        "description": "Rebuild every week of gold.",
    },
    "lookback_mode": {
        "default": None,
        "type": ["null", "string"],
        "enum": [None, *LOOKBACK_MODES],
        "title": "Lookback mode",
        "description": "Override LOOKBACK_MODE for this run.",
    },
    "lookback_weeks": {
        "default": None,
        "type": ["null", "integer", "string"],
        "minimum": LOOKBACK_WEEKS_MIN,
        "maximum": LOOKBACK_WEEKS_MAX,
        "pattern": WINDOWS_PATTERN,
        "title": "Lookback weeks (N, or windows N1,N2,...)",
        "description": (
            "Override LOOKBACK_WEEKS for this run: one window N, or several (3,1,4); the first is "
            "the primary window (prior_*), the others add prior_*_<N>w columns."
        ),
    },
}
"""The run parameters an orchestrator's trigger form offers (JSON schema, as Airflow's ``Param``
takes them); :meth:`RunOptions.from_params` reads them."""
