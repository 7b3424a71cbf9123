#!/usr/bin/env bash
# Stops the cluster; the lake stays (gce: terraform destroy of module.cluster
# only, the bucket survives; the IAP tunnel is closed).
#
#   deploy/down.sh [--target gce|local] [--dry-run]
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

parse_common "$@"
for arg in "${REST[@]+"${REST[@]}"}"; do
    case "$arg" in
    --all) die "down.sh never deletes the bucket (Terraform protects it with prevent_destroy); it prints how to delete it by hand after removing the cluster" ;;
    *) die "unknown argument '$arg'" ;;
    esac
done
"${TARGET}_down"
