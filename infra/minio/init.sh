#!/bin/sh
# minio-init (one-shot, project image): users and policies with mc AS MINIO'S ROOT USER (only this
# container and the minio server have its keys), then buckets and raw data with
# `python -m infra.stack seed` AS THE SCOPED ADMIN (infra/minio/admin-policy.json: buckets, raw).
# Idempotent: running it again changes nothing.
# Needs: AWS_ENDPOINT_URL (envs/docker.env), MINIO_ROOT_*, ADMIN_*, PIPELINE_*, ANALYST_* keys and
# the console viewer's login CONSOLE_VIEWER_USER/CONSOLE_VIEWER_PASSWORD (read-only console user:
# infra/minio/console-policy.json, list and read the lake's buckets, nothing else).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."  # the project root: `python -m infra.stack` imports infra/ from here

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${ADMIN_ACCESS_KEY_ID:?}"
: "${ADMIN_SECRET_ACCESS_KEY:?}" "${PIPELINE_ACCESS_KEY_ID:?}" "${PIPELINE_SECRET_ACCESS_KEY:?}"
: "${ANALYST_ACCESS_KEY_ID:?}" "${ANALYST_SECRET_ACCESS_KEY:?}"
: "${CONSOLE_VIEWER_USER:?}" "${CONSOLE_VIEWER_PASSWORD:?}"

mc alias set lake "$AWS_ENDPOINT_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

attach() {  # attach policy $1 to user $2 unless it is attached already
    if ! out=$(mc admin policy attach lake "$1" --user "$2" 2>&1); then
        case "$out" in
            *already*) ;;
            *) echo "$out" >&2; exit 1 ;;
        esac
    fi
}

mc admin policy create lake lakehouse-admin "$here/admin-policy.json"
mc admin policy create lake lakehouse-pipeline "$here/pipeline-policy.json"
mc admin policy create lake lakehouse-analyst "$here/analyst-policy.json"
mc admin policy create lake lakehouse-console "$here/console-policy.json"
mc admin user add lake "$ADMIN_ACCESS_KEY_ID" "$ADMIN_SECRET_ACCESS_KEY"
mc admin user add lake "$PIPELINE_ACCESS_KEY_ID" "$PIPELINE_SECRET_ACCESS_KEY"
mc admin user add lake "$ANALYST_ACCESS_KEY_ID" "$ANALYST_SECRET_ACCESS_KEY"
mc admin user add lake "$CONSOLE_VIEWER_USER" "$CONSOLE_VIEWER_PASSWORD"
attach lakehouse-admin "$ADMIN_ACCESS_KEY_ID"
attach lakehouse-pipeline "$PIPELINE_ACCESS_KEY_ID"
attach lakehouse-analyst "$ANALYST_ACCESS_KEY_ID"
attach lakehouse-console "$CONSOLE_VIEWER_USER"
mc alias remove lake >/dev/null  # root's keys leave no trace in the container

# The seed runs as the scoped admin; MinIO's policies are the identities (no local file to check).
unset MINIO_ROOT_USER MINIO_ROOT_PASSWORD PIPELINE_SECRET_ACCESS_KEY ANALYST_SECRET_ACCESS_KEY
unset CONSOLE_VIEWER_PASSWORD
python -m infra.stack seed --buckets-only --no-identities
# Raw data: generated at SEED_SCALE into the cache volume, uploaded unless already there.
python -m infra.stack seed --generate --scale "${SEED_SCALE:-1}" --no-identities
echo "minio-init done: users (admin, pipeline, analyst, console viewer), policies, buckets and raw data in place"
