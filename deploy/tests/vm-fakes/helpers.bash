# shellcheck shell=bash
# Shared by the VM tests (startup.bats, watchdog.bats, dataproc.bats): fake
# gcloud/systemctl/useradd/id on PATH that log their arguments to $FAKE_LOG,
# a fake bucket in $FAKE_GCS, and local HTTP servers on 127.0.0.1 standing in
# for the metadata server and the scheduler's REST API.

FAKES="$BATS_TEST_DIRNAME/vm-fakes"

setup_fakes() {
    export FAKE_LOG="$BATS_TEST_TMPDIR/calls.log"
    export FAKE_GCS="$BATS_TEST_TMPDIR/gcs"
    export FAKE_STATE="$BATS_TEST_TMPDIR/fake-state"
    export PATH="$FAKES/bin:$PATH"
    mkdir -p "$FAKE_GCS" "$FAKE_STATE"
    : >"$FAKE_LOG"
}

# Starts tests/deploy-fakes/http_files.py on a folder; prints the port. Usage: port="$(start_http NAME DIR [--require-header H:V])"
start_http() { # name, folder, server options…
    local name="$1" dir="$2" port_file="$BATS_TEST_TMPDIR/$1.port"
    shift 2
    mkdir -p "$dir"
    python3 "$FAKES/../../../tests/deploy-fakes/http_files.py" "$dir" "$port_file" "$@" >/dev/null 2>&1 &
    echo $! >"$BATS_TEST_TMPDIR/$name.pid"
    for _ in $(seq 200); do
        [[ -s "$port_file" ]] && break
        sleep 0.05
    done
    cat "$port_file"
}

stop_http() {
    local pid_file
    for pid_file in "$BATS_TEST_TMPDIR"/*.pid; do
        [[ -e "$pid_file" ]] || continue
        kill "$(cat "$pid_file")" 2>/dev/null || true
        rm -f "$pid_file"
    done
}

# A fake metadata server (requires Metadata-Flavor: Google). Sets GCE_METADATA_HOST and META (its folder).
start_metadata() {
    META="$BATS_TEST_TMPDIR/metadata/computeMetadata/v1/instance"
    mkdir -p "$META/attributes"
    GCE_METADATA_HOST="127.0.0.1:$(start_http metadata "$BATS_TEST_TMPDIR/metadata" --require-header Metadata-Flavor:Google)"
    export GCE_METADATA_HOST
}

attr() { # key, value: sets an instance attribute
    printf '%s' "$2" >"$META/attributes/$1"
}

# Puts a file into the fake bucket at a gs:// URL.
gcs_put() { # gs url, content
    local path="$FAKE_GCS/${1#gs://}"
    mkdir -p "$(dirname "$path")"
    printf '%s' "$2" >"$path"
}

# The fakes' calls, in order, one per line.
calls() { cat "$FAKE_LOG"; }

# Line number of the first call matching a pattern (0 if none).
call_index() {
    local line
    line="$(grep -n -m 1 -e "$1" "$FAKE_LOG" | cut -d: -f1)"
    echo "${line:-0}"
}
