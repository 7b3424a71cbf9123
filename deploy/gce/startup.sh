#!/usr/bin/env bash
# Startup script of the FunnelPulse VMs (metadata "startup-script", set by
# terraform/; GCE runs it as root at every boot). Configures the VM from its
# metadata attributes:
#   funnelpulse-role            scheduler | executor
#   funnelpulse-release         gs://<bucket>/releases/<version>: the binaries' folder
#   funnelpulse-release-sha256-<binary>
#                               the sha256 (64 hex digits) of each binary of the release:
#                               funnelpulse-release-sha256-funnelpulse-scheduler, …-funnelpulse-executor,
#                               …-funnelpulse (the client); terraform/ writes them from release_sha256
#   funnelpulse-scheduler-host  the scheduler's internal address (executors)
#   funnelpulse-idle-minutes    the idle watchdog's limit, 0 = no watchdog (scheduler)
#   funnelpulse-executor-group  the executors' managed instance group (watchdog)
#   funnelpulse-zone            the zone of that group (watchdog)
#   funnelpulse-watchdog        the text of deploy/gce/watchdog.sh (scheduler)
#   funnelpulse-lake            gs://<bucket>/lake (scheduler: the client's lake)
#   funnelpulse-kafka-bootstrap-servers, funnelpulse-kafka-topic
#                               the Kafka brokers (may be empty) and topic (scheduler: the client's)
# On the scheduler it installs and starts the idle watchdog FIRST, before any
# download: a release that never arrives, or does not pass its check, still
# gets the cluster stopped. Then it downloads the role's binary from the release
# (deploy/up.sh uploads it before Terraform makes the VMs; a VM still waits for
# it, without end), checks its sha256 against the metadata and refuses it on a
# mismatch (saying why, here: the serial console), installs it in
# /opt/funnelpulse/bin and runs it as a systemd service; on the scheduler, last,
# the funnelpulse client for the stages that run on this VM (deploy/submit.sh:
# Kafka is reachable only from inside the VPC) with its settings in
# /etc/funnelpulse/client.env, and /opt/funnelpulse/bin/funnelpulse-client,
# which runs the client with them.
# Safe to run again (a new release restarts the service; an unchanged one is
# not downloaded again).
#
# For tests: GCE_METADATA_HOST (host:port of the metadata server),
# FUNNELPULSE_ROOT (install root, default /), FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS
# (give up after this long; default 0: never, the VM waits for the release) and
# FUNNELPULSE_RETRY_SECONDS (default 15).
set -euo pipefail

ROOT="${FUNNELPULSE_ROOT:-/}"
METADATA_URL="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance"
DOWNLOAD_TIMEOUT="${FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS:-0}"
RETRY_SECONDS="${FUNNELPULSE_RETRY_SECONDS:-15}"
# Paths as the VM sees them (the units name them); files go under $ROOT.
BIN_DIR=/opt/funnelpulse/bin
UNIT_DIR=/etc/systemd/system
CLIENT_ENV=/etc/funnelpulse/client.env
WORK_DIR=/var/lib/funnelpulse/work
SERVICE_USER=funnelpulse
# Set to 1 when a binary or unit file changed (a running service must restart).
CHANGED=0

# The startup script's output goes to the serial console and Cloud Logging.
log() { echo "funnelpulse-startup: $*"; }
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

# Writes a file if its content differs (content without the final newline).
put_file() { # path, content, mode
    local file
    file="$(at "$1")"
    if [[ -f "$file" && "$(cat "$file")" == "$2" ]]; then
        return
    fi
    mkdir -p "$(dirname "$file")"
    printf '%s\n' "$2" >"$file.new"
    chmod "$3" "$file.new"
    mv -f "$file.new" "$file"
    CHANGED=1
}

