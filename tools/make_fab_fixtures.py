#!/usr/bin/python3
"""Reference figures for the FAB cross-check (tests/test_fab.c): the published FAB
(auto-attack's fab_pt.py / fab_base.py / fab_projections.py, used from
/work/shared/reference/autoattack, never copied) run on the `small` network of
tests/fixtures/attacks/small_pgd.onnx (its weights loaded into PyTorch) over the first N
Fashion-MNIST test images, 100 iterations, alpha_max 0.1, eta 1.05, beta 0.9, one run from
x (no random start, so the runs are deterministic):
  for each norm (Linf eps 0.1, L2 eps 1.0, L1 eps 8.0):
    FAB untargeted without a budget: each example's minimal norm (1e10 where none found)
    FAB untargeted at eps, FAB-T (TOPK target classes) at eps: robust counts
Writes fab_ref.npy (float32): for each norm [robust fab, robust fab-t, clean count, N norms].
Run with /usr/bin/python3 (torch). Never needed at run time.

    /usr/bin/python3 tools/make_fab_fixtures.py [fashion-mnist dir] [fixtures dir] [reference dir]
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_l2_fixtures import idx, small  # noqa: E402  (the same network and reader)

N, TOPK = 40, 3
NORMS = (("Linf", 0.1), ("L2", 1.0), ("L1", 8.0))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "tests", "fixtures", "attacks")
    ref = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "..", "shared", "reference")
    if not os.path.isdir(os.path.join(ref, "autoattack")):
        ref = "/work/shared/reference"
    sys.path.insert(0, ref)
    from autoattack.fab_pt import FABAttack_PT

    torch.set_num_threads(1)  # (2 threads spin-wait badly on a loaded 2-core host)
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

    rows = []
    for norm, eps in NORMS:
        fab = FABAttack_PT(model, norm=norm, n_restarts=1, n_iter=100, eps=1e10, device="cpu")
        adv = fab.perturb(x, y)
        with torch.no_grad():
            ok = clean & (model(adv).argmax(1) != y)
        dv = (adv - x).reshape(N, -1)
        nr = {"Linf": dv.abs().max(1)[0], "L2": dv.norm(dim=1), "L1": dv.abs().sum(1)}[norm]
        norms = torch.where(ok, nr.double(), torch.full_like(nr.double(), 1e10))
        fab = FABAttack_PT(model, norm=norm, n_restarts=1, n_iter=100, eps=eps, device="cpu")
        r_fab = robust(fab.perturb(x, y))
        fabt = FABAttack_PT(model, norm=norm, n_restarts=1, n_iter=100, eps=eps, targeted=True,
                            n_target_classes=TOPK, device="cpu")
        r_fabt = robust(fabt.perturb(x, y))
        print(f"{norm} eps {eps}: clean {int(clean.sum())} of {N}, robust fab {r_fab}, fab-t {r_fabt}, "
              f"median minimal norm {float(norms[ok].median()):.5f}", flush=True)
        rows.append(np.concatenate([[r_fab, r_fabt, int(clean.sum())], norms.numpy()]))
    np.save(os.path.join(out, "fab_ref.npy"), np.concatenate(rows).astype(np.float32))


if __name__ == "__main__":
    main()
