#!/bin/bash
# Scale-out on this machine: eval and training throughput of 1 rank x 1 thread against
# `mpirun -np 2` x 1 thread (docs/scaling.md). The 1- and 2-rank runs alternate, REPS times
# each, so both see the same background load; medians are quoted, with the load average
# before and after. Wall times include mpirun's start and the data and model loading. CPU
# times (user + sys of every process, mpirun's included) show whether the work is split
# without duplication: 2 x (1-rank CPU) / (2-rank CPU) is the speed-up the split allows on
# two free cores, whatever the load when measured. Waiting ranks yield their core
# (OMPI_MCA_mpi_yield_when_idle=1) so they do not spin on a shared machine.
# The floors (issue 19) are on the job's own time (attack or training throughput); the whole
# command's wall time, with mpirun's start and every rank loading the data, is printed too.
# Writes bench/results/mpi_scaling.txt.
# Usage: bench/mpi_scaling.sh [BUILD_DIR] [REPS]   (default: build, 3)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$here/build"}
reps=${2:-3}
A="$build/advex"
out="$here/bench/results/mpi_scaling.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
M="$here/tests/fixtures/attacks/small_pgd.onnx"
EVAL="eval --model $M --data fashion-mnist:test --limit 10000 --attack pgd --eps 0.1 --steps 20 --no-checks --threads 1 --quiet --json $tmp/r.json"
TRAIN="train --arch small --data fashion-mnist --limit 60000 --epochs 1 --adv fgsm-rs --eps 0.1 --holdout 0 --test-data none --checkpoint none --threads 1 --quiet --out $tmp/t.onnx"
# "wall cpu work" seconds of a command; work: the job's own time, without mpirun's start and the
# model and data loading (eval: the run's seconds in --json; train: "trained N epochs in S s")
wall() {
    /usr/bin/time -o "$tmp/time" -f "%e %U %S" "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    local work
    if [ -s "$tmp/r.json" ]; then
        work=$(/usr/bin/python3 -c 'import json,sys; print(sum(r["seconds"] for r in json.load(open(sys.argv[1]))["results"]))' "$tmp/r.json")
        rm -f "$tmp/r.json"
    else
        work=$(sed -n 's/^trained .* in \([0-9.]*\) s$/\1/p' "$tmp/out")
    fi
    awk -v w="$work" '{ printf "%.3f %.3f %.3f\n", $1, $2 + $3, w }' "$tmp/time"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for what in eval train; do
    cmd=$EVAL; [ "$what" = train ] && cmd=$TRAIN
    : >"$tmp/$what.1"; : >"$tmp/$what.2"
    for r in $(seq 1 "$reps"); do
        wall "$A" $cmd >>"$tmp/$what.1"
        wall mpirun --oversubscribe -np 2 "$A" $cmd >>"$tmp/$what.2"
    done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
{
    echo "# advex MPI scaling, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $reps runs each, alternating"
    echo "# load average (1, 5, 15 min) before: $load0   after: $load1"
    echo "# eval:  $EVAL"
    echo "# train: $TRAIN"
    for what in eval train; do
        m1=$(cut -d' ' -f1 "$tmp/$what.1" | median); m2=$(cut -d' ' -f1 "$tmp/$what.2" | median)
        c1=$(cut -d' ' -f2 "$tmp/$what.1" | median); c2=$(cut -d' ' -f2 "$tmp/$what.2" | median)
        w1=$(cut -d' ' -f3 "$tmp/$what.1" | median); w2=$(cut -d' ' -f3 "$tmp/$what.2" | median)
        printf '%-5s job (attack/training only): 1 rank x 1 thread %6.2f s, 2 ranks x 1 thread %6.2f s, speed-up %.2fx   (runs: %s| %s)\n' \
            "$what" "$w1" "$w2" "$(awk -v a="$w1" -v b="$w2" 'BEGIN { print a / b }')" \
            "$(cut -d' ' -f3 "$tmp/$what.1" | tr '\n' ' ')" "$(cut -d' ' -f3 "$tmp/$what.2" | tr '\n' ' ')"
        printf '%-5s whole command (mpirun, loading): %6.2f s, %6.2f s, speed-up %.2fx | CPU: %5.2f s, %5.2f s, split allows %.2fx\n' \
            "$what" "$m1" "$m2" "$(awk -v a="$m1" -v b="$m2" 'BEGIN { print a / b }')" "$c1" "$c2" \
            "$(awk -v a="$c1" -v b="$c2" 'BEGIN { print 2 * a / b }')"
    done
} | tee "$out"
