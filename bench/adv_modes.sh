#!/bin/sh
# Adversarial-training modes side by side on a budget: `small` on the first 10000
# Fashion-MNIST training images, 5 epochs, one-cycle SGD (lr 0.1, weight decay 5e-4),
# eps 0.1 ramped over 2 epochs; then clean accuracy (full test set), FGSM and PGD-50x10 on
# the first 1000 test images. Writes bench/results/adv_modes.txt.
# Usage: bench/adv_modes.sh [BUILD_DIR]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
advex=${1:-"$here/build"}/advex
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "# advex adversarial-training modes, $(date -u '+%Y-%m-%d %H:%M'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%-8s %8s %8s %8s %12s\n' mode wall_s clean fgsm pgd50x10
    for mode in none fgsm fgsm-rs pgd trades; do
        s=$(date +%s)
        adv="--adv $mode --eps 0.1 --eps-ramp 2"
        [ "$mode" = none ] && adv=""
        "$advex" train --arch small --limit 10000 --epochs 5 --opt sgd --lr 0.1 --weight-decay 5e-4 --schedule onecycle \
            $adv --checkpoint none --quiet --out "$tmp/$mode.onnx" >"$tmp/train.log" 2>&1
        wall=$(( $(date +%s) - s ))
        clean=$(sed -n 's/^test accuracy: \([0-9.]*%\).*/\1/p' "$tmp/train.log")
        "$advex" eval --model "$tmp/$mode.onnx" --data fashion-mnist:test --limit 1000 --attack fgsm,pgd --steps 50 \
            --restarts 10 --eps 0.1 --quiet --no-checks >"$tmp/eval.log" 2>&1
        fgsm=$(awk '$1 == "fgsm" { print $3 }' "$tmp/eval.log")
        pgd=$(awk '$1 == "pgd" { print $3 }' "$tmp/eval.log")
        printf '%-8s %8s %8s %8s %12s\n' "$mode" "$wall" "$clean" "$fgsm" "$pgd"
    done
} | tee "$here/bench/results/adv_modes.txt"
