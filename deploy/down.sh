#!/usr/bin/env bash
# Stops the cluster; the lake stays (gce: terraform destroy of module.cluster
# only, the bucket, service accounts and roles survive; the IAP tunnel is closed).
# --by-label (gce): without Terraform's state, deletes what the deployment bills
# for, found by its label funnelpulse-deployment=funnelpulse (docs/deploy-gce.md).
#
#   deploy/down.sh [--target gce|local] [--by-label] [--state-bucket NAME] [--dry-run]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }

BY_LABEL=0
parse_common "$@"
for arg in "${REST[@]+"${REST[@]}"}"; do
    case "$arg" in
    --by-label) BY_LABEL=1 ;;
    --all) die "down.sh never deletes the bucket (Terraform protects it with prevent_destroy); it prints how to delete it by hand after removing the cluster" ;;
    *) die "unknown argument '$arg'" ;;
    esac
done
if [[ "$BY_LABEL" == 1 ]]; then
    [[ "$TARGET" == gce ]] || die "--by-label is for the gce target"
    gce_down_by_label
else
    "${TARGET}_down"
fi
