#!/bin/bash
# Hostile inputs, round 2, end to end: outputs that would overwrite inputs or devices,
# reports on a full disk, hostile model and data files (huge shapes, BatchNorm with a
# negative variance, gzip and PNG bombs, nested protobuf), messages that must name the
# file, and the exit codes. Files are made here (Debian's python3 with numpy and onnx).
# Usage: hostile.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
M="$SRC/tests/fixtures/onnx/small_torch.onnx"
mounts=""
trap 'for m in $mounts; do umount "$m" 2>/dev/null; done; rm -rf "$T"' EXIT

# expect CODE PATTERN -- command...: exit code, one stderr line matching PATTERN
expect() {
    local code=$1 pattern=$2; shift 3
    "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -q -- "$pattern" "$T/stderr" && [ "$(wc -l <"$T/stderr")" -le 2 ]; then ok; else
        bad "exit $rc (want $code), pattern '$pattern': $*"; sed 's/^/  stderr: /' "$T/stderr" | head -3; fi
}
sum() { md5sum <"$1"; }

$PY - "$T" <<'PYEOF' || { echo "FAIL: fixtures"; exit 1; }
import sys, struct, zlib, gzip, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper as nh
t = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((20, 1, 28, 28), dtype=np.float32)
np.save(f"{t}/x.npy", x)
np.save(f"{t}/y.npy", (np.arange(20) % 10).astype(np.int64))
y12 = (np.arange(20) % 10).astype(np.int64); y12[3] = 12
np.save(f"{t}/y12.npy", y12)

def model(nodes, inits, shape, path, out="y"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)

# a 1x65536x65536 input (16 GiB for one example)
model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Flatten", ["r"], ["y"])], [], [1, 65536, 65536],
      f"{t}/wide.onnx")
# Conv -> BatchNormalization with a negative running variance -> Relu -> Flatten -> Gemm
bn = [nh.from_array(np.ones((4, 1, 3, 3), np.float32) / 9, "w"), nh.from_array(np.ones(4, np.float32), "s"),
      nh.from_array(np.zeros(4, np.float32), "b"), nh.from_array(np.zeros(4, np.float32), "m"),
      nh.from_array(np.array([1, 1, -0.5, 1], np.float32), "v"),
      nh.from_array(rng.standard_normal((10, 4 * 26 * 26)).astype(np.float32), "fc")]
model([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn1"),
       helper.make_node("Relu", ["n"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
       helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)], bn, [1, 28, 28], f"{t}/bn.onnx")
# finite weights, logits that overflow: x * 3e38 * 3e38
big = nh.from_array(np.array([3e38], np.float32), "k")
model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Mul", ["f", "k"], ["a"]),
       helper.make_node("Mul", ["a", "k"], ["y"])], [big], [1, 2, 5], f"{t}/inf.onnx")
np.save(f"{t}/x10.npy", np.full((2, 1, 2, 5), 0.5, np.float32))
# Clip with min > max: a bad file, not a bad flag (exit 1, not 2)
model([helper.make_node("Clip", ["x", "lo", "hi"], ["c"]), helper.make_node("Flatten", ["c"], ["y"])],
      [nh.from_array(np.array(1, np.float32), "lo"), nh.from_array(np.array(0, np.float32), "hi")], [1, 2, 2],
      f"{t}/clip.onnx")
# a surrogate with 5 classes for the 10-class model
model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "fc5"], ["y"], transB=1)],
      [nh.from_array(np.zeros((5, 784), np.float32), "fc5")], [1, 28, 28], f"{t}/sur5.onnx")

# IDX: 1000 images declared, 10 in the file; labels for 1000
hdr = struct.pack(">IIII", 0x803, 1000, 28, 28)
good = bytes(range(256)) * 31
open(f"{t}/bomb.gz", "wb").write(gzip.compress(hdr + good[:7840]))
open(f"{t}/lab.gz", "wb").write(gzip.compress(struct.pack(">II", 0x801, 1000) + bytes(i % 10 for i in range(1000))))
# 10^8 images declared (292 GiB as floats), of 28x28 and of 256x256
open(f"{t}/huge.gz", "wb").write(gzip.compress(struct.pack(">IIII", 0x803, 100000000, 28, 28)))
open(f"{t}/huge256.gz", "wb").write(gzip.compress(struct.pack(">IIII", 0x803, 100000000, 256, 256)))

# PNG: a tEXt chunk that claims 2 GiB after IHDR
def chunk(t_, d, n=None):
    return struct.pack(">I", len(d) if n is None else n) + t_ + d + struct.pack(">I", zlib.crc32(t_ + d) & 0xffffffff)
