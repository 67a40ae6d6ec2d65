#!/usr/bin/python3
"""advex's `standard` against the published AutoAttack (standard version), same weights, same
CPU, one command:

    /usr/bin/python3 bench/autoattack_standard.py [--advex build/advex] [--model M.onnx]
        [--n 200] [--eps 0.05] [--norm Linf|L2|L1] [--threads 1] [--torch-threads 1,2] [--reference DIR]

The model is `small` (tests/fixtures/attacks/small_pgd.onnx by default; its weights are loaded
into the same PyTorch network). Runs `advex attack --attack standard --out adv.npy` (wall time
of the process), then AutoAttack(version='standard') from the reference directory (imported
from there, never copied; wall time of run_standard_evaluation; once per --torch-threads value, default --threads) on the first N Fashion-MNIST
test images. Prints both times, the ratio, the ratio to PyTorch's fastest setting, both robust accuracies (advex's examples judged by
the PyTorch model) and the examples on which the two disagree. Results are appended to
bench/results/autoattack_standard.txt. Benchmark only; never needed at run time.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from make_l2_fixtures import idx, small  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--advex", default=os.path.join(HERE, "..", "build", "advex"))
    ap.add_argument("--model", default=os.path.join(HERE, "..", "tests", "fixtures", "attacks", "small_pgd.onnx"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--norm", default="Linf", choices=["Linf", "L2", "L1"])
    ap.add_argument("--threads", type=int, default=1, help="advex's --threads (and PyTorch's unless --torch-threads)")
    ap.add_argument("--torch-threads", default=None, help="comma list: run AutoAttack once per thread count")
    ap.add_argument("--reference", default="/work/shared/reference")
    a = ap.parse_args()
    sys.path.insert(0, a.reference)
    from autoattack import AutoAttack

    torch_threads = [int(t) for t in a.torch_threads.split(",")] if a.torch_threads else [a.threads]
    model = small()
    graph = onnx.load(a.model).graph
    model.load_state_dict({t.name: torch.tensor(numpy_helper.to_array(t)) for t in graph.initializer})
    model.eval()
    x = torch.tensor(idx(f"{a.data}/t10k-images-idx3-ubyte.gz")[:a.n], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{a.data}/t10k-labels-idx1-ubyte.gz")[:a.n], dtype=torch.int64)

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "adv.npy")
        cmd = [a.advex, "attack", "--model", a.model, "--data", "fashion-mnist:test", "--data-dir", a.data,
               "--limit", str(a.n), "--attack", "standard", "--eps", repr(a.eps), "--norm", a.norm.lower(),
               "--threads", str(a.threads), "--batch", str(a.n), "--out", out, "--quiet"]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        t_advex = time.time() - t0
        x_advex = torch.tensor(np.load(out))

    runs = []  # (threads, seconds, x_adv) per PyTorch setting
    for th in torch_threads:
        torch.set_num_threads(th)
        aa = AutoAttack(model, norm=a.norm, eps=a.eps, version="standard", device="cpu", verbose=False)
        t0 = time.time()
        x_aa = aa.run_standard_evaluation(x, y, bs=a.n)
        runs.append((th, time.time() - t0, x_aa))
    t_aa = min(r[1] for r in runs)
    x_aa = min(runs, key=lambda r: r[1])[2]

    def robust(xa):
        with torch.no_grad():
            return model(xa).argmax(1) == y

    def within(xa):
        d = (xa - x).reshape(a.n, -1)
        r = {"Linf": d.abs().max(1)[0], "L2": d.norm(dim=1), "L1": d.abs().sum(1)}[a.norm]
        return float(r.max())

    r_adv, r_aa = robust(x_advex), robust(x_aa)
    lines = [
        f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
        f"threads: advex {a.threads}, PyTorch {','.join(map(str, torch_threads))}, torch {torch.__version__}",
        f"$ /usr/bin/python3 bench/autoattack_standard.py --n {a.n} --eps {a.eps} --norm {a.norm} --threads {a.threads}"
        + (f" --torch-threads {a.torch_threads}" if a.torch_threads else ""),
        f"standard {a.norm} eps {a.eps} on the first {a.n} Fashion-MNIST test images, model {os.path.basename(a.model)}",
        f"  advex ({a.threads} thr)      {t_advex:8.1f} s   robust {int(r_adv.sum())}/{a.n}   "
        f"max perturbation {within(x_advex):.5f}",
    ]
    for th, t, xa in runs:
        lines.append(f"  AutoAttack ({th} thr) {t:8.1f} s   robust {int(robust(xa).sum())}/{a.n}   "
                     f"max perturbation {within(xa):.5f}   advex {t / t_advex:.1f}x faster")
    lines.append(f"  advex {t_aa / t_advex:.1f}x faster than AutoAttack's fastest setting; examples disagreeing "
                 f"(robust in one, not the other): {int((r_adv != r_aa).sum())}")
    print("\n".join(lines))
    with open(os.path.join(HERE, "results", "autoattack_standard.txt"), "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
