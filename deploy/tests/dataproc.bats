#!/usr/bin/env bats
# deploy/dataproc/funnelpulse-executor.sh (a Dataproc initialization action)
# against a fake metadata server with Dataproc's attributes, a fake bucket
# behind a fake gcloud, and a fake systemctl.

load vm-fakes/helpers
load assert

ACTION="$BATS_TEST_DIRNAME/../dataproc/funnelpulse-executor.sh"
RELEASE=gs://team-lake/releases/0123456789ab

setup() {
    setup_fakes
    start_metadata
    export FUNNELPULSE_ROOT="$BATS_TEST_TMPDIR/root" FUNNELPULSE_RETRY_SECONDS=0
    export FUNNELPULSE_VCPUS=8 FUNNELPULSE_MEMORY_MB=32000
    ROOT="$FUNNELPULSE_ROOT"
    attr dataproc-master analytics-m
    attr dataproc-worker-count 2
    attr funnelpulse-release "$RELEASE"
    gcs_put "$RELEASE/funnelpulse-scheduler" "scheduler binary"
    gcs_put "$RELEASE/funnelpulse-executor" "executor binary"
}

teardown() { stop_http; }

node() { # dataproc-role, hostname
    attr dataproc-role "$1"
    printf '%s' "$2" >"$META/hostname"
}

unit() { cat "$ROOT/etc/systemd/system/funnelpulse-$1.service"; }

@test "worker: an executor registered with the master's scheduler, with half the vCPUs and a memory cap" {
    node Worker analytics-w-0.europe-west1-b.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(cat "$ROOT/opt/funnelpulse/bin/funnelpulse-executor")" = "executor binary" ]
    unit executor | grep -qx "ExecStart=/opt/funnelpulse/bin/funnelpulse-executor --scheduler-host analytics-m --scheduler-port 50050 --external-host analytics-w-0.europe-west1-b.c.proj.internal --work-dir /var/lib/funnelpulse/work --heartbeat-interval-seconds 5 --concurrent-tasks 4"
    unit executor | grep -qx "MemoryMax=8000M"
    unit executor | grep -qx "CPUWeight=50"
    unit executor | grep -qx "Restart=always"
    [ ! -e "$ROOT/etc/systemd/system/funnelpulse-scheduler.service" ]
    [ "$(grep -v '^useradd' "$FAKE_LOG")" = "gcloud storage cp $RELEASE/funnelpulse-executor $ROOT/opt/funnelpulse/bin/funnelpulse-executor.download
systemctl daemon-reload
systemctl enable --now funnelpulse-executor.service" ] || { calls; false; }
    [[ "$output" == *"executor with 4 task slots (of 8 vCPUs) and at most 8000 MiB (25% of 32000)"* ]]
}

@test "master: runs the scheduler (no executor beside the cluster's own master services)" {
    node Master analytics-m.europe-west1-b.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    unit scheduler | grep -qx "ExecStart=/opt/funnelpulse/bin/funnelpulse-scheduler --bind-host 0.0.0.0 --external-host analytics-m.europe-west1-b.c.proj.internal --port 50050 --executor-timeout-seconds 30 --enable-embedded-flight-proxy"
    [ ! -e "$ROOT/etc/systemd/system/funnelpulse-executor.service" ]
    grep -qx "systemctl enable --now funnelpulse-scheduler.service" "$FAKE_LOG"
    refute grep -q "funnelpulse-executor" "$FAKE_LOG"
}

@test "single-node cluster: scheduler and executor on the master" {
    attr dataproc-worker-count 0
    attr funnelpulse-scheduler-host local
    node Master analytics-m.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    unit scheduler | grep -q -- "--external-host analytics-m.c.proj.internal"
    unit executor | grep -q -- "--scheduler-host analytics-m --scheduler-port 50050"
    [ "$(call_index 'enable --now funnelpulse-scheduler')" -lt "$(call_index 'enable --now funnelpulse-executor')" ]
}

@test "an existing scheduler: workers register with it, the master runs nothing of ours" {
    attr funnelpulse-scheduler-host 10.42.0.2
    node Master analytics-m.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    refute grep -q "^gcloud\|^systemctl" "$FAKE_LOG"

    node Worker analytics-w-1.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ]
    unit executor | grep -q -- "--scheduler-host 10.42.0.2 --scheduler-port 50050 --external-host analytics-w-1.c.proj.internal"
    [ ! -e "$ROOT/opt/funnelpulse/bin/funnelpulse-scheduler" ]
}

@test "high availability: only the first master runs the scheduler" {
    attr dataproc-master analytics-m-0
    node Master analytics-m-1.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ]
    [[ "$output" == *"nothing of ours runs on this master (the scheduler is analytics-m-0:50050)"* ]]
    refute grep -q "^gcloud\|^systemctl" "$FAKE_LOG"
}

@test "slots and memory share from the metadata; bad values are refused before anything is installed" {
    attr funnelpulse-executor-slots 2
    attr funnelpulse-executor-memory-percent 40
    node Worker analytics-w-0.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    unit executor | grep -q -- "--concurrent-tasks 2$"
    unit executor | grep -qx "MemoryMax=12800M"

    : >"$FAKE_LOG"
    attr funnelpulse-executor-memory-percent 100
    run "$ACTION"
    [ "$status" -ne 0 ]
    [[ "$output" == *"funnelpulse-executor-memory-percent must be a whole number from 5 to 90, not '100'"* ]]
    attr funnelpulse-executor-memory-percent 40
    attr funnelpulse-executor-slots 0
    run "$ACTION"
    [[ "$output" == *"funnelpulse-executor-slots must be a number ≥ 1, not '0'"* ]]
    refute grep -q "^gcloud\|^systemctl" "$FAKE_LOG"
}

@test "a one-vCPU worker still gets one slot" {
    export FUNNELPULSE_VCPUS=1
    node Worker analytics-w-0.c.proj.internal
    run "$ACTION"
    [ "$status" -eq 0 ]
    unit executor | grep -q -- "--concurrent-tasks 1$"
}

@test "outside Dataproc, or without a release, it stops with a clear error" {
    printf 'vm.internal' >"$META/hostname"
    run "$ACTION"
    [ "$status" -ne 0 ]
    [[ "$output" == *"dataproc-role is '', not Master or Worker: run this as a Dataproc initialization action"* ]]

    node Worker analytics-w-0.c.proj.internal
    rm "$META/attributes/funnelpulse-release"
    run "$ACTION"
    [ "$status" -ne 0 ]
    [[ "$output" == *"cluster metadata funnelpulse-release is '', not gs://<bucket>/releases/<version>"* ]]
    [ ! -s "$FAKE_LOG" ]
}

@test "a release that never appears fails the initialization action (and so the cluster creation)" {
    rm -r "${FAKE_GCS:?}"/*
    export FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS=1 FUNNELPULSE_RETRY_SECONDS=0.2
    node Worker analytics-w-0.c.proj.internal
    run "$ACTION"
    [ "$status" -ne 0 ]
    [[ "$output" == *"$RELEASE/funnelpulse-executor is still missing after 1s: upload the release before creating the cluster"* ]]
    refute grep -q "^systemctl" "$FAKE_LOG"
}
