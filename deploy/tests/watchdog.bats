#!/usr/bin/env bats
# deploy/gce/watchdog.sh against a fake scheduler REST API (127.0.0.1, serving
# a jobs list the test sets, in Ballista 55's JSON) and fake gcloud/systemctl.
# Time is FUNNELPULSE_WATCHDOG_NOW; each `--once` run is a new process, as
# after a restart, so the state file carries the idle clock between them.
# FAKE_LOG holds the actions (resize, poweroff); the `systemctl is-active`
# questions about the detached runs' units go to FAKE_QUERY_LOG, and
# FAKE_ACTIVE_UNITS says which units are active. A fake metadata server takes
# the watchdog's report (guest attributes, PUT) into $GUEST.

load vm-fakes/helpers
load assert

WATCHDOG="$BATS_TEST_DIRNAME/../gce/watchdog.sh"
T0=1767225600 # any epoch second

setup() {
    setup_fakes
    REST="$BATS_TEST_TMPDIR/rest"
    mkdir -p "$REST/api"
    local port
    port="$(start_http rest "$REST")"
    export FUNNELPULSE_SCHEDULER_URL="http://127.0.0.1:$port"
    export FUNNELPULSE_IDLE_MINUTES=30
    export FUNNELPULSE_EXECUTOR_GROUP=funnelpulse-executors
    export FUNNELPULSE_ZONE=europe-west1-b
    export FUNNELPULSE_WATCHDOG_STATE_DIR="$BATS_TEST_TMPDIR/state"
    export FUNNELPULSE_WATCHDOG_INTERVAL_SECONDS=0.1
    export FAKE_QUERY_LOG="$BATS_TEST_TMPDIR/queries.log"
    start_metadata
    GUEST="$META/guest-attributes/funnelpulse"
    # The settings come from the environment here; the metadata has none.
    units_active
    jobs_done
}

# A report the watchdog wrote: its guest attribute, without the time stamp (same as its state file).
reported() { # key
    [ "$(cat "$GUEST/watchdog-$1")" = "$(cat "$FUNNELPULSE_WATCHDOG_STATE_DIR/$1")" ] || return 1
    cut -d' ' -f2- "$GUEST/watchdog-$1"
}

teardown() { stop_http; }

# GET /api/jobs as Ballista 55 serves it (job_status verbose, status plain).
job() { # id, status word, verbose status
    printf '{"job_id":"%s","job_name":"funnelpulse stage 01","job_status":"%s","status":"%s","num_stages":3,"completed_stages":1,"percent_complete":33,"start_time":1767225000000,"end_time":0}' "$1" "$3" "$2"
}
jobs_done() {
    echo "[$(job aaa Completed 'Completed. Produced 4 partitions containing 120 rows. Elapsed time: 812 ms.'),$(job bbb Failed 'Failed: executor lost')]" >"$REST/api/jobs"
}
jobs_running() {
    echo "[$(job aaa Completed Completed),$(job ccc Running Running),$(job ddd Queued Queued)]" >"$REST/api/jobs"
}

# The systemd units that `systemctl is-active` reports active (none by default).
units_active() { # unit…
    export FAKE_ACTIVE_UNITS="$*"
}

at_minute() { # minutes after T0, then the watchdog's arguments
    local minutes="$1"
    shift
    FUNNELPULSE_WATCHDOG_NOW=$((T0 + minutes * 60)) run "$WATCHDOG" --once "$@"
}

@test "busy: queued or running jobs keep the cluster, however long" {
    jobs_running
    for minute in 0 29 30 61 600; do
        at_minute "$minute"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        [[ "$output" == *"busy: 2 job(s) queued or running"* ]]
    done
    [ ! -s "$FAKE_LOG" ]
    [ ! -s "$FAKE_QUERY_LOG" ] # jobs running: no need to ask about the units
}

@test "idle past the limit: resizes the executor group to 0, then powers off" {
    at_minute 0
    [[ "$output" == *"idle for 0 min (limit 30)"* ]]
    at_minute 29
    [[ "$output" == *"idle for 29 min (limit 30)"* ]]
    [ ! -s "$FAKE_LOG" ]

    at_minute 30
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(calls)" = "gcloud compute instance-groups managed resize funnelpulse-executors --size 0 --zone europe-west1-b --quiet
systemctl poweroff" ] || { calls; false; }
    [[ "$output" == *"no job queued or running and no detached run for 30 min (limit 30): scaling executor group funnelpulse-executors in europe-west1-b to 0"* ]]
    [[ "$output" == *"executors scaled to 0; powering off this VM"* ]]
}

@test "a job resets the idle clock" {
    at_minute 0
    jobs_running
    at_minute 20
    jobs_done
    at_minute 45
    [[ "$output" == *"idle for 25 min"* ]]
    [ ! -s "$FAKE_LOG" ]
    at_minute 50
    grep -q "resize funnelpulse-executors --size 0" "$FAKE_LOG"
}

