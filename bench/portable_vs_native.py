#!/usr/bin/python3
"""The portable build (default, run-time ISA dispatch) against a -march=native build.

    python3 bench/portable_vs_native.py --build [--rounds 5] [--threads 2]

--build configures and builds both from this checkout (build-portable: the default,
-DADVEX_NATIVE=OFF; build-native: -DADVEX_NATIVE=ON) with scripts/build.sh; without it the
binaries given by --portable / --native (default: those two build directories) are used
as they are. For every issue-5 case (small, cnn, resnet x FGSM batch 1 and 256, PGD-10
256, FGSM-RS train step 128, forward 256) each round runs `advex bench --json` once per
build as separate processes, alternating which goes first; a process times --reps
repetitions and reports their median. Per case the table gives each build's median over
the rounds and the median of the per-round ratios portable / native (the two runs of a
round are seconds apart, so they see the same state of a shared machine). --env NAME=VALUE
(repeatable) is set for the portable runs only, e.g. --env ADVEX_ISA=avx2 to time a forced
variant. Results: bench/results/portable-*.json and .md. Only the standard library is used.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (arch, workload, batch, label): the issue-5 cases
CASES = [(a, w, b, lab) for a in ("small", "cnn", "resnet") for (w, b, lab) in (
    ("fgsm", 1, "FGSM"), ("fgsm", 256, "FGSM"), ("pgd", 256, "PGD-10"), ("train", 128, "FGSM-RS train step"),
    ("forward", 256, "forward"))]


def build(dirname, native):
    env = dict(os.environ, BUILD_DIR=os.path.join(ROOT, dirname))
    subprocess.run([os.path.join(ROOT, "scripts", "build.sh"), f"-DADVEX_NATIVE={'ON' if native else 'OFF'}"],
                   env=env, check=True)
    return os.path.join(ROOT, dirname, "advex")


def bench(exe, arch, work, batch, args, env):
    cmd = [exe, "bench", "--arch", arch, "--attack", work, "--batch", str(batch), "--threads", str(args.threads),
           "--reps", str(args.reps), "--min-time", str(args.min_time), "--json"]
    if work == "pgd":
        cmd += ["--steps", "10"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"portable_vs_native: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", action="store_true", help="build build-portable and build-native first")
    ap.add_argument("--portable", default=os.path.join(ROOT, "build-portable", "advex"))
    ap.add_argument("--native", default=os.path.join(ROOT, "build-native", "advex"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="FGSM batch 256 only")
    ap.add_argument("--arch", action="append", help="only these architectures (repeatable)")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the portable runs (repeatable)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    if args.build:
        args.portable = build("build-portable", False)
        args.native = build("build-native", True)
    for exe in (args.portable, args.native):
        if not os.access(exe, os.X_OK):
            sys.exit(f"portable_vs_native: {exe} not found (build it, or pass --build)")
    penv = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        penv[k] = v
    nenv = dict(os.environ)
    cases = [c for c in CASES if (not args.quick or (c[1] == "fgsm" and c[2] == 256)) and
             (not args.arch or c[0] in args.arch)]
    runs = {c: {"portable": [], "native": [], "ratio": []} for c in cases}
    isa = {}
    t0 = time.time()
    for rnd in range(args.rounds):
        for i, c in enumerate(cases):
            arch, work, batch, _ = c
            order = [("portable", args.portable, penv), ("native", args.native, nenv)]
            if (rnd + i) % 2:
                order.reverse()
            got = {}
            for name, exe, env in order:
                r = bench(exe, arch, work, batch, args, env)
                got[name] = r["images_per_second"]
                isa[name] = r.get("isa", "?")
            for name in ("portable", "native"):
                runs[c][name].append(got[name])
            runs[c]["ratio"].append(got["portable"] / got["native"])
        print(f"round {rnd + 1}/{args.rounds} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    for c in cases:
        arch, work, batch, label = c
        d = runs[c]
        rows.append({"arch": arch, "workload": label, "batch": batch, "threads": args.threads,
                     "portable_ips": statistics.median(d["portable"]), "native_ips": statistics.median(d["native"]),
                     "ratio": statistics.median(d["ratio"]), "ratio_min": min(d["ratio"]),
                     "ratio_max": max(d["ratio"]), "runs": d})
    head = (f"portable ({isa.get('portable', '?')}{', ' + ' '.join(args.env) if args.env else ''}) vs native "
            f"({isa.get('native', '?')}), {args.rounds} alternating rounds x {args.reps} repetitions, "
            f"{args.threads} threads, {time.strftime('%Y-%m-%d %H:%M')} ({time.time() - t0:.0f} s)")
    md = [head, "",
          "| arch | workload | batch | portable img/s | native img/s | portable/native (median of rounds) | range |",
          "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        md.append(f"| {r['arch']} | {r['workload']} | {r['batch']} | {r['portable_ips']:.0f} | {r['native_ips']:.0f} "
                  f"| {r['ratio']:.3f} | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} |")
    all_ratios = [r["ratio"] for r in rows]
    md += ["", f"median over cases {statistics.median(all_ratios):.3f}, lowest {min(all_ratios):.3f}"]
    text = "\n".join(md) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"portable-{stamp}")
    with open(base + ".md", "w") as f:
        f.write(text)
    with open(base + ".json", "w") as f:
        json.dump({"header": head, "portable": args.portable, "native": args.native, "env": args.env,
                   "isa": isa, "rows": rows}, f, indent=1)
    print(f"wrote {base}.md, .json", file=sys.stderr)


if __name__ == "__main__":
    main()
