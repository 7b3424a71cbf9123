#!/usr/bin/env bash
# The gce target: Terraform (terraform/) makes the VMs and the bucket, the
# cluster binaries go to gs://<bucket>/releases/<version>/ where the VMs'
# startup script fetches them, and this machine reaches the scheduler only
# through an IAP tunnel (`gcloud compute start-iap-tunnel`) on localhost.
# Runs that read or write Kafka (stage 04 with --source kafka, kafka-replay)
# run on the scheduler VM instead, over `gcloud compute ssh --tunnel-through-iap`:
# the brokers are reachable from inside the VPC only.
# Sourced by lib.sh; gce_up, gce_status, gce_submit and gce_down are the scripts'.
#
# Further settings (environment or settings file):
#   FUNNELPULSE_WAIT_SECONDS   how long up.sh waits for the executors (default 600)
#   FUNNELPULSE_POLL_SECONDS   how often it asks the scheduler (default 2)
#   FUNNELPULSE_PRICES         the price table (default terraform/prices.tsv)
#   FUNNELPULSE_SAMPLE_ROWS    rows of the default sample for stage 01 (default 2000000, as funnelpulse run)

# The Terraform configuration (FUNNELPULSE_TF_DIR: another copy of it, e.g. in tests).
TF_DIR="${FUNNELPULSE_TF_DIR:-$ROOT_DIR/terraform}"
GCE_STATE_DIR="$LOCAL_DIR/gce"
PRICES="${FUNNELPULSE_PRICES:-$DEPLOY_DIR/../terraform/prices.tsv}"
# The boot disks (pd-balanced) terraform/ gives the VMs (scheduler_disk_gb, executor_disk_gb):
# the scheduler's stays while the watchdog has it stopped; executors scaled to 0 lose theirs.
SCHEDULER_DISK_GB=20
EXECUTOR_DISK_GB=50
# The label every resource of a deployment carries besides app=funnelpulse (terraform/ sets it to
# name_prefix, which the scripts leave at its default): down.sh --by-label finds them by it.
DEPLOYMENT_LABEL="funnelpulse-deployment"
DEPLOYMENT=funnelpulse
# The binaries of a release: gs://<bucket>/releases/<version>/<name>; each one's sha256 goes to
# Terraform (release_sha256) and from there to the VMs' metadata, which startup.sh checks.
RELEASE_BINARIES=(funnelpulse-scheduler funnelpulse-executor funnelpulse)
# The APIs a deployment needs (up.sh checks them first; terraform/ declares them too).
REQUIRED_APIS=(compute.googleapis.com iap.googleapis.com iam.googleapis.com cloudresourcemanager.googleapis.com storage.googleapis.com)
# Where --state-bucket keeps the Terraform state: a backend override beside the configuration.
BACKEND_OVERRIDE="$TF_DIR/funnelpulse_backend_override.tf"
WAIT_SECONDS="${FUNNELPULSE_WAIT_SECONDS:-600}"
POLL_SECONDS="${FUNNELPULSE_POLL_SECONDS:-2}"
# The scheduler's port on its VM (gRPC, REST and the embedded Flight proxy).
REMOTE_PORT=50050
# glibc of the VMs' image (Debian 12): a binary linked against a newer one does not start there.
VM_GLIBC_MINOR=36
# On the scheduler VM (deploy/gce/startup.sh installs them): the client, and
# funnelpulse-client, which runs it with /etc/funnelpulse/client.env.
VM_CLIENT=/opt/funnelpulse/bin/funnelpulse-client
# The scheduler as the client on its VM reaches it.
VM_SCHEDULER_URL=df://127.0.0.1:50050
# The transient systemd units of detached runs (submit.sh --detach), one per kind.
DETACHED_UNITS=(funnelpulse-stream funnelpulse-replay)

# Terraform outputs (gce_read_outputs).
OUT_PROJECT="" OUT_ZONE="" OUT_BUCKET="" OUT_LAKE_URL="" OUT_RAW_URL="" OUT_RELEASE_PREFIX=""
OUT_SCHEDULER="" OUT_GROUP="" OUT_KAFKA_SERVERS="" OUT_KAFKA_TOPIC="" OUT_MANAGED_KAFKA=""

gce_need_tools() {
    [[ "$DRY_RUN" == 1 ]] && return 0
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 && continue
        case "$tool" in
        gcloud) die "gcloud not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then run 'gcloud auth login'" ;;
        terraform) die "terraform not found: install Terraform ≥ 1.5 (https://developer.hashicorp.com/terraform/install)" ;;
        *) die "$tool not found: install it (e.g. apt-get install $tool, or brew install $tool)" ;;
        esac
    done
}

# PROJECT: the setting, else the project of the Terraform state (if read), else gcloud's.
gce_resolve_project() {
    PROJECT="${PROJECT:-$OUT_PROJECT}"
    [[ -n "$PROJECT" ]] && return 0
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ gcloud config get-value project"
        PROJECT="<project>"
        return 0
    fi
    PROJECT="$(gcloud config get-value project 2>/dev/null | tr -d '[:space:]' || true)"
    [[ "$PROJECT" != "(unset)" ]] || PROJECT=""
    [[ -n "$PROJECT" ]] || die "no GCP project: pass --project ID, set FUNNELPULSE_PROJECT (in the environment or deploy/gce.env), or run 'gcloud config set project ID'"
}

