#!/bin/sh
# The service image's entrypoint: secrets from files (compose secrets, Kubernetes
# Secrets mounted as files), never from the image or the compose file.
#   /run/secrets/bibia_secret_key -> BIBIA_SECRET_KEY (signs CSRF cookies; the same on every replica)
# PostgreSQL's password is read by libpq itself from PGPASSFILE, the S3 keys by
# boto3 from AWS_SHARED_CREDENTIALS_FILE: both are plain files too.
set -eu
key_file="${BIBIA_SECRET_KEY_FILE:-/run/secrets/bibia_secret_key}"
if [ -z "${BIBIA_SECRET_KEY:-}" ] && [ -r "$key_file" ]; then
    BIBIA_SECRET_KEY="$(cat "$key_file")"
    export BIBIA_SECRET_KEY
fi
exec "$@"
