#!/usr/bin/env bats
# The gce target with fakes: terraform, gcloud and the funnelpulse CLI from
# tests/fakes log their arguments to $FAKE_LOG; the fake IAP tunnel is a small
# scheduler REST API on 127.0.0.1 (tests/deploy-fakes/scheduler_api.py), which the scripts
# query with the real curl. The scripts run with a PATH of the fakes and the
# few system tools they use, so no real gcloud or terraform can be reached.

load assert

setup_file() {
    # System tools the scripts (and the fakes) use, by themselves on one folder.
    local sysbin="$BATS_FILE_TMPDIR/sysbin" tool python
    mkdir -p "$sysbin"
    for tool in bash env cat sed awk grep mkdir rm seq sleep date od tr cut sort tail head \
        ps nohup sha256sum dirname basename readlink kill curl jq mktemp; do
        ln -sf "$(command -v "$tool")" "$sysbin/$tool"
    done
    # The real interpreter, not a pyenv shim (which needs pyenv on PATH).
    python="$(python3 -c 'import sys; print(sys.executable)')"
    ln -sf "$python" "$sysbin/python3"
}

setup() {
    DEPLOY="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
    ROOT="$(dirname "$DEPLOY")"
    FAKES="$BATS_TEST_DIRNAME/fakes"
    export FAKE_LOG="$BATS_TEST_TMPDIR/calls.log"
    export FUNNELPULSE_LOCAL_DIR="$BATS_TEST_TMPDIR/state"
    export FUNNELPULSE_BIN_DIR="$BATS_TEST_TMPDIR/bin"
    # The Linux builds for the VMs, apart from this machine's client (as on a Mac).
    export FUNNELPULSE_CLUSTER_BIN_DIR="$BATS_TEST_TMPDIR/cluster-bin"
    CLUSTER_BIN="$FUNNELPULSE_CLUSTER_BIN_DIR"
    export FUNNELPULSE_PRICES="$ROOT/tests/deploy-fakes/prices.tsv"
    export FUNNELPULSE_POLL_SECONDS=0.1
    export FUNNELPULSE_WAIT_SECONDS=5
    export FUNNELPULSE_SAMPLE_ROWS=1000
    export FUNNELPULSE_DEPLOY_CONFIG="$BATS_TEST_TMPDIR/none.env"
    : >"$FUNNELPULSE_DEPLOY_CONFIG"
    export HOME="$BATS_TEST_TMPDIR/home"
    mkdir -p "$HOME" "$FUNNELPULSE_BIN_DIR" "$CLUSTER_BIN"
    # Our fakes first, then the system tools: nothing else.
    mkdir -p "$BATS_TEST_TMPDIR/fakebin"
    ln -s "$FAKES/gcloud" "$FAKES/terraform" "$BATS_TEST_TMPDIR/fakebin/"
    SANDBOX_PATH="$BATS_TEST_TMPDIR/fakebin:$BATS_FILE_TMPDIR/sysbin"
    ln -s "$FAKES/funnelpulse" "$FUNNELPULSE_BIN_DIR/funnelpulse"
    fake_elf "$CLUSTER_BIN/funnelpulse-scheduler" 3e00 28 scheduler
    fake_elf "$CLUSTER_BIN/funnelpulse-executor" 3e00 28 executor
    fake_elf "$CLUSTER_BIN/funnelpulse" 3e00 28 client
    # The local target runs this machine's binaries.
    ln -s "$CLUSTER_BIN/funnelpulse-scheduler" "$CLUSTER_BIN/funnelpulse-executor" "$FUNNELPULSE_BIN_DIR/"
    export FUNNELPULSE_TUNNEL_PORT
    FUNNELPULSE_TUNNEL_PORT="$(free_port)"
    # The default sample (data/ under the current folder) goes to the test's folder.
    cd "$BATS_TEST_TMPDIR" || return
}

teardown() {
    local pid_file
    for pid_file in "$FUNNELPULSE_LOCAL_DIR/gce/tunnel.pid" "$BATS_TEST_TMPDIR/listener.pid" "$FUNNELPULSE_LOCAL_DIR"/*.pid; do
        if [[ -f "$pid_file" ]]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
    done
}

# An ELF header: 64-bit little-endian, e_machine ($2, two bytes in hex), and a
# need for glibc 2.$3.
fake_elf() {
    {
        printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00'
        printf '%b' "\\x${2:0:2}\\x${2:2:2}"
        printf '%s body GLIBC_2.2.5 GLIBC_2.%s GLIBC_2.17\n' "$4" "$3"
    } >"$1"
    chmod +x "$1"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a deploy script with the sandbox PATH.
deploy() {
    local script="$1"
    shift
    run env PATH="$SANDBOX_PATH" "$DEPLOY/$script" "$@"
}

# Line number of the first call matching a fixed string (0 if none).
line_of() {
    local n
    n="$(grep -n -m1 -F -- "$1" "$FAKE_LOG" | cut -d: -f1)"
    echo "${n:-0}"
}

calls() { cat "$FAKE_LOG" 2>/dev/null || true; }

# The words of the last command run on the scheduler VM over SSH, as its shell splits them (JSON).
last_vm_argv() { tail -n 1 "$FAKE_LOG.argv"; }

# The same for the first command a --dry-run printed for the scheduler VM.
dry_vm_argv() {
    python3 -c 'import json, shlex, sys
line = next(l for l in sys.stdin if l.startswith("+ gcloud compute ssh "))
words = shlex.split(line[2:])
print(json.dumps(shlex.split(words[words.index("--command") + 1])))' <<<"$output"
}

# A JSON list of the arguments.
json_list() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }

expect_ok() { [ "$status" -eq 0 ] || { echo "status $status: $output"; echo "calls:"; calls; false; }; }

@test "up --run-all: APIs, init, bucket, upload, the rest, outputs, tunnel, group, wait, sample upload, run — in that order" {
    deploy up.sh --project p1 --run-all
    expect_ok
    local version sums=() name
    version="$(cat "$CLUSTER_BIN/funnelpulse-scheduler" "$CLUSTER_BIN/funnelpulse-executor" "$CLUSTER_BIN/funnelpulse" | sha256sum | cut -c1-12)"
    for name in funnelpulse-scheduler funnelpulse-executor funnelpulse; do sums+=("$(sha256sum <"$CLUSTER_BIN/$name" | cut -d' ' -f1)"); done
    local apis init lake_apply upload apply tf_output tunnel version_target stable wait generate raw run_all run_line
    apis="$(line_of "gcloud services list --enabled --project p1 --format=value(config.name)")"
    init="$(line_of "terraform -chdir=$ROOT/terraform init -input=false")"
    lake_apply="$(line_of "terraform -chdir=$ROOT/terraform apply -target=module.lake -input=false -auto-approve")"
    upload="$(line_of "gcloud storage cp $CLUSTER_BIN/funnelpulse-scheduler $CLUSTER_BIN/funnelpulse-executor $CLUSTER_BIN/funnelpulse ")"
    apply="$(line_of "terraform -chdir=$ROOT/terraform apply -input=false -auto-approve")"
    tf_output="$(grep -n -F "terraform -chdir=$ROOT/terraform output -json" "$FAKE_LOG" | tail -1 | cut -d: -f1)"
    tunnel="$(line_of "gcloud compute start-iap-tunnel funnelpulse-scheduler 50050 --local-host-port=localhost:$FUNNELPULSE_TUNNEL_PORT --zone europe-west1-b --project p1 --iap-tunnel-disable-connection-check")"
    version_target="$(line_of "gcloud compute instance-groups managed wait-until funnelpulse-executors --version-target-reached --zone europe-west1-b --project p1 --timeout 5")"
    stable="$(line_of "gcloud compute instance-groups managed wait-until funnelpulse-executors --stable --zone europe-west1-b --project p1 --timeout 5")"
    wait="$(line_of "api GET /api/executors")"
    generate="$(line_of "funnelpulse generate --out $BATS_TEST_TMPDIR/data/sample-1000-14d --rows 1000 --start 2019-10-15 --days 14")"
    raw="$(line_of "gcloud storage rsync --recursive --delete-unmatched-destination-objects $BATS_TEST_TMPDIR/data/sample-1000-14d gs://p1-funnelpulse-lake/raw/sample-1000-14d")"
    run_line="funnelpulse run all --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake --raw gs://p1-funnelpulse-lake/raw/sample-1000-14d"
    run_all="$(line_of "$run_line")"
    echo "apis $apis init $init lake $lake_apply upload $upload apply $apply output $tf_output tunnel $tunnel version $version_target stable $stable wait $wait generate $generate raw $raw run $run_all"
    [ "$apis" -eq 1 ] && [ "$init" -gt "$apis" ] && [ "$lake_apply" -gt "$init" ] && [ "$upload" -gt "$lake_apply" ]
    # The binaries are in the bucket before Terraform makes any VM.
    [ "$apply" -gt "$upload" ] && [ "$tf_output" -gt "$apply" ] && [ "$tunnel" -gt "$tf_output" ]
    [ "$version_target" -gt "$tunnel" ] && [ "$stable" -gt "$version_target" ] && [ "$wait" -gt "$stable" ]
    [ "$generate" -gt "$wait" ] && [ "$raw" -gt "$generate" ] && [ "$run_all" -gt "$raw" ]
    # The upload goes to the version's folder, with a SHA256SUMS.
    grep -q "^gcloud storage cp .*/SHA256SUMS gs://p1-funnelpulse-lake/releases/$version/$" "$FAKE_LOG"
    # Both applies carry the version and each binary's sha256 (release_sha256, an HCL map).
    local expected_sums="-var release_sha256={\"funnelpulse-scheduler\"=\"${sums[0]}\",\"funnelpulse-executor\"=\"${sums[1]}\",\"funnelpulse\"=\"${sums[2]}\"}"
    for line in "$lake_apply" "$apply"; do
        grep -q -- "-var release_version=$version " <<<"$(sed -n "${line}p" "$FAKE_LOG")"
        grep -q -F -- "$expected_sums" <<<"$(sed -n "${line}p" "$FAKE_LOG")"
    done
    [[ "$output" == *"2 executors registered"*"summary: fake report"* ]]
}

