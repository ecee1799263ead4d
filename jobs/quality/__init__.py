"""Data quality: Great Expectations suites per layer, reconciliation, history and reports.

Importing this package is cheap: Great Expectations (4–7 s to import) is imported only inside
:func:`jobs.quality.validate.validate_frame`, i.e. only when a stage has data to validate. A run
with nothing new never imports it. See jobs/quality/README.md.

Modules, one concern each:

* :mod:`~jobs.quality.suites` — what is checked per layer and with which severity (pure data).
* :mod:`~jobs.quality.derive` — gold audit columns re-derived from silver, for rows without them (pure).
* :mod:`~jobs.quality.validate` — runs a suite with Great Expectations on one frame.
* :mod:`~jobs.quality.reconcile` — count reconciliation and thresholds (pure).
* :mod:`~jobs.quality.results` — the plain result record, merging and the failure message.
* :mod:`~jobs.quality.history` — appends results to ``<LAKE_GOLD>/_quality_results`` (Delta).
* :mod:`~jobs.quality.report` — the HTML report of a run and the CLI summary lines.
* :mod:`~jobs.quality.gate` — the hooks the stages call (audit, record, then pass or raise).
"""
