#!/usr/bin/env bash
# Containers, for real: builds our images on a local debootstrapped base (no
# registry can be reached), starts the compose cluster (scheduler + 2
# executors, each its own container and address on a private network, the lake
# on a shared volume), runs every stage on it and checks that each table equals
# an embedded run's. Then chaos on that cluster: one executor killed
# (`docker kill`), and separately one cut off the network (`docker network
# disconnect`), while a stage runs: the stage must end within a bound with the
# correct tables, or fail with a clear error leaving the committed tables as
# they were. Prints `ok NAME` / `not ok NAME` per case, last `N passed, M failed`.
#
#   FUNNELPULSE_BIN_DIR  the binaries (default ${CARGO_TARGET_DIR:-$HOME/.cache/funnelpulse-target}/debug)
#   FUNNELPULSE_KEEP=1   keep the cluster and the work folder after the run (debugging)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

BIN_DIR="${FUNNELPULSE_BIN_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/funnelpulse-target}/debug}"
PROJECT="funnelpulse-ci-$$"
export FUNNELPULSE_IMAGE_TAG=ci
# The small sample every stage runs on, and the larger one the chaos cases run stage 01 on.
SAMPLE=(--rows 100000 --seed 7 --start 2019-10-01 --days 3)
CHAOS_SAMPLE=(--rows 1500000 --seed 11 --start 2019-10-01 --days 3)
RUN_OPTIONS=(--stream-from 2019-10-01 --stream-to 2019-10-03 --stream-files 6)
# A chaos stage must end within this; its jobs are cancelled after JOB_TIMEOUT
# and the stage retried (the cluster flags of `funnelpulse run`, as env vars).
STAGE_BOUND=300
# The fault comes this many seconds into the stage at the earliest (past the
# problem scan, into the bronze and silver writes).
FAULT_AFTER=3
JOB_TIMEOUT=60s
STAGE_RETRIES=2
WORK=""
PASSED=0
FAILED=0

# ---- reporting ---------------------------------------------------------------

# shellcheck source=.ci/lib/cases.sh
source "$ROOT/.ci/lib/cases.sh"

# Without docker nothing here can run: that is a failure, not a pass.
cannot_run() {
    echo "not ok containers: $*; the container tests did not run"
    echo "0 passed, 1 failed"
    exit 1
}

fail() {
    echo "$*" >&2
    return 1
}

# ---- setup -------------------------------------------------------------------

apt_install() { # command package…
    command -v "$1" >/dev/null 2>&1 && return
    shift
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_tools() {
    apt_install debootstrap debootstrap
    apt_install jq jq
    apt_install curl curl
    apt_install objcopy binutils
    python3 -c 'import duckdb, deltalake, pyarrow' 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check 'duckdb>=1.1' 'deltalake[pyarrow]>=1.6' 'polars>=1.0' 2>&1 | grep -v "Running pip as the 'root'" || true
}

# docker-compose 1.x, or the `docker compose` plugin.
COMPOSE=()
find_compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        COMPOSE=(docker-compose)
    elif docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    fi
}

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker/compose.yaml" "$@"; }

