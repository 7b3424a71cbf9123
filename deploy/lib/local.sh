#!/usr/bin/env bash
# The local target: our scheduler and executors as processes on 127.0.0.1, with
# pid files and logs in $LOCAL_DIR. Sourced by lib.sh; one function per script.

# Starts a process in the background with its pid file, unless it runs already.
local_start() { # name, command…
    local name="$1"
    shift
    if pid_alive "$LOCAL_DIR/$name.pid"; then
        echo "$name already running (pid $(cat "$LOCAL_DIR/$name.pid"))"
        return
    fi
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ $(redact "$*") > $LOCAL_DIR/logs/$name.log 2>&1 &"
        return
    fi
    nohup "$@" >"$LOCAL_DIR/logs/$name.log" 2>&1 &
    echo $! >"$LOCAL_DIR/$name.pid"
}

# Whether something listens on 127.0.0.1:PORT (bash's /dev/tcp: no tool needed).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# "python3 (pid 123)" for the process listening on PORT, when ss or lsof can
# tell (only for the user's own processes, unless root); else nothing.
port_holder() { # port
    local holder=""
    if command -v ss >/dev/null 2>&1; then
        holder="$(ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1)"
    fi
    if [[ -z "$holder" ]] && command -v lsof >/dev/null 2>&1; then
        holder="$(lsof -nP -iTCP:"$1" -sTCP:LISTEN -Fpc 2>/dev/null | awk '/^p/ { pid = substr($0, 2) } /^c/ { print substr($0, 2) " (pid " pid ")"; exit }')"
    fi
    echo "$holder"
}

# Dies with one line: the port, who holds it, and how to get past it.
die_port_taken() { # port, its user (scheduler, executor1 …)
    local holder advice stop="stop it"
    holder="$(port_holder "$1")"
    [[ -n "$holder" ]] || stop="stop the program holding it"
    advice="$stop, or move the local cluster with FUNNELPULSE_SCHEDULER_PORT=P (the scheduler's port; the executors take the $((2 * EXECUTORS)) after it)"
    if [[ "$holder" == funnelpulse* ]]; then
        advice="a local cluster runs already: stop it with deploy/down.sh --target local (with the FUNNELPULSE_LOCAL_DIR it was started with), or move this one with FUNNELPULSE_SCHEDULER_PORT=P (the executors take the $((2 * EXECUTORS)) ports after it)"
    fi
    die "port $1 on 127.0.0.1 ($2's) is in use${holder:+ by $holder}: $advice"
}

# The ports of the scheduler and executors about to start (not those running
# already): checked before any of them starts.
local_check_ports() {
    local i port
    [[ "$DRY_RUN" == 1 ]] && return
    if ! pid_alive "$LOCAL_DIR/scheduler.pid" && port_in_use "$SCHEDULER_PORT"; then die_port_taken "$SCHEDULER_PORT" scheduler; fi
    for i in $(seq 1 "$EXECUTORS"); do
        pid_alive "$LOCAL_DIR/executor$i.pid" && continue
        for port in $((SCHEDULER_PORT + 2 * i - 1)) $((SCHEDULER_PORT + 2 * i)); do
            if port_in_use "$port"; then die_port_taken "$port" "executor$i"; fi
        done
    done
}

# A scheduler or executor that stopped: a port taken after the check (its log
# says so; a socket bound without listening is not seen by the check), else its log.
# Ballista's error does not say which port: an executor's two are both named.
local_die_stopped() { # name, its ports…
    local name="$1" log="$LOCAL_DIR/logs/$1.log" ports
    shift
    if grep -qiE 'address (already )?in use|AddrInUse' "$log" 2>/dev/null; then
        ports="$*"
        die_port_taken "${ports// / or }" "$name"
    fi
    die "the $name stopped: see $log"
}

local_wait_for_executors() {
    [[ "$DRY_RUN" == 1 ]] && return
    local deadline=$((SECONDS + 60)) i
    until [[ "$(registered_executors)" -ge "$EXECUTORS" ]]; do
        pid_alive "$LOCAL_DIR/scheduler.pid" || local_die_stopped scheduler "$SCHEDULER_PORT"
        for i in $(seq 1 "$EXECUTORS"); do
            pid_alive "$LOCAL_DIR/executor$i.pid" || local_die_stopped "executor$i" $((SCHEDULER_PORT + 2 * i - 1)) $((SCHEDULER_PORT + 2 * i))
        done
        [[ $SECONDS -lt $deadline ]] || die "only $(registered_executors) of $EXECUTORS executors registered after 60 s: see $LOCAL_DIR/logs/"
        sleep 0.5
    done
}