@test "up checks the APIs first: one message names the missing ones and the command that enables them" {
    FAKE_ENABLED_APIS="compute.googleapis.com storage.googleapis.com" deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"project p1 lacks the APIs iap.googleapis.com iam.googleapis.com cloudresourcemanager.googleapis.com; nothing was created"* ]]
    [[ "$output" == *"gcloud services enable iap.googleapis.com iam.googleapis.com cloudresourcemanager.googleapis.com --project p1"* ]]
    [ "$(calls)" = "gcloud services list --enabled --project p1 --format=value(config.name)" ]

    # Managed Kafka needs its API; a budget alert the billing budgets API.
    FAKE_ENABLED_APIS="compute.googleapis.com iap.googleapis.com iam.googleapis.com cloudresourcemanager.googleapis.com storage.googleapis.com" \
        deploy up.sh --project p1 --managed-kafka --billing-account 012345-6789AB-CDEF01
    [ "$status" -ne 0 ]
    [[ "$output" == *"lacks the APIs managedkafka.googleapis.com billingbudgets.googleapis.com;"* ]]

    FAKE_SERVICES_FAIL=1 deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"could not list the enabled APIs of project p1: ERROR: (gcloud.services.list) PERMISSION_DENIED"* ]]
    refute grep -q '^terraform' "$FAKE_LOG"
}

@test "the optional Terraform variables: IAP members, the scheduler's run limit, a budget alert; a state bucket" {
    # The backend override goes beside the configuration: a copy's folder here, not terraform/.
    export FUNNELPULSE_TF_DIR="$BATS_TEST_TMPDIR/tf"
    mkdir -p "$FUNNELPULSE_TF_DIR"
    deploy up.sh --project p1 --iap-member user:a@example.com --iap-member group:team@example.com --max-run 14400 \
        --billing-account 012345-6789AB-CDEF01 --state-bucket p1-tfstate
    expect_ok
    local apply
    apply="$(grep '^terraform .* apply -input' "$FAKE_LOG")"
    [[ "$apply" == *'-var iap_members=["user:a@example.com","group:team@example.com"] -var scheduler_max_run_seconds=14400 -var billing_account=012345-6789AB-CDEF01 '* ]] ||
        { echo "$apply"; false; }
    grep -qx "terraform -chdir=$FUNNELPULSE_TF_DIR init -input=false -backend-config=bucket=p1-tfstate -backend-config=prefix=funnelpulse -force-copy" "$FAKE_LOG"
    grep -qx '  backend "gcs" {}' "$FUNNELPULSE_TF_DIR/funnelpulse_backend_override.tf"
    # Remembered: down.sh and the next up.sh use the same state.
    rm "$FAKE_LOG"
    deploy down.sh
    expect_ok
    grep -qx "terraform -chdir=$FUNNELPULSE_TF_DIR init -input=false -backend-config=bucket=p1-tfstate -backend-config=prefix=funnelpulse -force-copy" "$FAKE_LOG"
    # down.sh gives the release up.sh applied (a required variable is required by destroy too).
    grep -q -- " destroy -target=module.cluster .*-var release_version=[0-9a-f]\{12\} -var release_sha256={" "$FAKE_LOG"
    rm -f "$FUNNELPULSE_TF_DIR/funnelpulse_backend_override.tf"
    # Without them, none of these variables is given: Terraform's defaults apply.
    rm -rf "$FUNNELPULSE_LOCAL_DIR" "$FAKE_LOG"
    deploy up.sh --project p1 --dry-run
    [[ "$output" != *iap_members* && "$output" != *scheduler_max_run_seconds* && "$output" != *billing_account* && "$output" != *backend-config* ]]
    deploy up.sh --project p1 --iap-member "me@example.com" --dry-run
    [ "$status" -ne 0 ] && [[ "$output" == *"--iap-member must be an IAM member such as user:me@example.com"* ]]
    deploy up.sh --project p1 --max-run 4h --dry-run
    [ "$status" -ne 0 ] && [[ "$output" == *"--max-run must be a number of seconds (0 = never), not '4h'"* ]]
    deploy up.sh --project p1 --state-bucket gs://x --dry-run
    [ "$status" -ne 0 ] && [[ "$output" == *"--state-bucket must be a bucket name (without gs://)"* ]]
    [ ! -e "$FUNNELPULSE_TF_DIR/funnelpulse_backend_override.tf" ]
    [ ! -e "$ROOT/terraform/funnelpulse_backend_override.tf" ]
}

@test "up prints how to reach the cluster, the cost estimate and the watchdog" {
    deploy up.sh --project p1
    expect_ok
    [[ "$output" == *"2 executors registered"* ]]
    [[ "$output" == *"cluster up: scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT (IAP tunnel to funnelpulse-scheduler:50050), 2 executors, lake gs://p1-funnelpulse-lake/lake"* ]]
    [[ "$output" == *"tunnel by hand:  gcloud compute start-iap-tunnel funnelpulse-scheduler 50050 --local-host-port=localhost:$FUNNELPULSE_TUNNEL_PORT --zone europe-west1-b --project p1"* ]]
    # Fixture prices: 0.1 + 2 × 0.05 + (20 + 2 × 50) GB × 0.0001; stopped: the scheduler's 20 GB.
    [[ "$output" == *"estimated cost: \$0.212/hour = scheduler e2-standard-2 on-demand \$0.1 + 2 × e2-standard-4 spot \$0.05 (Spot prices are variable) + 120 GB pd-balanced disk \$0.012"* ]]
    [[ "$output" == *"stopped by the idle watchdog: \$0.002/hour = the scheduler's 20 GB disk (the executors go with their disks)"* ]]
    [[ "$output" == *"after 60 idle minutes the executors scale to 0"* ]]
    # Without --run-all nothing runs.
    refute grep -q '^funnelpulse' "$FAKE_LOG"
}

@test "flags map to terraform variables and the tunnel" {
    FAKE_EXECUTORS=3 deploy up.sh --project p2 --region us-central1 --zone us-central1-a --executors 3 \
        --scheduler-machine-type e2-standard-4 --executor-machine-type n2-standard-8 --no-spot \
        --idle-minutes 30 --bucket my-lake
    expect_ok
    local apply
    apply="$(grep '^terraform .* apply ' "$FAKE_LOG")"
    local expected
    for expected in "-var project_id=p2 " "-var region=us-central1 " "-var zone=us-central1-a " "-var bucket_name=my-lake " \
        "-var scheduler_machine_type=e2-standard-4 " "-var executor_machine_type=n2-standard-8 " \
        "-var executor_count=3 " "-var executor_spot=false " "-var idle_minutes=30 "; do
        [[ "$apply " == *"$expected"* ]] || { echo "missing '$expected' in: $apply"; false; }
    done
    grep -q -- "--zone us-central1-a --project p2" <<<"$(grep start-iap-tunnel "$FAKE_LOG")"
    grep -q "gs://my-lake/releases/" "$FAKE_LOG"
    [[ "$output" == *"3 executors registered"* ]]
    # On-demand executors: 0.2 + 3 × 0.5 + 170 GB × 0.0001.
    [[ "$output" == *"estimated cost: \$1.717/hour = scheduler e2-standard-4 on-demand \$0.2 + 3 × n2-standard-8 on-demand \$0.5 + 170 GB pd-balanced disk \$0.017"* ]]
    [[ "$output" != *"variable"* ]]
}

@test "a flag wins over the environment, which wins over the settings file" {
    cat >"$FUNNELPULSE_DEPLOY_CONFIG" <<'EOF'
# deploy/gce.env-style settings
FUNNELPULSE_PROJECT=file-project
FUNNELPULSE_ZONE="zone-from-file"
FUNNELPULSE_EXECUTORS=4
export FUNNELPULSE_SPOT=false
EOF
    FUNNELPULSE_ZONE=zone-from-env deploy up.sh --executors 5 --dry-run
    expect_ok
    local apply
    apply="$(grep -F '+ terraform' <<<"$output" | grep ' apply ')"
    [[ "$apply" == *"-var project_id=file-project "* ]]
    [[ "$apply" == *"-var zone=zone-from-env "* ]]
    [[ "$apply" == *"-var executor_count=5 "* ]]
    [[ "$apply" == *"-var executor_spot=false "* ]]

    echo "PROJECT=x" >"$FUNNELPULSE_DEPLOY_CONFIG"
    deploy up.sh --dry-run
    [ "$status" -ne 0 ] && [[ "$output" == *"'PROJECT=x' is not a FUNNELPULSE_NAME=value line"* ]]
    FUNNELPULSE_DEPLOY_CONFIG="$BATS_TEST_TMPDIR/missing.env" deploy up.sh --dry-run
    [ "$status" -ne 0 ] && [[ "$output" == *"missing.env (FUNNELPULSE_DEPLOY_CONFIG) not found"* ]]
}

