#!/usr/bin/python3
"""Generate the ONNX interop fixtures in tests/fixtures/onnx/ (PyTorch exports with the
expected logits, plus small hand-built broken models for the error tests).
Run with Debian's python3 (torch 1.13, onnx 1.12): /usr/bin/python3 tools/make_onnx_fixtures.py
Deterministic (fixed seeds); the C tests only read the files, never run this script."""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "onnx")


class Small(nn.Module):
    """advex's `small` (Wong et al. 2020 MNIST net); `hidden` narrows the first Linear."""

    def __init__(self, hidden=100, view=False, softmax=False):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 4, 2, 1)
        self.c2 = nn.Conv2d(16, 32, 4, 2, 1)
        self.f1 = nn.Linear(32 * 7 * 7, hidden)
        self.f2 = nn.Linear(hidden, 10)
        self.view, self.softmax = view, softmax

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        # view: the Shape/Gather/Unsqueeze/Concat/Reshape chain exporters emit
        x = x.view(x.size(0), -1) if self.view else torch.flatten(x, 1)
        x = self.f2(F.relu(self.f1(x)))
        return F.softmax(x, dim=1) if self.softmax else x


class Mixed(nn.Module):
    """Many ops at once on a 3x12x12 input: normalisation constants (Sub/Div), BatchNorm,
    pools, Clip, Pad, Concat, LeakyReLU, Sigmoid/Tanh, Dropout (eval) and a view()."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.2, 0.3]).view(1, 3, 1, 1))
        self.c1 = nn.Conv2d(3, 6, 3, 1, 1)
        self.bn = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 4, 3, 1, 0, bias=False)
        self.c3 = nn.Conv2d(6, 4, 1, 1, 0, groups=2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(8 * 5 * 5, 7)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.leaky_relu(self.c1(x), 0.1)
        x = self.bn(x)
        x = F.max_pool2d(x, 2, 2)                      # 6x6x6
        a = torch.sigmoid(self.c2(F.pad(x, (1, 1, 1, 1), value=0.5)))   # 4x6x6
        b = torch.tanh(self.c3(x))                     # 4x6x6
        x = torch.cat([a, b], 1)                       # 8x6x6
        x = F.avg_pool2d(x, 2, 1, count_include_pad=False)  # 8x5x5
        x = torch.clamp(x, -0.5, 0.75)
        x = self.drop(x)
        return self.fc(x.view(x.size(0), -1))


def export(model, x, name, opset=13):
    path = os.path.join(OUT, name)
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def save_npy(name, a):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(a, dtype=np.float32))


def value_info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def init(name, shape, seed):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)


def save_model(graph, name, opset=13, check=True):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="advex-tests")
    m.ir_version = 7
    if check:
        onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name))


def broken_models():
    inp = value_info("input", ["N", 1, 8, 8])
    out = value_info("logits", ["N", 10])
    # Two unsupported nodes (an unknown op and an unsupported attribute value) on the path
    # to the output: the loader must name both in one message.
    roi = numpy_helper.from_array(np.zeros(0, np.float32), "roi")
    scales = numpy_helper.from_array(np.array([1, 1, 1, 1], np.float32), "scales")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    nodes = [
        helper.make_node("Resize", ["input", "roi", "scales"], ["r"], name="n3", mode="nearest"),
        helper.make_node("Pad", ["r", "pads"], ["p"], name="n7", mode="reflect"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w", "b"], ["logits"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "unsupported", [inp], [out],
                          [roi, scales, pads, init("w", [10, 100], 1), init("b", [10], 2)])
    save_model(g, "unsupported.onnx")
    # A node input that is neither an initializer, a graph input nor a node output.
    nodes = [helper.make_node("Flatten", ["input"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "b_missing"], ["logits"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "missing", [inp], [out], [init("w", [10, 64], 3)])
    save_model(g, "missing_init.onnx", check=False)
    # A cycle: a = Relu(b), b = Add(input, a).
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="relu_a"),
             helper.make_node("Add", ["input", "a"], ["b"], name="add_b"),
             helper.make_node("Flatten", ["b"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "bias"], ["logits"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "cycle", [inp], [out], [init("w", [10, 64], 4), init("bias", [10], 5)])
    save_model(g, "cycle.onnx", check=False)


def handmade_model():
    """Opset 11 by hand: auto_pad SAME_UPPER/SAME_LOWER/VALID, Clip bounds as inputs, Dropout
    ratio attribute, Unsqueeze/Squeeze/Cast on run-time values, a Constant -> Mul. Expected
    logits from the equivalent PyTorch ops (explicit pads)."""
    rng = np.random.default_rng(11)
    w1 = (rng.standard_normal((4, 2, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((3, 4, 2, 2)) * 0.3).astype(np.float32)
    fc = (rng.standard_normal((5, 3 * 3 * 3)) * 0.3).astype(np.float32)
    x = rng.random((4, 2, 5, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2.0, np.float32))),
        helper.make_node("Mul", ["input", "two"], ["x2"]),
        # in 5, k 3, s 2: out 3, total pad 2 -> (1, 1)
        helper.make_node("Conv", ["x2", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["cl"]),
        # in 3, k 2, s 1: out 3, total pad 1 -> SAME_LOWER puts it at the beginning
        helper.make_node("Conv", ["cl", "w2"], ["c2"], auto_pad="SAME_LOWER"),
        helper.make_node("MaxPool", ["c2"], ["mp"], kernel_shape=[1, 1], auto_pad="VALID"),
        helper.make_node("Dropout", ["mp"], ["dr"], ratio=0.25),
        helper.make_node("Unsqueeze", ["dr"], ["u"], axes=[2]),
        helper.make_node("Squeeze", ["u"], ["s"], axes=[2]),
        helper.make_node("Cast", ["s"], ["cs"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["cs"], ["f"]),
        helper.make_node("MatMul", ["f", "fcT"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.ascontiguousarray(fc.T), "fcT"),
             numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
             numpy_helper.from_array(np.array(0.8, np.float32), "hi")]
    g = helper.make_graph(nodes, "handmade", [value_info("input", ["N", 2, 5, 5])],
                          [value_info("logits", ["N", 5])], inits)
    save_model(g, "handmade_op11.onnx", opset=11)
    t = torch.from_numpy
    with torch.no_grad():
        y = F.conv2d(t(x) * 2.0, t(w1), stride=2, padding=1).clamp(-0.5, 0.8)
        y = F.conv2d(F.pad(y, (1, 0, 1, 0)), t(w2))
        y = y.flatten(1) @ t(fc).T
    save_npy("handmade_x.npy", x)
    save_npy("handmade_logits.npy", y.numpy())


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    save_npy("small_x.npy", x.numpy())
    with torch.no_grad():
        m = Small().eval()
        save_npy("small_logits.npy", m(x).numpy())
        export(m, x, "small_torch.onnx")
        torch.manual_seed(1)
        m = Small(hidden=8, view=True).eval()
        save_npy("view_logits.npy", m(x).numpy())
        export(m, x, "view_torch.onnx")
        torch.manual_seed(2)
        m = Small(hidden=8, softmax=True).eval()
        m.softmax = False
        save_npy("softmax_logits.npy", m(x).numpy())
        m.softmax = True
        export(m, x, "softmax_torch.onnx")
        torch.manual_seed(3)
        m = Mixed()
        with torch.no_grad():  # non-trivial running statistics
            m.bn.running_mean.uniform_(-0.5, 0.5)
            m.bn.running_var.uniform_(0.5, 2.0)
            m.bn.weight.uniform_(0.5, 1.5)
            m.bn.bias.uniform_(-0.2, 0.2)
        m.eval()
        xm = torch.rand(8, 3, 12, 12)
        save_npy("mixed_x.npy", xm.numpy())
        save_npy("mixed_logits.npy", m(xm).numpy())
        export(m, xm, "mixed_torch_op13.onnx", opset=13)
        export(m, xm, "mixed_torch_op9.onnx", opset=9)
    broken_models()
    handmade_model()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files to {OUT} ({total / 1024:.0f} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
