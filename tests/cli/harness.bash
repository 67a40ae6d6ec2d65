# Sourced by the CLI test scripts (tests/cli/*.sh; this file's extension keeps it out of
# their glob): the advex binary from $1, a scratch directory $T removed on exit, Debian's
# python3 as $PY, and pass/fail counting.
#   check WHAT CMD...   counts CMD's success, prints "FAIL: WHAT" otherwise
#   finish              prints "N passed, N failed"; its status fails on any failure
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
