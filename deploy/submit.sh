#!/usr/bin/env bash
# Runs single stages from this machine against the cluster.
#
#   deploy/submit.sh --target local [--lake DIR] [--dry-run] STAGE… [-- funnelpulse run options]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
[[ ${#REST[@]} -gt 0 && "${REST[0]}" != "--" ]] || die "name the stages to run (01 … 06, or all)"
ARGS=()
for arg in "${REST[@]}"; do [[ "$arg" == "--" ]] || ARGS+=("$arg"); done
[[ "$DRY_RUN" == 1 ]] || pid_alive "$LOCAL_DIR/scheduler.pid" || die "no local cluster is running: start it with deploy/up.sh --target local"
submit_stages "${ARGS[@]}"
