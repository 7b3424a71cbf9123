# Assertions shared by the bats tests.
#
# `! cmd` does not fail a bats test unless it is the test's last command:
# bash's errexit ignores a negated command. `refute cmd …` fails the test
# when the command succeeds, wherever it stands.
refute() {
    if "$@"; then
        echo "expected to fail, but it succeeded: $*" >&2
        return 1
    fi
}