@test "resize fails: it powers off all the same, and reports the error" {
    at_minute 0
    export FAKE_RESIZE_EXIT=1
    at_minute 31
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"error: resizing funnelpulse-executors to 0 failed (gcloud's message above); powering off the scheduler anyway: the executors keep running (and costing) until deploy/up.sh or deploy/down.sh"* ]]
    [[ "$output" == *"compute.instanceGroupManagers.update"* ]]
    [ "$(calls)" = "gcloud compute instance-groups managed resize funnelpulse-executors --size 0 --zone europe-west1-b --quiet
systemctl poweroff" ] || { calls; false; }
    [[ "$(reported last-error)" == "resizing funnelpulse-executors to 0 failed: ERROR: (gcloud.compute.instance-groups.managed.resize) Required 'compute.instanceGroupManagers.update' permission; the scheduler was powered off anyway, the executors still run" ]] || { reported last-error; false; }
    [ "$(reported last-action)" = "no job queued or running and no detached run for 31 min (limit 30): powered the scheduler off (the executors were NOT scaled to 0)" ]
}

@test "a stop is reported as the last action, in the guest attributes and the state folder" {
    at_minute 0
    at_minute 30
    [ "$(reported last-action)" = "no job queued or running and no detached run for 30 min (limit 30): scaled funnelpulse-executors to 0 and powered the scheduler off" ]
    [ ! -e "$GUEST/watchdog-last-error" ]
    grep -q "PUT /computeMetadata/v1/instance/guest-attributes/funnelpulse/watchdog-last-action" "$BATS_TEST_TMPDIR/metadata/requests.log"
    # Guest attributes off (the metadata server refuses): said once in the log, the stop goes on.
    rm -f "$FUNNELPULSE_WATCHDOG_STATE_DIR/last-active" "$FAKE_LOG"
    mkdir -p "$GUEST"
    echo 400 >"$GUEST/watchdog-last-action.put-status"
    at_minute 0
    at_minute 30
    [[ "$output" == *"could not write the guest attribute funnelpulse/watchdog-last-action (metadata enable-guest-attributes=TRUE?)"* ]]
    [ "$(tail -n 1 "$FAKE_LOG")" = "systemctl poweroff" ]
}

@test "self-test: resizes the group to its current size, and reports whether it may" {
    FAKE_TARGET_SIZE=3 run "$WATCHDOG" --self-test
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(calls)" = "gcloud compute instance-groups managed describe funnelpulse-executors --zone europe-west1-b --format=value(targetSize)
gcloud compute instance-groups managed resize funnelpulse-executors --size 3 --zone europe-west1-b --quiet" ] || { calls; false; }
    [ "$(reported self-test)" = "ok: resized funnelpulse-executors to its current size 3" ]
    [[ "$output" == *"self-test: may resize funnelpulse-executors in europe-west1-b (resized it to its current size 3)"* ]]

    FAKE_RESIZE_EXIT=1 run "$WATCHDOG" --self-test
    [ "$status" -ne 0 ]
    [[ "$(reported self-test)" == "FAILED: cannot resize funnelpulse-executors: ERROR: (gcloud.compute.instance-groups.managed.resize) Required 'compute.instanceGroupManagers.update' permission" ]]
    [[ "$(reported last-error)" == "self-test: cannot resize funnelpulse-executors in europe-west1-b: ERROR:"* ]]
    [[ "$output" == *"(when idle, the scheduler is powered off anyway, but the executors would keep running)"* ]]

    : >"$FAKE_LOG"
    FAKE_DESCRIBE_EXIT=1 run "$WATCHDOG" --self-test
    [ "$status" -ne 0 ]
    [[ "$(reported self-test)" == "FAILED: cannot resize funnelpulse-executors: ERROR: (gcloud.compute.instance-groups.managed.describe) Required 'compute.instanceGroupManagers.get' permission" ]]
    refute grep -q resize "$FAKE_LOG"
}

@test "as a service: the self-test runs once at the start, then the polls; a failed one does not stop it" {
    jobs_running
    FAKE_RESIZE_EXIT=1 FUNNELPULSE_WATCHDOG_NOW=$T0 run timeout 2 "$WATCHDOG"
    [ "$status" -eq 124 ]
    [ "$(grep -c "describe" "$FAKE_LOG")" -eq 3 ] # three tries
    [[ "$(reported self-test)" == FAILED:* ]]
    [ "$(grep -c 'busy: 2 job' <<<"$output")" -ge 3 ]
    # Off (idle minutes 0): no self-test either.
    : >"$FAKE_LOG"
    FUNNELPULSE_IDLE_MINUTES=0 FUNNELPULSE_WATCHDOG_NOW=$T0 run timeout 1 "$WATCHDOG"
    [ ! -s "$FAKE_LOG" ]
}

