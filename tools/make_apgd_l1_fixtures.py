#!/usr/bin/python3
"""Reference figures for the L1 cross-check (tests/test_apgd_l1.c): the published AutoAttack
code (/work/shared/reference/autoattack: autopgd_base.py, square.py, autoattack.py; used from
there, never copied) run on the `small` network of tests/fixtures/attacks/small_pgd.onnx (its
weights loaded into PyTorch) over the first N Fashion-MNIST test images at L1 eps EPS.

1. Trajectories from a start both sides can compute: the Gaussian draws of the random start
   replaced by t[i, q] = 4 h / 2^32 - 2, h = ((i d + q) * 2654435761) mod 2^32 (torch.randn and
   torch.randn_like patched while the attack runs), 100 iterations, one run:
     APGD-CE L1, APGD-CE L1 with use_largereps (the 3/2/1 eps schedule), APGD-T L1 with
     use_largereps and one target class.
   Per example: -1 misclassified clean, 1 broken, 0 robust, and the best loss of the run's
   last leg (0 unless robust): trajectory rows [status N, loss N] per attack.
2. Robust counts with the reference's own randomness, for seeds 0..SEEDS-1: APGD-CE L1 (one
   restart), APGD-T L1 (TOPK targets), Square L1 (QUERIES queries, p_init 0.8, the schedule
   rescaled as square.py's default), and AutoAttack's standard version at L1
   (AutoAttack(norm='L1', version='standard'): APGD-CE and APGD-T with the eps schedule, 5
   restarts and 5 targets, FAB-T, Square 5000) on the first NSTD images.
Writes apgd_l1_ref.npy (float32): [N, EPS, SEEDS, NSTD, clean count, trajectory rows (3 x 2N),
counts (4 x SEEDS: apgd-ce, apgd-t, square, standard)]. Run with /usr/bin/python3 (torch).
Never needed at run time.

    /usr/bin/python3 tools/make_apgd_l1_fixtures.py [fashion-mnist dir] [fixtures dir] [reference dir]
"""
import contextlib
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_l2_fixtures import idx, small  # noqa: E402  (the same network and reader)

N, EPS, SEEDS, TOPK, QUERIES, NSTD = 200, 12.0, 3, 3, 1000, 100


def noise(rows, d):
    """The start draws both sides compute: uniform on [-2, 2) from a multiplicative hash."""
    q = np.arange(d, dtype=np.uint64)
    h = ((rows.astype(np.uint64)[:, None] * np.uint64(d) + q[None, :]) * np.uint64(2654435761)) % np.uint64(2 ** 32)
    return torch.tensor((4.0 * (h.astype(np.float64) / 2.0 ** 32) - 2.0).astype(np.float32))


