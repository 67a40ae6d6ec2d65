#!/bin/bash
# Resumable, per-example evaluations: advex eval --state FILE killed (SIGKILL, SIGINT) once the
# state records a finished batch, then the same command resumes and ends with the results of an
# uninterrupted run (JSON equal but for timings, per-example lines equal); a resume with another
# setting or a corrupt state is refused, the file left as it was; --per-example lines agree with
# the model's own predictions (advex predict on the clean and on the adversarial examples), with
# the perturbation norms of those examples and with the results table; the minimal-perturbation
# curve is monotone and agrees with the per-example norms and with the fixed-eps runs.
# Usage: state.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2

"$ADVEX" train --arch small --data fashion-mnist:train --limit 2000 --epochs 2 --out "$T/m.onnx" --quiet >/dev/null 2>&1 \
    || { echo "FAIL: could not train the fixture model"; echo "0 passed, 1 failed"; exit 1; }

N=200
EVAL=("$ADVEX" eval --model "$T/m.onnx" --data fashion-mnist:test --limit $N --attack pgd,deepfool --eps 0.03,0.06,0.1
      --steps 20 --batch 10)

# the uninterrupted reference, without a state file
"${EVAL[@]}" --json "$T/ref.json" --per-example "$T/ref.jsonl" --quiet >"$T/ref.out" 2>"$T/ref.err"
check "reference eval exits 0 ($(cat "$T/ref.err"))" test $? -eq 0

# The state file's header (docs/reports.md): n at byte 88, runs at 104, done[run] (int64) from 112.
state_done() {
    $PY - "$1" <<'PYEOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
n, = struct.unpack_from("<q", b, 88); runs, = struct.unpack_from("<i", b, 104)
print(" ".join(str(struct.unpack_from("<q", b, 112 + 8 * r)[0]) for r in range(runs)), n)
PYEOF
}

# Interrupt "${EVAL[@]}" with signal $1 once the state file exists (it is first written after a
# finished batch), check what it recorded is partial, resume, compare with the reference run
# $T/$REF.* (files named $2, default the signal).
REF=ref
interrupted_run() {
    local sig=$1 tag=${2:-$1} i
    local S="$T/state_$tag.bin"
    "${EVAL[@]}" --state "$S" --json "$T/$tag.json" --per-example "$T/$tag.jsonl" --quiet >/dev/null 2>"$T/$tag.err1" &
    local pid=$!
    for i in $(seq 1 20000); do
        [ -s "$S" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.01
    done
    kill -s "$sig" $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    local rc=$?
    check "$tag: the run was stopped by the signal (rc $rc)" test $rc -ne 0
    check "$tag: no results written by the stopped run" test ! -e "$T/$tag.json"
    local done
    done=$(state_done "$S")
    echo "$tag: state after the signal (done per run, n): $done"
    check "$tag: the state records a partial run ($done)" bash -c "set -- $done; n=\${@: -1}; [ \$1 -gt 0 ] && [ \${@: -2:1} -lt \$n ]"
    "${EVAL[@]}" --state "$S" --json "$T/$tag.json" --per-example "$T/$tag.jsonl" >"$T/$tag.out" 2>"$T/$tag.err2"
    check "$tag: resumed eval exits 0 ($(tail -1 "$T/$tag.err2"))" test $? -eq 0
    check "$tag: the resume says so" grep -q "resumed from .*state_$tag.bin" "$T/$tag.err2"
    check "$tag: resumed JSON equals the uninterrupted run's (timings aside)" $PY - "$T/$REF.json" "$T/$tag.json" <<'PYEOF'
import json, sys
def load(p):
    j = json.load(open(p))
    for r in j["results"]: r.pop("seconds")
    return j
a, b = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if a == b else (print(json.dumps(a), json.dumps(b)) or 1))
PYEOF
    check "$tag: resumed per-example lines equal the uninterrupted run's" cmp -s "$T/$REF.jsonl" "$T/$tag.jsonl"
    check "$tag: the table equals the reference's (timings aside)" bash -c \
        "diff <(awk '{\$5=\"\"; print}' '$T/$REF.out') <(awk '{\$5=\"\"; print}' '$T/$tag.out')"
}
interrupted_run KILL
interrupted_run INT

