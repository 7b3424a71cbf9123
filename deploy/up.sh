#!/usr/bin/env bash
# Starts a Ballista cluster (our scheduler and executors) and waits until the
# executors are registered; with --run-all, runs every stage against it.
#
#   deploy/up.sh --target local [--executors 2] [--lake DIR] [--run-all] [--dry-run] [-- funnelpulse run options]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }

RUN_ALL=0
parse_common "$@"
set -- "${REST[@]+"${REST[@]}"}"
EXTRA=()
for arg in "$@"; do
    case "$arg" in
    --run-all) RUN_ALL=1 ;;
    --) ;;
    *) EXTRA+=("$arg") ;;
    esac
done

start() { # name, command…
    local name="$1"
    shift
    if pid_alive "$LOCAL_DIR/$name.pid"; then
        echo "$name already running (pid $(cat "$LOCAL_DIR/$name.pid"))"
        return
    fi
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ $* > $LOCAL_DIR/logs/$name.log 2>&1 &"
        return
    fi
    nohup "$@" >"$LOCAL_DIR/logs/$name.log" 2>&1 &
    echo $! >"$LOCAL_DIR/$name.pid"
}

wait_for_executors() {
    [[ "$DRY_RUN" == 1 ]] && return
    local deadline=$((SECONDS + 60))
    until [[ "$(registered_executors)" -ge "$EXECUTORS" ]]; do
        pid_alive "$LOCAL_DIR/scheduler.pid" || die "the scheduler stopped: see $LOCAL_DIR/logs/scheduler.log"
        [[ $SECONDS -lt $deadline ]] || die "only $(registered_executors) of $EXECUTORS executors registered after 60 s: see $LOCAL_DIR/logs/"
        sleep 0.5
    done
}

scheduler_bin="$(binary funnelpulse-scheduler)"
executor_bin="$(binary funnelpulse-executor)"
run mkdir -p "$LOCAL_DIR/logs"
start scheduler "$scheduler_bin" --bind-host 127.0.0.1 --external-host 127.0.0.1 --port "$SCHEDULER_PORT"
for i in $(seq 1 "$EXECUTORS"); do
    run mkdir -p "$LOCAL_DIR/executor$i"
    start "executor$i" "$executor_bin" --bind-host 127.0.0.1 --external-host 127.0.0.1 \
        --port $((SCHEDULER_PORT + 2 * i - 1)) --grpc-port $((SCHEDULER_PORT + 2 * i)) \
        --scheduler-host 127.0.0.1 --scheduler-port "$SCHEDULER_PORT" --work-dir "$LOCAL_DIR/executor$i"
done
wait_for_executors
echo "cluster up: scheduler $(scheduler_url), $EXECUTORS executors, lake $LAKE (local target: \$0.00/hour)"
echo "submit stages with: deploy/submit.sh --target local 01 02 …   stop it with: deploy/down.sh --target local"
if [[ "$RUN_ALL" == 1 ]]; then
    submit_stages all "${EXTRA[@]+"${EXTRA[@]}"}"
fi