# up.sh: RUN_ALL and EXTRA (options for funnelpulse run) come from the script.
local_up() {
    local scheduler_bin executor_bin i
    scheduler_bin="$(binary funnelpulse-scheduler)"
    executor_bin="$(binary funnelpulse-executor)"
    local_check_ports
    run mkdir -p "$LOCAL_DIR/logs"
    local_start scheduler "$scheduler_bin" --bind-host 127.0.0.1 --external-host 127.0.0.1 --port "$SCHEDULER_PORT"
    for i in $(seq 1 "$EXECUTORS"); do
        run mkdir -p "$LOCAL_DIR/executor$i"
        local_start "executor$i" "$executor_bin" --bind-host 127.0.0.1 --external-host 127.0.0.1 \
            --port $((SCHEDULER_PORT + 2 * i - 1)) --grpc-port $((SCHEDULER_PORT + 2 * i)) \
            --scheduler-host 127.0.0.1 --scheduler-port "$SCHEDULER_PORT" --work-dir "$LOCAL_DIR/executor$i"
    done
    local_wait_for_executors
    echo "cluster up: scheduler $(scheduler_url), $EXECUTORS executors, lake $LAKE ($LAKE_FROM); local target: \$0.00/hour"
    echo "submit stages with: deploy/submit.sh --target local 01 02 …   stop it with: deploy/down.sh --target local"
    if [[ "$RUN_ALL" == 1 ]]; then
        local_kafka_env
        submit_stages all "${EXTRA[@]+"${EXTRA[@]}"}"
    fi
}

local_status() {
    local pids pid_file name state
    shopt -s nullglob
    pids=("$LOCAL_DIR"/*.pid)
    if [[ ${#pids[@]} -eq 0 ]]; then
        echo "local cluster: not running"
        return 0
    fi
    for pid_file in "${pids[@]}"; do
        name="$(basename "$pid_file" .pid)"
        if pid_alive "$pid_file"; then state="running (pid $(cat "$pid_file"))"; else state="stopped"; fi
        echo "$name: $state"
    done
    echo "scheduler $(scheduler_url): $(registered_executors) executors registered"
    local jobs
    jobs="$(jobs_by_status)"
    if [[ -n "$jobs" ]]; then echo "jobs: $jobs"; fi
    echo "cost: \$0.00/hour (local target)"
}

# The client runs here, so the Kafka settings reach it as they are: given as
# flags to the scripts, they become its environment (FUNNELPULSE_KAFKA_*);
# its own options (--bootstrap-servers, --kafka-option …) pass unchanged.
local_kafka_env() {
    if [[ -n "$KAFKA_BOOTSTRAP_SERVERS" ]]; then export FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS"; fi
    if [[ -n "$KAFKA_TOPIC" ]]; then export FUNNELPULSE_KAFKA_TOPIC="$KAFKA_TOPIC"; fi
}

# submit.sh: STAGES (and options after `--`), or kafka-replay and its
# options, in ARGS; DETACH runs it in the background (pid file and log here,
# like the cluster's processes: status.sh shows it, down.sh stops it first).
local_submit() {
    [[ "$DRY_RUN" == 1 ]] || pid_alive "$LOCAL_DIR/scheduler.pid" || die "no local cluster is running: start it with deploy/up.sh --target local"
    local_kafka_env
    local funnelpulse kind cmd=()
    funnelpulse="$(binary funnelpulse)"
    kind="$(kafka_run_kind "${ARGS[@]}")"
    lake_line
    if [[ "${ARGS[0]}" == kafka-replay ]]; then
        cmd=("$funnelpulse" kafka replay --scheduler "$(scheduler_url)" --lake "$LAKE" "${ARGS[@]:1}")
    elif [[ "${ARGS[0]}" == serve ]]; then
        cmd=("$funnelpulse" serve --scheduler "$(scheduler_url)" --lake "$LAKE" "${ARGS[@]:1}")
    else
        cmd=("$funnelpulse" run "${ARGS[@]}" --scheduler "$(scheduler_url)" --lake "$LAKE")
    fi
    if [[ "$DETACH" != 1 ]]; then
        run "${cmd[@]}"
        return
    fi
    run mkdir -p "$LOCAL_DIR/logs"
    local_start "$kind" "${cmd[@]}"
    echo "the $kind runs in the background: log $LOCAL_DIR/logs/$kind.log; deploy/status.sh --target local shows it, deploy/down.sh --target local stops it"
}

local_down() {
    local pid_file name
    local -A seen=()
    shopt -s nullglob
    # Detached runs first (a stream ends after its batch), then the cluster.
    for pid_file in "$LOCAL_DIR"/stream.pid "$LOCAL_DIR"/replay.pid "$LOCAL_DIR"/*.pid; do
        [[ -e "$pid_file" && -z "${seen[$pid_file]:-}" ]] || continue
        seen[$pid_file]=1
        name="$(basename "$pid_file" .pid)"
        if pid_alive "$pid_file"; then
            run kill "$(cat "$pid_file")"
            for _ in $(seq 1 50); do pid_alive "$pid_file" || break; sleep 0.1; done
            if pid_alive "$pid_file"; then run kill -9 "$(cat "$pid_file")"; fi
            echo "stopped $name"
        fi
        run rm -f "$pid_file"
    done
    echo "local cluster down; the lake stays at $LAKE"
}