# The -var arguments of terraform apply/destroy (variables of terraform/variables.tf); the
# release's (release_version, release_sha256) are RELEASE_VARS (gce_release_vars).
gce_tf_vars() {
    TF_VARS=(-var "project_id=$PROJECT" -var "region=$REGION" -var "zone=$ZONE" -var "bucket_name=$BUCKET"
        -var "scheduler_machine_type=$SCHEDULER_MACHINE_TYPE" -var "executor_machine_type=$EXECUTOR_MACHINE_TYPE"
        -var "executor_count=$EXECUTORS" -var "executor_spot=$SPOT" -var "idle_minutes=$IDLE_MINUTES"
        -var "kafka_bootstrap_servers=$KAFKA_BOOTSTRAP_SERVERS" -var "kafka_topic=${KAFKA_TOPIC:-$DEFAULT_KAFKA_TOPIC}"
        -var "managed_kafka=$MANAGED_KAFKA" -var "kafka_partitions=$KAFKA_PARTITIONS"
        -var "kafka_vcpu_count=$KAFKA_VCPUS" -var "kafka_memory_gib=$KAFKA_MEMORY_GIB")
    # Optional: Terraform's defaults apply when they are not given.
    if [[ ${#IAP_MEMBERS[@]} -gt 0 ]]; then TF_VARS+=(-var "iap_members=$(hcl_strings "${IAP_MEMBERS[@]}")"); fi
    if [[ -n "$MAX_RUN" ]]; then TF_VARS+=(-var "scheduler_max_run_seconds=$MAX_RUN"); fi
    if [[ -n "$BILLING_ACCOUNT" ]]; then TF_VARS+=(-var "billing_account=$BILLING_ACCOUNT"); fi
}

# An HCL list of strings (the values are checked plain: no quotes or backslashes in them).
hcl_strings() {
    local out="" word
    for word in "$@"; do out+="${out:+,}\"$word\""; done
    echo "[$out]"
}

# RELEASE_VARS: release_version and release_sha256 (binary name → sha256 hex, an HCL map),
# from gce_check_binaries; down.sh, which has no binaries, gives what up.sh applied last
# (remembered in FUNNELPULSE_LOCAL_DIR/gce/release), else placeholders (destroy uses neither).
gce_release_vars() {
    local map="" i
    if [[ -n "${VERSION:-}" && ${#RELEASE_SUMS[@]} -gt 0 ]]; then
        for i in "${!RELEASE_BINARIES[@]}"; do map+="${map:+,}\"${RELEASE_BINARIES[$i]}\"=\"${RELEASE_SUMS[$i]}\""; done
        RELEASE_VARS=(-var "release_version=$VERSION" -var "release_sha256={$map}")
        return 0
    fi
    if [[ -s "$GCE_STATE_DIR/release" ]]; then
        RELEASE_VARS=()
        local line
        while IFS= read -r line; do [[ -n "$line" ]] && RELEASE_VARS+=(-var "$line"); done <"$GCE_STATE_DIR/release"
        return 0
    fi
    for i in "${!RELEASE_BINARIES[@]}"; do map+="${map:+,}\"${RELEASE_BINARIES[$i]}\"=\"$(printf '0%.0s' $(seq 64))\""; done
    RELEASE_VARS=(-var "release_version=000000000000" -var "release_sha256={$map}")
}

gce_terraform() { run terraform -chdir="$TF_DIR" "$@"; }

# terraform init; with --state-bucket (or one remembered from an earlier up.sh), the state
# lives in gs://<state bucket>/funnelpulse/: a backend override file beside the configuration
# (git-ignored) and -backend-config=bucket=…; -force-copy moves a local state there once.
gce_terraform_init() {
    local backend=()
    if [[ -z "$STATE_BUCKET" && -s "$GCE_STATE_DIR/state-bucket" ]]; then STATE_BUCKET="$(cat "$GCE_STATE_DIR/state-bucket")"; fi
    if [[ -n "$STATE_BUCKET" ]]; then
        if [[ "$DRY_RUN" == 1 ]]; then
            echo "+ write $BACKEND_OVERRIDE: terraform { backend \"gcs\" {} }"
        else
            printf '%s\n' "# Written by deploy/up.sh --state-bucket $STATE_BUCKET: Terraform keeps its state in GCS." \
                'terraform {' '  backend "gcs" {}' '}' >"$BACKEND_OVERRIDE"
            mkdir -p "$GCE_STATE_DIR"
            echo "$STATE_BUCKET" >"$GCE_STATE_DIR/state-bucket"
        fi
        backend=("-backend-config=bucket=$STATE_BUCKET" "-backend-config=prefix=funnelpulse" -force-copy)
    fi
    gce_terraform init -input=false "${backend[@]+"${backend[@]}"}"
}

# The APIs Terraform and the scripts need, checked before anything is made: one message
# naming the missing ones and the command that enables them.
gce_check_apis() {
    local apis=("${REQUIRED_APIS[@]}") enabled missing=() api err
    if [[ "$MANAGED_KAFKA" == true ]]; then apis+=(managedkafka.googleapis.com); fi
    if [[ -n "$BILLING_ACCOUNT" ]]; then apis+=(billingbudgets.googleapis.com); fi
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ gcloud services list --enabled --project $PROJECT --format=value(config.name)  # needs ${apis[*]}"
        return 0
    fi
    mkdir -p "$GCE_STATE_DIR"
    err="$GCE_STATE_DIR/services.log"
    enabled="$(gcloud services list --enabled --project "$PROJECT" --format='value(config.name)' 2>"$err")" ||
        die "could not list the enabled APIs of project $PROJECT: $(tail -n 1 "$err")
Check the project id and that your account may read it (gcloud auth login); nothing was created."
    for api in "${apis[@]}"; do
        grep -qx "$api" <<<"$enabled" || missing+=("$api")
    done
    [[ ${#missing[@]} -eq 0 ]] || die "project $PROJECT lacks the APIs ${missing[*]}; nothing was created. Enable them (it takes a minute), then run deploy/up.sh again:
  gcloud services enable ${missing[*]} --project $PROJECT"
}

# Reads the outputs of terraform/outputs.tf into OUT_*; fails when the state has
# no cluster. With --dry-run, placeholders stand for them.
gce_read_outputs() {
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ terraform -chdir=$TF_DIR output -json"
        OUT_PROJECT="${PROJECT:-<project>}" OUT_ZONE="$ZONE" OUT_BUCKET="<bucket>" OUT_LAKE_URL="<lake_url>"
        OUT_RAW_URL="<raw_url>" OUT_RELEASE_PREFIX="<release_prefix>" OUT_SCHEDULER="<scheduler_instance>"
        OUT_GROUP="<executor_group>" OUT_KAFKA_SERVERS="<kafka_bootstrap_servers>" OUT_KAFKA_TOPIC="<kafka_topic>"
        OUT_MANAGED_KAFKA="<managed_kafka_cluster>"
        return 0
    fi
    local json key value
    json="$(terraform -chdir="$TF_DIR" output -json 2>/dev/null)" || return 1
    while IFS=$'\t' read -r key value; do
        case "$key" in
        project_id) OUT_PROJECT="$value" ;;
        zone) OUT_ZONE="$value" ;;
        bucket) OUT_BUCKET="$value" ;;
        lake_url) OUT_LAKE_URL="$value" ;;
        raw_url) OUT_RAW_URL="$value" ;;
        release_prefix) OUT_RELEASE_PREFIX="$value" ;;
        scheduler_instance) OUT_SCHEDULER="$value" ;;
        executor_group) OUT_GROUP="$value" ;;
        kafka_bootstrap_servers) OUT_KAFKA_SERVERS="$value" ;;
        kafka_topic) OUT_KAFKA_TOPIC="$value" ;;
        managed_kafka_cluster) OUT_MANAGED_KAFKA="$value" ;;
        esac
    done < <(jq -r 'to_entries[] | select(.value.value | type == "string") | "\(.key)\t\(.value.value)"' <<<"$json")
    gce_managed_kafka_servers
    [[ -n "$OUT_SCHEDULER" && -n "$OUT_LAKE_URL" ]]
}

# With managed Kafka, Terraform does not give the brokers' address (the provider's
# attribute is not in a release yet, docs/terraform.md): the service tells it.
gce_managed_kafka_servers() {
    [[ -n "$OUT_MANAGED_KAFKA" && -z "$OUT_KAFKA_SERVERS" ]] || return 0
    local id location address
    id="${OUT_MANAGED_KAFKA##*/}"
    location="$(sed -n 's%.*/locations/\([^/]*\)/.*%\1%p' <<<"$OUT_MANAGED_KAFKA")"
    address="$(gcloud managed-kafka clusters describe "$id" --location "${location:-$REGION}" --project "$OUT_PROJECT" \
        --format='value(bootstrapAddress)' 2>/dev/null || true)"
    if [[ -n "$address" && "$address" != *:* ]]; then address="$address:9092"; fi
    OUT_KAFKA_SERVERS="$address"
}

