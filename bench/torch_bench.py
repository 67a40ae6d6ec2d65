#!/usr/bin/python3
"""The PyTorch peer of `advex bench`: the same architectures (src/graph/arch.c), random
weights and inputs, the same workloads (FGSM, PGD-K, one FGSM-RS training step, a clean
forward), eval mode for attacks, images/s as the median of repetitions. Prints one JSON
object with the keys `advex bench --json` uses. Run by bench/compare.py."""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """conv-bn-relu-conv-bn (+ 1x1 strided projection when the shape changes), relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (x if self.proj is None else self.proj(x)))


def build(arch):
    if arch == "small":
        return nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))
    if arch == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(32, 64, 5, 1, 2),
                             nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), nn.ReLU(),
                             nn.Linear(1024, 10))
    if arch == "wide":
        return nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                             nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(64 * 7 * 7, 200), nn.ReLU(), nn.Linear(200, 10))
    if arch == "resnet":
        return nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), Block(16, 16, 1),
                             Block(16, 32, 2), Block(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    raise SystemExit(f"unknown arch {arch}")


def torchvision_model(name, state=None):
    """torchvision's classifier `name` with the weights of tools/make_torchvision_fixtures.py
    (its seed, its perturbation, ImageNet normalisation inside): the network the ONNX file
    of build/torchvision/<name>/model.onnx holds, built in PyTorch. With `state` (a file of
    torch.save(model.state_dict())), the way a user loads a saved model: the architecture
    constructed, then load_state_dict of the file; the file is written first if missing."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
    import make_torchvision_fixtures as tvf
    if name not in tvf.MODELS:
        raise SystemExit(f"unknown torchvision model {name} (known: {' '.join(tvf.MODELS)})")
    if state is None:
        return tvf.build(name, 1000 + tvf.MODELS.index(name))
    if not os.path.exists(state):
        tmp = state + ".tmp"
        torch.save(tvf.build(name, 1000 + tvf.MODELS.index(name)).state_dict(), tmp)
        os.replace(tmp, state)
    import torchvision
    model = tvf.Normalised(getattr(torchvision.models, name)(weights=None))
    model.load_state_dict(torch.load(state))
    return model.eval()


def input_grad(model, x, y):
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    return torch.autograd.grad(loss, x)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="small")
    ap.add_argument("--torchvision", metavar="NAME",
                    help="torchvision classifier (tools/make_torchvision_fixtures.py's), 3x224x224 inputs")
    ap.add_argument("--state", metavar="FILE",
                    help="with --torchvision: load the weights from this state_dict file (written first if missing); "
                         "load_seconds then times construction + load_state_dict")
    ap.add_argument("--channels-last", action="store_true",
                    help="model and inputs in torch.channels_last memory format")
    ap.add_argument("--attack", default="fgsm", choices=["fgsm", "pgd", "train", "forward"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scaling", action="store_true",
                    help="also time 1 thread, one repetition beside each --threads one (as advex bench --scaling)")
    a = ap.parse_args()
    if a.scaling and a.threads < 2:
        raise SystemExit("torch_bench: --scaling needs --threads 2 or more")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    if a.torchvision:
        if a.state and not os.path.exists(a.state):  # written once, outside the timing
            torchvision_model(a.torchvision, a.state)
            t0 = time.perf_counter()
        model, shape, classes = torchvision_model(a.torchvision, a.state), (3, 224, 224), 1000
    else:
        torch.manual_seed(a.seed)
        model, shape, classes = build(a.arch), (1, 28, 28), 10
    build_seconds = time.perf_counter() - t0
    model.eval()
    torch.manual_seed(a.seed)
    x = torch.rand(a.batch, *shape)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (a.batch,))
    eps = a.eps
    steps = a.steps if a.attack == "pgd" else 1
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if a.attack == "train" else None
    if a.attack != "train":
        for p in model.parameters():  # attacks and inference need no parameter gradients
            p.requires_grad_(False)

    def run():
        if a.attack == "forward":
            with torch.inference_mode():
                return model(x)
        if a.attack == "fgsm":
            g = input_grad(model, x, y)
            return (x + eps * g.sign()).clamp_(0, 1)
        if a.attack == "pgd":
            alpha = 2.5 * eps / steps
            xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp_(0, 1)
            for _ in range(steps):
                g = input_grad(model, xa, y)
                xa = torch.min(torch.max(xa + alpha * g.sign(), x - eps), x + eps).clamp_(0, 1)
            return xa
        # FGSM-RS training step: eval-mode input gradient (as advex bench), then a
        # train-mode forward/backward and an SGD momentum update
        model.eval()
        xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp_(0, 1)
        g = input_grad(model, xa, y)
        xa = torch.min(torch.max(xa + 1.25 * eps * g.sign(), x - eps), x + eps).clamp_(0, 1).detach()
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xa), y)
        loss.backward()
        opt.step()
        model.eval()
        return loss

    def timed():
        t0 = time.perf_counter()
        it = 0
        while True:
            run()
            it += 1
            el = time.perf_counter() - t0
            if el >= a.min_time:
                return it * a.batch / el

    if a.scaling:  # warm the 1-thread path too
        torch.set_num_threads(1)
        run()
        torch.set_num_threads(a.threads)
    run()  # warm-up
    rates, rates1 = [], []
    for r in range(a.reps):
        # --scaling: the 1-thread repetition first on even reps, second on odd ones
        for single in ((True, False) if r % 2 == 0 else (False, True)) if a.scaling else (False,):
            torch.set_num_threads(1 if single else a.threads)
            (rates1 if single else rates).append(timed())
    torch.set_num_threads(a.threads)
    med = statistics.median(rates)
    out = {"tool": "pytorch", "torch": torch.__version__, "model": a.torchvision or a.arch, "attack": a.attack,
           "steps": steps, "batch": a.batch, "threads": torch.get_num_threads(), "reps": a.reps,
           "images_per_second": med, "rates": rates, "load_seconds": build_seconds,
           "channels_last": a.channels_last,
           "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if a.scaling:
        ratios = [t / o for t, o in zip(rates, rates1)]
        out["scaling"] = {"threads": a.threads, "images_per_second_1_thread": statistics.median(rates1),
                          "median_pair_ratio": statistics.median(ratios), "rates_1_thread": rates1,
                          "pair_ratios": ratios}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
