#!/bin/bash
# advex info and advex predict on models exported by PyTorch (tests/fixtures/onnx):
# info names the input, output, ops, parameter count and opset, and says when a final
# Softmax was removed; predict writes float32 (N, classes) logits equal to PyTorch's.
# Usage: interop.sh ADVEX SRCDIR
set -u
ADVEX=$1; SRC=$2
F="$SRC/tests/fixtures/onnx"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }

"$ADVEX" info "$F/small_torch.onnx" >"$T/info" 2>&1
check "info exit code" '[ $? -eq 0 ]'
check "info parameters" 'grep -q "parameters: 166406" "$T/info"'
check "info opset" 'grep -q "opset: *13" "$T/info"'
check "info ops" 'grep -q "Conv x2" "$T/info" && grep -q "Gemm x2" "$T/info" && grep -q "Relu x3" "$T/info"'
check "info input" 'grep -q "input: *input  N x 1 x 28 x 28" "$T/info"'
"$ADVEX" info "$F/softmax_torch.onnx" >"$T/info2" 2>"$T/err2"
check "info softmax note" 'grep -q "Softmax" "$T/info2" && grep -q "Softmax" "$T/err2"'
"$ADVEX" info "$F/unsupported.onnx" >"$T/out" 2>"$T/err"
check "info unsupported exit" '[ $? -eq 1 ]'
check "info unsupported lists nodes" 'grep -q "unsupported nodes" "$T/err" && grep -q "Resize" "$T/err"'

# predict on the fixture inputs (labels are irrelevant: zeros)
$PY -c "import numpy as np, sys; x=np.load(sys.argv[1]); np.save(sys.argv[2], np.zeros(len(x), dtype=np.int64))" \
    "$F/small_x.npy" "$T/y.npy"
"$ADVEX" predict --model "$F/small_torch.onnx" --data "npy:$F/small_x.npy,$T/y.npy" --out "$T/logits.npy" >"$T/out" 2>&1
check "predict exit code" '[ $? -eq 0 ]'
check "predict logits equal PyTorch's" '$PY -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
assert a.dtype == np.float32 and a.shape == b.shape, (a.dtype, a.shape, b.shape)
assert np.max(np.abs(a - b) / np.maximum(1, np.abs(b))) < 1e-4
" "$T/logits.npy" "$F/small_logits.npy"'
"$ADVEX" predict --model "$F/small_torch.onnx" --data "npy:$F/small_x.npy,$T/y.npy" --out "$T/nodir/l.npy" >"$T/out" 2>"$T/err"
check "predict unwritable" '[ $? -eq 1 ] && grep -q "cannot write" "$T/err"'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
