#!/bin/sh
# One command: install dependencies, build, and run every test (ctest); then the hardening
# stages: the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan), a valgrind memcheck of a CLI end to end, and each libFuzzer target for a
# bounded time. Prints every ctest summary and a table of stages with their times; exits
# non-zero if any stage failed. CI (.ci/run) calls exactly this.
#   ADVEX_CI_STAGES  stages to run (default: "test nompi asan valgrind fuzz"; nompi builds the
#                    CLI with -DADVEX_MPI=OFF, the one-process scale-out layer, and runs it)
#   FUZZ_SECONDS     seconds per fuzz target (default: 45; scripts/fuzz.sh runs them 2 at a time)
#   arguments        passed to the first ctest (e.g. -R test_data)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
stages=${ADVEX_CI_STAGES:-"test nompi asan valgrind fuzz"}
build=${BUILD_DIR:-"$here/build"}
jobs=$(nproc)
t_start=$(date +%s)
status=0
report=""

stage_test() {
    "$here/scripts/build.sh" && (cd "$build" && ctest --output-on-failure -j"$jobs" "$@")
}
stage_nompi() {
    # the CLI without MPI (cli/dist_local.c): builds, runs, and tests/cli/mpi.sh skips
    b="$here/build-nompi"
    cmake -S "$here" -B "$b" -DCMAKE_BUILD_TYPE=Release -DADVEX_MPI=OFF >/dev/null &&
        cmake --build "$b" --target advex -j"$jobs" &&
        ! ldd "$b/advex" | grep -q libmpi &&
        "$b/advex" eval --model "$here/tests/fixtures/attacks/small_pgd.onnx" --limit 50 --attack pgd --eps 0.1 \
            --steps 3 --quiet >/dev/null &&
        bash "$here/tests/cli/mpi.sh" "$b/advex" "$here"
}
stage_asan() {
    # allocator_may_return_null: hostile-file tests ask for absurd sizes and expect NULL
    BUILD_DIR="$here/build-asan" "$here/scripts/build.sh" -DADVEX_SANITIZE=ON &&
        (cd "$here/build-asan" &&
         ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1 \
         UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
         ctest --output-on-failure -j"$jobs")
}
stage_valgrind() {
    [ -x "$build/advex" ] || "$here/scripts/build.sh"
    "$here/scripts/valgrind.sh" "$build/advex"
}
stage_fuzz() {
    FUZZ_JOBS=${FUZZ_JOBS:-2} "$here/scripts/fuzz.sh" "${FUZZ_SECONDS:-45}"
}

for s in $stages; do
    echo "==== stage: $s"
    t0=$(date +%s)
    if [ "$s" = test ]; then stage_test "$@" && r=ok || r=FAILED
    else "stage_$s" && r=ok || r=FAILED; fi
    [ "$r" = ok ] || status=1
    report="$report$(printf '  %-9s %-7s %5s s' "$s" "$r" "$(( $(date +%s) - t0 ))")
"
done
echo "==== summary"
printf '%s' "$report"
echo "  total     $( [ $status -eq 0 ] && echo ok || echo FAILED )  $(( $(date +%s) - t_start )) s"
exit $status
