#!/bin/bash
# Reports and images: advex eval --report DIR (files, numbers equal to results.json, PNGs that
# decode with the expected sizes, no network references, renders in headless Chromium with every
# image loaded and no console messages, a screenshot), attack --input PNG, advex png, and the
# progress display (bar on a terminal, plain lines otherwise, nothing with --quiet).
# Usage: report.sh ADVEX SRCDIR. ADVEX_REPORT_KEEP=DIR keeps the report and screenshot there.
. "$(dirname "$0")/harness.bash"

"$ADVEX" train --arch small --data fashion-mnist:train --limit 600 --epochs 1 --out "$T/m.onnx" --quiet >/dev/null 2>&1 \
    || { echo "FAIL: could not train the fixture model"; echo "0 passed, 1 failed"; exit 1; }

# ---- eval --report ----------------------------------------------------------------------
R="$T/rep"
"$ADVEX" eval --model "$T/m.onnx" --data fashion-mnist:test --limit 120 --attack fgsm,pgd --steps 3 \
    --eps 0,0.05,0.1 --report "$R" --quiet >"$T/eval.out" 2>"$T/eval.err"
check "eval --report exits 0 ($(cat "$T/eval.err"))" test $? -eq 0
for f in report.html results.json results.csv curve.svg curve.png grid_fgsm.png grid_pgd.png; do
    check "report file $f" test -s "$R/$f"
done
check "no temporary files in the report directory" bash -c "! ls '$R' | grep -q tmp"
check "report.html references nothing on the network" bash -c "! grep -Eiq '(src|href)=\"(https?:)?//|<link|@import' '$R/report.html'"

