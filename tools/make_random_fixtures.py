#!/usr/bin/python3
"""Randomized models for tests/test_random.c and tests/cli/random.sh, built directly with
onnx.helper (opset 13 for the two classifiers, 15 for the one-op models: Bernoulli is opset 15; no training):

  noise.onnx     tests/fixtures/attacks/small_pgd.onnx behind Gaussian input noise,
                 x + RandomNormalLike(x, scale=0.25): a randomized defence on a real classifier
  dropout.onnx   the same classifier behind Dropout(ratio 0.3, training_mode=true) on its input
  normal_like.onnx, uniform_like.onnx, bernoulli.onnx, normal.onnx, uniform.onnx,
  dropout_id.onnx
                 one random op each on a (N,1,4,4) input, flattened, followed by an identity
                 Gemm (16 classes), so the logits are the op's output itself:
                   normal_like   Flatten(x) + RandomNormalLike(mean 0.5, scale 2)
                   uniform_like  Flatten(x) + RandomUniformLike(low -1, high 2)
                   bernoulli     Flatten(x) * Bernoulli(Flatten(x))
                   normal        Flatten(x) + RandomNormal(shape [1,16], mean 0.5, scale 2)
                   uniform       Flatten(x) + RandomUniform(shape [1,16], low -1, high 2)
                   dropout_id    Dropout(Flatten(x), ratio 0.5, training_mode=true)
  sqrt.onnx      Gemm(Flatten(Sqrt(x))): finite logits, infinite input gradient at x = 0
  floor.onnx     Gemm(Flatten(Floor(x))): input gradient exactly zero everywhere
  huge_shape.onnx  RandomNormal(shape [2^30, 2^30]): a hostile size the loader must refuse

Run with /usr/bin/python3 (onnx 1.12). Never needed at run time.

    /usr/bin/python3 tools/make_random_fixtures.py [srcdir] [out dir]
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny(name, nodes, inits, w=None):
    """(N,1,4,4) -> flat (N,16) -> nodes producing 'z' -> Gemm with W (identity) -> logits."""
    w = np.eye(16, dtype=np.float32) if w is None else w
    k = w.shape[0]
    nodes = [helper.make_node("Flatten", ["x"], ["xf"], axis=1)] + nodes + [
        helper.make_node("Gemm", ["z", "W", "B"], ["logits"], transB=1)]
    inits = inits + [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.zeros(k, np.float32), "B")]
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)])
    onnx.checker.check_model(m)
    return m


def bool_scalar(name, v):
    return numpy_helper.from_array(np.array(v, dtype=np.bool_), name)


def behind(base, name, pre_nodes, inits, new_input):
    """base's graph with its input renamed: pre_nodes map new_input to base's input name."""
    m = onnx.ModelProto()
    m.CopyFrom(base)
    g = m.graph
    old = g.input[0].name
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(pre_nodes + nodes)
    g.initializer.extend(inits)
    g.input[0].name = new_input
    g.name = name
    # pre_nodes must end in `old`
    assert any(old in n.output for n in pre_nodes)
    onnx.checker.check_model(m)
    return m


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "."
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(src, "tests/fixtures/random")
    os.makedirs(out, exist_ok=True)
    base = onnx.load(os.path.join(src, "tests/fixtures/attacks/small_pgd.onnx"))
    inp = base.graph.input[0].name
    models = {
        "noise": behind(base, "noise", [
            helper.make_node("RandomNormalLike", ["image"], ["noise"], mean=0.0, scale=0.25),
            helper.make_node("Add", ["image", "noise"], [inp])], [], "image"),
        "dropout": behind(base, "dropout", [
            helper.make_node("Dropout", ["image", "ratio", "training"], [inp])],
            [numpy_helper.from_array(np.array(0.3, np.float32), "ratio"), bool_scalar("training", True)], "image"),
        "normal_like": tiny("normal_like", [
            helper.make_node("RandomNormalLike", ["xf"], ["r"], mean=0.5, scale=2.0),
            helper.make_node("Add", ["xf", "r"], ["z"])], []),
        "uniform_like": tiny("uniform_like", [
            helper.make_node("RandomUniformLike", ["xf"], ["r"], low=-1.0, high=2.0),
            helper.make_node("Add", ["xf", "r"], ["z"])], []),
        "bernoulli": tiny("bernoulli", [
            helper.make_node("Bernoulli", ["xf"], ["r"]),
            helper.make_node("Mul", ["xf", "r"], ["z"])], []),
        "normal": tiny("normal", [
            helper.make_node("RandomNormal", [], ["r"], shape=[1, 16], mean=0.5, scale=2.0),
            helper.make_node("Add", ["xf", "r"], ["z"])], []),
        "uniform": tiny("uniform", [
            helper.make_node("RandomUniform", [], ["r"], shape=[1, 16], low=-1.0, high=2.0),
            helper.make_node("Add", ["xf", "r"], ["z"])], []),
        "dropout_id": tiny("dropout_id", [
            helper.make_node("Dropout", ["xf", "ratio", "training"], ["z"])],
            [numpy_helper.from_array(np.array(0.5, np.float32), "ratio"), bool_scalar("training", True)]),
        "huge_shape": tiny("huge_shape", [
            helper.make_node("RandomNormal", [], ["r"], shape=[1 << 30, 1 << 30]),
            helper.make_node("Add", ["xf", "r"], ["z"])], []),
        "sqrt": tiny("sqrt", [helper.make_node("Sqrt", ["xf"], ["z"])], [],
                     np.random.default_rng(0).standard_normal((10, 16)).astype(np.float32)),
        "floor": tiny("floor", [helper.make_node("Floor", ["xf"], ["z"])], [],
                      np.random.default_rng(1).standard_normal((10, 16)).astype(np.float32)),
    }
    # sqrt/floor: the input must come before Flatten; rebuild them with the op first
    for name, op in (("sqrt", "Sqrt"), ("floor", "Floor")):
        m = models[name]
        g = m.graph
        nodes = [helper.make_node(op, ["x"], ["xo"]), helper.make_node("Flatten", ["xo"], ["z"], axis=1),
                 g.node[-1]]
        del g.node[:]
        g.node.extend(nodes)
        onnx.checker.check_model(m)
    for name, m in models.items():
        onnx.save(m, os.path.join(out, name + ".onnx"))
        print("wrote", os.path.join(out, name + ".onnx"))


if __name__ == "__main__":
    main()
