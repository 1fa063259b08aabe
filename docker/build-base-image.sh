#!/usr/bin/env bash
# Build the offline Python base image without any container registry.
#
# debootstrap a minimal Debian bookworm (variant minbase, with python3,
# python3-venv and ca-certificates) from the Debian mirror this machine's apt
# already uses, trim what a Python server never reads (docs, man pages,
# locales, apt lists), then `docker import` the root filesystem.
#
# Usage: docker/build-base-image.sh [--force]
#   --force   rebuild even when the image already exists
# Environment:
#   BIBIA_BASE_IMAGE   image name (default bibia/python-base:bookworm)
#   BIBIA_DEBIAN_MIRROR  Debian mirror (default: the one in /etc/apt/sources.list*)
# Prints the image name on stdout (progress goes to stderr).
set -euo pipefail

image="${BIBIA_BASE_IMAGE:-bibia/python-base:bookworm}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="$here/.build"
force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        *) echo "build-base-image: unknown argument: $arg (only --force)" >&2; exit 2 ;;
    esac
done

say() { echo "build-base-image: $*" >&2; }

if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    say "$image already exists (use --force to rebuild)"
    echo "$image"
    exit 0
fi

debian_mirror() {
    # The first plain Debian archive URI apt knows (not security, not a
    # third-party repository), in one-line or deb822 format.
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    local uri
    uri="$(cat "${files[@]}" 2>/dev/null \
        | grep -v '^[[:space:]]*#' \
        | grep -oE '(https?|file)://[^ ]*/debian/?' \
        | grep -v -- '-security' | head -n 1 || true)"
    echo "${uri:-http://deb.debian.org/debian}"
}
mirror="${BIBIA_DEBIAN_MIRROR:-$(debian_mirror)}"

if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "debootstrap is missing and only root can install it"
        exit 1
    fi
    say "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

rootfs="$build_dir/rootfs"
mkdir -p "$build_dir"
# debootstrap mounts /proc (and sometimes /sys) inside the tree: unmount whatever
# is below it before removing it, and never cross into another file system.
cleanup_rootfs() {
    if [ -d "$rootfs" ]; then
        awk -v root="$rootfs" 'index($2, root "/") == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r mountpoint; do umount -l "$mountpoint" 2>/dev/null || true; done
        rm -rf --one-file-system "$rootfs"
    fi
}
cleanup_rootfs
trap cleanup_rootfs EXIT

say "debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$build_dir/debootstrap.log" 2>&1 || {
    say "debootstrap failed; last lines of $build_dir/debootstrap.log:"
    tail -n 20 "$build_dir/debootstrap.log" >&2
    exit 1
}

# What a Python server never reads; apt lists are refetched by `apt-get update`.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log
find "$rootfs"/usr/lib/python3* -name '__pycache__' -type d -prune -exec rm -rf {} +
echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"

say "importing the root filesystem as $image"
tar --numeric-owner --one-file-system -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$image" >/dev/null
say "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$image"