@test "FUNNELPULSE_WATCHDOG_MINUTE_SECONDS shortens the idle minute (the rehearsal uses it)" {
    export FUNNELPULSE_WATCHDOG_MINUTE_SECONDS=2
    FUNNELPULSE_WATCHDOG_NOW=$T0 run "$WATCHDOG" --once
    FUNNELPULSE_WATCHDOG_NOW=$((T0 + 59)) run "$WATCHDOG" --once
    [[ "$output" == *"idle for 29 min (limit 30)"* ]]
    FUNNELPULSE_WATCHDOG_NOW=$((T0 + 60)) run "$WATCHDOG" --once
    grep -q "resize funnelpulse-executors --size 0" "$FAKE_LOG"
}

@test "a scheduler that does not answer is not idle, until twice the limit" {
    at_minute 0
    echo 500 >"$REST/api/jobs.status"
    at_minute 31
    [ "$status" -eq 0 ]
    [[ "$output" == *"does not answer; not counted as idle (no job seen for 31 min; it is stopped anyway after 60)"* ]]
    [ ! -s "$FAKE_LOG" ]

    stop_http # not even a connection
    at_minute 59
    [ ! -s "$FAKE_LOG" ]
    at_minute 60
    [[ "$output" == *"does not answer and no job was seen for 60 min (twice the limit of 30): taking it as broken"* ]]
    [ "$(calls)" = "gcloud compute instance-groups managed resize funnelpulse-executors --size 0 --zone europe-west1-b --quiet
systemctl poweroff" ] || { calls; false; }
}

@test "only the status field counts, not a job name that contains the words" {
    echo '[{"job_id":"x","job_name":"x \"status\":\"Running\"","job_status":"Completed","status":"Completed"}]' >"$REST/api/jobs"
    at_minute 0
    at_minute 30
    grep -q "resize" "$FAKE_LOG"
    # And an answer that is not a JSON array is not an empty cluster.
    rm -f "${FAKE_LOG:?}" "$FUNNELPULSE_WATCHDOG_STATE_DIR/last-active"
    echo '<html>starting</html>' >"$REST/api/jobs"
    at_minute 0
    at_minute 45
    [[ "$output" == *"does not answer; not counted as idle"* ]]
    [ ! -s "$FAKE_LOG" ]
}

@test "settings from the metadata when unset: the idle limit is read at every poll, 0 turns it off" {
    unset FUNNELPULSE_IDLE_MINUTES FUNNELPULSE_EXECUTOR_GROUP FUNNELPULSE_ZONE
    attr funnelpulse-idle-minutes 0
    attr funnelpulse-executor-group fp-executors
    attr funnelpulse-zone europe-west1-c
    at_minute 0
    at_minute 600
    [ "$status" -eq 0 ]
    [ ! -s "$FAKE_LOG" ]
    [ ! -s "$FAKE_QUERY_LOG" ]

    attr funnelpulse-idle-minutes 10
    at_minute 609
    [[ "$output" == *"idle for 9 min (limit 10)"* ]]
    at_minute 610
    [ "$(calls)" = "gcloud compute instance-groups managed resize fp-executors --size 0 --zone europe-west1-c --quiet
systemctl poweroff" ] || { calls; false; }
}

@test "as a service: polls until the cluster is stopped, then ends" {
    mkdir -p "$FUNNELPULSE_WATCHDOG_STATE_DIR"
    echo $((T0 - 31 * 60)) >"$FUNNELPULSE_WATCHDOG_STATE_DIR/last-active"
    FUNNELPULSE_WATCHDOG_NOW=$T0 run timeout 10 "$WATCHDOG"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"watching $FUNNELPULSE_SCHEDULER_URL every 0.1s"* ]]
    # The self-test's resize to the current size, then the stop's.
    [ "$(grep -c 'resize funnelpulse-executors --size 2' "$FAKE_LOG")" -eq 1 ]
    [ "$(grep -c 'resize funnelpulse-executors --size 0' "$FAKE_LOG")" -eq 1 ]
    [ "$(grep -c poweroff "$FAKE_LOG")" -eq 1 ]
}

@test "as a service: keeps polling while jobs run" {
    jobs_running
    FUNNELPULSE_WATCHDOG_NOW=$T0 run timeout 2 "$WATCHDOG"
    [ "$status" -eq 124 ] # still running when timeout stopped it
    [ "$(grep -c 'busy: 2 job' <<<"$output")" -ge 3 ]
    # Only the self-test acted: no stop.
    refute grep -q "size 0\|poweroff" "$FAKE_LOG"
}

