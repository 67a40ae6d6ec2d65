#!/usr/bin/python3
"""Generate tests/fixtures/ops/: small versions of the torchvision architectures issue 17 made
loadable (exported by PyTorch at opset 13 with a dynamic batch), with PyTorch's logits and CE
input gradients on 3 examples, and hand-built models for the load-time folder's limits.
Run with Debian's python3 (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 tools/make_ops_fixtures.py

Deterministic (fixed seeds); the C tests (tests/test_onnx_ops.c) only read the files.

    window_attn   a shifted-window Swin block (window 4, shift 2) on an 8x8 map: the masks'
                  Range/ScatterND/Where/Mod folding, reshapes to (N*4, 16, C), roll, Dropout
                  with training_mode=1 and ratio 0, batched MatMul, Softmax, LayerNorm, GELU
    tiny_vit      a one-layer ViT on 16x16: the class token's Expand to (N, 1, D), Gather
    tiny_convnext ConvNeXt blocks: LayerNorm over channels (permutes), layer scale, GELU
    tiny_shuffle  ShuffleNetV2 stages: channel split (Slice) and shuffle, ReduceMean
    tiny_mbv3     MobileNetV3 blocks: HardSigmoid/HardSwish, squeeze-excitation
    hostile_*     Range, Expand, ConstantOfShape and ScatterND of huge sizes (ADVEX_ERR_LIMIT),
                  Mod and Equal of the batch size (not the same for every N: unsupported)
    batch_arith_ok  the batch size through Mul, Mod, Div, Greater and Where where the result is
                  the same for every N
    fold_chain    84 MiB of folded constants that the output needs (the folding budget)
"""
import os
from functools import partial

import numpy as np
import onnx
import torch
import torch.nn as nn
import torchvision
from onnx import TensorProto, helper
from torchvision.models import convnext, mobilenetv3, swin_transformer, vision_transformer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops")
BATCH = 3