# numbers: HTML == results.json == CSV; PNG sizes; SVG well-formed
$PY - "$R" <<'PYEOF' >"$T/py.out" 2>&1
import sys, json, re, zlib, struct, csv
import xml.dom.minidom
R = sys.argv[1]
J = json.load(open(f"{R}/results.json"))
H = open(f"{R}/report.html").read()
errs = []
def png(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", path
    o, idat, w = 8, b"", None
    while o < len(b):
        n, t = struct.unpack(">I4s", b[o:o+8]); d = b[o+8:o+8+n]
        assert zlib.crc32(t + d) & 0xffffffff == struct.unpack(">I", b[o+8+n:o+12+n])[0], f"{path}: CRC"
        if t == b"IHDR": w, h, depth, ct = struct.unpack(">IIBB", d[:10])
        if t == b"IDAT": idat += d
        o += 12 + n
    ch = {0: 1, 2: 3, 6: 4, 4: 2}[ct]
    assert len(zlib.decompress(idat)) == h * (1 + w * ch * depth // 8), f"{path}: pixel data size"
    return w, h
if J["n"] != 120: errs.append(f"n {J['n']}")
m = re.search(r'id="clean" data-v="([0-9.]+)">([0-9.]+)%', H)
if not m or float(m.group(1)) != J["clean_accuracy"] or m.group(2) != f"{100*J['clean_accuracy']:.2f}":
    errs.append("clean accuracy differs")
if len(J["results"]) != 6: errs.append("want 6 results")
for r in J["results"]:
    row = re.search(r'<tr data-attack="%s" data-eps="%s">(.*?)</tr>' % (r["attack"], re.escape(f"{r['eps']:.9g}")), H)
    if not row: errs.append(f"no row for {r['attack']} {r['eps']}"); continue
    cells = dict(re.findall(r'data-key="(\w+)" data-v="([0-9.]+)"', row.group(1)))
    for k in ("robust_accuracy", "success_rate", "robust_correct"):
        if float(cells.get(k, "nan")) != r[k]: errs.append(f"{r['attack']} {r['eps']} {k}: html {cells.get(k)} json {r[k]}")
    if f"{100*r['robust_accuracy']:.2f}%" not in row.group(1): errs.append("displayed robust accuracy differs")
# per-class: the HTML table, in row order, equals JSON per_class
pc = re.search(r'<table id="per-class">(.*?)</table>', H, re.S).group(1)
rows = re.findall(r"<tr><td class=\"l\">.*?</tr>", pc)
if len(rows) != len(J["classes"]) or J["classes"][0] != "T-shirt/top": errs.append("per-class rows / class names")
for q, row in enumerate(rows):
    vals = [float(v) for v in re.findall(r'data-v="([0-9.]+)"', row)]
    want = [p["robust_accuracy"][q] for p in J["per_class"]]
    if vals != want: errs.append(f"per-class row {q}: {vals} vs {want}")
for p, r in zip(J["per_class"], J["results"]):
    if sum(p["robust"]) != r["robust_correct"]: errs.append("per-class robust does not sum to robust_correct")
# confusion (largest eps): diagonal = robust_correct, rows sum to class totals, HTML cells equal JSON
for c in J["confusion"]:
    r = [x for x in J["results"] if x["attack"] == c["attack"] and x["eps"] == c["eps"]][0]
    if sum(c["matrix"][i][i] for i in range(10)) != r["robust_correct"]: errs.append("confusion diagonal")
    if [sum(row) for row in c["matrix"]] != J["class_total"]: errs.append("confusion rows")
    t = re.search(r'<table class="cm" data-attack="%s">(.*?)</table>' % c["attack"], H, re.S).group(1)
    cells = [int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", t)]
    if cells != [v for row in c["matrix"] for v in row]: errs.append("confusion HTML differs")
# CSV
rows = list(csv.DictReader(open(f"{R}/results.csv")))
for row, r in zip(rows, J["results"]):
    if row["attack"] != r["attack"] or float(row["robust_accuracy"]) != r["robust_accuracy"]: errs.append("CSV differs")
# images
if png(f"{R}/curve.png") != (720, 440): errs.append("curve.png size")
gw, gh = png(f"{R}/grid_pgd.png")
if (gw, gh) != (428, 942): errs.append(f"grid size {gw}x{gh}")
m = re.search(r'src="grid_pgd.png"[^>]*width="(\d+)" height="(\d+)"', H)
if not m or (int(m.group(1)), int(m.group(2))) != (gw * 3 // 2, gh * 3 // 2): errs.append("grid img size attributes")
svg = xml.dom.minidom.parse(f"{R}/curve.svg")
if len(svg.getElementsByTagName("polyline")) != 2 or len(svg.getElementsByTagName("circle")) != 6: errs.append("svg content")
print("\n".join(errs) if errs else "ok")
PYEOF
check "report numbers and images: $(cat "$T/py.out")" grep -qx ok "$T/py.out"

# headless Chromium: every image loaded, no console messages, a screenshot
if command -v chromium >/dev/null; then
    CH=(chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
        --disable-component-update --disable-sync --enable-logging=stderr --v=0 --virtual-time-budget=5000)
    timeout 120 "${CH[@]}" --user-data-dir="$(mktemp -d -p "$T")" --dump-dom "file://$R/report.html" >"$T/dom.html" 2>"$T/chrome.err"
    check "chromium: every image loaded" grep -q 'data-images-ok="yes" data-images="3"' "$T/dom.html"
    check "chromium: no console messages ($(grep CONSOLE "$T/chrome.err" | head -3))" bash -c "! grep -q ':CONSOLE' '$T/chrome.err'"
    timeout 120 "${CH[@]}" --user-data-dir="$(mktemp -d -p "$T")" --screenshot="$T/shot.png" --window-size=1200,2000 \
        "file://$R/report.html" >/dev/null 2>&1
    check "chromium: screenshot" $PY -c "
import struct, sys; b = open('$T/shot.png', 'rb').read()
sys.exit(0 if b[:8] == b'\x89PNG\r\n\x1a\n' and struct.unpack('>II', b[16:24]) == (1200, 2000) and len(b) > 20000 else 1)"
else
    echo "SKIP: chromium not installed (apt-get install chromium); the rendering checks did not run"
fi
if [ -n "${ADVEX_REPORT_KEEP:-}" ]; then mkdir -p "$ADVEX_REPORT_KEEP" && cp -r "$R" "$T/shot.png" "$ADVEX_REPORT_KEEP"/ 2>/dev/null; fi

# ---- images in and out ----------------------------------------------------------------------
$PY - "$T" <<'PYEOF'
import sys, zlib, struct, gzip
t = sys.argv[1]
def png(path, w, h, ct, rows):
    raw = b"".join(b"\x00" + r for r in rows)
    ck = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + ck(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ct, 0, 0, 0))
                           + ck(b"IDAT", zlib.compress(raw)) + ck(b"IEND", b""))
img = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:16 + 784]
rows = [img[28 * i:28 * i + 28] for i in range(28)]
png(f"{t}/grey.png", 28, 28, 0, rows)
png(f"{t}/rgb.png", 28, 28, 2, [bytes(v for p in r for v in (p, p, p)) for r in rows])
png(f"{t}/big.png", 56, 40, 0, [bytes(56)] * 40)
PYEOF
"$ADVEX" attack --model "$T/m.onnx" --input "$T/grey.png" --attack pgd --eps 0.1 --class-names fashion-mnist \
    --out "$T/adv.png" --quiet >"$T/a.out" 2>"$T/a.err"
check "attack --input exits 0 ($(cat "$T/a.err"))" test $? -eq 0
check "attack --input prints before and after with class names" \
    grep -Eq '^before: +[A-Za-z/ -]+ \(class [0-9]\), confidence [0-9.]+%' "$T/a.out"
GREY_CLASS=$(sed -n 's/^before: .*(class \([0-9]\)).*/\1/p' "$T/a.out")
check "attack --input prints after" grep -Eq '^after: +.*\(class [0-9]\), confidence [0-9.]+%' "$T/a.out"
check "attack --input writes a 28x28 grey PNG" $PY -c "
import struct, sys; b = open('$T/adv.png', 'rb').read(); sys.exit(0 if struct.unpack('>IIBB', b[16:26]) == (28, 28, 8, 0) else 1)"
"$ADVEX" attack --model "$T/m.onnx" --input "$T/rgb.png" --eps 0.05 --out "$T/adv_rgb.npy" --quiet >"$T/a.out" 2>&1
check "attack --input RGB converted to grey: same prediction as grey ($(cat "$T/a.out" | head -3))" \
    grep -Eq "^before: +class ${GREY_CLASS:-x}," "$T/a.out"
"$ADVEX" attack --model "$T/m.onnx" --input "$T/big.png" --resize 28 --eps 0.05 --out "$T/x.png" >"$T/a.out" 2>"$T/a.err"
check "size mismatch after --resize exits 1" test $? -eq 1
check "size mismatch names the file and both sizes ($(cat "$T/a.err"))" \
    grep -q "big.png: image is 39x28 (width x height) after --resize/--crop but the model expects 28x28" "$T/a.err"
check "size mismatch writes nothing" test ! -e "$T/x.png"
"$ADVEX" attack --model "$T/m.onnx" --input "$T/big.png" --resize 28 --crop 28 --eps 0.05 --out "$T/x.png" --quiet >/dev/null
check "--resize --crop" test -s "$T/x.png"
rm -f "$T/x.png"
"$ADVEX" attack --model "$T/m.onnx" --input "$T/big.png" --eps 0.05 --out "$T/x.png" >/dev/null 2>"$T/a.err"
check "fitted to the model's input by default ($(cat "$T/a.err"))" \
    grep -q "big.png: resized (shorter side to 28) and centre-cropped to 28x28 (width x height), the model's input size" "$T/a.err"
check "fitted: written" test -s "$T/x.png"
"$ADVEX" attack --model "$T/m.onnx" --data fashion-mnist:test --limit 10 --eps 0.05 --out "$T/b.npy" --quiet >/dev/null
"$ADVEX" png --npy "$T/b.npy" --out "$T/grid.png" --cols 5 --scale 2 >/dev/null
check "png grid size" $PY -c "
import struct, sys; b = open('$T/grid.png', 'rb').read(); sys.exit(0 if struct.unpack('>II', b[16:24]) == (5*58+2, 2*58+2) else 1)"
"$ADVEX" png --npy "$T/missing.npy" --out "$T/g2.png" >/dev/null 2>"$T/p.err"
check "png: missing input names it" grep -q "missing.npy" "$T/p.err"

# ---- progress: plain lines off a terminal, nothing with --quiet, a bar on a terminal ----------
EV=("$ADVEX" eval --model "$T/m.onnx" --data fashion-mnist:test --limit 64 --batch 8 --attack fgsm --eps 0.1 --no-checks)
"${EV[@]}" >/dev/null 2>"$T/plain.err"
check "progress off a terminal: plain lines" grep -Eq '^fgsm eps=0.1 64/64 \([0-9]+/s' "$T/plain.err"
check "progress off a terminal: no carriage returns" bash -c "! grep -q $'\r' '$T/plain.err'"
"${EV[@]}" --quiet >/dev/null 2>"$T/quiet.err"
check "progress with --quiet: nothing" test ! -s "$T/quiet.err"
if command -v script >/dev/null; then
    script -qec "$(printf '%q ' "${EV[@]}") >/dev/null" /dev/null >"$T/tty.out" 2>&1 </dev/null
    check "progress on a terminal: a bar with rate and ETA" grep -Eq $'\r''fgsm eps=0.1 \[#+\] 64/64 [0-9]+/s ETA' "$T/tty.out"
fi

# ---- the same report from C through the library alone (examples/report.c) ---------------
EX="$(dirname "$ADVEX")/example_report"
if [ -x "$EX" ]; then
    "$EX" "$T/m.onnx" "$T/exrep" fashion-mnist:test 120 >"$T/ex.out" 2>"$T/ex.err"
    check "example_report exits 0 ($(tail -1 "$T/ex.err"))" test $? -eq 0
    "$ADVEX" eval --model "$T/m.onnx" --data fashion-mnist:test --limit 120 --attack fgsm,pgd --eps 0.05,0.1 \
        --report "$T/clirep" --quiet >/dev/null 2>&1
    check "eval --report for the example's sweep exits 0" test $? -eq 0
    for f in report.html results.json results.csv curve.svg grid_fgsm.png grid_pgd.png; do
        check "example report file $f" test -s "$T/exrep/$f"
    done
    check "example's results.json equals the CLI's (timings aside)" $PY - "$T/exrep/results.json" "$T/clirep/results.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for r in a["results"] + b["results"]:
    r.pop("seconds", None)
sys.exit(0 if a == b and len(a["results"]) == 4 else 1)
PYEOF
else
    bad "example_report not built beside $ADVEX"
fi

finish
