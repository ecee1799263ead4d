"""Airflow around the lakehouse DAG: the native launcher (``python -m infra.airflow.native``) and
the compose init script."""
