#!/usr/bin/env bash
# Shared by the deploy scripts: options, --dry-run, and the local target's
# processes (scheduler and executors on 127.0.0.1 with pid files).
#
# Settings (flags win over environment):
#   --target local|gce          FUNNELPULSE_TARGET (default gce)
#   --executors N               FUNNELPULSE_EXECUTORS (default 2)
#   --lake URL                  FUNNELPULSE_LAKE (local target default: $FUNNELPULSE_LOCAL_DIR/lake)
#   --dry-run                   print every command instead of running it
#   FUNNELPULSE_LOCAL_DIR       pid files, logs and work dirs of the local target (default .funnelpulse-local)
#   FUNNELPULSE_BIN_DIR         where funnelpulse, -scheduler, -executor are (default target/release)
#   FUNNELPULSE_SCHEDULER_PORT  local scheduler port (default 50050); executors take the ports after it

set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"
TARGET="${FUNNELPULSE_TARGET:-gce}"
EXECUTORS="${FUNNELPULSE_EXECUTORS:-2}"
DRY_RUN=0
LOCAL_DIR="${FUNNELPULSE_LOCAL_DIR:-$ROOT_DIR/.funnelpulse-local}"
BIN_DIR="${FUNNELPULSE_BIN_DIR:-$ROOT_DIR/target/release}"
SCHEDULER_PORT="${FUNNELPULSE_SCHEDULER_PORT:-50050}"
LAKE="${FUNNELPULSE_LAKE:-}"
# Arguments left after the common options (stages, or options after `--` for funnelpulse run).
REST=()

die() {
    echo "error: $*" >&2
    exit 1
}

# Runs a command, or prints it with --dry-run.
run() {
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ $*"
    else
        "$@"
    fi
}

# Parses the options every script takes; the rest goes to REST.
parse_common() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --target) TARGET="${2:?--target needs local or gce}"; shift 2 ;;
        --target=*) TARGET="${1#*=}"; shift ;;
        --executors) EXECUTORS="${2:?--executors needs a number}"; shift 2 ;;
        --lake) LAKE="${2:?--lake needs a URL}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --) REST+=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) REST+=("$1"); shift ;;
        esac
    done
    case "$TARGET" in
    local) ;;
    gce) die "target gce: the Terraform cluster is not built yet; use --target local (processes on 127.0.0.1)" ;;
    *) die "unknown target '$TARGET': use local or gce" ;;
    esac
    [[ "$EXECUTORS" =~ ^[0-9]+$ && "$EXECUTORS" -ge 1 ]] || die "--executors must be a number ≥ 1, not '$EXECUTORS'"
    LAKE="${LAKE:-$LOCAL_DIR/lake}"
}

scheduler_url() { echo "df://127.0.0.1:$SCHEDULER_PORT"; }

# The scheduler's REST API (same port as its gRPC).
api() { curl -fsS --max-time 5 "http://127.0.0.1:$SCHEDULER_PORT/api/$1"; }

registered_executors() { api executors 2>/dev/null | jq 'length' 2>/dev/null || echo 0; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

binary() {
    local path="$BIN_DIR/$1"
    [[ -x "$path" || "$DRY_RUN" == 1 ]] || die "$path not found: build with 'cargo build --release -p funnelpulse' or set FUNNELPULSE_BIN_DIR"
    echo "$path"
}

# Runs `funnelpulse run STAGES…` against the cluster.
submit_stages() {
    local funnelpulse
    funnelpulse="$(binary funnelpulse)"
    run "$funnelpulse" run "$@" --scheduler "$(scheduler_url)" --lake "$LAKE"
}