# Copies a release object, retrying until it is there: deploy/up.sh uploads it before
# Terraform makes the VMs, but a VM made by hand, or an upload that failed half-way,
# may come first. A VM waits without end by default (an executor that gave up would sit
# there billing, and nothing runs this script again before a reboot); the scheduler's
# watchdog, started before, stops the cluster meanwhile. With a timeout it gives up.
download() { # url, destination
    local deadline=$((SECONDS + DOWNLOAD_TIMEOUT)) attempt=1 err
    err="$(mktemp)"
    until gcloud storage cp "$1" "$2" 2>"$err"; do
        if [[ "$DOWNLOAD_TIMEOUT" -gt 0 && $SECONDS -ge $deadline ]]; then
            cat "$err" >&2
            die "$1 is still missing after ${DOWNLOAD_TIMEOUT}s: upload the release (deploy/up.sh does) and reboot this VM"
        fi
        log "waiting for $1 (attempt $attempt; deploy/up.sh uploads it): $(tail -n 1 "$err")"
        attempt=$((attempt + 1))
        sleep "$RETRY_SECONDS"
    done
    rm -f "$err"
}

file_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# The sha256 the metadata gives for a binary of the release; refuses to go on without one.
expected_sha256() { # name
    local sum
    sum="$(metadata "attributes/funnelpulse-release-sha256-$1")"
    [[ "$sum" =~ ^[0-9a-f]{64}$ ]] ||
        die "metadata attribute funnelpulse-release-sha256-$1 is '$sum', not a sha256 (64 hex digits): refusing to run an unchecked $1 (terraform/ writes it from release_sha256, which deploy/up.sh passes)"
    echo "$sum"
}

# Installs a binary (funnelpulse-<role>, or the client funnelpulse) from the
# release unless that release is already installed, after checking its sha256.
install_binary() { # name, release url
    local name="$1" url="$2/$1" dest expected actual
    dest="$(at "$BIN_DIR")/$name"
    expected="$(expected_sha256 "$name")"
    if [[ -x "$dest" && "$(cat "$dest.release" 2>/dev/null)" == "$url" && "$(file_sha256 "$dest")" == "$expected" ]]; then
        log "$name of $2 is already installed"
        return
    fi
    mkdir -p "$(dirname "$dest")"
    download "$url" "$dest.download"
    actual="$(file_sha256 "$dest.download")"
    if [[ "$actual" != "$expected" ]]; then
        rm -f "$dest.download"
        die "refusing $url: its sha256 is $actual, but the metadata (funnelpulse-release-sha256-$name) says $expected (an upload cut short, or an object changed in the bucket); nothing of it was installed or started. deploy/up.sh uploads the release again; then reboot this VM (the executor group's autohealing recreates its VMs)"
    fi
    chmod 0755 "$dest.download"
    mv -f "$dest.download" "$dest"
    echo "$url" >"$dest.release"
    CHANGED=1
    log "installed $BIN_DIR/$name from $url (sha256 $actual, as the metadata says)"
}

ensure_user() {
    id -u "$SERVICE_USER" >/dev/null 2>&1 ||
        useradd --system --no-create-home --home-dir /var/lib/funnelpulse --shell /usr/sbin/nologin "$SERVICE_USER"
}

# Restart=always: an executor that starts before the scheduler answers exits
# after its connect timeout and simply tries again; a crashed process comes back.
unit() { # description, ExecStart, extra [Service] lines
    cat <<UNIT
[Unit]
Description=$1
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=$2
User=$SERVICE_USER
Restart=always
RestartSec=5
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes${3:+
$3}

[Install]
WantedBy=multi-user.target
UNIT
}

scheduler_unit() { # own hostname
    unit "FunnelPulse Ballista scheduler" \
        "$BIN_DIR/funnelpulse-scheduler --bind-host 0.0.0.0 --external-host $1 --port 50050 --executor-timeout-seconds 30 --enable-embedded-flight-proxy"
}

executor_unit() { # own hostname, scheduler host
    unit "FunnelPulse Ballista executor" \
        "$BIN_DIR/funnelpulse-executor --scheduler-host $2 --scheduler-port 50050 --external-host $1 --work-dir $WORK_DIR --heartbeat-interval-seconds 5" \
        "StateDirectory=${WORK_DIR#/var/lib/}"
}

