#!/usr/bin/python3
"""advex vs PyTorch, side by side on this machine: one command.

    /usr/bin/python3 bench/compare.py [--advex build/advex] [--threads 2] [--rounds 3]

For every case (architecture x workload x batch) it runs `advex bench --json` and
bench/torch_bench.py as separate processes, alternating (advex first on even rounds,
PyTorch first on odd ones), each process timing --reps repetitions; images/s is the
median over all repetitions of all rounds. Peak RSS is each process's ru_maxrss (wait4).
The sgemm peak (bench/sgemm_peak.c, OpenBLAS, same thread count) is measured at the start
and the end of the run; advex's GFLOP/s is reported as a share of the higher one. A
1-thread pass at batch 256, each round interleaved with the same runs at T threads, gives the
2-thread scaling, as the ratio of the overall medians and as the median of the per-round
ratios (runs seconds apart: the machine's drift over minutes cancels). --scaling runs only
that pass. Results: bench/results/*.json, .md.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"  # Debian's python3 with python3-torch


def run_proc(cmd):
    """Run cmd; return the JSON object on the last line of its stdout."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"compare: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_measured(cmd):
    """Like run_proc, and read the child's own peak RSS (KiB) with wait4."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"compare: {' '.join(cmd)} failed ({p.returncode}): {err.strip()[-500:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_rss_kb_wait4"] = ru.ru_maxrss
    return res


def build_probe(outdir):
    exe = os.path.join(outdir, "sgemm_peak")
    src = os.path.join(HERE, "sgemm_peak.c")
    omp = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
    if os.path.isdir(omp):  # the same OpenBLAS build advex links (CMakeLists.txt)
        flags = [f"-I/usr/include/x86_64-linux-gnu/openblas-openmp", f"-L{omp}", f"-Wl,-rpath,{omp}"]
    else:
        flags = []
    subprocess.run(["cc", "-O2", src, "-o", exe] + flags + ["-lopenblas"], check=True)
    return exe


def sgemm_peak(probe, threads):
    best = 0.0
    for size in (1024, 1536, 2048):
        r = run_proc([probe, str(threads), str(size)])
        best = max(best, r["gflops"])
    return best


def find_advex(path):
    for c in ([path] if path else []) + [os.path.join(ROOT, d, "advex") for d in ("build", "build-perf", "build-main")]:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit("compare: no advex binary; build it (cmake -S . -B build && cmake --build build) or pass --advex")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--advex", help="advex binary (default: build/advex)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternations per case")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per process")
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--archs", default="small,cnn,resnet")
    ap.add_argument("--quick", action="store_true", help="1 round, FGSM cases only")
    ap.add_argument("--scaling", action="store_true",
                    help="only the 1-thread FGSM batch-256 cases, each round paired with T threads")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    advex = find_advex(a.advex)
    os.makedirs(a.out, exist_ok=True)
    probe = build_probe(tempfile.mkdtemp(prefix="advex-sgemm-"))
    T = a.threads
    archs = a.archs.split(",")
    cases = []  # (arch, attack, batch, steps, threads)
    for arch in ([] if a.scaling else archs):
        cases += [(arch, "fgsm", 1, 1, T), (arch, "fgsm", 256, 1, T)]
        if not a.quick:
            cases += [(arch, "pgd", 256, 10, T), (arch, "train", 128, 1, T), (arch, "forward", 256, 1, T)]
    if T > 1:
        cases += [(arch, "fgsm", 256, 1, 1) for arch in archs]
    rounds = 1 if a.quick else a.rounds
    peaks = {T: [sgemm_peak(probe, T)], 1: [sgemm_peak(probe, 1)]}
    print(f"sgemm peak (OpenBLAS): {peaks[T][0]:.1f} GFLOP/s at {T} threads, {peaks[1][0]:.1f} at 1", flush=True)
    results = []
    t0 = time.time()
    for arch, attack, batch, steps, th in cases:
        common = ["--attack", attack, "--batch", str(batch), "--steps", str(steps), "--threads", str(th),
                  "--reps", str(a.reps), "--min-time", str(a.min_time)]
        adv_cmd = [advex, "bench", "--arch", arch, "--json"] + common
        pt_cmd = [PY, os.path.join(HERE, "torch_bench.py"), "--arch", arch] + common
        runs = {"advex": [], "pytorch": []}
        # a 1-thread case runs interleaved with the same case at T threads, so the scaling
        # compares runs made side by side (the machine's speed drifts over minutes)
        paired = th == 1 and T > 1
        if paired:
            tcommon = common[:common.index("--threads") + 1] + [str(T)] + common[common.index("--threads") + 2:]
            runs.update({"advex_T": [], "pytorch_T": []})
        for r in range(rounds):
            order = [("advex", adv_cmd), ("pytorch", pt_cmd)]
            if paired:
                order += [("advex_T", [advex, "bench", "--arch", arch, "--json"] + tcommon),
                          ("pytorch_T", [PY, os.path.join(HERE, "torch_bench.py"), "--arch", arch] + tcommon)]
            if r % 2:
                order.reverse()
            for name, cmd in order:
                runs[name].append(run_measured(cmd))
        row = {"arch": arch, "attack": attack, "batch": batch, "steps": steps, "threads": th}
        for name in ("advex", "pytorch"):
            rates = [x for run in runs[name] for x in run["rates"]]
            row[name] = {"images_per_second": statistics.median(rates), "rates": rates,
                         "peak_rss_kb": max(run["peak_rss_kb_wait4"] for run in runs[name])}
        row["advex"]["gflops"] = statistics.median(run["gflops"] for run in runs["advex"]) * \
            row["advex"]["images_per_second"] / statistics.median(run["images_per_second"] for run in runs["advex"])
        row["ratio"] = row["advex"]["images_per_second"] / row["pytorch"]["images_per_second"]
        if paired:
            row["paired_T_images_per_second"] = {
                name: statistics.median([x for run in runs[name + "_T"] for x in run["rates"]])
                for name in ("advex", "pytorch")}
            # per round: T-thread median over 1-thread median of runs made seconds apart
            # (drift over minutes cancels; the ratio of the overall medians above does not)
            row["paired_round_ratios"] = {
                name: [statistics.median(t["rates"]) / statistics.median(o["rates"])
                       for o, t in zip(runs[name], runs[name + "_T"])] for name in ("advex", "pytorch")}
        results.append(row)
        print(f"{arch:7s} {attack:7s} b{batch:<4d} K{steps:<3d} T{th}: advex {row['advex']['images_per_second']:9.1f}/s"
              f"  pytorch {row['pytorch']['images_per_second']:9.1f}/s  ratio {row['ratio']:5.2f}x"
              f"  RSS {row['advex']['peak_rss_kb'] / 1024:6.1f} / {row['pytorch']['peak_rss_kb'] / 1024:6.1f} MiB"
              f"  advex {row['advex']['gflops']:6.1f} GFLOP/s", flush=True)
    peaks[T].append(sgemm_peak(probe, T))
    peaks[1].append(sgemm_peak(probe, 1))
    peak = {t: max(v) for t, v in peaks.items()}
    for row in results:
        row["advex"]["share_of_sgemm_peak"] = row["advex"]["gflops"] / peak[row["threads"]]
    scaling = {}
    for row in results:
        if row["threads"] == 1 and "paired_T_images_per_second" in row:
            scaling[row["arch"]] = {tool: row["paired_T_images_per_second"][tool] / row[tool]["images_per_second"]
                                    for tool in ("advex", "pytorch")}
            for tool in ("advex", "pytorch"):
                scaling[row["arch"]][tool + "_per_round_median"] = statistics.median(row["paired_round_ratios"][tool])
    import torch  # noqa: E402  (version for the record)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": T, "rounds": rounds, "reps": a.reps,
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
            "nproc": os.cpu_count(), "torch": torch.__version__,
            "sgemm_peak_gflops": {str(k): v for k, v in peaks.items()}, "seconds": time.time() - t0, "advex": advex}
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    out = {"meta": meta, "results": results, "scaling_2_over_1_threads_fgsm_b256": scaling}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kind = "scaling" if a.scaling else "compare"
    jpath = os.path.join(a.out, f"{kind}-{stamp}.json")
    with open(jpath, "w") as f:
        json.dump(out, f, indent=1)
    md = [f"advex vs PyTorch {torch.__version__}, {meta['cpu']} ({meta['nproc']} cores), {meta['date']}; "
          f"medians of {rounds} alternating rounds x {a.reps} reps; sgemm peak {peak[T]:.1f} GFLOP/s at {T} threads, "
          f"{peak[1]:.1f} at 1.", "",
          "| arch | workload | batch | threads | advex img/s | PyTorch img/s | advex/PyTorch | advex RSS MiB | PyTorch RSS MiB | advex GFLOP/s (% of sgemm peak) |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        w = f"PGD-{r['steps']}" if r["attack"] == "pgd" else {"fgsm": "FGSM", "train": "FGSM-RS train step",
                                                                 "forward": "forward"}[r["attack"]]
        md.append(f"| {r['arch']} | {w} | {r['batch']} | {r['threads']} | {r['advex']['images_per_second']:.0f} | "
                  f"{r['pytorch']['images_per_second']:.0f} | {r['ratio']:.2f}x | {r['advex']['peak_rss_kb'] / 1024:.0f} | "
                  f"{r['pytorch']['peak_rss_kb'] / 1024:.0f} | {r['advex']['gflops']:.1f} "
                  f"({100 * r['advex']['share_of_sgemm_peak']:.0f}%) |")
    if scaling:
        md += ["", f"{T} threads over 1 thread, FGSM batch 256 (ratio of the medians; median of the {rounds} "
                   f"per-round ratios, each round's runs made seconds apart):", ""]
        for arch, s in scaling.items():
            md.append(f"- {arch}: advex {s['advex']:.2f}x (per round {s['advex_per_round_median']:.2f}x), "
                      f"PyTorch {s['pytorch']:.2f}x (per round {s['pytorch_per_round_median']:.2f}x)")
    mpath = os.path.join(a.out, f"{kind}-{stamp}.md")
    with open(mpath, "w") as f:
        f.write("\n".join(md) + "\n")
    if not a.scaling:  # latest.* is the newest full comparison
        shutil.copyfile(jpath, os.path.join(a.out, "latest.json"))
        shutil.copyfile(mpath, os.path.join(a.out, "latest.md"))
    print("\n".join(md))
    print(f"\nwrote {jpath} and {mpath}")


if __name__ == "__main__":
    main()
