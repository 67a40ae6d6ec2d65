#!/usr/bin/python3
"""Reference figures for the cross-check of `advex eval --version rand` (tests/test_rand_ref.c):
the published AutoAttack (autoattack.py version='rand': APGD-CE then APGD-DLR on what is still
robust, 100 iterations, 1 restart, eot_iter 20; used from /work/shared/reference/autoattack,
never copied) on the randomized fixtures of tests/fixtures/random (tools/make_random_fixtures.py),
rebuilt in PyTorch with the same weights (the `small` network of small_pgd.onnx):
  noise    small(x + 0.25 N(0, 1))            (RandomNormalLike, scale 0.25)
  dropout  small(dropout(x, 0.3, training))   (Dropout ratio 0.3, training_mode=true: kept
                                               pixels scaled by 1/0.7, as ONNX's)
over the first N Fashion-MNIST test images at L-inf eps EPS, for seeds 0..SEEDS-1 (AutoAttack's
seed and torch.manual_seed: the model's draws and APGD's random starts). The robust accuracy of a
randomized model is itself random, so the C test compares advex's mean over its own seeds with
the mean here, within a tolerance built from the per-example spread recorded here.

Also AutoAttack's checks on the same first N_CHECK images (advex_eval_checks looks at 64):
check_randomized (version 'standard' runs it, 'rand' skips it) and check_range_output on the two
randomized models and on small_pgd.onnx itself (deterministic), and how many warnings the rand
runs logged (check_zero_gradients inside APGD, check_n_classes).

Writes rand_ref.npy (float32): a header [N, SEEDS, EPS, small_pgd randomized warned, small_pgd
range warned], then per model (noise, dropout):
  [randomized warned, range warned, rand-run warnings,
   SEEDS x (clean, robust after APGD-CE, robust after APGD-DLR),
   N x how often the example was robust after APGD-CE, N x after APGD-DLR (over the seeds)]
The robust flags after each attack are AutoAttack's own (its EvaluationState, recorded as each
attack ends); the final ones equal y_adv == y.
Run with /usr/bin/python3 (torch 1.13); about 30 s per model and seed on one core.
Never needed at run time.

    /usr/bin/python3 tools/make_rand_fixtures.py [fashion-mnist dir] [fixtures dir] [reference dir]
"""
import os
import re
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_l2_fixtures import idx, small  # noqa: E402  (the same network and reader)

EPS, N, SEEDS = 0.1, 100, 16
N_CHECK = 64


class Noise(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x + 0.25 * torch.randn_like(x))


class Drop(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(F.dropout(x, 0.3, training=True))


class Lines:
    """AutoAttack's logger, keeping the lines."""

    def __init__(self):
        self.lines = []

    def log(self, s):
        self.lines.append(str(s))


def load(path):
    net = small()
    inits = {t.name: torch.tensor(numpy_helper.to_array(t)) for t in onnx.load(path).graph.initializer}
    net.load_state_dict({k: v for k, v in inits.items() if k in net.state_dict()})
    return net.eval()


def percent(lines, pattern):
    for s in lines:
        m = re.search(pattern + r": ([0-9.]+)%", s)
        if m:
            return float(m.group(1))
    raise RuntimeError(f"no '{pattern}' line in {lines}")


def checked(checks, model, x, y):
    """Whether AutoAttack's check_randomized and check_range_output warn on the first N_CHECK."""
    torch.manual_seed(0)
    log = Lines()
    checks.check_randomized(model, x[:N_CHECK], y[:N_CHECK], bs=N_CHECK, logger=log)
    randomized = any("randomized defense" in s for s in log.lines)
    checks.check_range_output(model, x[:N_CHECK], logger=log)
    return randomized, any("probability distribution" in s for s in log.lines)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "tests", "fixtures", "random")
    ref = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "..", "shared", "reference")
    if not os.path.isdir(os.path.join(ref, "autoattack")):
        ref = "/work/shared/reference"
    sys.path.insert(0, ref)
    from autoattack import checks
    from autoattack.autoattack import AutoAttack
    from autoattack.state import EvaluationState

    torch.set_num_threads(1)  # (2 threads spin-wait badly on a loaded 2-core host)
    x = torch.tensor(idx(f"{src}/t10k-images-idx3-ubyte.gz")[:N], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{src}/t10k-labels-idx1-ubyte.gz")[:N], dtype=torch.int64)
    stages = []  # robust flags as each attack of a run ends
    add_run_attack = EvaluationState.add_run_attack

    def record(self, attack):
        stages.append(self.robust_flags.clone())
        add_run_attack(self, attack)

    EvaluationState.add_run_attack = record
    fixtures = os.path.join(here, "..", "tests", "fixtures")
    header = [N, SEEDS, EPS] + list(checked(checks, load(os.path.join(fixtures, "attacks", "small_pgd.onnx")), x, y))
    print(f"small_pgd: check_randomized {bool(header[3])}, check_range_output {bool(header[4])}")
    rows = [np.array(header)]
    for name, wrap in (("noise", Noise), ("dropout", Drop)):
        model = wrap(load(os.path.join(fixtures, "random", name + ".onnx")))
        randomized, ranged = checked(checks, model, x, y)
        counts, freq = [], np.zeros((2, N))
        warned = 0
        for seed in range(SEEDS):
            t0 = time.time()
            torch.manual_seed(seed)
            aa = AutoAttack(model, norm="Linf", eps=EPS, version="rand", seed=seed, device="cpu", verbose=True)
            aa.logger = aa.apgd.logger = log = Lines()
            stages.clear()
            _, y_adv = aa.run_standard_evaluation(x, y, bs=N, return_labels=True)
            assert len(stages) == 2 and bool((stages[1] == (y_adv == y)).all())
            freq += np.stack([f.numpy() for f in stages])
            warned += sum(1 for s in log.lines if s.startswith("Warning"))
            clean = round(percent(log.lines, "initial accuracy") * N / 100)
            ce, dlr = (int(f.sum()) for f in stages)
            assert (ce, dlr) == (round(percent(log.lines, "robust accuracy after APGD-CE") * N / 100),
                                 round(percent(log.lines, "robust accuracy after APGD-DLR") * N / 100))
            counts += [clean, ce, dlr]
            print(f"{name} seed {seed}: clean {clean}, after APGD-CE {ce}, after APGD-DLR {dlr} of {N} "
                  f"({time.time() - t0:.0f} s)", flush=True)
        c = np.array(counts, float).reshape(SEEDS, 3)
        print(f"{name}: check_randomized {randomized}, check_range_output {ranged}, rand-run warnings {warned}; "
              f"mean clean {c[:, 0].mean():.2f}, after APGD-CE {c[:, 1].mean():.2f} (sd {c[:, 1].std(ddof=1):.2f}), "
              f"after APGD-DLR {c[:, 2].mean():.2f} (sd {c[:, 2].std(ddof=1):.2f})", flush=True)
        rows.append(np.concatenate([[randomized, ranged, warned], counts, freq.ravel() / SEEDS]))
    np.save(os.path.join(out, "rand_ref.npy"), np.concatenate(rows).astype(np.float32))


if __name__ == "__main__":
    main()
