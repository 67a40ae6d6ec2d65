#!/bin/sh
# Training floors of the foundation issue, measured with the CLI on the full Fashion-MNIST
# sets: `small` >= 88% test accuracy within 3 epochs, `cnn` >= 91% within 5 epochs.
# Prints the accuracy and wall time of each and writes bench/results/train_floors.txt.
# Usage: bench/train_floors.sh [BUILD_DIR]   (default: build)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$here/build"}
out="$here/bench/results/train_floors.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "# advex train floors, $(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    for spec in "small 3 0.88" "cnn 5 0.91"; do
        set -- $spec
        start=$(date +%s.%N)
        "$build/advex" train --arch "$1" --epochs "$2" --seed 0 --quiet --out "$tmp/$1.onnx" >"$tmp/$1.log"
        end=$(date +%s.%N)
        acc=$(sed -n 's/^test accuracy: \([0-9.]*\)%.*/\1/p' "$tmp/$1.log")
        verdict=$(awk -v a="$acc" -v f="$3" 'BEGIN { print (a / 100 >= f) ? "PASS" : "FAIL" }')
        printf '%-6s epochs %s  test accuracy %s%%  floor %s%%  wall %.0f s  %s\n' "$1" "$2" "$acc" \
            "$(awk -v f="$3" 'BEGIN { print f * 100 }')" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$verdict"
    done
} | tee "$out"
