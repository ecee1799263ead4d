"""Data quality: suites per layer (checks declared as GX expectations), reconciliation, history, reports.

The checks are declared once, as Great Expectations expectation classes and arguments, and
evaluated one way, with Polars (:mod:`~jobs.quality.validate`); Great Expectations itself is not
imported at run time. See jobs/quality/README.md.

Modules, one concern each:

* :mod:`~jobs.quality.suites` — what is checked per layer and with which severity (pure data).
* :mod:`~jobs.quality.derive` — gold audit columns re-derived from silver, for rows without them (pure).
* :mod:`~jobs.quality.validate` — evaluates a suite on one frame (what each expectation class means).
* :mod:`~jobs.quality.reconcile` — count reconciliation and thresholds (pure).
* :mod:`~jobs.quality.results` — the plain result record, merging and the failure message.
* :mod:`~jobs.quality.history` — appends results to ``<LAKE_GOLD>/_quality_results`` (Delta).
* :mod:`~jobs.quality.report` — the HTML report of a run and the CLI summary lines.
* :mod:`~jobs.quality.gate` — the hooks the stages call (audit, record, then pass or raise).
"""
