#!/bin/sh
# Build the libFuzzer targets (clang, ASan + UBSan, -DADVEX_FUZZ=ON) into build-fuzz and run
# each for a bounded time: scripts/fuzz.sh [seconds per target] [target ...]
# Targets: onnx npy idx cli jpeg cifar state v2json (+ png when src/data/png.c exists). Each starts from the seed
# corpus in fuzz/corpus/<target> (copied; new inputs stay in build-fuzz/corpus/<target>).
# Up to FUZZ_JOBS targets (default: the core count) run at once. Prints executions per
# target; exits non-zero if any target crashed, leaked or timed out, naming the
# reproducer: copy it into fuzz/regressions/<target>/ (replayed by ctest) and fix the bug.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD_DIR:-"$here/build-fuzz"}
jobs=${FUZZ_JOBS:-$(nproc)}
targets="$*"
if [ -z "$targets" ]; then
    targets="onnx npy idx cli jpeg cifar state v2json"
    [ -f "$here/src/data/png.c" ] && targets="$targets png"
fi
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found (install clang and libclang-rt-14-dev)" >&2; exit 1; }
cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="$CC" -DADVEX_FUZZ=ON -DADVEX_NATIVE=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
t0=$(date +%s)
build_targets=""
for t in $targets; do build_targets="$build_targets --target fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" $build_targets >"$build/fuzz-build.log" 2>&1 ||
    { tail -40 "$build/fuzz-build.log"; echo "fuzz.sh: build failed" >&2; exit 1; }
echo "fuzz.sh: built $targets in $(( $(date +%s) - t0 )) s; running each for $secs s, $jobs at a time"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
run_one() { # target
    t=$1
    mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
    cp -n "$here/fuzz/corpus/$t/"* "$build/corpus/$t/" 2>/dev/null || true
    rc=0
    "$build/fuzz_$t" "$build/corpus/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 \
        -max_len=131072 -close_fd_mask=3 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t/" >"$build/fuzz-$t.log" 2>&1 || rc=$?
    echo "$rc" >"$build/fuzz-$t.rc"
}
rm -f "$build"/fuzz-*.rc "$build/fuzz-executions.txt"
running=0
for t in $targets; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait; running=0; fi
done
wait

fail=0
printf '%-6s %12s %8s %8s  %s\n' target executions seconds corpus result
for t in $targets; do
    log="$build/fuzz-$t.log"
    rc=$(cat "$build/fuzz-$t.rc" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    ncorp=$(ls "$build/corpus/$t" | wc -l)
    if [ "$rc" -eq 0 ]; then res=ok; else
        res="FAILED (rc $rc): $(ls "$build/artifacts/$t" | head -1)"
        fail=1
    fi
    printf '%-6s %12s %8s %8s  %s\n' "$t" "${runs:-?}" "${took:-$secs}" "$ncorp" "$res"
    echo "$t ${runs:-0}" >>"$build/fuzz-executions.txt"
done
if [ "$fail" -ne 0 ]; then
    for t in $targets; do
        [ "$(cat "$build/fuzz-$t.rc" 2>/dev/null || echo 1)" -eq 0 ] && continue
        echo "---- fuzz_$t (log $build/fuzz-$t.log) ----"
        grep -m1 -A30 'ERROR\|runtime error\|Deadly\|timeout' "$build/fuzz-$t.log" || tail -30 "$build/fuzz-$t.log"
        for a in "$build/artifacts/$t/"*; do
            [ -f "$a" ] && echo "reproducer: $a  (copy into fuzz/regressions/$t/ and fix)"
        done
    done
    exit 1
fi
