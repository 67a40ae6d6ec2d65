#!/bin/bash
# libadvex.so exports exactly the public API: every function and variable declared in
# include/advex/*.h, and nothing else (internal functions are built hidden; see
# ADVEX_API_BEGIN in include/advex/status.h). AddressSanitizer's ODR indicators
# (__odr_asan.*, one per exported variable in the sanitizer build) are not API. Usage:
# symbols.sh ADVEX SRCDIR
. "$(dirname "$0")/harness.bash"
SRC=$2
LIB=$(dirname "$ADVEX")/libadvex.so
check "libadvex.so exists beside advex" test -f "$LIB"
# (an ASan build adds an __odr_asan.<name> indicator for every exported variable: not API)
nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^__(odr_)?asan/ {print $3}' | sort -u >"$T/exported"
$PY - "$SRC/include/advex" >"$T/declared" <<'PYEOF'
import re, sys, glob
names = set()
for h in glob.glob(sys.argv[1] + "/*.h"):
    text = re.sub(r"/\*.*?\*/", "", open(h).read(), flags=re.S)      # comments
    text = re.sub(r"^\s*#.*$", "", text, flags=re.M)                   # preprocessor lines
    text = re.sub(r"static inline[^;{]*\{(?:[^{}]|\{[^{}]*\})*\}", "", text)  # inline helpers
    text = re.sub(r"typedef[^;]*;", "", text)                          # typedefs (incl. fn-pointer types)
    text = re.sub(r"(struct|enum)\s+\w*\s*\{[^}]*\}", "", text)          # bodies
    for m in re.finditer(r"\b(advex_\w+)\s*\(", text): names.add(m.group(1))
    for m in re.finditer(r"\bextern\b[^;]*\b(advex_\w+)\s*(\[|;)", text): names.add(m.group(1))
print("\n".join(sorted(names)))
PYEOF
n_exp=$(wc -l <"$T/exported"); n_dec=$(wc -l <"$T/declared")
leaked=$(comm -23 "$T/exported" "$T/declared" | tr '\n' ' ')
missing=$(comm -13 "$T/exported" "$T/declared" | tr '\n' ' ')
check "$n_exp exported symbols, $n_dec declared in include/advex" test "$n_dec" -gt 50
check "nothing exported that the public headers do not declare: ${leaked:-none}" test -z "$leaked"
check "everything the public headers declare is exported: ${missing:-none}" test -z "$missing"
finish
