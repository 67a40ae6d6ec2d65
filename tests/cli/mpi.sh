#!/bin/bash
# Scale-out with Open MPI (docs/scaling.md), 2 ranks x 1 thread on one machine: eval (JSON,
# report) and attack (.npy, printed results) identical to one process with the same seed;
# progress and warnings shown once, for the whole job; 2-rank clean training matching one
# process (same global batch) to float rounding; --resume of a 2-rank checkpoint by one
# process; a rank that fails alone and a killed rank make the job fail with no output file.
# A 2-rank eval with --state and --per-example equals one process, its state resumes on one process
# or (after SIGKILL) on 2 ranks to the same results; a failed --min-robust-accuracy exits 3 on 2
# ranks; --target refuses N > 1 ranks. Built without MPI: only that such an advex refuses to run under mpirun -np 2. Skipped
# (passes) without mpirun.
# Usage: mpi.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The sanitizer build: no leak check here. Open MPI keeps allocations until exit in plug-ins it
# unloads (dlclose), whose frames no suppression can name; advex's sharding and data-parallel
# code is leak-checked by tests/test_shard.c, which runs it without MPI. ASan's and UBSan's
# other checks stay on.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MPI="mpirun --oversubscribe -np 2"
M="$SRC/tests/fixtures/attacks/small_pgd.onnx"
D="fashion-mnist:test"
if ! command -v mpirun >/dev/null; then
    echo "skip: no mpirun"; finish; exit
fi
if ! ldd "$ADVEX" 2>/dev/null | grep -q libmpi; then
    # a build without MPI refuses to run the whole job in every process mpirun starts
    $MPI "$ADVEX" eval --model "$M" --data $D --limit 20 --json "$T/x.json" >/dev/null 2>"$T/x.err"
    check "a build without MPI refuses mpirun -np 2" [ $? -ne 0 ]
    check "saying why" grep -q "built without MPI" "$T/x.err"
    check "no output file" [ ! -e "$T/x.json" ]
    echo "skip: advex built without MPI (the rest)"; finish; exit
fi
strip_seconds() { # JSON without the timings
    $PY -c 'import json,sys
d=json.load(open(sys.argv[1]))
for r in d["results"]: r.pop("seconds", None)
print(json.dumps(d, sort_keys=True))' "$1"
}

# ---- eval: the whole table, JSON and report identical; progress once, for the job's examples --------
EV="eval --model $M --data $D --limit 200 --attack fgsm-rs,pgd,square --eps 0.1,0.2 --steps 5 --queries 60 --threads 1"
# (shards are whole batches: --batch 25 gives each rank 4 of the 8)
"$ADVEX" $EV --batch 25 --json "$T/e1.json" --report "$T/r1" >"$T/e1.out" 2>"$T/e1.err"
check "eval, one process" [ $? -eq 0 ]
$MPI "$ADVEX" $EV --batch 25 --json "$T/e2.json" --report "$T/r2" >"$T/e2.out" 2>"$T/e2.err"
check "eval, 2 ranks" [ $? -eq 0 ]
check "eval JSON identical" [ "$(strip_seconds "$T/e1.json")" = "$(strip_seconds "$T/e2.json")" ]
check "report results identical" [ "$(strip_seconds "$T/r1/results.json")" = "$(strip_seconds "$T/r2/results.json")" ]
check "report grids identical" cmp -s <(ls "$T/r1") <(ls "$T/r2")
for f in "$T"/r1/*.png; do check "report image $(basename "$f")" cmp -s "$f" "$T/r2/$(basename "$f")"; done
check "table printed once" [ "$(grep -c '^pgd ' "$T/e2.out")" -eq 2 ]
check "table identical" [ "$(awk '{$NF=""; print $1,$2,$3,$4}' "$T/e1.out")" = "$(awk '{$NF=""; print $1,$2,$3,$4}' "$T/e2.out")" ]
check "warnings once" [ "$(grep -c 'warning:' "$T/e2.err")" -eq "$(grep -c 'warning:' "$T/e1.err")" ]
check "progress of the whole job (200 examples)" grep -q "pgd eps=0.1 .*/200" "$T/e2.err"
check "no progress of a shard (100)" bash -c "! grep -q '/100 ' '$T/e2.err'"

