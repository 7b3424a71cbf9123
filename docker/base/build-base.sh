#!/usr/bin/env bash
# Builds the local base image funnelpulse-base:bookworm without a registry:
# debootstrap a minimal Debian bookworm (plus ca-certificates) from the apt
# mirror and `docker import` it. Cached: does nothing when the image exists.
#
#   docker/base/build-base.sh [--force]
#   FUNNELPULSE_BASE_IMAGE  image name (default funnelpulse-base:bookworm)
#   DEBIAN_MIRROR           apt mirror (default http://deb.debian.org/debian)
set -euo pipefail

IMAGE="${FUNNELPULSE_BASE_IMAGE:-funnelpulse-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

die() {
    echo "error: $*" >&2
    exit 1
}

# debootstrap runs as root (it chroots and creates device nodes).
need_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return
    [[ "$(id -u)" == 0 ]] || die "debootstrap is missing: apt-get install debootstrap (as root)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# Removes what a container never needs: apt's caches and lists, docs, man pages.
slim() {
    local root="$1"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
}

main() {
    if [[ "$FORCE" == 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
        echo "base image $IMAGE exists (cached)"
        return
    fi
    [[ "$(id -u)" == 0 ]] || die "building the base needs root (debootstrap)"
    need_debootstrap
    ROOT="$(mktemp -d /tmp/funnelpulse-base.XXXXXX)"
    # Remove the chroot and its log even when debootstrap fails half-way.
    trap 'rm -rf "$ROOT" "$ROOT.log"' EXIT
    local root="$ROOT"
    echo "debootstrap bookworm (minbase + ca-certificates) from $MIRROR …"
    if ! debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR" \
        >"$root.log" 2>&1; then
        tail -20 "$root.log" >&2
        die "debootstrap failed (log above)"
    fi
    slim "$root"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
    echo "built base image $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

main
