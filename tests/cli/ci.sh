#!/bin/bash
# advex eval for CI pipelines and other tools: --min-robust-accuracy exits 3 below the gate
# and 0 at or above it (per attack and for the worst case), with every output written;
# --junit's XML parses (python's xml.etree) with one test case per attack and eps plus the
# worst case, failures exactly where the gate fails, names escaped; --robustbench's fields;
# AutoAttack's log lines in autoattack.py's formats with the run's own figures; usage errors
# (exit 2, nothing run) for a gate on an attack that does not run, --robustbench with two eps,
# --version with --attack, an unknown version, --eot with only black-box attacks.
# Usage: ci.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
mkdir -p "$T/a&b<c"
M="$T/a&b<c/m.onnx"
cp "$SRC/tests/fixtures/attacks/small_pgd.onnx" "$M"
D="fashion-mnist:test"
run() { "$ADVEX" eval --model "$M" --data "$D" --limit 100 --attack fgsm,pgd --steps 5 --eps 0.05,0.1 "$@"; }

run --json "$T/r.json" >"$T/o" 2>"$T/e"
check "plain run exits 0" [ $? -eq 0 ]
# the figures every threshold below is set from: pgd's own, and the worst case from the
# AutoAttack log block of eps 0.1
read -r PGD10 WORST10 <<<"$($PY - "$T/r.json" "$T/e" <<'EOF'
import json, re, sys
r = json.load(open(sys.argv[1]))["results"]
pgd = [x for x in r if x["attack"] == "pgd" and abs(x["eps"] - 0.1) < 1e-6][0]
block = open(sys.argv[2]).read().split("eps: 0.1 (linf)\n")[1]
worst = float(re.search(r"^robust accuracy: (\d+\.\d\d)%$", block, re.M).group(1))
assert round(worst) == pgd["worst_case_robust_correct"], (worst, pgd)  # the last attack's: the worst case
assert pgd["worst_case_robust_correct"] <= min(x["robust_correct"] for x in r if abs(x["eps"] - 0.1) < 1e-6)
print(pgd["robust_correct"], round(worst))  # of 100 examples
EOF
)"
check "figures read ($PGD10 $WORST10)" [ -n "$WORST10" ]
at=$($PY -c "print($PGD10 / 100)"); above=$($PY -c "print(($PGD10 + 1) / 100)")

# per attack: at the threshold passes, one example above it fails
run --min-robust-accuracy "pgd=$at" --quiet >"$T/o" 2>"$T/e"
check "pgd gate at its robust accuracy: exit 0" [ $? -eq 0 ]
run --min-robust-accuracy "pgd=$above" --junit "$T/j.xml" --quiet >"$T/o" 2>"$T/e"
check "pgd gate one example above: exit 3" [ $? -eq 3 ]
check "gate failure line names pgd" grep -q "gate failed: robust accuracy .* of pgd at eps 0.1" "$T/e"
check "outputs written despite the gate" test -s "$T/j.xml"
check "the table still printed" grep -q "clean accuracy" "$T/o"
check "junit: 2 attacks x 2 eps + 2 worst cases, one failure (pgd eps=0.1)" $PY - "$T/j.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = list(root.iter("testcase"))
names = sorted(c.get("name") for c in cases)
assert names == sorted(["fgsm eps=0.05 linf", "fgsm eps=0.1 linf", "pgd eps=0.05 linf", "pgd eps=0.1 linf",
                        "worst case eps=0.05 linf", "worst case eps=0.1 linf"]), names
failed = [c.get("name") for c in cases if c.find("failure") is not None]
assert failed == ["pgd eps=0.1 linf"], failed
suite = root.find("testsuite")
assert suite.get("tests") == "6" and suite.get("failures") == "1", suite.attrib
props = {p.get("name"): p.get("value") for p in suite.iter("property")}
assert props["model"].endswith("a&b<c/m.onnx"), props
EOF

