#!/usr/bin/env bash
# Idle watchdog of a FunnelPulse GCE cluster; runs on the scheduler VM as a
# systemd service (installed by startup.sh from the metadata). Polls the
# scheduler's REST API and the detached runs' units; when no job has been
# queued or running, and no detached run active, for the idle limit, it scales
# the executor group to 0 and then powers this VM off, so a forgotten cluster
# stops costing vCPU/memory (only the disks stay billed).
# `terraform apply` (deploy/up.sh) starts the scheduler and restores the group.
#
#   funnelpulse-watchdog [--once | --self-test]
#       --once: one poll, then exit (tests, cron); --self-test: the permission check only
#
# At its start (as a service) it checks that it may resize the executor group: it
# reads the group's size and resizes it to that same size (which changes nothing).
# When it cannot scale the executors down it powers this VM off all the same (the
# executors then bill until deploy/up.sh or deploy/down.sh), and says so.
#
# Its report: the self-test's result, its last action and its last error, each a
# line "<UTC time> <text>", in STATE_DIR (self-test, last-action, last-error) and
# in this VM's guest attributes funnelpulse/watchdog-self-test, -last-action and
# -last-error (metadata enable-guest-attributes=TRUE), which deploy/status.sh reads
# with `gcloud compute instances get-guest-attributes`, also while the VM is stopped.
#
# State is one file, STATE_DIR/last-active (epoch seconds of the last poll
# that saw a job or an active detached run, or of the watchdog's first start
# after boot): a restarted watchdog keeps its clock; /run is emptied at boot,
# so a new boot gets a full idle period.
#
# A run detached by deploy/submit.sh --detach (the transient systemd units
# funnelpulse-stream and funnelpulse-replay, on this VM) counts as activity
# while its unit is active: a continuous stream waiting for records runs no
# job, yet it needs the cluster. Such a unit ends with its run, with
# deploy/down.sh, or with `sudo systemctl stop funnelpulse-stream`.
#
# A scheduler that does not answer is not counted as idle: it may be
# restarting while a client is about to resubmit its stage. Only once the
# cluster has seen no job for twice the limit is a silent scheduler taken as
# broken, and the cluster stopped anyway (a broken cluster costs the same).
#
# Settings (environment; the metadata attributes are read when unset):
#   FUNNELPULSE_IDLE_MINUTES             else funnelpulse-idle-minutes, at every poll; 0 = do nothing
#   FUNNELPULSE_EXECUTOR_GROUP           else funnelpulse-executor-group
#   FUNNELPULSE_ZONE                     else funnelpulse-zone
#   FUNNELPULSE_SCHEDULER_URL            default http://127.0.0.1:50050
#   FUNNELPULSE_WATCHDOG_INTERVAL_SECONDS  default 60
#   FUNNELPULSE_WATCHDOG_STATE_DIR       default /run/funnelpulse-watchdog
#   FUNNELPULSE_WATCHDOG_NOW             epoch seconds to use as "now" (tests)
#   FUNNELPULSE_WATCHDOG_MINUTE_SECONDS  the length of an idle "minute" (tests; default 60)
#   GCE_METADATA_HOST                    metadata server (tests)
set -euo pipefail

SCHEDULER_URL="${FUNNELPULSE_SCHEDULER_URL:-http://127.0.0.1:50050}"
INTERVAL="${FUNNELPULSE_WATCHDOG_INTERVAL_SECONDS:-60}"
STATE_DIR="${FUNNELPULSE_WATCHDOG_STATE_DIR:-/run/funnelpulse-watchdog}"
METADATA_URL="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/attributes"
GUEST_URL="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/guest-attributes/funnelpulse"
MINUTE="${FUNNELPULSE_WATCHDOG_MINUTE_SECONDS:-60}"
# The last idle limit read (kept when the metadata server does not answer).
IDLE_MINUTES=""
# 1 once the executors are at 0 and the poweroff is under way.
STOPPED=0
# The units of deploy/submit.sh --detach (DETACHED_UNITS in deploy/lib/gce.sh).
DETACHED_UNITS=(funnelpulse-stream funnelpulse-replay)

log() { echo "funnelpulse-watchdog: $*"; }

# Records a report line (self-test, last-action, last-error) in STATE_DIR and in the
# guest attributes; a metadata server that refuses it (guest attributes off) is logged once.
report() { # key, text
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) $2"
    mkdir -p "$STATE_DIR"
    echo "$line" >"$STATE_DIR/$1"
    if ! curl -fsS --max-time 5 -X PUT -H 'Metadata-Flavor: Google' --data-binary "$line" "$GUEST_URL/watchdog-$1" >/dev/null 2>&1; then
        if [[ ! -e "$STATE_DIR/guest-attributes-off" ]]; then
            log "could not write the guest attribute funnelpulse/watchdog-$1 (metadata enable-guest-attributes=TRUE?): deploy/status.sh will not show this report"
            : >"$STATE_DIR/guest-attributes-off"
        fi
    fi
}

