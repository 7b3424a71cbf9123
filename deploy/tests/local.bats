#!/usr/bin/env bats
# The local target for real: our scheduler and two executors as processes on
# 127.0.0.1, a stage submitted to them, status, and teardown.
# Needs the binaries: FUNNELPULSE_BIN_DIR (default $CARGO_TARGET_DIR/debug).

setup() {
    DEPLOY="$BATS_TEST_DIRNAME/.."
    export FUNNELPULSE_LOCAL_DIR="$BATS_TEST_TMPDIR/local"
    export FUNNELPULSE_BIN_DIR="${FUNNELPULSE_BIN_DIR:-${CARGO_TARGET_DIR:-$DEPLOY/../target}/debug}"
    # Five consecutive free ports: the scheduler's and two per executor.
    FUNNELPULSE_SCHEDULER_PORT="$(python3 - <<'PY'
import socket
for base in range(20000, 60000, 17):
    sockets = []
    try:
        for port in range(base, base + 5):
            s = socket.socket(); s.bind(("127.0.0.1", port)); sockets.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in sockets: s.close()
PY
)"
    export FUNNELPULSE_SCHEDULER_PORT
}

teardown() {
    "$DEPLOY/down.sh" --target local >/dev/null 2>&1 || true
    local pid_file
    for pid_file in "$BATS_TEST_TMPDIR"/holder-*.pid; do
        if [[ -f "$pid_file" ]]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
    done
}

# Holds 127.0.0.1:PORT in the background (listening, or only bound: a socket
# that neither ss nor lsof shows), its pid in holder-PORT.pid, until the test ends.
hold_port() { # port, listen|bind
    python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "listen": s.listen()
open(sys.argv[3], "w").close()
time.sleep(300)' "$1" "$2" "$BATS_TEST_TMPDIR/holder-$1.ready" &
    echo $! >"$BATS_TEST_TMPDIR/holder-$1.pid"
    until [[ -e "$BATS_TEST_TMPDIR/holder-$1.ready" ]]; do sleep 0.1; done
}

@test "up, status, submit and down run a real local cluster" {
    run "$DEPLOY/up.sh" --target local --executors 2
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"cluster up: scheduler df://127.0.0.1:$FUNNELPULSE_SCHEDULER_PORT, 2 executors"* ]]

    run "$DEPLOY/status.sh" --target local
    [[ "$output" == *"2 executors registered"* ]] || { echo "$output"; false; }
    [[ "$output" == *"executor2: running"* ]]

    "$FUNNELPULSE_BIN_DIR/funnelpulse" generate --out "$BATS_TEST_TMPDIR/raw" --rows 3000 --days 2 >/dev/null
    run "$DEPLOY/submit.sh" --target local 01 -- --raw "$BATS_TEST_TMPDIR/raw"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"Ballista scheduler df://127.0.0.1:$FUNNELPULSE_SCHEDULER_PORT"* ]]
    ls "$FUNNELPULSE_LOCAL_DIR/lake/tables/gold_funnel_hourly_brand/_delta_log/00000000000000000000.json" >/dev/null

    run "$DEPLOY/status.sh" --target local
    [[ "$output" =~ jobs:\ [0-9]+\ completed ]] || { echo "$output"; false; }

    # A --lake among funnelpulse's options is the lake, not a second --lake.
    run "$DEPLOY/submit.sh" --target local 01 02 -- --raw "$BATS_TEST_TMPDIR/raw" --lake "$BATS_TEST_TMPDIR/mylake"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "${lines[0]}" == "lake: $BATS_TEST_TMPDIR/mylake (--lake after --)" ]] || { echo "$output"; false; }
    ls "$BATS_TEST_TMPDIR/mylake/tables/gold_funnel_hourly_brand/_delta_log/00000000000000000000.json" >/dev/null
    run "$DEPLOY/submit.sh" --target local 02 -- --lake="$BATS_TEST_TMPDIR/mylake"
    [ "$status" -eq 0 ] || { echo "$output"; false; }

    # The CLI's funnelpulse.toml (FUNNELPULSE_CONFIG) is the CLI's: the scripts hand it over.
    echo 'bad-rows = "quarantine"' >"$BATS_TEST_TMPDIR/funnelpulse.toml"
    FUNNELPULSE_CONFIG="$BATS_TEST_TMPDIR/funnelpulse.toml" run "$DEPLOY/submit.sh" --target local 02
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    echo 'colour = "red"' >"$BATS_TEST_TMPDIR/funnelpulse.toml"
    FUNNELPULSE_CONFIG="$BATS_TEST_TMPDIR/funnelpulse.toml" run "$DEPLOY/submit.sh" --target local 02
    [ "$status" -ne 0 ] && [[ "$output" == *"config file $BATS_TEST_TMPDIR/funnelpulse.toml: unknown setting \"colour\""* ]] || { echo "$output"; false; }

    # A second cluster on the same ports: the running one is named, with the way out.
    run env FUNNELPULSE_LOCAL_DIR="$BATS_TEST_TMPDIR/other" "$DEPLOY/up.sh" --target local --executors 2
    [ "$status" -ne 0 ]
    [[ "$output" == "error: port $FUNNELPULSE_SCHEDULER_PORT on 127.0.0.1 (scheduler's) is in use by funnelpulse-"*"(pid $(cat "$FUNNELPULSE_LOCAL_DIR/scheduler.pid")): a local cluster runs already: stop it with deploy/down.sh --target local"* ]] || { echo "$output"; false; }
    [ "${#lines[@]}" -eq 1 ]

    run "$DEPLOY/down.sh" --target local
    [ "$status" -eq 0 ]
    [[ "$output" == *"stopped scheduler"* && "$output" == *"stopped executor1"* ]]
    run "$DEPLOY/status.sh" --target local
    [[ "$output" == *"not running"* ]]
    [ -d "$FUNNELPULSE_LOCAL_DIR/lake/tables" ]
}

