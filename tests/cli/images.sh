#!/bin/bash
# Colour data end to end, against PIL and torchvision themselves (Debian's python3-pil and
# python3-torchvision; images_ref.py): folder:DIR read as torchvision's ImageFolder reads it
# (order, labels, PNG/JPEG decoding, Resize/CenterCrop: bit for bit), the grey path, --limit,
# RobustBench's list order, CIFAR-10 batches against torchvision's CIFAR10, float data against
# the antialiased tensor resize; hostile files and bad flags with their exit codes and no
# output; and predict / eval --attack standard / attack --input on a 3-channel model.
# Usage: images.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
REF="$PY $SRC/tests/cli/images_ref.py"
if ! $PY -c "import PIL, torchvision" 2>/dev/null; then
    echo "skip: python3-pil or python3-torchvision missing"; exit 0
fi

# expect CODE PATTERN -- command...: exit code, one stderr line matching PATTERN
expect() {
    local code=$1 pattern=$2; shift 3
    "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -q -- "$pattern" "$T/stderr" && [ "$(wc -l <"$T/stderr")" -le 2 ]; then ok; else
        bad "exit $rc (want $code), pattern '$pattern': $*"; sed 's/^/  stderr: /' "$T/stderr" | head -3; fi
}

$REF make-folder "$T/imgs" || { echo "FAIL: fixtures"; exit 1; }

