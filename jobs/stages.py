"""The names every caller shares (CLI, orchestration, the DAG), with no heavy import.

The DAG module imports this at parse time, so it must stay free of polars, deltalake and
pydantic.
"""

from datetime import date

STAGES = ("bronze", "silver", "gold", "export")
"""The pipeline's stages, in the order they run."""

# The whole days datetime64[ns] can hold (1677-09-21 00:12:43 .. 2262-04-11 23:47:16): no day
# outside them may reach a table, whatever the settings, so that consumers reading dates as
# nanosecond datetimes (pandas, Spark) can load every row.
ENGINE_MIN_DAY = date(1677, 9, 22)
ENGINE_MAX_DAY = date(2262, 4, 11)
DEFAULT_MIN_DAY = date(2015, 1, 1)  # QUALITY_MIN_DAY's default
DEFAULT_MAX_FUTURE_DAYS = 1  # QUALITY_MAX_FUTURE_DAYS's default
