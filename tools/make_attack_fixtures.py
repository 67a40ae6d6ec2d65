#!/usr/bin/python3
"""Fixtures for the PGD parity test (tests/test_attacks_parity.c): advex's `small` network
built in PyTorch with a fixed seed, trained briefly on Fashion-MNIST, exported to ONNX, and
PyTorch's PGD L-inf without a random start (advex's semantics: every iterate is checked, an
example is frozen at its first misclassified iterate, else the highest-loss iterate is kept)
on the first 200 test images. Stores the model and PyTorch's predictions on its adversarial
examples. Run with /usr/bin/python3 (torch 1.13). Never needed at run time.

    /usr/bin/python3 tools/make_attack_fixtures.py [fashion-mnist dir] [out dir]
"""
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS, ALPHA, STEPS, N = 0.1, 0.01, 20, 200


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def small():
    return nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


def pgd(model, x, y):
    xa, best = x.clone(), x.clone()
    best_loss = torch.full((len(x),), -float("inf"))
    done = torch.zeros(len(x), dtype=torch.bool)
    for s in range(STEPS + 1):
        xa = xa.detach().requires_grad_(True)
        z = model(xa)
        loss = F.cross_entropy(z, y, reduction="none")
        with torch.no_grad():
            ok = z.argmax(1) != y
            upd = ~done & (ok | (loss > best_loss))
            best[upd] = xa[upd]
            best_loss[upd] = torch.where(ok[upd], torch.tensor(float("inf")), loss[upd])
            done |= ok
        if s == STEPS:
            break
        (g,) = torch.autograd.grad(loss.sum(), xa)
        with torch.no_grad():
            step = ALPHA * g.sign()
            step[done] = 0
            xa = torch.min(torch.max(xa + step, x - EPS), x + EPS).clamp(0, 1)
    return best


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                                                             "attacks")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    xtr = torch.tensor(idx(f"{src}/train-images-idx3-ubyte.gz")[:10000], dtype=torch.float32).unsqueeze(1) / 255
    ytr = torch.tensor(idx(f"{src}/train-labels-idx1-ubyte.gz")[:10000], dtype=torch.int64)
    model = small()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(0, len(xtr), 100):
        opt.zero_grad()
        F.cross_entropy(model(xtr[i:i + 100]), ytr[i:i + 100]).backward()
        opt.step()
    model.eval()
    x = torch.tensor(idx(f"{src}/t10k-images-idx3-ubyte.gz")[:N], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{src}/t10k-labels-idx1-ubyte.gz")[:N], dtype=torch.int64)
    torch.onnx.export(model, x[:1], f"{out}/small_pgd.onnx", opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    adv = pgd(model, x, y)
    with torch.no_grad():
        clean = model(x).argmax(1)
        pred = model(adv).argmax(1)
    np.save(f"{out}/pgd_pred.npy", pred.numpy().astype(np.int64))
    print(f"clean accuracy {(clean == y).float().mean():.3f}, PGD accuracy {(pred == y).float().mean():.3f} "
          f"(eps {EPS}, alpha {ALPHA}, steps {STEPS}, {N} examples)")


if __name__ == "__main__":
    main()
