#!/bin/bash
# The kernel variant (src/ops/dispatch.h) is named by `advex --version` and `advex bench`,
# and the environment variable ADVEX_ISA caps it: generic always works, an unknown name is
# ignored, and the variant never exceeds what the CPU runs (the default picks the best).
# Usage: isa.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"

isa_of() { "$@" --version | sed -n 's/^advex .* (kernels: \([a-z0-9]*\))$/\1/p'; }
best=$(isa_of env -u ADVEX_ISA "$ADVEX")
check "--version names a variant ('$best')" test -n "$best"
if [ "$best" = native ]; then # a -DADVEX_NATIVE=ON build has one variant; ADVEX_ISA changes nothing
    check "native build ignores ADVEX_ISA" test "$(isa_of env ADVEX_ISA=generic "$ADVEX")" = native
else
    check "ADVEX_ISA=generic" test "$(isa_of env ADVEX_ISA=generic "$ADVEX")" = generic
    check "unknown ADVEX_ISA is ignored" test "$(isa_of env ADVEX_ISA=sse9 "$ADVEX")" = "$best"
    got=$(isa_of env ADVEX_ISA=avx2 "$ADVEX")
    case $best in
    generic) want=generic ;;
    *) want=avx2 ;;
    esac
    check "ADVEX_ISA=avx2 gives $want (got $got)" test "$got" = "$want"
    check "ADVEX_ISA=avx512 gives the best ($best)" test "$(isa_of env ADVEX_ISA=avx512 "$ADVEX")" = "$best"
fi
ADVEX_ISA=generic "$ADVEX" bench --arch small --batch 4 --threads 1 --reps 1 --min-time 0 --json >"$T/b.json" 2>&1
check "bench --json names the variant" grep -Eq '"isa": *"(generic|native)"' "$T/b.json"
ADVEX_ISA=generic "$ADVEX" bench --arch small --batch 4 --threads 1 --reps 1 --min-time 0 >"$T/b.txt" 2>&1
check "bench text names the variant" grep -Eq ', (generic|native) kernels: ' "$T/b.txt"
finish
