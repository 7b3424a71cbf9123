#!/usr/bin/env bash
# Builds the FunnelPulse images from binaries built by cargo:
#   funnelpulse-scheduler:TAG, funnelpulse-executor:TAG and funnelpulse:TAG (the job CLI).
#
#   docker/build.sh [--base IMAGE|local] [--tag TAG]
#   --base IMAGE      base image, a Debian bookworm (default debian:bookworm-slim; env FUNNELPULSE_BASE);
#                     `local` builds and uses funnelpulse-base:bookworm (no registry needed)
#   --tag TAG         image tag (default latest; env FUNNELPULSE_IMAGE_TAG)
#   FUNNELPULSE_BIN_DIR  the binaries' folder (default $CARGO_TARGET_DIR/release, else target/release)
#   FUNNELPULSE_STRIP    1 (default): copy the binaries without debug info (smaller images), 0: as built
set -euo pipefail

DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DOCKER_DIR")"
BIN_DIR="${FUNNELPULSE_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release}"
BASE="${FUNNELPULSE_BASE:-debian:bookworm-slim}"
TAG="${FUNNELPULSE_IMAGE_TAG:-latest}"
STRIP="${FUNNELPULSE_STRIP:-1}"
LOCAL_BASE="${FUNNELPULSE_BASE_IMAGE:-funnelpulse-base:bookworm}"
# image target in docker/Dockerfile → binary → image name
IMAGES=("scheduler funnelpulse-scheduler funnelpulse-scheduler"
    "executor funnelpulse-executor funnelpulse-executor"
    "cli funnelpulse funnelpulse")

die() {
    echo "error: $*" >&2
    exit 1
}

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --base) BASE="${2:?--base needs an image}"; shift 2 ;;
        --tag) TAG="${2:?--tag needs a tag}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
        esac
    done
}

# The images hold no libraries besides glibc's (and libgcc_s): refuse a binary
# that links anything else, since the base would not have it.
check_libraries() {
    local binary="$1" extra
    command -v ldd >/dev/null 2>&1 || return 0
    extra="$(ldd "$binary" | awk '{ print $1 }' |
        grep -Ev '^(linux-vdso\.so|/lib64/ld-linux|lib(c|m|dl|rt|pthread|gcc_s|util)\.so)' || true)"
    [[ -z "$extra" ]] || die "$binary links libraries the images lack: $extra"
}

# A build context with only the Dockerfile and the three binaries.
make_context() {
    local context="$1" target binary name
    mkdir -p "$context/bin"
    cp "$DOCKER_DIR/Dockerfile" "$context/"
    for image in "${IMAGES[@]}"; do
        read -r target binary name <<<"$image"
        [[ -x "$BIN_DIR/$binary" ]] || die "$BIN_DIR/$binary not found: build with 'cargo build --release -p funnelpulse -p funnelpulse-scheduler -p funnelpulse-executor' or set FUNNELPULSE_BIN_DIR"
        check_libraries "$BIN_DIR/$binary"
        if [[ "$STRIP" == 1 ]] && command -v objcopy >/dev/null 2>&1; then
            objcopy --strip-debug "$BIN_DIR/$binary" "$context/bin/$binary"
        else
            cp "$BIN_DIR/$binary" "$context/bin/$binary"
        fi
    done
}

main() {
    parse_args "$@"
    if [[ "$BASE" == local ]]; then
        "$DOCKER_DIR/base/build-base.sh"
        BASE="$LOCAL_BASE"
    fi
    local context target binary name output
    context="$(mktemp -d /tmp/funnelpulse-images.XXXXXX)"
    # shellcheck disable=SC2064 # expand now: the path is fixed
    trap "rm -rf '$context'" EXIT
    make_context "$context"
    for image in "${IMAGES[@]}"; do
        read -r target binary name <<<"$image"
        echo "building $name:$TAG (base $BASE, $binary from $BIN_DIR)"
        # Quiet unless it fails (the legacy builder also warns it is deprecated).
        if ! output="$(docker build --target "$target" --build-arg "BASE=$BASE" -t "$name:$TAG" "$context" 2>&1)"; then
            echo "$output" >&2
            die "docker build of $name:$TAG failed"
        fi
    done
    echo "built funnelpulse-scheduler:$TAG, funnelpulse-executor:$TAG, funnelpulse:$TAG"
}

main "$@"
