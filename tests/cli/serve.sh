#!/bin/bash
# advex serve and attack/eval --target against it on loopback, every server started and
# stopped here (port 0, the bound port read from --port-file, readiness polled on
# /v2/health/ready): the queries advex counts equal the images the server counted (its
# /stats), the per-example budget holds, label-only HopSkipJump lowers robust accuracy within
# 1000 queries, targeted Square and HopSkipJump (--targeted) return examples that the model
# itself (advex predict on the saved .npy) puts on their target, within eps, a server that turns to errors or garbage mid-run is a clean failure, hostile
# requests get a 4xx and the server keeps serving, white-box attacks are refused (exit 2),
# and an exec: program speaks the documented framing.
# Usage: serve.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
M="$SRC/tests/fixtures/transfer/surrogate.onnx"
D="fashion-mnist:test"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"' EXIT

# start NAME ARGS...: serve in the background (on $PORT when set, else a free port); sets URL,
# PORT_USED and SPID once it answers ready
start() {
    local name=$1; shift
    rm -f "$T/$name.port"
    "$ADVEX" serve --model "$M" --port "${PORT:-0}" --port-file "$T/$name.port" --name "$name" "$@" >"$T/$name.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    wait_for "$T/$name.log" "serving" "$SPID" || return 1
    local port i
    port=$(cat "$T/$name.port")
    PORT_USED=$port
    BASE="http://127.0.0.1:$port"
    URL="$BASE/v2/models/$name"
    for i in $(seq 1 600); do
        curl -sf "$BASE/v2/health/ready" >/dev/null && return 0
        kill -0 "$SPID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
stop() { kill "$SPID"; wait "$SPID"; }
served() { curl -s "$URL/stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["inference_count"])'; }
jfield() { $PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r.get(sys.argv[2], 0))' "$@"; }
jtotal() { $PY -c 'import json,sys; print(sum(r.get("queries_total", 0) for r in json.load(open(sys.argv[1]))["results"]))' "$1"; }
sent() { awk '/queries sent:/ {print $3}' "$1"; }
"$ADVEX" data --data "$D" --limit 16 --out "$T/x16.npy" --labels "$T/y16.npy" --quiet >/dev/null 2>&1
# on_target NAME NORM EPS [changed]: the model's own logits (advex predict) on NAME.npy, the first 16
# test images attacked with --targeted next: the hits the attack reported are the examples the
# model ranks on their target (up to near ties, which batch-mates' last bits can flip), at
# least 2; all within eps and [0,1]; with "changed": every example returned changed is a hit
on_target() {
    "$ADVEX" predict --model "$M" --data "npy:$T/$1.npy" --out "$T/$1_z.npy" --quiet >/dev/null 2>&1 || return 1
    $PY - "$T/x16.npy" "$T/y16.npy" "$T/$1.npy" "$T/$1_z.npy" "$T/$1.out" "$2" "$3" "${4:-}" <<'EOF'
import sys, numpy as np
x, y, a, z = (np.load(f) for f in sys.argv[1:5])
out, norm, eps = open(sys.argv[5]).read(), sys.argv[6], float(sys.argv[7])
n = len(y); t = (y + 1) % 10
d = (a - x).reshape(n, -1).astype(np.float64)
dist = np.sqrt((d ** 2).sum(1)) if norm == "l2" else np.abs(d).max(1)
assert (dist <= eps * (1 + 1e-5)).all() and a.min() >= 0 and a.max() <= 1, dist.max()
top = z.argmax(1)
zt = z[np.arange(n), t]; zo = np.where(np.arange(10) == t[:, None], -np.inf, z).max(1)
tie = np.abs(zt - zo) <= 1e-4 * (1 + np.abs(zo))
hits = int((top == t).sum())
reported = round(float(out.split("targeted success:")[1].split("%")[0]) * n / 100)
assert abs(hits - reported) <= tie.sum() and hits >= 2, (hits, reported, int(tie.sum()))
if sys.argv[8] == "changed": assert ((top == t) | tie)[dist > 0].all(), (top, t, dist)
EOF
}

# ---- scores: Square, exact accounting, the budget ----
check "serve starts on a free port" start sq
check "metadata names input and logits" sh -c "curl -s '$URL' | grep -q '\"shape\":\[-1,1,28,28\]'"
"$ADVEX" eval --target "$URL" --data "$D" --limit 24 --attack square --eps 0.1 --queries 60 --batch 8 \
    --target-batch 16 --query-log "$T/q.jsonl" --json "$T/sq.json" --quiet >"$T/sq.out" 2>&1
check "square through the target runs" [ $? -eq 0 ]
total=$(jfield "$T/sq.json" queries_total)
check "queries_total ($total) equals the server's count ($(served))" [ "$total" = "$(served)" ]
check "budget: at most 60 queries per example ($total for 24)" [ "$total" -le $((24 * 60)) ]
check "the query log has one line per request, each batch <= 16" $PY - "$T/q.jsonl" "$total" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["outcome"] == "ok" and 1 <= r["batch"] <= 16 and r["latency_s"] >= 0 for r in rows), rows[:3]
assert sum(r["batch"] for r in rows) == int(sys.argv[2])
EOF
check "median queries per success reported" $PY -c "
import json; r=json.load(open('$T/sq.json'))['results'][0]; q=r['queries']; assert 1 < q['median'] <= 60, q"
before=$(served)
"$ADVEX" eval --target "$URL" --data "$D" --limit 12 --attack simba --eps 0.1 --queries 40 --json "$T/sb.json" --quiet >"$T/sb.out" 2>&1
check "simba through the target runs" [ $? -eq 0 ]
total=$(jfield "$T/sb.json" queries_total)
check "simba: queries_total ($total) equals the server's count" [ "$total" -eq $(( $(served) - before )) ]
check "simba: budget of 40 per example holds" [ "$total" -le $((12 * 40)) ]
before=$(served)
"$ADVEX" attack --target "$URL" --data "$D" --limit 16 --attack square --eps 0.15 --queries 300 --targeted next \
    --out "$T/tsq.npy" --quiet >"$T/tsq.out" 2>&1
check "targeted square through the target runs" [ $? -eq 0 ]
check "targeted square: queries sent ($(sent "$T/tsq.out")) equal the server's count" \
    [ "$(sent "$T/tsq.out")" -eq $(( $(served) - before )) ]
check "targeted square: budget of 300 per example holds" [ "$(sent "$T/tsq.out")" -le $((16 * 300)) ]
check "targeted square: the model itself puts the reported hits on their target" on_target tsq linf 0.15
"$ADVEX" attack --target "$URL" --target next --data "$D" --limit 4 --attack square --eps 0.1 --quiet >"$T/tt.out" 2>&1
rc=$?
check "--target CLASS with a URL: exit 2, pointing to --targeted" sh -c "[ $rc -eq 2 ] && grep -q 'with --targeted' '$T/tt.out'"
# a budget of 1 is the clean query alone: nothing is attacked
"$ADVEX" attack --target "$URL" --data "$D" --limit 8 --attack square --eps 0.1 --queries 1 --quiet >"$T/q1.out" 2>&1
check "--queries 1 spends exactly the clean queries" grep -q "queries sent:         8$" "$T/q1.out"
"$ADVEX" attack --target "$URL" --data "$D" --limit 4 --attack pgd --eps 0.1 --quiet >"$T/wb.out" 2>&1
check "white-box attack against a target exits 2" [ $? -eq 2 ]
check "... naming the reason" grep -q "needs the model's gradients" "$T/wb.out"
"$ADVEX" attack --target "$URL" --data "$D" --limit 8 --attack pgd --eps 0.1 --steps 5 --surrogate "$M" --quiet >"$T/tr.out" 2>&1
check "transfer from a local surrogate onto the target" grep -q "queries sent:         1[0-6]$" "$T/tr.out"

"$ADVEX" attack --target "$URL" --data "$D" --limit 5 --attack none --eps 0 --target-batch 1 --max-qps 20 \
    --query-log "$T/qps.jsonl" --quiet >/dev/null 2>&1
check "--max-qps 20: requests sent at least 1/20 s apart" $PY -c "
import json
t = [json.loads(l)['time'] for l in open('$T/qps.jsonl')]
assert len(t) == 5 and all(b - a >= 0.0495 for a, b in zip(t, t[1:])), t"

# ---- hostile requests: 4xx, and the server keeps serving ----
code() { curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary "$1" "$URL/infer"; }
check "bad JSON: 400" [ "$(code '{"inputs": [')" = 400 ]
check "wrong datatype: 400" [ "$(code '{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"INT8","data":[1]}]}')" = 400 ]
check "huge shape: 4xx" sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '{\"inputs\":[{\"name\":\"input\",\"shape\":[1000000000,1,28,28],\"datatype\":\"FP32\",\"data\":[]}]}' '$URL/infer') -ge 400 ]"
check "data shorter than the shape: 400" [ "$(code '{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[0.5]}]}')" = 400 ]
head -c 80000000 /dev/zero | tr '\0' '1' >"$T/big.json"
check "oversized body: 413" [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$T/big.json" "$URL/infer")" = 413 ]
check "unknown model: 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v2/models/nope")" = 404 ]
check "still ready after all that" curl -sf "$BASE/v2/health/ready" -o /dev/null
"$ADVEX" attack --target "$URL" --data "$D" --limit 4 --attack none --eps 0 --quiet >/dev/null 2>&1
check "and still answers infer" [ $? -eq 0 ]
stop