ihdr = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
open(f"{t}/text.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + struct.pack(">I", 0x7fffff00) + b"tEXt" + b"k\x00" + b"v" * 100)

# protobuf nested 20000 deep (subgraphs in attributes)
def varint(v):
    o = bytearray()
    while True:
        b = v & 0x7f; v >>= 7
        o.append(b | (0x80 if v else 0))
        if not v: return bytes(o)
f = [7] + [[1, 5, 6][i % 3] for i in range(19999)]
body = [0] * len(f)
for i in range(len(f) - 2, -1, -1):
    body[i] = len(varint(f[i + 1] << 3 | 2)) + len(varint(body[i + 1])) + body[i + 1]
open(f"{t}/deep.onnx", "wb").write(b"\x42\x02\x10\x0d" + b"".join(varint(a << 3 | 2) + varint(b) for a, b in zip(f, body)))
PYEOF
D="npy:$T/x.npy,$T/y.npy"
cp "$M" "$T/m.onnx"
MS=$(sum "$T/m.onnx")

# ---- an output never overwrites an input --------------------------------------------------------
mkdir -p "$T/sub"
ln -s "$T/m.onnx" "$T/link.onnx"
expect 2 "\-\-out and \-\-model name the same file" -- "$ADVEX" predict --model "$T/m.onnx" --data "$D" --out "$T/m.onnx"
expect 2 "\-\-out and \-\-model name the same file" -- "$ADVEX" predict --model "$T/m.onnx" --data "$D" --out "$T/sub/../m.onnx"
expect 2 "\-\-out and \-\-model name the same file" -- "$ADVEX" attack --model "$T/link.onnx" --data "$D" --eps 0.1 --out "$T/m.onnx"
expect 2 "\-\-out and \-\-data name the same file" -- "$ADVEX" attack --model "$T/m.onnx" --data "$D" --eps 0.1 --out "$T/./x.npy"
expect 2 "\-\-json and \-\-data name the same file" -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --eps 0.1 --json "$T/y.npy"
expect 2 "\-\-json and \-\-model name the same file" -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --eps 0.1 --json "$T/link.onnx"
expect 2 "\-\-report and \-\-json name the same file" -- "$ADVEX" eval --model "$T/m.onnx" --data "$D" --eps 0.1 \
    --json "$T/rep/results.json" --report "$T/rep"
expect 2 "\-\-out and \-\-npy name the same file" -- "$ADVEX" png --npy "$T/x.npy" --out "$T/x.npy"
expect 2 "\-\-checkpoint and \-\-out name the same file" -- "$ADVEX" train --arch small --data "$D" --epochs 1 \
    --out "$T/t.onnx" --checkpoint "$T/t.onnx"
expect 2 "\-\-out and \-\-data name the same file" -- "$ADVEX" train --arch small --data "$D" --epochs 1 --out "$T/x.npy"
check "inputs unchanged" [ "$(sum "$T/m.onnx")" = "$MS" ] && [ -L "$T/link.onnx" ] && $PY -c "import numpy as np,sys; np.load(sys.argv[1])" "$T/x.npy"
[ ! -e "$T/rep" ] && [ ! -e "$T/t.onnx" ] && ok || bad "an output was created by a refused command"

# ---- an output that is not a regular file is refused; /dev/null discards ---------------------
mkfifo "$T/fifo"
expect 2 "fifo: exists and is not a regular file" -- "$ADVEX" predict --model "$M" --data "$D" --out "$T/fifo"
expect 2 "exists and is not a regular file" -- "$ADVEX" attack --model "$M" --data "$D" --eps 0.1 --out "$T/sub"
check "the fifo is still a fifo" [ -p "$T/fifo" ]
if mknod "$T/zero" c 1 5 2>/dev/null; then   # a device node (root): rename() would have replaced it
    expect 2 "zero: exists and is not a regular file" -- "$ADVEX" predict --model "$M" --data "$D" --out "$T/zero"
    check "the device node is still a device" [ -c "$T/zero" ]
fi
"$ADVEX" predict --model "$M" --data "$D" --out /dev/null >/dev/null 2>"$T/stderr" && [ -c /dev/null ] && ok ||
    bad "predict --out /dev/null"

# ---- eval --report: nothing before results exist, nothing after a failure --------------------
expect 1 "nomodel.onnx" -- "$ADVEX" eval --model "$T/nomodel.onnx" --data "$D" --eps 0.1 --report "$T/rep1"
check "no report directory before the model loaded" [ ! -e "$T/rep1" ]
expect 2 "\-\-report .*: exists and is not a directory" -- "$ADVEX" eval --model "$M" --data "$D" --eps 0.1 --report "$T/x.npy"
"$ADVEX" eval --model "$M" --data "$D" --eps 0,0.1 --quiet --report "$T/rep2" >/dev/null 2>"$T/stderr" &&
    [ -s "$T/rep2/report.html" ] && [ -s "$T/rep2/grid_fgsm.png" ] && ! ls -a "$T" | grep -q 'rep2\.tmp' && ok ||
    bad "a good report"
if mount -t tmpfs -o size=64k tmpfs "$T/sub" 2>/dev/null; then
    mounts="$T/sub"
    dd if=/dev/zero of="$T/sub/filler" bs=1k count=40 2>/dev/null   # room for the grid, not for all
    expect 1 "No space left on device" -- "$ADVEX" eval --model "$M" --data "$D" --eps 0,0.1 --attack fgsm,pgd \
        --steps 2 --quiet --report "$T/sub/rep"
    check "no half-written report on a full disk" [ "$(ls -A "$T/sub")" = filler ]
    mkdir "$T/sub/old" && echo keep >"$T/sub/old/report.html"
    expect 1 "No space left on device" -- "$ADVEX" eval --model "$M" --data "$D" --eps 0,0.1 --attack fgsm,pgd \
        --steps 2 --quiet --report "$T/sub/old"
    check "an earlier report left as it was" [ "$(cat "$T/sub/old/report.html")" = keep ] && [ "$(ls -A "$T/sub")" = "filler
old" ]
fi

# ---- hostile models --------------------------------------------------------------------------
expect 1 "deep.onnx: protobuf messages nested more than 100 deep" -- "$ADVEX" info "$T/deep.onnx"
expect 1 "wide.onnx: input 'x' is 1x65536x65536: 4294967296 values per example" -- "$ADVEX" info "$T/wide.onnx"
expect 1 "bn.onnx: node 'bn1' (BatchNormalization): variance 'v' element 2 is -0.5" -- \
    "$ADVEX" predict --model "$T/bn.onnx" --data "$D" --out "$T/p.npy"
expect 1 "clip.onnx: .*min 1 > max 0" -- "$ADVEX" info "$T/clip.onnx"
expect 1 "logits of example 0 are not finite" -- "$ADVEX" predict --model "$T/inf.onnx" --data "npy:$T/x10.npy" --out "$T/p.npy"
check "no logits written" [ ! -e "$T/p.npy" ]
expect 1 "sur5.onnx: surrogate takes 1x28x28 with 5 classes but the model takes 1x28x28 with 10 classes" -- \
    "$ADVEX" attack --model "$M" --data "$D" --surrogate "$T/sur5.onnx" --eps 0.1

# ---- hostile data ------------------------------------------------------------------------------
"$ADVEX" predict --model "$M" --data "idx:$T/bomb.gz,$T/lab.gz" --limit 10 --out "$T/p10.npy" >/dev/null 2>"$T/stderr" &&
    ok || bad "--limit 10 reads only the 10 images a gzip IDX file has"
rm -f "$T/p10.npy"
expect 1 "bomb.gz: truncated" -- "$ADVEX" predict --model "$M" --data "idx:$T/bomb.gz,$T/lab.gz" --out "$T/p.npy"
expect 1 "huge.gz: memory limit: 100000000 examples need 292.1 GiB" -- \
    "$ADVEX" predict --model "$M" --data "idx:$T/huge.gz" --out "$T/p.npy" --max-memory 1G
expect 1 "huge.gz: 100000000 examples need .*more than this machine's memory" -- \
    "$ADVEX" predict --model "$M" --data "idx:$T/huge.gz" --out "$T/p.npy"
expect 1 "huge256.gz: images are 1x256x256 but the model expects 1x28x28" -- \
    "$ADVEX" eval --model "$M" --data "idx:$T/huge256.gz,$T/lab.gz" --eps 0.1
expect 1 "y12.npy: label 12 of example 3 is outside the model's 10 classes" -- \
    "$ADVEX" eval --model "$M" --data "npy:$T/x.npy,$T/y12.npy" --eps 0.1
expect 1 "y12.npy: label 12 of example 3 is outside the model's 10 classes" -- \
    "$ADVEX" train --arch small --data "npy:$T/x.npy,$T/y12.npy" --epochs 1 --out "$T/t12.onnx"
expect 1 "text.png: not a readable PNG: truncated PNG data" -- "$ADVEX" attack --model "$M" --input "$T/text.png" --eps 0.1
expect 1 "ADVEX_DATA is '$T/nowhere': No such file or directory" -- \
    env ADVEX_DATA="$T/nowhere" "$ADVEX" eval --model "$M" --data fashion-mnist --limit 10 --eps 0.1

# ---- messages and environment --------------------------------------------------------------------
long="$T/$(printf 'd%.0s' $(seq 1 200))"
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do long="$long/$(printf 'e%.0s' $(seq 1 200))"; done
"$ADVEX" info "$long/m.onnx" >/dev/null 2>"$T/stderr"
check "a 2600-character path keeps the reason" grep -q "m.onnx: No such file or directory$" "$T/stderr"
had_tmp_cache=$([ -e /tmp/.cache/advex ] && echo yes)
expect 2 "no cache directory: \$HOME is not set" -- env -u HOME -u XDG_CACHE_HOME -u ADVEX_CACHE "$ADVEX" demo \
    --epochs 1 --data-dir "$T/nowhere"
[ -n "$had_tmp_cache" ] || check "no world-writable fallback cache" [ ! -e /tmp/.cache/advex ]

finish
