"""``make bench``: the pipeline's speed and memory, and gold against DuckDB, pandas and the I/O floor.

* :mod:`~jobs.benchmark.runner` — generates (or reuses) raw data, runs every stage in a fresh
  process, then the baselines on the same silver data, checks each baseline's output equals
  gold, and writes the results (JSON + a markdown table).
* :mod:`~jobs.benchmark.task` — what one measured process runs.
* :mod:`~jobs.benchmark.measure` — wall time, CPU time and peak RSS of a process tree.
* :mod:`~jobs.benchmark.duckdb_sql`, :mod:`~jobs.benchmark.pandas_baseline`,
  :mod:`~jobs.benchmark.io_floor` — the baselines.
* :mod:`~jobs.benchmark.check` — order-independent equality of a baseline's output and gold.

See the README section "Performance and scale" for the figures and how to reproduce them.
"""