class WindowAttn(nn.Module):
    """conv stem -> NHWC -> two Swin blocks (shift 0, then 2) -> mean -> linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        blk = partial(swin_transformer.SwinTransformerBlock, dim=8, num_heads=2, window_size=[4, 4],
                      norm_layer=nn.LayerNorm)
        self.b1, self.b2 = blk(shift_size=[0, 0]), blk(shift_size=[2, 2])
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x).permute(0, 2, 3, 1)
        x = self.b2(self.b1(x))
        return self.fc(x.mean(dim=(1, 2)))


def models():
    torch.manual_seed(3)
    out = {"window_attn": (WindowAttn(), 8)}
    out["tiny_vit"] = (vision_transformer.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2,
                                                            hidden_dim=8, mlp_dim=16, num_classes=5), 16)
    cfg = [convnext.CNBlockConfig(8, 16, 1), convnext.CNBlockConfig(16, None, 1)]
    out["tiny_convnext"] = (convnext.ConvNeXt(cfg, num_classes=5, layer_scale=0.5), 16)
    out["tiny_shuffle"] = (torchvision.models.ShuffleNetV2([2, 1, 1], [8, 16, 24, 32, 40], num_classes=5), 32)
    bneck = partial(mobilenetv3.InvertedResidualConfig, width_mult=1.0)
    settings = [bneck(8, 3, 16, 8, True, "RE", 2, 1), bneck(8, 3, 24, 16, True, "HS", 1, 1)]
    out["tiny_mbv3"] = (mobilenetv3.MobileNetV3(settings, last_channel=32, num_classes=5), 16)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m, _ in out.values():
            for name, p in m.named_parameters():  # no zero heads or tokens; norms not trivial
                if p.dim() >= 2 and not p.any() or "token" in name or "pos_embedding" in name:
                    p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            for mod in m.modules():
                if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
                    mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=gen))
                    mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=gen))
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=gen))
                    mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=gen))
            m.eval()
    return out


def export(name, model, size):
    g = torch.Generator().manual_seed(5)
    x = torch.rand(BATCH, 3, size, size, generator=g)
    y = torch.tensor([1, 3, 4])
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    xg = x.clone().requires_grad_(True)
    z = model(xg)
    nn.functional.cross_entropy(z, y, reduction="sum").backward()
    np.save(os.path.join(OUT, name + "_x.npy"), x.numpy())
    np.save(os.path.join(OUT, name + "_logits.npy"), z.detach().numpy())
    np.save(os.path.join(OUT, name + "_grad.npy"), xg.grad.numpy())
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: {os.path.getsize(path)} bytes, ops {' '.join(ops)}")


def hostile(name, nodes, inits=()):
    """x (N,1,2,2) -> Reshape(x, shape computed by nodes ending in 'shape') -> logits."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2, 2])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])
    tail = [helper.make_node("Reshape", ["x", "shape"], ["logits"])]
    g = helper.make_graph(nodes + tail, name, [x], [out], initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_ops_fixtures")
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def i64(name, vals):
    return helper.make_tensor(name, TensorProto.INT64, [len(vals)], vals)


def hostiles():
    big = 1 << 40
    # Range of 2^40 elements feeding the shape: refused before it is allocated
    hostile("hostile_range", [helper.make_node("Range", ["a", "b", "c"], ["r"]),
                                   helper.make_node("Shape", ["r"], ["rs"]),
                                   helper.make_node("Sub", ["rs", "big"], ["t"]),
                                   helper.make_node("Concat", ["t", "four"], ["shape"], axis=0)],
            [helper.make_tensor("a", TensorProto.INT64, [], [0]), helper.make_tensor("b", TensorProto.INT64, [], [big]),
             helper.make_tensor("c", TensorProto.INT64, [], [1]), i64("big", [big + 1]), i64("four", [4])])
    # Expand of a constant to 2^20 x 2^20, and ConstantOfShape of as much
    hostile("hostile_expand", [helper.make_node("Expand", ["one", "huge"], ["e"]),
                               helper.make_node("Shape", ["e"], ["es"]),
                               helper.make_node("Slice", ["es", "z1", "o1"], ["e0"]),
                               helper.make_node("Sub", ["e0", "huge0"], ["t"]),
                               helper.make_node("Concat", ["t", "four"], ["shape"], axis=0)],
            [i64("one", [1]), i64("huge", [1 << 20, 1 << 20]), i64("z1", [0]), i64("o1", [1]),
             i64("huge0", [(1 << 20) + 1]), i64("four", [4])])
    hostile("hostile_const_of_shape", [helper.make_node("ConstantOfShape", ["huge"], ["e"]),
                                       helper.make_node("Shape", ["e"], ["es"]),
                                       helper.make_node("Slice", ["es", "z1", "o1"], ["e0"]),
                                       helper.make_node("Sub", ["e0", "huge0"], ["t"]),
                                       helper.make_node("Concat", ["t", "four"], ["shape"], axis=0)],
            [i64("huge", [1 << 16, 1 << 16]), i64("z1", [0]), i64("o1", [1]), i64("huge0", [(1 << 16) + 1]),
             i64("four", [4])])
    # ScatterND with an index out of range
    hostile("hostile_scatter", [helper.make_node("ScatterND", ["d", "idx", "u"], ["shape"])],
            [i64("d", [-1, 4]), helper.make_tensor("idx", TensorProto.INT64, [1, 1], [7]), i64("u", [4])])
    # N mod 3 and N == 2 are not the same for every batch size
    n_of_x = [helper.make_node("Shape", ["x"], ["xs"]), helper.make_node("Gather", ["xs", "zero"], ["n"], axis=0)]
    hostile("hostile_mod_batch", n_of_x + [helper.make_node("Mod", ["n", "three"], ["m"]),
                                           helper.make_node("Add", ["m", "m1"], ["m2"]),
                                           helper.make_node("Concat", ["m2", "four"], ["shape"], axis=0)],
            [i64("zero", [0]), i64("three", [3]), i64("m1", [-1]), i64("four", [4])])
    hostile("hostile_equal_batch", n_of_x + [helper.make_node("Equal", ["n", "two"], ["eq"]),
                                             helper.make_node("Where", ["eq", "m1", "m1b"], ["w"]),
                                             helper.make_node("Concat", ["w", "four"], ["shape"], axis=0)],
            [i64("zero", [0]), i64("two", [2]), i64("m1", [-1]), i64("m1b", [-1]), i64("four", [4])])
    # 21 folded constants of 4 MiB each (84 MiB in all) that the output needs: fine by default,
    # over the folding budget under a smaller memory cap
    chain = [helper.make_node("ConstantOfShape", ["big"], ["c0"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.25]))]
    chain += [helper.make_node("Add", [f"c{k}", "c0"], [f"c{k + 1}"]) for k in range(20)]
    chain += [helper.make_node("Slice", ["c20", "z2", "e2"], ["s"]), helper.make_node("Reshape", ["x", "shape"], ["r"]),
              helper.make_node("Add", ["r", "s"], ["logits"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2, 2])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])
    g = helper.make_graph(chain, "fold_chain", [x], [out], initializer=[
        i64("big", [1024, 1024]), i64("z2", [0, 0]), i64("e2", [1, 4]), i64("shape", [-1, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_ops_fixtures"),
              os.path.join(OUT, "fold_chain.onnx"))
    # and the same arithmetic where it is exact for every N: (N*8) mod 4 = 0, N*4 // 4 = N
    hostile("batch_arith_ok", n_of_x + [helper.make_node("Mul", ["n", "eight"], ["n8"]),
                                        helper.make_node("Mod", ["n8", "four"], ["zm"]),
                                        helper.make_node("Mul", ["n", "four"], ["n4"]),
                                        helper.make_node("Div", ["n4", "four"], ["nn"]),
                                        helper.make_node("Add", ["nn", "zm"], ["n_again"]),
                                        helper.make_node("Greater", ["n", "zero"], ["pos"]),
                                        helper.make_node("Where", ["pos", "n_again", "m1"], ["w"]),
                                        helper.make_node("Concat", ["w", "four"], ["shape"], axis=0)],
            [i64("zero", [0]), i64("eight", [8]), i64("four", [4]), i64("m1", [-1])])


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    for name, (model, size) in models().items():
        export(name, model, size)
    hostiles()


if __name__ == "__main__":
    main()
