#!/usr/bin/env bash
# Shared by the deploy scripts: settings, --dry-run, and the helpers of the two
# targets (lib/local.sh: processes on 127.0.0.1; lib/gce.sh: a Terraform cluster
# on Compute Engine reached through an IAP tunnel).
#
# Settings: a flag wins over the environment, which wins over the settings file
# (deploy/gce.env, or the file FUNNELPULSE_DEPLOY_CONFIG names; FUNNELPULSE_NAME=value
# lines). FUNNELPULSE_CONFIG stays the CLI's funnelpulse.toml: it reaches the CLI the
# scripts run on this machine.
#   --target local|gce            FUNNELPULSE_TARGET (default gce)
#   --executors N                 FUNNELPULSE_EXECUTORS (default 2)
#   --lake URL                    FUNNELPULSE_LAKE (default: local $FUNNELPULSE_LOCAL_DIR/lake, gce the bucket's lake);
#                                 a --lake among the options for funnelpulse (after --) counts as this one
#   --dry-run                     print every command instead of running it
#   --project ID                  FUNNELPULSE_PROJECT (gce; default: gcloud config get-value project)
#   --region R / --zone Z         FUNNELPULSE_REGION / FUNNELPULSE_ZONE (gce; europe-west1 / europe-west1-b)
#   --scheduler-machine-type T    FUNNELPULSE_SCHEDULER_MACHINE_TYPE (gce; e2-standard-2)
#   --executor-machine-type T     FUNNELPULSE_EXECUTOR_MACHINE_TYPE (gce; e2-standard-4)
#   --spot / --no-spot            FUNNELPULSE_SPOT=true|false (gce; spot executors, default true)
#   --idle-minutes N              FUNNELPULSE_IDLE_MINUTES (gce; watchdog, default 60, 0 = off)
#   --bucket NAME                 FUNNELPULSE_BUCKET (gce; default <project>-funnelpulse-lake)
#   --tunnel-port P               FUNNELPULSE_TUNNEL_PORT (gce; local end of the IAP tunnel, default 50050)
#   --kafka-bootstrap-servers H:P FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS (an existing Kafka, HOST:PORT[,…]: gce, as the
#                                 scheduler VM reaches it; local, the client's; default none)
#   --kafka-topic T               FUNNELPULSE_KAFKA_TOPIC (default: the cluster's, else funnelpulse_events)
#   --managed-kafka / --no-managed-kafka
#                                 FUNNELPULSE_MANAGED_KAFKA=true|false (gce; a Managed Service for Apache Kafka
#                                 cluster on the cluster's subnet, default false; not with --kafka-bootstrap-servers)
#   --kafka-partitions N          FUNNELPULSE_KAFKA_PARTITIONS (gce, managed: the topic's partitions, default 3)
#   --kafka-vcpus N               FUNNELPULSE_KAFKA_VCPUS (gce, managed: vCPUs, default 3, the minimum)
#   --kafka-memory-gib N          FUNNELPULSE_KAFKA_MEMORY_GIB (gce, managed: 1 to 8 GiB per vCPU, default 3)
#   --iap-member M                FUNNELPULSE_IAP_MEMBERS (gce; who may open IAP tunnels/SSH to the VMs, e.g.
#                                 user:me@example.com; repeatable, or comma-separated; default: Terraform's)
#   --max-run SECONDS             FUNNELPULSE_MAX_RUN_SECONDS (gce; the scheduler VM stops by itself after this
#                                 long, enforced by Compute Engine; 0 = never; default: Terraform's)
#   --billing-account ID          FUNNELPULSE_BILLING_ACCOUNT (gce; a billing budget alert on that account)
#   --state-bucket NAME           FUNNELPULSE_STATE_BUCKET (gce; Terraform state in gs://NAME, remembered in
#                                 FUNNELPULSE_LOCAL_DIR/gce/state-bucket; default: the local terraform.tfstate)
#   FUNNELPULSE_LOCAL_DIR         pid files, logs, work dirs (local) and tunnel state (gce/) (default .funnelpulse-local)
#   FUNNELPULSE_BIN_DIR           where funnelpulse, -scheduler, -executor are (default target/release)
#   FUNNELPULSE_CLUSTER_BIN_DIR   gce: the Linux x86-64 scheduler, executor and client to upload (default FUNNELPULSE_BIN_DIR)
#   FUNNELPULSE_SCHEDULER_PORT    local scheduler port (default 50050); executors take the ports after it

