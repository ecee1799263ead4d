"""Lakehouse batch job: raw value-prop events → bronze → silver → gold weekly features.

The package never imports Airflow: orchestration (``dags/``) calls into it.
"""

__version__ = "0.1.0"
