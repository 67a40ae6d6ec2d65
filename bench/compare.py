#!/usr/bin/python3
"""advex vs PyTorch, side by side on this machine: one command.

    /usr/bin/python3 bench/compare.py [--advex build/advex] [--threads 2] [--rounds 3]

For every case (architecture x workload x batch) it runs `advex bench --json` and
bench/torch_bench.py as separate processes, alternating (advex first on even rounds,
PyTorch first on odd ones), each process timing --reps repetitions; images/s is the
median over all repetitions of all rounds. Peak RSS is each process's ru_maxrss (wait4).
The sgemm peak (bench/sgemm_peak.c, OpenBLAS, same thread count) is measured at the start
and the end of the run; advex's GFLOP/s is reported as a share of the higher one.

Scaling (T threads over 1, FGSM batch 256): each process times pairs of repetitions, one at
1 thread beside one at T (`advex bench --scaling`, `torch_bench.py --scaling`), so the two
halves of a pair run within a second of each other; the figure is the median of all pairs
of all rounds. The same pairs of OpenBLAS sgemm runs (`sgemm_peak T SIZE PAIRS`), made in
each round beside them, give the machine's own scaling on a kernel with no serial part:
the ceiling at that moment on a shared host. The 1-thread rows of the table come from the
same processes. --scaling runs only this pass. Results: bench/results/*.json, .md.
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
                    help="only the scaling pass (FGSM batch 256, 1 thread beside T threads)")
    ap.add_argument("--scaling-reps", type=int, default=8, help="1-vs-T pairs per process in the scaling pass")
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
    if T > 1:  # the scaling pass (1 thread beside T in every process)
        cases += [(arch, "fgsm", 256, 1, 1) for arch in archs]
    rounds = 1 if a.quick else a.rounds
    peaks = {T: [sgemm_peak(probe, T)], 1: [sgemm_peak(probe, 1)]}
    print(f"sgemm peak (OpenBLAS): {peaks[T][0]:.1f} GFLOP/s at {T} threads, {peaks[1][0]:.1f} at 1", flush=True)
    results = []
    t0 = time.time()
    for arch, attack, batch, steps, th in cases:
        paired = th == 1 and T > 1
        common = ["--attack", attack, "--batch", str(batch), "--steps", str(steps),
                  "--threads", str(T if paired else th), "--min-time", str(a.min_time),
                  "--reps", str(a.scaling_reps if paired else a.reps)] + (["--scaling"] if paired else [])
        adv_cmd = [advex, "bench", "--arch", arch, "--json"] + common
        pt_cmd = [PY, os.path.join(HERE, "torch_bench.py"), "--arch", arch] + common
        runs = {"advex": [], "pytorch": [], "sgemm": []}
        for r in range(rounds):
            order = [("advex", adv_cmd), ("pytorch", pt_cmd)]
            if paired:  # the machine's own scaling, measured the same way beside them
                order.append(("sgemm", [probe, str(T), "1536", str(a.scaling_reps), str(a.min_time)]))
            if r % 2:
                order.reverse()
            for name, cmd in order:
                runs[name].append(run_measured(cmd))
        row = {"arch": arch, "attack": attack, "batch": batch, "steps": steps, "threads": th}
        # in the scaling pass the rows are the 1-thread halves of the pairs
        key = "rates_1_thread" if paired else "rates"
        for name in ("advex", "pytorch"):
            rates = [x for run in runs[name] for x in (run["scaling"] if paired else run)[key]]
            row[name] = {"images_per_second": statistics.median(rates), "rates": rates,
                         "peak_rss_kb": max(run["peak_rss_kb_wait4"] for run in runs[name])}
        gf = [run["gflops"] / run["images_per_second"] for run in runs["advex"]]  # GFLOP per image
        row["advex"]["gflops"] = statistics.median(gf) * row["advex"]["images_per_second"]
        row["ratio"] = row["advex"]["images_per_second"] / row["pytorch"]["images_per_second"]
        if paired:
            row["scaling"] = {}
            for name in ("advex", "pytorch", "sgemm"):
                pr = [x for run in runs[name] for x in (run["scaling"] if name != "sgemm" else run)["pair_ratios"]]
                row["scaling"][name] = {"median_pair_ratio": statistics.median(pr), "pair_ratios": pr}
            for name in ("advex", "pytorch"):
                tr = [x for run in runs[name] for x in run["rates"]]
                row["scaling"][name]["images_per_second_T"] = statistics.median(tr)
                row["scaling"][name]["ratio_of_medians"] = statistics.median(tr) / row[name]["images_per_second"]
        results.append(row)
        print(f"{arch:7s} {attack:7s} b{batch:<4d} K{steps:<3d} T{th}: advex {row['advex']['images_per_second']:9.1f}/s"
              f"  pytorch {row['pytorch']['images_per_second']:9.1f}/s  ratio {row['ratio']:5.2f}x"
              f"  RSS {row['advex']['peak_rss_kb'] / 1024:6.1f} / {row['pytorch']['peak_rss_kb'] / 1024:6.1f} MiB"
              f"  advex {row['advex']['gflops']:6.1f} GFLOP/s", flush=True)
        if paired:
            sc = row["scaling"]
            print(f"        scaling T{T}/T1 (median of {len(sc['advex']['pair_ratios'])} pairs): advex "
                  f"{sc['advex']['median_pair_ratio']:.2f}x  pytorch {sc['pytorch']['median_pair_ratio']:.2f}x  "
                  f"sgemm {sc['sgemm']['median_pair_ratio']:.2f}x", flush=True)
    peaks[T].append(sgemm_peak(probe, T))
    peaks[1].append(sgemm_peak(probe, 1))
    peak = {t: max(v) for t, v in peaks.items()}
    for row in results:
        row["advex"]["share_of_sgemm_peak"] = row["advex"]["gflops"] / peak[row["threads"]]
    scaling = {}
    for row in results:
        if "scaling" in row:
            sc = row["scaling"]
            scaling[row["arch"]] = {name: sc[name]["median_pair_ratio"] for name in ("advex", "pytorch", "sgemm")}
            scaling[row["arch"]]["pairs"] = len(sc["advex"]["pair_ratios"])
            for name in ("advex", "pytorch"):
                scaling[row["arch"]][name + "_ratio_of_medians"] = sc[name]["ratio_of_medians"]
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
          f"medians of {rounds} alternating rounds x {a.reps} reps (the 1-thread rows: the 1-thread halves of "
          f"{a.scaling_reps} pairs per process); sgemm peak {peak[T]:.1f} GFLOP/s at {T} threads, "
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
        md += ["", f"{T} threads over 1 thread, FGSM batch 256: median of the 1-vs-{T} pairs (each pair's runs "
                   f"within a second of each other, in one process); in brackets the ratio of the medians. "
                   f"OpenBLAS sgemm, paired the same way in the same rounds, is the machine's own scaling:", ""]
        for arch, sc in scaling.items():
            md.append(f"- {arch} ({sc['pairs']} pairs): advex {sc['advex']:.2f}x ({sc['advex_ratio_of_medians']:.2f}x), "
                      f"PyTorch {sc['pytorch']:.2f}x ({sc['pytorch_ratio_of_medians']:.2f}x), "
                      f"sgemm {sc['sgemm']:.2f}x")
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
