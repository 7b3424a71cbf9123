#!/usr/bin/env bash
# Runs single stages from this machine against the cluster (gce: through the
# IAP tunnel, opened if needed; a local --raw is uploaded to the bucket first).
# Kafka runs need the brokers, which on gce only the VPC reaches: stage 04
# with --source kafka and kafka-replay (funnelpulse kafka replay) run on the
# scheduler VM over IAP SSH; --detach leaves them running there (a systemd
# unit; locally, a background process). serve runs the dashboard here
# (funnelpulse serve, http://127.0.0.1:8080), its queries on the cluster.
#
#   deploy/submit.sh [--target gce|local] [--lake URL] [--dry-run] STAGE… [-- funnelpulse run options]
#   deploy/submit.sh [--target gce|local] [--detach] 04 --source kafka [--bootstrap-servers H:P] [--topic T] [--kafka-option K=V …]
#   deploy/submit.sh [--target gce|local] [--detach] kafka-replay [funnelpulse kafka replay options]
#   deploy/submit.sh [--target gce|local] serve [funnelpulse serve options]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
[[ ${#REST[@]} -gt 0 && "${REST[0]}" != "--" ]] || die "name the stages to run (01 … 06, or all), or kafka-replay, or serve"
ARGS=()
for arg in "${REST[@]}"; do
    case "$arg" in
    --) ;;
    --detach) DETACH=1 ;;
    *) ARGS+=("$arg") ;;
    esac
done
take_user_lake "${ARGS[@]+"${ARGS[@]}"}"
ARGS=("${OPTIONS[@]+"${OPTIONS[@]}"}")
[[ ${#ARGS[@]} -gt 0 ]] || die "name the stages to run (01 … 06, or all), or kafka-replay, or serve"
for arg in "${ARGS[@]:1}"; do
    [[ "$arg" != kafka-replay ]] || die "kafka-replay runs alone: deploy/submit.sh kafka-replay [options]"
    [[ "$arg" != serve ]] || die "serve runs alone: deploy/submit.sh serve [options]"
done
if [[ "$DETACH" == 1 && -z "$(kafka_run_kind "${ARGS[@]}")" ]]; then
    die "--detach is for the Kafka runs (04 --source kafka, kafka-replay), which can run for as long as the topic feeds them"
fi
"${TARGET}_submit"