# Runs as root: it powers the VM off, and gcloud uses the VM's service account.
# It reads the idle minutes from the metadata at every poll, so a new
# idle_minutes applies without a reboot. /run is emptied at boot: every boot
# starts a full idle period, while a restarted watchdog keeps its clock.
watchdog_unit() { # executor group, zone
    cat <<UNIT
[Unit]
Description=FunnelPulse idle watchdog: scales the executors to 0 and powers this VM off when no job ran for a while
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=$BIN_DIR/funnelpulse-watchdog
Environment=FUNNELPULSE_EXECUTOR_GROUP=$1
Environment=FUNNELPULSE_ZONE=$2
Environment=FUNNELPULSE_WATCHDOG_STATE_DIR=/run/funnelpulse-watchdog
RuntimeDirectory=funnelpulse-watchdog
RuntimeDirectoryPreserve=yes
Restart=always
RestartSec=30

[Install]
WantedBy=multi-user.target
UNIT
}

# Starts (or, when its files changed while it ran, restarts) a service.
start_service() { # unit name, changed
    systemctl daemon-reload
    if [[ "$2" == 1 ]] && systemctl is-active --quiet "$1"; then
        systemctl restart "$1"
    fi
    systemctl enable --now "$1"
}

setup_watchdog() {
    local idle group zone script unit=funnelpulse-watchdog.service
    idle="$(metadata attributes/funnelpulse-idle-minutes)"
    [[ "${idle:-0}" =~ ^[0-9]+$ ]] || die "funnelpulse-idle-minutes must be a whole number of minutes, not '$idle'"
    if [[ "${idle:-0}" -eq 0 ]]; then
        if [[ -f "$(at "$UNIT_DIR/$unit")" ]]; then
            systemctl disable --now "$unit"
            rm -f "$(at "$UNIT_DIR/$unit")"
            systemctl daemon-reload
        fi
        log "idle watchdog off (funnelpulse-idle-minutes is ${idle:-unset})"
        return
    fi
    script="$(metadata attributes/funnelpulse-watchdog)"
    group="$(metadata attributes/funnelpulse-executor-group)"
    zone="$(metadata attributes/funnelpulse-zone)"
    [[ -n "$script" ]] || die "funnelpulse-idle-minutes is $idle but funnelpulse-watchdog (the script) is not in the metadata"
    [[ -n "$group" && -n "$zone" ]] || die "the watchdog needs funnelpulse-executor-group and funnelpulse-zone in the metadata"
    CHANGED=0
    put_file "$BIN_DIR/funnelpulse-watchdog" "$script" 0755
    put_file "$UNIT_DIR/$unit" "$(watchdog_unit "$group" "$zone")" 0644
    start_service "$unit" "$CHANGED"
    log "idle watchdog on: executors to 0 and power-off after $idle idle minutes"
}

# The client's settings: FUNNELPULSE_NAME=value lines, read by
# funnelpulse-client (and usable as a systemd EnvironmentFile). Values from
# the metadata are refused if they hold anything a plain HOST:PORT list, a
# topic or a gs:// URL does not (spaces, quotes, $), so the file means the same
# to every reader. Empty settings are left out.
client_env() { # lake, bootstrap servers, topic, Kafka sign-in (google or empty)
    # A bracket expression: "]" first, "-" last (IPv6 hosts are in brackets).
    local line name value plain='^[]A-Za-z0-9._:/,@%+=[-]+$'
    echo "# The funnelpulse client on this VM (deploy/submit.sh runs the Kafka stages here):"
    echo "# written at boot by the startup script from the VM's metadata."
    for line in "FUNNELPULSE_SCHEDULER=df://127.0.0.1:50050" "FUNNELPULSE_LAKE=$1" \
        "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=$2" "FUNNELPULSE_KAFKA_TOPIC=$3" "FUNNELPULSE_KAFKA_AUTH=$4"; do
        name="${line%%=*}" value="${line#*=}"
        [[ -n "$value" ]] || continue
        [[ "$value" =~ $plain ]] ||
            die "the metadata gives $name '$value', which has characters no such setting has"
        echo "$line"
    done
}

