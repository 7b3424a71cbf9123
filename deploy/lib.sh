#!/usr/bin/env bash
# Shared by the deploy scripts: settings, --dry-run, and the helpers of the two
# targets (lib/local.sh: processes on 127.0.0.1; lib/gce.sh: a Terraform cluster
# on Compute Engine reached through an IAP tunnel).
#
# Settings: a flag wins over the environment, which wins over the settings file
# (deploy/gce.env, or the file FUNNELPULSE_CONFIG names; FUNNELPULSE_NAME=value lines).
#   --target local|gce            FUNNELPULSE_TARGET (default gce)
#   --executors N                 FUNNELPULSE_EXECUTORS (default 2)
#   --lake URL                    FUNNELPULSE_LAKE (default: local $FUNNELPULSE_LOCAL_DIR/lake, gce the bucket's lake)
#   --dry-run                     print every command instead of running it
#   --project ID                  FUNNELPULSE_PROJECT (gce; default: gcloud config get-value project)
#   --region R / --zone Z         FUNNELPULSE_REGION / FUNNELPULSE_ZONE (gce; europe-west1 / europe-west1-b)
#   --scheduler-machine-type T    FUNNELPULSE_SCHEDULER_MACHINE_TYPE (gce; e2-standard-2)
#   --executor-machine-type T     FUNNELPULSE_EXECUTOR_MACHINE_TYPE (gce; e2-standard-4)
#   --spot / --no-spot            FUNNELPULSE_SPOT=true|false (gce; spot executors, default true)
#   --idle-minutes N              FUNNELPULSE_IDLE_MINUTES (gce; watchdog, default 60, 0 = off)
#   --bucket NAME                 FUNNELPULSE_BUCKET (gce; default <project>-funnelpulse-lake)
#   --tunnel-port P               FUNNELPULSE_TUNNEL_PORT (gce; local end of the IAP tunnel, default 50050)
#   FUNNELPULSE_LOCAL_DIR         pid files, logs, work dirs (local) and tunnel state (gce/) (default .funnelpulse-local)
#   FUNNELPULSE_BIN_DIR           where funnelpulse, -scheduler, -executor are (default target/release)
#   FUNNELPULSE_CLUSTER_BIN_DIR   gce: the Linux x86-64 scheduler and executor to upload (default FUNNELPULSE_BIN_DIR)
#   FUNNELPULSE_SCHEDULER_PORT    local scheduler port (default 50050); executors take the ports after it

set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"

die() {
    echo "error: $*" >&2
    exit 1
}