# The cluster's private network (from the scheduler, which chaos leaves alone).
cluster_network() {
    docker inspect -f '{{range $k, $_ := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(container_of scheduler)"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Copies of the binaries without debug info: the images and the embedded
# reference use the same build even if cargo rebuilds meanwhile.
copy_binaries() {
    mkdir -p "$WORK/bin"
    local binary
    for binary in funnelpulse funnelpulse-scheduler funnelpulse-executor; do
        [[ -x "$BIN_DIR/$binary" ]] || fail "$BIN_DIR/$binary not found: run cargo test --workspace first or set FUNNELPULSE_BIN_DIR"
        objcopy --strip-debug "$BIN_DIR/$binary" "$WORK/bin/$binary"
    done
}

teardown() {
    if [[ "${FUNNELPULSE_KEEP:-0}" == 1 ]]; then
        echo "kept: compose project $PROJECT (docker-compose -p $PROJECT -f docker/compose.yaml down -v), $WORK"
        return
    fi
    if [[ "${#COMPOSE[@]}" -gt 0 ]]; then
        docker ps -aq --filter "name=$PROJECT-chaos" | xargs -r docker rm -f >/dev/null 2>&1 || true
        compose down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    [[ -n "$WORK" ]] && rm -rf "$WORK"
}

# ---- the cluster -------------------------------------------------------------

api() { curl -fsS --max-time 5 "http://$FUNNELPULSE_SCHEDULER_PUBLISH/api/$1"; }

container_of() { compose ps -q "$1"; }

# "registered fresh": executors the scheduler lists, and how many distinct
# hosts sent a heartbeat in the last 15 s (a killed executor stays listed
# until the scheduler's executor timeout expires it).
executor_counts() {
    api executors 2>/dev/null | jq -r --argjson now "$(date +%s%3N)" \
        '"\(length) \([.[] | select(.last_seen != null and $now - .last_seen < 15000) | .host] | unique | length)"' \
        2>/dev/null || echo "0 0"
}

# Waits until exactly N executors are registered, all with fresh heartbeats.
wait_executors() {
    local want="$1" deadline=$((SECONDS + ${2:-90})) counts
    while true; do
        counts="$(executor_counts)"
        [[ "$counts" == "$want $want" ]] && return 0
        [[ $SECONDS -lt $deadline ]] || fail "executors (registered, fresh): $counts, want $want after ${2:-90} s"
        sleep 1
    done
}

# Jobs running on the cluster. Stage 01's slice jobs are single tasks (no
# shuffle), so a job past its first query stage is rare and brief (a count):
# the fault comes while a task runs, which a lost executor must not spoil.
running_jobs() {
    api jobs 2>/dev/null | jq -r '[.[] | select(.status == "Running") | .job_id] | join(" ")' 2>/dev/null || true
}

# Copies a folder of the shared volume out (through the scheduler's container).
copy_out() { # path-in-volume host-dir
    rm -rf "$2"
    docker cp "$(container_of scheduler):$1" "$2"
}

# `funnelpulse` in a one-off CLI container on the cluster's network.
cli() { compose run --rm -T --no-deps cli "$@"; }

# The embedded reference: the same binary on the host, no scheduler.
embedded() { env -u FUNNELPULSE_SCHEDULER "$WORK/bin/funnelpulse" "$@"; }

# ---- cases -------------------------------------------------------------------

case_base() {
    "$ROOT/docker/base/build-base.sh"
    docker run --rm funnelpulse-base:bookworm test -s /etc/ssl/certs/ca-certificates.crt
}

case_images() {
    FUNNELPULSE_BIN_DIR="$WORK/bin" FUNNELPULSE_STRIP=0 "$ROOT/docker/build.sh" --base funnelpulse-base:bookworm --tag ci
    local image ports
    for image in funnelpulse-scheduler funnelpulse-executor funnelpulse; do
        [[ "$(docker image inspect -f '{{.Config.User}}' "$image:ci")" == funnelpulse ]] || fail "$image runs as root"
        [[ "$(docker run --rm --entrypoint id "$image:ci" -u)" == 10001 ]] || fail "$image: user is not uid 10001"
        docker run --rm "$image:ci" --help >/dev/null || fail "$image: the binary does not start"
    done
    ports="$(docker image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' funnelpulse-executor:ci)"
    [[ "$ports" == *50051/tcp* && "$ports" == *50052/tcp* ]] || fail "executor exposes '$ports'"
    ports="$(docker image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' funnelpulse-scheduler:ci)"
    [[ "$ports" == *50050/tcp* ]] || fail "scheduler exposes '$ports'"
}

case_cluster_up() {
    compose up -d 2>&1
    wait_executors 2 90
    local hosts
    hosts="$(api executors | jq -r '[.[].host] | sort | join(" ")')"
    [[ "$hosts" == "executor1 executor2" ]] || fail "executors registered as '$hosts', not by service name"
    echo "executors registered: $hosts"
    # Each container has its own address on the private network.
    local id
    for id in $(compose ps -q); do
        docker inspect -f '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id"
    done
}

case_run_all() {
    cli generate --out /data/raw "${SAMPLE[@]}"
    local started=$SECONDS out
    out="$(timeout 900 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/docker/compose.yaml" run --rm -T --no-deps \
        cli run all --raw /data/raw --lake /data/lake --scheduler df://scheduler:50050 "${RUN_OPTIONS[@]}" 2>&1)" ||
        fail "$(tail -30 <<<"$out")"$'\n'"run all failed on the cluster"
    grep -q 'on Ballista scheduler df://scheduler:50050' <<<"$out" || fail "$out"$'\n'"did not run on the cluster"
    echo "run all on the cluster: $((SECONDS - started)) s, $(api jobs | jq '[.[] | select(.status == "Completed")] | length') jobs completed"
    # Both executors took part (tasks, and shuffle data between the containers).
    local executor tasks
    for executor in executor1 executor2; do
        tasks="$(compose logs --no-color "$executor" 2>/dev/null | grep -cE 'Execute task|Received task' || true)"
        echo "$executor ran $tasks tasks"
        [[ "$tasks" -gt 0 ]] || fail "$executor ran no task"
    done
    copy_out /data/raw "$WORK/raw"
    copy_out /data/lake "$WORK/cluster-lake"
}

case_tables_equal() {
    [[ -d "$WORK/cluster-lake/tables" ]] || fail "no lake from the cluster run"
    local started=$SECONDS
    embedded run all --raw "$WORK/raw" --lake "$WORK/embedded-lake" "${RUN_OPTIONS[@]}" >"$WORK/embedded.log" 2>&1 ||
        fail "$(tail -30 "$WORK/embedded.log")"$'\n'"the embedded run failed"
    echo "embedded run all: $((SECONDS - started)) s"
    python3 "$ROOT/docker/tests/compare-lakes.py" "$WORK/embedded-lake" "$WORK/cluster-lake"
}

# The chaos cases' data: a larger sample in the volume and stage 01's tables
# for it from the embedded engine (the reference when the stage succeeds).
prepare_chaos() {
    cli generate --out /data/raw-large "${CHAOS_SAMPLE[@]}" >/dev/null
    copy_out /data/raw-large "$WORK/raw-large"
    embedded run 01 --raw "$WORK/raw-large" --lake "$WORK/reference-large" >"$WORK/reference-large.log" 2>&1 ||
        fail "$(tail -30 "$WORK/reference-large.log")"$'\n'"the embedded stage 01 on the large sample failed"
    find "$WORK/reference-large/tables" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | paste -sd, >"$WORK/stage01-tables"
}

# Stage 01 on the large sample with FAULT (kill|disconnect) applied to
# executor2 once a job runs; the outcome is checked against the reference
# (success) or against the tables committed before (failure).
chaos() {
    local fault="$1" name="$PROJECT-chaos-$1" started deadline rc executor network jobs lake
    [[ -s "$WORK/stage01-tables" ]] || prepare_chaos
    wait_executors 2 90
    # Its own lake, holding the tables of the small run: a failed attempt must
    # leave exactly these, a successful one replace stage 01's.
    lake="/data/chaos-$fault"
    compose run --rm -T --no-deps --entrypoint cp cli -a /data/lake "$lake"
    copy_out "$lake" "$WORK/before-$fault"
    executor="$(container_of executor2)"
    network="$(cluster_network)"
    compose run -d --no-deps --name "$name" -e "FUNNELPULSE_JOB_TIMEOUT=$JOB_TIMEOUT" \
        -e "FUNNELPULSE_STAGE_RETRIES=$STAGE_RETRIES" cli run 01 --raw /data/raw-large --lake "$lake" >/dev/null
    started=$SECONDS
    deadline=$((SECONDS + 120))
    # FAULT_AFTER seconds in, while a job runs.
    until [[ $((SECONDS - started)) -ge $FAULT_AFTER ]] && jobs="$(running_jobs)" && [[ -n "$jobs" ]]; do
        [[ "$(docker inspect -f '{{.State.Running}}' "$name")" == true ]] ||
            fail "$(docker logs "$name" 2>&1 | tail -20)"$'\n'"stage 01 ended before the fault: nothing tested"
        [[ $SECONDS -lt $deadline ]] || fail "no job running after 120 s"
        sleep 0.2
    done
    case "$fault" in
    # docker kill is a manual stop: the restart policy leaves it dead, like a reclaimed VM.
    kill) docker kill "$executor" >/dev/null ;;
    disconnect) docker network disconnect "$network" "$executor" ;;
    esac
    echo "$fault executor2 $((SECONDS - started)) s after stage 01 started, during job $jobs"
    rc="$(timeout "$STAGE_BOUND" docker wait "$name" || echo timeout)"
    docker logs "$name" >"$WORK/chaos-$fault.log" 2>&1
    [[ "$rc" != timeout ]] || fail "$(tail -20 "$WORK/chaos-$fault.log")"$'\n'"stage 01 did not end within $STAGE_BOUND s"
    grep -iE 'retr|cancel|attempt|invariant|error' "$WORK/chaos-$fault.log" | sed 's/^/  cli: /' | tail -12 || true
    copy_out "$lake" "$WORK/after-$fault"
    if [[ "$rc" == 0 ]]; then
        echo "stage 01 succeeded after $((SECONDS - started)) s: its tables must equal the embedded run's, the rest be unchanged"
        python3 "$ROOT/docker/tests/compare-lakes.py" "$WORK/reference-large" "$WORK/after-$fault" --tables "$(cat "$WORK/stage01-tables")"
        python3 "$ROOT/docker/tests/compare-lakes.py" "$WORK/before-$fault" "$WORK/after-$fault" --except "$(cat "$WORK/stage01-tables")"
    else
        echo "stage 01 failed (exit $rc) after $((SECONDS - started)) s: every table must be as before"
        grep -q '^error: ' "$WORK/chaos-$fault.log" || fail "$(tail -20 "$WORK/chaos-$fault.log")"$'\n'"no clear error message"
        grep '^error: ' "$WORK/chaos-$fault.log" | head -3
        python3 "$ROOT/docker/tests/compare-lakes.py" "$WORK/before-$fault" "$WORK/after-$fault"
    fi
}

