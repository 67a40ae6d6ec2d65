#!/bin/sh
# The portable build's promise, checked on the compiled objects (x86-64, ADVEX_NATIVE off):
# nothing outside the dispatched kernel variants uses AVX (VEX- or EVEX-encoded
# instructions), so the library and CLI run on any x86-64 CPU; and the avx2 variant has no
# AVX-512 (EVEX) instruction, so valgrind (which lacks AVX-512) can run it. A -march=native
# build, or a flag leaking into a baseline file, fails here instead of as SIGILL elsewhere.
# Usage: portable_objects.sh "BASELINE_OBJECTS" "AVX2_OBJECTS" (each a ';'-separated list,
# as CMake's $<TARGET_OBJECTS:...> expands). Exit 77 (skipped) without objdump.
set -eu
command -v objdump >/dev/null || { echo "portable_objects: objdump not found: skipped"; exit 77; }
fail=0
# check WHAT PATTERN OBJECTS: PATTERN (an ERE) against the first opcode bytes of every
# instruction (after an optional segment or address-size prefix)
check() {
    what=$1 pat=$2 n=0 bad=0
    old_ifs=$IFS; IFS=';'; set -- $3; IFS=$old_ifs
    for o in "$@"; do
        [ -n "$o" ] || continue
        n=$((n + 1))
        hits=$(objdump -d "$o" | awk -F'\t' -v pat="$pat" 'NF >= 3 { b = $2; sub(/^((64|65|67) )+/, "", b); if (b ~ pat) print }' |
               head -3)
        if [ -n "$hits" ]; then
            echo "FAIL: $what: $o:"
            echo "$hits"
            bad=$((bad + 1))
        fi
    done
    echo "$what: $n objects, $bad with such instructions"
    [ "$n" -gt 0 ] && [ "$bad" -eq 0 ] || fail=1
}
check "baseline objects without AVX (VEX c4/c5, EVEX 62)" '^(c4|c5|62) ' "$1"
check "avx2 variant without AVX-512 (EVEX 62)" '^62 ' "$2"
[ "$fail" -eq 0 ] && echo "portable_objects: ok"
exit "$fail"