@test "the deploy settings are FUNNELPULSE_DEPLOY_CONFIG; the CLI's FUNNELPULSE_CONFIG reaches the CLI untouched" {
    echo "FUNNELPULSE_PROJECT=p1" >"$FUNNELPULSE_DEPLOY_CONFIG"
    printf 'bad-rows = "quarantine"\nlake = "gs://from-toml/lake"\n' >"$BATS_TEST_TMPDIR/funnelpulse.toml"
    export FUNNELPULSE_CONFIG="$BATS_TEST_TMPDIR/funnelpulse.toml"
    deploy up.sh
    expect_ok
    grep -q -- "-var project_id=p1 " "$FAKE_LOG"
    deploy submit.sh 02
    expect_ok
    grep -q -x "funnelpulse run 02 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake" "$FAKE_LOG"
    grep -q -x "funnelpulse config $FUNNELPULSE_CONFIG" "$FAKE_LOG"
    [[ "$output" != *warning:*FUNNELPULSE_CONFIG* ]]
    # The client on the scheduler VM does not have the file: said, not skipped quietly.
    deploy submit.sh --kafka-bootstrap-servers 10.1.2.3:9092 04 --source kafka
    expect_ok
    [[ "$output" == *"warning: the CLI's settings file $FUNNELPULSE_CONFIG is not used on funnelpulse-scheduler: give the settings this run needs as options after --"* ]]

    # Deploy settings named the old way are still read, with a warning, and kept from the CLI (not TOML).
    printf '# old\nFUNNELPULSE_PROJECT=p1\nexport FUNNELPULSE_EXECUTORS=3\n' >"$BATS_TEST_TMPDIR/old.env"
    rm "$FAKE_LOG"
    FUNNELPULSE_CONFIG="$BATS_TEST_TMPDIR/old.env" FUNNELPULSE_DEPLOY_CONFIG="" deploy submit.sh 02
    expect_ok
    [[ "$output" == *"warning: FUNNELPULSE_CONFIG names deploy settings ($BATS_TEST_TMPDIR/old.env), read as before; name them with FUNNELPULSE_DEPLOY_CONFIG instead"* ]]
    grep -q "^funnelpulse run 02 " "$FAKE_LOG"
    refute grep -q "^funnelpulse config" "$FAKE_LOG"
    FUNNELPULSE_CONFIG="$BATS_TEST_TMPDIR/old.env" FUNNELPULSE_DEPLOY_CONFIG="" deploy up.sh --dry-run
    expect_ok
    [[ "$output" == *"-var project_id=p1 "*"-var executor_count=3 "* ]]
    # Beside FUNNELPULSE_DEPLOY_CONFIG, they are ignored (and still kept from the CLI).
    FUNNELPULSE_CONFIG="$BATS_TEST_TMPDIR/old.env" deploy submit.sh 02
    expect_ok
    [[ "$output" == *"warning: FUNNELPULSE_CONFIG names deploy settings ($BATS_TEST_TMPDIR/old.env), not a funnelpulse.toml: ignored, and not given to the CLI"* ]]
    refute grep -q "^funnelpulse config" "$FAKE_LOG"

    # A TOML file is never read as deploy settings, even without FUNNELPULSE_DEPLOY_CONFIG.
    FUNNELPULSE_DEPLOY_CONFIG="" deploy up.sh --project p9 --dry-run
    expect_ok
    [[ "$output" == *"-var project_id=p9 "* ]]
}

@test "the project comes from gcloud config when not set, and its absence is a clear error" {
    FAKE_GCLOUD_PROJECT=from-gcloud deploy up.sh
    expect_ok
    grep -q -- "-var project_id=from-gcloud " "$FAKE_LOG"
    teardown
    rm -f "$FAKE_LOG" "$FAKE_LOG.tfvars"

    deploy up.sh
    [ "$status" -ne 0 ]
    [[ "$output" == *"no GCP project: pass --project ID, set FUNNELPULSE_PROJECT"*"gcloud config set project ID"* ]]
    [ "$(calls)" == "gcloud config get-value project" ]
}

@test "terraform apply fails: nothing is uploaded, no tunnel, no run, a non-zero exit" {
    FAKE_TERRAFORM_FAIL=apply deploy up.sh --project p1 --run-all
    [ "$status" -ne 0 ]
    [[ "$output" == *"Error: fake terraform apply failed"* ]]
    [[ "$output" == *"error: terraform apply of the bucket (module.lake) failed (see above): no binaries uploaded, no VM created"* ]]
    [ "$(calls | awk '{ print $1, $3 }')" == "$(printf 'gcloud list\nterraform init\nterraform apply')" ]
    [ ! -e "$FUNNELPULSE_LOCAL_DIR/gce/tunnel.pid" ]

    rm -f "$FAKE_LOG"
    FAKE_TERRAFORM_FAIL=init deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"terraform init failed"* ]]
    [ "$(calls | wc -l)" -eq 2 ]
}

@test "a failed upload stops up before any VM is made, and before the tunnel" {
    FAKE_STORAGE_FAIL=1 deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"uploading the binaries to gs://p1-funnelpulse-lake/releases/"*"failed (see above): no VM was created or changed"* ]]
    # Only the bucket was applied.
    [ "$(grep -c ' apply ' "$FAKE_LOG")" -eq 1 ]
    grep -q " apply -target=module.lake " "$FAKE_LOG"
    refute grep -q start-iap-tunnel "$FAKE_LOG"
}

@test "the cluster binaries must exist and be Linux x86-64 for Debian 12; nothing is applied otherwise" {
    rm "$CLUSTER_BIN/funnelpulse-executor"
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"funnelpulse-executor not found: build the cluster binaries with 'cargo build --release -p funnelpulse -p funnelpulse-scheduler -p funnelpulse-executor'"* ]]

    fake_elf "$CLUSTER_BIN/funnelpulse-executor" b700 28 arm
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"funnelpulse-executor is not a Linux x86-64 executable"* ]]

    printf '\xcf\xfa\xed\xfe mach-o' >"$CLUSTER_BIN/funnelpulse-executor"
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"is not a Linux x86-64 executable"* ]]

    fake_elf "$CLUSTER_BIN/funnelpulse-executor" 3e00 39 new
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"needs glibc 2.39, newer than the VMs' (Debian 12: 2.36)"* ]]

    # The client for the scheduler VM passes the same checks: this machine's client (a script here) is not it.
    fake_elf "$CLUSTER_BIN/funnelpulse-executor" 3e00 36 ok
    rm "$CLUSTER_BIN/funnelpulse"
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"cluster-bin/funnelpulse not found: build the cluster binaries"* ]]
    ln -s "$FAKES/funnelpulse" "$CLUSTER_BIN/funnelpulse"
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"cluster-bin/funnelpulse is not a Linux x86-64 executable"* ]]
    rm "$CLUSTER_BIN/funnelpulse"
    fake_elf "$CLUSTER_BIN/funnelpulse" 3e00 37 new
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"cluster-bin/funnelpulse needs glibc 2.37"* ]]

    # And --run-all needs this machine's client before anything costs money.
    fake_elf "$CLUSTER_BIN/funnelpulse" 3e00 36 ok
    rm "$FUNNELPULSE_BIN_DIR/funnelpulse"
    deploy up.sh --project p1 --run-all
    [ "$status" -ne 0 ] && [[ "$output" == *"bin/funnelpulse not found"* ]]
    refute grep -q '^terraform' "$FAKE_LOG"
}

@test "missing tools are named" {
    rm "$BATS_TEST_TMPDIR/fakebin/terraform"
    deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"terraform not found: install Terraform"* ]]
    rm "$BATS_TEST_TMPDIR/fakebin/gcloud"
    deploy status.sh
    [ "$status" -ne 0 ] && [[ "$output" == *"gcloud not found: install the Google Cloud CLI"* ]]
}

@test "the wait follows executors registering late, and times out naming what to check" {
    FAKE_EXECUTORS_DELAY=1 deploy up.sh --project p1
    expect_ok
    [[ "$output" == *"waiting: 0 of 2 executors registered…"*"2 executors registered"* ]]
    [ "$(grep -c 'api GET /api/executors' "$FAKE_LOG")" -ge 3 ]
    teardown

    # 5 s, not 1: on a loaded machine the fake API's first answer alone can take a second.
    FAKE_EXECUTORS=1 FUNNELPULSE_WAIT_SECONDS=5 deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"only 1 of 2 executors registered within 5 s"* ]]
    [[ "$output" == *"gcloud compute instance-groups managed list-instances funnelpulse-executors --zone europe-west1-b --project p1"* ]]
    [[ "$output" == *"deploy/down.sh removes it"* ]]
    teardown
    rm "$FAKE_LOG"

    FAKE_API_DOWN=1 FUNNELPULSE_WAIT_SECONDS=1 deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"waiting for the scheduler to answer on localhost:$FUNNELPULSE_TUNNEL_PORT"* ]]
    [[ "$output" == *"the scheduler did not answer through the IAP tunnel (localhost:$FUNNELPULSE_TUNNEL_PORT) within 1 s"* ]]
    [[ "$output" == *"gcloud compute instances get-serial-port-output funnelpulse-scheduler --zone europe-west1-b --project p1"* ]]
    # The tunnel outlived the scheduler's silence (gcloud's connection check is off).
    [[ "$output" != *"tunnel exited"* ]]
    [ "$(grep -c start-iap-tunnel "$FAKE_LOG")" -eq 1 ]
}

@test "a tunnel that keeps exiting is restarted three times, then reported with its log" {
    FAKE_TUNNEL_FAIL=1 deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"the IAP tunnel exited (ERROR: (gcloud.compute.start-iap-tunnel) fake tunnel failure); starting it again"* ]]
    [[ "$output" == *"the IAP tunnel keeps exiting"*"fake tunnel failure"*"roles/iap.tunnelResourceAccessor"* ]]
    [ "$(grep -c start-iap-tunnel "$FAKE_LOG")" -eq 4 ]
}

@test "a local port taken by another program is refused" {
    python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$FUNNELPULSE_TUNNEL_PORT" &
    echo $! >"$BATS_TEST_TMPDIR/listener.pid"
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$FUNNELPULSE_TUNNEL_PORT") 2>/dev/null && break; sleep 0.1; done
    deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"localhost:$FUNNELPULSE_TUNNEL_PORT is taken by another program"*"--tunnel-port"* ]]
    refute grep -q start-iap-tunnel "$FAKE_LOG"
}