# The executor group and its zone (environment, else metadata), in GROUP and ZONE.
group_and_zone() {
    GROUP="$(setting "${FUNNELPULSE_EXECUTOR_GROUP:-}" funnelpulse-executor-group)" || GROUP=""
    ZONE="$(setting "${FUNNELPULSE_ZONE:-}" funnelpulse-zone)" || ZONE=""
    [[ -n "$GROUP" && -n "$ZONE" ]]
}

# Proves at boot that the resize will work when it matters: reads the group's target size
# and resizes it to that size (no change). Its result goes to the report (self-test, and
# last-error when it fails), so that deploy/status.sh shows a missing permission at once.
self_test() {
    local size err
    if ! group_and_zone; then
        log "error: self-test: the executor group or its zone is unknown (funnelpulse-executor-group, funnelpulse-zone)"
        report self-test "FAILED: the executor group or its zone is unknown"
        report last-error "self-test: the executor group or its zone is unknown (funnelpulse-executor-group, funnelpulse-zone)"
        return 1
    fi
    err="$(mktemp)"
    # Three tries, a poll interval apart: at the first boot the group may not exist yet
    # (Terraform makes it beside this VM).
    local attempt
    for attempt in 1 2 3; do
        : >"$err"
        if size="$(gcloud compute instance-groups managed describe "$GROUP" --zone "$ZONE" --format='value(targetSize)' 2>"$err")" &&
            [[ "$size" =~ ^[0-9]+$ ]] &&
            gcloud compute instance-groups managed resize "$GROUP" --size "$size" --zone "$ZONE" --quiet >/dev/null 2>>"$err"; then
            log "self-test: may resize $GROUP in $ZONE (resized it to its current size $size)"
            report self-test "ok: resized $GROUP to its current size $size"
            rm -f "$err"
            return 0
        fi
        [[ "$attempt" == 3 ]] || sleep "$INTERVAL"
    done
    local why
    why="$(grep -v '^[[:space:]]*$' "$err" | tail -n 1)"
    rm -f "$err"
    log "error: self-test: cannot resize $GROUP in $ZONE: ${why:-no size read} (when idle, the scheduler is powered off anyway, but the executors would keep running)"
    report self-test "FAILED: cannot resize $GROUP: ${why:-no size read}"
    report last-error "self-test: cannot resize $GROUP in $ZONE: ${why:-no size read}"
    return 1
}

now() { echo "${FUNNELPULSE_WATCHDOG_NOW:-$(date +%s)}"; }

metadata() { curl -fsS --max-time 5 -H 'Metadata-Flavor: Google' "$METADATA_URL/$1"; }

# An environment value, else the metadata attribute.
setting() { # env value, attribute
    if [[ -n "$1" ]]; then echo "$1"; else metadata "$2"; fi
}

idle_minutes() {
    local value
    if value="$(setting "${FUNNELPULSE_IDLE_MINUTES:-}" funnelpulse-idle-minutes)" && [[ "$value" =~ ^[0-9]+$ ]]; then
        IDLE_MINUTES="$value"
    elif [[ -n "$IDLE_MINUTES" ]]; then
        log "could not read the idle limit; keeping $IDLE_MINUTES minutes"
    else
        log "could not read the idle limit (funnelpulse-idle-minutes); doing nothing this time"
        return 1
    fi
}

last_active() {
    local file="$STATE_DIR/last-active"
    if [[ ! -s "$file" ]]; then
        mark_active "$(now)"
    fi
    cat "$file"
}

mark_active() { # epoch seconds; written whole (tmp + rename) so a kill never leaves half a number
    mkdir -p "$STATE_DIR"
    echo "$1" >"$STATE_DIR/last-active.tmp"
    mv -f "$STATE_DIR/last-active.tmp" "$STATE_DIR/last-active"
}

