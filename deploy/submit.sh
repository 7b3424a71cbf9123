#!/usr/bin/env bash
# Runs single stages from this machine against the cluster (gce: through the
# IAP tunnel, opened if needed; a local --raw is uploaded to the bucket first).
#
#   deploy/submit.sh [--target gce|local] [--lake URL] [--dry-run] STAGE… [-- funnelpulse run options]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
[[ ${#REST[@]} -gt 0 && "${REST[0]}" != "--" ]] || die "name the stages to run (01 … 06, or all)"
ARGS=()
for arg in "${REST[@]}"; do [[ "$arg" == "--" ]] || ARGS+=("$arg"); done
"${TARGET}_submit"
