"""``python -m jobs doctor [--repair]``: find what is damaged in the lake, and repair what is safe.

Diagnosis (:mod:`jobs.doctor.diagnose`) is read-only and needs no lease: every table opens, its
log is contiguous and parses, its checkpoints read, every data file it names exists
(:mod:`jobs.doctor.tables`); bronze holds every raw file's rows the manifest says it took in,
and silver's, gold's and the manifest's watermarks name commits that still exist
(:mod:`jobs.doctor.lineage`); an S3 lease object parses. :func:`repair` applies the safe fixes holding
the lake lease (:mod:`jobs.doctor.repair`, :mod:`jobs.doctor.bronze_fixes`), so that ONE
normal run makes the lake exact again. Findings are :class:`Finding` lines in a :class:`Report`.
"""

from jobs.doctor.diagnose import diagnose
from jobs.doctor.findings import Finding, Report
from jobs.doctor.repair import repair

__all__ = ["Finding", "Report", "diagnose", "repair"]