@test "status: VMs, their cost, executors, jobs by status, idle time" {
    export FAKE_JOBS="$BATS_TEST_TMPDIR/jobs.json"
    echo '[]' >"$FAKE_JOBS"
    deploy up.sh --project p1 --idle-minutes 45
    expect_ok
    local now_ms=$(($(date +%s) * 1000))
    cat >"$FAKE_JOBS" <<EOF
[{"job_id": "a", "status": "Completed", "start_time": $((now_ms - 30 * 60000)), "end_time": $((now_ms - 20 * 60000))},
 {"job_id": "b", "status": "Completed", "start_time": $((now_ms - 20 * 60000)), "end_time": $((now_ms - 12 * 60000 - 5000))},
 {"job_id": "c", "status": "Failed", "start_time": $((now_ms - 40 * 60000)), "end_time": $((now_ms - 39 * 60000))}]
EOF
    # Each test runs in its own process and sets its own list of VMs.
    # shellcheck disable=SC2030,SC2031
    export FAKE_INSTANCES="$BATS_TEST_TMPDIR/instances.tsv"
    printf 'funnelpulse-scheduler\teurope-west1-b\te2-standard-2\tRUNNING\t\nfunnelpulse-executors-ab12\teurope-west1-b\te2-standard-4\tRUNNING\tSPOT\nfunnelpulse-executors-cd34\teurope-west1-b\te2-standard-4\tRUNNING\tSPOT\nfunnelpulse-old\teurope-west1-b\tn2-standard-8\tTERMINATED\tSTANDARD\n' >"$FAKE_INSTANCES"
    rm "$FAKE_LOG"
    deploy status.sh
    expect_ok
    grep -q -F "gcloud compute instances list --project p1 --filter=labels.app=funnelpulse --format=value(name,zone.basename(),machineType.basename(),status,scheduling.provisioningModel)" "$FAKE_LOG"
    [[ "$output" == *"VMs in project p1:"* ]]
    grep -Eq '^  funnelpulse-scheduler +europe-west1-b +e2-standard-2 +RUNNING +STANDARD$' <<<"$output"
    grep -Eq '^  funnelpulse-old +europe-west1-b +n2-standard-8 +TERMINATED +STANDARD$' <<<"$output"
    # 0.1 + 2 × 0.05 for the running ones; the terminated VM costs its disk only, as all: 170 GB × 0.0001.
    [[ "$output" == *"cost: \$0.217/hour now = 3 running VMs \$0.200 + 170 GB of disks \$0.017 (Spot prices are variable;"* ]]
    [[ "$output" == *"scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT (IAP tunnel pid "*"): 2 executors registered: 10.10.0.11:50051, 10.10.0.12:50051"* ]]
    [[ "$output" == *"jobs: 2 completed, 1 failed"* ]]
    [[ "$output" == *"idle: 12 min, since the last job ended (the watchdog on the VM, polling each minute, stops the cluster after 45 idle min)"* ]]

    echo '[{"job_id": "d", "status": "Running", "start_time": 1, "end_time": 0}]' >"$FAKE_JOBS"
    deploy status.sh
    [[ "$output" == *"jobs: 1 running"* && "$output" == *"idle: no, 1 job(s) queued or running"* ]]

    echo '[]' >"$FAKE_JOBS"
    deploy status.sh
    [[ "$output" == *"jobs: none"* && "$output" == *"idle: 0 min, since the scheduler started"* ]] || { echo "$output"; false; }
}

@test "status without a tunnel says how to open one; an unknown machine type is not priced" {
    deploy up.sh --project p1
    expect_ok
    kill "$(cat "$FUNNELPULSE_LOCAL_DIR/gce/tunnel.pid")"
    sleep 0.2
    rm "$FAKE_LOG"
    # Each test runs in its own process and sets its own list of VMs.
    # shellcheck disable=SC2030,SC2031
    export FAKE_INSTANCES="$BATS_TEST_TMPDIR/instances.tsv"
    printf 'funnelpulse-scheduler\teurope-west1-b\tm9-mystery\tRUNNING\t\n' >"$FAKE_INSTANCES"
    deploy status.sh
    expect_ok
    [[ "$output" == *"cost: unknown (no price for m9-mystery in $FUNNELPULSE_PRICES)"* ]]
    [[ "$output" == *"no IAP tunnel open"*"deploy/submit.sh opens one, or run: gcloud compute start-iap-tunnel funnelpulse-scheduler 50050 --local-host-port=localhost:$FUNNELPULSE_TUNNEL_PORT --zone europe-west1-b --project p1 &"* ]]
    refute grep -q '^api' "$FAKE_LOG"
    refute grep -q start-iap-tunnel "$FAKE_LOG"

    : >"$FAKE_INSTANCES"
    deploy status.sh
    [[ "$output" == *"VMs in project p1: none"* ]]
}

@test "the cost estimate says unknown for a machine type without a price" {
    deploy up.sh --project p1 --executor-machine-type m9-mystery --dry-run
    expect_ok
    [[ "$output" == *"estimated cost: unknown (no spot price for m9-mystery in $FUNNELPULSE_PRICES)"* ]]
    deploy up.sh --project p1 --scheduler-machine-type m9-mystery --dry-run
    [[ "$output" == *"estimated cost: unknown (no on-demand price for m9-mystery in $FUNNELPULSE_PRICES)"* ]]
}

@test "submit opens the tunnel, reuses it, and uploads a local --raw for stage 01" {
    deploy submit.sh 02
    [ "$status" -ne 0 ] && [[ "$output" == *"no cluster in the Terraform state"* ]]

    deploy up.sh --project p1
    expect_ok
    teardown # the tunnel stops: submit opens it again
    rm "$FAKE_LOG"
    deploy submit.sh 02 03
    expect_ok
    grep -q "gcloud compute instances describe funnelpulse-scheduler --zone europe-west1-b --project p1" "$FAKE_LOG"
    [ "$(grep -c start-iap-tunnel "$FAKE_LOG")" -eq 1 ]
    grep -q -x "funnelpulse run 02 03 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake" "$FAKE_LOG"
    [[ "$output" == *"running stages on Ballista scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT"* ]]

    mkdir -p "$BATS_TEST_TMPDIR/myraw"
    echo "event_time" >"$BATS_TEST_TMPDIR/myraw/a.csv"
    deploy submit.sh 01 -- --raw "$BATS_TEST_TMPDIR/myraw" --bad-rows quarantine
    expect_ok
    [ "$(grep -c start-iap-tunnel "$FAKE_LOG")" -eq 1 ]
    grep -q -x "gcloud storage rsync --recursive --delete-unmatched-destination-objects $BATS_TEST_TMPDIR/myraw gs://p1-funnelpulse-lake/raw/myraw" "$FAKE_LOG"
    grep -q -x "funnelpulse run 01 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake --bad-rows quarantine --raw gs://p1-funnelpulse-lake/raw/myraw" "$FAKE_LOG"
    [[ "$output" == *"warning: no Application Default Credentials found"*"gcloud auth application-default login"* ]]

    # A raw folder in GCS is passed as it is; credentials silence the warning.
    GOOGLE_APPLICATION_CREDENTIALS=/dev/null deploy submit.sh 1 --raw gs://elsewhere/raw
    expect_ok
    grep -q -x "funnelpulse run 1 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake --raw gs://elsewhere/raw" "$FAKE_LOG"
    [[ "$output" != *"warning"* ]]

    FAKE_FUNNELPULSE_FAIL=1 deploy submit.sh 02
    [ "$status" -ne 0 ] && [[ "$output" == *"fake stage failure"* ]]
}

@test "submit serve runs the dashboard here, its queries on the cluster through the tunnel" {
    deploy up.sh --project p1
    expect_ok
    rm "$FAKE_LOG"
    deploy submit.sh serve --bind 127.0.0.1:9000
    expect_ok
    grep -q -x "funnelpulse serve --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake --bind 127.0.0.1:9000" "$FAKE_LOG"
    deploy submit.sh 02 serve
    [ "$status" -ne 0 ] && [[ "$output" == *"serve runs alone"* ]]
}

@test "submit to a scheduler the watchdog stopped says to start it again" {
    deploy up.sh --project p1
    expect_ok
    teardown
    FAKE_SCHEDULER_STATUS=TERMINATED deploy submit.sh 02
    [ "$status" -ne 0 ]
    [[ "$output" == *"the scheduler VM funnelpulse-scheduler is TERMINATED (the idle watchdog stops an idle cluster): start it again with deploy/up.sh"* ]]
    refute grep -q "^funnelpulse run" "$FAKE_LOG"
    deploy submit.sh 02 --lake /tmp/local-lake
    [ "$status" -ne 0 ] && [[ "$output" == *"needs the lake in GCS"* ]]
}