# The clients write the lake themselves, and so do the executors on the VMs.
gce_resolve_lake() {
    if [[ -z "$LAKE" ]]; then LAKE="$OUT_LAKE_URL" LAKE_FROM="the cluster's bucket, Terraform output lake_url"; fi
    [[ "$LAKE" == gs://* || "$DRY_RUN" == 1 ]] || die "lake $LAKE ($LAKE_FROM): a GCE cluster needs the lake in GCS (gs://bucket/prefix), where its executors can write"
}

# ---- binaries ----

# The cluster binaries run on the VMs: Linux x86-64 executables that need no
# glibc newer than Debian 12's.
gce_check_cluster_binary() {
    local path="$1" header newest
    [[ -f "$path" ]] || die "$path not found: build the cluster binaries with 'cargo build --release -p funnelpulse -p funnelpulse-scheduler -p funnelpulse-executor' on Linux x86-64 (or set FUNNELPULSE_CLUSTER_BIN_DIR to where they are)"
    # ELF magic, 64-bit, little-endian; e_machine (bytes 18-19) 0x3e = x86-64.
    header="$(od -An -tx1 -N20 "$path" | tr -d ' \n')"
    [[ "${header:0:12}" == 7f454c460201 && "${header:36:4}" == 3e00 ]] ||
        die "$path is not a Linux x86-64 executable, and the VMs run Debian 12 on x86-64: build it there (e.g. in a debian:bookworm container) and set FUNNELPULSE_CLUSTER_BIN_DIR to its folder"
    newest="$(grep -ao 'GLIBC_2\.[0-9]*' "$path" | cut -d. -f2 | sort -n | tail -1 || true)"
    [[ -z "$newest" || "$newest" -le "$VM_GLIBC_MINOR" ]] ||
        die "$path needs glibc 2.$newest, newer than the VMs' (Debian 12: 2.$VM_GLIBC_MINOR): build it on Debian 12 or older (e.g. in a debian:bookworm container)"
}

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1
}

# VERSION: first 12 hex digits of the sha256 over the three binaries
# (scheduler, executor, then the client the scheduler VM runs for Kafka
# stages), so a new build goes to a new folder and the VMs never mix versions.
# RELEASE_SUMS: each binary's own sha256, in RELEASE_BINARIES' order (the VMs check them).
gce_check_binaries() {
    SCHEDULER_BIN="$CLUSTER_BIN_DIR/funnelpulse-scheduler"
    EXECUTOR_BIN="$CLUSTER_BIN_DIR/funnelpulse-executor"
    CLIENT_BIN="$CLUSTER_BIN_DIR/funnelpulse"
    RELEASE_SUMS=()
    if [[ "$DRY_RUN" == 1 && ! -f "$SCHEDULER_BIN" ]]; then
        VERSION="<version>"
        RELEASE_SUMS=("<sha256>" "<sha256>" "<sha256>")
        return 0
    fi
    gce_check_cluster_binary "$SCHEDULER_BIN"
    gce_check_cluster_binary "$EXECUTOR_BIN"
    gce_check_cluster_binary "$CLIENT_BIN"
    VERSION="$(cat "$SCHEDULER_BIN" "$EXECUTOR_BIN" "$CLIENT_BIN" | sha256 | cut -c1-12)"
    local path
    for path in "$SCHEDULER_BIN" "$EXECUTOR_BIN" "$CLIENT_BIN"; do
        RELEASE_SUMS+=("$(sha256 <"$path")")
    done
}

# The release's folder: Terraform's output, else the bucket's name as terraform/ makes it
# (after the first, lake-only apply the cluster's outputs may not exist yet).
gce_release_prefix() {
    OUT_RELEASE_PREFIX="${OUT_RELEASE_PREFIX:-gs://${OUT_BUCKET:-${BUCKET:-$PROJECT-funnelpulse-lake}}/releases}"
}

# Uploads the binaries and their SHA256SUMS, every time, before any VM is made or
# replaced: the bucket's lifecycle rule deletes old releases by age, and a fresh copy
# keeps the running one from expiring. The VMs check each binary against the sha256
# in their metadata (release_sha256), not against this file, which is for people.
gce_upload_release() {
    local sums_dir i
    if [[ "$DRY_RUN" == 1 ]]; then
        sums_dir="<tmp>"
    else
        sums_dir="$(mktemp -d)"
        for i in "${!RELEASE_BINARIES[@]}"; do
            printf '%s  %s\n' "${RELEASE_SUMS[$i]}" "${RELEASE_BINARIES[$i]}"
        done >"$sums_dir/SHA256SUMS"
    fi
    run gcloud storage cp "$SCHEDULER_BIN" "$EXECUTOR_BIN" "$CLIENT_BIN" "$sums_dir/SHA256SUMS" "$OUT_RELEASE_PREFIX/$VERSION/" ||
        die "uploading the binaries to $OUT_RELEASE_PREFIX/$VERSION/ failed (see above): no VM was created or changed; re-run deploy/up.sh"
    if [[ "$DRY_RUN" != 1 ]]; then rm -rf "$sums_dir"; fi
}

# ---- the IAP tunnel ----

# The tunnel's pid, if it runs (and is a tunnel: a pid file may outlive its process).
gce_tunnel_pid() {
    local pid_file="$GCE_STATE_DIR/tunnel.pid" pid
    pid_alive "$pid_file" || return 1
    pid="$(cat "$pid_file")"
    ps -p "$pid" -o args= 2>/dev/null | grep -q start-iap-tunnel || return 1
    echo "$pid"
}

gce_tunnel_command() {
    TUNNEL_CMD=(gcloud compute start-iap-tunnel "$OUT_SCHEDULER" "$REMOTE_PORT" "--local-host-port=localhost:$TUNNEL_PORT"
        --zone "$OUT_ZONE" --project "$OUT_PROJECT")
}

port_in_use() { (exec 3<>"/dev/tcp/localhost/$1") 2>/dev/null; }

# Starts the tunnel in the background, or keeps the one running (on its port).
gce_start_tunnel() {
    local pid port
    if pid="$(gce_tunnel_pid)"; then
        port="$(cat "$GCE_STATE_DIR/tunnel.port" 2>/dev/null || echo "$TUNNEL_PORT")"
        [[ "$port" == "$TUNNEL_PORT" ]] || echo "the IAP tunnel runs on localhost:$port already; using it, not $TUNNEL_PORT"
        TUNNEL_PORT="$port"
        API_BASE="http://localhost:$TUNNEL_PORT"
        return 0
    fi
    if [[ "$DRY_RUN" != 1 ]] && port_in_use "$TUNNEL_PORT"; then
        die "localhost:$TUNNEL_PORT is taken by another program (a local cluster?): stop it, or pick another port with --tunnel-port"
    fi
    gce_tunnel_command
    # Without this flag gcloud exits at once when nothing answers on the VM's
    # port yet, which is the case while the VMs boot and fetch the binaries.
    TUNNEL_CMD+=(--iap-tunnel-disable-connection-check)
    run mkdir -p "$GCE_STATE_DIR"
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ ${TUNNEL_CMD[*]} > $GCE_STATE_DIR/tunnel.log 2>&1 &"
        return 0
    fi
    nohup "${TUNNEL_CMD[@]}" >"$GCE_STATE_DIR/tunnel.log" 2>&1 </dev/null &
    echo $! >"$GCE_STATE_DIR/tunnel.pid"
    echo "$TUNNEL_PORT" >"$GCE_STATE_DIR/tunnel.port"
    echo "IAP tunnel: localhost:$TUNNEL_PORT → $OUT_SCHEDULER:$REMOTE_PORT (pid $!, log $GCE_STATE_DIR/tunnel.log)"
}

gce_stop_tunnel() {
    local pid
    if pid="$(gce_tunnel_pid)"; then
        run kill "$pid"
        # Wait for it to go (its port is then free for the next up.sh); force after 5 s.
        if [[ "$DRY_RUN" != 1 ]]; then
            local _
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
        fi
        echo "stopped the IAP tunnel (pid $pid)"
    fi
    run rm -f "$GCE_STATE_DIR/tunnel.pid" "$GCE_STATE_DIR/tunnel.port"
}

gce_tunnel_log_tail() { tail -n "$1" "$GCE_STATE_DIR/tunnel.log" 2>/dev/null || true; }

# Waits, for at most WAIT_SECONDS, until the executor group runs the current release
# everywhere and is stable (gcloud's wait-until), and then until the scheduler answers
# through the tunnel with at least $1 executors of the group's current VMs registered and
# no other one: an executor of an older release, still registered while the group replaces
# it (or before the scheduler forgets it), would make a mixed cluster, on which no stage
# may start. A tunnel that exits is started again, three times at most (it exits on a bad
# zone, name or permission).
gce_wait_for_executors() {
    local want="$1" deadline=$((SECONDS + WAIT_SECONDS)) json counts current="" stale=0 said="" saying restarts=0
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ gcloud compute instance-groups managed wait-until $OUT_GROUP --version-target-reached --zone $OUT_ZONE --project $OUT_PROJECT --timeout $WAIT_SECONDS"
        echo "+ gcloud compute instance-groups managed wait-until $OUT_GROUP --stable --zone $OUT_ZONE --project $OUT_PROJECT --timeout $WAIT_SECONDS"
        echo "+ curl -fsS $API_BASE/api/executors  # until $want executors of the group's current VMs are registered and no other, at most $WAIT_SECONDS s"
        return 0
    fi
    gce_wait_for_group version-target-reached "the executor group $OUT_GROUP did not reach the new release (its VMs are replaced one by one)"
    gce_wait_for_group stable "the executor group $OUT_GROUP did not become stable (VMs still being created, replaced or repaired)"
    while true; do
        current="" stale=0
        if json="$(api executors 2>/dev/null)" && jq -e 'type == "array"' >/dev/null 2>&1 <<<"$json"; then
            if counts="$(gce_count_executors "$json")"; then
                read -r current stale <<<"$counts"
            else
                current=""
            fi
        fi
        if [[ -n "$current" && "$current" -ge "$want" && "$stale" -eq 0 ]]; then
            echo "$current executors registered"
            return 0
        fi
        if ! gce_tunnel_pid >/dev/null; then
            restarts=$((restarts + 1))
            [[ $restarts -le 3 ]] || die "the IAP tunnel keeps exiting; its log ($GCE_STATE_DIR/tunnel.log) ends with:
$(gce_tunnel_log_tail 5)
Check that your account may use IAP tunnels (roles/iap.tunnelResourceAccessor) and the names above."
            echo "the IAP tunnel exited ($(gce_tunnel_log_tail 1)); starting it again"
            gce_start_tunnel
        fi
        [[ $SECONDS -lt $deadline ]] || gce_wait_timeout "$want" "$current" "$stale"
        if [[ -z "$current" ]]; then
            saying="waiting for the scheduler to answer on localhost:$TUNNEL_PORT (the VMs boot and fetch the binaries)…"
        elif [[ "$stale" -gt 0 ]]; then
            saying="waiting: $current of $want executors of this release registered, and $stale of an older release or a VM that is gone still registered (no stage starts on a mixed cluster)…"
        else
            saying="waiting: $current of $want executors registered…"
        fi
        [[ "$saying" == "$said" ]] || echo "$saying"
        said="$saying"
        sleep "$POLL_SECONDS"
    done
}

# gcloud compute instance-groups managed wait-until GROUP --CONDITION, bounded by WAIT_SECONDS.
gce_wait_for_group() { # condition, what it means when it times out
    local err="$GCE_STATE_DIR/wait-until.log"
    mkdir -p "$GCE_STATE_DIR"
    gcloud compute instance-groups managed wait-until "$OUT_GROUP" "--$1" --zone "$OUT_ZONE" --project "$OUT_PROJECT" \
        --timeout "$WAIT_SECONDS" >/dev/null 2>"$err" && return 0
    die "$2 within $WAIT_SECONDS s: $(tail -n 1 "$err")
  its VMs: gcloud compute instance-groups managed list-instances $OUT_GROUP --zone $OUT_ZONE --project $OUT_PROJECT
  one's boot log: gcloud compute instances get-serial-port-output INSTANCE --zone $OUT_ZONE --project $OUT_PROJECT | grep funnelpulse
The cluster keeps running (and costing): deploy/down.sh removes it."
}

# "CURRENT STALE": of the executors the scheduler lists (JSON), how many run on the group's
# current VMs (a host that is such a VM's name, as its hostname NAME.ZONE.c.PROJECT.internal
# starts, or its internal IP) and how many on anything else. Once the group has reached its
# version target, its VMs are those of this release. Fails when the VMs cannot be listed.
gce_count_executors() { # executors JSON
    local vms
    vms="$(gcloud compute instances list --project "$OUT_PROJECT" \
        --filter="labels.app=funnelpulse AND labels.role=executor AND status=RUNNING" \
        --format='value(name,networkInterfaces[0].networkIP)' 2>/dev/null)" || return 1
    jq -r --arg vms "$vms" '
        ($vms | split("\n") | map(select(length > 0) | split("\t"))) as $current
        | map(.host as $host | ($host | split(".")[0]) as $name
              | any($current[]; .[0] == $name or .[1] == $host))
        | "\(map(select(.)) | length) \(map(select(. | not)) | length)"' <<<"$1"
}

gce_wait_timeout() { # wanted, registered of this release (empty: the scheduler did not answer), others
    local where="--zone $OUT_ZONE --project $OUT_PROJECT"
    if [[ -z "$2" ]]; then
        die "the scheduler did not answer through the IAP tunnel (localhost:$TUNNEL_PORT) within $WAIT_SECONDS s. Check:
  the tunnel's log: $GCE_STATE_DIR/tunnel.log
  the scheduler VM's boot log: gcloud compute instances get-serial-port-output $OUT_SCHEDULER $where | grep funnelpulse
  the binaries: gcloud storage ls $OUT_RELEASE_PREFIX/
The cluster keeps running (and costing) until the idle watchdog stops it: deploy/down.sh removes it."
    fi
    local others=""
    if [[ "${3:-0}" -gt 0 ]]; then others=" ($3 executors not on the group's current VMs still registered: an older release, or VMs that are gone)"; fi
    die "only $2 of $1 executors registered within $WAIT_SECONDS s$others. Check:
  the executor VMs: gcloud compute instance-groups managed list-instances $OUT_GROUP $where
  one's boot log: gcloud compute instances get-serial-port-output INSTANCE $where | grep funnelpulse
  spot capacity may be short in $OUT_ZONE: try --no-spot or another --zone.
The cluster keeps running (and costing) until the idle watchdog stops it: deploy/down.sh removes it."
}

# ---- cost ----

# USD/hour of an item (a machine type, disk:pd-balanced, managedkafka:vcpu, :gib) from the
# price table: column 2 on-demand, 3 spot; nothing when the table does not know it ("-").
gce_price() {
    [[ -f "$PRICES" ]] || return 0
    awk -F'\t' -v item="$1" -v col="$2" '$1 == item && $col ~ /^[0-9]+(\.[0-9]+)?$/ { print $col; exit }' "$PRICES"
}

# Sums and formats prices: awk does the arithmetic (bash has none for decimals).
usd() { awk -v expr="$*" 'BEGIN { n = split(expr, t, " "); s = 0; for (i = 1; i <= n; i += 2) s += t[i] * t[i + 1]; printf "%.3f", s }'; }

# KAFKA_COST (USD/hour, empty when unknown) and KAFKA_SHAPE of a managed Kafka cluster.
gce_kafka_cost() { # vCPUs, GiB
    local vcpu gib
    vcpu="$(gce_price managedkafka:vcpu 2)"
    gib="$(gce_price managedkafka:gib 2)"
    KAFKA_SHAPE="$1 vCPU, $2 GiB"
    KAFKA_COST=""
    if [[ -n "$vcpu" && -n "$gib" ]]; then KAFKA_COST="$(usd "$1 $vcpu $2 $gib")"; fi
}

# The estimate of a cluster shape: scheduler (on-demand) + N executors + their disks
# (+ managed Kafka), and what remains billed once the idle watchdog has stopped it.
gce_cost_line() { # scheduler type, executor type, executors, spot
    local model=on-demand column=2 variable="" scheduler_price executor_price disk_price disk_gb kafka="" kafka_stopped="" kafka_cost=0
    if [[ "$4" == true ]]; then model=spot column=3 variable=" (Spot prices are variable)"; fi
    scheduler_price="$(gce_price "$1" 2)"
    executor_price="$(gce_price "$2" "$column")"
    disk_price="$(gce_price disk:pd-balanced 2)"
    if [[ -z "$scheduler_price" ]]; then
        echo "estimated cost: unknown (no on-demand price for $1 in $PRICES)"
        return 0
    elif [[ -z "$executor_price" ]]; then
        echo "estimated cost: unknown (no $model price for $2 in $PRICES)"
        return 0
    fi
    disk_gb=$((SCHEDULER_DISK_GB + $3 * EXECUTOR_DISK_GB))
    if [[ "$MANAGED_KAFKA" == true ]]; then
        gce_kafka_cost "$KAFKA_VCPUS" "$KAFKA_MEMORY_GIB"
        if [[ -n "$KAFKA_COST" ]]; then
            kafka=" + managed Kafka ($KAFKA_SHAPE) \$$KAFKA_COST"
            kafka_stopped=" + managed Kafka \$$KAFKA_COST, which the watchdog does not stop"
            kafka_cost="$KAFKA_COST"
        else
            kafka=" + managed Kafka (price unknown: no managedkafka:vcpu/:gib in $PRICES)"
            kafka_stopped=" + managed Kafka (price unknown), which the watchdog does not stop"
        fi
    fi
    echo "estimated cost: \$$(usd "1 $scheduler_price $3 $executor_price $disk_gb ${disk_price:-0} 1 $kafka_cost")/hour = scheduler $1 on-demand \$$scheduler_price + $3 × $2 $model \$$executor_price$variable + $disk_gb GB pd-balanced disk \$$(usd "$disk_gb ${disk_price:-0}")$kafka"
    echo "  stopped by the idle watchdog: \$$(usd "$SCHEDULER_DISK_GB ${disk_price:-0} 1 $kafka_cost")/hour = the scheduler's $SCHEDULER_DISK_GB GB disk$kafka_stopped (the executors go with their disks)"
    echo "  (network, bucket storage$([[ "$MANAGED_KAFKA" == true ]] && echo ", Kafka storage") extra; prices from $PRICES)"
}

# ---- raw data for stage 01 ----

# Runs of stage 01 need --raw in GCS: a local --raw (file or folder), or the
# default sample (generated here once, as funnelpulse run would), is uploaded
# under raw_url first. Sets RUN_ARGS: the options given, with --raw rewritten.
gce_prepare_raw() { # options for funnelpulse run…
    local raw="${FUNNELPULSE_RAW:-}" arg take=0
    RUN_ARGS=()
    for arg in "$@"; do
        if [[ $take == 1 ]]; then
            raw="$arg"
            take=0
            continue
        fi
        case "$arg" in
        --raw) take=1 ;;
        --raw=*) raw="${arg#--raw=}" ;;
        *) RUN_ARGS+=("$arg") ;;
        esac
    done
    [[ -n "$raw" ]] || gce_default_sample
    RAW="${raw:-$RAW}"
    [[ "$RAW" == gs://* ]] || gce_upload_raw
    RUN_ARGS+=(--raw "$RAW")
}

# RAW: the sample funnelpulse run makes without --raw (same rows, days and seed,
# same folder: data/ under the current one), generated unless it exists.
gce_default_sample() {
    local rows="${FUNNELPULSE_SAMPLE_ROWS:-2000000}" funnelpulse
    RAW="$PWD/data/sample-$rows-14d"
    [[ -f "$RAW/truth.json" ]] && return 0
    funnelpulse="$(binary funnelpulse)"
    echo "no --raw given: generating the default sample ($rows rows, 14 days from 2019-10-15) in $RAW"
    # --force: a generation killed before truth.json left files of its own there.
    run "$funnelpulse" generate --out "$RAW" --rows "$rows" --start 2019-10-15 --days 14 --force || die "generating the sample failed (see above)"
}

# Mirrors the local RAW to raw_url/<its name> (rsync: a second run uploads only
# what changed) and points RAW there.
gce_upload_raw() {
    local name
    [[ -e "$RAW" || "$DRY_RUN" == 1 ]] || die "--raw $RAW: no such file or folder"
    name="$(basename "$RAW")"
    if [[ -f "$RAW" ]]; then
        run gcloud storage cp "$RAW" "$OUT_RAW_URL/$name" || die "uploading $RAW failed (see above)"
    else
        run gcloud storage rsync --recursive --delete-unmatched-destination-objects "$RAW" "$OUT_RAW_URL/$name" ||
            die "uploading $RAW failed (see above)"
    fi
    RAW="$OUT_RAW_URL/$name"
}

# The funnelpulse client reads and commits the lake in GCS itself: it needs
# credentials (object_store takes Application Default Credentials).
gce_check_client_credentials() {
    [[ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}${GOOGLE_SERVICE_ACCOUNT:-}${GOOGLE_SERVICE_ACCOUNT_PATH:-}${GOOGLE_SERVICE_ACCOUNT_KEY:-}" ]] && return 0
    [[ -f "$HOME/.config/gcloud/application_default_credentials.json" ]] && return 0
    echo "warning: no Application Default Credentials found; funnelpulse writes the lake in GCS from this machine: run 'gcloud auth application-default login'" >&2
}

# Runs stages (leading arguments) with options on the cluster: from this
# machine through the tunnel, or, when they read Kafka (--source kafka), on
# the scheduler VM.
gce_run_stages() { # stages… options…
    local arg stages=() options=() runs_01=0 funnelpulse kind
    kind="$(kafka_run_kind "$@")"
    for arg in "$@"; do
        if [[ ${#options[@]} -eq 0 && "$arg" != -* ]]; then
            stages+=("$arg")
            case "$arg" in all | 01 | 1) runs_01=1 ;; esac
        else
            options+=("$arg")
        fi
    done
    [[ ${#stages[@]} -gt 0 ]] || die "name the stages to run (01 … 06, or all) before the options"
    RUN_ARGS=("${options[@]+"${options[@]}"}")
    if [[ $runs_01 == 1 ]]; then gce_prepare_raw "${options[@]+"${options[@]}"}"; fi
    if [[ -n "$kind" ]]; then
        # The stream source's kind from this machine's environment would not reach the VM.
        if [[ " ${RUN_ARGS[*]+"${RUN_ARGS[*]}"} " != *" --source"* ]]; then RUN_ARGS+=(--source kafka); fi
        gce_vm_run stream run "${stages[@]}" --scheduler "$VM_SCHEDULER_URL" --lake "$LAKE" "${RUN_ARGS[@]}"
        return
    fi
    gce_check_client_credentials
    funnelpulse="$(binary funnelpulse)"
    run "$funnelpulse" run "${stages[@]}" --scheduler "$(scheduler_url)" --lake "$LAKE" "${RUN_ARGS[@]+"${RUN_ARGS[@]}"}"
}

# ---- runs on the scheduler VM (Kafka) ----

# The brokers and the topic for the client on the VM: the settings here,
# else what Terraform gave the cluster (the VM's client.env holds the same,
# as of its last boot). FUNNELPULSE_KAFKA_OPTIONS (librdkafka settings, e.g.
# security.protocol=SASL_SSL) goes along from this machine's environment, and
# a managed cluster's client signs in with the VM's own token
# (FUNNELPULSE_KAFKA_AUTH=google: SASL_SSL + OAUTHBEARER, no key anywhere).
gce_kafka_env() {
    local servers="${KAFKA_BOOTSTRAP_SERVERS:-$OUT_KAFKA_SERVERS}" topic="${KAFKA_TOPIC:-$OUT_KAFKA_TOPIC}"
    KAFKA_ENV=()
    if [[ -n "$servers" ]]; then KAFKA_ENV+=("FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS=$servers"); fi
    if [[ -n "$topic" ]]; then KAFKA_ENV+=("FUNNELPULSE_KAFKA_TOPIC=$topic"); fi
    if [[ -n "${FUNNELPULSE_KAFKA_OPTIONS:-}" ]]; then KAFKA_ENV+=("FUNNELPULSE_KAFKA_OPTIONS=$FUNNELPULSE_KAFKA_OPTIONS"); fi
    local auth="${FUNNELPULSE_KAFKA_AUTH:-}"
    # (--dry-run knows no cluster: its outputs are <placeholders>.)
    if [[ -z "$auth" && -n "$OUT_MANAGED_KAFKA" && "$OUT_MANAGED_KAFKA" != "<"* && -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then auth=google; fi
    if [[ -n "$auth" ]]; then KAFKA_ENV+=("FUNNELPULSE_KAFKA_AUTH=$auth"); fi
}

# `gcloud compute ssh` to the scheduler through IAP (no public IP; OS Login).
gce_ssh_command() { # remote command (one string), extra gcloud flags…
    local remote="$1"
    shift
    SSH_CMD=(gcloud compute ssh "$OUT_SCHEDULER" --zone "$OUT_ZONE" --project "$OUT_PROJECT" --tunnel-through-iap --quiet "$@" --command "$remote")
}

# Runs a command on the scheduler VM; --dry-run prints it with its quoting.
gce_ssh() { # remote command, extra gcloud flags…
    gce_ssh_command "$@"
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ $(redact "$(shell_quote "${SSH_CMD[@]}")")"
        return 0
    fi
    "${SSH_CMD[@]}"
}

gce_ssh_hint() { # remote command: how to run it by hand
    gce_ssh_command "$1"
    shell_quote "${SSH_CMD[@]}"
}

# Runs the client on the scheduler VM with the given arguments: in the
# foreground through SSH (Ctrl-C stops it after its batch, when this terminal
# gives it one), or with --detach as a transient systemd unit that outlives
# the SSH session (one per kind: a second one is refused while the first runs).
gce_vm_run() { # kind (stream|replay), client arguments…
    local kind="$1" unit="funnelpulse-$1" remote=() setting servers
    shift
    gce_kafka_env
    servers="${KAFKA_BOOTSTRAP_SERVERS:-$OUT_KAFKA_SERVERS}"
    if [[ -z "$servers" && " $* " != *" --bootstrap-servers"* ]]; then
        die "no Kafka brokers for the $kind: the cluster has none (deploy/up.sh --kafka-bootstrap-servers HOST:PORT, or --managed-kafka) and no --bootstrap-servers was given"
    fi
    if [[ "$DETACH" == 1 ]]; then
        remote=(sudo systemd-run "--unit=$unit" "--description=FunnelPulse $kind (deploy/submit.sh --detach)" --collect
            --property=User=funnelpulse --property=NoNewPrivileges=yes --property=ProtectSystem=strict
            --property=ProtectHome=yes --property=PrivateTmp=yes --property=TimeoutStopSec=300)
        for setting in "${KAFKA_ENV[@]+"${KAFKA_ENV[@]}"}"; do remote+=("--setenv=$setting"); done
        remote+=("$VM_CLIENT" "$@")
        gce_warn_cli_config
        echo "starting the $kind on $OUT_SCHEDULER as $unit (inside the VPC, where the brokers are)"
        gce_ssh "$(shell_quote "${remote[@]}")" ||
            die "starting $unit on $OUT_SCHEDULER failed (see above): one may be running already (deploy/status.sh), or your account lacks IAP SSH with sudo (roles/compute.osAdminLogin)"
        gce_remember_detached "$unit"
        echo "$unit runs on $OUT_SCHEDULER (a transient unit: it ends with the run, deploy/down.sh or the VM's shutdown)"
        echo "  follow it:  $(gce_ssh_hint "sudo journalctl -u $unit -f")"
        echo "  its state:  deploy/status.sh    stop it: deploy/down.sh, or $(gce_ssh_hint "sudo systemctl stop $unit")"
        return 0
    fi
    if [[ ${#KAFKA_ENV[@]} -gt 0 ]]; then remote=(env "${KAFKA_ENV[@]}"); fi
    remote+=("$VM_CLIENT" "$@")
    gce_warn_cli_config
    echo "running the $kind on $OUT_SCHEDULER (inside the VPC, where the brokers are) over IAP SSH"
    local tty=()
    if [[ -t 0 && -t 1 ]]; then tty=(--ssh-flag=-t); fi
    gce_ssh "$(shell_quote "${remote[@]}")" "${tty[@]+"${tty[@]}"}"
}

# The CLI's settings file here (FUNNELPULSE_CONFIG, else ./funnelpulse.toml)
# does not reach the client on the scheduler VM: say so rather than run without it.
gce_warn_cli_config() {
    local file="${FUNNELPULSE_CONFIG:-}"
    if [[ -z "$file" && -f funnelpulse.toml ]]; then file="$PWD/funnelpulse.toml"; fi
    [[ -n "$file" ]] || return 0
    echo "warning: the CLI's settings file $file is not used on $OUT_SCHEDULER: give the settings this run needs as options after --" >&2
}

# submit.sh kafka-replay [options]: `funnelpulse kafka replay` on the VM (it
# reads bronze through the cluster and produces to the topic).
gce_replay() { # options…
    gce_vm_run replay kafka replay --scheduler "$VM_SCHEDULER_URL" --lake "$LAKE" "$@"
}

# Notes a detached unit here, so status.sh and down.sh look for it even when
# Terraform knows no Kafka (brokers given only to submit.sh).
gce_remember_detached() {
    [[ "$DRY_RUN" == 1 ]] && return 0
    mkdir -p "$GCE_STATE_DIR"
    grep -qx "$1" "$GCE_STATE_DIR/detached" 2>/dev/null || echo "$1" >>"$GCE_STATE_DIR/detached"
}

# Whether a detached run may exist: Kafka is configured or one was started from here.
gce_may_have_detached() {
    [[ -n "$OUT_KAFKA_SERVERS" || -s "$GCE_STATE_DIR/detached" ]]
}

# DETACHED_STATES: "unit state" lines of the detached units on the scheduler
# VM (systemctl is-active: active, inactive, failed, …); empty when SSH failed.
gce_detached_states() {
    local remote states unit i=0
    remote="systemctl is-active ${DETACHED_UNITS[*]/%/.service}"
    DETACHED_STATES=""
    if [[ "$DRY_RUN" == 1 ]]; then
        gce_ssh "$remote"
        return 0
    fi
    gce_ssh_command "$remote"
    mkdir -p "$GCE_STATE_DIR"
    # is-active exits non-zero when a unit is not active: the states tell.
    states="$("${SSH_CMD[@]}" 2>"$GCE_STATE_DIR/ssh.log" || true)"
    for unit in "${DETACHED_UNITS[@]}"; do
        i=$((i + 1))
        local state
        state="$(sed -n "${i}p" <<<"$states" | tr -d '[:space:]')"
        [[ -n "$state" ]] || { DETACHED_STATES=""; return 0; }
        DETACHED_STATES+="$unit $state"$'\n'
    done
}

# ---- what the scripts do ----

# Remembers what up.sh applied, for status.sh and down.sh.
gce_save_applied() {
    [[ "$DRY_RUN" == 1 ]] && return 0
    mkdir -p "$GCE_STATE_DIR"
    echo "$IDLE_MINUTES" >"$GCE_STATE_DIR/idle_minutes"
    echo "$KAFKA_VCPUS $KAFKA_MEMORY_GIB" >"$GCE_STATE_DIR/kafka_shape"
    local i=0 word
    : >"$GCE_STATE_DIR/release"
    for word in "${RELEASE_VARS[@]}"; do
        i=$((i + 1))
        if [[ $((i % 2)) == 0 ]]; then echo "$word" >>"$GCE_STATE_DIR/release"; fi
    done
}

gce_print_access() {
    gce_tunnel_command
    echo "cluster up: scheduler $(scheduler_url) (IAP tunnel to $OUT_SCHEDULER:$REMOTE_PORT), $EXECUTORS executors, lake $LAKE ($LAKE_FROM)"
    echo "  run stages:      deploy/submit.sh 01 02 …   or: funnelpulse run 01 --scheduler $(scheduler_url) --lake $LAKE"
    echo "  tunnel by hand:  ${TUNNEL_CMD[*]}"
    echo "  status, stop:    deploy/status.sh, deploy/down.sh (the bucket gs://$OUT_BUCKET and its lake stay)"
    if [[ -n "$OUT_KAFKA_SERVERS" ]]; then
        echo "  kafka:           $(gce_kafka_line); deploy/submit.sh 04 --source kafka [--detach] runs stage 04 on $OUT_SCHEDULER, inside the VPC"
    fi
    if [[ "$IDLE_MINUTES" -gt 0 ]]; then
        echo "  idle watchdog:   after $IDLE_MINUTES idle minutes the executors scale to 0 and the scheduler stops; deploy/up.sh starts them again"
    else
        echo "  idle watchdog:   off (--idle-minutes 0): the cluster costs until deploy/down.sh"
    fi
}

# up.sh: RUN_ALL and EXTRA (options for funnelpulse run) come from the script.
# The order matters on a first boot: the bucket first (a targeted apply of module.lake), then
# the release into it, and only then the VMs, which download and check it at boot.
gce_up() {
    # Both decide what Terraform builds (its output's precondition refuses them too); down.sh
    # and status.sh still work with them.
    if [[ "$MANAGED_KAFKA" == true && -n "$KAFKA_BOOTSTRAP_SERVERS" ]]; then
        die "--managed-kafka makes a Kafka cluster and uses its address; --kafka-bootstrap-servers names an existing one: choose one (FUNNELPULSE_MANAGED_KAFKA, FUNNELPULSE_KAFKA_BOOTSTRAP_SERVERS)"
    fi
    gce_need_tools gcloud terraform curl jq
    gce_resolve_project
    gce_check_binaries
    # Before anything costs money: the client is needed for --run-all.
    if [[ "$RUN_ALL" == 1 ]]; then binary funnelpulse >/dev/null; fi
    gce_check_apis
    gce_tf_vars
    gce_release_vars
    gce_terraform_init ||
        die "terraform init failed (see above): nothing was created (a lock file from before the provider's raise to 8.x needs one 'terraform -chdir=terraform init -upgrade')"
    gce_terraform apply -target=module.lake -input=false -auto-approve "${TF_VARS[@]}" "${RELEASE_VARS[@]}" ||
        die "terraform apply of the bucket (module.lake) failed (see above): no binaries uploaded, no VM created. Fix the cause and re-run deploy/up.sh"
    if [[ "$DRY_RUN" == 1 ]]; then gce_read_outputs; else gce_read_outputs || true; fi
    gce_release_prefix
    gce_upload_release
    gce_terraform apply -input=false -auto-approve "${TF_VARS[@]}" "${RELEASE_VARS[@]}" ||
        die "terraform apply failed (see above): no tunnel started. Fix the cause and re-run deploy/up.sh (Terraform goes on from where it stopped), or remove what was made with deploy/down.sh"
    gce_read_outputs || die "terraform output -json has no cluster outputs (scheduler_instance, lake_url): see terraform/outputs.tf"
    gce_resolve_lake
    gce_save_applied
    gce_start_tunnel
    gce_wait_for_executors "$EXECUTORS"
    gce_print_access
    gce_cost_line "$SCHEDULER_MACHINE_TYPE" "$EXECUTOR_MACHINE_TYPE" "$EXECUTORS" "$SPOT"
    if [[ "$RUN_ALL" == 1 ]]; then
        gce_run_stages all "${EXTRA[@]+"${EXTRA[@]}"}"
    fi
}

# "brokers …, topic …" of the cluster, as Terraform gave them to the scheduler.
gce_kafka_line() {
    local managed=""
    if [[ -n "$OUT_MANAGED_KAFKA" ]]; then managed=" (Managed Service for Apache Kafka ${OUT_MANAGED_KAFKA##*/}, SASL_SSL with the VM's token)"; fi
    echo "brokers $OUT_KAFKA_SERVERS$managed, topic ${OUT_KAFKA_TOPIC:-$DEFAULT_KAFKA_TOPIC}"
}

# The Kafka settings and, when the scheduler VM runs, its detached runs.
gce_kafka_status() {
    if [[ -n "$OUT_KAFKA_SERVERS" ]]; then
        echo "kafka: $(gce_kafka_line)"
    else
        echo "kafka: not configured (deploy/up.sh --kafka-bootstrap-servers HOST:PORT, or --managed-kafka)"
    fi
    gce_may_have_detached || return 0
    if [[ "$DRY_RUN" != 1 && "$SCHEDULER_STATE" != RUNNING ]]; then
        echo "detached runs: none (the scheduler VM is ${SCHEDULER_STATE:-not there})"
        return 0
    fi
    gce_detached_states
    [[ "$DRY_RUN" == 1 ]] && return 0
    if [[ -z "$DETACHED_STATES" ]]; then
        echo "detached runs on $OUT_SCHEDULER: unknown (IAP SSH failed: $(tail -n 1 "$GCE_STATE_DIR/ssh.log" 2>/dev/null))"
        return 0
    fi
    local unit state line=()
    while read -r unit state; do
        [[ -n "$unit" ]] && line+=("$unit $state")
    done <<<"$DETACHED_STATES"
    local joined
    joined="$(printf '%s, ' "${line[@]}")"
    echo "detached runs on $OUT_SCHEDULER: ${joined%, }"
    if grep -q ' active$' <<<"$DETACHED_STATES"; then
        echo "  logs: $(gce_ssh_hint "sudo journalctl -u funnelpulse-stream -u funnelpulse-replay -f")"
    fi
}

# The VMs labelled app=funnelpulse, their cost, and the scheduler's view.
gce_status() {
    gce_need_tools gcloud terraform curl jq
    gce_read_outputs || true
    gce_resolve_project
    gce_list_vms
    if [[ -n "$OUT_SCHEDULER" ]]; then
        gce_watchdog_status
        gce_kafka_status
    fi
    local pid
    if ! pid="$(gce_tunnel_pid)"; then
        [[ -n "$OUT_SCHEDULER" ]] || OUT_SCHEDULER="<scheduler instance>"
        OUT_ZONE="${OUT_ZONE:-$ZONE}" OUT_PROJECT="$PROJECT"
        gce_tunnel_command
        echo "scheduler: no IAP tunnel open, so no executors or jobs shown; deploy/submit.sh opens one, or run: ${TUNNEL_CMD[*]} &"
        return 0
    fi
    TUNNEL_PORT="$(cat "$GCE_STATE_DIR/tunnel.port" 2>/dev/null || echo "$TUNNEL_PORT")"
    API_BASE="http://localhost:$TUNNEL_PORT"
    local executors
    if ! executors="$(api executors 2>/dev/null)"; then
        echo "scheduler $(scheduler_url) (IAP tunnel pid $pid): not answering (stopped by the idle watchdog, or still booting?)"
        return 0
    fi
    echo "scheduler $(scheduler_url) (IAP tunnel pid $pid): $(jq 'length' <<<"$executors") executors registered$(jq -r 'if length > 0 then ": " + (map("\(.host):\(.port)") | join(", ")) else "" end' <<<"$executors")"
    echo "jobs: $(jobs_by_status)"
    gce_idle_line
}

# Idle time as the scheduler sees it: since the last job ended, or since it
# started when it has run none (it keeps jobs in memory only). The watchdog on
# the scheduler VM keeps its own clock (the last minutely poll that saw a job
# queued or running), so the two can differ by about a minute.
gce_idle_line() {
    local jobs state limit now
    jobs="$(api jobs 2>/dev/null)" || return 0
    state="$(api state 2>/dev/null || echo '{}')"
    limit="$(cat "$GCE_STATE_DIR/idle_minutes" 2>/dev/null || echo "$IDLE_MINUTES")"
    now="$(($(date +%s) * 1000))"
    jq -rn --argjson jobs "$jobs" --argjson state "$state" --argjson now "$now" --argjson limit "$limit" '
        ($jobs | map(select(.status == "Queued" or .status == "Running")) | length) as $active
        | if $active > 0 then "idle: no, \($active) job(s) queued or running"
          else (if ($jobs | length) > 0 then [$jobs[].end_time] | max else $state.started // 0 end) as $since
          | if $since == 0 then "idle: unknown (the scheduler reports neither jobs nor its start time)"
            else "idle: \([0, ($now - $since) / 60000 | floor] | max) min, since the \(if ($jobs | length) > 0 then "last job ended" else "scheduler started" end)"
            end
          end
        + if $limit > 0 then " (the watchdog on the VM, polling each minute, stops the cluster after \($limit) idle min)" else " (watchdog off)" end'
}

# Also sets SCHEDULER_STATE (the status of the scheduler VM, empty when absent) and
# RUNNING_VMS. The cost: the running VMs' machines, every VM's boot disk (a stopped VM keeps
# it), and a managed Kafka cluster, which bills whatever the VMs do.
gce_list_vms() {
    local rows name zone type state model price unknown="" terms="" disks=0 disk_price
    SCHEDULER_STATE=""
    RUNNING_VMS=0
    local format="value(name,zone.basename(),machineType.basename(),status,scheduling.provisioningModel)"
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ gcloud compute instances list --project $PROJECT --filter=labels.app=funnelpulse --format=$format"
        return 0
    fi
    rows="$(gcloud compute instances list --project "$PROJECT" --filter=labels.app=funnelpulse --format="$format")" ||
        die "gcloud compute instances list failed (see above)"
    gce_kafka_status_cost
    if [[ -z "$rows" ]]; then
        echo "VMs in project $PROJECT: none (no cluster: deploy/up.sh makes one)"
        if [[ -n "$OUT_MANAGED_KAFKA" ]]; then
            echo "cost: \$${KAFKA_COST:-?}/hour for the managed Kafka cluster ${OUT_MANAGED_KAFKA##*/} ($KAFKA_SHAPE)"
            gce_kafka_warning
        else
            echo "cost: \$0.000/hour for VMs"
        fi
        return 0
    fi
    echo "VMs in project $PROJECT:"
    printf '  %-32s %-16s %-16s %-11s %s\n' NAME ZONE MACHINE_TYPE STATUS PROVISIONING
    while IFS=$'\t' read -r name zone type state model; do
        printf '  %-32s %-16s %-16s %-11s %s\n' "$name" "$zone" "$type" "$state" "${model:-STANDARD}"
        if [[ "$name" == "$OUT_SCHEDULER" || "$name" == *-scheduler ]]; then
            [[ "$name" != "$OUT_SCHEDULER" ]] || SCHEDULER_STATE="$state"
            disks=$((disks + SCHEDULER_DISK_GB))
        else
            disks=$((disks + EXECUTOR_DISK_GB))
        fi
        [[ "$state" == RUNNING ]] || continue
        RUNNING_VMS=$((RUNNING_VMS + 1))
        if [[ "$model" == SPOT ]]; then price="$(gce_price "$type" 3)"; else price="$(gce_price "$type" 2)"; fi
        if [[ -z "$price" ]]; then
            unknown="$type"
        else
            terms+=" 1 $price"
        fi
    done <<<"$rows"
    if [[ -n "$unknown" ]]; then
        echo "cost: unknown (no price for $unknown in $PRICES)"
    else
        disk_price="$(gce_price disk:pd-balanced 2)"
        local line kafka_part=""
        if [[ -n "$OUT_MANAGED_KAFKA" ]]; then kafka_part=" + managed Kafka \$${KAFKA_COST:-?}"; fi
        line="cost: \$$(usd "0 0$terms $disks ${disk_price:-0} 1 ${KAFKA_COST:-0}")/hour now = $RUNNING_VMS running VMs \$$(usd "0 0$terms") + $disks GB of disks \$$(usd "$disks ${disk_price:-0}")$kafka_part"
        echo "$line (Spot prices are variable; network and storage extra; prices from $PRICES)"
    fi
    if [[ "$RUNNING_VMS" -eq 0 ]]; then gce_kafka_warning; fi
}

# KAFKA_COST and KAFKA_SHAPE of the cluster's managed Kafka (OUT_MANAGED_KAFKA), as the
# service describes it, else as up.sh made it.
gce_kafka_status_cost() {
    KAFKA_COST="" KAFKA_SHAPE=""
    [[ -n "$OUT_MANAGED_KAFKA" ]] || return 0
    local row vcpus bytes gib location id
    id="${OUT_MANAGED_KAFKA##*/}"
    location="$(sed -n 's%.*/locations/\([^/]*\)/.*%\1%p' <<<"$OUT_MANAGED_KAFKA")"
    row="$(gcloud managed-kafka clusters describe "$id" --location "${location:-$REGION}" --project "$PROJECT" \
        --format='value(capacityConfig.vcpuCount,capacityConfig.memoryBytes)' 2>/dev/null || true)"
    read -r vcpus bytes <<<"$row"
    if [[ "$vcpus" =~ ^[0-9]+$ && "$bytes" =~ ^[0-9]+$ ]]; then
        gib=$((bytes / 1073741824))
    else
        read -r vcpus gib <<<"$(cat "$GCE_STATE_DIR/kafka_shape" 2>/dev/null || echo "$KAFKA_VCPUS $KAFKA_MEMORY_GIB")"
    fi
    gce_kafka_cost "$vcpus" "$gib"
}

gce_kafka_warning() {
    [[ -n "$OUT_MANAGED_KAFKA" ]] || return 0
    echo "warning: no VM is running, but the managed Kafka cluster ${OUT_MANAGED_KAFKA##*/} ($KAFKA_SHAPE) still bills about \$${KAFKA_COST:-?}/hour: the idle watchdog does not stop it; deploy/down.sh removes it (the lake stays)"
}

# The idle watchdog's own report, from the scheduler VM's guest attributes (namespace
# funnelpulse/): its permission self-test at boot, its last action and its last error.
# Read with gcloud, so it shows while the VM is stopped too.
gce_watchdog_status() {
    local limit rows key value self="" action="" error=""
    limit="$(cat "$GCE_STATE_DIR/idle_minutes" 2>/dev/null || echo "$IDLE_MINUTES")"
    if [[ "$limit" == 0 ]]; then
        echo "watchdog: off (--idle-minutes 0): the cluster costs until deploy/down.sh"
        return 0
    fi
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ gcloud compute instances get-guest-attributes $OUT_SCHEDULER --zone $OUT_ZONE --project $OUT_PROJECT --query-path=funnelpulse/ --format=value(key,value)"
        return 0
    fi
    [[ -n "$SCHEDULER_STATE" ]] || return 0
    if ! rows="$(gcloud compute instances get-guest-attributes "$OUT_SCHEDULER" --zone "$OUT_ZONE" --project "$OUT_PROJECT" \
        --query-path=funnelpulse/ --format='value(key,value)' 2>/dev/null)"; then
        echo "watchdog: no report (the scheduler VM has not written one yet, or its guest attributes cannot be read)"
        return 0
    fi
    while IFS=$'\t' read -r key value; do
        case "$key" in
        watchdog-self-test) self="$value" ;;
        watchdog-last-action) action="$value" ;;
        watchdog-last-error) error="$value" ;;
        esac
    done <<<"$rows"
    echo "watchdog (after $limit idle min): self-test ${self:-not reported yet}"
    echo "  last action: ${action:-none yet}"
    echo "  last error:  ${error:-none}"
    if [[ -n "$error" ]]; then
        echo "warning: the idle watchdog reported an error (above): the executors may keep running (and costing) after it stops the scheduler; deploy/down.sh removes them"
    fi
}

# submit.sh: stages and options in ARGS, DETACH. Kafka runs go to the
# scheduler VM; the tunnel and the wait for an executor come first all the
# same (they tell at once when the cluster is stopped).
gce_submit() {
    gce_need_tools gcloud terraform curl jq
    gce_read_outputs || die "no cluster in the Terraform state ($TF_DIR): start one with deploy/up.sh"
    gce_resolve_project
    gce_resolve_lake
    # Asked even with a tunnel open: the watchdog may have stopped the scheduler since.
    gce_check_scheduler_running
    if ! gce_tunnel_pid >/dev/null; then gce_start_tunnel; fi
    gce_wait_for_executors 1
    lake_line
    if [[ "${ARGS[0]}" == kafka-replay ]]; then
        gce_replay "${ARGS[@]:1}"
    elif [[ "${ARGS[0]}" == serve ]]; then
        # The dashboard runs here (127.0.0.1), its queries on the cluster through the tunnel.
        gce_check_client_credentials
        run "$(binary funnelpulse)" serve --scheduler "$(scheduler_url)" --lake "$LAKE" "${ARGS[@]:1}"
    else
        gce_run_stages "${ARGS[@]}"
    fi
}

# A scheduler stopped by the idle watchdog would make the wait time out: say so at once.
gce_check_scheduler_running() {
    local state
    [[ "$DRY_RUN" == 1 ]] && return 0
    state="$(gcloud compute instances describe "$OUT_SCHEDULER" --zone "$OUT_ZONE" --project "$OUT_PROJECT" --format='value(status)' 2>/dev/null || true)"
    case "$state" in
    RUNNING | PROVISIONING | STAGING) ;;
    "") die "gcloud compute instances describe $OUT_SCHEDULER failed: the cluster is down (deploy/up.sh makes it), or gcloud cannot reach project $OUT_PROJECT" ;;
    *) die "the scheduler VM $OUT_SCHEDULER is $state (the idle watchdog stops an idle cluster): start it again with deploy/up.sh" ;;
    esac
}

# Stops the detached runs on the scheduler VM (SIGTERM: a stream ends after
# its batch in progress) before the VM goes. Only when one may exist and the
# VM runs; a failure is reported and does not stop down.sh (the VM's
# shutdown stops them too).
gce_stop_detached() {
    gce_may_have_detached || return 0
    if [[ "$DRY_RUN" == 1 ]]; then
        # Asked only when the VM runs; stopped only those that are active.
        echo "+ gcloud compute instances describe $OUT_SCHEDULER --zone $OUT_ZONE --project $OUT_PROJECT --format=value(status)"
        gce_detached_states
        gce_ssh "sudo systemctl stop ${DETACHED_UNITS[*]/%/.service}"
        return 0
    fi
    command -v gcloud >/dev/null 2>&1 || { echo "warning: gcloud not found: detached runs on $OUT_SCHEDULER are not stopped first" >&2; return 0; }
    local state active=() unit
    state="$(gcloud compute instances describe "$OUT_SCHEDULER" --zone "$OUT_ZONE" --project "$OUT_PROJECT" --format='value(status)' 2>/dev/null || true)"
    [[ "$state" == RUNNING ]] || return 0
    gce_detached_states
    if [[ -z "$DETACHED_STATES" ]]; then
        echo "warning: could not ask $OUT_SCHEDULER for its detached runs over IAP SSH ($(tail -n 1 "$GCE_STATE_DIR/ssh.log" 2>/dev/null)); destroying it stops them" >&2
        return 0
    fi
    while read -r unit state; do
        if [[ "$state" == active || "$state" == activating ]]; then active+=("$unit.service"); fi
    done <<<"$DETACHED_STATES"
    if [[ ${#active[@]} -gt 0 ]]; then
        echo "stopping ${active[*]} on $OUT_SCHEDULER (a stream ends after its batch in progress)"
        gce_ssh "sudo systemctl stop ${active[*]}" ||
            echo "warning: stopping ${active[*]} failed (see above); destroying the VM stops them" >&2
    fi
    rm -f "$GCE_STATE_DIR/detached"
}

# down.sh: removes the cluster (module.cluster, with its managed Kafka); the
# bucket and its lake stay.
gce_down() {
    gce_need_tools terraform
    gce_stop_tunnel
    if [[ "$DRY_RUN" != 1 ]]; then gce_read_outputs || true; fi
    gce_resolve_project
    if [[ "$DRY_RUN" == 1 ]]; then
        OUT_SCHEDULER="<scheduler_instance>" OUT_ZONE="$ZONE" OUT_PROJECT="$PROJECT" OUT_KAFKA_SERVERS="<kafka_bootstrap_servers>"
    fi
    if [[ -n "$OUT_SCHEDULER" ]]; then gce_stop_detached; fi
    gce_tf_vars
    gce_release_vars
    gce_terraform_init || die "terraform init failed (see above): nothing was removed (lost the state? deploy/down.sh --by-label removes the cluster without it)"
    gce_terraform destroy -target=module.cluster -input=false -auto-approve "${TF_VARS[@]}" "${RELEASE_VARS[@]}" ||
        die "terraform destroy failed (see above): the cluster may still run and cost money; re-run deploy/down.sh, and check with deploy/status.sh"
    local bucket="${OUT_BUCKET:-${BUCKET:-$PROJECT-funnelpulse-lake}}"
    if [[ -n "$OUT_MANAGED_KAFKA" ]]; then
        echo "the managed Kafka cluster ${OUT_MANAGED_KAFKA##*/} went with it (and its topic: a stream resumed on a new one needs --reset-stream or another --checkpoint)"
    fi
    echo "cluster removed; the bucket gs://$bucket survives with the lake (gs://$bucket/lake) and the releases: deploy/up.sh makes a new cluster over them"
    echo "to delete the data too (irreversible): gcloud storage rm --recursive gs://$bucket && terraform -chdir=$TF_DIR state rm module.lake"
}

# ---- down.sh --by-label: without Terraform's state ----

# A read-only gcloud query; with --dry-run printed, and answered with nothing.
gce_query() {
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ gcloud $*" >&2
        return 0
    fi
    gcloud "$@"
}

# Deletes what a deployment bills for, found by its labels ($DEPLOYMENT_LABEL=$DEPLOYMENT,
# which terraform/ puts on everything that takes labels) and, for what takes none (managed
# instance groups, the network and its firewall rules), by the names terraform/ gives them
# under that prefix. For a lost or broken Terraform state: the bucket, the service accounts
# and their roles (the long-lived part) stay, as with down.sh.
gce_down_by_label() {
    local label="$DEPLOYMENT_LABEL=$DEPLOYMENT" templates groups name zone template rows found=0 region
    gce_need_tools gcloud
    gce_stop_tunnel
    gce_resolve_project
    echo "looking for the resources labelled $label in project $PROJECT (no Terraform state used)"
    # The executor group first (it would recreate its VMs): groups carry no labels, their template does.
    templates="$(gce_query compute instance-templates list --project "$PROJECT" --filter="properties.labels.$label" --format='value(name)')"
    groups="$(gce_query compute instance-groups managed list --project "$PROJECT" --format='value(name,zone.basename(),instanceTemplate.basename())')"
    while IFS=$'\t' read -r name zone template; do
        [[ -n "$name" ]] || continue
        if [[ "$name" == "$DEPLOYMENT-executors" ]] || { [[ -n "$template" ]] && grep -qx "$template" <<<"$templates"; }; then
            found=1
            echo "deleting the managed instance group $name ($zone) and its VMs"
            run gcloud compute instance-groups managed delete "$name" --zone "$zone" --project "$PROJECT" --quiet ||
                echo "warning: deleting $name failed (see above)" >&2
        fi
    done <<<"$groups"
    rows="$(gce_query compute instances list --project "$PROJECT" --filter="labels.$label" --format='value(name,zone.basename())')"
    while IFS=$'\t' read -r name zone; do
        [[ -n "$name" ]] || continue
        found=1
        echo "deleting the VM $name ($zone) and its disk"
        run gcloud compute instances delete "$name" --zone "$zone" --project "$PROJECT" --quiet || echo "warning: deleting $name failed (see above)" >&2
    done <<<"$rows"
    while read -r name; do
        [[ -n "$name" ]] || continue
        found=1
        echo "deleting the instance template $name"
        run gcloud compute instance-templates delete "$name" --project "$PROJECT" --quiet || echo "warning: deleting $name failed (see above)" >&2
    done <<<"$templates"
    rows="$(gce_query compute disks list --project "$PROJECT" --filter="labels.$label" --format='value(name,zone.basename())')"
    while IFS=$'\t' read -r name zone; do
        [[ -n "$name" ]] || continue
        found=1
        echo "deleting the disk $name ($zone)"
        run gcloud compute disks delete "$name" --zone "$zone" --project "$PROJECT" --quiet || echo "warning: deleting $name failed (see above)" >&2
    done <<<"$rows"
    # Managed Kafka, only where its API is on (listing it otherwise asks to enable it).
    if gce_query services list --enabled --project "$PROJECT" --format='value(config.name)' | grep -qx managedkafka.googleapis.com; then
        rows="$(gce_query managed-kafka clusters list --location "$REGION" --project "$PROJECT" --filter="labels.$label" --format='value(name.basename())')"
        while read -r name; do
            [[ -n "$name" ]] || continue
            found=1
            echo "deleting the managed Kafka cluster $name ($REGION; it takes a while: --async)"
            run gcloud managed-kafka clusters delete "$name" --location "$REGION" --project "$PROJECT" --quiet --async ||
                echo "warning: deleting $name failed (see above)" >&2
        done <<<"$rows"
    fi
    rows="$(gce_query compute addresses list --project "$PROJECT" --filter="labels.$label" --format='value(name,region.basename())')"
    while IFS=$'\t' read -r name region; do
        [[ -n "$name" ]] || continue
        found=1
        echo "deleting the address $name ($region)"
        run gcloud compute addresses delete "$name" --region "$region" --project "$PROJECT" --quiet || echo "warning: deleting $name failed (see above)" >&2
    done <<<"$rows"
    # The network (no labels): its firewall rules and subnets first. It costs nothing, but a
    # new cluster made from an empty state would find its names taken.
    local network="$DEPLOYMENT-vpc"
    if [[ -n "$(gce_query compute networks list --project "$PROJECT" --filter="name=$network" --format='value(name)')" ]]; then
        found=1
        rows="$(gce_query compute firewall-rules list --project "$PROJECT" --filter="network~/$network\$" --format='value(name)')"
        while read -r name; do
            [[ -n "$name" ]] || continue
            echo "deleting the firewall rule $name"
            run gcloud compute firewall-rules delete "$name" --project "$PROJECT" --quiet || echo "warning: deleting $name failed (see above)" >&2
        done <<<"$rows"
        rows="$(gce_query compute networks subnets list --project "$PROJECT" --filter="network~/$network\$" --format='value(name,region.basename())')"
        while IFS=$'\t' read -r name region; do
            [[ -n "$name" ]] || continue
            echo "deleting the subnet $name ($region)"
            run gcloud compute networks subnets delete "$name" --region "$region" --project "$PROJECT" --quiet ||
                echo "warning: deleting $name failed (see above; a managed Kafka cluster being deleted holds it for a while: run deploy/down.sh --by-label again later)" >&2
        done <<<"$rows"
        echo "deleting the network $network"
        run gcloud compute networks delete "$network" --project "$PROJECT" --quiet ||
            echo "warning: deleting $network failed (see above; run deploy/down.sh --by-label again once what uses it is gone)" >&2
    fi
    if [[ "$DRY_RUN" != 1 && "$found" == 0 ]]; then echo "nothing labelled $label, nor a network $network, in project $PROJECT"; fi
    echo "kept: the bucket ${BUCKET:-$PROJECT-funnelpulse-lake} (the lake, raw data, releases), the service accounts and their roles (terraform/'s long-lived part)"
    echo "Terraform's state still lists what was deleted: before the next deploy/up.sh, start from a clean state and import the kept parts (docs/deploy-gce.md, \"Lost Terraform state\")"
}
