#!/bin/bash
# advex attack / eval on the threat model they are asked for: --norm l2 gives L2-bounded
# perturbations in [0,1] and the output and JSON say l2; an (attack, norm) pair that is not
# implemented (cw at linf) exits 2 naming both; cw without --norm is L2. Transfer
# (--surrogate): BIM's adversarial accuracy on the target equals PyTorch's transfer attack
# (tests/fixtures/transfer) within 1 point, and the attacks without a transfer mode exit 2.
# The gradient-masking warning follows AutoAttack's rule (advex_eval_flag_masking).
# Usage: attacks.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
M="$SRC/tests/fixtures/attacks/small_pgd.onnx"
TF="$SRC/tests/fixtures/transfer"
D="fashion-mnist:test"

# L2 everywhere it is asked for
for a in fgsm fgsm-rs square standard; do
    "$ADVEX" attack --model "$M" --data "$D" --limit 16 --attack $a --norm l2 --eps 1.5 --queries 100 --steps 10 \
        --topk 2 --no-checks --quiet --out "$T/$a.npy" >"$T/$a.out" 2>&1
    check "$a l2 exit code" [ $? -eq 0 ]
    check "$a l2 says L2" grep -q "eps: 1.5 (L2)" "$T/$a.out"
    check "$a l2 bounded" $PY - "$T/$a.npy" "$SRC" <<'EOF'
import gzip, sys, numpy as np
a = np.load(sys.argv[1]).reshape(16, -1)
d = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
x = np.frombuffer(d, np.uint8, offset=16)[:16 * 784].reshape(16, -1).astype(np.float32) / 255
l2 = np.sqrt(((a - x) ** 2).sum(1))
assert l2.max() <= 1.5 * (1 + 1e-5), l2.max()
assert l2.max() > 0.75, l2.max()          # the budget is used
assert a.min() >= 0 and a.max() <= 1
EOF
done
"$ADVEX" eval --model "$M" --data "$D" --limit 16 --attack fgsm,square --norm l2 --eps 1 --queries 50 --no-checks \
    --quiet --json "$T/l2.json" >"$T/eval.out" 2>&1
check "eval l2 exit code" [ $? -eq 0 ]
check "eval l2 json says l2" $PY -c "
import json, sys
r = json.load(open(sys.argv[1]))['results']
assert len(r) == 2 and all(e['norm'] == 'l2' for e in r), r
" "$T/l2.json"

# not implemented: refused, exit 2, one line naming the attack and the norm; nothing written
"$ADVEX" attack --model "$M" --data "$D" --limit 4 --attack cw --norm linf --eps 0.1 --out "$T/cw.npy" >"$T/o" 2>"$T/e"
check "cw linf exit 2" [ $? -eq 2 ]
check "cw linf message" grep -q "cw: the L-inf norm is not implemented" "$T/e"
check "cw linf no output" [ ! -e "$T/cw.npy" ]
"$ADVEX" eval --model "$M" --data "$D" --limit 4 --attack fgsm,cw --norm linf --eps 0.1 >"$T/o" 2>"$T/e"
check "eval fgsm,cw linf exit 2 before running" [ $? -eq 2 ] && check "eval ran nothing" [ ! -s "$T/o" ]
"$ADVEX" attack --model "$M" --data "$D" --limit 4 --attack cw --steps 5 --binary-steps 2 --no-checks --quiet >"$T/o" 2>&1
check "cw defaults to l2" grep -q "eps: unbounded" "$T/o"

# transfer: every step on every example, as PyTorch's transfer attack
"$ADVEX" attack --model "$TF/target.onnx" --surrogate "$TF/surrogate.onnx" --data "$D" --limit 1000 --attack bim \
    --eps 0.1 --steps 10 --no-checks --quiet >"$T/tf.out" 2>&1
check "transfer exit code" [ $? -eq 0 ]
check "transfer bim matches PyTorch within 1 point" $PY - "$T/tf.out" "$TF" <<'EOF'
import gzip, re, sys, numpy as np
got = float(re.search(r"adversarial accuracy: *([0-9.]+)%", open(sys.argv[1]).read()).group(1))
y = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").read(), np.uint8,
                  offset=8)[:1000]
clean, adv = np.load(f"{sys.argv[2]}/clean_pred.npy"), np.load(f"{sys.argv[2]}/bim_pred.npy")
want = 100.0 * ((clean == y) & (adv == y)).mean()
assert abs(got - want) <= 1.0, (got, want)
EOF
for a in standard deepfool; do
    "$ADVEX" attack --model "$TF/target.onnx" --surrogate "$TF/surrogate.onnx" --data "$D" --limit 4 --attack $a \
        --eps 0.1 >"$T/o" 2>"$T/e"
    check "$a with a surrogate exits 2" [ $? -eq 2 ]
    check "$a with a surrogate says why" grep -q "$a stops each example" "$T/e"
done

# the masking warning: Square far better than APGD on a masked model warns; Square better than
# FGSM alone does not (a one-step attack is no benchmark), nor does an unmasked model
MK="$SRC/tests/fixtures/attacks/masked.onnx"
W="Square attack broke more examples"
"$ADVEX" eval --model "$MK" --data "$D" --limit 64 --attack apgd-ce,square --eps 0.1 --steps 25 --queries 300 \
    --quiet --json "$T/mk.json" >"$T/o" 2>"$T/e"
check "masked apgd-ce,square exit code" [ $? -eq 0 ]
check "masked apgd-ce,square warns" grep -q "$W" "$T/e"
check "masked warning in the JSON of square only" $PY -c "
import json, sys
r = json.load(open(sys.argv[1]))['results']
w = [any('Square attack broke' in x for x in e.get('warnings', [])) for e in r]
assert w == [False, True], w
" "$T/mk.json"
"$ADVEX" eval --model "$MK" --data "$D" --limit 64 --attack fgsm,square --eps 0.1 --queries 300 --quiet >"$T/o" 2>"$T/e"
check "masked fgsm,square: square beats fgsm" $PY -c "
import re, sys
t = open(sys.argv[1]).read()
f, s = (float(re.search(r'^' + a + r' +[0-9.]+ +([0-9.]+)%', t, re.M).group(1)) for a in ('fgsm', 'square'))
assert s < f - 5, (f, s)
" "$T/o"
check "masked fgsm,square does not warn of masking" bash -c "! grep -q '$W' '$T/e'"
"$ADVEX" eval --model "$M" --data "$D" --limit 64 --attack apgd-ce,square --eps 0.1 --steps 25 --queries 300 \
    --quiet >"$T/o" 2>"$T/e"
check "unmasked apgd-ce,square does not warn" bash -c "! grep -q '$W' '$T/e'"
finish
