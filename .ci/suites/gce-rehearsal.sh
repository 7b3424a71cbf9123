#!/usr/bin/env bash
# A rehearsal of the whole GCE flow on this machine: deploy/up.sh --run-all → status.sh →
# submit.sh 05 06 → idle → the watchdog stops the cluster → down.sh → up.sh again, against a
# stateful fake of the GCP surface the scripts use (tests/deploy-fakes/gcp/: gcloud and
# terraform that keep their state in a folder and "create VMs"; a fake metadata server; the
# fake GCS of crates/cli/tests/fakes/gcs_fake.py). Each "VM" is a set of local processes on a
# loopback address of its own that boots through the real deploy/gce/startup.sh: it reads its
# role from its metadata, downloads the binaries up.sh uploaded (sha256 checked), starts them
# (the real scheduler and executors), the executors register with the scheduler, the stages
# run; the real watchdog scales the fake group to 0 and powers the fake scheduler off.
# Cases: the happy path; up after down; a new release rolled while old executors run (no
# stage starts on a mixed cluster); an upload that fails (no VM is made) or arrives corrupt
# (the VMs refuse it, and the watchdog still stops everything).
# Prints `ok NAME` / `not ok NAME` per case, last `N passed, M failed`. No real GCP call: the
# scripts run with a PATH of the fakes and a few system tools; everything listens on loopback.
#
#   FUNNELPULSE_BIN_DIR  the binaries (default ${CARGO_TARGET_DIR:-$HOME/.cache/funnelpulse-target}/debug)
#   FUNNELPULSE_KEEP=1   keep the work folder (logs, VM disks, serial logs) after the run
#   FUNNELPULSE_REHEARSAL_CASES="up_after_down rollout"  run only these cases (debugging; in order;
#                        with "hold", the cluster is then kept FUNNELPULSE_REHEARSAL_HOLD seconds, default 600)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
FAKES="$ROOT/tests/deploy-fakes/gcp"

BIN_DIR="${FUNNELPULSE_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/funnelpulse-target}/debug}"
BUCKET=p1-funnelpulse-lake
# A small sample, and the stream options that fit it (as .ci/suites/containers.sh).
SAMPLE=(--rows 50000 --seed 7 --start 2019-10-01 --days 3)
RUN_OPTIONS=(--stream-from 2019-10-01 --stream-to 2019-10-03 --stream-files 6)
# The watchdog's "minute", in seconds, on the fake VMs: --idle-minutes 6 is 30 s here.
MINUTE_SECONDS=5
WORK=""
PASSED=0
FAILED=0
SERVER_PIDS=()

# ---- reporting ---------------------------------------------------------------

# shellcheck source=.ci/lib/cases.sh
source "$ROOT/.ci/lib/cases.sh"

cannot_run() {
    echo "not ok gce-rehearsal: $*; the rehearsal did not run"
    echo "0 passed, 1 failed"
    exit 1
}

fail() {
    echo "FAILED: $*" >&2
    return 1
}