@test "a --lake among the options for funnelpulse is the run's lake: one --lake, named, checked" {
    deploy up.sh --project p1
    expect_ok
    rm "$FAKE_LOG"
    deploy submit.sh 02 03 -- --lake gs://other/lake --bad-rows quarantine
    expect_ok
    grep -q -x "funnelpulse run 02 03 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://other/lake --bad-rows quarantine" "$FAKE_LOG"
    [[ "$output" == *"lake: gs://other/lake (--lake after --)"* ]]
    deploy submit.sh 02 -- --lake=gs://third/lake
    expect_ok
    grep -q -x "funnelpulse run 02 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://third/lake" "$FAKE_LOG"
    deploy submit.sh --lake=gs://fourth/lake 02 -- --lake gs://fourth/lake
    expect_ok
    grep -q -x "funnelpulse run 02 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://fourth/lake" "$FAKE_LOG"
    [[ "$output" == *"lake: gs://fourth/lake (--lake after --)"* ]]
    deploy submit.sh 02
    expect_ok
    [[ "$output" == *"lake: gs://p1-funnelpulse-lake/lake (the cluster's bucket, Terraform output lake_url)"* ]]

    rm "$FAKE_LOG"
    deploy submit.sh --lake gs://a/lake 02 -- --lake gs://b/lake
    [ "$status" -ne 0 ] && [[ "$output" == *"two lakes given: --lake gs://a/lake and --lake gs://b/lake (--lake after --): give one"* ]]
    deploy submit.sh 02 -- --lake /tmp/local-lake
    [ "$status" -ne 0 ] && [[ "$output" == *"lake /tmp/local-lake (--lake after --): a GCE cluster needs the lake in GCS"* ]]
    FUNNELPULSE_LAKE=/tmp/env-lake deploy submit.sh 02
    [ "$status" -ne 0 ] && [[ "$output" == *"lake /tmp/env-lake (FUNNELPULSE_LAKE): a GCE cluster needs the lake in GCS"* ]]
    refute grep -q "^funnelpulse run" "$FAKE_LOG"

    # The same on the scheduler VM (a Kafka stream), and for up --run-all.
    deploy submit.sh --kafka-bootstrap-servers 10.1.2.3:9092 04 --source kafka -- --lake gs://other/lake
    expect_ok
    [[ "$(last_vm_argv)" == *'"run", "04", "--scheduler", "df://127.0.0.1:50050", "--lake", "gs://other/lake", "--source", "kafka"]' ]] || { last_vm_argv; false; }
    deploy up.sh --project p1 --run-all -- --raw gs://elsewhere/raw --lake gs://other/lake
    expect_ok
    grep -q -x "funnelpulse run all --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://other/lake --raw gs://elsewhere/raw" "$FAKE_LOG"
    [[ "$output" == *"lake gs://other/lake (--lake after --)"* ]]
}

@test "down stops the tunnel and destroys only module.cluster; the bucket survives" {
    deploy up.sh --project p1 --bucket keep-me
    expect_ok
    local tunnel_pid
    tunnel_pid="$(cat "$FUNNELPULSE_LOCAL_DIR/gce/tunnel.pid")"
    rm "$FAKE_LOG"
    deploy down.sh
    expect_ok
    [[ "$output" == *"stopped the IAP tunnel (pid $tunnel_pid)"* ]]
    refute kill -0 "$tunnel_pid" 2>/dev/null
    [ "$(grep -c ' destroy' "$FAKE_LOG")" -eq 1 ]
    local destroy
    destroy="$(grep ' destroy' "$FAKE_LOG")"
    [[ "$destroy" == "terraform -chdir=$ROOT/terraform destroy -target=module.cluster -input=false -auto-approve -var project_id=p1 "* ]]
    [[ "$output" == *"cluster removed; the bucket gs://keep-me survives with the lake (gs://keep-me/lake)"* ]]
    [[ "$output" == *"gcloud storage rm --recursive gs://keep-me"* ]]
    refute grep -q "storage rm" "$FAKE_LOG"

    deploy down.sh --all
    [ "$status" -ne 0 ] && [[ "$output" == *"never deletes the bucket"* ]]

    FAKE_TERRAFORM_FAIL=destroy deploy down.sh
    [ "$status" -ne 0 ] && [[ "$output" == *"terraform destroy failed (see above): the cluster may still run and cost money"* ]]
}

@test "--dry-run prints every command and runs none" {
    deploy up.sh --project p1 --run-all --dry-run
    expect_ok
    [ ! -e "$FAKE_LOG" ]
    [ ! -e "$FUNNELPULSE_LOCAL_DIR" ]
    [ ! -e "$BATS_TEST_TMPDIR/data" ]
    local tf="+ terraform -chdir=$ROOT/terraform"
    [[ "$output" == *"$tf init -input=false"* ]]
    [[ "$output" == *"$tf apply -input=false -auto-approve -var project_id=p1 "*"-var release_version="* ]]
    [[ "$output" == *"$tf output -json"* ]]
    [[ "$output" == *"$tf apply -target=module.lake -input=false -auto-approve -var project_id=p1 "*"+ gcloud storage cp $CLUSTER_BIN/funnelpulse-scheduler $CLUSTER_BIN/funnelpulse-executor $CLUSTER_BIN/funnelpulse <tmp>/SHA256SUMS <release_prefix>/"*"$tf apply -input=false -auto-approve -var project_id=p1 "* ]]
    [[ "$output" == *"+ gcloud services list --enabled --project p1"* ]]
    [[ "$output" == *"+ gcloud compute instance-groups managed wait-until <executor_group> --version-target-reached"*"+ gcloud compute instance-groups managed wait-until <executor_group> --stable"* ]]
    [[ "$output" == *"+ gcloud compute start-iap-tunnel <scheduler_instance> 50050 --local-host-port=localhost:$FUNNELPULSE_TUNNEL_PORT --zone europe-west1-b --project p1 --iap-tunnel-disable-connection-check > "*"tunnel.log 2>&1 &"* ]]
    [[ "$output" == *"+ curl -fsS http://localhost:$FUNNELPULSE_TUNNEL_PORT/api/executors"* ]]
    [[ "$output" == *"+ $FUNNELPULSE_BIN_DIR/funnelpulse generate --out $BATS_TEST_TMPDIR/data/sample-1000-14d"* ]]
    [[ "$output" == *"+ gcloud storage rsync --recursive --delete-unmatched-destination-objects $BATS_TEST_TMPDIR/data/sample-1000-14d <raw_url>/sample-1000-14d"* ]]
    [[ "$output" == *"+ $FUNNELPULSE_BIN_DIR/funnelpulse run all --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake <lake_url> --raw <raw_url>/sample-1000-14d"* ]]

    # Without a project, the gcloud query is printed too.
    deploy up.sh --dry-run
    expect_ok
    [[ "$output" == *"+ gcloud config get-value project"*"-var project_id=<project> "* ]]

    deploy submit.sh 02 --dry-run
    expect_ok
    [[ "$output" == *"+ gcloud compute start-iap-tunnel"*"+ $FUNNELPULSE_BIN_DIR/funnelpulse run 02 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake <lake_url>"* ]]
    deploy status.sh --dry-run
    expect_ok
    [[ "$output" == *"+ gcloud compute instances list"* ]]
    deploy down.sh --project p1 --dry-run
    expect_ok
    [[ "$output" == *"$tf destroy -target=module.cluster -input=false -auto-approve -var project_id=p1 "* ]]
    [ ! -e "$FAKE_LOG" ]
}

@test "the local target still works beside gce (dry run)" {
    deploy up.sh --target local --executors 2 --dry-run
    expect_ok
    [[ "$output" == *"+ $FUNNELPULSE_BIN_DIR/funnelpulse-scheduler --bind-host 127.0.0.1"* ]]
    deploy up.sh --target local --bogus
    [ "$status" -ne 0 ] && [[ "$output" == *"unknown option '--bogus' (options for funnelpulse run go after --)"* ]]
}

@test "terraform/prices.tsv prices the default machine types, on-demand and spot" {
    local prices="$ROOT/terraform/prices.tsv"
    [ -f "$prices" ] || skip "terraform/prices.tsv is not there yet"
    [ "$(grep -v '^#' "$prices" | head -1)" == "$(printf 'machine_type\ton_demand_usd_per_hour\tspot_usd_per_hour')" ]
    FUNNELPULSE_PRICES="$prices" deploy up.sh --project p1 --dry-run
    expect_ok
    grep -Eq 'estimated cost: \$[0-9]+\.[0-9]{3}/hour = scheduler e2-standard-2 on-demand \$[0-9.]+ \+ 2 × e2-standard-4 spot \$[0-9.]+' <<<"$output"
    FUNNELPULSE_PRICES="$prices" deploy up.sh --project p1 --no-spot --dry-run
    grep -Eq 'estimated cost: \$[0-9]+\.[0-9]{3}/hour = scheduler e2-standard-2 on-demand \$[0-9.]+ \+ 2 × e2-standard-4 on-demand' <<<"$output"
}

# ---- Kafka ----

@test "kafka settings map to terraform variables; conflicting or malformed ones stop before terraform" {
    deploy up.sh --project p1 --dry-run
    expect_ok
    local apply
    apply="$(grep -F '+ terraform' <<<"$output" | grep ' apply ')"
    for expected in "-var kafka_bootstrap_servers= " "-var kafka_topic=funnelpulse_events " "-var managed_kafka=false " \
        "-var kafka_partitions=3 " "-var kafka_vcpu_count=3 " "-var kafka_memory_gib=3 "; do
        [[ "$apply " == *"$expected"* ]] || { echo "missing '$expected' in: $apply"; false; }
    done

    deploy up.sh --project p1 --kafka-bootstrap-servers "b1.example:9092,10.0.0.7:9093" --kafka-topic events --dry-run
    expect_ok
    apply="$(grep -F '+ terraform' <<<"$output" | grep ' apply ')"
    [[ "$apply" == *"-var kafka_bootstrap_servers=b1.example:9092,10.0.0.7:9093 -var kafka_topic=events -var managed_kafka=false "* ]]

    # The settings file and the environment, as for every setting.
    printf 'FUNNELPULSE_MANAGED_KAFKA=true\nFUNNELPULSE_KAFKA_PARTITIONS=6\nFUNNELPULSE_KAFKA_TOPIC=from-file\n' >"$FUNNELPULSE_DEPLOY_CONFIG"
    FUNNELPULSE_KAFKA_VCPUS=6 deploy up.sh --project p1 --kafka-memory-gib 24 --dry-run
    expect_ok
    apply="$(grep -F '+ terraform' <<<"$output" | grep ' apply ')"
    [[ "$apply " == *"-var kafka_topic=from-file -var managed_kafka=true -var kafka_partitions=6 -var kafka_vcpu_count=6 -var kafka_memory_gib=24 "* ]]

    # Managed Kafka and an existing broker at once: refused before anything runs.
    deploy up.sh --project p1 --kafka-bootstrap-servers b1:9092
    [ "$status" -ne 0 ]
    [[ "$output" == *"--managed-kafka makes a Kafka cluster and uses its address; --kafka-bootstrap-servers names an existing one: choose one"* ]]
    [ ! -e "$FAKE_LOG" ]
    deploy up.sh --project p1 --kafka-bootstrap-servers b1:9092 --no-managed-kafka --dry-run
    expect_ok
    # Tearing down still works with both set.
    deploy down.sh --project p1 --kafka-bootstrap-servers b1:9092 --dry-run
    expect_ok
    : >"$FUNNELPULSE_DEPLOY_CONFIG"

    deploy up.sh --project p1 --kafka-bootstrap-servers "b1:9092, b2:9092"
    [ "$status" -ne 0 ] && [[ "$output" == *"--kafka-bootstrap-servers must be HOST:PORT[,HOST:PORT…] without spaces"* ]]
    deploy up.sh --project p1 --kafka-topic "no/slashes"
    [ "$status" -ne 0 ] && [[ "$output" == *"--kafka-topic must be 1 to 249 letters"* ]]
    deploy up.sh --project p1 --managed-kafka --kafka-memory-gib 30
    [ "$status" -ne 0 ] && [[ "$output" == *"--kafka-memory-gib must be 1 to 8 GiB per vCPU: 3 to 24 for 3 vCPUs, not 30"* ]]
    deploy up.sh --project p1 --kafka-vcpus 2
    [ "$status" -ne 0 ] && [[ "$output" == *"--kafka-vcpus must be a whole number ≥ 3, not '2'"* ]]
    FUNNELPULSE_MANAGED_KAFKA=maybe deploy up.sh --project p1
    [ "$status" -ne 0 ] && [[ "$output" == *"FUNNELPULSE_MANAGED_KAFKA must be true or false, not 'maybe'"* ]]
    [ ! -e "$FAKE_LOG" ]
}