# ---- labels only: HopSkipJump within 1000 queries ----
check "serve --output label" start lab --output label
"$ADVEX" eval --target "$URL" --data "$D" --limit 20 --attack hsj --norm l2 --eps 3 --queries 1000 \
    --json "$T/hsj.json" --quiet >"$T/hsj.out" 2>&1
check "hsj through a label-only target runs" [ $? -eq 0 ]
check "hsj: queries_total equals the server's count" [ "$(jfield "$T/hsj.json" queries_total)" = "$(served)" ]
check "hsj: budget of 1000 per example holds" [ "$(jfield "$T/hsj.json" queries_total)" -le 20000 ]
check "hsj lowers robust accuracy by at least a third of clean" $PY -c "
import json; j=json.load(open('$T/hsj.json')); r=j['results'][0]
assert r['robust_accuracy'] <= 0.67 * j['clean_accuracy'], (r['robust_accuracy'], j['clean_accuracy'])"
"$ADVEX" attack --target "$URL" --data "$D" --limit 4 --attack square --eps 0.1 --quiet >"$T/sl.out" 2>&1
check "square on a label-only target exits 2" [ $? -eq 2 ]
before=$(served)
"$ADVEX" attack --target "$URL" --data "$D" --limit 16 --attack hsj --norm l2 --eps 4 --queries 500 --targeted next \
    --out "$T/thsj.npy" --quiet >"$T/thsj.out" 2>&1
