#!/bin/bash
# Faults: a full disk (a 64 KiB tmpfs when we may mount one), unwritable or read-only
# output paths, SIGINT during long eval/attack runs, --max-memory, and non-finite
# weights. Each must give a clear error, the documented exit code and no output file
# (not even a partial or temporary one). Usage: faults.sh ADVEX SRCDIR
# Signals go out when the run shows it is under way (wait_for: a progress line, a checkpoint
# file), to work that cannot finish first, never after a fixed sleep.
SRC=$2
. "$(dirname "$0")/harness.bash"
mounts=""
cleanup() {
    for m in $mounts; do umount "$m" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
M="$SRC/tests/fixtures/onnx/small_torch.onnx"
skip=0
bad() { fail=$((fail+1)); echo "FAIL: $*"; sed 's/^/  stderr: /' "$T/stderr" 2>/dev/null | head -5; }
# no file at $1 and no temporary file of it beside it (only its own: a SIGKILL in the training
# section may leave a checkpoint's temporary behind, which nothing can clean up)
clean_dir() { [ ! -e "$1" ] && ! ls -a "$(dirname "$1")" | grep -qF "$(basename "$1").tmp"; }

# expect CODE PATTERN OUTFILE -- command...
expect() {
    local code=$1 pattern=$2 out=$3; shift 4
    "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$?
    if [ "$rc" -ne "$code" ]; then bad "exit $rc, want $code: $*"; return; fi
    if ! grep -q -- "$pattern" "$T/stderr"; then bad "stderr lacks '$pattern': $*"; return; fi
    if [ "$out" != - ] && ! clean_dir "$out"; then bad "output or temporary file left: $out"; ls -la "$(dirname "$out")"; return; fi
    ok
}

# small labelled data (npy) so runs are quick
$PY - "$T" <<'PYEOF' || { echo "FAIL: fixtures"; exit 1; }
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(0)
np.save(f"{t}/x.npy", rng.random((3000, 1, 28, 28), dtype=np.float32))
np.save(f"{t}/y.npy", (np.arange(3000) % 10).astype(np.int64))
PYEOF
D="npy:$T/x.npy,$T/y.npy"

# ---- full disk ---------------------------------------------------------------------------
mkdir -p "$T/full" "$T/ro"
if mount -t tmpfs -o size=64k tmpfs "$T/full" 2>/dev/null; then
    mounts="$T/full $mounts"
    # predict: 3000 x 10 logits = 120 KB > 64 KiB
    expect 1 "No space left on device" "$T/full/logits.npy" -- "$ADVEX" predict --model "$M" --data "$D" --out "$T/full/logits.npy"
    # attack: 200 adversarial images = 627 KB
    expect 1 "No space left on device" "$T/full/adv.npy" -- "$ADVEX" attack --model "$M" --data "$D" --limit 200 \
        --eps 0.1 --quiet --out "$T/full/adv.npy"
    # eval: fill the disk, then the JSON cannot be written
    dd if=/dev/zero of="$T/full/filler" bs=4k count=64 2>/dev/null
    expect 1 "No space left on device" "$T/full/r.json" -- "$ADVEX" eval --model "$M" --data "$D" --limit 20 \
        --eps 0,0.1 --quiet --json "$T/full/r.json"
    rm -f "$T/full/filler"
else
    skip=$((skip+3)); echo "skip: cannot mount a tmpfs (not root?): full-disk cases not run"
fi
if mount -t tmpfs -o ro,size=16k tmpfs "$T/ro" 2>/dev/null; then
    mounts="$T/ro $mounts"
    expect 1 "Read-only file system" "$T/ro/logits.npy" -- "$ADVEX" predict --model "$M" --data "$D" --limit 10 --out "$T/ro/logits.npy"
else
    skip=$((skip+1)); echo "skip: cannot mount a read-only tmpfs"
fi

# ---- unwritable paths ------------------------------------------------------------------------
touch "$T/afile"
expect 1 "No such file or directory" - -- "$ADVEX" predict --model "$M" --data "$D" --limit 10 --out "$T/nodir/l.npy"
expect 1 "Not a directory" - -- "$ADVEX" attack --model "$M" --data "$D" --limit 10 --eps 0.1 --quiet --out "$T/afile/adv.npy"
expect 1 "cannot write" - -- "$ADVEX" eval --model "$M" --data "$D" --limit 10 --eps 0.1 --quiet --json "$T/nodir/r.json"

# ---- SIGINT: stop cleanly, exit 130, no output -------------------------------------------------
sigint() { # name outfile -- command...   (the command prints progress lines to stderr)
    local name=$1 out=$2; shift 3
    "$@" >"$T/stdout" 2>"$T/stderr" &
    local pid=$! i rc
    if ! wait_for "$T/stderr" "^pgd.* [0-9]*/3000" "$pid"; then
        kill -KILL "$pid" 2>/dev/null; wait "$pid"; bad "$name: no progress line before SIGINT"; return
    fi
    kill -INT "$pid" 2>/dev/null
    for i in $(seq 1 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid"; bad "$name: still running 120 s after SIGINT"; return; fi
    wait "$pid"; rc=$?
    if [ "$rc" -ne 130 ]; then bad "$name: exit $rc after SIGINT, want 130"; return; fi
    grep -q "interrupted" "$T/stderr" || { bad "$name: no 'interrupted' message"; return; }
    clean_dir "$out" || { bad "$name: output or temporary file left after SIGINT"; return; }
    ok
}
# work that cannot end early: labelled with the model's own predictions, every example is
# classified correctly, and at eps 1e-6 PGD fools (almost) none, so each runs all its 300 steps
# (3000 examples, one per batch: a minute or more), while the first batch reports at once
"$ADVEX" predict --model "$M" --data "$D" --quiet --out "$T/logits.npy" >/dev/null &&
    $PY -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1]).argmax(1).astype(np.int64))" \
        "$T/logits.npy" "$T/ypred.npy" || { echo "FAIL: own-prediction labels"; exit 1; }
