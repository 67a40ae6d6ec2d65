#!/bin/bash
# Randomized defences from the command line (tests/fixtures/random, tools/make_random_fixtures.py):
# AutoAttack's check_randomized prints one warning line naming the check for the noisy model
# and none for the deterministic one; --version rand runs APGD-CE and APGD-DLR with EOT, stays
# quiet about randomness (it is the answer to it) and gives the same figures for the same
# --seed; a Dropout(training_mode=true) model loads and evaluates, and EOT attacks it better
# than one gradient per step; --eot is refused where no gradient is taken. Usage: random.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
R="$SRC/tests/fixtures/random"
D="fashion-mnist:test"

"$ADVEX" eval --model "$R/noise.onnx" --data "$D" --limit 32 --attack fgsm --eps 0.1 >"$T/o" 2>"$T/e"
check "noisy model evaluates" [ $? -eq 0 ]
check "one check_randomized line" [ "$(grep -c 'warning: check_randomized:' "$T/e")" -eq 1 ]
check "no determinism line besides it" sh -c "! grep -q 'check_determinism' '$T/e'"
"$ADVEX" eval --model "$SRC/tests/fixtures/attacks/small_pgd.onnx" --data "$D" --limit 32 --attack fgsm --eps 0.1 \
    >"$T/o" 2>"$T/e"
check "deterministic model: no warning ($(grep warning "$T/e"))" sh -c "! grep -q 'warning' '$T/e'"

for s in 1 2; do
    "$ADVEX" eval --model "$R/noise.onnx" --data "$D" --limit 16 --version rand --steps 5 --eot 3 --eps 0.1 --seed 3 \
        --json "$T/r$s.json" >"$T/o$s" 2>"$T/e$s"
    check "rand run $s exits 0" [ $? -eq 0 ]
done
check "rand: apgd-ce then apgd-dlr" $PY - "$T/r1.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert [x["attack"] for x in r["results"]] == ["apgd-ce", "apgd-dlr"], r["results"]
PYEOF
check "rand: the same figures for the same seed" $PY - "$T/r1.json" "$T/r2.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda r: [(x["robust_correct"], x.get("perturbation")) for x in r["results"]] + [r["clean_accuracy"]]
assert key(a) == key(b), (key(a), key(b))
PYEOF
check "rand: AutoAttack's version line" grep -qx "using rand version including apgd-ce, apgd-dlr." "$T/e1"
check "rand: no randomness warning" sh -c "! grep -q 'check_randomized' '$T/e1'"
check "rand: AutoAttack's lines for both attacks" sh -c "grep -q 'robust accuracy after APGD-CE' '$T/e1' && grep -q 'robust accuracy after APGD-DLR' '$T/e1'"

"$ADVEX" eval --model "$R/dropout.onnx" --data "$D" --limit 16 --attack pgd --steps 3 --eot 2 --eps 0.1 >"$T/o" 2>"$T/e"
check "training-mode Dropout model evaluates with --eot" [ $? -eq 0 ]
# EOT is the stronger attack on a randomized defence (dropout kept on). One seed's gap is noisy
# (1 to 7 examples of 100 over seeds 0-7, mean 4), so 300 examples and two seeds: 144 + 150
# robust with one gradient per step against 138 + 132 with the mean of 8 (any thread count).
for e in 1 8; do
    for s in 0 1; do
        "$ADVEX" eval --model "$R/dropout.onnx" --data "$D" --limit 300 --attack apgd-ce --steps 10 --eps 0.05 --eot $e \
            --seed $s --quiet --json "$T/eot${e}_$s.json" >"$T/o" 2>"$T/e"
    done
done
check "EOT 8 breaks at least 6 more examples than EOT 1 (two seeds)" $PY - "$T"/eot1_{0,1}.json "$T"/eot8_{0,1}.json <<'PYEOF'
import json, sys
r = [json.load(open(p))["results"][0]["robust_correct"] for p in sys.argv[1:5]]
a, b = r[0] + r[1], r[2] + r[3]
print("robust with EOT 1:", r[:2], "EOT 8:", r[2:])
assert b + 6 <= a, (a, b)
PYEOF
"$ADVEX" attack --model "$R/noise.onnx" --data "$D" --limit 4 --attack square --eot 3 --eps 0.1 --out "$T/a.npy" \
    >"$T/o" 2>"$T/e"
rc=$?
check "attack --eot with square: exit 2 ($(cat "$T/e"))" [ $rc -eq 2 ]
"$ADVEX" attack --model "$R/noise.onnx" --data "$D" --limit 4 --attack fgsm --eot 3 --eps 0.1 --seed 4 --out "$T/a.npy" \
    >"$T/o" 2>"$T/e"
check "attack --eot with fgsm" [ $? -eq 0 ]
"$ADVEX" attack --model "$R/noise.onnx" --data "$D" --limit 4 --attack fgsm --eot 3 --eps 0.1 --seed 4 --out "$T/b.npy" \
    >"$T/o" 2>"$T/e"
check "attack with a seed: the same examples" cmp -s "$T/a.npy" "$T/b.npy"
finish