check "targeted hsj through a label-only target runs" [ $? -eq 0 ]
check "targeted hsj: queries sent equal the server's count" [ "$(sent "$T/thsj.out")" -eq $(( $(served) - before )) ]
check "targeted hsj: budget of 500 per example holds" [ "$(sent "$T/thsj.out")" -le $((16 * 500)) ]
check "targeted hsj: every changed example is on its target for the model itself" on_target thsj l2 4 changed
"$ADVEX" attack --target "$URL" --data "$D" --limit 4 --attack hsj --eps 3 --targeted least-likely --quiet >"$T/ll.out" 2>&1
rc=$?
check "least-likely targets on a label-only target: exit 2, one line" \
    sh -c "[ $rc -eq 2 ] && [ \$(wc -l <'$T/ll.out') -eq 1 ] && grep -q 'least-likely targets need scores' '$T/ll.out'"
stop

# ---- a server that goes bad mid-run: a clean failure naming the problem ----
for f in html nan shape 500; do
    start "f$f" --fault-after 40 --fault $f || bad "fault server $f"
    "$ADVEX" attack --target "$URL" --data "$D" --limit 8 --attack square --eps 0.1 --queries 50 --retries 1 \
        --out "$T/f$f.npy" --quiet >"$T/f$f.out" 2>&1
    check "fault $f: exit 1" [ $? -eq 1 ]
    check "fault $f: no output file" [ ! -e "$T/f$f.npy" ]
    check "fault $f: one clear line" [ "$(wc -l <"$T/f$f.out")" -le 2 ]
    stop
