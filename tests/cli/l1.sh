#!/bin/bash
# The L1 threat model on the command line: `attack --norm l1` with apgd-ce, apgd-t (the eps
# schedule is standard's) and square returns examples within eps in L1 and in [0,1]; `eval
# --attack standard --norm l1` runs AutoAttack's L1 version and prints AutoAttack's log lines
# (its version line with the four attacks, one "robust accuracy after" line per attack in
# its order, "max L1 perturbation" within eps); an attack without an L1 form and
# --robustbench at L1 each exit 2 with one line saying why.
# Usage: l1.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
M="$SRC/tests/fixtures/attacks/small_pgd.onnx"
D="fashion-mnist:test"

for a in apgd-ce apgd-t square; do
    "$ADVEX" attack --model "$M" --data "$D" --limit 12 --attack $a --norm l1 --eps 10 --steps 20 --topk 2 \
        --queries 100 --no-checks --quiet --out "$T/a.npy" >"$T/a.out" 2>&1
    check "$a l1 exit code" [ $? -eq 0 ]
    check "$a l1 within eps, in [0,1]" $PY - "$T/a.npy" <<'PYEOF'
import gzip, sys, numpy as np
a = np.load(sys.argv[1]).reshape(12, -1).astype(np.float64)
d = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
x = np.frombuffer(d, np.uint8, offset=16)[:12 * 784].reshape(12, -1).astype(np.float32).astype(np.float64) / 255
r = np.abs(a - x).sum(1)
assert r.max() <= 10, r.max()
assert r.max() > 1, "nothing moved"
assert a.min() >= 0 and a.max() <= 1
PYEOF
done

"$ADVEX" eval --model "$M" --data "$D" --limit 16 --attack standard --norm l1 --eps 12 --steps 10 --queries 50 \
    --no-checks --json "$T/s.json" >"$T/s.out" 2>"$T/s.err"
check "standard l1 exit code" [ $? -eq 0 ]
check "standard l1: AutoAttack's log lines" $PY - "$T/s.err" "$T/s.json" <<'PYEOF'
import json, re, sys
e, r = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
res = r["results"][0]
assert [s["attack"] for s in res["stages"]] == ["apgd-ce", "apgd-t", "fab-t", "square"], res["stages"]
assert "using standard version including apgd-ce, apgd-t, fab-t, square.\n" in e, e
assert "initial accuracy: %.2f%%\n" % (100 * r["clean_accuracy"]) in e, e
after = re.findall(r"^robust accuracy after ([A-Z-]+): (\d+\.\d\d)% \(total time \d+\.\d s\)$", e, re.M)
assert [a for a, _ in after] == ["APGD-CE", "APGD-T", "FAB-T", "SQUARE"], after
assert float(after[-1][1]) == round(100 * res["robust_accuracy"], 2), (after, res["robust_accuracy"])
m = re.search(r"^max L1 perturbation: (\d+\.\d{5}), nan in tensor: 0, max: (\d\.\d{5}), min: (\d\.\d{5})$", e, re.M)
assert m and 1 < float(m.group(1)) <= 12, e
assert re.search(r"^robust accuracy: \d+\.\d\d%$", e, re.M), e
PYEOF

refuse() { # what, grep pattern, args...
    local what=$1 pat=$2; shift 2
    "$ADVEX" "$@" >"$T/e.out" 2>&1
    local rc=$?
    check "$what exits 2" [ $rc -eq 2 ]
    check "$what: one line naming it" sh -c "grep -q -- '$pat' '$T/e.out' && [ \$(wc -l <'$T/e.out') -eq 1 ]"
}
refuse "pgd at l1" "L1: apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square, standard" attack --model "$M" --data "$D" \
    --limit 4 --attack pgd --eps 1 --norm l1
refuse "--robustbench at l1" "no L1 threat model" eval --model "$M" --data "$D" --limit 4 --attack standard \
    --eps 12 --norm l1 --robustbench "$T/rb.json"
finish