# ---- per-example file, CI gate and the state file of a 2-rank eval --------------------------------------
SV="eval --model $M --data $D --limit 200 --attack pgd,deepfool --eps 0.05,0.1 --steps 10 --batch 10 --threads 1 --no-checks"
"$ADVEX" $SV --json "$T/s1.json" --per-example "$T/s1.jsonl" --quiet >/dev/null 2>"$T/s1.err"
check "state reference, one process" [ $? -eq 0 ]
$MPI "$ADVEX" $SV --json "$T/s2.json" --per-example "$T/s2.jsonl" --state "$T/s2.state" --quiet >/dev/null 2>"$T/s2.err"
check "2 ranks with a state file" [ $? -eq 0 ]
check "its JSON identical" [ "$(strip_seconds "$T/s1.json")" = "$(strip_seconds "$T/s2.json")" ]
check "per-example lines identical" cmp -s "$T/s1.jsonl" "$T/s2.jsonl"
rm -f "$T/s3.json"
"$ADVEX" $SV --json "$T/s3.json" --state "$T/s2.state" >/dev/null 2>"$T/s3.err"
check "the 2-rank state resumed by one process: all recorded" grep -q "resumed from .*(800 of 800 example runs" "$T/s3.err"
check "and its JSON identical" [ "$(strip_seconds "$T/s1.json")" = "$(strip_seconds "$T/s3.json")" ]
# killed once rank 0 recorded a batch (the file exists), resumed on 2 ranks: the same results
$MPI "$ADVEX" $SV --json "$T/s4.json" --state "$T/s4.state" --quiet >/dev/null 2>"$T/s4.err" &
pid=$!
for i in $(seq 1 20000); do [ -s "$T/s4.state" ] || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.01; done
kill -KILL "$pid" 2>/dev/null
{ wait "$pid"; } 2>/dev/null
check "killed 2-rank run: no results" [ ! -e "$T/s4.json" ]
check "killed 2-rank run: a state recorded" [ -s "$T/s4.state" ]
$MPI "$ADVEX" $SV --json "$T/s4.json" --state "$T/s4.state" >/dev/null 2>"$T/s4b.err"
check "resumed on 2 ranks" [ $? -eq 0 ]
check "resumed: said once" [ "$(grep -c 'resumed from' "$T/s4b.err")" -le 1 ]
check "resumed 2-rank JSON identical" [ "$(strip_seconds "$T/s1.json")" = "$(strip_seconds "$T/s4.json")" ]
# --min-robust-accuracy below the result: exit 3 on 2 ranks too, outputs written, no abort
$MPI "$ADVEX" $SV --json "$T/s5.json" --min-robust-accuracy 0.99 >/dev/null 2>"$T/s5.err"
check "gate fails with exit 3 on 2 ranks" [ $? -eq 3 ]
check "gate: JSON written" [ -s "$T/s5.json" ]
check "gate: no MPI abort" bash -c "! grep -qi 'MPI_ABORT' '$T/s5.err'"
# a model behind an API is not sharded
$MPI "$ADVEX" eval --target http://127.0.0.1:9/v2/models/m --data $D --limit 10 --eps 0.1 >/dev/null 2>"$T/tg.err"
check "--target on 2 ranks refused" [ $? -eq 2 ]
check "--target: one message" [ "$(grep -c '^advex eval: --target runs as one process' "$T/tg.err")" -eq 1 ]

# a randomized model (draws per batch from the seed and the batch's first example): identical too
RV="eval --model $SRC/tests/fixtures/random/noise.onnx --data $D --limit 40 --batch 10 --version rand --eps 0.1 --threads 1 --no-checks --quiet"
"$ADVEX" $RV --json "$T/n1.json" >/dev/null 2>"$T/n1.err"
check "randomized model, one process" [ $? -eq 0 ]
$MPI "$ADVEX" $RV --json "$T/n2.json" >/dev/null 2>"$T/n2.err"
check "randomized model, 2 ranks" [ $? -eq 0 ]
check "randomized model: JSON identical" [ "$(strip_seconds "$T/n1.json")" = "$(strip_seconds "$T/n2.json")" ]

# ---- attack: the adversarial examples byte for byte, random targets and starts seeded per example ----
AT="attack --model $M --data $D --limit 150 --batch 25 --attack pgd --target random --eps 0.1 --steps 5 --threads 1 --seed 7"
"$ADVEX" $AT --out "$T/a1.npy" >"$T/a1.out" 2>"$T/a1.err"
check "attack, one process" [ $? -eq 0 ]
$MPI "$ADVEX" $AT --out "$T/a2.npy" >"$T/a2.out" 2>"$T/a2.err"
check "attack, 2 ranks" [ $? -eq 0 ]
check "adversarial examples identical" cmp -s "$T/a1.npy" "$T/a2.npy"
check "attack report identical" [ "$(grep -v -e seconds -e wrote "$T/a1.out")" = "$(grep -v -e seconds -e wrote "$T/a2.out")" ]