# Runs the client with the settings of $CLIENT_ENV that the environment does
# not set already (so a caller's FUNNELPULSE_* and flags win), like the deploy
# scripts read deploy/gce.env: parsed, never sourced.
client_wrapper() {
    cat <<'WRAPPER'
#!/bin/bash
# funnelpulse with this VM's client settings (written by the startup script):
# each FUNNELPULSE_NAME=value line of $FUNNELPULSE_CLIENT_ENV (default
# /etc/funnelpulse/client.env) that the environment does not set already.
set -euo pipefail
env_file="${FUNNELPULSE_CLIENT_ENV:-/etc/funnelpulse/client.env}"
[[ -r "$env_file" ]] || { echo "funnelpulse-client: $env_file is missing: the startup script writes it at boot (sudo google_metadata_script_runner startup)" >&2; exit 1; }
while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^(FUNNELPULSE_[A-Z0-9_]+)=(.*)$ ]] || continue
    name="${BASH_REMATCH[1]}"
    [[ -n "${!name+set}" ]] || export "$name=${BASH_REMATCH[2]}"
done <"$env_file"
exec "$(dirname "$(readlink -f "$0")")/funnelpulse" "$@"
WRAPPER
}

# The client on the scheduler: binary, settings, wrapper. Last, so that a
# release without the client (the VM waits for it) delays nothing else.
setup_client() { # release url
    local lake servers topic auth settings
    lake="$(metadata attributes/funnelpulse-lake)"
    servers="$(metadata attributes/funnelpulse-kafka-bootstrap-servers)"
    topic="$(metadata attributes/funnelpulse-kafka-topic)"
    auth="$(metadata attributes/funnelpulse-kafka-auth)"
    # An assignment of its own: a refused value stops the script here.
    settings="$(client_env "$lake" "$servers" "$topic" "$auth")"
    put_file "$CLIENT_ENV" "$settings" 0644
    put_file "$BIN_DIR/funnelpulse-client" "$(client_wrapper)" 0755
    install_binary funnelpulse "$1"
    log "funnelpulse client installed: $BIN_DIR/funnelpulse-client (settings $CLIENT_ENV: kafka ${servers:-not configured}${servers:+, topic ${topic:-default}}${auth:+, sign-in $auth})"
}

main() {
    local host role release scheduler_host
    host="$(metadata hostname)"
    [[ -n "$host" ]] || die "the metadata server has no hostname for this VM"
    role="$(metadata attributes/funnelpulse-role)"
    case "$role" in
    scheduler | executor) ;;
    "") die "metadata attribute funnelpulse-role is missing: set it to scheduler or executor (terraform/ does)" ;;
    *) die "unknown funnelpulse-role '$role': expected scheduler or executor" ;;
    esac
    # The watchdog first: whatever happens below (no release, a bad one), the cluster stops by itself.
    if [[ "$role" == scheduler ]]; then setup_watchdog; fi
    release="$(metadata attributes/funnelpulse-release)"
    [[ "$release" == gs://* ]] ||
        die "metadata attribute funnelpulse-release is '${release}', not gs://<bucket>/releases/<version>: apply terraform/ with release_version set (deploy/up.sh does)"
    release="${release%/}"
    log "role $role, host $host, release $release"

    ensure_user
    CHANGED=0
    install_binary "funnelpulse-$role" "$release"
    if [[ "$role" == scheduler ]]; then
        put_file "$UNIT_DIR/funnelpulse-scheduler.service" "$(scheduler_unit "$host")" 0644
    else
        scheduler_host="$(metadata attributes/funnelpulse-scheduler-host)"
        [[ -n "$scheduler_host" ]] || die "metadata attribute funnelpulse-scheduler-host is missing: executors cannot find the scheduler"
        put_file "$UNIT_DIR/funnelpulse-executor.service" "$(executor_unit "$host" "$scheduler_host")" 0644
    fi
    start_service "funnelpulse-$role.service" "$CHANGED"
    log "funnelpulse-$role.service started"
    if [[ "$role" == scheduler ]]; then
        setup_client "$release"
    fi
}

main "$@"
