#!/usr/bin/python3
"""Fixtures for the transfer-attack parity test (tests/test_transfer_parity.c): an
independent transfer attack in PyTorch. Two different small networks are trained briefly on
Fashion-MNIST (the surrogate: two strided convolutions and a linear layer; the target: two
convolutions with max-pooling and a linear layer), exported to ONNX, and FGSM, BIM (I-FGSM,
no random start) and MI-FGSM are crafted on the surrogate with the transfer literature's
rule: every step on every example (no early stop, nothing skipped), the last iterate
returned; L-inf sign steps with sign(0) = 0, project onto the eps-ball, then clip to [0,1].
The target's predictions on the clean images and on each attack's are stored, with the BIM
and MI-FGSM adversarial examples of the first NX images. Run with /usr/bin/python3 (torch 1.13). Never needed at run time.

    /usr/bin/python3 tools/make_transfer_fixtures.py [fashion-mnist dir] [out dir]
"""
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS, STEPS, MU, N, NX = 0.1, 10, 1.0, 1000, 32


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def surrogate():
    return nn.Sequential(nn.Conv2d(1, 16, 5, 2, 2), nn.ReLU(), nn.Conv2d(16, 32, 5, 2, 2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 10))


def target():
    return nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, 1, 1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def train(model, x, y, epochs=2):
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 100):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    return model.eval()


def grad(model, x, y):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return g


def step(xa, x, d, alpha):
    """xa + alpha * sign(d) (sign(0) = 0), projected onto the eps-ball around x, clipped to [0,1]"""
    v = xa + alpha * torch.sign(d)
    return torch.min(torch.max(v, x - EPS), x + EPS).clamp(0, 1)


def fgsm(model, x, y):
    return step(x, x, grad(model, x, y), EPS)


def bim(model, x, y, momentum=None):
    alpha, xa = EPS / STEPS, x.clone()
    g = torch.zeros_like(x)
    for _ in range(STEPS):
        d = grad(model, xa, y)
        if momentum is not None:  # MI-FGSM: g <- mu g + d / ||d||_1 (per example)
            n1 = d.abs().flatten(1).sum(1).view(-1, 1, 1, 1)
            g = momentum * g + torch.where(n1 > 0, d / n1.clamp_min(1e-30), torch.zeros_like(d))
            d = g
        xa = step(xa, x, d, alpha).detach()
    return xa


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                             "transfer")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    xtr = torch.tensor(idx(f"{src}/train-images-idx3-ubyte.gz")[:20000], dtype=torch.float32).unsqueeze(1) / 255
    ytr = torch.tensor(idx(f"{src}/train-labels-idx1-ubyte.gz")[:20000], dtype=torch.int64)
    sur = train(surrogate(), xtr[:10000], ytr[:10000])
    tgt = train(target(), xtr[10000:], ytr[10000:])
    x = torch.tensor(idx(f"{src}/t10k-images-idx3-ubyte.gz")[:N], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{src}/t10k-labels-idx1-ubyte.gz")[:N], dtype=torch.int64)
    for name, model in (("surrogate", sur), ("target", tgt)):
        torch.onnx.export(model, x[:1], f"{out}/{name}.onnx", opset_version=13, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    with torch.no_grad():
        clean = tgt(x).argmax(1)
    np.save(f"{out}/clean_pred.npy", clean.numpy().astype(np.int64))
    print(f"clean accuracy: surrogate {(sur(x).argmax(1) == y).float().mean():.3f}, "
          f"target {(clean == y).float().mean():.3f} ({N} test images)")
    for name, fn in (("fgsm", lambda: fgsm(sur, x, y)), ("bim", lambda: bim(sur, x, y)),
                     ("mifgsm", lambda: bim(sur, x, y, MU))):
        adv = fn()
        with torch.no_grad():
            pred = tgt(adv).argmax(1)
            white = sur(adv).argmax(1)
        np.save(f"{out}/{name}_pred.npy", pred.numpy().astype(np.int64))
        robust = ((clean == y) & (pred == y)).float().mean()
        print(f"{name:7s} eps {EPS}: transfer robust accuracy {robust:.3f} "
              f"(surrogate's own accuracy on them {(white == y).float().mean():.3f})")
        if name != "fgsm":
            np.save(f"{out}/{name}_adv.npy", adv[:NX].numpy().astype(np.float32))


if __name__ == "__main__":
    main()