@test "--dry-run prints every command and starts nothing" {
    run "$DEPLOY/up.sh" --target local --executors 2 --run-all --dry-run
    [ "$status" -eq 0 ]
    [[ "$output" == *"+ $FUNNELPULSE_BIN_DIR/funnelpulse-scheduler --bind-host 127.0.0.1"* ]]
    [[ "$(grep -c 'funnelpulse-executor' <<<"$output")" -eq 2 ]]
    [[ "$output" == *"+ $FUNNELPULSE_BIN_DIR/funnelpulse run all --scheduler df://127.0.0.1:$FUNNELPULSE_SCHEDULER_PORT"* ]]
    [ ! -e "$FUNNELPULSE_LOCAL_DIR/scheduler.pid" ]
}

@test "--dry-run prints no secret: webhook path, user:password@, query values, Kafka passwords" {
    local webhook='https://hookuser:hunter2pass@hooks.example.com/services/T0SECRET/B0SECRET/xoxSECRET?token=qSECRET'
    run "$DEPLOY/submit.sh" --target local --dry-run 05 -- --alert-webhook "$webhook" \
        --kafka-option sasl.password=kafkaSECRET --raw "gs://u:rawSECRET@bucket/raw?sig=sigSECRET"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"--alert-webhook https://hooks.example.com/…"* && "$output" == *"sasl.password=…"* ]] || { echo "$output"; false; }
    [[ "$output" != *SECRET* && "$output" != *hookuser* && "$output" != *hunter2pass* ]] || { echo "$output"; false; }
    run "$DEPLOY/up.sh" --target local --run-all --dry-run -- --alert-webhook="$webhook"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"--alert-webhook=https://hooks.example.com/…"* ]] || { echo "$output"; false; }
    [[ "$output" != *SECRET* && "$output" != *hunter2pass* ]] || { echo "$output"; false; }
}

