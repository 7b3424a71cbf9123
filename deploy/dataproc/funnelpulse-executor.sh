#!/usr/bin/env bash
# Dataproc initialization action: runs FunnelPulse's Ballista executor on the
# nodes of a Dataproc cluster, beside YARN, registered with a scheduler: ours
# on the master, or an existing one named in the metadata. Dataproc runs it
# as root on every node when the cluster is created; usage in docs/dataproc.md.
#
# Cluster metadata (gcloud dataproc clusters create … --metadata K=V,…):
#   funnelpulse-release                  gs://<bucket>/releases/<version> (required; upload it first)
#   funnelpulse-scheduler-host           empty or "local": run the scheduler on the first master;
#                                        else an existing scheduler's address
#   funnelpulse-executor-slots           task slots per executor (default: half the node's vCPUs, at least 1)
#   funnelpulse-executor-memory-percent  the executor's memory cap, % of the node's RAM (default 25)
# and Dataproc's own: dataproc-role (Master or Worker), dataproc-master (the
# first master's host name), dataproc-worker-count.
#
# What runs where: each worker runs an executor (as each runs a YARN
# NodeManager); the first master runs the scheduler when it is local; a
# single-node cluster (0 workers) runs both on its master; other masters
# (high availability) run nothing.
#
# For tests: GCE_METADATA_HOST, FUNNELPULSE_ROOT (install root, default /),
# FUNNELPULSE_VCPUS (default nproc), FUNNELPULSE_MEMORY_MB (default: MemTotal
# of /proc/meminfo), FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS
# (default 300: the release should be there before the cluster is created,
# and Dataproc gives an initialization action 10 minutes), FUNNELPULSE_RETRY_SECONDS (10).
set -euo pipefail

ROOT="${FUNNELPULSE_ROOT:-/}"
METADATA_URL="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance"
DOWNLOAD_TIMEOUT="${FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS:-300}"
RETRY_SECONDS="${FUNNELPULSE_RETRY_SECONDS:-10}"
BIN_DIR=/opt/funnelpulse/bin
UNIT_DIR=/etc/systemd/system
WORK_DIR=/var/lib/funnelpulse/work
SERVICE_USER=funnelpulse

log() { echo "funnelpulse-dataproc: $*"; }
die() {
    log "error: $*" >&2
    exit 1
}

at() { echo "${ROOT%/}$1"; }

# Prints a metadata value (path under instance/); empty when it is not set.
metadata() {
    local out code
    out="$(mktemp)"
    code="$(curl -sS --retry 5 --retry-delay 1 --retry-connrefused --max-time 10 -H 'Metadata-Flavor: Google' \
        -o "$out" -w '%{http_code}' "$METADATA_URL/$1")" || code=000
    case "$code" in
    200) cat "$out" ;;
    404) ;;
    *)
        rm -f "$out"
        die "metadata server $METADATA_URL/$1 answered HTTP $code"
        ;;
    esac
    rm -f "$out"
}

install_binary() { # name, release url
    local url="$2/$1" dest deadline=$((SECONDS + DOWNLOAD_TIMEOUT))
    dest="$(at "$BIN_DIR")/$1"
    mkdir -p "$(dirname "$dest")"
    until gcloud storage cp "$url" "$dest.download"; do
        [[ $SECONDS -lt $deadline ]] || die "$url is still missing after ${DOWNLOAD_TIMEOUT}s: upload the release before creating the cluster (docs/dataproc.md)"
        log "waiting for $url"
        sleep "$RETRY_SECONDS"
    done
    chmod 0755 "$dest.download"
    mv -f "$dest.download" "$dest"
    log "installed $BIN_DIR/$1 from $url"
}

write_unit() { # name, description, ExecStart, extra [Service] lines
    local file
    file="$(at "$UNIT_DIR")/$1.service"
    mkdir -p "$(dirname "$file")"
    cat >"$file" <<UNIT
[Unit]
Description=$2
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=$3
User=$SERVICE_USER
Restart=always
RestartSec=5
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes${4:+
$4}

[Install]
WantedBy=multi-user.target
UNIT
}

start() {
    systemctl daemon-reload
    systemctl enable --now "$1.service"
}