# the worst case
wat=$($PY -c "print($WORST10 / 100)"); wabove=$($PY -c "print(($WORST10 + 1) / 100)")
run --min-robust-accuracy "$wat" --quiet >"$T/o" 2>"$T/e"
check "worst-case gate at its value: exit 0" [ $? -eq 0 ]
run --min-robust-accuracy "$($PY -c "print(($WORST10 + 1))")%" --quiet >"$T/o" 2>"$T/e"
check "worst-case gate one example above (percent): exit 3" [ $? -eq 3 ]
check "worst-case failure line" grep -q "gate failed: worst-case robust accuracy" "$T/e"

# RobustBench model info and AutoAttack's log lines, one eps
"$ADVEX" eval --model "$M" --data "$D" --limit 100 --attack fgsm,pgd --steps 5 --eps 8/255 --robustbench "$T/rb.json" \
    --json "$T/r1.json" >"$T/o" 2>"$T/e"
check "robustbench run exits 0" [ $? -eq 0 ]
check "robustbench fields" $PY - "$T/rb.json" "$T/r1.json" <<'EOF'
import json, sys
rb, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert rb["eps"] == "8/255" and rb["threat_model"] == "Linf" and rb["dataset"] == "fashion-mnist", rb
assert rb["number_forward_passes"] == 1
assert rb["clean_acc"] == "%.2f" % (100 * r["clean_accuracy"]), (rb, r["clean_accuracy"])
worst = min(x["robust_correct"] for x in r["results"]) # an upper bound of the worst case
assert isinstance(rb["autoattack_acc"], str) and len(rb["autoattack_acc"].split(".")[1]) == 2
assert float(rb["autoattack_acc"]) <= 100.0 * worst / r["n"] + 1e-9, (rb, worst)
for k in ("link", "name", "authors", "additional_data", "venue", "architecture", "reported", "unreliable"):
    assert k in rb, k
EOF
check "AutoAttack log lines" $PY - "$T/e" "$T/r1.json" <<'EOF'
import json, re, sys
e, r = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
assert "using custom version including fgsm, pgd.\ninitial accuracy: %.2f%%\n" % (100 * r["clean_accuracy"]) in e, e
fgsm = [x for x in r["results"] if x["attack"] == "fgsm"][0]
assert "robust accuracy after FGSM: %.2f%% (total time " % (100 * fgsm["robust_accuracy"]) in e, e
assert re.search(r"^robust accuracy after PGD: \d+\.\d\d% \(total time \d+\.\d s\)$", e, re.M), e
m = re.search(r"^max Linf perturbation: (\d\.\d{5}), nan in tensor: 0, max: (\d\.\d{5}), min: (\d\.\d{5})$", e, re.M)
assert m and float(m.group(1)) <= 8 / 255 + 1e-5 and float(m.group(1)) > 0.02, e
assert re.search(r"^robust accuracy: \d+\.\d\d%$", e, re.M), e
EOF
"$ADVEX" eval --model "$M" --data "$D" --limit 10 --attack fgsm --eps 0.1 --quiet >"$T/o" 2>"$T/e"
check "--quiet: no log lines" sh -c "! grep -q 'initial accuracy' '$T/e'"

"$ADVEX" eval --help >"$T/h" 2>&1
check "eval --help documents exit 3" grep -q "3 robust accuracy below --min-robust-accuracy" "$T/h"
check "README documents exit 3" grep -q "exits 3" "$SRC/README.md"

# usage errors, before any work
expect2() { local what=$1 rc; shift; "$ADVEX" eval --model "$M" --data "$D" --limit 10 --eps 0.1 "$@" >"$T/o" 2>"$T/e"
    rc=$?; check "$what: exit 2 ($(head -c 200 "$T/e"))" [ $rc -eq 2 ]; check "$what: nothing printed on stdout" test ! -s "$T/o"; }
expect2 "gate on an attack that does not run" --attack fgsm --min-robust-accuracy pgd=0.5
expect2 "gate value 45" --attack fgsm --min-robust-accuracy 45
expect2 "robustbench with two eps" --attack fgsm --eps 0.1,0.2 --robustbench "$T/rb2.json"
expect2 "version with attack" --version rand --attack fgsm
expect2 "unknown version" --version nope
expect2 "eot with square only" --attack square --eot 4
check "nothing written by refused runs" test ! -e "$T/rb2.json"
finish