# a complete state: the same command again runs nothing and gives the same results
S="$T/state_KILL.bin"
cp "$S" "$T/saved.bin"
"${EVAL[@]}" --state "$S" --json "$T/again.json" --quiet >/dev/null 2>&1
check "complete state: same results again" $PY -c "
import json,sys
a,b=(json.load(open(p)) for p in sys.argv[1:])
for j in (a,b):
    for r in j['results']: r.pop('seconds')
sys.exit(a!=b)" "$T/ref.json" "$T/again.json"

# refusals: another setting, another seed, other data, corrupt files; the state is left alone
refused() {
    local what=$1 code=$2 pattern=$3; shift 3
    "$@" >/dev/null 2>"$T/refused.err"
    local rc=$?
    check "$what: exit $code (got $rc)" test $rc -eq "$code"
    check "$what: one line naming the problem ($(cat "$T/refused.err"))" bash -c \
        "[ \$(wc -l <'$T/refused.err') -eq 1 ] && grep -q -- '$pattern' '$T/refused.err'"
}
refused "changed --steps" 2 "state .*different value of an attack setting" "${EVAL[@]}" --steps 41 --state "$S"
refused "changed --seed" 2 "written with --seed 0, not 5" "${EVAL[@]}" --seed 5 --state "$S"
refused "changed --limit" 2 "different data set" "${EVAL[@]}" --limit 150 --state "$S"
refused "changed --eps" 2 "different eps list" "${EVAL[@]}" --eps 0.03,0.1 --state "$S"
refused "changed --attack" 2 "different attack list" "${EVAL[@]}" --attack pgd,fgsm --state "$S"
check "refusals left the state unchanged" cmp -s "$S" "$T/saved.bin"
head -c 2000 "$S" >"$T/trunc.bin"
refused "truncated state" 1 "truncated or corrupt" "${EVAL[@]}" --state "$T/trunc.bin"
cp "$S" "$T/flip.bin"; printf '\x55' | dd of="$T/flip.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null
refused "a flipped byte" 1 "checksum" "${EVAL[@]}" --state "$T/flip.bin"
echo "not a state" >"$T/junk.bin"
refused "not a state file" 1 "not an advex state file" "${EVAL[@]}" --state "$T/junk.bin"
# valid checksum, impossible contents: run 0 done at 7 examples (batch 10)
$PY - "$S" "$T/hostile.bin" <<'PYEOF'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<q", b, 112, 7)
h = 14695981039346656037
for x in b[:-8]: h = ((h ^ x) * 1099511628211) & 0xffffffffffffffff
struct.pack_into("<Q", b, len(b) - 8, h)
open(sys.argv[2], "wb").write(b)
PYEOF
refused "impossible contents" 1 "corrupt (run 0 records 7 examples" "${EVAL[@]}" --state "$T/hostile.bin"
refused "--state with --report" 2 "not with --report" "${EVAL[@]}" --state "$T/x.bin" --report "$T/rep"
refused "--state naming the model" 2 "same file" "${EVAL[@]}" --state "$T/m.onnx"

# ---- --per-example against the model's own predictions and the results table -------------
"$ADVEX" predict --model "$T/m.onnx" --data fashion-mnist:test --limit $N --out "$T/clean_logits.npy" --quiet >/dev/null
"$ADVEX" attack --model "$T/m.onnx" --data fashion-mnist:test --limit $N --attack pgd --eps 0.06 --steps 20 \
    --out "$T/adv.npy" --quiet >/dev/null