@contextlib.contextmanager
def fixed_draws(t):
    """torch.randn / torch.randn_like return t (its rows in the order the attack passes them)."""
    randn, randn_like = torch.randn, torch.randn_like
    torch.randn = lambda *shape, **kw: t.reshape(shape[0] if len(shape) == 1 else shape).clone()
    torch.randn_like = lambda x, **kw: t.reshape(x.shape).clone()
    try:
        yield
    finally:
        torch.randn, torch.randn_like = randn, randn_like


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "tests", "fixtures", "attacks")
    ref = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "..", "shared", "reference")
    if not os.path.isdir(os.path.join(ref, "autoattack")):
        ref = "/work/shared/reference"
    sys.path.insert(0, ref)
    from autoattack import AutoAttack
    from autoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from autoattack.square import SquareAttack

    torch.set_num_threads(1)  # (2 threads spin-wait badly on a loaded 2-core host)
    model = small()
    graph = onnx.load(os.path.join(out, "small_pgd.onnx")).graph
    model.load_state_dict({t.name: torch.tensor(numpy_helper.to_array(t)) for t in graph.initializer})
    model.eval()
    x = torch.tensor(idx(f"{src}/t10k-images-idx3-ubyte.gz")[:N], dtype=torch.float32).unsqueeze(1) / 255
    y = torch.tensor(idx(f"{src}/t10k-labels-idx1-ubyte.gz")[:N], dtype=torch.int64)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    rows = clean.nonzero().squeeze(1)

    def robust(adv, n=N):
        with torch.no_grad():
            return int((clean[:n] & (model(adv).argmax(1) == y[:n])).sum())

    # 1. trajectories from the fixed draws
    traj = []
    for name, make in (
            ("apgd-ce", lambda: APGDAttack(model, norm="L1", eps=EPS, n_iter=100, n_restarts=1, loss="ce",
                                           device="cpu")),
            ("apgd-ce largereps", lambda: APGDAttack(model, norm="L1", eps=EPS, n_iter=100, n_restarts=1, loss="ce",
                                                     device="cpu", use_largereps=True)),
            ("apgd-t largereps", lambda: APGDAttack_targeted(model, norm="L1", eps=EPS, n_iter=100, n_restarts=1,
                                                             n_target_classes=1, device="cpu", use_largereps=True))):
        atk = make()
        last = []  # the last leg's (x_best, acc, loss_best, x_best_adv)
        single = atk.attack_single_run
        atk.attack_single_run = lambda xx, yy, x_init=None: last.append(single(xx, yy, x_init)) or last[-1]
        with fixed_draws(noise(rows.numpy(), x[0].numel())):
            adv = atk.perturb(x, y)
        with torch.no_grad():
            broken = clean & (model(adv).argmax(1) != y)
        status = torch.where(clean, broken.long(), torch.full_like(y, -1)).double()
        loss = torch.zeros(N, dtype=torch.float64)
        loss[rows] = last[-1][2].double()  # the run's (last leg's) best loss per attacked row
        loss[status != 0] = 0
        print(f"trajectory {name} L1 eps {EPS}: clean {int(clean.sum())} of {N}, robust {int((status == 0).sum())}",
              flush=True)
        traj.append(torch.cat([status, loss]).numpy())

    # 2. robust counts with the reference's own randomness
    counts = np.zeros((4, SEEDS))
    for seed in range(SEEDS):
        apgd = APGDAttack(model, norm="L1", eps=EPS, n_iter=100, n_restarts=1, loss="ce", seed=seed, device="cpu")
        counts[0, seed] = robust(apgd.perturb(x, y))
        apgdt = APGDAttack_targeted(model, norm="L1", eps=EPS, n_iter=100, n_restarts=1, n_target_classes=TOPK,
                                    seed=seed, device="cpu")
        counts[1, seed] = robust(apgdt.perturb(x, y))
        square = SquareAttack(model, norm="L1", eps=EPS, n_queries=QUERIES, p_init=0.8, n_restarts=1, seed=seed,
                              device="cpu", resc_schedule=True)
        counts[2, seed] = robust(square.perturb(x, y))
        aa = AutoAttack(model, norm="L1", eps=EPS, version="standard", seed=seed, device="cpu", verbose=seed == 0)
        counts[3, seed] = robust(aa.run_standard_evaluation(x[:NSTD], y[:NSTD], bs=NSTD), NSTD)
        print(f"seed {seed}: robust of {N} (clean {int(clean.sum())}): apgd-ce {counts[0, seed]:.0f}, apgd-t "
              f"{counts[1, seed]:.0f}, square {counts[2, seed]:.0f}; standard {counts[3, seed]:.0f} of {NSTD} "
              f"(clean {int(clean[:NSTD].sum())})", flush=True)
    head = [N, EPS, SEEDS, NSTD, int(clean.sum())]
    np.save(os.path.join(out, "apgd_l1_ref.npy"),
            np.concatenate([head, np.concatenate(traj), counts.reshape(-1)]).astype(np.float32))


if __name__ == "__main__":
    main()
