#!/usr/bin/env bats
# deploy/gce/startup.sh against a fake metadata server (127.0.0.1, answers only
# with Metadata-Flavor: Google), a fake bucket behind a fake gcloud, and a fake
# systemctl: what it installs, the units it writes, the order of its calls.

load vm-fakes/helpers
load assert

STARTUP="$BATS_TEST_DIRNAME/../gce/startup.sh"
WATCHDOG="$BATS_TEST_DIRNAME/../gce/watchdog.sh"
RELEASE=gs://proj-funnelpulse-lake/releases/0123456789ab

setup() {
    setup_fakes
    start_metadata
    export FUNNELPULSE_ROOT="$BATS_TEST_TMPDIR/root"
    export FUNNELPULSE_RETRY_SECONDS=0
    export FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS=30
    ROOT="$FUNNELPULSE_ROOT"
    attr funnelpulse-release "$RELEASE"
    attr funnelpulse-scheduler-host 10.42.0.2
    attr funnelpulse-idle-minutes 60
    attr funnelpulse-executor-group funnelpulse-executors
    attr funnelpulse-zone europe-west1-b
    attr funnelpulse-watchdog "$(cat "$WATCHDOG")"
    attr funnelpulse-lake gs://proj-funnelpulse-lake/lake
    attr funnelpulse-kafka-bootstrap-servers "bootstrap.kafka.example:9092,10.42.0.9:9092"
    attr funnelpulse-kafka-topic funnelpulse_events
    attr funnelpulse-kafka-auth google
    release_put "$RELEASE" funnelpulse-scheduler "scheduler binary"
    release_put "$RELEASE" funnelpulse-executor "executor binary"
    # The client: prints its FUNNELPULSE_* environment and its arguments.
    release_put "$RELEASE" funnelpulse '#!/bin/bash
env | grep "^FUNNELPULSE_" | grep -v "^FUNNELPULSE_CLIENT_ENV=" | sort
printf "arg %s\n" "$@"'
}

# Puts a binary of a release into the fake bucket and its sha256 into the metadata, as
# deploy/up.sh and terraform/ do.
release_put() { # release url, name, content
    gcs_put "$1/$2" "$3"
    attr "funnelpulse-release-sha256-$2" "$(printf '%s' "$3" | sha256sum | cut -d' ' -f1)"
}

teardown() { stop_http; }

as_role() { # role, hostname
    attr funnelpulse-role "$1"
    printf '%s' "$2" >"$META/hostname"
}

@test "scheduler: installs the release's binary, writes its unit with the interface's flags, starts it, installs the watchdog" {
    as_role scheduler funnelpulse-scheduler.europe-west1-b.c.proj.internal
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }

    [ -x "$ROOT/opt/funnelpulse/bin/funnelpulse-scheduler" ]
    [ "$(cat "$ROOT/opt/funnelpulse/bin/funnelpulse-scheduler")" = "scheduler binary" ]
    unit="$ROOT/etc/systemd/system/funnelpulse-scheduler.service"
    grep -qx "ExecStart=/opt/funnelpulse/bin/funnelpulse-scheduler --bind-host 0.0.0.0 --external-host funnelpulse-scheduler.europe-west1-b.c.proj.internal --port 50050 --executor-timeout-seconds 30 --enable-embedded-flight-proxy" "$unit"
    grep -qx "Restart=always" "$unit"
    grep -qx "User=funnelpulse" "$unit"
    grep -qx "WantedBy=multi-user.target" "$unit"

    # The watchdog is the script from the metadata, byte for byte, run by its own unit.
    cmp "$WATCHDOG" "$ROOT/opt/funnelpulse/bin/funnelpulse-watchdog"
    [ -x "$ROOT/opt/funnelpulse/bin/funnelpulse-watchdog" ]
    wunit="$ROOT/etc/systemd/system/funnelpulse-watchdog.service"
    grep -qx "ExecStart=/opt/funnelpulse/bin/funnelpulse-watchdog" "$wunit"
    grep -qx "Environment=FUNNELPULSE_EXECUTOR_GROUP=funnelpulse-executors" "$wunit"
    grep -qx "Environment=FUNNELPULSE_ZONE=europe-west1-b" "$wunit"
    grep -qx "Restart=always" "$wunit"

    # The watchdog before anything is downloaded; then the service user, download, unit, start.
    expected="systemctl daemon-reload