$PY - "$T/labels.npy" "$T/clean.npy" $N <<'PYEOF'
import gzip, sys, numpy as np
n = int(sys.argv[3])
y = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)[:n]
x = np.frombuffer(gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)
np.save(sys.argv[1], y.astype(np.int64))
np.save(sys.argv[2], (x[:n * 784].reshape(n, 1, 28, 28).astype(np.float32) / np.float32(255)))
PYEOF
"$ADVEX" predict --model "$T/m.onnx" --data "npy:$T/adv.npy,$T/labels.npy" --out "$T/adv_logits.npy" --quiet >/dev/null
check "per-example lines agree with predict, the saved examples, the table and the curve" \
    $PY - "$T/ref.jsonl" "$T/ref.json" "$T/clean_logits.npy" "$T/adv_logits.npy" "$T/adv.npy" "$T/clean.npy" "$T/labels.npy" <<'PYEOF'
import json, sys, math
import numpy as np
lines = [json.loads(l) for l in open(sys.argv[1])]
J = json.load(open(sys.argv[2]))
clean_pred = np.load(sys.argv[3]).argmax(1)
adv_pred = np.load(sys.argv[4]).argmax(1)
adv, clean, y = np.load(sys.argv[5]), np.load(sys.argv[6]), np.load(sys.argv[7])
errs = []
eps = sorted({l["eps"] for l in lines})
n = len(clean_pred)
if len(lines) != n * len(eps): errs.append(f"{len(lines)} lines for {n} examples x {len(eps)} eps")
for l in lines:
    i = l["index"]
    if l["label"] != y[i] or l["clean_pred"] != clean_pred[i]: errs.append(f"example {i}: label/clean_pred")
    for a in l["attacks"]:
        if a["broken"] != (l["clean_pred"] == l["label"] and a["pred"] != l["label"]): errs.append(f"{i}: broken flag")
    first = next((a for a in l["attacks"] if a["broken"]), None)
    if (first and first["attack"]) != l["broken_by"]: errs.append(f"{i}: broken_by {l['broken_by']}")
    fin = first or l["attacks"][-1]
    if (l["pred"], l["linf"], l["l2"], l["l1"]) != (fin["pred"], fin["linf"], fin["l2"], fin["l1"]): errs.append(f"{i}: final")
    if l["eps"] == 0.06:  # pgd's examples, saved by advex attack with the same settings
        p = l["attacks"][0]
        d = (adv[i].astype(np.float64) - clean[i].astype(np.float64)).ravel()
        want = (np.abs(d).max(), np.sqrt((d * d).sum()), np.abs(d).sum())
        if p["pred"] != adv_pred[i]: errs.append(f"{i}: pgd pred {p['pred']} but predict says {adv_pred[i]}")
        if max(abs(p[k] - w) for k, w in zip(("linf", "l2", "l1"), want)) > 1e-6: errs.append(f"{i}: norms {p} {want}")
        if p["linf"] > 0.06 + 1e-6: errs.append(f"{i}: pgd outside the ball")
# counts equal the results table
for r in J["results"]:
    robust = sum(1 for l in lines if l["eps"] == r["eps"] for a in l["attacks"]
                 if a["attack"] == r["attack"] and a["pred"] == l["label"] and l["clean_pred"] == l["label"])
    if robust != r["robust_correct"]: errs.append(f"{r['attack']} {r['eps']}: {robust} robust lines, table {r['robust_correct']}")
# the DeepFool curve: monotone, from the per-example minimal norms, equal to the fixed-eps runs
curves = {c["attack"]: c for c in J["curves"]}
if set(curves) != {"deepfool"}: errs.append(f"curves for {set(curves)}")
c = curves["deepfool"]
pts = c["points"]
if [p["eps"] for p in pts] != eps: errs.append(f"curve points {pts}")
accs = [p["robust_accuracy"] for p in pts]
if any(b > a for a, b in zip(accs, accs[1:])): errs.append(f"curve not monotone {accs}")
mins = {}
for l in lines:
    a = l["attacks"][1]
    mn = a["min_norm"]
    mins.setdefault(l["index"], mn)
    if mins[l["index"]] != mn: errs.append(f"{l['index']}: min_norm differs between eps lines")
    if l["clean_pred"] != l["label"] and mn != 0: errs.append(f"{l['index']}: misclassified but min_norm {mn}")
    if a["broken"] and (mn is None or abs(mn - a["linf"]) > 1e-12): errs.append(f"{l['index']}: min_norm {mn} vs linf {a['linf']}")
