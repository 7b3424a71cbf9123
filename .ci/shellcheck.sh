#!/usr/bin/env bash
# Runs ShellCheck on every shell script of the repository, and nothing else:
# *.sh, *.bash, the bats tests, .ci/run, and the extension-less files with a
# shell shebang (the fakes). Markdown, TSV and Python files under deploy/ are
# not shell: given to shellcheck they only yield parse errors.
#   bash .ci/shellcheck.sh        (run by .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
{
    git ls-files '*.sh' '*.bash' '*.bats' .ci/run
    git ls-files | grep -v '\.' | while read -r file; do
        if head -n 1 "$file" | grep -qE '^#!.*\b(ba)?sh\b'; then echo "$file"; fi
    done
} | xargs shellcheck -x
