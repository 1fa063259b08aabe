#!/usr/bin/env bash
# Make a PostgreSQL server answer on 127.0.0.1:${BIBIA_PG_PORT:-54329} for the tests
# (both of bibia's databases on PostgreSQL). Idempotent: does nothing when
# the server already answers.
#
# - Installs Debian's `postgresql` when no server binaries exist (root only).
# - Keeps its cluster in ${BIBIA_PG_DIR:-/var/tmp/bibia-pg} (outside the repository).
# - Runs the server as the `postgres` system user when started as root
#   (initdb refuses root), as the current user otherwise.
# - Superuser `postgres`, trust authentication on the loopback address and
#   the cluster's own Unix socket only; listens on 127.0.0.1 only.
# - A throw-away test cluster: fsync and synchronous commit are off, unless
#   BIBIA_PG_DURABLE=1 (a test that kills the server and counts what survived).
#
# Prints the URL the tests use (BIBIA_TEST_POSTGRES_URL) on stdout.
set -euo pipefail

PORT="${BIBIA_PG_PORT:-54329}"
PGROOT="${BIBIA_PG_DIR:-/var/tmp/bibia-pg}"
PGDATA="$PGROOT/data"
SOCKDIR="$PGROOT/run"
LOG="$PGROOT/server.log"
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT"

say() { echo "start-postgres: $*" >&2; }

find_bindir() {
  local candidate
  if [ -x /usr/local/bin/pg_ctl ]; then
    candidate="$(dirname "$(readlink -f /usr/local/bin/pg_ctl)")"
    if [ -x "$candidate/initdb" ] && [ -x "$candidate/postgres" ]; then echo "$candidate"; return 0; fi
  fi
  # Newest Debian server first.
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/postgres" ]; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

answers() {
  local isready
  isready="$(command -v pg_isready || true)"
  [ -n "$isready" ] || isready="$BINDIR/pg_isready"
  "$isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 2
}

BINDIR="$(find_bindir || true)"
if [ -n "$BINDIR" ] && answers; then
  say "already answering on 127.0.0.1:$PORT"
  echo "$URL"
  exit 0
fi

if [ -z "$BINDIR" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "no PostgreSQL server binaries and not root: cannot install Debian's postgresql"
    exit 1
  fi
  say "installing Debian's postgresql"
  apt-get update -qq >/dev/null
  # policy-rc.d keeps the package from starting its own 5432 cluster where that is possible.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  BINDIR="$(find_bindir)" || { say "postgresql installed but no server binaries found"; exit 1; }
fi

if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$PGROOT" --shell /bin/sh postgres
  fi
  RUN_AS=postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  RUN_AS="$(id -un)"
  as_pg() { "$@"; }
fi

mkdir -p "$PGROOT"
if [ "$(id -u)" = 0 ]; then chown "$RUN_AS": "$PGROOT"; fi
chmod 700 "$PGROOT"
as_pg mkdir -p "$SOCKDIR"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  say "initdb in $PGDATA ($("$BINDIR/postgres" --version))"
  rm -rf "$PGDATA"
  as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth=reject --encoding=UTF8 --locale=C.UTF-8 >/dev/null \
    || as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth=reject --encoding=UTF8 --locale=C >/dev/null
  as_pg tee "$PGDATA/pg_hba.conf" >/dev/null <<HBA
# bibia test cluster: trust on the loopback address and this cluster's socket only.
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
HBA
  as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<CONF

# bibia test cluster (see .ci/start-postgres.sh)
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
fi
if [ "${BIBIA_PG_DURABLE:-0}" = 1 ]; then
  # A commit is on disk before it is acknowledged: an immediate stop loses nothing committed.
  as_pg tee "$PGDATA/postgresql.auto.conf" >/dev/null <<CONF
fsync = on
synchronous_commit = on
full_page_writes = on
CONF
fi

# A stale pid file (after a crash or a container restart) would stop pg_ctl;
# so would a killed postmaster that nobody reaped yet (a zombie).
if [ -f "$PGDATA/postmaster.pid" ]; then
  pid="$(head -n 1 "$PGDATA/postmaster.pid")"
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  if [ -z "$state" ] || [ "$state" = Z ]; then rm -f "$PGDATA/postmaster.pid"; fi
fi
if ! as_pg "$BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  say "starting the server on 127.0.0.1:$PORT (log: $LOG)"
  as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 30 start >/dev/null || {
    say "the server did not start; last lines of $LOG:"; tail -n 20 "$LOG" >&2 || true; exit 1; }
fi

for _ in $(seq 1 60); do
  if answers; then
    say "ready on 127.0.0.1:$PORT"
    echo "$URL"
    exit 0
  fi
  sleep 0.5
done
say "the server does not answer on 127.0.0.1:$PORT after 30 s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