set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$DEPLOY_DIR")"

die() {
    echo "error: $*" >&2
    exit 1
}

# Whether a file is clearly deploy settings: not *.toml, with at least one
# setting, every one a FUNNELPULSE_NAME=value line (the CLI's funnelpulse.toml
# has flag names as keys, `lake = "…"`).
is_deploy_settings_file() { # file
    local line found=1
    [[ -f "$1" && "$1" != *.toml ]] || return 1
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"
        [[ -z "$line" || "$line" == \#* ]] && continue
        [[ "${line#export }" =~ ^FUNNELPULSE_[A-Z0-9_]+= ]] || return 1
        found=0
    done <"$1"
    return "$found"
}

# The settings file: FUNNELPULSE_DEPLOY_CONFIG, else deploy/gce.env.
# FUNNELPULSE_CONFIG is the CLI's funnelpulse.toml, which the CLI run by the
# scripts reads as it is. Older scripts read their settings through it: a
# FUNNELPULSE_CONFIG that is clearly deploy settings is still read (when
# FUNNELPULSE_DEPLOY_CONFIG is not set) and kept from the CLI, which would
# refuse it.
settings_file() {
    SETTINGS_VAR=FUNNELPULSE_DEPLOY_CONFIG
    if [[ -n "${FUNNELPULSE_CONFIG:-}" ]] && is_deploy_settings_file "$FUNNELPULSE_CONFIG"; then
        if [[ -z "${FUNNELPULSE_DEPLOY_CONFIG:-}" ]]; then
            echo "warning: FUNNELPULSE_CONFIG names deploy settings ($FUNNELPULSE_CONFIG), read as before; name them with FUNNELPULSE_DEPLOY_CONFIG instead (FUNNELPULSE_CONFIG is for the CLI's funnelpulse.toml)" >&2
            FUNNELPULSE_DEPLOY_CONFIG="$FUNNELPULSE_CONFIG"
            SETTINGS_VAR=FUNNELPULSE_CONFIG
        else
            echo "warning: FUNNELPULSE_CONFIG names deploy settings ($FUNNELPULSE_CONFIG), not a funnelpulse.toml: ignored, and not given to the CLI (the deploy settings are $FUNNELPULSE_DEPLOY_CONFIG)" >&2
        fi
        unset FUNNELPULSE_CONFIG
    fi
    SETTINGS_FILE="${FUNNELPULSE_DEPLOY_CONFIG:-$DEPLOY_DIR/gce.env}"
}

# Exports each FUNNELPULSE_NAME=value line of the settings file whose variable
# the environment does not set already (so the environment wins). Parsed, not
# sourced: the file holds settings, never code.
load_settings_file() {
    local line key value
    settings_file
    if [[ ! -f "$SETTINGS_FILE" ]]; then
        [[ -z "${FUNNELPULSE_DEPLOY_CONFIG:-}" ]] || die "settings file $SETTINGS_FILE ($SETTINGS_VAR) not found"
        return 0
    fi
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"
        [[ -z "$line" || "$line" == \#* ]] && continue
        line="${line#export }"
        key="${line%%=*}"
        value="${line#*=}"
        [[ "$line" == *=* && "$key" =~ ^FUNNELPULSE_[A-Z0-9_]+$ ]] ||
            die "$SETTINGS_FILE ($SETTINGS_VAR): '$line' is not a FUNNELPULSE_NAME=value line (the CLI's funnelpulse.toml goes in FUNNELPULSE_CONFIG)"
        value="${value%\"}" && value="${value#\"}"
        value="${value%\'}" && value="${value#\'}"
        if [[ -z "${!key+set}" ]]; then
            export "${key?}=$value"
            FROM_SETTINGS_FILE+=("$key")
        fi
    done <"$SETTINGS_FILE"
}
FROM_SETTINGS_FILE=()
load_settings_file

TARGET="${FUNNELPULSE_TARGET:-gce}"
EXECUTORS="${FUNNELPULSE_EXECUTORS:-2}"
DRY_RUN=0
# submit.sh --detach: leave a Kafka run running (gce: a systemd unit on the scheduler VM).
DETACH=0
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
KAFKA_BOOTSTRAP_SERVERS="${FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS:-}"
# Empty: the cluster's topic (Terraform output), else funnelpulse_events.
KAFKA_TOPIC="${FUNNELPULSE_KAFKA_TOPIC:-}"
MANAGED_KAFKA="${FUNNELPULSE_MANAGED_KAFKA:-false}"
KAFKA_PARTITIONS="${FUNNELPULSE_KAFKA_PARTITIONS:-3}"
KAFKA_VCPUS="${FUNNELPULSE_KAFKA_VCPUS:-3}"
KAFKA_MEMORY_GIB="${FUNNELPULSE_KAFKA_MEMORY_GIB:-3}"
IAP_MEMBERS=()
if [[ -n "${FUNNELPULSE_IAP_MEMBERS:-}" ]]; then IFS=, read -r -a IAP_MEMBERS <<<"$FUNNELPULSE_IAP_MEMBERS"; fi
MAX_RUN="${FUNNELPULSE_MAX_RUN_SECONDS:-}"
BILLING_ACCOUNT="${FUNNELPULSE_BILLING_ACCOUNT:-}"
STATE_BUCKET="${FUNNELPULSE_STATE_BUCKET:-}"
DEFAULT_KAFKA_TOPIC=funnelpulse_events
# Where LAKE comes from, shown with it (lake_line).
LAKE_FROM=""
if [[ -n "$LAKE" ]]; then
    LAKE_FROM=FUNNELPULSE_LAKE
    if [[ " ${FROM_SETTINGS_FILE[*]+"${FROM_SETTINGS_FILE[*]}"} " == *" FUNNELPULSE_LAKE "* ]]; then LAKE_FROM+=" in $SETTINGS_FILE"; fi
fi
# Arguments left after the common options (stages, script options, and `--` with
# the options for funnelpulse run).
REST=()

# A command as --dry-run prints it, without its secrets (as the CLI prints
# them): a webhook's path, user:password@ of any URL, query values, Kafka
# passwords (--kafka-option sasl.password=…; a quoted value up to its quote).
redact() {
    sed -E \
        -e "s%((--alert-webhook|--webhook|FUNNELPULSE_ALERT_WEBHOOK)[= ]+'?[A-Za-z][A-Za-z0-9+.-]*://[^/?#' ]*)[^' ]*%\\1/…%g" \
        -e "s%://[^/?#@' ]*@%://%g" \
        -e "s%([?&][^=&?#' ]*=)[^&#' ]*%\\1…%g" \
        -e "s%('[^=' ]*(password|secret|token|jaas)[^=' ]*=)[^']*%\\1…%g" \
        -e "s%((password|secret|token|jaas)[^=' ]*=)[^,' ]*%\\1…%g" <<<"$*"
}

# Runs a command, or prints it with --dry-run.
run() {
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ $(redact "$*")"
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
        --lake) set_lake "${2:?--lake needs a URL}" --lake; shift 2 ;;
        --lake=*) set_lake "${1#*=}" --lake; shift ;;
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
        --kafka-bootstrap-servers) KAFKA_BOOTSTRAP_SERVERS="${2:?--kafka-bootstrap-servers needs HOST:PORT[,HOST:PORT…]}"; shift 2 ;;
        --kafka-topic) KAFKA_TOPIC="${2:?--kafka-topic needs a topic}"; shift 2 ;;
        --managed-kafka) MANAGED_KAFKA=true; shift ;;
        --no-managed-kafka) MANAGED_KAFKA=false; shift ;;
        --kafka-partitions) KAFKA_PARTITIONS="${2:?--kafka-partitions needs a number}"; shift 2 ;;
        --kafka-vcpus) KAFKA_VCPUS="${2:?--kafka-vcpus needs a number}"; shift 2 ;;
        --kafka-memory-gib) KAFKA_MEMORY_GIB="${2:?--kafka-memory-gib needs a number of GiB}"; shift 2 ;;
        --iap-member) IAP_MEMBERS+=("${2:?--iap-member needs a member, e.g. user:me@example.com}"); shift 2 ;;
        --max-run) MAX_RUN="${2:?--max-run needs a number of seconds (0 = never)}"; shift 2 ;;
        --billing-account) BILLING_ACCOUNT="${2:?--billing-account needs a billing account id}"; shift 2 ;;
        --state-bucket) STATE_BUCKET="${2:?--state-bucket needs a bucket name}"; shift 2 ;;
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
    check_kafka_settings
    [[ -z "$MAX_RUN" || "$MAX_RUN" =~ ^[0-9]+$ ]] || die "--max-run must be a number of seconds (0 = never), not '$MAX_RUN'"
    local member
    for member in "${IAP_MEMBERS[@]+"${IAP_MEMBERS[@]}"}"; do
        [[ "$member" =~ ^(user|group|serviceAccount|domain|principal|principalSet):[^[:space:]\",]+$ ]] ||
            die "--iap-member must be an IAM member such as user:me@example.com or group:team@example.com, not '$member'"
    done
    [[ -z "$BILLING_ACCOUNT" || "$BILLING_ACCOUNT" =~ ^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$ ]] ||
        die "--billing-account must be a billing account id like 012345-6789AB-CDEF01, not '$BILLING_ACCOUNT'"
    [[ -z "$STATE_BUCKET" || "$STATE_BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] ||
        die "--state-bucket must be a bucket name (without gs://), not '$STATE_BUCKET'"
    if [[ "$TARGET" == local ]]; then
        if [[ -z "$LAKE" ]]; then LAKE="$LOCAL_DIR/lake" LAKE_FROM="the local target's default"; fi
        [[ "$SCHEDULER_PORT" =~ ^[0-9]{1,5}$ && "$SCHEDULER_PORT" -ge 1 && $((SCHEDULER_PORT + 2 * EXECUTORS)) -le 65535 ]] ||
            die "FUNNELPULSE_SCHEDULER_PORT must be a port number with room for the $((2 * EXECUTORS)) executor ports after it (at most $((65535 - 2 * EXECUTORS))), not '$SCHEDULER_PORT'"
        API_BASE="http://127.0.0.1:$SCHEDULER_PORT"
    else
        API_BASE="http://localhost:$TUNNEL_PORT"
    fi
}

# A lake named on the command line. The same lake twice is fine; two are refused.
set_lake() { # url, how it was given
    [[ -n "$1" ]] || die "$2 needs a URL"
    if [[ "$LAKE_FROM" == --lake* && "$LAKE" != "$1" ]]; then
        die "two lakes given: --lake $LAKE and --lake $1 ($2): give one"
    fi
    LAKE="$1" LAKE_FROM="$2"
}

# The options for funnelpulse (after --) may name the lake: it becomes the
# run's lake (checked and shown as --lake is), taken out of them so that
# funnelpulse gets one --lake (clap refuses two). Sets OPTIONS: the rest.
take_user_lake() { # options…
    local arg take=0
    OPTIONS=()
    for arg in "$@"; do
        if [[ $take == 1 ]]; then
            set_lake "$arg" "--lake after --"
            take=0
            continue
        fi
        case "$arg" in
        --lake) take=1 ;;
        --lake=*) set_lake "${arg#--lake=}" "--lake after --" ;;
        *) OPTIONS+=("$arg") ;;
        esac
    done
    [[ $take == 0 ]] || die "--lake needs a URL"
}

# The line that says which lake a run uses, and why.
lake_line() { echo "lake: $LAKE ($LAKE_FROM)"; }

# The Kafka settings, checked as Terraform's variables check them (before
# anything runs). The local target ignores --managed-kafka.
check_kafka_settings() {
    local var flag min host='([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}' count
    [[ -z "$KAFKA_BOOTSTRAP_SERVERS" || "$KAFKA_BOOTSTRAP_SERVERS" =~ ^$host(,$host)*$ ]] ||
        die "--kafka-bootstrap-servers must be HOST:PORT[,HOST:PORT…] without spaces, not '$KAFKA_BOOTSTRAP_SERVERS'"
    [[ -z "$KAFKA_TOPIC" || "$KAFKA_TOPIC" =~ ^[A-Za-z0-9._-]{1,249}$ ]] ||
        die "--kafka-topic must be 1 to 249 letters, digits, '.', '_' or '-', not '$KAFKA_TOPIC'"
    case "$MANAGED_KAFKA" in
    true | 1 | yes) MANAGED_KAFKA=true ;;
    false | 0 | no) MANAGED_KAFKA=false ;;
    *) die "FUNNELPULSE_MANAGED_KAFKA must be true or false, not '$MANAGED_KAFKA'" ;;
    esac
    for count in "KAFKA_PARTITIONS:--kafka-partitions:1" "KAFKA_VCPUS:--kafka-vcpus:3" "KAFKA_MEMORY_GIB:--kafka-memory-gib:3"; do
        IFS=: read -r var flag min <<<"$count"
        [[ "${!var}" =~ ^[0-9]+$ && "${!var}" -ge "$min" ]] || die "$flag must be a whole number ≥ $min, not '${!var}'"
    done
    [[ "$KAFKA_MEMORY_GIB" -le $((8 * KAFKA_VCPUS)) && "$KAFKA_MEMORY_GIB" -ge "$KAFKA_VCPUS" ]] ||
        die "--kafka-memory-gib must be 1 to 8 GiB per vCPU: $KAFKA_VCPUS to $((8 * KAFKA_VCPUS)) for $KAFKA_VCPUS vCPUs, not $KAFKA_MEMORY_GIB"
}

