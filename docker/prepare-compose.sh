#!/usr/bin/env bash
# Prepare this host for docker/compose.yaml (idempotent; run as root):
#
# 1. secrets, each a file of its own, made once with random values (mode 0600) in
#    $BIBIA_COMPOSE_SECRETS (default docker/.build/compose/secrets):
#      postgres_password     the PostgreSQL role bibia's password
#      bibia_pgpass          the same for libpq (PGPASSFILE format: host:port:db:user:password)
#      s3_credentials        the S3 keys for boto3 (AWS_SHARED_CREDENTIALS_FILE format)
#      seaweedfs_s3_config   the same keys as SeaweedFS's identities (JSON)
#      bibia_secret_key      signs CSRF cookies and form tokens (the same on every replica)
#      tls_certificate, tls_key   a self-signed certificate for $BIBIA_COMPOSE_HOSTNAME
#                            (default localhost), valid 825 days, for local use only.
#    A real certificate: put its full chain (PEM) in tls_certificate and its key in
#    tls_key, then `docker-compose ... restart proxy`; nothing is regenerated while
#    both files exist.
# 2. the sandboxes' directory $BIBIA_COMPOSE_SANDBOXES (default
#    /var/lib/bibia-compose/sandboxes), the same path on the host and in the replicas,
#    made a shared mount when it is not one already: each replica mounts a tmpfs per
#    sandbox there, and that mount must reach the engine (which bind-mounts it into
#    the sandbox) and the other replica (mount propagation, `rshared`). On systemd
#    hosts / is already shared and nothing is done; elsewhere the directory is
#    bind-mounted onto itself (not persistent: run this script again after a reboot).
#
# Prints the secrets directory on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
secrets="${BIBIA_COMPOSE_SECRETS:-$here/.build/compose/secrets}"
sandboxes="${BIBIA_COMPOSE_SANDBOXES:-/var/lib/bibia-compose/sandboxes}"
hostname="${BIBIA_COMPOSE_HOSTNAME:-localhost}"

say() { echo "prepare-compose: $*" >&2; }
random() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
write_secret() {
    # write_secret NAME: stdin into NAME unless it exists (mode 0600 from the start).
    local path="$secrets/$1"
    if [ -s "$path" ]; then cat >/dev/null; return; fi
    (umask 077 && cat >"$path.tmp") && mv "$path.tmp" "$path"
    say "made $1"
}

mkdir -p "$secrets"
chmod 700 "$secrets"

[ -s "$secrets/postgres_password" ] || random | write_secret postgres_password
printf '*:*:*:bibia:%s\n' "$(cat "$secrets/postgres_password")" | write_secret bibia_pgpass
[ -s "$secrets/s3_credentials" ] || {
    access="bibia$(random | cut -c1-12)"
    secret="$(random)"
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$access" "$secret" \
        | write_secret s3_credentials
}
access="$(sed -n 's/^aws_access_key_id *= *//p' "$secrets/s3_credentials")"
secret="$(sed -n 's/^aws_secret_access_key *= *//p' "$secrets/s3_credentials")"
printf '{"identities": [{"name": "bibia", "credentials": [{"accessKey": "%s", "secretKey": "%s"}],\n  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}\n' \
    "$access" "$secret" | write_secret seaweedfs_s3_config
[ -s "$secrets/bibia_secret_key" ] || random | write_secret bibia_secret_key

if [ ! -s "$secrets/tls_certificate" ] || [ ! -s "$secrets/tls_key" ]; then
    command -v openssl >/dev/null || { say "openssl is needed for the self-signed certificate"; exit 1; }
    san="DNS:$hostname"
    [ "$hostname" = localhost ] && san="$san,IP:127.0.0.1"
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$hostname" \
        -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" \
        -keyout "$secrets/tls_key" -out "$secrets/tls_certificate" 2>/dev/null)
    chmod 644 "$secrets/tls_certificate"
    say "made a self-signed certificate for $hostname (local use only)"
fi

mkdir -p "$sandboxes"
if ! findmnt -no PROPAGATION -T "$sandboxes" | grep -q shared; then
    if ! findmnt -no TARGET "$sandboxes" >/dev/null 2>&1 || \
        [ "$(findmnt -no TARGET -T "$sandboxes")" != "$sandboxes" ]; then
        mount --bind "$sandboxes" "$sandboxes"
    fi
    mount --make-rshared "$sandboxes"
    say "$sandboxes is now a shared mount point"
fi
echo "$secrets"
