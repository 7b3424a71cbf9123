#!/usr/bin/env bash
# Shows the cluster: processes, registered executors, jobs.
#
#   deploy/status.sh --target local
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
shopt -s nullglob
pids=("$LOCAL_DIR"/*.pid)
if [[ ${#pids[@]} -eq 0 ]]; then
    echo "local cluster: not running"
    exit 0
fi
for pid_file in "${pids[@]}"; do
    name="$(basename "$pid_file" .pid)"
    if pid_alive "$pid_file"; then state="running (pid $(cat "$pid_file"))"; else state="stopped"; fi
    echo "$name: $state"
done
echo "scheduler $(scheduler_url): $(registered_executors) executors registered"
if jobs="$(api jobs 2>/dev/null)"; then
    echo "jobs: $(jq -r 'if length == 0 then "none" else group_by(.status) | map("\(length) \(.[0].status | ascii_downcase)") | join(", ") end' <<<"$jobs" 2>/dev/null || echo "?")"
fi
echo "cost: \$0.00/hour (local target)"