# ---- folder: bit for bit against torchvision's ImageFolder ------------------------------------
for t in r64c56:"--resize 64 --crop 56" r300c320:"--resize 300 --crop 320" c40:"--crop 40" r31c17:"--resize 31 --crop 17"; do
    name=${t%%:*}
    # shellcheck disable=SC2086
    "$ADVEX" data --data "folder:$T/imgs" ${t#*:} --out "$T/x.npy" --labels "$T/y.npy" >"$T/out" 2>"$T/err"
    check "data $name exits 0 ($(cat "$T/err"))" test $? -eq 0
    check "folder $name equals torchvision" $REF compare-folder "$T/imgs" "$T/x.npy" "$T/y.npy" "$name"
done
check "data describes the set ($(cat "$T/out"))" grep -q "23 examples, 3x17x17, 2 classes (ant, bee)" "$T/out"
"$ADVEX" data --data "folder:$T/imgs" --resize 64 --crop 56 --input-shape 1,56,56 --out "$T/x.npy" --labels "$T/y.npy" >/dev/null
check "grey consumer equals Grayscale()" $REF compare-folder "$T/imgs" "$T/x.npy" "$T/y.npy" r64c56 grey
# no flags, a 3x48x48 consumer: fitted as Resize(48) + CenterCrop(48), said on stderr
"$ADVEX" data --data "folder:$T/imgs" --input-shape 3,48,48 --out "$T/x.npy" --labels "$T/y.npy" >/dev/null 2>"$T/err"
check "fit equals Resize(48) + CenterCrop(48)" $REF compare-folder "$T/imgs" "$T/x.npy" "$T/y.npy" r48c48
check "fit is said on stderr ($(cat "$T/err"))" grep -q "21 of 23 images resized (shorter side to 48) and centre-cropped to 48x48" "$T/err"
"$ADVEX" data --data "folder:$T/imgs" --input-shape 3,48,48 --quiet >/dev/null 2>"$T/err"
check "--quiet: no note" test ! -s "$T/err"
# --limit: the first N in torchvision's order
"$ADVEX" data --data "folder:$T/imgs" --crop 40 --limit 5 --out "$T/x5.npy" --labels "$T/y5.npy" >/dev/null
"$ADVEX" data --data "folder:$T/imgs" --crop 40 --out "$T/x.npy" --labels "$T/y.npy" >/dev/null
check "--limit 5 is the first 5" $PY -c "
import numpy as np, sys; a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape[0] == 5 and np.array_equal(a, b[:5]) and np.array_equal(np.load(sys.argv[3]), np.load(sys.argv[4])[:5])
" "$T/x5.npy" "$T/x.npy" "$T/y5.npy" "$T/y.npy"

# ---- RobustBench: a list file in its format, its order --------------------------------------
printf 'bee/1_q90.jpg\nant/0_rgb.png\nbee/grey.png\nant/nested/grey.jpg' >"$T/ids.txt"
"$ADVEX" data --data "folder:$T/imgs,$T/ids.txt" --limit 3 --input-shape 3,1,1 --out "$T/x.npy" --labels "$T/y.npy" \
    --quiet >/dev/null 2>"$T/err"
check "list: fitted to 1x1 ($(cat "$T/err"))" test $? -eq 0
"$ADVEX" data --data "folder:$T/imgs,$T/ids.txt" --resize 500 --crop 400 --limit 1 >/dev/null 2>&1
check "list with --resize/--crop exits 0" test $? -eq 0
mkdir -p "$T/same/ant" "$T/same/bee" "$T/same/cow"
cp "$T/imgs/ant/a_444.jpg" "$T/imgs/ant/a_prog.jpg" "$T/same/ant/"
cp "$T/imgs/bee/palette.png" "$T/imgs/bee/rgba.png" "$T/same/bee/"
printf 'bee/rgba.png\nant/a_prog.jpg\nbee/palette.png\nant/a_444.jpg\n' >"$T/same.txt"
"$ADVEX" data --data "folder:$T/same,$T/same.txt" --out "$T/x.npy" --labels "$T/y.npy" >/dev/null
check "list order and labels as RobustBench's CustomImageFolder" \
    $REF compare-robustbench "$T/same" "$T/same.txt" "$T/x.npy" "$T/y.npy" 4

# ---- CIFAR-10 against torchvision's CIFAR10 (the pickle version of the same data) ---------------
$REF make-cifar "$T/cifar" 7 3 || { echo "FAIL: cifar fixtures"; exit 1; }
"$ADVEX" data --data "cifar10:$T/cifar" --out "$T/x.npy" --labels "$T/y.npy" >"$T/out"
check "cifar10 test split equals torchvision's" $REF compare-cifar "$T/cifar" test none "$T/x.npy" "$T/y.npy" 0
check "cifar10 class names ($(cat "$T/out"))" grep -q "7 examples, 3x32x32, 10 classes (airplane, automobile" "$T/out"
"$ADVEX" data --data "cifar10:$T/cifar:train" --limit 8 --resize 36 --crop 32 --out "$T/x.npy" --labels "$T/y.npy" >/dev/null
check "cifar10 train, --limit across batches, Resize/CenterCrop" \
    $REF compare-cifar "$T/cifar" train r36c32 "$T/x.npy" "$T/y.npy" 8
"$ADVEX" data --data "cifar10:$T/cifar" --split train --out "$T/x.npy" --labels "$T/y.npy" >/dev/null
check "a bare cifar10:DIR takes the caller's split (train: 15)" $PY -c "
import numpy as np, sys; assert np.load(sys.argv[1]).shape == (15,)" "$T/y.npy"

# ---- float data: the same filter in float ---------------------------------------------------------
$PY -c "
import numpy as np, sys; rng = np.random.default_rng(1)
np.save(sys.argv[1], rng.random((4, 3, 37, 53), dtype=np.float32)); np.save(sys.argv[2], np.arange(4))" "$T/f.npy" "$T/fy.npy"
"$ADVEX" data --data "npy:$T/f.npy,$T/fy.npy" --resize 20 --crop 16 --out "$T/x.npy" >/dev/null
check "npy Resize(20) + CenterCrop(16) within 1e-5 of torchvision" $REF compare-npy "$T/f.npy" "$T/x.npy" 20 16
"$ADVEX" data --data "npy:$T/f.npy,$T/fy.npy" --resize 90 --out "$T/x.npy" >/dev/null
check "npy upscaling within 1e-5" $REF compare-npy "$T/f.npy" "$T/x.npy" 90 0

# ---- hostile files and flags: one line naming the file, the exit code, no output ------------------
mkdir -p "$T/bad/c"
$REF corrupt-jpeg "$T/imgs/ant/0_q90.jpg" "$T/bad/c/bomb.jpg" bomb
expect 1 "bad/c/bomb.jpg: JPEG of 60000x60000 pixels (at most 67108864 pixels)" -- \
    "$ADVEX" data --data "folder:$T/bad" --out "$T/o.npy"
rm "$T/bad/c/bomb.jpg"
$REF corrupt-jpeg "$T/imgs/ant/0_q90.jpg" "$T/bad/c/cut.jpg" truncate
expect 1 "bad/c/cut.jpg: bad JPEG data: truncated JPEG data" -- "$ADVEX" data --data "folder:$T/bad" --out "$T/o.npy"
rm "$T/bad/c/cut.jpg"
printf 'GIF89a' >"$T/bad/c/x.jpg"
expect 1 "bad/c/x.jpg: not a PNG or JPEG file" -- "$ADVEX" data --data "folder:$T/bad" --out "$T/o.npy"
rm "$T/bad/c/x.jpg"
cp "$T/imgs/ant/0_rgb.png" "$T/imgs/bee/1_rgb.png" "$T/bad/c/"
expect 1 "bad/c/1_rgb.png: image is 37x71 (width x height) after preprocessing but .*0_rgb.png gave 64x48" -- \
    "$ADVEX" data --data "folder:$T/bad" --out "$T/o.npy"
expect 1 "memory limit: 23 examples need" -- \
    "$ADVEX" data --data "folder:$T/imgs" --resize 300 --crop 300 --max-memory 1M --out "$T/o.npy"
expect 1 "no-such-dir: No such file or directory" -- "$ADVEX" data --data "folder:$T/no-such-dir"
expect 1 "ids.txt:1: class folder 'zebra' is not in" -- \
    sh -c "printf 'zebra/1.png\n' >'$T/ids.txt'; '$ADVEX' data --data 'folder:$T/imgs,$T/ids.txt'"
cp "$T/cifar/test_batch.bin" "$T/cifar/c.bin"
truncate -s 3000 "$T/cifar/test_batch.bin"
expect 1 "test_batch.bin: 3000 bytes is not a whole number of 3073-byte CIFAR-10 records" -- \
    "$ADVEX" data --data "cifar10:$T/cifar" --out "$T/o.npy"
$PY -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[3073 * 2] = 12; open(sys.argv[2], 'wb').write(b)" \
    "$T/cifar/c.bin" "$T/cifar/test_batch.bin"
expect 1 "test_batch.bin: record 2 has label 12 (CIFAR-10 labels are 0..9)" -- \
    "$ADVEX" data --data "cifar10:$T/cifar" --out "$T/o.npy"
rm "$T/cifar/data_batch_4.bin"
expect 1 "data_batch_4.bin: No such file or directory" -- "$ADVEX" data --data "cifar10:$T/cifar:train" --out "$T/o.npy"
expect 2 "cifar10: no directory" -- "$ADVEX" data --data cifar10
expect 2 "\-\-resize: bad value '0'" -- "$ADVEX" data --data "folder:$T/imgs" --resize 0
expect 2 "\-\-crop: bad value 'abc'" -- "$ADVEX" data --data "folder:$T/imgs" --crop abc
expect 2 "unknown flag '--resize'" -- "$ADVEX" info --resize 3 "$T/m.onnx"
check "no output after any failure" test ! -e "$T/o.npy"

# ---- a 3-channel model end to end -----------------------------------------------------------------
mkdir -p "$T/imgs/cow" "$T/imgs/dog"
cp "$T/imgs/ant/a_444.jpg" "$T/imgs/cow/"
cp "$T/imgs/bee/palette.png" "$T/imgs/dog/"
$REF make-model "$T/m.onnx" 4 || { echo "FAIL: model"; exit 1; }
"$ADVEX" predict --model "$T/m.onnx" --data "folder:$T/imgs" --out "$T/logits.npy" >"$T/out" 2>"$T/err"
check "predict on a folder exits 0 ($(cat "$T/err"))" test $? -eq 0
check "predict: fitted to the model's 32x32, said once" grep -q "25 of 25 images resized (shorter side to 32)" "$T/err"
check "predict logits equal torch's on torchvision's preprocessing" $REF compare-logits "$T/m.onnx" "$T/imgs" "$T/logits.npy"
"$ADVEX" eval --model "$T/m.onnx" --data "folder:$T/imgs" --attack standard --eps 4/255 --steps 5 --queries 40 \
    --limit 6 --json "$T/r.json" --quiet >"$T/out" 2>"$T/err"
check "eval --attack standard on a folder exits 0 ($(head -c 300 "$T/err"))" test $? -eq 0
check "eval results" $PY -c "
import json, sys; r = json.load(open(sys.argv[1])); assert r['n'] == 6, r
assert all(0 <= e['robust_accuracy'] <= r['clean_accuracy'] + 1e-9 for e in r['results']), r" "$T/r.json"
"$ADVEX" attack --model "$T/m.onnx" --input "$T/imgs/bee/1_q90.jpg" --eps 4/255 --out "$T/adv.png" >"$T/out" 2>"$T/err"
check "attack --input JPEG, fitted ($(cat "$T/err"))" grep -q "1_q90.jpg: resized (shorter side to 32)" "$T/err"
check "attack --input writes a 32x32 RGB PNG" $PY -c "
from PIL import Image; import sys; im = Image.open(sys.argv[1]); assert im.size == (32, 32) and im.mode == 'RGB'" "$T/adv.png"
mkdir -p "$T/imgs/eel"
"$ADVEX" predict --model "$T/m.onnx" --data "folder:$T/imgs" --limit 2 --out "$T/l2.npy" --quiet >/dev/null 2>"$T/err"
check "warning: 5 class folders for 4 classes ($(cat "$T/err"))" grep -q "has 5 class folders but the model has 4 classes" "$T/err"
"$ADVEX" train --arch small --data "folder:$T/imgs" --resize 28 --crop 28 --epochs 1 --batch 8 --test-data none \
    --checkpoint none --out "$T/t.onnx" --quiet >"$T/out" 2>"$T/err"
check "train on a folder (grey 28x28 for the built-in model) ($(head -c 300 "$T/err"))" test -s "$T/t.onnx"
finish
