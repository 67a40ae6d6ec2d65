#!/usr/bin/python3
"""Fixtures for tests/test_torchvision.c: torchvision 0.14's ImageNet classifiers with random
weights, exported to ONNX by torch 1.13 at opset 13, with PyTorch's logits, input gradients
and FGSM signs on one batch.

Run with Debian's python3 (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 tools/make_torchvision_fixtures.py OUT_DIR [model ...]

For every model (all 13 by default) OUT_DIR/<model>/ receives
    model.onnx   the classifier wrapped with ImageNet normalisation, input (N,3,224,224)
                 in [0,1] with a dynamic batch, output logits (N,1000), opset 13
    logits.npy   (B,1000) float32 PyTorch logits of x
    grad.npy     (B,3,224,224) float32 d/dx of the summed cross-entropy of y
    sign.npy     (B,3,224,224) int8 sign(grad): the FGSM step direction
    stamp        what the files were made from; a model whose stamp matches is skipped
and OUT_DIR/x.npy (B,3,224,224) float32 in [0,1], OUT_DIR/y.npy (B,) int64 labels.

Weights are torchvision's random initialisation under a per-model seed, then made less
degenerate so every op matters: BatchNorm running statistics and every norm's affine
parameters are randomised, ConvNeXt's layer scales (1e-6 at init) set to about 0.5, and
ViT's class token, position embedding and head (zero at init) drawn at std 0.02. Eval mode;
one thread; deterministic algorithms. The files are large (about 1.4 GB for the 13): the
tests write them into the build directory, never into the repository.
"""
import hashlib
import os
import sys

import numpy as np

try:
    import torch
    import torchvision
except ImportError:  # tests/test_torchvision.c fails, naming the missing package, when it finds the marker
    torch = torchvision = None

MODELS = [
    "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg11_bn", "squeezenet1_1",
    "densenet121", "regnet_y_400mf", "mobilenet_v3_small", "shufflenet_v2_x1_0", "convnext_tiny",
    "vit_b_16", "swin_t",
]
BATCH, SIZE, OPSET = 2, 224, 13
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Normalised(torch.nn.Module):
    """x in [0,1] -> model((x - mean) / std): the normalisation is part of the graph."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def perturb(net, gen):
    """Random running statistics and norm affines, non-trivial layer scales and tokens."""
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=gen))
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=gen))
            if isinstance(mod, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)) and mod.weight is not None:
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))
        for name, p in net.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(0.5 + 0.1 * torch.randn(p.shape, generator=gen))
            if name.endswith("class_token") or name.endswith("pos_embedding") or (p.dim() >= 2 and not p.any()):
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))  # (ViT's head starts all zero)


def build(name, seed):
    torch.manual_seed(seed)
    net = getattr(torchvision.models, name)(weights=None)
    perturb(net, torch.Generator().manual_seed(seed + 1))
    return Normalised(net).eval()


def stamp_text(name, seed):
    h = hashlib.sha256(open(__file__, "rb").read()).hexdigest()[:16]
    return f"{name} seed {seed} batch {BATCH} size {SIZE} opset {OPSET} torch {torch.__version__} " \
           f"torchvision {torchvision.__version__} script {h}\n"


def inputs(out):
    g = torch.Generator().manual_seed(17)
    x = torch.rand(BATCH, 3, SIZE, SIZE, generator=g)
    y = torch.tensor([(37 * i + 11) % 1000 for i in range(BATCH)], dtype=torch.int64)
    xp, yp = os.path.join(out, "x.npy"), os.path.join(out, "y.npy")
    if not (os.path.exists(xp) and np.array_equal(np.load(xp), x.numpy()) and np.array_equal(np.load(yp), y.numpy())):
        np.save(xp + ".tmp.npy", x.numpy())
        np.save(yp + ".tmp.npy", y.numpy())
        os.replace(xp + ".tmp.npy", xp)
        os.replace(yp + ".tmp.npy", yp)
    return x, y


def make(name, seed, x, y, out):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    st = os.path.join(d, "stamp")
    text = stamp_text(name, seed)
    if os.path.exists(st) and open(st).read() == text:
        return False
    if os.path.exists(st):
        os.remove(st)
    model = build(name, seed)
    torch.onnx.export(model, x, os.path.join(d, "model.onnx"), opset_version=OPSET, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    xg = x.clone().requires_grad_(True)
    z = model(xg)
    torch.nn.functional.cross_entropy(z, y, reduction="sum").backward()
    g = xg.grad.detach()
    np.save(os.path.join(d, "logits.npy"), z.detach().numpy().astype(np.float32))
    np.save(os.path.join(d, "grad.npy"), g.numpy().astype(np.float32))
    np.save(os.path.join(d, "sign.npy"), torch.sign(g).numpy().astype(np.int8))
    with open(st, "w") as f:  # last: a half-written model never looks complete
        f.write(text)
    return True


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_torchvision_fixtures.py OUT_DIR [model ...]")
    out = sys.argv[1]
    names = sys.argv[2:] or MODELS
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model {n} (known: {' '.join(MODELS)})")
    os.makedirs(out, exist_ok=True)
    marker = os.path.join(out, "torch-missing")
    if torch is None:
        open(marker, "w").write("python3-torch or python3-torchvision is not installed\n")
        print("no torch/torchvision: fixtures not made (install python3-torch python3-torchvision)")
        sys.exit(1)
    if os.path.exists(marker):
        os.remove(marker)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, y = inputs(out)
    for n in names:
        made = make(n, 1000 + MODELS.index(n), x, y, out)
        print(f"{n}: {'made' if made else 'cached'}", flush=True)


if __name__ == "__main__":
    main()
