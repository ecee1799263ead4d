"""The benchmark's settings: the product settings plus its working directory."""

from __future__ import annotations

from jobs.settings import Settings, load_as


class BenchSettings(Settings):
    # Benchmark working directory: cached raw data, throw-away lakes and results (git-ignored).
    bench_dir: str = "lake/_bench"


def bench_dir() -> str:
    """BENCH_DIR from the environment or the env files (default ``lake/_bench``)."""
    return load_as(BenchSettings).bench_dir
