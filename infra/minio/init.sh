#!/bin/sh
# minio-init (one-shot, project image): identities and policies with mc, then buckets and raw
# data with `python -m infra.stack seed`. Idempotent: running it again changes nothing.
# Needs the variables of envs/docker.env (AWS_ENDPOINT_URL, ADMIN_*, AWS_* = pipeline, ANALYST_*).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."  # the project root: `python -m infra.stack` imports infra/ from here

mc alias set lake "$AWS_ENDPOINT_URL" "$ADMIN_ACCESS_KEY_ID" "$ADMIN_SECRET_ACCESS_KEY" >/dev/null

# Buckets first (as the admin), so the policies below name existing buckets.
python -m infra.stack seed --buckets-only --no-identities

attach() {  # attach policy $1 to user $2 unless it is attached already
    if ! out=$(mc admin policy attach lake "$1" --user "$2" 2>&1); then
        case "$out" in
            *already*) ;;
            *) echo "$out" >&2; exit 1 ;;
        esac
    fi
}

mc admin policy create lake lakehouse-pipeline "$here/pipeline-policy.json"
mc admin policy create lake lakehouse-analyst "$here/analyst-policy.json"
mc admin user add lake "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc admin user add lake "$ANALYST_ACCESS_KEY_ID" "$ANALYST_SECRET_ACCESS_KEY"
attach lakehouse-pipeline "$AWS_ACCESS_KEY_ID"
attach lakehouse-analyst "$ANALYST_ACCESS_KEY_ID"

# Raw data: generated at SEED_SCALE into the cache volume, uploaded unless already there.
python -m infra.stack seed --generate --scale "${SEED_SCALE:-1}" --no-identities
echo "minio-init done: buckets, identities (pipeline, analyst) and raw data are in place"