# Brings the cluster back to two fresh executors after a chaos case, so that
# the cases are independent: executor2 is reconnected and restarted, and
# executor1 restarted too — after losing an executor, Ballista 55's scheduler
# can leave the survivor registered but without free task slots (it then gets
# no task until it registers anew). Then wait until the scheduler has dropped
# the old registrations and lists the two new ones.
restore_executors() {
    local executor network
    docker rm -f "$PROJECT-chaos-kill" "$PROJECT-chaos-disconnect" >/dev/null 2>&1 || true
    executor="$(container_of executor2)"
    network="$(cluster_network)"
    docker network connect --alias executor2 "$network" "$executor" 2>/dev/null || true
    docker restart "$executor" "$(container_of executor1)" >/dev/null
    wait_executors 2 120 || echo "warning: the cluster did not recover: the next case may fail" >&2
}

main() {
    WORK="$(mktemp -d /tmp/funnelpulse-containers.XXXXXX)"
    trap teardown EXIT
    docker info >/dev/null 2>&1 ||
        cannot_run "docker is not available here (docker info failed)"
    install_tools
    find_compose
    [[ "${#COMPOSE[@]}" -gt 0 ]] || cannot_run "neither docker-compose nor docker compose is installed"
    FUNNELPULSE_SCHEDULER_PUBLISH="127.0.0.1:$(free_port)"
    export FUNNELPULSE_SCHEDULER_PUBLISH
    check "binaries copied from $BIN_DIR" copy_binaries
    check "base image from debootstrap, cached, no registry" case_base
    check "images build on it, run as non-root and start" case_images
    check "compose cluster up: 2 executors registered by service name" case_cluster_up
    check "every stage runs on the compose cluster" case_run_all
    check "every table equals the embedded run's, row for row" case_tables_equal
    check "chaos: an executor killed mid-stage (docker kill)" chaos kill
    restore_executors
    check "chaos: an executor cut off the network mid-stage (docker network disconnect)" chaos disconnect
    finish
}

main "$@"
