"""What the baselines read: the active Parquet files of the silver tables (local lakes only)."""

from __future__ import annotations

from jobs.settings import Settings
from jobs.storage import is_remote, join

SOURCES = ("prints", "taps", "pays")
COLUMNS = {
    "prints": ["day", "user_id", "value_prop", "position"],
    "taps": ["day", "user_id", "value_prop"],
    "pays": ["day", "user_id", "value_prop", "total"],
}


def silver_files(settings: Settings, source: str) -> list[str]:
    """Absolute paths of the Parquet files of a silver table's current version.

    Files live under ``day=YYYY-MM-DD/`` directories, so readers get ``day`` from the path.
    """
    from deltalake import DeltaTable

    uri = join(settings.lake_silver, source)
    if is_remote(uri):
        raise SystemExit("the benchmark baselines read a local lake (LAKE_SILVER is remote)")
    return [u.removeprefix("file://") for u in DeltaTable(uri).file_uris()]


def window_width(settings: Settings) -> int:
    """The primary lookback window in periods: weeks (calendar mode) or days (rolling mode)
    (the baselines compute the first window of ``LOOKBACK_WEEKS`` only)."""
    n = settings.lookback_weeks[0]
    return n if settings.lookback_mode == "calendar" else 7 * n
