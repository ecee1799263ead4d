# The Airflow 3 image of the compose services (infra/docker-compose.yml): the official image, the
# project's pinned runtime lock (requirements.txt, which pins the same apache-airflow), the jobs
# package and the DAGs. Build from the repository root (compose does):
#   docker build -f infra/airflow.Dockerfile -t lakehouse-airflow:0.1.0 .
FROM apache/airflow:3.3.2-python3.11

USER root
# The simple auth manager's password file lives on a volume shared by airflow-init and the API server.
RUN mkdir -p /opt/airflow/auth /opt/lakehouse \
 && chown -R airflow:root /opt/airflow/auth /opt/lakehouse
USER airflow

COPY --chown=airflow:root infra/requirements-pip.txt requirements.txt /opt/lakehouse/
# The pinned pip first (as make venv and infra/Dockerfile do), then the lock, every file's hash
# checked; requirements.txt pins apache-airflow==3.3.2 (the base image's) with the rest of it.
RUN pip install --no-cache-dir --require-hashes -r /opt/lakehouse/requirements-pip.txt \
 && pip install --no-cache-dir --require-hashes -r /opt/lakehouse/requirements.txt

COPY --chown=airflow:root pyproject.toml /opt/lakehouse/pyproject.toml
COPY --chown=airflow:root jobs /opt/lakehouse/jobs
RUN pip install --no-cache-dir --no-deps /opt/lakehouse

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root infra/airflow/compose-init.sh /opt/lakehouse/compose-init.sh