# Words as one line that a POSIX shell splits back into the same words: each
# word with anything but [A-Za-z0-9_./:=,@%+-] goes in single quotes. For the
# commands run on the scheduler VM over SSH, which get one string.
shell_quote() {
    local word quoted=() plain='^[A-Za-z0-9_./:=,@%+-]+$'
    for word in "$@"; do
        if [[ "$word" =~ $plain ]]; then
            quoted+=("$word")
        else
            quoted+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    echo "${quoted[*]}"
}

# What kind of run a submit is: "replay" (the kafka-replay command), "stream"
# (stages with --source kafka: stage 04 reading a topic), or "" (the rest).
# The Kafka runs need the brokers; on gce they run on the scheduler VM.
kafka_run_kind() { # submit arguments…
    local previous="" arg
    [[ "${1:-}" == kafka-replay ]] && { echo replay; return; }
    for arg in "$@"; do
        if [[ "$arg" == --source=kafka || ( "$previous" == --source && "$arg" == kafka ) ]]; then
            echo stream
            return
        fi
        previous="$arg"
    done
    if [[ "${FUNNELPULSE_STREAM_SOURCE_KIND:-}" == kafka ]]; then echo stream; fi
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
    [[ -x "$path" || "$DRY_RUN" == 1 ]] || die "$path not found: build with 'cargo build --release -p funnelpulse -p funnelpulse-scheduler -p funnelpulse-executor' or set FUNNELPULSE_BIN_DIR"
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
