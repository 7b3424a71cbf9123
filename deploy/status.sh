#!/usr/bin/env bash
# Shows the cluster: VMs (gce) or processes (local), registered executors,
# jobs by status, idle time, $/hour.
#
#   deploy/status.sh [--target gce|local] [--dry-run]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
[[ ${#REST[@]} -eq 0 ]] || die "unknown argument '${REST[0]}'"
"${TARGET}_status"
