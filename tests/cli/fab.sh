#!/bin/bash
# FAB and AutoAttack's versions on the command line: `attack --attack fab|fab-t` in each norm
# (L1 included) returns perturbations within eps in [0,1] and reports their norm; `eval
# --attack standard` lists AutoAttack's four stages in its order (APGD-CE, APGD-T, FAB-T,
# Square) and `--version plus` its six; a bad --version, --version with another attack, and
# --norm l1 with an attack that has no L1 form each exit 2 with one line naming the flag.
# Usage: fab.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
M="$SRC/tests/fixtures/attacks/small_pgd.onnx"
D="fashion-mnist:test"

for case in "fab linf 0.1" "fab-t linf 0.1" "fab l2 1.5" "fab-t l1 8"; do
    set -- $case
    "$ADVEX" attack --model "$M" --data "$D" --limit 12 --attack $1 --norm $2 --eps $3 --steps 20 --topk 2 \
        --no-checks --quiet --out "$T/a.npy" >"$T/a.out" 2>&1
    check "$1 $2 exit code" [ $? -eq 0 ]
    check "$1 $2 reports a norm" grep -q "perturbation" "$T/a.out"
    check "$1 $2 bounded" $PY - "$T/a.npy" "$2" "$3" <<'PYEOF'
import gzip, sys, numpy as np
a = np.load(sys.argv[1]).reshape(12, -1)
d = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
x = np.frombuffer(d, np.uint8, offset=16)[:12 * 784].reshape(12, -1).astype(np.float32) / 255
v = np.abs(a - x)
r = {"linf": v.max(1), "l2": np.sqrt((v ** 2).sum(1)), "l1": v.sum(1)}[sys.argv[2]]
assert r.max() <= float(sys.argv[3]) * (1 + 1e-5), r.max()
assert r.max() > 0, "nothing moved"
assert a.min() >= 0 and a.max() <= 1
PYEOF
done

"$ADVEX" eval --model "$M" --data "$D" --limit 12 --attack standard --eps 0.05 --steps 5 --queries 20 --topk 2 \
    --no-checks --quiet --json "$T/s.json" >"$T/s.out" 2>&1
check "standard exit code" [ $? -eq 0 ]
check "standard stages in AutoAttack's order" $PY -c "
import json, sys
r = json.load(open(sys.argv[1]))['results'][0]
assert [s['attack'] for s in r['stages']] == ['apgd-ce', 'apgd-t', 'fab-t', 'square'], r['stages']
" "$T/s.json"
"$ADVEX" eval --model "$M" --data "$D" --limit 12 --attack standard --version plus --eps 0.05 --steps 5 --queries 20 \
    --topk 2 --restarts 2 --no-checks --quiet --json "$T/p.json" >"$T/p.out" 2>&1
check "plus exit code" [ $? -eq 0 ]
check "plus stages in AutoAttack's order" $PY -c "
import json, sys
r = json.load(open(sys.argv[1]))['results'][0]
assert [s['attack'] for s in r['stages']] == ['apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t'], r['stages']
" "$T/p.json"

refuse() { # what, grep pattern, args...
    local what=$1 pat=$2; shift 2
    "$ADVEX" "$@" >"$T/e.out" 2>&1
    local rc=$?
    check "$what exits 2" [ $rc -eq 2 ]
    check "$what: one line naming it" grep -q -- "$pat" "$T/e.out"
}
refuse "bad --version" "--version" eval --model "$M" --data "$D" --limit 4 --attack standard --eps 0.05 --version best
refuse "--version on pgd" "standard only" eval --model "$M" --data "$D" --limit 4 --attack pgd --eps 0.05 --version plus
refuse "--version on attack pgd" "standard only" attack --model "$M" --data "$D" --limit 4 --attack pgd --eps 0.05 --version plus
"$ADVEX" eval --model "$M" --data "$D" --limit 8 --attack fgsm,standard --version plus --eps 0.05 --steps 2 --queries 5 \
    --topk 1 --restarts 1 --no-checks --quiet >"$T/m.out" 2>&1
check "--version with standard among other attacks" [ $? -eq 0 ]
refuse "l1 on pgd" "L1" attack --model "$M" --data "$D" --limit 4 --attack pgd --eps 1 --norm l1
refuse "fab with a target" "target" attack --model "$M" --data "$D" --limit 4 --attack fab --eps 1 --target 3
finish