done
check "html page recognised" grep -q "not JSON (response starts \"<html>" "$T/fhtml.out"
check "non-finite scores recognised" grep -qi "non-finite" "$T/fnan.out"
check "wrong shape recognised" grep -q "output shape is not" "$T/fshape.out"
check "5xx retried, then reported" grep -q "HTTP 500" "$T/f500.out"
start f5 --fault-after 1 --fault 500 || bad "fault server"
"$ADVEX" attack --target "$URL" --data "$D" --limit 4 --attack none --eps 0 --retries 2 --target-batch 2 --query-log "$T/r.jsonl" \
    --quiet >/dev/null 2>&1
check "retries: 1 + 2 attempts logged, each a 500" $PY -c "
import json
rows = [json.loads(l) for l in open('$T/r.jsonl')]
assert rows[0]['outcome'] == 'ok' and [r['attempt'] for r in rows[1:]] == [0, 1, 2], rows
assert all('HTTP 500' in r['outcome'] for r in rows[1:]), rows"
stop
"$ADVEX" attack --target "$URL" --data "$D" --limit 4 --attack hsj --eps 1 --steps 5 --quiet >/dev/null 2>&1
check "--steps without --surrogate is refused, not ignored" [ $? -eq 2 ]

# ---- resumable runs: a server failing mid-run leaves a state; the same command resumes on a
# healthy server (same URL) with the uninterrupted run's results and queries only for the
# examples the state does not record ----
same_results() { $PY - "$@" <<'EOF'
import json, sys
def strip(o):
    if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if "second" not in k}
    if isinstance(o, list): return [strip(v) for v in o]
    return o
