#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#
# Idempotent: when `docker info` already answers, it does nothing. Otherwise
# it installs Debian's docker.io if dockerd is missing (root only), starts
# dockerd in the background (log: $BIBIA_DOCKERD_LOG, default
# /var/log/bibia-dockerd.log) and waits until `docker info` answers, at most
# $BIBIA_DOCKERD_WAIT seconds (default 60).
#
# Exit codes: 0 the engine answers; 1 it could not be installed or started.
set -euo pipefail

log_file="${BIBIA_DOCKERD_LOG:-/var/log/bibia-dockerd.log}"
max_wait="${BIBIA_DOCKERD_WAIT:-60}"

say() { echo "ensure-dockerd: $*" >&2; }

if docker info >/dev/null 2>&1; then
    say "the Docker engine already answers"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "dockerd is missing and only root can install docker.io"
        exit 1
    fi
    say "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

if ! command -v docker >/dev/null 2>&1; then
    say "the docker client is missing after installing docker.io"
    exit 1
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "dockerd is not running and only root can start it"
        exit 1
    fi
    say "starting dockerd (log: $log_file)"
    mkdir -p "$(dirname "$log_file")"
    # its own session: the engine must outlive the shell (and process group) that started it
    setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
fi

deadline=$((SECONDS + max_wait))
until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "the Docker engine did not answer within ${max_wait}s; last lines of $log_file:"
        tail -n 20 "$log_file" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.5
done
say "the Docker engine answers"