@test "up with managed Kafka: the client is uploaded with the cluster binaries, and the brokers are named" {
    deploy up.sh --project p1 --managed-kafka
    expect_ok
    grep -q -- "-var managed_kafka=true " "$FAKE_LOG"
    grep -q "^gcloud storage cp $CLUSTER_BIN/funnelpulse-scheduler $CLUSTER_BIN/funnelpulse-executor $CLUSTER_BIN/funnelpulse .*/SHA256SUMS gs://p1-funnelpulse-lake/releases/" "$FAKE_LOG"
    # Managed Kafka is in the estimate (fixture: 3 × 0.05 + 3 × 0.01), and in what stays billed when stopped.
    [[ "$output" == *"estimated cost: \$0.392/hour = "*" + managed Kafka (3 vCPU, 3 GiB) \$0.180"* ]]
    [[ "$output" == *"stopped by the idle watchdog: \$0.182/hour = the scheduler's 20 GB disk + managed Kafka \$0.180, which the watchdog does not stop"* ]]
    [[ "$output" == *"kafka:           brokers bootstrap-fake.funnelpulse-kafka.europe-west1.managedkafka.s.cloud.goog:9092 (Managed Service for Apache Kafka funnelpulse-kafka, SASL_SSL with the VM's token), topic funnelpulse_events; deploy/submit.sh 04 --source kafka [--detach] runs stage 04 on funnelpulse-scheduler, inside the VPC"* ]]
    # Nothing runs on the VM at up.
    [ ! -e "$FAKE_LOG.ssh" ]
}

@test "submit 04 --source kafka runs on the scheduler VM over IAP SSH, every option quoted for its shell" {
    deploy up.sh --project p1 --kafka-bootstrap-servers 10.1.2.3:9092
    expect_ok
    rm "$FAKE_LOG"
    FUNNELPULSE_KAFKA_OPTIONS="security.protocol=SASL_SSL,sasl.mechanism=PLAIN" deploy submit.sh 04 --source kafka \
        --available-now --flush-at-end --kafka-option "sasl.username=fp@p1.iam.gserviceaccount.com" \
        --kafka-option "sasl.jaas.config=a 'b' \$HOME; c" -- --max-records-per-trigger 1000
    expect_ok
    grep -q "^gcloud compute ssh funnelpulse-scheduler --zone europe-west1-b --project p1 --tunnel-through-iap --quiet --command env " "$FAKE_LOG"
    [ "$(last_vm_argv)" = "$(json_list env FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=10.1.2.3:9092 FUNNELPULSE_KAFKA_TOPIC=funnelpulse_events \
        FUNNELPULSE_KAFKA_OPTIONS=security.protocol=SASL_SSL,sasl.mechanism=PLAIN /opt/funnelpulse/bin/funnelpulse-client \
        run 04 --scheduler df://127.0.0.1:50050 --lake gs://p1-funnelpulse-lake/lake --source kafka --available-now --flush-at-end \
        --kafka-option sasl.username=fp@p1.iam.gserviceaccount.com --kafka-option "sasl.jaas.config=a 'b' \$HOME; c" \
        --max-records-per-trigger 1000)" ] || { last_vm_argv; false; }
    [[ "$output" == *"running the stream on funnelpulse-scheduler (inside the VPC, where the brokers are) over IAP SSH"* ]]
    # The client here is not used, and needs no credentials for it.
    refute grep -q "^funnelpulse " "$FAKE_LOG"
    [[ "$output" != *"Application Default Credentials"* ]]

    # Brokers and topic given to submit.sh win over the cluster's; the remote exit status is submit's.
    FAKE_SSH_EXIT=3 deploy submit.sh --kafka-bootstrap-servers other:9092 --kafka-topic t2 04 --source=kafka
    [ "$status" -eq 3 ]
    [[ "$(last_vm_argv)" == '["env", "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=other:9092", "FUNNELPULSE_KAFKA_TOPIC=t2", "/opt/funnelpulse/bin/funnelpulse-client", "run", "04", '* ]]

    # Other stages still run from this machine, through the tunnel.
    deploy submit.sh 05
    expect_ok
    grep -q -x "funnelpulse run 05 --scheduler df://localhost:$FUNNELPULSE_TUNNEL_PORT --lake gs://p1-funnelpulse-lake/lake" "$FAKE_LOG"
    [ "$(wc -l <"$FAKE_LOG.ssh")" -eq 2 ]
}

@test "a Kafka run without brokers anywhere is refused before SSH; --bootstrap-servers alone is enough" {
    deploy up.sh --project p1
    expect_ok
    deploy submit.sh 04 --source kafka
    [ "$status" -ne 0 ]
    [[ "$output" == *"no Kafka brokers for the stream: the cluster has none (deploy/up.sh --kafka-bootstrap-servers HOST:PORT, or --managed-kafka) and no --bootstrap-servers was given"* ]]
    [ ! -e "$FAKE_LOG.ssh" ]

    # The stream source from this machine's environment is passed on explicitly.
    FUNNELPULSE_STREAM_SOURCE_KIND=kafka deploy submit.sh 04 --bootstrap-servers 10.9.9.9:9092
    expect_ok
    [ "$(last_vm_argv)" = "$(json_list env FUNNELPULSE_KAFKA_TOPIC=funnelpulse_events /opt/funnelpulse/bin/funnelpulse-client \
        run 04 --scheduler df://127.0.0.1:50050 --lake gs://p1-funnelpulse-lake/lake --bootstrap-servers 10.9.9.9:9092 --source kafka)" ] ||
        { last_vm_argv; false; }
}

