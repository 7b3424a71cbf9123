#!/usr/bin/env bats
# deploy/gce/watchdog.sh against a fake scheduler REST API (127.0.0.1, serving
# a jobs list the test sets, in Ballista 55's JSON) and fake gcloud/systemctl.
# Time is FUNNELPULSE_WATCHDOG_NOW; each `--once` run is a new process, as
# after a restart, so the state file carries the idle clock between them.

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
    jobs_done
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
    [[ "$output" == *"no job queued or running for 30 min (limit 30): scaling executor group funnelpulse-executors in europe-west1-b to 0"* ]]
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

@test "resize fails: no poweroff, a clear log line, and it tries again at the next poll" {
    at_minute 0
    export FAKE_RESIZE_EXIT=1
    at_minute 31
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: resizing funnelpulse-executors to 0 failed (gcloud's message above); not powering off the scheduler"* ]]
    [[ "$output" == *"compute.instanceGroupManagers.update"* ]]
    refute grep -q poweroff "$FAKE_LOG"

    export FAKE_RESIZE_EXIT=0
    at_minute 32
    [ "$status" -eq 0 ]
    [ "$(grep -c resize "$FAKE_LOG")" -eq 2 ]
    [ "$(tail -n 1 "$FAKE_LOG")" = "systemctl poweroff" ]
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
    start_metadata
    attr funnelpulse-idle-minutes 0
    attr funnelpulse-executor-group fp-executors
    attr funnelpulse-zone europe-west1-c
    at_minute 0
    at_minute 600
    [ "$status" -eq 0 ]
    [ ! -s "$FAKE_LOG" ]

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
    [ "$(grep -c resize "$FAKE_LOG")" -eq 1 ]
    [ "$(grep -c poweroff "$FAKE_LOG")" -eq 1 ]
}

@test "as a service: keeps polling while jobs run" {
    jobs_running
    FUNNELPULSE_WATCHDOG_NOW=$T0 run timeout 2 "$WATCHDOG"
    [ "$status" -eq 124 ] # still running when timeout stopped it
    [ "$(grep -c 'busy: 2 job' <<<"$output")" -ge 3 ]
    [ ! -s "$FAKE_LOG" ]
}
