"""The names every caller shares (CLI, orchestration, the DAG), with no heavy import.

The DAG module imports this at parse time, so it must stay free of polars, deltalake and
pydantic.
"""

STAGES = ("bronze", "silver", "gold", "export")
"""The pipeline's stages, in the order they run."""

LOOKBACK_WEEKS_MIN, LOOKBACK_WEEKS_MAX = 1, 52
"""Bounds of the lookback window N in weeks (settings, run parameters and the DAG's form)."""
