# shellcheck shell=bash
# Reporting for the suites under .ci/suites: each case prints `ok NAME` or
# `not ok NAME` with its output indented, and the suite ends with the line
# `N passed, M failed` that .ci/run sums. The suite sets WORK (a folder) and
# PASSED=0 FAILED=0 before the first case.

# Runs one case in a background subshell (so that `set -e` applies inside it),
# prints its output indented, then `ok NAME` or `not ok NAME`.
check() {
    local name="$1" rc=0
    shift
    ("$@") >"$WORK/case.log" 2>&1 &
    wait "$!" || rc=$?
    sed 's/^/    /' "$WORK/case.log"
    if [[ "$rc" == 0 ]]; then
        echo "ok $name"
        PASSED=$((PASSED + 1))
    else
        echo "not ok $name"
        FAILED=$((FAILED + 1))
    fi
}

# The suite's last line; fails when a case failed.
finish() {
    echo "$PASSED passed, $FAILED failed"
    [[ "$FAILED" == 0 ]]
}