# Prints the number of queued or running jobs, or fails when the scheduler
# does not answer with a JSON array. Ballista 55's GET /api/jobs lists every
# job with a plain "status": Queued, Running, Completed, Failed or Invalid.
# grep, not jq: the stock image has no jq and the VM has no way to install it.
active_jobs() {
    local body
    body="$(curl -fsS --max-time 10 "$SCHEDULER_URL/api/jobs")" || return 1
    [[ "$body" =~ ^[[:space:]]*\[ ]] || return 1
    grep -oE '"status"[[:space:]]*:[[:space:]]*"(Queued|Running)"' <<<"$body" | wc -l || true
}

# Prints the detached units that are active (space-separated), or fails when
# none is. A unit that is not loaded, or a systemctl that fails, is not active.
active_units() {
    local unit active=()
    for unit in "${DETACHED_UNITS[@]}"; do
        if systemctl is-active --quiet "$unit.service" 2>/dev/null; then
            active+=("$unit")
        fi
    done
    [[ ${#active[@]} -gt 0 ]] || return 1
    echo "${active[*]}"
}

# Scales the executors to 0, then powers this VM off. When the resize fails (a missing
# permission, an API error) it powers off all the same: the scheduler stops costing, and
# the report says that the executors still run.
stop_cluster() { # reason
    local err why resized=1
    if ! group_and_zone; then
        log "error: $1, but the executor group or its zone is unknown (funnelpulse-executor-group, funnelpulse-zone): powering off this VM without scaling the executors"
        report last-error "$1; the executor group or its zone is unknown: executors not scaled to 0"
        resized=0
    else
        log "$1: scaling executor group $GROUP in $ZONE to 0"
        err="$(mktemp)"
        if ! gcloud compute instance-groups managed resize "$GROUP" --size 0 --zone "$ZONE" --quiet 2>"$err"; then
            cat "$err" >&2
            why="$(grep -v '^[[:space:]]*$' "$err" | tail -n 1)"
            log "error: resizing $GROUP to 0 failed (gcloud's message above); powering off the scheduler anyway: the executors keep running (and costing) until deploy/up.sh or deploy/down.sh"
            report last-error "resizing $GROUP to 0 failed: ${why:-gcloud failed}; the scheduler was powered off anyway, the executors still run"
            resized=0
        fi
        rm -f "$err"
    fi
    if [[ "$resized" == 1 ]]; then
        log "executors scaled to 0; powering off this VM (terraform apply, or deploy/up.sh, starts the cluster again)"
        report last-action "$1: scaled $GROUP to 0 and powered the scheduler off"
    else
        report last-action "$1: powered the scheduler off (the executors were NOT scaled to 0)"
    fi
    if ! systemctl poweroff; then
        log "error: systemctl poweroff failed; trying again in ${INTERVAL}s"
        report last-error "systemctl poweroff failed"
        return 1
    fi
    STOPPED=1
}

poll() {
    local now last idle_for limit jobs answered=1 units why
    idle_minutes || return 0
    now="$(now)"
    if [[ "$IDLE_MINUTES" -eq 0 ]]; then
        # Off: keep the clock fresh so turning it on later starts a full period.
        mark_active "$now"
        return 0
    fi
    last="$(last_active)"
    idle_for=$(((now - last) / MINUTE))
    limit="$IDLE_MINUTES"
    jobs="$(active_jobs)" || answered=0
    if [[ "$answered" == 1 && "$jobs" -gt 0 ]]; then
        mark_active "$now"
        log "busy: $jobs job(s) queued or running"
    elif units="$(active_units)"; then
        # Whether or not the scheduler answers: the run was started on purpose, and stopping
        # the cluster under it would kill it; it is stopped by down.sh or systemctl stop.
        mark_active "$now"
        why="busy: $units active (a run detached by deploy/submit.sh --detach; it may wait for records without running a job)"
        [[ "$answered" == 1 ]] || why+="; the scheduler at $SCHEDULER_URL does not answer"
        log "$why"
    elif [[ "$answered" == 1 ]]; then
        if [[ "$idle_for" -ge "$limit" ]]; then
            stop_cluster "no job queued or running and no detached run for $idle_for min (limit $limit)"
        else
            log "idle for $idle_for min (limit $limit)"
        fi
    elif [[ "$idle_for" -ge $((2 * limit)) ]]; then
        stop_cluster "the scheduler at $SCHEDULER_URL does not answer and no job was seen for $idle_for min (twice the limit of $limit): taking it as broken"
    else
        log "the scheduler at $SCHEDULER_URL does not answer; not counted as idle (no job seen for $idle_for min; it is stopped anyway after $((2 * limit)))"
    fi
}

main() {
    case "${1:-}" in
    --once)
        poll
        return
        ;;
    --self-test)
        self_test
        return
        ;;
    esac
    # The check is worth its API calls only when the watchdog is on.
    if idle_minutes && [[ "$IDLE_MINUTES" -gt 0 ]]; then self_test || true; fi
    log "watching $SCHEDULER_URL every ${INTERVAL}s"
    # Ends once the poweroff is under way: no second resize while the VM shuts down.
    until [[ "$STOPPED" == 1 ]]; do
        poll || true
        [[ "$STOPPED" == 1 ]] || sleep "$INTERVAL"
    done
}

main "$@"
