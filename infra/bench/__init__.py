"""``make bench``: the pipeline's speed and memory, and gold against DuckDB, pandas and the I/O floor.

* :mod:`~infra.bench.runner` — generates (or reuses) raw data, runs every stage in a fresh
  process, then the baselines on the same silver data, checks each baseline's output equals
  gold, and writes the results (JSON + a markdown table).
* :mod:`~infra.bench.report` — the report, its rows keyed by :class:`~infra.bench.report.Key`;
  :mod:`~infra.bench.evaluate` its totals, ratios and targets; :mod:`~infra.bench.markdown` its
  tables.
* :mod:`~infra.bench.task` — what one measured process runs.
* :mod:`~infra.bench.measure` — wall time, CPU time and peak RSS of a process tree.
* :mod:`~infra.bench.duckdb_sql`, :mod:`~infra.bench.pandas_baseline`,
  :mod:`~infra.bench.io_floor` — the baselines.
* :mod:`~infra.bench.check` — order-independent equality of a baseline's output and gold.

See infra/bench/README.md for the figures and how to reproduce them.
"""
