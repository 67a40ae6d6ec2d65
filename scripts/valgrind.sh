#!/bin/sh
# Valgrind memcheck of a small CLI end to end: train -> info -> predict -> attack -> eval
# (ONNX save/load, data loading, FGSM/PGD/DeepFool, JSON, .npy, eval state and per-example
# output, a resume and a refused state; a target behind an exec: program with a state) on a
# Fashion-MNIST
# subset. Fails on any memcheck error or any definite/indirect leak.
# Valgrind 3.19 executes AVX2 but not AVX-512 and reports a CPU without it, so the kernel
# dispatch (src/ops/dispatch.h) picks the avx2 variant under valgrind by itself; set
# ADVEX_ISA=generic to check the generic kernels instead. A -DADVEX_NATIVE=ON build on an
# AVX-512 host cannot run under valgrind (SIGILL).
# Usage: scripts/valgrind.sh [ADVEX binary] (default: build/advex)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
advex=${1:-"$here/build/advex"}
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-fds=no --num-callers=30"
# a small IDX data set (16 images 28x28, labels 0..9) so memcheck time goes to advex itself
n_img=16
cnt="\\$(printf %o $n_img)"   # the count fits the last header byte
{ printf '\000\000\010\003\000\000\000'; printf "$cnt"; printf '\000\000\000\034\000\000\000\034'
  head -c $((n_img * 784)) /dev/urandom; } >"$T/images.idx"
{ printf '\000\000\010\001\000\000\000'; printf "$cnt"
  i=0; while [ $i -lt $n_img ]; do printf "\\$(printf %o $((i % 10)))"; i=$((i + 1)); done; } >"$T/labels.idx"
D="idx:$T/images.idx,$T/labels.idx"
n=0
run() { # name want_exit_code -- command...
    name=$1; want=$2; shift 3
    n=$((n + 1))
    t0=$(date +%s)
    rc=0
    $VG "$@" >"$T/out" 2>"$T/err" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "valgrind.sh: FAIL: $name (exit $rc, want $want; 99 = memcheck error or leak)" >&2
        cat "$T/err" >&2
        exit 1
    fi
    echo "valgrind.sh: $name: clean ($(( $(date +%s) - t0 )) s)"
}
echo "valgrind.sh: $($VG "$advex" --version 2>&1 | head -1)${ADVEX_ISA:+ (ADVEX_ISA=$ADVEX_ISA)}"
run train 0 -- "$advex" train --arch small --data "$D" --epochs 1 --batch 8 --test-data none --threads 1 --quiet --out "$T/m.onnx"
run info 0 -- "$advex" info "$T/m.onnx"
run predict 0 -- "$advex" predict --model "$T/m.onnx" --data "$D" --threads 1 --out "$T/logits.npy"
run attack 0 -- "$advex" attack --model "$T/m.onnx" --data "$D" --attack pgd --steps 2 --eps 0.1 --threads 1 \
    --quiet --out "$T/adv.npy"
run eval 0 -- "$advex" eval --model "$T/m.onnx" --data "$D" --attack fgsm,square --queries 10 --eps 0,0.1 \
    --threads 1 --quiet --json "$T/r.json"
run "eval --state, --per-example, a curve" 0 -- "$advex" eval --model "$T/m.onnx" --data "$D" --attack fgsm,deepfool \
    --steps 2 --eps 0.1 --batch 4 --threads 1 --no-checks --quiet --state "$T/s.state" --per-example "$T/pe.jsonl" \
    --json "$T/r2.json"
run "eval resumed from a complete state" 0 -- "$advex" eval --model "$T/m.onnx" --data "$D" --attack fgsm,deepfool \
    --steps 2 --eps 0.1 --batch 4 --threads 1 --no-checks --quiet --state "$T/s.state"
head -c 200 "$T/s.state" >"$T/cut.state"
run "eval refusing a truncated state" 1 -- "$advex" eval --model "$T/m.onnx" --data "$D" --attack fgsm,deepfool \
    --steps 2 --eps 0.1 --batch 4 --threads 1 --no-checks --quiet --state "$T/cut.state"
# a model behind an exec: program (the program itself runs outside valgrind: no --trace-children)
PROG="$here/tests/fixtures/target/linear_exec.py"
run "eval --target exec:, --state, --per-example" 0 -- "$advex" eval --target "exec:/usr/bin/python3 $PROG" --data "$D" \
    --attack square,simba --queries 12 --eps 0.1 --batch 4 --quiet --state "$T/t.state" --per-example "$T/tpe.jsonl" \
    --json "$T/t.json"
run "eval --target resumed from a complete state" 0 -- "$advex" eval --target "exec:/usr/bin/python3 $PROG" --data "$D" \
    --attack square,simba --queries 12 --eps 0.1 --batch 4 --quiet --state "$T/t.state"
run "error path" 1 -- "$advex" eval --model "$T/m.onnx" --data "npy:$T/adv.npy,$T/missing.npy" --eps 0.1 --quiet
echo "valgrind.sh: $n runs, no memcheck errors, no definite or indirect leaks"
