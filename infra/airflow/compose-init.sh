#!/bin/sh
# airflow-init (docker compose): migrate Airflow's metadata DB (the postgres service) and write the
# admin's password for the simple auth manager. Runs once before the other Airflow services.
# AIRFLOW_ADMIN_PASSWORD (generated into infra/.env by make compose-secrets) reaches this
# container only.
set -eu

airflow db migrate

user="${AIRFLOW_ADMIN_USER:-admin}"
password="${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD (make compose-secrets)}"
file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?set it in envs/docker-airflow.env}"
mkdir -p "$(dirname "$file")"
umask 077  # the password file is created owner-only
printf '{"%s": "%s"}\n' "$user" "$password" > "$file"
echo "Airflow metadata DB migrated; UI user '$user' with the password AIRFLOW_ADMIN_PASSWORD (infra/.env)"