# ---- setup -------------------------------------------------------------------

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The tools the scripts, the fakes and the VMs may use, alone in one folder: with the fakes
# first, nothing else (no real gcloud or terraform) can be reached.
sandbox_tools() {
    local tool path
    mkdir -p "$WORK/sysbin" "$WORK/fakebin"
    for tool in bash sh env cat sed awk grep mkdir rm rmdir seq sleep date od tr cut sort tail head ps nohup \
        sha256sum dirname basename readlink kill curl jq mktemp cp mv chmod wc ls find stat flock setsid \
        python3 timeout uname touch ln true false printf test id; do
        path="$(command -v "$tool" || true)"
        [[ -n "$path" && "$path" == /* ]] || continue
        ln -sf "$path" "$WORK/sysbin/$tool"
    done
    # The real interpreter, not a shim.
    ln -sf "$(python3 -c 'import sys; print(sys.executable)')" "$WORK/sysbin/python3"
    ln -sf "$FAKES/gcloud" "$FAKES/terraform" "$WORK/fakebin/"
    SANDBOX_PATH="$WORK/fakebin:$WORK/sysbin"
    export FAKE_SYSTEM_PATH="$WORK/sysbin"
}

# The release: the binaries without debug info (smaller uploads; a build running meanwhile
# does not change them). A second release is the same code with a few bytes appended.
copy_binaries() {
    local binary
    mkdir -p "$WORK/release-1" "$WORK/release-2"
    for binary in funnelpulse funnelpulse-scheduler funnelpulse-executor; do
        [[ -x "$BIN_DIR/$binary" ]] || cannot_run "$BIN_DIR/$binary not found (cargo build, or set FUNNELPULSE_BIN_DIR)"
        objcopy --strip-debug "$BIN_DIR/$binary" "$WORK/release-1/$binary"
        cp "$WORK/release-1/$binary" "$WORK/release-2/$binary"
        printf 'rehearsal release 2' >>"$WORK/release-2/$binary"
    done
}

# This machine's client: the real one, behind a wrapper that notes, at each `run`, which
# executors the scheduler has registered and which VMs run the group's current template
# (read from the fake cloud's state: the rehearsal's own view, not the scripts').
client_wrapper() {
    mkdir -p "$WORK/laptop-bin"
    cat >"$WORK/laptop-bin/funnelpulse" <<EOF
#!/bin/bash
set -euo pipefail
if [[ "\${1:-}" == run ]]; then
    port=""
    for arg in "\$@"; do [[ "\$arg" == df://localhost:* ]] && port="\${arg##*:}"; done
    {
        echo "run \$*"
        echo "registered: \$(curl -fsS --max-time 5 "http://127.0.0.1:\$port/api/executors" | jq -r 'map(.host) | sort | join(" ")')"
        template="\$(cat "\$FAKE_GCP/group/template")"
        current=()
        for vm in "\$FAKE_GCP"/vms/*/; do
            [[ "\$(cat "\$vm/role")" == executor && "\$(cat "\$vm/template" 2>/dev/null)" == "\$template" ]] && current+=("\$(cat "\$vm/ip")")
        done
        echo "current: \$(printf '%s\n' "\${current[@]}" | sort | tr '\n' ' ' | sed 's/ \$//')"
    } >>"$WORK/stage-starts.log"
fi
exec "$WORK/release-1/funnelpulse" "\$@"
EOF
    chmod +x "$WORK/laptop-bin/funnelpulse"
}

start_servers() {
    local port_file="$WORK/gcs.out"
    python3 "$ROOT/crates/cli/tests/fakes/gcs_fake.py" --bucket "$BUCKET" --mirror "$WORK/gcs" >"$port_file" 2>"$WORK/gcs.err" &
    SERVER_PIDS+=($!)
    mkdir -p "$FAKE_GCP/meta"
    python3 "$ROOT/tests/deploy-fakes/http_files.py" "$FAKE_GCP/meta" "$WORK/meta.port" --require-header Metadata-Flavor:Google \
        >/dev/null 2>"$WORK/meta.err" &
    SERVER_PIDS+=($!)
    for _ in $(seq 100); do
        [[ -s "$WORK/meta.port" ]] && grep -q '^port ' "$port_file" && break
        sleep 0.1
    done
    FAKE_GCS_URL="http://127.0.0.1:$(awk '/^port / { print $2 }' "$port_file")"
    export FAKE_GCS_URL
    export FAKE_META_PORT
    FAKE_META_PORT="$(cat "$WORK/meta.port")"
    # object_store's switches for an endpoint without OAuth: the client here and on the VMs.
    export GOOGLE_BASE_URL="$FAKE_GCS_URL"
    export GOOGLE_SERVICE_ACCOUNT_KEY="{\"private_key\": \"unused\", \"private_key_id\": \"unused\", \"client_email\": \"rehearsal@example.invalid\", \"disable_oauth\": true, \"gcs_base_url\": \"$FAKE_GCS_URL\"}"
}

apt_install() { # command package…
    command -v "$1" >/dev/null 2>&1 && return
    shift
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 || true
    fi
}

setup() {
    apt_install objcopy binutils
    apt_install jq jq
    for tool in jq curl python3 flock setsid objcopy; do
        command -v "$tool" >/dev/null 2>&1 || cannot_run "$tool not found"
    done
    WORK="$(mktemp -d /tmp/gce-rehearsal.XXXXXX)"
    export FAKE_GCP="$WORK/gcp"
    mkdir -p "$FAKE_GCP/faults" "$WORK/home"
    printf '%s\n' compute.googleapis.com iap.googleapis.com iam.googleapis.com cloudresourcemanager.googleapis.com \
        storage.googleapis.com serviceusage.googleapis.com >"$FAKE_GCP/apis"
    # The VMs' subnet: a /24 of the loopback range of its own.
    export FAKE_IP_PREFIX="127.$((100 + RANDOM % 100)).$((RANDOM % 250))"
    export FAKE_PROJECT=p1 FAKE_MINUTE_SECONDS="$MINUTE_SECONDS" FAKE_ROLLOUT_STEP_SECONDS=4
    sandbox_tools
    copy_binaries
    client_wrapper
    start_servers
    # The deploy scripts' settings.
    export HOME="$WORK/home"
    export FUNNELPULSE_DEPLOY_CONFIG="$WORK/none.env"
    : >"$FUNNELPULSE_DEPLOY_CONFIG"
    export FUNNELPULSE_LOCAL_DIR="$WORK/local"
    export FUNNELPULSE_BIN_DIR="$WORK/laptop-bin"
    export FUNNELPULSE_CLUSTER_BIN_DIR="$WORK/release-1"
    export FUNNELPULSE_PROJECT=p1
    export FUNNELPULSE_POLL_SECONDS=1
    export FUNNELPULSE_WAIT_SECONDS=180
    export FUNNELPULSE_TUNNEL_PORT
    FUNNELPULSE_TUNNEL_PORT="$(free_port)"
    "$WORK/release-1/funnelpulse" generate --out "$WORK/raw" "${SAMPLE[@]}" >"$WORK/generate.log" 2>&1 ||
        cannot_run "funnelpulse generate failed: $(tail -n 3 "$WORK/generate.log")"
}

teardown() {
    local name
    # A rollout in progress, every VM's processes, then the servers (the tunnel goes with
    # down.sh, or here).
    if [[ -s "$FAKE_GCP/group/rollout.pid" ]]; then kill -- "-$(cat "$FAKE_GCP/group/rollout.pid")" 2>/dev/null || true; fi
    for name in $(FAKE_GCP="$FAKE_GCP" "$FAKES/cloud" vms 2>/dev/null); do
        "$FAKES/cloud" stop "$name" >/dev/null 2>&1 || true
    done
    if [[ -s "$FUNNELPULSE_LOCAL_DIR/gce/tunnel.pid" ]]; then kill "$(cat "$FUNNELPULSE_LOCAL_DIR/gce/tunnel.pid")" 2>/dev/null || true; fi
    for pid in "${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}"; do kill "$pid" 2>/dev/null || true; done
    if [[ "${FUNNELPULSE_KEEP:-0}" == 1 ]]; then
        echo "kept: $WORK"
    elif [[ -n "$WORK" ]]; then
        rm -rf "$WORK"
    fi
}

# ---- helpers -----------------------------------------------------------------

# Runs a deploy script in the sandbox; its output is in $OUT (and shown), its status returned.
deploy() {
    local script="$1" rc=0
    shift
    echo "\$ deploy/$script $*"
    OUT="$(env PATH="$SANDBOX_PATH" "$ROOT/deploy/$script" "$@" 2>&1)" || rc=$?
    printf '%s\n' "$OUT" | sed 's/^/  | /'
    return "$rc"
}

contains() { # text, what
    [[ "$1" == *"$2"* ]] || fail "expected in the output: $2"
}

vms() { "$FAKES/cloud" vms "$@"; }
status_of() { cat "$FAKE_GCP/vms/$1/status" 2>/dev/null || echo absent; }
serial() { cat "$FAKE_GCP/vms/$1/serial.log" 2>/dev/null || true; }

# Processes of the VMs still alive (their pid files).
vm_processes() {
    local file n=0
    for file in "$FAKE_GCP"/vms/*/units/*.pid; do
        [[ -s "$file" ]] && kill -0 "$(cat "$file")" 2>/dev/null && n=$((n + 1))
    done
    echo "$n"
}

# Waits until the watchdog has stopped the cluster: the group at 0, no executor VM, the
# scheduler TERMINATED, no process of any VM left.
wait_stopped_by_watchdog() { # seconds
    local deadline=$((SECONDS + $1))
    until [[ "$(cat "$FAKE_GCP/group/target_size" 2>/dev/null)" == 0 && -z "$(vms executor)" &&
        "$(status_of funnelpulse-scheduler)" == TERMINATED && "$(vm_processes)" == 0 ]]; do
        [[ $SECONDS -lt $deadline ]] || fail "the watchdog did not stop the cluster within $1 s: group $(cat "$FAKE_GCP/group/target_size" 2>/dev/null), executors '$(vms executor | tr '\n' ' ')', scheduler $(status_of funnelpulse-scheduler), $(vm_processes) VM processes; its log: $(tail -n 5 "$FAKE_GCP/vms/funnelpulse-scheduler/units/funnelpulse-watchdog.log" 2>/dev/null)"
        sleep 1
    done
    echo "the watchdog stopped the cluster: group at 0, scheduler TERMINATED, no VM process left"
}

# Every `run` this machine's client started: at least one executor registered, and every
# registered one a VM of the group's current template.
check_no_mixed_cluster() {
    [[ -s "$WORK/stage-starts.log" ]] || fail "no stage was started"
    python3 - "$WORK/stage-starts.log" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
runs = [lines[i:i + 3] for i in range(0, len(lines), 3)]
for run, registered, current in runs:
    reg = set(registered.split(": ", 1)[1].split())
    cur = set(current.split(": ", 1)[1].split())
    if not reg or not reg <= cur:
        sys.exit(f"{run}: registered {sorted(reg)}, of the current release {sorted(cur)}: a mixed (or empty) cluster")
    print(f"{run[:60]}…: {len(reg)} executors, all of the current release")
EOF
}

# ---- cases -------------------------------------------------------------------

case_happy_path() {
    deploy up.sh --run-all --idle-minutes 6 -- --raw "$WORK/raw" "${RUN_OPTIONS[@]}" || fail "up.sh --run-all failed"
    contains "$OUT" "2 executors registered"
    contains "$OUT" "estimated cost: \$"
    # Every table of the run is in the bucket (through object_store, into the fake GCS).
    local table
    for table in bronze_events silver_events gold_funnel_hourly_brand gold_stream_funnel_hourly_brand gold_anomalies_hourly_brand; do
        ls "$WORK/gcs/$BUCKET/lake/tables/$table/_delta_log/" >/dev/null 2>&1 || fail "no table $table in gs://$BUCKET/lake/tables"
    done
    contains "$OUT" "FunnelPulse summary of gs://$BUCKET/lake/"
    # The VMs booted through startup.sh: the watchdog first, each binary checked.
    serial funnelpulse-scheduler | grep -q "installed /opt/funnelpulse/bin/funnelpulse-scheduler from gs://$BUCKET/releases/.*(sha256 [0-9a-f]*, as the metadata says)" ||
        fail "the scheduler's serial log does not show a checked install"
    [[ "$(serial funnelpulse-scheduler | grep -n 'idle watchdog on' | cut -d: -f1)" -lt "$(serial funnelpulse-scheduler | grep -n 'installed /opt' | head -1 | cut -d: -f1)" ]] ||
        fail "the watchdog was not installed before the download"
    local executor
    for executor in $(vms executor); do
        serial "$executor" | grep -q "installed /opt/funnelpulse/bin/funnelpulse-executor .*as the metadata says" || fail "$executor: no checked install"
    done

    deploy status.sh || fail "status.sh failed"
    contains "$OUT" "VMs in project p1:"
    contains "$OUT" "2 executors registered"
    contains "$OUT" "jobs: "
    contains "$OUT" "watchdog (after 6 idle min): self-test "
    contains "$OUT" "ok: resized funnelpulse-executors to its current size 2"

    deploy submit.sh 05 06 -- "${RUN_OPTIONS[@]}" || fail "submit.sh 05 06 failed"
    check_no_mixed_cluster

    echo "idle: waiting for the watchdog (6 idle minutes of $MINUTE_SECONDS s)"
    wait_stopped_by_watchdog 120
    deploy status.sh || fail "status.sh failed"
    contains "$OUT" "scaled funnelpulse-executors to 0 and powered the scheduler off"
    contains "$OUT" "last error:  none"
    contains "$OUT" "0 running VMs"
    # A submit to the stopped cluster says so at once.
    if deploy submit.sh 05; then fail "submit.sh to a stopped cluster succeeded"; fi
    contains "$OUT" "is TERMINATED (the idle watchdog stops an idle cluster)"

    deploy down.sh || fail "down.sh failed"
    [[ -z "$(vms)" ]] || fail "VMs left after down.sh: $(vms | tr '\n' ' ')"
    [[ ! -d "$FAKE_GCP/group" ]] || fail "the executor group survived down.sh"
    ls "$WORK/gcs/$BUCKET/lake/tables/bronze_events/_delta_log/" >/dev/null || fail "the lake did not survive down.sh"
}

case_up_after_down() {
    [[ -z "$(vms)" ]] || fail "the cluster was not down before this case"
    # A longer idle limit (60 s here) from now on: the next case follows at once.
    deploy up.sh --idle-minutes 12 || fail "up.sh after down.sh failed"
    contains "$OUT" "2 executors registered"
    [[ "$(status_of funnelpulse-scheduler)" == RUNNING ]] || fail "no scheduler"
    # The lake of the first cluster is there for the new one.
    deploy submit.sh 06 -- "${RUN_OPTIONS[@]}" || fail "submit.sh 06 on the new cluster failed"
    check_no_mixed_cluster
}

case_rollout() {
    [[ "$(vms executor | wc -l)" == 2 ]] || fail "this case starts from the running cluster of the previous one"
    local old_executors
    old_executors="$(vms executor | tr '\n' ' ')"
    : >"$WORK/stage-starts.log"
    # A new release while the old executors run: the group rolls them one at a time.
    FUNNELPULSE_CLUSTER_BIN_DIR="$WORK/release-2" deploy up.sh --idle-minutes 12 || fail "up.sh with a new release failed"
    contains "$OUT" "2 executors registered"
    local name
    for name in $old_executors; do
        [[ ! -d "$FAKE_GCP/vms/$name" ]] || fail "old executor $name still there after up.sh"
    done
    for name in $(vms executor); do
        serial "$name" | grep -q "rehearsal\|installed /opt/funnelpulse/bin/funnelpulse-executor" || fail "$name: no install"
    done
    # Right away, a stage: it must not start on a mixed cluster.
    deploy submit.sh 05 -- "${RUN_OPTIONS[@]}" || fail "submit.sh 05 after the rollout failed"
    check_no_mixed_cluster
    deploy down.sh || fail "down.sh failed"
}

case_upload_fails() {
    [[ -z "$(vms)" ]] || fail "the cluster was not down before this case"
    # An upload that fails: up.sh stops before any VM exists.
    : >"$FAKE_GCP/faults/upload-fail"
    if deploy up.sh --idle-minutes 1; then fail "up.sh succeeded with a failing upload"; fi
    rm -f "$FAKE_GCP/faults/upload-fail"
    contains "$OUT" "failed (see above): no VM was created or changed"
    [[ -z "$(vms)" ]] || fail "VMs were created although the upload failed: $(vms | tr '\n' ' ')"

    # An upload cut short without gcloud noticing: the scheduler refuses its binary, the
    # executors wait for a scheduler that never answers, and the watchdog (started before
    # any download) stops everything: executors to 0, the scheduler powered off.
    echo funnelpulse-scheduler >"$FAKE_GCP/faults/corrupt-upload"
    if FUNNELPULSE_WAIT_SECONDS=20 deploy up.sh --idle-minutes 1; then fail "up.sh succeeded with a corrupt scheduler binary"; fi
    rm -f "$FAKE_GCP/faults/corrupt-upload"
    contains "$OUT" "the scheduler did not answer through the IAP tunnel"
    serial funnelpulse-scheduler | grep -q "error: refusing gs://$BUCKET/releases/[0-9a-f]*/funnelpulse-scheduler: its sha256 is [0-9a-f]*, but the metadata (funnelpulse-release-sha256-funnelpulse-scheduler) says" ||
        fail "the scheduler's serial log does not say why it refused its binary"
    [[ ! -e "$FAKE_GCP/vms/funnelpulse-scheduler/root/opt/funnelpulse/bin/funnelpulse-scheduler" ]] || fail "the corrupt binary was installed"
    wait_stopped_by_watchdog 90
    deploy status.sh || fail "status.sh failed"
    contains "$OUT" "does not answer and no job was seen for"
    contains "$OUT" "scaled funnelpulse-executors to 0 and powered the scheduler off"
    deploy down.sh || fail "down.sh failed"
    [[ -z "$(vms)" ]] || fail "VMs left after down.sh"
}

case_resize_denied() {
    # The watchdog's resize refused (an IAM condition that does not match): its self-test
    # says so at boot, and when idle it powers the scheduler off anyway; status.sh shows it.
    : >"$FAKE_GCP/faults/deny-resize"
    deploy up.sh --idle-minutes 1 || fail "up.sh failed"
    wait_until_scheduler_stopped 60
    deploy status.sh || fail "status.sh failed"
    rm -f "$FAKE_GCP/faults/deny-resize"
    contains "$OUT" "self-test "
    contains "$OUT" "FAILED: cannot resize funnelpulse-executors"
    contains "$OUT" "resizing funnelpulse-executors to 0 failed"
    contains "$OUT" "the executors were NOT scaled to 0"
    contains "$OUT" "warning: the idle watchdog reported an error"
    [[ "$(vms executor | wc -l)" == 2 ]] || fail "the executors should still run (the resize was refused)"
    deploy down.sh || fail "down.sh failed"
    [[ -z "$(vms)" ]] || fail "VMs left after down.sh"
}

wait_until_scheduler_stopped() { # seconds
    local deadline=$((SECONDS + $1))
    until [[ "$(status_of funnelpulse-scheduler)" == TERMINATED ]]; do
        [[ $SECONDS -lt $deadline ]] || fail "the scheduler was not stopped within $1 s"
        sleep 1
    done
}

# ---- main --------------------------------------------------------------------

setup
trap teardown EXIT
echo "rehearsal in $WORK (VM subnet $FAKE_IP_PREFIX.0/24, GCS $FAKE_GCS_URL, metadata 127.0.0.1:$FAKE_META_PORT)"
selected() { [[ -z "${FUNNELPULSE_REHEARSAL_CASES:-}" || " $FUNNELPULSE_REHEARSAL_CASES " == *" $1 "* ]]; }
if selected happy_path; then
    check "gce rehearsal: happy path (up --run-all, status, submit 05 06, idle, watchdog stops it, down)" case_happy_path
fi
if selected up_after_down; then check "gce rehearsal: up after down" case_up_after_down; fi
if selected rollout; then
    check "gce rehearsal: a new release rolled while old executors run (no stage on a mixed cluster)" case_rollout
fi
if selected upload_fails; then
    check "gce rehearsal: an upload that fails, or arrives corrupt (the watchdog still stops everything)" case_upload_fails
fi
# Debugging: keeps the cluster as it is for FUNNELPULSE_REHEARSAL_HOLD seconds (its state: FAKE_GCP in $WORK).
if [[ " ${FUNNELPULSE_REHEARSAL_CASES:-} " == *" hold "* ]]; then
    echo "holding for ${FUNNELPULSE_REHEARSAL_HOLD:-600} s: $WORK"
    sleep "${FUNNELPULSE_REHEARSAL_HOLD:-600}"
fi
if selected resize_denied; then
    check "gce rehearsal: the watchdog may not resize (self-test reports it; it powers off anyway)" case_resize_denied
fi
finish