for p in pts:
    robust = sum(1 for mn in mins.values() if mn is None or mn > p["eps"])
    if robust / n != p["robust_accuracy"]: errs.append(f"curve at {p['eps']}: {p['robust_accuracy']} vs norms {robust / n}")
    fixed = next(r for r in J["results"] if r["attack"] == "deepfool" and r["eps"] == p["eps"])
    if fixed["robust_accuracy"] != p["robust_accuracy"]: errs.append(f"curve at {p['eps']}: {p['robust_accuracy']} vs run {fixed['robust_accuracy']}")
if not 0 < accs[-1] < accs[0]: errs.append(f"a degenerate curve {accs}")
print("\n".join(errs[:10]))
sys.exit(1 if errs else 0)
PYEOF
# ---- the report plots the minimal-perturbation curve inline (SVG, no script) ----------------
"$ADVEX" eval --model "$T/m.onnx" --data fashion-mnist:test --limit 60 --attack fgsm,deepfool --eps 0.05,0.1 \
    --report "$T/rep" --json "$T/rep.json" --quiet >/dev/null 2>"$T/rep.err"
check "eval --report with deepfool exits 0 ($(cat "$T/rep.err"))" test $? -eq 0
check "report: the minimal-perturbation curve, inline SVG and points equal to results.json" \
    $PY - "$T/rep/report.html" "$T/rep/results.json" "$T/rep.json" <<'PYEOF'
import json, re, sys
import xml.dom.minidom
H = open(sys.argv[1]).read()
J, J2 = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
errs = []
m = re.search(r'<div id="min-norm-curve">\s*(<svg.*?</svg>)', H, re.S)
if not m: errs.append("no inline SVG")
else:
    svg = xml.dom.minidom.parseString(m.group(1))
    if not svg.getElementsByTagName("polyline") + svg.getElementsByTagName("path") + svg.getElementsByTagName("line"):
        errs.append("the SVG draws nothing")
    if "<script" in m.group(1): errs.append("script in the SVG")
(c,) = J["curves"]
if J2["curves"] != J["curves"]: errs.append("--json and the report's results.json differ on curves")
if c["attack"] != "deepfool" or len(c["points"]) != 21 or c["points"][0]["eps"] != 0: errs.append(f"curve {c}")
accs = [p["robust_accuracy"] for p in c["points"]]
if any(b > a for a, b in zip(accs, accs[1:])): errs.append("not monotone")
if accs[0] != J["clean_accuracy"]: errs.append(f"curve at 0 {accs[0]} is not the clean accuracy {J['clean_accuracy']}")
rows = re.findall(r'<tr data-attack="deepfool" data-eps="([^"]+)"><td class="l">deepfool</td><td>[^<]*</td><td data-v="([^"]+)"', H)
if [(float(e), float(v)) for e, v in rows] != [(p["eps"], p["robust_accuracy"]) for p in c["points"]]:
    errs.append(f"points table {rows[:3]} vs JSON")
print("\n".join(errs))
sys.exit(1 if errs else 0)
PYEOF

# ---- a randomized defence (tests/fixtures/random/noise.onnx, Gaussian noise on the input) under
# AutoAttack's rand version resumes to the same results too: a batch's draws come from (--seed,
# index of its first example) alone, not from what ran before it. Sized so that the batches
# after the first (the signal's cue) take seconds.
EVAL=("$ADVEX" eval --model "$SRC/tests/fixtures/random/noise.onnx" --data fashion-mnist:test --limit 200
      --version rand --steps 20 --eot 10 --eps 0.1 --batch 4 --seed 3)
REF=rand_ref
"${EVAL[@]}" --json "$T/$REF.json" --per-example "$T/$REF.jsonl" --quiet >"$T/$REF.out" 2>"$T/$REF.err"
check "randomized reference eval exits 0 ($(cat "$T/$REF.err"))" test $? -eq 0
interrupted_run KILL rand_KILL
finish
