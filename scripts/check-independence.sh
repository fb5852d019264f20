#!/usr/bin/env bash
# The test suite's independence from the machine it runs on (`make test-independence`; not part of
# `make test`): the suite passes twice in a row on one machine, the second time after the first left its
# normal state and after a used machine's state was put in place (scripts/used_machine.py: auto images for
# pickles needing torch, idle pre-started sandboxes, a kept container, a filled run history); and that state
# is still all there afterwards (the tests touched nothing of the user's). What was put is removed at the end,
# whatever happened. USED_MACHINE passes options to `used_machine.py put` (e.g. "--real-torch", "--pad-mb 4500");
# SUITE is the suite's command (default: make test, what CI runs).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=.venv/bin/python
work=$(mktemp -d /tmp/numerai-sandbox-independence-XXXXXX)
state="$work/used-machine.json"
results=()

suite() {  # suite NAME: one run of the suite, its outcome and time recorded
    local started=$(date +%s) outcome=passed
    echo "== independence: $1: ${SUITE:-make test}"
    ${SUITE:-make test} || outcome=FAILED
    results+=("$1: $outcome in $(( $(date +%s) - started ))s")
    [ "$outcome" = passed ]
}

put_away() {
    [ -f "$state" ] && $PYTHON scripts/used_machine.py --state "$state" remove
    rm -rf "$work"
}
trap put_away EXIT

status=0
suite "first run" || status=1
echo "== independence: putting a used machine's state in place"
# shellcheck disable=SC2086 # USED_MACHINE is a list of options
$PYTHON scripts/used_machine.py --state "$state" put ${USED_MACHINE:-} || { echo "could not put the state"; exit 1; }
suite "second run, on a used machine" || status=1
echo "== independence: is the used machine's state still there?"
if $PYTHON scripts/used_machine.py --state "$state" check; then
    results+=("the user's state: intact")
else
    results+=("the user's state: DAMAGED by the tests")
    status=1
fi
printf '%s\n' "${results[@]}"
exit $status