# submit.sh --detach runs the client as the transient unit funnelpulse-stream
# (or funnelpulse-replay) on this VM: a stream waiting for records runs no job.
@test "an active detached stream keeps the cluster, however long; the clock restarts when it ends" {
    units_active funnelpulse-stream.service
    for minute in 0 30 61 600; do
        at_minute "$minute"
        [ "$status" -eq 0 ] || { echo "$output"; false; }
        [[ "$output" == *"busy: funnelpulse-stream active (a run detached by deploy/submit.sh --detach; it may wait for records without running a job)"* ]]
        refute grep -q "idle for" <<<"$output"
    done
    [ ! -s "$FAKE_LOG" ]
    # Both units asked at each poll, with --quiet (the exit status is the answer).
    [ "$(sort -u "$FAKE_QUERY_LOG")" = "systemctl is-active --quiet funnelpulse-replay.service
systemctl is-active --quiet funnelpulse-stream.service" ] || { cat "$FAKE_QUERY_LOG"; false; }
    [ "$(grep -c funnelpulse-stream "$FAKE_QUERY_LOG")" -eq 4 ]

    # The stream ends (its run, down.sh, systemctl stop): a full idle period from its last poll.
    units_active
    at_minute 629
    [[ "$output" == *"idle for 29 min (limit 30)"* ]]
    [ ! -s "$FAKE_LOG" ]
    at_minute 630
    [ "$(calls)" = "gcloud compute instance-groups managed resize funnelpulse-executors --size 0 --zone europe-west1-b --quiet
systemctl poweroff" ] || { calls; false; }
}

@test "an active detached replay counts too, and both are named when both run" {
    at_minute 0
    units_active funnelpulse-replay.service
    at_minute 45
    [[ "$output" == *"busy: funnelpulse-replay active (a run detached"* ]]
    [ ! -s "$FAKE_LOG" ]
    units_active funnelpulse-stream.service funnelpulse-replay.service
    at_minute 90
    [[ "$output" == *"busy: funnelpulse-stream funnelpulse-replay active"* ]]
    [ ! -s "$FAKE_LOG" ]
    units_active
    at_minute 119
    [[ "$output" == *"idle for 29 min (limit 30)"* ]]
    [ ! -s "$FAKE_LOG" ]
}

@test "inactive detached units, or other active units: the usual idle stop" {
    units_active funnelpulse-scheduler.service funnelpulse-watchdog.service funnelpulse-stream-old.service
    at_minute 0
    [[ "$output" == *"idle for 0 min (limit 30)"* ]]
    at_minute 30
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    refute grep -q "busy" <<<"$output"
    [ "$(calls)" = "gcloud compute instance-groups managed resize funnelpulse-executors --size 0 --zone europe-west1-b --quiet
systemctl poweroff" ] || { calls; false; }
    grep -qx "systemctl is-active --quiet funnelpulse-stream.service" "$FAKE_QUERY_LOG"
    grep -qx "systemctl is-active --quiet funnelpulse-replay.service" "$FAKE_QUERY_LOG"
}

@test "an active detached stream keeps the cluster even when the scheduler does not answer" {
    units_active funnelpulse-stream.service
    at_minute 0
    stop_http
    at_minute 60
    at_minute 120
    [ "$status" -eq 0 ]
    [[ "$output" == *"busy: funnelpulse-stream active (a run detached by deploy/submit.sh --detach; it may wait for records without running a job); the scheduler at $FUNNELPULSE_SCHEDULER_URL does not answer"* ]]
    [ ! -s "$FAKE_LOG" ]
    # Once it ends, the silent scheduler gets its usual twice-the-limit grace, from then.
    units_active
    at_minute 179
    [[ "$output" == *"does not answer; not counted as idle (no job seen for 59 min; it is stopped anyway after 60)"* ]]
    [ ! -s "$FAKE_LOG" ]
    at_minute 180
    [[ "$output" == *"taking it as broken"* ]]
    grep -q "resize funnelpulse-executors --size 0" "$FAKE_LOG"
}

@test "as a service: keeps polling while a detached stream is active" {
    mkdir -p "$FUNNELPULSE_WATCHDOG_STATE_DIR"
    echo $((T0 - 600 * 60)) >"$FUNNELPULSE_WATCHDOG_STATE_DIR/last-active"
    units_active funnelpulse-stream.service
    FUNNELPULSE_WATCHDOG_NOW=$T0 run timeout 2 "$WATCHDOG"
    [ "$status" -eq 124 ] # still running when timeout stopped it
    [ "$(grep -c 'busy: funnelpulse-stream active' <<<"$output")" -ge 3 ]
    refute grep -q "size 0\|poweroff" "$FAKE_LOG"
    [ "$(cat "$FUNNELPULSE_WATCHDOG_STATE_DIR/last-active")" = "$T0" ]
}
