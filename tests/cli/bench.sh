#!/bin/bash
# advex bench: the JSON it prints (keys, one rate per repetition, the median, GFLOP/s from the
# model's multiply-adds), --scaling (one 1-thread repetition beside each T-thread one, the pair
# ratios and their median consistent with the rates), its usage errors and ^C (exit 130, no
# figures from incomplete repetitions). Timings are not judged here (bench/compare.py
# measures them); only that the report is self-consistent.
# Usage: bench.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"

"$ADVEX" bench --arch small --attack fgsm --batch 32 --threads 2 --reps 3 --min-time 0.01 --json >"$T/b.json" 2>"$T/b.err"
check "bench --json exits 0 ($(cat "$T/b.err"))" test $? -eq 0
"$ADVEX" bench --arch small --attack pgd --steps 2 --batch 32 --threads 2 --reps 4 --min-time 0.01 --scaling --json \
    >"$T/s.json" 2>"$T/s.err"
check "bench --scaling --json exits 0 ($(cat "$T/s.err"))" test $? -eq 0
"$ADVEX" bench --arch small --batch 32 --threads 2 --reps 2 --min-time 0.01 --scaling >"$T/s.txt" 2>&1
check "bench --scaling text names the ratio" grep -q "2 threads / 1 thread: [0-9.]*x (median of 2 side-by-side pairs)" "$T/s.txt"

$PY - "$T/b.json" "$T/s.json" <<'PYEOF' >"$T/py.out" 2>&1
import json, statistics, sys
b = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
errs = []
def want(c, msg):
    if not c: errs.append(msg)
for d, reps in ((b, 3), (s, 4)):
    want(d["tool"] == "advex" and d["threads"] == 2 and d["batch"] == 32, f"header {d}")
    want(len(d["rates"]) == reps and all(r > 0 for r in d["rates"]), f"rates {d['rates']}")
    want(abs(d["images_per_second"] - statistics.median(d["rates"])) <= 1e-3 * d["images_per_second"], "median")
    want(abs(d["seconds_per_batch"] - 32 / d["images_per_second"]) < 1e-5, "seconds_per_batch")
    want(d["iterations"] >= reps, "iterations")
    want(0 <= d["load_seconds"] < 60, f"load_seconds {d.get('load_seconds')}")
# small: conv 16*1*4*4*14*14 + conv 32*16*4*4*7*7 + 1568*100 + 100*10 multiply-adds; FGSM = 2 passes
macs = 16 * 16 * 196 + 32 * 256 * 49 + 1568 * 100 + 1000
want(abs(b["gflop_per_image"] - 2 * 2 * macs * 1e-9) < 1e-6, f"gflop_per_image {b['gflop_per_image']}")
want(abs(s["gflop_per_image"] - 2 * 2 * 2 * macs * 1e-9) < 1e-6, "PGD-2 gflop_per_image")
want("scaling" not in b, "scaling without --scaling")
sc = s.get("scaling", {})
want(sc.get("threads") == 2, "scaling threads")
r1, pr = sc.get("rates_1_thread", []), sc.get("pair_ratios", [])
want(len(r1) == 4 and len(pr) == 4 and all(r > 0 for r in r1), f"scaling lists {sc}")
for t, o, p in zip(s["rates"], r1, pr):
    want(abs(p - t / o) <= 1e-3 * p, f"pair ratio {p} != {t}/{o}")
if pr:
    want(abs(sc["median_pair_ratio"] - statistics.median(pr)) <= 1e-3 * sc["median_pair_ratio"], "median pair ratio")
    want(abs(sc["images_per_second_1_thread"] - statistics.median(r1)) <= 1e-3 * sc["images_per_second_1_thread"], "1-thread median")
print("\n".join(errs) if errs else "OK")
PYEOF
check "bench JSON is self-consistent: $(cat "$T/py.out")" grep -qx OK "$T/py.out"

# usage errors: one line on stderr naming the flag, exit 2, nothing on stdout
usage() {
    local what=$1 flag=$2; shift 2
    "$ADVEX" bench "$@" >"$T/u.out" 2>"$T/u.err"
    local rc=$?
    check "$what: exit 2 (got $rc)" test $rc -eq 2
    check "$what: one stderr line naming $flag ($(cat "$T/u.err"))" bash -c "[ \$(wc -l <'$T/u.err') -eq 1 ] && grep -q -- '$flag' '$T/u.err'"
    check "$what: nothing on stdout" test ! -s "$T/u.out"
}
usage "--scaling on 1 thread" --scaling --arch small --threads 1 --scaling
usage "unknown workload" --attack --arch small --attack cw
usage "zero reps" --reps --arch small --reps 0

# ^C during the repetitions: exit 130, "interrupted" on stderr, no figures on stdout
# (interrupted once its repetitions have begun: 3 x 30 s cannot finish first)
"$ADVEX" bench --arch small --batch 32 --threads 2 --reps 3 --min-time 30 --json >"$T/i.out" 2>"$T/i.err" &
pid=$!
check "bench: says when timing starts" wait_for "$T/i.err" "timing 3 repetitions" $pid
kill -INT $pid
wait $pid
rc=$?
check "bench ^C: exit 130 (got $rc)" test $rc -eq 130
check "bench ^C: says interrupted ($(cat "$T/i.err"))" grep -qx "advex bench: interrupted" "$T/i.err"
check "bench ^C: no JSON" test ! -s "$T/i.out"
check "bench --quiet: no status line" bash -c "\"$ADVEX\" bench --arch small --batch 2 --reps 1 --min-time 0 --quiet --json 2>&1 >/dev/null | grep -c . | grep -qx 0"

finish