a, b = (strip(json.load(open(f))) for f in sys.argv[1:3])
assert a == b, (a, b)
EOF
}
# unsent FULL.jsonl R: the queries of the first R example-runs (run-major, as a state records
# them) in the uninterrupted run's per-example lines
unsent() { $PY - "$@" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
eps = sorted({r["eps"] for r in rows}); n = len(rows) // len(eps)
by = {(r["eps"], r["index"]): r["attacks"][0].get("queries", 0) for r in rows}
order = [by[(e, i)] for e in eps for i in range(n)]
print(sum(order[:int(sys.argv[2])]))
EOF
}
resumed() { sed -n 's/.*(\([0-9]*\) of [0-9]* example runs were recorded.*/\1/p' "$1"; }
# resume_case NAME SERVE-ARGS -- EVAL-ARGS: full run, failing run, resumed run, resumed again
resume_case() {
    local name=$1; shift
    local sargs=() eargs=()
    while [ "$1" != "--" ]; do sargs+=("$1"); shift; done; shift
    eargs=("$@")
    start "$name" "${sargs[@]}" || bad "$name: server"
    "$ADVEX" eval --target "$URL" "${eargs[@]}" --state "$T/$name.full.st" --json "$T/$name.full.json" \
        --per-example "$T/$name.full.jsonl" --quiet >"$T/$name.full.out" 2>&1
    check "$name: uninterrupted run with --state" [ $? -eq 0 ]
    local full; full=$(served)
    check "$name: its queries_total (every run's) is the server's count" [ "$(jtotal "$T/$name.full.json")" = "$full" ]
    local port=$PORT_USED; stop
    PORT=$port start "$name" "${sargs[@]}" --fault-after $((full / 2)) --fault 500 || bad "$name: fault server"
    "$ADVEX" eval --target "$URL" "${eargs[@]}" --state "$T/$name.st" --json "$T/$name.json" --retries 0 \
        --quiet >"$T/$name.fail.out" 2>&1
    local rc=$?
    check "$name: the server failing mid-run is a clean failure (exit 1, one line)" \
        sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$T/$name.fail.out') -eq 1 ] && grep -q 'HTTP 500' '$T/$name.fail.out'"
    check "$name: no results written, the state kept" sh -c "[ ! -e '$T/$name.json' ] && [ -s '$T/$name.st' ]"
    stop
    PORT=$port start "$name" "${sargs[@]}" || bad "$name: server again"
    "$ADVEX" eval --target "$URL" "${eargs[@]}" --state "$T/$name.st" --json "$T/$name.json" \
        --per-example "$T/$name.jsonl" >"$T/$name.res.out" 2>&1
    check "$name: resumed on a healthy server" [ $? -eq 0 ]
    local r; r=$(resumed "$T/$name.res.out")
    check "$name: the state recorded part of the run (${r:-0} example-runs)" [ "${r:-0}" -gt 0 ]
    check "$name: resumed results equal the uninterrupted run's" same_results "$T/$name.full.json" "$T/$name.json"
    check "$name: per-example lines too" cmp -s "$T/$name.full.jsonl" "$T/$name.jsonl"
    local want got
    want=$(( full - $(unsent "$T/$name.full.jsonl" "${r:-0}") )); got=$(served)
    check "$name: no query re-sent for a recorded example (server counted $got, want $want of $full)" \
        [ "$got" -eq "$want" ]
    "$ADVEX" eval --target "$URL" "${eargs[@]}" --state "$T/$name.full.st" --json "$T/$name.again.json" --quiet \
        >/dev/null 2>&1
    rc=$?
    check "$name: a finished state resumes without a single query" sh -c "[ $rc -eq 0 ] && [ $(served) -eq $got ]"
    check "$name: ... to the same results" same_results "$T/$name.full.json" "$T/$name.again.json"
    "$ADVEX" eval --target "$URL" "${eargs[@]}" --state "$T/$name.full.st" --min-robust-accuracy 1 \
        --junit "$T/$name.xml" --quiet >"$T/$name.gate.out" 2>&1
    rc=$?
    check "$name: the gate through a target (exit 3 below 100%), JUnit written" \
        sh -c "[ $rc -eq 3 ] && grep -q 'gate failed' '$T/$name.gate.out' && grep -q '<testsuite' '$T/$name.xml'"
    stop
}
resume_case rsq -- --data "$D" --limit 24 --attack square --eps 0.05,0.1 --queries 60 --batch 8
resume_case rhsj --output label -- --data "$D" --limit 12 --attack hsj --norm l2 --eps 4 --queries 200 --batch 4 \
    --targeted next
start rsq2 || bad "server"
"$ADVEX" eval --target "$URL" --data "$D" --limit 24 --attack square --eps 0.05,0.1 --queries 60 --batch 8 \
    --state "$T/rsq.full.st" --quiet >"$T/other.out" 2>&1
rc=$?
check "a state written against another target is refused (exit 2, naming it)" \
    sh -c "[ $rc -eq 2 ] && grep -q 'different model' '$T/other.out' && [ \$(wc -l <'$T/other.out') -eq 1 ]"
check "... before any query" [ "$(served)" -eq 0 ]
stop
"$ADVEX" attack --target "$URL" --data "$D" --limit 2 --attack square --eps 0.1 --state "$T/x.st" --quiet >"$T/as.out" 2>&1
check "attack --target has no --state (eval's): exit 2" [ $? -eq 2 ]

# ---- exec: a program over pipes ----
PROG="$SRC/tests/fixtures/target/linear_exec.py"
"$ADVEX" attack --target "exec:$PY $PROG" --data "$D" --limit 8 --attack square --eps 0.05 --queries 20 \
    --target-batch 3 --query-log "$T/e.jsonl" --quiet >"$T/e.out" 2>&1
check "exec: target runs" [ $? -eq 0 ]
check "exec: every image counted" $PY -c "
import json; s=sum(json.loads(l)['batch'] for l in open('$T/e.jsonl')); t=int(open('$T/e.out').read().split('queries sent:')[1].split()[0]); assert s == t <= 160, (s, t)"
"$ADVEX" attack --target "exec:echo hello" --data "$D" --limit 2 --attack square --eps 0.05 --quiet >"$T/e2.out" 2>&1
check "exec: a program that does not speak the framing is a clean failure" grep -q "expected \"advex-target 1" "$T/e2.out"
finish
