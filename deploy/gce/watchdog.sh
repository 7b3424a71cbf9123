#!/usr/bin/env bash
# Idle watchdog of a FunnelPulse GCE cluster; runs on the scheduler VM as a
# systemd service (installed by startup.sh from the metadata). Polls the
# scheduler's REST API and the detached runs' units; when no job has been
# queued or running, and no detached run active, for the idle limit, it scales
# the executor group to 0 and then powers this VM off, so a forgotten cluster
# stops costing vCPU/memory (only the disks stay billed).
# `terraform apply` (deploy/up.sh) starts the scheduler and restores the group.
#
#   funnelpulse-watchdog [--once]      --once: one poll, then exit (tests, cron)
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
#   GCE_METADATA_HOST                    metadata server (tests)
set -euo pipefail

SCHEDULER_URL="${FUNNELPULSE_SCHEDULER_URL:-http://127.0.0.1:50050}"
INTERVAL="${FUNNELPULSE_WATCHDOG_INTERVAL_SECONDS:-60}"
STATE_DIR="${FUNNELPULSE_WATCHDOG_STATE_DIR:-/run/funnelpulse-watchdog}"
METADATA_URL="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1/instance/attributes"
# The last idle limit read (kept when the metadata server does not answer).
IDLE_MINUTES=""
# 1 once the executors are at 0 and the poweroff is under way.
STOPPED=0
# The units of deploy/submit.sh --detach (DETACHED_UNITS in deploy/lib/gce.sh).
DETACHED_UNITS=(funnelpulse-stream funnelpulse-replay)

log() { echo "funnelpulse-watchdog: $*"; }

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

# Scales the executors to 0, then powers this VM off; never the second without the first.
stop_cluster() { # reason
    local group zone
    group="$(setting "${FUNNELPULSE_EXECUTOR_GROUP:-}" funnelpulse-executor-group)" || group=""
    zone="$(setting "${FUNNELPULSE_ZONE:-}" funnelpulse-zone)" || zone=""
    if [[ -z "$group" || -z "$zone" ]]; then
        log "error: $1, but the executor group or its zone is unknown (funnelpulse-executor-group, funnelpulse-zone): not stopping anything"
        return 1
    fi
    log "$1: scaling executor group $group in $zone to 0"
    if ! gcloud compute instance-groups managed resize "$group" --size 0 --zone "$zone" --quiet; then
        log "error: resizing $group to 0 failed (gcloud's message above); not powering off the scheduler, which would leave the executors running unwatched; trying again in ${INTERVAL}s"
        return 1
    fi
    log "executors scaled to 0; powering off this VM (terraform apply, or deploy/up.sh, starts the cluster again)"
    if ! systemctl poweroff; then
        log "error: systemctl poweroff failed; trying again in ${INTERVAL}s"
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
    idle_for=$(((now - last) / 60))
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
    if [[ "${1:-}" == --once ]]; then
        poll
        return
    fi
    log "watching $SCHEDULER_URL every ${INTERVAL}s"
    # Ends once the poweroff is under way: no second resize while the VM shuts down.
    until [[ "$STOPPED" == 1 ]]; do
        poll || true
        [[ "$STOPPED" == 1 ]] || sleep "$INTERVAL"
    done
}

main "$@"