# ---- training: same global batch -> same model to float rounding; --resume across rank counts --------
TR="train --arch small --data fashion-mnist --limit 2000 --batch 100 --holdout 0 --test-data none --threads 1 --quiet"
"$ADVEX" $TR --epochs 2 --checkpoint none --out "$T/t1.onnx" >/dev/null 2>"$T/t1.err"
check "train, one process" [ $? -eq 0 ]
$MPI "$ADVEX" $TR --epochs 2 --checkpoint none --out "$T/t2.onnx" >/dev/null 2>"$T/t2.err"
check "train, 2 ranks" [ $? -eq 0 ]
logits_close() { # the two models' logits on 500 test examples
    "$ADVEX" predict --model "$1" --data $D --limit 500 --out "$T/p1.npy" --quiet >/dev/null &&
    "$ADVEX" predict --model "$2" --data $D --limit 500 --out "$T/p2.npy" --quiet >/dev/null &&
    $PY -c 'import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
d = abs(a - b).max(); print("max logit difference", d)
assert d < 1e-3 * max(1, abs(a).max()), d' "$T/p1.npy" "$T/p2.npy"
}
check "2-rank training matches one process" logits_close "$T/t1.onnx" "$T/t2.onnx"
# a 2-rank run stopped after its first checkpoint, resumed by one process
$MPI "$ADVEX" $TR --epochs 2 --checkpoint "$T/k.ckpt" --out "$T/k.onnx" >/dev/null 2>"$T/k.err" &
pid=$!
for i in $(seq 1 6000); do [ -e "$T/k.ckpt" ] || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.05; done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
check "2-rank checkpoint written" [ -s "$T/k.ckpt" ]
rm -f "$T/k.onnx"
"$ADVEX" $TR --epochs 2 --checkpoint "$T/k.ckpt" --resume --out "$T/k.onnx" >/dev/null 2>"$T/k2.err"
check "resumed by one process" [ $? -eq 0 ]
check "resumed model matches one process" logits_close "$T/t1.onnx" "$T/k.onnx"

# ---- commands that do not scale out refuse N > 1 ranks (each would run the whole job) ---------------
$MPI "$ADVEX" predict --model "$M" --data $D --limit 20 --out "$T/p.npy" >/dev/null 2>"$T/p.err"
check "predict on 2 ranks refused" [ $? -eq 2 ]
check "predict: one message" [ "$(grep -c '^advex predict: runs as one process' "$T/p.err")" -eq 1 ]
check "predict: no output" [ ! -e "$T/p.npy" ]

# ---- failures: one clear message, non-zero exit, no output file -------------------------------------
# rank 1 alone fails (its memory cap is too small for the model)
$MPI bash -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$0" "$@" --max-memory 1K; else exec "$0" "$@"; fi' \
    "$ADVEX" $EV --batch 25 --json "$T/f.json" >"$T/f.out" 2>"$T/f.err"
rc=$?
check "a failing rank fails the job" [ "$rc" -ne 0 ]
check "no output file after a failing rank" [ ! -e "$T/f.json" ]
check "the failing rank's message" grep -q "advex eval: .*memory" "$T/f.err"
# rank 1 fails inside the run (its memory cap fits the model, not a batch's activations): every
# rank stops at that run, and rank 0 prints rank 1's message, once
$MPI bash -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$0" "$@" --max-memory 2M; else exec "$0" "$@"; fi' \
    "$ADVEX" eval --model "$M" --data $D --limit 100 --batch 50 --attack pgd --eps 0.1 --no-checks --threads 1 \
    --json "$T/g.json" >"$T/g.out" 2>"$T/g.err"
rc=$?
check "a rank failing in the run fails the job" [ "$rc" -ne 0 ]
check "no output file after a rank failing in the run" [ ! -e "$T/g.json" ]
check "its message once, from rank 0" [ "$(grep -c '^advex eval: rank 1 of 2: memory limit' "$T/g.err")" -eq 1 ]
check "no other advex message" [ "$(grep -c '^advex' "$T/g.err")" -eq 1 ]
# rank 1 killed while rank 0 is in its first run: rank 1 cannot have finished (it must join the
# gathers of the later runs), so the kill always lands mid-job
rm -f "$T/pid1"
$MPI bash -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then echo $$ >"'"$T"'/pid1.tmp"; mv "'"$T"'/pid1.tmp" "'"$T"'/pid1"; fi; exec "$0" "$@"' \
    "$ADVEX" $EV --batch 20 --json "$T/k.json" >"$T/k.out" 2>"$T/k.err" &
pid=$!
wait_for "$T/k.err" "fgsm-rs eps=0.1" "$pid"
for i in $(seq 1 6000); do [ -e "$T/pid1" ] || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.05; done
check "rank 0 started its first run" grep -q "fgsm-rs eps=0.1" "$T/k.err"
check "rank 1 alive" kill -0 "$(cat "$T/pid1")"
kill -KILL "$(cat "$T/pid1")"
wait "$pid"
rc=$?
check "a killed rank fails the job" [ "$rc" -ne 0 ]
check "no output file after a killed rank" [ ! -e "$T/k.json" ]
finish
