#!/bin/sh
# Robust-training floor of issue 8, measured with the CLI: `advex train --preset fmnist-robust`
# (wall time, clean test accuracy on the full Fashion-MNIST test set), then PGD-50 with 10
# restarts at eps 0.1 on the first 2000 test images, then the `standard` (AutoAttack-style)
# ensemble on the same images. Floors: <= 15 min, >= 86% clean, >= 64% PGD-50x10.
# Writes bench/results/robust_training.txt.
# Usage: bench/robust_training.sh [BUILD_DIR] [EXTRA TRAIN FLAGS...]   (default: build)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$here/build"}
[ $# -gt 0 ] && shift
out="$here/bench/results/robust_training.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
advex="$build/advex"
{
    echo "# advex robust training (issue 8), $(date -u '+%Y-%m-%d %H:%M'), $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "\$ advex train --preset fmnist-robust $* --out M.onnx"
    start=$(date +%s.%N)
    "$advex" train --preset fmnist-robust "$@" --quiet --out "$tmp/M.onnx" 2>&1
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
    echo "train wall time: $wall s (floor 900 s)   load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "\$ advex eval --model M.onnx --data fashion-mnist:test --limit 2000 --attack pgd --steps 50 --restarts 10 --eps 0.1"
    "$advex" eval --model "$tmp/M.onnx" --data fashion-mnist:test --limit 2000 --attack pgd --steps 50 --restarts 10 \
        --eps 0.1 --threads 1 --quiet 2>&1
    echo "\$ advex eval --model M.onnx --data fashion-mnist:test --limit 2000 --attack fgsm --eps 0.1"
    "$advex" eval --model "$tmp/M.onnx" --data fashion-mnist:test --limit 2000 --attack fgsm --eps 0.1 --threads 1 --quiet 2>&1
    echo "\$ advex eval --model M.onnx --data fashion-mnist:test --limit 2000 --attack standard --eps 0.1"
    "$advex" eval --model "$tmp/M.onnx" --data fashion-mnist:test --limit 2000 --attack standard --eps 0.1 --threads 1 --quiet 2>&1 || true
} | tee "$out"