systemctl is-active --quiet funnelpulse-watchdog.service
systemctl enable --now funnelpulse-watchdog.service
useradd --system --no-create-home --home-dir /var/lib/funnelpulse --shell /usr/sbin/nologin funnelpulse
gcloud storage cp $RELEASE/funnelpulse-scheduler $ROOT/opt/funnelpulse/bin/funnelpulse-scheduler.download
systemctl daemon-reload
systemctl is-active --quiet funnelpulse-scheduler.service
systemctl enable --now funnelpulse-scheduler.service
gcloud storage cp $RELEASE/funnelpulse $ROOT/opt/funnelpulse/bin/funnelpulse.download"
    [ "$(calls)" = "$expected" ] || { calls; false; }
    [[ "$output" == *"idle watchdog on: executors to 0 and power-off after 60 idle minutes"* ]]
    [[ "$output" == *"installed /opt/funnelpulse/bin/funnelpulse-scheduler from $RELEASE/funnelpulse-scheduler (sha256 $(printf 'scheduler binary' | sha256sum | cut -d' ' -f1), as the metadata says)"* ]]
}

@test "a binary whose sha256 is not the metadata's is refused, and says why; the watchdog runs all the same" {
    as_role scheduler sched.internal
    gcs_put "$RELEASE/funnelpulse-scheduler" "scheduler binary, cut sho"
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: refusing $RELEASE/funnelpulse-scheduler: its sha256 is $(printf 'scheduler binary, cut sho' | sha256sum | cut -d' ' -f1), but the metadata (funnelpulse-release-sha256-funnelpulse-scheduler) says $(printf 'scheduler binary' | sha256sum | cut -d' ' -f1)"* ]]
    [ ! -e "$ROOT/opt/funnelpulse/bin/funnelpulse-scheduler" ]
    [ ! -e "$ROOT/opt/funnelpulse/bin/funnelpulse-scheduler.download" ]
    refute grep -q "enable --now funnelpulse-scheduler" "$FAKE_LOG"
    # The watchdog was started first: it stops the cluster that cannot start.
    grep -qx "systemctl enable --now funnelpulse-watchdog.service" "$FAKE_LOG"

    # No sha256 in the metadata at all: refused too, before any download.
    : >"$FAKE_LOG"
    as_role executor exec-1.internal
    rm "$META/attributes/funnelpulse-release-sha256-funnelpulse-executor"
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"metadata attribute funnelpulse-release-sha256-funnelpulse-executor is '', not a sha256 (64 hex digits): refusing to run an unchecked funnelpulse-executor"* ]]
    refute grep -q "storage cp" "$FAKE_LOG"
}