@test "submit --detach starts a transient systemd unit; status shows it; down stops it before destroying" {
    deploy up.sh --project p1 --managed-kafka
    expect_ok
    deploy submit.sh --detach 04 --source kafka --kafka-option security.protocol=SASL_SSL
    expect_ok
    [ "$(last_vm_argv)" = "$(json_list sudo systemd-run --unit=funnelpulse-stream "--description=FunnelPulse stream (deploy/submit.sh --detach)" \
        --collect --property=User=funnelpulse --property=NoNewPrivileges=yes --property=ProtectSystem=strict --property=ProtectHome=yes \
        --property=PrivateTmp=yes --property=TimeoutStopSec=300 \
        --setenv=FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=bootstrap-fake.funnelpulse-kafka.europe-west1.managedkafka.s.cloud.goog:9092 \
        --setenv=FUNNELPULSE_KAFKA_TOPIC=funnelpulse_events --setenv=FUNNELPULSE_KAFKA_AUTH=google /opt/funnelpulse/bin/funnelpulse-client run 04 \
        --scheduler df://127.0.0.1:50050 --lake gs://p1-funnelpulse-lake/lake --source kafka --kafka-option security.protocol=SASL_SSL)" ] ||
        { last_vm_argv; false; }
    [[ "$output" == *"funnelpulse-stream runs on funnelpulse-scheduler"* ]]
    [[ "$output" == *"follow it:  gcloud compute ssh funnelpulse-scheduler --zone europe-west1-b --project p1 --tunnel-through-iap --quiet --command 'sudo journalctl -u funnelpulse-stream -f'"* ]]

    # status: the Kafka settings, and the units' states when the scheduler VM runs.
    # shellcheck disable=SC2030,SC2031
    export FAKE_INSTANCES="$BATS_TEST_TMPDIR/instances.tsv"
    printf 'funnelpulse-scheduler\teurope-west1-b\te2-standard-2\tRUNNING\t\n' >"$FAKE_INSTANCES"
    rm "$FAKE_LOG.ssh"
    FAKE_UNIT_STATES="active inactive" deploy status.sh
    expect_ok
    [[ "$output" == *"kafka: brokers bootstrap-fake.funnelpulse-kafka.europe-west1.managedkafka.s.cloud.goog:9092 (Managed Service for Apache Kafka funnelpulse-kafka, SASL_SSL with the VM's token), topic funnelpulse_events"* ]]
    [[ "$output" == *"detached runs on funnelpulse-scheduler: funnelpulse-stream active, funnelpulse-replay inactive"* ]]
    [[ "$output" == *"logs: gcloud compute ssh funnelpulse-scheduler"*"--command 'sudo journalctl -u funnelpulse-stream -u funnelpulse-replay -f'"* ]]
    [ "$(cat "$FAKE_LOG.ssh")" = "systemctl is-active funnelpulse-stream.service funnelpulse-replay.service" ]
    FAKE_SSH_FAIL=1 deploy status.sh
    expect_ok
    [[ "$output" == *"detached runs on funnelpulse-scheduler: unknown (IAP SSH failed: ERROR: (gcloud.compute.ssh)"* ]]
    printf 'funnelpulse-scheduler\teurope-west1-b\te2-standard-2\tTERMINATED\t\n' >"$FAKE_INSTANCES"
    rm "$FAKE_LOG.ssh"
    deploy status.sh
    [[ "$output" == *"detached runs: none (the scheduler VM is TERMINATED)"* ]]
    [ ! -e "$FAKE_LOG.ssh" ]

    # down: asks the VM, stops the active unit (SIGTERM: the batch in progress ends), then destroys.
    rm "$FAKE_LOG"
    FAKE_UNIT_STATES="active failed" deploy down.sh
    expect_ok
    [ "$(cat "$FAKE_LOG.ssh")" = "systemctl is-active funnelpulse-stream.service funnelpulse-replay.service
sudo systemctl stop funnelpulse-stream.service" ] || { cat "$FAKE_LOG.ssh"; false; }
    [ "$(line_of "sudo systemctl stop")" -lt "$(line_of " destroy ")" ]
    [[ "$output" == *"stopping funnelpulse-stream.service on funnelpulse-scheduler (a stream ends after its batch in progress)"* ]]
    [[ "$output" == *"the managed Kafka cluster funnelpulse-kafka went with it (and its topic"* ]]
}

@test "down goes on when the scheduler VM cannot be asked, and asks nothing without Kafka or a stopped VM" {
    deploy up.sh --project p1 --kafka-bootstrap-servers 10.1.2.3:9092
    expect_ok
    FAKE_SSH_FAIL=1 deploy down.sh
    expect_ok
    [[ "$output" == *"warning: could not ask funnelpulse-scheduler for its detached runs over IAP SSH"*"destroying it stops them"* ]]
    grep -q " destroy -target=module.cluster " "$FAKE_LOG"

    rm -f "$FAKE_LOG" "$FAKE_LOG.ssh"
    deploy up.sh --project p1 --kafka-bootstrap-servers 10.1.2.3:9092
    FAKE_SCHEDULER_STATUS=TERMINATED deploy down.sh
    expect_ok
    [ ! -e "$FAKE_LOG.ssh" ]

    # No Kafka and nothing detached from here: not even the VM's state is asked.
    rm -f "$FAKE_LOG"
    deploy up.sh --project p1
    deploy down.sh
    expect_ok
    refute grep -q "instances describe\|compute ssh" "$FAKE_LOG"
}

@test "kafka-replay runs funnelpulse kafka replay on the scheduler VM, attached or detached" {
    deploy up.sh --project p1 --kafka-bootstrap-servers 10.1.2.3:9092 --kafka-topic events
    expect_ok
    deploy submit.sh kafka-replay --from 2019-10-15 --to 2019-10-16 --speedup 60
    expect_ok
    [ "$(last_vm_argv)" = "$(json_list env FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=10.1.2.3:9092 FUNNELPULSE_KAFKA_TOPIC=events \
        /opt/funnelpulse/bin/funnelpulse-client kafka replay --scheduler df://127.0.0.1:50050 --lake gs://p1-funnelpulse-lake/lake \
        --from 2019-10-15 --to 2019-10-16 --speedup 60)" ] || { last_vm_argv; false; }

    deploy submit.sh --detach kafka-replay --speedup 60
    expect_ok
    [[ "$(last_vm_argv)" == '["sudo", "systemd-run", "--unit=funnelpulse-replay", "--description=FunnelPulse replay (deploy/submit.sh --detach)", '* ]]
    [[ "$(last_vm_argv)" == *'"/opt/funnelpulse/bin/funnelpulse-client", "kafka", "replay", "--scheduler", "df://127.0.0.1:50050", "--lake", "gs://p1-funnelpulse-lake/lake", "--speedup", "60"]' ]]
    grep -qx funnelpulse-replay "$FUNNELPULSE_LOCAL_DIR/gce/detached"

    # A unit that cannot start (one is running already, or no sudo): a clear error.
    FAKE_SSH_EXIT=1 deploy submit.sh --detach kafka-replay
    [ "$status" -ne 0 ] && [[ "$output" == *"starting funnelpulse-replay on funnelpulse-scheduler failed (see above): one may be running already (deploy/status.sh)"* ]]

    deploy submit.sh --detach 02
    [ "$status" -ne 0 ] && [[ "$output" == *"--detach is for the Kafka runs (04 --source kafka, kafka-replay)"* ]]
    deploy submit.sh 04 kafka-replay
    [ "$status" -ne 0 ] && [[ "$output" == *"kafka-replay runs alone"* ]]
}

@test "--dry-run of the Kafka runs prints the SSH commands with their quoting and runs none" {
    deploy submit.sh --detach --dry-run 04 --source kafka --kafka-option "client.rack=a b" --kafka-option "sasl.jaas.config=a b"
    expect_ok
    # The printed line is a command a shell runs as it is: split it twice (gcloud's arguments, then
    # the remote command) to get the words; placeholders (<…>) are quoted, to a shell they would be redirections.
    [ "$(dry_vm_argv)" = "$(json_list sudo systemd-run --unit=funnelpulse-stream "--description=FunnelPulse stream (deploy/submit.sh --detach)" \
        --collect --property=User=funnelpulse --property=NoNewPrivileges=yes --property=ProtectSystem=strict --property=ProtectHome=yes \
        --property=PrivateTmp=yes --property=TimeoutStopSec=300 "--setenv=FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=<kafka_bootstrap_servers>" \
        "--setenv=FUNNELPULSE_KAFKA_TOPIC=<kafka_topic>" /opt/funnelpulse/bin/funnelpulse-client run 04 --scheduler df://127.0.0.1:50050 \
        --lake "<lake_url>" --source kafka --kafka-option "client.rack=a b" --kafka-option "sasl.jaas.config=…")" ] ||
        { echo "$output"; false; }
    [[ "$output" == *"+ gcloud compute ssh '<scheduler_instance>' --zone europe-west1-b --project '<project>' --tunnel-through-iap --quiet --command 'sudo systemd-run "* ]]
    deploy submit.sh --dry-run kafka-replay --create-topic
    expect_ok
    [ "$(dry_vm_argv)" = "$(json_list env "FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=<kafka_bootstrap_servers>" "FUNNELPULSE_KAFKA_TOPIC=<kafka_topic>" \
        /opt/funnelpulse/bin/funnelpulse-client kafka replay --scheduler df://127.0.0.1:50050 --lake "<lake_url>" --create-topic)" ] ||
        { echo "$output"; false; }
    deploy status.sh --dry-run
    expect_ok
    [[ "$output" == *"--command 'systemctl is-active funnelpulse-stream.service funnelpulse-replay.service'"* ]]
    deploy down.sh --project p1 --dry-run
    expect_ok
    [[ "$output" == *"+ gcloud compute instances describe <scheduler_instance> --zone europe-west1-b --project p1 --format=value(status)"*"--command 'systemctl is-active "*"--command 'sudo systemctl stop funnelpulse-stream.service funnelpulse-replay.service'"*"destroy -target=module.cluster"* ]]
    [ ! -e "$FAKE_LOG" ]
    [ ! -e "$FUNNELPULSE_LOCAL_DIR" ]
}

@test "local target: Kafka settings reach the client as they are, --detach runs it in the background, down stops it first" {
    # A stand-in for a running local scheduler (submit checks its pid file).
    mkdir -p "$FUNNELPULSE_LOCAL_DIR"
    sleep 60 &
    echo $! >"$FUNNELPULSE_LOCAL_DIR/scheduler.pid"
    deploy submit.sh --target local --kafka-bootstrap-servers localhost:9092 --kafka-topic t1 04 --source kafka \
        --kafka-option "sasl.jaas.config=a b"
    expect_ok
    grep -qx "funnelpulse run 04 --source kafka --kafka-option sasl.jaas.config=a b --scheduler df://127.0.0.1:50050 --lake $FUNNELPULSE_LOCAL_DIR/lake" "$FAKE_LOG"
    grep -qx "funnelpulse env FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=localhost:9092 FUNNELPULSE_KAFKA_TOPIC=t1" "$FAKE_LOG"
    [ ! -e "$FAKE_LOG.ssh" ]

    FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=env-broker:9092 deploy submit.sh --target local kafka-replay --create-topic
    expect_ok
    grep -qx "funnelpulse kafka replay --scheduler df://127.0.0.1:50050 --lake $FUNNELPULSE_LOCAL_DIR/lake --create-topic" "$FAKE_LOG"
    grep -qx "funnelpulse env FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=env-broker:9092" "$FAKE_LOG"

    FAKE_FUNNELPULSE_SECONDS=30 deploy submit.sh --target local --detach 04 --source kafka
    expect_ok
    [[ "$output" == *"the stream runs in the background: log $FUNNELPULSE_LOCAL_DIR/logs/stream.log"* ]]
    local stream_pid
    stream_pid="$(cat "$FUNNELPULSE_LOCAL_DIR/stream.pid")"
    kill -0 "$stream_pid"
    deploy status.sh --target local
    [[ "$output" == *"stream: running (pid $stream_pid)"* ]]
    deploy down.sh --target local
    expect_ok
    [[ "$output" == "stopped stream"* ]]
    refute kill -0 "$stream_pid" 2>/dev/null
    grep -qx "funnelpulse stopped by SIGTERM" "$FAKE_LOG"
}

# ---- rollout, watchdog report, Kafka cost, down --by-label ----

@test "no stage starts on a mixed cluster: the wait ignores executors that are no VM of the group's release, and waits for them to go" {
    # An executor of an older release is still registered: not counted, and waited out.
    FAKE_STALE_EXECUTORS=1 deploy up.sh --project p1 --run-all
    [ "$status" -ne 0 ]
    [[ "$output" == *"waiting: 2 of 2 executors of this release registered, and 1 of an older release or a VM that is gone still registered (no stage starts on a mixed cluster)…"* ]]
    [[ "$output" == *"only 2 of 2 executors registered within 5 s (1 executors not on the group's current VMs still registered: an older release, or VMs that are gone)"* ]]
    refute grep -q "^funnelpulse run" "$FAKE_LOG"
    teardown

    # submit.sh checks the same before its stage.
    deploy up.sh --project p1
    expect_ok
    teardown # submit opens a tunnel of its own, to a scheduler that lists the old executor
    FAKE_STALE_EXECUTORS=1 FUNNELPULSE_WAIT_SECONDS=1 deploy submit.sh 05
    [ "$status" -ne 0 ]
    refute grep -q "^funnelpulse run" "$FAKE_LOG"
    teardown

    # The group not reaching its version target (or not stable) is a clear error, before any count.
    rm "$FAKE_LOG"
    FAKE_WAIT_UNTIL_EXIT=1 deploy up.sh --project p1
    [ "$status" -ne 0 ]
    [[ "$output" == *"the executor group funnelpulse-executors did not reach the new release (its VMs are replaced one by one) within 5 s: ERROR: (gcloud.compute.instance-groups.managed.wait-until) Timeout"* ]]
    refute grep -q "api GET /api/executors" "$FAKE_LOG"
}

@test "status shows the watchdog's self-test, last action and last error from the scheduler's guest attributes" {
    deploy up.sh --project p1 --idle-minutes 45
    expect_ok
    # shellcheck disable=SC2030,SC2031
    export FAKE_INSTANCES="$BATS_TEST_TMPDIR/instances.tsv"
    printf 'funnelpulse-scheduler\teurope-west1-b\te2-standard-2\tTERMINATED\t\n' >"$FAKE_INSTANCES"
    export FAKE_GUEST_ATTRIBUTES="$BATS_TEST_TMPDIR/guest.tsv"
    printf 'watchdog-self-test\t2026-12-03T10:00:00Z ok: resized funnelpulse-executors to its current size 2\nwatchdog-last-action\t2026-12-03T11:00:00Z no job queued or running and no detached run for 45 min (limit 45): scaled funnelpulse-executors to 0 and powered the scheduler off\n' >"$FAKE_GUEST_ATTRIBUTES"
    deploy status.sh
    expect_ok
    grep -q -F "gcloud compute instances get-guest-attributes funnelpulse-scheduler --zone europe-west1-b --project p1 --query-path=funnelpulse/ --format=value(key,value)" "$FAKE_LOG"
    [[ "$output" == *"watchdog (after 45 idle min): self-test 2026-12-03T10:00:00Z ok: resized funnelpulse-executors to its current size 2"* ]]
    [[ "$output" == *"  last action: 2026-12-03T11:00:00Z no job queued or running and no detached run for 45 min (limit 45): scaled funnelpulse-executors to 0 and powered the scheduler off"* ]]
    [[ "$output" == *"  last error:  none"* ]]
    # Stopped: the scheduler's disk is what remains.
    [[ "$output" == *"cost: \$0.002/hour now = 0 running VMs \$0.000 + 20 GB of disks \$0.002"* ]]

    printf 'watchdog-self-test\t2026-12-03T10:00:00Z FAILED: cannot resize funnelpulse-executors: ERROR: 403\nwatchdog-last-error\t2026-12-03T11:00:00Z resizing funnelpulse-executors to 0 failed: ERROR: 403; the scheduler was powered off anyway, the executors still run\n' >"$FAKE_GUEST_ATTRIBUTES"
    deploy status.sh
    [[ "$output" == *"self-test 2026-12-03T10:00:00Z FAILED: cannot resize funnelpulse-executors"* ]]
    [[ "$output" == *"  last error:  2026-12-03T11:00:00Z resizing funnelpulse-executors to 0 failed"* ]]
    [[ "$output" == *"warning: the idle watchdog reported an error (above): the executors may keep running"* ]]

    unset FAKE_GUEST_ATTRIBUTES
    deploy status.sh
    [[ "$output" == *"watchdog: no report (the scheduler VM has not written one yet"* ]]
    deploy up.sh --project p1 --idle-minutes 0
    deploy status.sh
    [[ "$output" == *"watchdog: off (--idle-minutes 0)"* ]]
}

@test "status prices managed Kafka and warns when the VMs are stopped but Kafka still bills" {
    deploy up.sh --project p1 --managed-kafka
    expect_ok
    # shellcheck disable=SC2030,SC2031
    export FAKE_INSTANCES="$BATS_TEST_TMPDIR/instances.tsv"
    printf 'funnelpulse-scheduler\teurope-west1-b\te2-standard-2\tRUNNING\t\n' >"$FAKE_INSTANCES"
    # The service's own capacity: 6 vCPU, 12 GiB → 6 × 0.05 + 12 × 0.01.
    FAKE_KAFKA_CAPACITY="$(printf '6\t12884901888')" deploy status.sh
    expect_ok
    grep -q "gcloud managed-kafka clusters describe funnelpulse-kafka --location europe-west1 --project p1 --format=value(capacityConfig.vcpuCount,capacityConfig.memoryBytes)" "$FAKE_LOG"
    [[ "$output" == *"cost: \$0.522/hour now = 1 running VMs \$0.100 + 20 GB of disks \$0.002 + managed Kafka \$0.420"* ]]
    [[ "$output" != *"warning: no VM is running"* ]]

    printf 'funnelpulse-scheduler\teurope-west1-b\te2-standard-2\tTERMINATED\t\n' >"$FAKE_INSTANCES"
    deploy status.sh
    [[ "$output" == *"warning: no VM is running, but the managed Kafka cluster funnelpulse-kafka (3 vCPU, 3 GiB) still bills about \$0.180/hour: the idle watchdog does not stop it; deploy/down.sh removes it"* ]]
}

@test "down --by-label deletes what the deployment bills for, found by its label, without Terraform" {
    export FAKE_LISTS="$BATS_TEST_TMPDIR/lists"
    mkdir -p "$FAKE_LISTS"
    printf 'funnelpulse-executor-abc\n' >"$FAKE_LISTS/instance-templates"
    printf 'funnelpulse-executors\teurope-west1-b\tfunnelpulse-executor-abc\nsomeone-elses\teurope-west1-c\tother-template\n' >"$FAKE_LISTS/instance-groups"
    printf 'funnelpulse-scheduler\teurope-west1-b\n' >"$FAKE_LISTS/instances"
    printf 'funnelpulse-orphan-disk\teurope-west1-b\n' >"$FAKE_LISTS/disks"
    printf 'funnelpulse-kafka\n' >"$FAKE_LISTS/kafka-clusters"
    printf 'funnelpulse-scheduler-internal\teurope-west1\n' >"$FAKE_LISTS/addresses"
    printf 'funnelpulse-vpc\n' >"$FAKE_LISTS/networks"
    printf 'funnelpulse-allow-iap-ssh\nfunnelpulse-allow-nodes-scheduler\n' >"$FAKE_LISTS/firewall-rules"
    printf 'funnelpulse-subnet\teurope-west1\n' >"$FAKE_LISTS/subnets"
    rm -f "$BATS_TEST_TMPDIR/fakebin/terraform" # no Terraform needed
    deploy down.sh --by-label --project p1
    expect_ok
    grep -q -F "gcloud compute instance-templates list --project p1 --filter=properties.labels.funnelpulse-deployment=funnelpulse --format=value(name)" "$FAKE_LOG"
    grep -q -F "gcloud compute instances list --project p1 --filter=labels.funnelpulse-deployment=funnelpulse" "$FAKE_LOG"
    local deletes
    deletes="$(grep -E '^gcloud .* delete ' "$FAKE_LOG")"
    [ "$deletes" = "gcloud compute instance-groups managed delete funnelpulse-executors --zone europe-west1-b --project p1 --quiet
gcloud compute instances delete funnelpulse-scheduler --zone europe-west1-b --project p1 --quiet
gcloud compute instance-templates delete funnelpulse-executor-abc --project p1 --quiet
gcloud compute disks delete funnelpulse-orphan-disk --zone europe-west1-b --project p1 --quiet
gcloud managed-kafka clusters delete funnelpulse-kafka --location europe-west1 --project p1 --quiet --async
gcloud compute addresses delete funnelpulse-scheduler-internal --region europe-west1 --project p1 --quiet
gcloud compute firewall-rules delete funnelpulse-allow-iap-ssh --project p1 --quiet
gcloud compute firewall-rules delete funnelpulse-allow-nodes-scheduler --project p1 --quiet
gcloud compute networks subnets delete funnelpulse-subnet --region europe-west1 --project p1 --quiet
gcloud compute networks delete funnelpulse-vpc --project p1 --quiet" ] || { echo "$deletes"; false; }
    [[ "$output" == *"kept: the bucket p1-funnelpulse-lake"* ]]
    refute grep -q "storage rm\|buckets delete\|service-accounts delete" "$FAKE_LOG"

    # Without the managed Kafka API nothing asks for Kafka clusters; --dry-run deletes nothing.
    rm "$FAKE_LOG"
    FAKE_ENABLED_APIS="compute.googleapis.com" deploy down.sh --by-label --project p1 --dry-run
    expect_ok
    [[ "$output" == *"+ gcloud compute instance-templates list"* ]]
    [ ! -e "$FAKE_LOG" ]
    rm -rf "$FAKE_LISTS"
    FAKE_ENABLED_APIS="compute.googleapis.com" deploy down.sh --by-label --project p1
    expect_ok
    refute grep -q "managed-kafka" "$FAKE_LOG"
    [[ "$output" == *"nothing labelled funnelpulse-deployment=funnelpulse, nor a network funnelpulse-vpc, in project p1"* ]]
}