# Exports each FUNNELPULSE_NAME=value line of the settings file whose variable
# the environment does not set already (so the environment wins). Parsed, not
# sourced: the file holds settings, never code.
load_settings_file() {
    local file="${FUNNELPULSE_CONFIG:-$DEPLOY_DIR/gce.env}" line key value
    if [[ ! -f "$file" ]]; then
        [[ -z "${FUNNELPULSE_CONFIG:-}" ]] || die "settings file $file (FUNNELPULSE_CONFIG) not found"
        return 0
    fi
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"
        [[ -z "$line" || "$line" == \#* ]] && continue
        line="${line#export }"
        key="${line%%=*}"
        value="${line#*=}"
        [[ "$line" == *=* && "$key" =~ ^FUNNELPULSE_[A-Z0-9_]+$ ]] || die "$file: '$line' is not a FUNNELPULSE_NAME=value line"
        value="${value%\"}" && value="${value#\"}"
        value="${value%\'}" && value="${value#\'}"
        if [[ -z "${!key+set}" ]]; then export "${key?}=$value"; fi
    done <"$file"
}
load_settings_file

TARGET="${FUNNELPULSE_TARGET:-gce}"
EXECUTORS="${FUNNELPULSE_EXECUTORS:-2}"
DRY_RUN=0
LOCAL_DIR="${FUNNELPULSE_LOCAL_DIR:-$ROOT_DIR/.funnelpulse-local}"
BIN_DIR="${FUNNELPULSE_BIN_DIR:-$ROOT_DIR/target/release}"
CLUSTER_BIN_DIR="${FUNNELPULSE_CLUSTER_BIN_DIR:-$BIN_DIR}"
SCHEDULER_PORT="${FUNNELPULSE_SCHEDULER_PORT:-50050}"
LAKE="${FUNNELPULSE_LAKE:-}"
PROJECT="${FUNNELPULSE_PROJECT:-}"
REGION="${FUNNELPULSE_REGION:-europe-west1}"
ZONE="${FUNNELPULSE_ZONE:-europe-west1-b}"
SCHEDULER_MACHINE_TYPE="${FUNNELPULSE_SCHEDULER_MACHINE_TYPE:-e2-standard-2}"
EXECUTOR_MACHINE_TYPE="${FUNNELPULSE_EXECUTOR_MACHINE_TYPE:-e2-standard-4}"
SPOT="${FUNNELPULSE_SPOT:-true}"
IDLE_MINUTES="${FUNNELPULSE_IDLE_MINUTES:-60}"
BUCKET="${FUNNELPULSE_BUCKET:-}"
TUNNEL_PORT="${FUNNELPULSE_TUNNEL_PORT:-50050}"
# Arguments left after the common options (stages, script options, and `--` with
# the options for funnelpulse run).
REST=()

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
        --project) PROJECT="${2:?--project needs a project id}"; shift 2 ;;
        --region) REGION="${2:?--region needs a region}"; shift 2 ;;
        --zone) ZONE="${2:?--zone needs a zone}"; shift 2 ;;
        --scheduler-machine-type) SCHEDULER_MACHINE_TYPE="${2:?--scheduler-machine-type needs a machine type}"; shift 2 ;;
        --executor-machine-type) EXECUTOR_MACHINE_TYPE="${2:?--executor-machine-type needs a machine type}"; shift 2 ;;
        --spot) SPOT=true; shift ;;
        --no-spot) SPOT=false; shift ;;
        --idle-minutes) IDLE_MINUTES="${2:?--idle-minutes needs a number}"; shift 2 ;;
        --bucket) BUCKET="${2:?--bucket needs a bucket name}"; shift 2 ;;
        --tunnel-port) TUNNEL_PORT="${2:?--tunnel-port needs a port}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --) REST+=("$@"); break ;;
        -h | --help) usage; exit 0 ;;
        *) REST+=("$1"); shift ;;
        esac
    done
    case "$TARGET" in
    local | gce) ;;
    *) die "unknown target '$TARGET': use local or gce" ;;
    esac
    [[ "$EXECUTORS" =~ ^[0-9]+$ && "$EXECUTORS" -ge 1 ]] || die "--executors must be a number ≥ 1, not '$EXECUTORS'"
    case "$SPOT" in
    true | 1 | yes) SPOT=true ;;
    false | 0 | no) SPOT=false ;;
    *) die "FUNNELPULSE_SPOT must be true or false, not '$SPOT'" ;;
    esac
    [[ "$IDLE_MINUTES" =~ ^[0-9]+$ ]] || die "--idle-minutes must be a number of minutes (0 disables the watchdog), not '$IDLE_MINUTES'"
    [[ "$TUNNEL_PORT" =~ ^[0-9]+$ && "$TUNNEL_PORT" -ge 1 && "$TUNNEL_PORT" -le 65535 ]] || die "--tunnel-port must be a port number, not '$TUNNEL_PORT'"
    if [[ "$TARGET" == local ]]; then
        LAKE="${LAKE:-$LOCAL_DIR/lake}"
        API_BASE="http://127.0.0.1:$SCHEDULER_PORT"
    else
        API_BASE="http://localhost:$TUNNEL_PORT"
    fi
}

scheduler_url() {
    if [[ "$TARGET" == local ]]; then echo "df://127.0.0.1:$SCHEDULER_PORT"; else echo "df://localhost:$TUNNEL_PORT"; fi
}

# The scheduler's REST API (same port as its gRPC; on gce through the tunnel).
api() { curl -fsS --max-time 5 "$API_BASE/api/$1"; }

registered_executors() { api executors 2>/dev/null | jq 'length' 2>/dev/null || echo 0; }

# "3 completed, 1 running", "none", or nothing when the scheduler does not answer.
jobs_by_status() {
    local jobs
    jobs="$(api jobs 2>/dev/null)" || return 0
    jq -r 'if length == 0 then "none" else group_by(.status) | map("\(length) \(.[0].status | ascii_downcase)") | join(", ") end' <<<"$jobs" 2>/dev/null || echo "?"
}

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

# shellcheck source-path=SCRIPTDIR source=lib/local.sh
source "$DEPLOY_DIR/lib/local.sh"
# shellcheck source-path=SCRIPTDIR source=lib/gce.sh
source "$DEPLOY_DIR/lib/gce.sh"
