# Sourced by the CLI test scripts (tests/cli/*.sh; this file's extension keeps it out of
# their glob): the advex binary from $1, a scratch directory $T removed on exit, Debian's
# python3 as $PY, and pass/fail counting.
#   check WHAT CMD...   counts CMD's success, prints "FAIL: WHAT" otherwise
#   finish              prints "N passed, N failed"; its status fails on any failure
#   wait_for FILE PATTERN PID   waits until FILE has a line matching PATTERN (an observable
#                       state, never a fixed sleep); fails when PID exits first or after 300 s
set -u
ADVEX=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
finish() { echo "$pass passed, $fail failed"; test "$fail" -eq 0; }
wait_for() {
    local file=$1 pattern=$2 pid=$3 i
    for i in $(seq 1 6000); do
        grep -q -- "$pattern" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { grep -q -- "$pattern" "$file" 2>/dev/null; return; }
        sleep 0.05
    done
    return 1
}