DP="npy:$T/x.npy,$T/ypred.npy"
sigint eval "$T/int.json" -- "$ADVEX" eval --model "$M" --data "$DP" --attack pgd --steps 300 --eps 1e-6 --batch 1 \
    --threads 1 --no-checks --json "$T/int.json"
sigint attack "$T/int.npy" -- "$ADVEX" attack --model "$M" --data "$DP" --attack pgd --steps 300 --eps 1e-6 --batch 1 \
    --threads 1 --out "$T/int.npy"

# ---- training: SIGKILL at any point resumes from the last checkpoint; SIGINT keeps it ----------------
if "$ADVEX" train --help 2>/dev/null | grep -q -- "--resume"; then
    TR="$ADVEX train --arch small --data $D --limit 1000 --epochs 4 --batch 50 --test-data none --threads 1"
    rm -f "$T/k.onnx"*
    kills=0
    # kill -9 mid-run, repeatedly, each time resuming: after the first progress line of the
    # resumed run, then after its n-th (later each round: training goes on between kills)
    for lines in 1 3 6 12; do
        $TR --out "$T/k.onnx" --resume >"$T/stdout" 2>"$T/stderr" &
        pid=$!
        wait_for "$T/stderr" "^train" "$pid"
        for i in $(seq 1 6000); do
            [ "$(grep -c '^train' "$T/stderr")" -ge "$lines" ] || ! kill -0 "$pid" 2>/dev/null && break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null && kills=$((kills+1))
        wait "$pid" 2>/dev/null
        if grep -q "checkpoint" "$T/stderr" && grep -qi "corrupt\|cannot read\|malformed" "$T/stderr"; then
            bad "checkpoint unreadable after SIGKILL"
        fi
    done
    if $TR --quiet --out "$T/k.onnx" --resume >"$T/stdout" 2>"$T/stderr" && "$ADVEX" info "$T/k.onnx" >/dev/null 2>>"$T/stderr"; then
        ok
    else
        bad "training did not resume to completion after $kills SIGKILLs"
    fi
    # SIGINT: exit 130, the last complete checkpoint stays, no model file
    rm -f "$T/k2.onnx"*
    $TR --quiet --epochs 50 --out "$T/k2.onnx" >"$T/stdout" 2>"$T/stderr" &
    pid=$!
    for i in $(seq 1 6000); do [ -e "$T/k2.onnx.ckpt" ] || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.05; done
    kill -INT "$pid"
    wait "$pid"; rc=$?
    if [ "$rc" -eq 130 ] && [ -s "$T/k2.onnx.ckpt" ] && [ ! -e "$T/k2.onnx" ]; then ok; else bad "train SIGINT: exit $rc"; fi
    # and the kept checkpoint resumes
    $TR --epochs 50 --out "$T/k2.onnx" --resume >/dev/null 2>"$T/stderr" &
    pid=$!
    wait_for "$T/stderr" "^train" "$pid"
    kill -INT "$pid"; wait "$pid"; rc=$?
    if [ "$rc" -eq 130 ] && grep -q "resum" "$T/stderr" && [ ! -e "$T/k2.onnx" ]; then ok; else bad "train resume after SIGINT: exit $rc"; fi
else
    skip=$((skip+3)); echo "skip: advex train has no --resume"
fi

# ---- --max-memory ------------------------------------------------------------------------------
expect 1 "memory limit" "$T/m.json" -- "$ADVEX" eval --model "$M" --data "$D" --limit 300 --eps 0.1 --quiet \
    --max-memory 4M --json "$T/m.json"
expect 1 "memory limit" - -- "$ADVEX" info "$M" --max-memory 100K
expect 2 "max-memory" - -- "$ADVEX" eval --model "$M" --data "$D" --max-memory 0
expect 2 "max-memory" - -- "$ADVEX" predict --model "$M" --data "$D" --max-memory lots --out "$T/p.npy"
expect 2 "needs a value" - -- "$ADVEX" info "$M" --max-memory
"$ADVEX" eval --model "$M" --data "$D" --limit 20 --eps 0.1 --quiet --max-memory=64M >/dev/null 2>"$T/stderr" && ok ||
    bad "eval under a 64M cap"

# ---- non-finite weights in a model file ----------------------------------------------------------
if $PY - "$M" "$T/nan.onnx" <<'PYEOF' >/dev/null 2>&1
import sys, numpy as np, onnx
from onnx import numpy_helper as nh
m = onnx.load(sys.argv[1])
init = m.graph.initializer[0]
a = nh.to_array(init).copy()
a.flat[5] = np.inf
init.CopyFrom(nh.from_array(a, init.name))
onnx.save(m, sys.argv[2])
print(init.name)
PYEOF
then
    expect 1 "element 5 is +Inf" - -- "$ADVEX" info "$T/nan.onnx"
else
    skip=$((skip+1)); echo "skip: python3-onnx not available for the non-finite weight case"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
