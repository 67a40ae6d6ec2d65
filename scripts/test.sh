#!/bin/sh
# One command: install dependencies, build, and run every test (ctest). Exits non-zero on
# any failure. CI (.ci/run) calls exactly this.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh"
cd "${BUILD_DIR:-$here/build}"
ctest --output-on-failure -j"$(nproc)" "$@"
