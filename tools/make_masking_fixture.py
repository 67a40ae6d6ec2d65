#!/usr/bin/python3
"""A gradient-masked model for the masking-warning tests (tests/test_masking.c and
tests/cli/attacks.sh): a small convolutional network trained briefly on Fashion-MNIST
behind a hard threshold, x_b = clip((x - 0.5) * 1e4, 0, 1), exported to ONNX as Sub, Mul, Clip
and the network. The threshold's slope is 0 everywhere except within 1e-4 of 0.5 (no pixel
k/255 is), so the input gradient is exactly zero and gradient attacks cannot move, while a
score-based attack (Square) still flips pixels across the threshold: the textbook case of
robustness that only gradient masking provides (Athalye et al. 2018). Run with
/usr/bin/python3 (torch 1.13). Never needed at run time.

    /usr/bin/python3 tools/make_masking_fixture.py [fashion-mnist dir] [out dir]
"""
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 5, 2, 2), nn.ReLU(), nn.Conv2d(8, 16, 5, 2, 2), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(16 * 7 * 7, 10))

    def forward(self, x):
        return self.net(torch.clamp((x - 0.5) * 1e4, 0.0, 1.0))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                             "attacks")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.tensor(idx(f"{src}/train-images-idx3-ubyte.gz")[:10000], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{src}/train-labels-idx1-ubyte.gz")[:10000], dtype=torch.int64)
    model = Masked()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(2):
        for i in range(0, len(x), 100):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    model.eval()
    xt = torch.tensor(idx(f"{src}/t10k-images-idx3-ubyte.gz")[:1000], dtype=torch.float32).unsqueeze(1) / 255
    yt = torch.tensor(idx(f"{src}/t10k-labels-idx1-ubyte.gz")[:1000], dtype=torch.int64)
    xg = xt[:64].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xg), yt[:64], reduction="sum"), xg)
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean()
    print(f"clean accuracy {acc:.3f} (first 1000 test images); input gradient zero for "
          f"{int((g.flatten(1).abs().sum(1) == 0).sum())} of 64")
    torch.onnx.export(model, xt[:1], f"{out}/masked.onnx", opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})


if __name__ == "__main__":
    main()
