#!/bin/bash
# CLI error handling: every bad input gives one clear line on stderr naming the file or
# flag, the documented exit code, and no output file. Usage: errors.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"

# expect CODE PATTERN OUTFILE -- command...
expect() {
    local code=$1 pattern=$2 out=$3; shift 4
    "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$?
    local ok=1
    [ "$rc" -eq "$code" ] || { ok=0; echo "  exit code $rc, want $code"; }
    grep -q -- "$pattern" "$T/stderr" || { ok=0; echo "  stderr lacks '$pattern'"; }
    [ "$(wc -l <"$T/stderr")" -le 2 ] || { ok=0; echo "  stderr has more than 2 lines"; }
    if [ -n "$out" ] && [ "$out" != - ]; then
        [ ! -e "$out" ] || { ok=0; echo "  output file $out exists"; }
        ls "$(dirname "$out")" | grep -q '\.tmp' && { ok=0; echo "  temporary file left behind"; }
    fi
    if [ $ok -eq 1 ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $*"; sed 's/^/  stderr: /' "$T/stderr"; fi
}

# fixtures: a tiny model trained on 200 images, data files good and bad
$PY - "$T" <<'PYEOF'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((20, 1, 28, 28), dtype=np.float32)
y = (np.arange(20) % 10).astype(np.int64)
np.save(f"{t}/x.npy", x); np.save(f"{t}/y.npy", y)
np.save(f"{t}/y19.npy", y[:19])
np.save(f"{t}/x_f64c.npy", x.astype(np.complex64))
np.save(f"{t}/x32.npy", rng.random((20, 1, 32, 32), dtype=np.float32))
xn = x.copy(); xn[3, 0, 5, 5] = np.nan; np.save(f"{t}/x_nan.npy", xn)
open(f"{t}/bad.gz", "wb").write(b"\x00\x00\x08\x09" + bytes(100))
open(f"{t}/garbage.onnx", "wb").write(rng.bytes(3000))
PYEOF
"$ADVEX" train --arch small --data npy:$T/x.npy,$T/y.npy --epochs 1 --batch 10 --out "$T/m.onnx" --quiet >/dev/null 2>&1 \
    || { echo "FAIL: could not train the fixture model"; echo "0 passed, 1 failed"; exit 1; }
D="npy:$T/x.npy,$T/y.npy"
O="$T/out/adv.npy"; mkdir -p "$T/out"

expect 2 "unknown flag '--bogus'" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps 0.1 --out "$O" --bogus
expect 2 "unknown command" - -- "$ADVEX" frobnicate
expect 1 "missing.onnx" "$O" -- "$ADVEX" attack --model "$T/missing.onnx" --data "$D" --eps 0.1 --out "$O"
expect 1 "garbage.onnx" "$O" -- "$ADVEX" attack --model "$T/garbage.onnx" --data "$D" --eps 0.1 --out "$O"
expect 1 "bad.gz" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "idx:$T/bad.gz,$T/bad.gz" --eps 0.1 --out "$O"
expect 1 "nofile.gz" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "idx:$T/nofile.gz,$T/bad.gz" --eps 0.1 --out "$O"
expect 1 "count mismatch" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "npy:$T/x.npy,$T/y19.npy" --eps 0.1 --out "$O"
expect 1 "x_f64c.npy" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "npy:$T/x_f64c.npy,$T/y.npy" --eps 0.1 --out "$O"
expect 1 "x_nan.npy" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "npy:$T/x_nan.npy,$T/y.npy" --eps 0.1 --out "$O"
expect 1 "expects 1x28x28" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "npy:$T/x32.npy,$T/y.npy" --eps 0.1 --out "$O"
expect 2 "\-\-eps" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps -0.1 --out "$O"
expect 2 "\-\-eps" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps nan --out "$O"
expect 2 "\-\-eps" "$O" -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --eps 0.1,abc
expect 2 "unknown attack 'pgdz'" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --attack pgdz --eps 0.1 --out "$O"
expect 2 "\-\-target" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps 0.1 --target 12 --out "$O"
expect 2 "unknown data source" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "mnist-foo" --eps 0.1 --out "$O"
expect 1 "cannot write" - -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps 0.1 --out "$T/nodir/adv.npy"
expect 2 "needs a value" - -- "$ADVEX" eval --model "$T/m.onnx" --eps
expect 2 "\-\-limit" - -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --limit -5
expect 1 "cannot write" - -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --json "$T/nodir/r.json"
expect 2 "\-\-schedule" "$T/out/m2.onnx" -- "$ADVEX" train --arch small --data "$D" --schedule linear --out "$T/out/m2.onnx"
expect 2 "unknown norm 'l3'" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --attack pgd --norm l3 --eps 0.1 --out "$O"
expect 2 "\-\-steps" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --attack pgd --steps 0 --eps 0.1 --out "$O"
expect 2 "unknown attack 'pgdz'" - -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --attack fgsm,pgdz --eps 0.1
expect 1 "nosur.onnx" "$O" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --surrogate "$T/nosur.onnx" --eps 0.1 --out "$O"
expect 2 "unknown architecture 'huge'" "$T/out/m2.onnx" -- "$ADVEX" train --arch huge --data "$D" --out "$T/out/m2.onnx"

# the good path writes its outputs
"$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps 0.1 --out "$O" --quiet >"$T/stdout" 2>&1
if [ $? -eq 0 ] && [ -s "$O" ] && grep -q "adversarial accuracy" "$T/stdout"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: good attack"; cat "$T/stdout"; fi
"$ADVEX" eval --model "$T/m.onnx" --data "$D" --eps 0,0.1 --json "$T/out/r.json" --quiet >"$T/stdout" 2>&1
if [ $? -eq 0 ] && $PY -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['n']==20 and len(j['results'])==2 and {'attack','eps','robust_accuracy','success_rate','seconds'} <= set(j['results'][0])" "$T/out/r.json"; then
    pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: eval json"; cat "$T/stdout"; fi
"$ADVEX" eval --model "$T/m.onnx" --data "$D" --attack fgsm,pgd,standard --queries 50 --steps 5 --eps 0.05,0.1 --json "$T/out/r2.json" --quiet >"$T/stdout" 2>&1
if [ $? -eq 0 ] && $PY -c "import json,sys; j=json.load(open(sys.argv[1])); r=j['results']; assert len(r)==6 and [e['attack'] for e in r]==['fgsm']*2+['pgd']*2+['standard']*2 and len(r[4]['stages'])==4" "$T/out/r2.json"; then
    pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: eval with several attacks"; cat "$T/stdout"; fi
for c in "" train attack eval predict info demo; do
    "$ADVEX" $c --help >"$T/stdout" 2>&1
    if [ $? -eq 0 ] && grep -q "usage" "$T/stdout"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: advex $c --help"; fi
done
finish
