#!/usr/bin/python3
"""PyTorch parity fixtures for tests/test_parity.c (issue 3: "verified against PyTorch").

Regenerate with Debian's python3 (torch 1.13, onnx 1.12) -- not the pyenv python3 on PATH:

    /usr/bin/python3 tools/make_parity_fixtures.py

Builds five Fashion-MNIST classifiers in torch, trains each briefly (300 Adam steps),
exports it to ONNX (opset 13, dynamic batch, input "input", output "logits") and stores,
for the first 64 test images (stored once, x.npy / y.npy):
  NAME.onnx             the model
  NAME_logits.npy       (64, 10) float32 logits
  NAME_grad.npy         (64, 1, 28, 28) float32 d/dx of the summed cross-entropy
  NAME_fgsm.npy         (64,) int32 predictions on FGSM examples (eps 0.1)
  NAME_pgd.npy          (64,) int32 predictions on PGD L-inf examples (eps 0.1, step 0.01,
                        10 steps, no random start; step, project to the eps-ball, clip to [0,1])
Models: mlp, small (advex's built-in `small`), vgg (BatchNorm folded into Conv by the
exporter, MaxPool), resnet (residual Add, mean/std Sub/Div inside the graph,
GlobalAveragePool) and bn_node (BatchNormalization kept as a node: exported with
TrainingMode.PRESERVE from eval mode, so the exporter's Conv+BN fusion does not run).
Deterministic: fixed seeds, one thread, deterministic algorithms. Total size about 2 MB.
"""
import gzip
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "parity")
DATA = "/usr/share/datasets/fashion-mnist"
N_EVAL, STEPS, BATCH = 64, 300, 64
EPS, ALPHA, PGD_STEPS = 0.1, 0.01, 10


def idx_images(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    n, h, w = (int.from_bytes(b[i:i + 4], "big") for i in (4, 8, 12))
    return (np.frombuffer(b, np.uint8, offset=16).reshape(n, 1, h, w).astype(np.float32) / 255.0)


def idx_labels(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    return np.frombuffer(b, np.uint8, offset=8).astype(np.int64)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class Small(nn.Module):
    """advex's built-in `small`."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))

    def forward(self, x):
        return self.net(x)


def vgg_body():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(1, 8), *block(8, 8), nn.MaxPool2d(2), *block(8, 16), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = vgg_body()

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet(nn.Module):
    """Normalisation inside the graph (Sub/Div constants), two residual blocks."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.286]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.353]).view(1, 1, 1, 1))
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.l1 = Block(8, 8, 1)
        self.l2 = Block(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.l2(self.l1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class BNNode(nn.Module):
    """Conv/BN/MaxPool plus a BatchNorm1d after a Linear; exported without BN fusion."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(8 * 7 * 7, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                 nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


def train(model, xs, ys, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(STEPS):
        idx = torch.randint(0, xs.shape[0], (BATCH,), generator=g)
        loss = F.cross_entropy(model(xs[idx]), ys[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def input_grad(model, x, y):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def pgd(model, x0, y):
    x = x0.clone()
    for _ in range(PGD_STEPS):
        x = x + ALPHA * input_grad(model, x, y).sign()
        x = torch.min(torch.max(x, x0 - EPS), x0 + EPS).clamp(0.0, 1.0)
    return x


def export(model, path, preserve):
    kw = dict(training=torch.onnx.TrainingMode.PRESERVE) if preserve else {}
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, **kw)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    has_bn = "BatchNormalization" in ops
    assert has_bn == preserve, (path, sorted(ops))
    return sorted(ops)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    xtr = torch.from_numpy(idx_images(f"{DATA}/train-images-idx3-ubyte.gz")[:20000])
    ytr = torch.from_numpy(idx_labels(f"{DATA}/train-labels-idx1-ubyte.gz")[:20000])
    x = torch.from_numpy(idx_images(f"{DATA}/t10k-images-idx3-ubyte.gz")[:N_EVAL].copy())
    y = torch.from_numpy(idx_labels(f"{DATA}/t10k-labels-idx1-ubyte.gz")[:N_EVAL].copy())
    np.save(os.path.join(OUT, "x.npy"), x.numpy())
    np.save(os.path.join(OUT, "y.npy"), y.numpy().astype(np.int32))
    models = [("mlp", MLP, False), ("small", Small, False), ("vgg", VGG, False), ("resnet", ResNet, False),
              ("bn_node", BNNode, True)]
    for k, (name, cls, preserve) in enumerate(models):
        torch.manual_seed(1000 + k)
        model = cls()
        train(model, xtr, ytr, 2000 + k)
        ops = export(model, os.path.join(OUT, f"{name}.onnx"), preserve)
        with torch.no_grad():
            logits = model(x)
        grad = input_grad(model, x, y)
        x_fgsm = (x + EPS * grad.sign()).clamp(0.0, 1.0)
        x_pgd = pgd(model, x, y)
        with torch.no_grad():
            p_fgsm = model(x_fgsm).argmax(1)
            p_pgd = model(x_pgd).argmax(1)
        np.save(os.path.join(OUT, f"{name}_logits.npy"), logits.numpy().astype(np.float32))
        np.save(os.path.join(OUT, f"{name}_grad.npy"), grad.numpy().astype(np.float32))
        np.save(os.path.join(OUT, f"{name}_fgsm.npy"), p_fgsm.numpy().astype(np.int32))
        np.save(os.path.join(OUT, f"{name}_pgd.npy"), p_pgd.numpy().astype(np.int32))
        acc = (logits.argmax(1) == y).float().mean().item()
        print(f"{name}: clean acc {acc:.3f}, fgsm acc {(p_fgsm == y).float().mean().item():.3f}, "
              f"pgd acc {(p_pgd == y).float().mean().item():.3f}; ops {' '.join(ops)}")


if __name__ == "__main__":
    main()