@test "submit serve runs the dashboard against the local cluster" {
    run "$DEPLOY/submit.sh" --target local --dry-run serve --bind 127.0.0.1:9000
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"+ $FUNNELPULSE_BIN_DIR/funnelpulse serve --scheduler df://127.0.0.1:$FUNNELPULSE_SCHEDULER_PORT --lake "*" --bind 127.0.0.1:9000"* ]] ||
        { echo "$output"; false; }
}

@test "bad settings and a missing cluster are refused clearly" {
    run "$DEPLOY/up.sh" --target moon
    [ "$status" -ne 0 ] && [[ "$output" == *"unknown target 'moon'"* ]]
    run "$DEPLOY/up.sh" --target local --executors none
    [ "$status" -ne 0 ] && [[ "$output" == *"--executors must be a number"* ]]
    run "$DEPLOY/submit.sh" --target local 01
    [ "$status" -ne 0 ] && [[ "$output" == *"no local cluster is running"* ]]
    run "$DEPLOY/submit.sh" --target local
    [ "$status" -ne 0 ] && [[ "$output" == *"name the stages"* ]]
}

@test "a port in use is named, with what holds it and the setting that moves the cluster" {
    local executor_port=$((FUNNELPULSE_SCHEDULER_PORT + 1))
    hold_port "$executor_port" listen
    run "$DEPLOY/up.sh" --target local --executors 2
    [ "$status" -ne 0 ]
    [[ "$output" == "error: port $executor_port on 127.0.0.1 (executor1's) is in use by python"*" (pid $(cat "$BATS_TEST_TMPDIR/holder-$executor_port.pid")): stop it, or move the local cluster with FUNNELPULSE_SCHEDULER_PORT=P"* ]] || { echo "$output"; false; }
    [ "${#lines[@]}" -eq 1 ]
    # Found before anything started.
    [ ! -e "$FUNNELPULSE_LOCAL_DIR/scheduler.pid" ]
}

@test "a port taken without listening is found in the scheduler's or executor's log" {
    hold_port "$FUNNELPULSE_SCHEDULER_PORT" bind
    run "$DEPLOY/up.sh" --target local --executors 1
    [ "$status" -ne 0 ]
    [[ "$output" == "error: port $FUNNELPULSE_SCHEDULER_PORT on 127.0.0.1 (scheduler's) is in use: stop the program holding it, or move the local cluster with FUNNELPULSE_SCHEDULER_PORT=P"* ]] || { echo "$output"; false; }
    [ "${#lines[@]}" -eq 1 ]
    teardown

    hold_port $((FUNNELPULSE_SCHEDULER_PORT + 2)) bind
    run "$DEPLOY/up.sh" --target local --executors 1
    [ "$status" -ne 0 ]
    [[ "$output" == "error: port $((FUNNELPULSE_SCHEDULER_PORT + 1)) or $((FUNNELPULSE_SCHEDULER_PORT + 2)) on 127.0.0.1 (executor1's) is in use: stop the program holding it"* ]] || { echo "$output"; false; }
    [ "${#lines[@]}" -eq 1 ]
}

@test "up --run-all runs every stage on the local cluster and ends with the summary" {
    "$FUNNELPULSE_BIN_DIR/funnelpulse" generate --out "$BATS_TEST_TMPDIR/raw" --rows 4000 --days 2 >/dev/null
    run "$DEPLOY/up.sh" --target local --executors 2 --run-all -- --raw "$BATS_TEST_TMPDIR/raw" \
        --stream-from 2019-10-01 --stream-to 2019-10-02 --stream-files 4
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"running stages 01, 02, 03, 04, 05, 06 on Ballista scheduler df://127.0.0.1:$FUNNELPULSE_SCHEDULER_PORT"* ]]
    [[ "$output" == *"stage 04 done"*"4 files"* ]] || { echo "$output"; false; }
    [ -f "$FUNNELPULSE_LOCAL_DIR/lake/reports/summary.html" ]
    # A Delta table: each micro-batch's files in a run folder of their own, appended to the log.
    compgen -G "$FUNNELPULSE_LOCAL_DIR/lake/tables/gold_stream_funnel_hourly_brand/run-*/window_date=2019-10-01" >/dev/null
}
