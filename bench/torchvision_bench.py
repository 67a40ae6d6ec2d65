#!/usr/bin/python3
"""advex vs PyTorch on the 13 torchvision classifiers (issue 17): FGSM, batch 8, 2 threads.

    /usr/bin/python3 tools/make_torchvision_fixtures.py build/torchvision   # once (~1.4 GB)
    /usr/bin/python3 bench/torchvision_bench.py [--advex build/advex] [--rounds 3] [--models a,b]

For every model it runs, as separate processes, alternating which goes first (advex first on
even rounds, PyTorch first on odd ones), `--rounds` times:

    advex bench --model build/torchvision/NAME/model.onnx --attack fgsm --batch 8 --threads 2 --json
    bench/torch_bench.py --torchvision NAME --state build/torchvision/NAME/state.pt --attack fgsm ...
    bench/torch_bench.py ... --channels-last

PyTorch's side is its fastest idioms for an input gradient: parameters frozen
(requires_grad_(False)), eval mode, torch.set_num_threads(T), torch.autograd.grad of the input
only; it is run in both memory formats and its faster one (the higher median) is the
figure compared (both are in the JSON). Both sides hold the same weights (the state file is
written from tools/make_torchvision_fixtures.py's model, which the ONNX file was exported
from).

images/s: the median over all repetitions of all rounds (also reported: each side's best
repetition, and their ratio, what each does when the shared machine leaves it alone). Peak RSS: each process's ru_maxrss
(wait4), the highest over the rounds. Load: advex_model_load_onnx of the ONNX file; for
PyTorch, constructing the torchvision architecture and load_state_dict of torch.load(state)
(medians over the rounds). The ratio is advex/PyTorch images/s; the geometric mean is over
the models run. Results: bench/results/torchvision.json and .md (the latest run only).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from compare import PY, find_advex, run_measured  # noqa: E402

MODELS = [
    "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg11_bn", "squeezenet1_1",
    "densenet121", "regnet_y_400mf", "mobilenet_v3_small", "shufflenet_v2_x1_0", "convnext_tiny",
    "vit_b_16", "swin_t",
]
FLOORS = {"ratio_each": 1.0, "ratio_geomean": 1.3, "resnet50_load_seconds": 1.0}


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse2"
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return {"cpu": cpu, "cpu_isa": isa, "nproc": os.cpu_count(), "mem_gib": round(mem / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--advex", help="advex binary (default: build/advex)")
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "build", "torchvision"),
                    help="tools/make_torchvision_fixtures.py's output directory")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="alternations per model")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per process")
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--torch-format", default="both", choices=["both", "contiguous", "channels_last"],
                    help="PyTorch's memory format(s); with both, the faster one is compared")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-write", action="store_true", help="print only (a partial run must not replace the results)")
    a = ap.parse_args()
    advex = find_advex(a.advex)
    models = a.models.split(",")
    for m in models:
        if m not in MODELS:
            sys.exit(f"torchvision_bench: unknown model {m} (known: {' '.join(MODELS)})")
        if not os.path.exists(os.path.join(a.fixtures, m, "model.onnx")):
            sys.exit(f"torchvision_bench: no {a.fixtures}/{m}/model.onnx: run "
                     f"/usr/bin/python3 tools/make_torchvision_fixtures.py {a.fixtures}")
    formats = ["contiguous", "channels_last"] if a.torch_format == "both" else [a.torch_format]
    common = ["--attack", "fgsm", "--batch", str(a.batch), "--threads", str(a.threads),
              "--reps", str(a.reps), "--min-time", str(a.min_time)]
    t0 = time.time()
    load_start = open("/proc/loadavg").read().split()[:3]
    results = []
    for m in models:
        d = os.path.join(a.fixtures, m)
        cmds = [("advex", [advex, "bench", "--model", os.path.join(d, "model.onnx"), "--json"] + common)]
        for fmt in formats:
            cmds.append((f"pytorch_{fmt}", [PY, os.path.join(HERE, "torch_bench.py"), "--torchvision", m,
                                            "--state", os.path.join(d, "state.pt")] + common
                         + (["--channels-last"] if fmt == "channels_last" else [])))
        runs = {name: [] for name, _ in cmds}
        for r in range(a.rounds):
            for name, cmd in (cmds if r % 2 == 0 else cmds[::-1]):
                runs[name].append(run_measured(cmd))
        row = {"model": m}
        for name, rs in runs.items():
            rates = [x for run in rs for x in run["rates"]]
            row[name] = {"images_per_second": statistics.median(rates), "best_images_per_second": max(rates),
                         "rates": rates,
                         "peak_rss_kb": max(run["peak_rss_kb_wait4"] for run in rs),
                         "load_seconds": statistics.median(run["load_seconds"] for run in rs)}
        best = max(formats, key=lambda f: row[f"pytorch_{f}"]["images_per_second"])
        row["pytorch"] = dict(row[f"pytorch_{best}"], format=best)
        row["ratio"] = row["advex"]["images_per_second"] / row["pytorch"]["images_per_second"]
        # the best repetition of each side: what each does when the shared machine leaves it alone
        row["ratio_best"] = row["advex"]["best_images_per_second"] / max(
            row[f"pytorch_{f}"]["best_images_per_second"] for f in formats)
        row["rss_ratio"] = row["advex"]["peak_rss_kb"] / row["pytorch"]["peak_rss_kb"]
        results.append(row)
        ad, pt = row["advex"], row["pytorch"]
        print(f"{m:20s} advex {ad['images_per_second']:7.2f}/s  pytorch {pt['images_per_second']:7.2f}/s ({best})  "
              f"ratio {row['ratio']:5.2f}x (best {row['ratio_best']:4.2f}x)  RSS {ad['peak_rss_kb'] / 1024:6.0f} / {pt['peak_rss_kb'] / 1024:6.0f} MiB  "
              f"load {ad['load_seconds']:5.2f} / {pt['load_seconds']:5.2f} s", flush=True)
    geo = math.exp(statistics.mean(math.log(r["ratio"]) for r in results))
    geo_best = math.exp(statistics.mean(math.log(r["ratio_best"]) for r in results))
    r50 = next((r for r in results if r["model"] == "resnet50"), None)
    floors = {
        "ratio_each": all(r["ratio"] >= FLOORS["ratio_each"] for r in results),
        "ratio_geomean": geo >= FLOORS["ratio_geomean"],
        "rss_each": all(r["advex"]["peak_rss_kb"] <= r["pytorch"]["peak_rss_kb"] for r in results),
        "resnet50_load": None if r50 is None else r50["advex"]["load_seconds"] <= FLOORS["resnet50_load_seconds"],
    }
    import torch  # noqa: E402  (version for the record)
    meta = dict(machine(), date=time.strftime("%Y-%m-%d %H:%M:%S"), threads=a.threads, batch=a.batch, rounds=a.rounds,
                reps=a.reps, min_time=a.min_time, torch=torch.__version__, torch_formats=formats,
                seconds=round(time.time() - t0, 1), advex=os.path.relpath(advex, ROOT),
                loadavg_start=load_start, loadavg_end=open("/proc/loadavg").read().split()[:3],
                command="/usr/bin/python3 bench/torchvision_bench.py " + " ".join(sys.argv[1:]))
    out = {"meta": meta, "geomean_ratio": geo, "geomean_ratio_best": geo_best, "floors": floors, "results": results}
    md = [f"advex vs PyTorch {meta['torch']} on torchvision classifiers (random weights, 3x224x224), FGSM "
          f"(forward + input gradient), batch {a.batch}, {a.threads} threads; {meta['cpu']} ({meta['nproc']} cores, "
          f"{meta['cpu_isa']}), {meta['date']}; medians of {a.rounds} alternating rounds x {a.reps} reps. "
          f"PyTorch: frozen parameters, eval, the faster of contiguous and channels_last.", "",
          "| model | advex img/s | PyTorch img/s | advex/PyTorch | best reps' ratio | advex RSS MiB | PyTorch RSS MiB | advex load s | PyTorch load s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ad, pt = r["advex"], r["pytorch"]
        fmt = " (cl)" if pt["format"] == "channels_last" else ""
        md.append(f"| {r['model']} | {ad['images_per_second']:.2f} | {pt['images_per_second']:.2f}{fmt} | "
                  f"{r['ratio']:.2f}x | {r['ratio_best']:.2f}x | {ad['peak_rss_kb'] / 1024:.0f} | {pt['peak_rss_kb'] / 1024:.0f} | "
                  f"{ad['load_seconds']:.2f} | {pt['load_seconds']:.2f} |")
    md += ["", f"Geometric mean advex/PyTorch: {geo:.2f}x (of the medians; of the best repetitions {geo_best:.2f}x). "
               f"(cl): PyTorch faster in channels_last. Load average at the start and the end: "
               f"{' '.join(meta['loadavg_start'])}; {' '.join(meta['loadavg_end'])}.", "",
           "Floors (issue 17): " + "; ".join(
               f"{k} {'met' if v else 'NOT met' if v is not None else 'not measured'}" for k, v in floors.items())]
    text = "\n".join(md) + "\n"
    print(text)
    if not a.no_write:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "torchvision.json"), "w") as f:
            json.dump(out, f, indent=1)
        with open(os.path.join(a.out, "torchvision.md"), "w") as f:
            f.write(text)
        print(f"wrote {a.out}/torchvision.json and .md")


if __name__ == "__main__":
    main()