run_scheduler() { # own host name, release
    install_binary funnelpulse-scheduler "$2"
    write_unit funnelpulse-scheduler "FunnelPulse Ballista scheduler" \
        "$BIN_DIR/funnelpulse-scheduler --bind-host 0.0.0.0 --external-host $1 --port 50050 --executor-timeout-seconds 30 --enable-embedded-flight-proxy"
    start funnelpulse-scheduler
    log "scheduler on $1:50050"
}

# Beside YARN, the executor gets a share of the node, not all of it: Dataproc
# gives YARN's NodeManager about 80% of the RAM and every vCPU, and Ballista's
# executor, left alone, takes one task slot per core and as much memory as its
# tasks need. So: fewer slots (half the vCPUs), a hard memory cap (MemoryMax:
# past it the kernel kills our executor, which the scheduler and our stages
# survive as a lost executor, instead of a YARN container or the NodeManager),
# and a lower CPU weight, so YARN's containers win when both are busy.
run_executor() { # own host name, scheduler host, release
    local vcpus slots memory node_mb cap_mb
    vcpus="${FUNNELPULSE_VCPUS:-$(nproc)}"
    node_mb="${FUNNELPULSE_MEMORY_MB:-$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)}"
    slots="$(metadata attributes/funnelpulse-executor-slots)"
    slots="${slots:-$((vcpus / 2 > 1 ? vcpus / 2 : 1))}"
    memory="$(metadata attributes/funnelpulse-executor-memory-percent)"
    memory="${memory:-25}"
    [[ "$slots" =~ ^[0-9]+$ && "$slots" -ge 1 ]] || die "funnelpulse-executor-slots must be a number ≥ 1, not '$slots'"
    [[ "$memory" =~ ^[0-9]+$ && "$memory" -ge 5 && "$memory" -le 90 ]] ||
        die "funnelpulse-executor-memory-percent must be a whole number from 5 to 90, not '$memory'"
    cap_mb=$((node_mb * memory / 100))
    install_binary funnelpulse-executor "$3"
    write_unit funnelpulse-executor "FunnelPulse Ballista executor (beside YARN)" \
        "$BIN_DIR/funnelpulse-executor --scheduler-host $2 --scheduler-port 50050 --external-host $1 --work-dir $WORK_DIR --heartbeat-interval-seconds 5 --concurrent-tasks $slots" \
        "StateDirectory=${WORK_DIR#/var/lib/}
MemoryMax=${cap_mb}M
CPUWeight=50"
    start funnelpulse-executor
    log "executor with $slots task slots (of $vcpus vCPUs) and at most $cap_mb MiB ($memory% of $node_mb), registered with $2:50050"
}

main() {
    local role host master workers release scheduler_host first_master=0
    role="$(metadata attributes/dataproc-role)"
    case "$role" in
    Master | Worker) ;;
    *) die "dataproc-role is '$role', not Master or Worker: run this as a Dataproc initialization action" ;;
    esac
    host="$(metadata hostname)"
    master="$(metadata attributes/dataproc-master)"
    workers="$(metadata attributes/dataproc-worker-count)"
    release="$(metadata attributes/funnelpulse-release)"
    [[ "$release" == gs://* ]] || die "cluster metadata funnelpulse-release is '$release', not gs://<bucket>/releases/<version> (docs/dataproc.md)"
    release="${release%/}"
    scheduler_host="$(metadata attributes/funnelpulse-scheduler-host)"
    [[ -n "$master" ]] || die "dataproc-master is not in the metadata"
    [[ "${host%%.*}" == "${master%%.*}" ]] && first_master=1

    id -u "$SERVICE_USER" >/dev/null 2>&1 ||
        useradd --system --no-create-home --home-dir /var/lib/funnelpulse --shell /usr/sbin/nologin "$SERVICE_USER"

    local ran=0
    if [[ -z "$scheduler_host" || "$scheduler_host" == local ]]; then
        scheduler_host="$master"
        if [[ "$first_master" == 1 ]]; then
            run_scheduler "$host" "$release"
            ran=1
        fi
    fi
    if [[ "$role" == Worker || ("$first_master" == 1 && "${workers:-0}" == 0) ]]; then
        run_executor "$host" "$scheduler_host" "$release"
        ran=1
    fi
    if [[ "$ran" == 0 ]]; then
        log "nothing of ours runs on this ${role,,} (the scheduler is $scheduler_host:50050)"
    fi
}

main "$@"
