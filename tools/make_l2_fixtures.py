#!/usr/bin/python3
"""Reference figures for the L2 cross-check (tests/test_attacks_l2.c): the published
AutoAttack code (/work/shared/reference/autoattack, used from there, never copied) run on the
`small` network of tests/fixtures/attacks/small_pgd.onnx (its weights loaded into PyTorch) over
the first N Fashion-MNIST test images at L2 eps EPS:
  APGD-CE L2 (100 iterations, 1 restart), APGD-T L2 (100 iterations, TOPK target classes),
  Square L2 (QUERIES queries, p_init 0.8, the schedule rescaled to the budget as square.py's
  default), each for SEEDS seeds (budgets kept small so the test stays fast under the
  sanitizers).
Writes l2_ref.npy: int64 robust counts, 3 x SEEDS flattened (apgd-ce, apgd-t, square).
The C test compares advex's counts with the reference's range. Run with /usr/bin/python3
(torch 1.13). Never needed at run time.

    /usr/bin/python3 tools/make_l2_fixtures.py [fashion-mnist dir] [fixtures dir] [reference dir]
"""
import gzip
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

EPS, N, QUERIES, TOPK, SEEDS = 1.0, 200, 500, 3, 5


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def small():
    return nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "tests", "fixtures", "attacks")
    ref = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "..", "shared", "reference")
    if not os.path.isdir(os.path.join(ref, "autoattack")):
        ref = "/work/shared/reference"
    sys.path.insert(0, ref)
    from autoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from autoattack.square import SquareAttack

    torch.set_num_threads(2)
    model = small()
    graph = onnx.load(os.path.join(out, "small_pgd.onnx")).graph
    model.load_state_dict({t.name: torch.tensor(numpy_helper.to_array(t)) for t in graph.initializer})
    model.eval()
    x = torch.tensor(idx(f"{src}/t10k-images-idx3-ubyte.gz")[:N], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{src}/t10k-labels-idx1-ubyte.gz")[:N], dtype=torch.int64)
    with torch.no_grad():
        clean = model(x).argmax(1) == y

    def robust(adv):
        with torch.no_grad():
            return int((clean & (model(adv).argmax(1) == y)).sum())

    counts = np.zeros((3, SEEDS), dtype=np.int64)
    for seed in range(SEEDS):
        apgd = APGDAttack(model, norm="L2", eps=EPS, n_iter=100, n_restarts=1, loss="ce", seed=seed, device="cpu")
        counts[0, seed] = robust(apgd.perturb(x, y))
        apgdt = APGDAttack_targeted(model, norm="L2", eps=EPS, n_iter=100, n_restarts=1, n_target_classes=TOPK,
                                    seed=seed, device="cpu")
        counts[1, seed] = robust(apgdt.perturb(x, y))
        square = SquareAttack(model, norm="L2", eps=EPS, n_queries=QUERIES, p_init=0.8, n_restarts=1, seed=seed,
                              device="cpu", resc_schedule=True)
        counts[2, seed] = robust(square.perturb(x, y))
        print(f"seed {seed}: robust of {N} (clean {int(clean.sum())}): apgd-ce {counts[0, seed]}, "
              f"apgd-t {counts[1, seed]}, square {counts[2, seed]}", flush=True)
    np.save(os.path.join(out, "l2_ref.npy"), counts.reshape(-1))  # 1-D: row-major (attack, seed)


if __name__ == "__main__":
    main()
