#!/usr/bin/env bash
# Stops the cluster; the lake stays.
#
#   deploy/down.sh --target local [--dry-run]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
shopt -s nullglob
for pid_file in "$LOCAL_DIR"/*.pid; do
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
