#!/usr/bin/env bash
# `make test`, arranged so that both cores of a small machine stay busy: what waits on the
# disk, the network or a browser, or uses one core, runs alongside what uses two, and its
# output is printed when it ends. Stops after a failing lint or unit run, like make would.
#   alongside the pinned environment's install and the unit tests:
#       the Colab-like environment's install; the dependency check (package index)
#   after the unit tests, all at once: nbval (make notebooks), make compat, make book test-html
set -u
cd "$(dirname "$0")/.."
MAKE="${MAKE:-make} --no-print-directory"
logs=$(mktemp -d)
trap 'rm -rf "$logs"; kill $(jobs -p) 2>/dev/null' EXIT
declare -A pid

alongside() {  # alongside NAME COMMAND...: run it in the background, its output to a log
    local name=$1; shift
    "$@" >"$logs/$name" 2>&1 &
    pid[$name]=$!
}

report() {  # report NAME: wait for it, print its output; fails when it failed
    local rc=0
    wait "${pid[$1]}" || rc=$?
    echo "--- make $1 (ran alongside; exit status $rc) ---"
    cat "$logs/$1"
    return $rc
}

alongside .venv-compat $MAKE .venv-compat/.installed
$MAKE lint || exit 1
alongside deps .venv/bin/python tests/check_deps.py
status=0
$MAKE unit || status=1
report .venv-compat || status=1
if [ $status -eq 0 ]; then
    alongside compat $MAKE compat
    alongside "book test-html" $MAKE book test-html
    $MAKE notebooks || status=1
    report compat || status=1
    report "book test-html" || status=1
fi
report deps || status=1
exit $status
