#!/bin/sh
# First start: a cluster in $PGDATA (UTF-8), scram-sha-256 from the network, the
# role bibia (password from /run/secrets/postgres_password) owning the databases
# bibia and mlflow. Every start: postgres as the postgres user, listening on all
# of the container's addresses (the compose network only: no port is published).
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
password_file="${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres_password}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -s "$password_file" ] || { echo "postgres: no password in $password_file" >&2; exit 1; }
    as_postgres initdb -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    # The password goes through psql's variable quoting, never through the command line.
    as_postgres psql -v ON_ERROR_STOP=1 -q -U postgres -d postgres \
        -v password="$(cat "$password_file")" <<'SQL'
CREATE ROLE bibia LOGIN PASSWORD :'password';
CREATE DATABASE bibia OWNER bibia;
CREATE DATABASE mlflow OWNER bibia;
SQL
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres: cluster created (role bibia, databases bibia and mlflow)" >&2
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
    postgres -D "$PGDATA" -c listen_addresses='*' "$@"
