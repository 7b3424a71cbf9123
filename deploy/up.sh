#!/usr/bin/env bash
# Starts a Ballista cluster (our scheduler and executors) and waits until the
# executors are registered; with --run-all, runs every stage against it.
#
#   deploy/up.sh [--target gce] [--project ID] [--executors 2] [--spot|--no-spot] [--run-all] [--dry-run]
#                [--kafka-bootstrap-servers HOST:PORT | --managed-kafka] [--kafka-topic T]
#                [--iap-member M]… [--max-run SECONDS] [--billing-account ID] [--state-bucket NAME]
#                [-- funnelpulse run options]
#   deploy/up.sh --target local [--executors 2] [--lake DIR] [--run-all] [--dry-run] [-- funnelpulse run options]
#
# gce: check the project's APIs, terraform apply the bucket (module.lake), upload
# the binaries (scheduler, executor, and the client the scheduler VM runs Kafka
# stages with) with their sha256, terraform apply the rest (the VMs check each
# binary's sha256), open an IAP tunnel to the scheduler on localhost:50050, wait
# for the executor group to reach this release and for its executors, print the $/hour.
# All settings: deploy/lib.sh; the guide: docs/deploy-gce.md.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

RUN_ALL=0
EXTRA=()
parse_common "$@"
set -- "${REST[@]+"${REST[@]}"}"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --run-all) RUN_ALL=1 ;;
    --) shift; EXTRA+=("$@"); break ;;
    *) die "unknown option '$1' (options for funnelpulse run go after --)" ;;
    esac
    shift
done

take_user_lake "${EXTRA[@]+"${EXTRA[@]}"}"
EXTRA=("${OPTIONS[@]+"${OPTIONS[@]}"}")
"${TARGET}_up"