@test "scheduler: the watchdog is installed and started even when the release never arrives" {
    as_role scheduler sched.internal
    rm -r "${FAKE_GCS:?}"/*
    FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS=1 FUNNELPULSE_RETRY_SECONDS=0.2 run "$STARTUP"
    [ "$status" -ne 0 ]
    [ -x "$ROOT/opt/funnelpulse/bin/funnelpulse-watchdog" ]
    [ "$(call_index 'enable --now funnelpulse-watchdog')" -lt "$(call_index 'gcloud storage cp')" ]
}

@test "without a timeout, a VM waits for its release as long as it takes" {
    as_role executor exec-1.internal
    unset FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS
    FAKE_GCS_MISSING_TRIES=8 FUNNELPULSE_RETRY_SECONDS=0.1 run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"(attempt 8;"* ]]
    grep -qx "systemctl enable --now funnelpulse-executor.service" "$FAKE_LOG"
}

@test "scheduler: the client, its settings from the metadata, and a wrapper that runs it with them" {
    as_role scheduler sched.internal
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ -x "$ROOT/opt/funnelpulse/bin/funnelpulse" ]
    [ -x "$ROOT/opt/funnelpulse/bin/funnelpulse-client" ]
    local env_file="$ROOT/etc/funnelpulse/client.env"
    [ "$(grep -v '^#' "$env_file")" = "FUNNELPULSE_SCHEDULER=df://127.0.0.1:50050
FUNNELPULSE_LAKE=gs://proj-funnelpulse-lake/lake
FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=bootstrap.kafka.example:9092,10.42.0.9:9092
FUNNELPULSE_KAFKA_TOPIC=funnelpulse_events
FUNNELPULSE_KAFKA_AUTH=google" ] || { cat "$env_file"; false; }
    [ "$(stat -c %a "$env_file")" = 644 ]
    [[ "$output" == *"funnelpulse client installed: /opt/funnelpulse/bin/funnelpulse-client (settings /etc/funnelpulse/client.env: kafka bootstrap.kafka.example:9092,10.42.0.9:9092, topic funnelpulse_events, sign-in google)"* ]]

    # The wrapper: the file's settings, except those the caller's environment sets; arguments unchanged.
    run env -i PATH="$PATH" FUNNELPULSE_CLIENT_ENV="$env_file" FUNNELPULSE_KAFKA_TOPIC=other \
        "$ROOT/opt/funnelpulse/bin/funnelpulse-client" run 04 --source kafka --kafka-option "sasl.jaas.config=a b"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$output" = "FUNNELPULSE_KAFKA_AUTH=google
FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=bootstrap.kafka.example:9092,10.42.0.9:9092
FUNNELPULSE_KAFKA_TOPIC=other
FUNNELPULSE_LAKE=gs://proj-funnelpulse-lake/lake
FUNNELPULSE_SCHEDULER=df://127.0.0.1:50050
arg run
arg 04
arg --source
arg kafka
arg --kafka-option
arg sasl.jaas.config=a b" ] || { echo "$output"; false; }

    run env FUNNELPULSE_CLIENT_ENV="$BATS_TEST_TMPDIR/none.env" "$ROOT/opt/funnelpulse/bin/funnelpulse-client" run 04
    [ "$status" -ne 0 ] && [[ "$output" == *"none.env is missing: the startup script writes it at boot"* ]]
}

@test "scheduler without Kafka: no broker in the client's settings; a value with spaces or quotes is refused" {
    as_role scheduler sched.internal
    attr funnelpulse-kafka-bootstrap-servers ""
    attr funnelpulse-kafka-auth ""
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    refute grep -q KAFKA_BOOTSTRAP "$ROOT/etc/funnelpulse/client.env"
    refute grep -q KAFKA_AUTH "$ROOT/etc/funnelpulse/client.env"
    grep -qx "FUNNELPULSE_KAFKA_TOPIC=funnelpulse_events" "$ROOT/etc/funnelpulse/client.env"
    [[ "$output" == *"(settings /etc/funnelpulse/client.env: kafka not configured)"* ]]

    # A changed setting is written at the next boot (the release is not downloaded again).
    : >"$FAKE_LOG"
    attr funnelpulse-kafka-bootstrap-servers "broker:9092"
    FAKE_USER_EXISTS=1 run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    grep -qx "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=broker:9092" "$ROOT/etc/funnelpulse/client.env"
    refute grep -q "storage cp" "$FAKE_LOG"

    # A command substitution, to be kept out of a file that a shell might read.
    attr funnelpulse-kafka-bootstrap-servers "broker:9092 \$(reboot)"
    FAKE_USER_EXISTS=1 run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: the metadata gives FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS 'broker:9092 \$(reboot)', which has characters no such setting has"* ]]
    grep -qx "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=broker:9092" "$ROOT/etc/funnelpulse/client.env"
}

@test "executor: scheduler address and own hostname in its flags, a work dir, no watchdog" {
    as_role executor funnelpulse-executor-x1z2.europe-west1-b.c.proj.internal
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }

    [ "$(cat "$ROOT/opt/funnelpulse/bin/funnelpulse-executor")" = "executor binary" ]
    unit="$ROOT/etc/systemd/system/funnelpulse-executor.service"
    grep -qx "ExecStart=/opt/funnelpulse/bin/funnelpulse-executor --scheduler-host 10.42.0.2 --scheduler-port 50050 --external-host funnelpulse-executor-x1z2.europe-west1-b.c.proj.internal --work-dir /var/lib/funnelpulse/work --heartbeat-interval-seconds 5" "$unit"
    grep -qx "StateDirectory=funnelpulse/work" "$unit"
    grep -qx "Restart=always" "$unit"
    [ ! -e "$ROOT/opt/funnelpulse/bin/funnelpulse-scheduler" ]
    [ ! -e "$ROOT/opt/funnelpulse/bin/funnelpulse-watchdog" ]
    refute grep -q watchdog "$FAKE_LOG"
    [ "$(grep -c '^gcloud' "$FAKE_LOG")" -eq 1 ]
    grep -qx "systemctl enable --now funnelpulse-executor.service" "$FAKE_LOG"
    # Every metadata request carried the header (the fake answers 403 without it).
    grep -q "GET /computeMetadata/v1/instance/attributes/funnelpulse-scheduler-host" "$BATS_TEST_TMPDIR/metadata/requests.log"
}

@test "waits for a release that deploy/up.sh has not uploaded yet" {
    as_role executor exec-1.internal
    export FAKE_GCS_MISSING_TRIES=2
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"waiting for $RELEASE/funnelpulse-executor (attempt 1; deploy/up.sh uploads it)"* ]]
    [[ "$output" == *"(attempt 2;"* && "$output" != *"(attempt 3;"* ]]
    [ "$(grep -c '^gcloud storage cp' "$FAKE_LOG")" -eq 3 ]
    [ "$(cat "$ROOT/opt/funnelpulse/bin/funnelpulse-executor")" = "executor binary" ]
    # Nothing was started before the binary was there.
    [ "$(call_index 'systemctl')" -gt "$(grep -n 'gcloud storage cp' "$FAKE_LOG" | tail -1 | cut -d: -f1)" ]
}

@test "gives up clearly when the release never appears, and starts nothing" {
    as_role executor exec-1.internal
    rm -r "${FAKE_GCS:?}"/*
    # 2 s: the script's clock (bash's SECONDS) counts whole seconds, so a 1 s
    # limit can end after a fraction of a second, before a second attempt.
    export FUNNELPULSE_DOWNLOAD_TIMEOUT_SECONDS=2 FUNNELPULSE_RETRY_SECONDS=0.2
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: $RELEASE/funnelpulse-executor is still missing after 2s: upload the release (deploy/up.sh does) and reboot this VM"* ]]
    [ "$(grep -c '^gcloud storage cp' "$FAKE_LOG")" -ge 2 ]
    refute grep -q '^systemctl' "$FAKE_LOG"
    [ ! -e "$ROOT/opt/funnelpulse/bin/funnelpulse-executor" ]
}

@test "a missing or unknown role stops the script before it downloads or starts anything" {
    printf 'vm.internal' >"$META/hostname"
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: metadata attribute funnelpulse-role is missing: set it to scheduler or executor"* ]]

    attr funnelpulse-role worker
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: unknown funnelpulse-role 'worker': expected scheduler or executor"* ]]
    [ ! -s "$FAKE_LOG" ]
}

@test "a missing release or scheduler address is refused clearly" {
    as_role executor exec-1.internal
    rm "$META/attributes/funnelpulse-release"
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"metadata attribute funnelpulse-release is '', not gs://<bucket>/releases/<version>: apply terraform/ with release_version set"* ]]

    attr funnelpulse-release "$RELEASE"
    rm "$META/attributes/funnelpulse-scheduler-host"
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"funnelpulse-scheduler-host is missing"* ]]
    refute grep -q '^systemctl enable' "$FAKE_LOG"
}

@test "an unreachable metadata server is an error, not an empty role" {
    stop_http
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"error: metadata server http://$GCE_METADATA_HOST/computeMetadata/v1/instance/hostname answered HTTP 000"* ]]
    [ ! -s "$FAKE_LOG" ]
}

@test "at the next boot the same release is not downloaded again; a new release restarts the running service" {
    as_role executor exec-1.internal
    run "$STARTUP"
    [ "$status" -eq 0 ]
    : >"$FAKE_LOG"
    export FAKE_USER_EXISTS=1 FAKE_ACTIVE_UNITS=funnelpulse-executor.service
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"already installed"* ]]
    [ "$(calls)" = "systemctl daemon-reload
systemctl enable --now funnelpulse-executor.service" ] || { calls; false; }

    : >"$FAKE_LOG"
    new=gs://proj-funnelpulse-lake/releases/ba9876543210
    release_put "$new" funnelpulse-executor "executor binary v2"
    attr funnelpulse-release "$new"
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ "$(cat "$ROOT/opt/funnelpulse/bin/funnelpulse-executor")" = "executor binary v2" ]
    [ "$(calls)" = "gcloud storage cp $new/funnelpulse-executor $ROOT/opt/funnelpulse/bin/funnelpulse-executor.download
systemctl daemon-reload
systemctl is-active --quiet funnelpulse-executor.service
systemctl restart funnelpulse-executor.service
systemctl enable --now funnelpulse-executor.service" ] || { calls; false; }
}

@test "idle minutes 0: no watchdog, and one installed before is removed" {
    as_role scheduler sched.internal
    run "$STARTUP"
    [ "$status" -eq 0 ]
    [ -f "$ROOT/etc/systemd/system/funnelpulse-watchdog.service" ]

    : >"$FAKE_LOG"
    attr funnelpulse-idle-minutes 0
    run "$STARTUP"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [[ "$output" == *"idle watchdog off (funnelpulse-idle-minutes is 0)"* ]]
    [ ! -e "$ROOT/etc/systemd/system/funnelpulse-watchdog.service" ]
    grep -qx "systemctl disable --now funnelpulse-watchdog.service" "$FAKE_LOG"
    refute grep -q "enable --now funnelpulse-watchdog" "$FAKE_LOG"

    attr funnelpulse-idle-minutes soon
    run "$STARTUP"
    [ "$status" -ne 0 ]
    [[ "$output" == *"funnelpulse-idle-minutes must be a whole number of minutes, not 'soon'"* ]]
}
