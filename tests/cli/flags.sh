#!/bin/bash
# Flags every command takes (--help, --quiet, --threads, --max-memory), and data splits:
# `train` reads a bare named set as its training split and refuses to report a "test
# accuracy" on its own training examples. Usage: flags.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
M="$SRC/tests/fixtures/onnx/small_torch.onnx"
$PY - "$T" <<'PYEOF' || { echo "FAIL: fixtures"; exit 1; }
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(0)
np.save(f"{t}/x.npy", rng.random((8, 1, 28, 28), dtype=np.float32))
np.save(f"{t}/y.npy", (np.arange(8) % 10).astype(np.int64))
PYEOF
D="npy:$T/x.npy,$T/y.npy"

# --help of every command exits 0 and lists the common flags
for c in demo train attack eval predict info png bench data; do
    "$ADVEX" $c --help >"$T/h.out" 2>"$T/h.err"
    check "$c --help: exit 0" test $? -eq 0
    for fl in --quiet --threads --max-memory --help; do
        check "$c --help lists $fl" grep -q -- "$fl" "$T/h.out"
    done
    # a bad --threads value: exit 2, one line naming the flag
    "$ADVEX" $c --threads -1 >"$T/t.out" 2>"$T/t.err"
    rc=$?
    check "$c --threads -1: exit 2 (got $rc)" test $rc -eq 2
    check "$c --threads -1: names the flag ($(cat "$T/t.err"))" grep -q -- "--threads" "$T/t.err"
    "$ADVEX" $c --quiet=1 >/dev/null 2>"$T/q.err"
    check "$c --quiet=1: exit 2" test $? -eq 2
done

# every command that reads data takes --resize and --crop
for c in train attack eval predict data; do
    "$ADVEX" $c --help >"$T/h.out" 2>&1
    check "$c --help lists --resize and --crop" grep -q -- "--resize S" "$T/h.out"
    check "$c --help lists --crop" grep -q -- "--crop C" "$T/h.out"
done

# --quiet and --threads are accepted (and honoured) by every command that does work
run() { # what -- command...   (success, nothing on stderr)
    local what=$1; shift 2
    "$@" >"$T/r.out" 2>"$T/r.err"
    local rc=$?
    check "$what: exit 0 (got $rc: $(head -c 300 "$T/r.err"))" test $rc -eq 0
    check "$what: quiet stderr ($(head -c 300 "$T/r.err"))" test ! -s "$T/r.err"
}
run predict -- "$ADVEX" predict --model "$M" --data "$D" --out "$T/l.npy" --quiet --threads 1
check "predict --quiet: results stay, status line goes" bash -c "grep -q accuracy '$T/r.out' && ! grep -q wrote '$T/r.out'"
run info -- "$ADVEX" info "$M" --quiet --threads 2
run png -- "$ADVEX" png --npy "$T/x.npy" --out "$T/g.png" --quiet --threads 1
run attack -- "$ADVEX" attack --model "$M" --data "$D" --eps 0.1 --out "$T/a.npy" --quiet --threads 1
run eval -- "$ADVEX" eval --model "$M" --data "$D" --eps 0.1 --quiet --threads 1 --no-checks
run bench -- "$ADVEX" bench --arch small --batch 2 --reps 1 --min-time 0 --quiet --threads 1
run train -- "$ADVEX" train --arch small --data "$D" --epochs 1 --batch 4 --test-data none --out "$T/t.onnx" --quiet --threads 1
# demo parses both, then fails on the data directory (not on a flag): exit 1
"$ADVEX" demo --quiet --threads 1 --data-dir "$T/nowhere" --cache "$T/cache" >/dev/null 2>"$T/d.err"
rc=$?
check "demo --quiet --threads: exit 1 on the missing data (got $rc)" test $rc -eq 1
check "demo: the error is the data's ($(cat "$T/d.err"))" grep -q "nowhere" "$T/d.err"

# ---- data splits -------------------------------------------------------------------------------
if [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    unset ADVEX_DATA
    TR="$ADVEX train --arch small --epochs 1 --batch 50 --threads 1 --quiet"
    # a bare name trains on the training split: judged on that split, all 200 are "seen"
    $TR --data fashion-mnist --limit 200 --test-data fashion-mnist:train --out "$T/s1.onnx" >"$T/s.out" 2>"$T/s.err"
    check "bare name trains on the train split (warning: $(cat "$T/s.err"))" \
        grep -q "200 of the 60000 test examples (0.3%) of fashion-mnist:train are also in the training data" "$T/s.err"
    # ... and is tested on the test split by default, with no overlap
    $TR --data fashion-mnist --limit 200 --out "$T/s2.onnx" >"$T/s.out" 2>"$T/s.err"
    check "default test data: the test split ($(cat "$T/s.out"))" grep -q "on fashion-mnist:test" "$T/s.out"
    check "default test data: no overlap warning" test ! -s "$T/s.err"
    # training on the test split with the test split as test data: refused, exit 2, no model
    $TR --data fashion-mnist:test --out "$T/s3.onnx" >"$T/s.out" 2>"$T/s.err"
    rc=$?
    check "train on the test data: exit 2 (got $rc)" test $rc -eq 2
    check "train on the test data: says why ($(cat "$T/s.err"))" \
        grep -q -- "--test-data fashion-mnist:test: all 10000 test examples are also in the training data" "$T/s.err"
    check "train on the test data: no model" test ! -e "$T/s3.onnx"
    # eval/predict: a bare name is the test split
    "$ADVEX" predict --model "$M" --data fashion-mnist --limit 5 --out "$T/p.npy" --quiet >"$T/p.out" 2>&1
    "$ADVEX" predict --model "$M" --data fashion-mnist:test --limit 5 --out "$T/p2.npy" --quiet >/dev/null 2>&1
    check "predict: bare name = test split" cmp -s "$T/p.npy" "$T/p2.npy"
else
    echo "FAIL: Fashion-MNIST is not installed (dataset-fashion-mnist)"; fail=$((fail+1))
fi
finish
