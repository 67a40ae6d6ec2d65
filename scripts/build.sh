#!/bin/sh
# Configure and build advex (Release, warnings as errors) into ${BUILD_DIR:-build}.
# Portable unless asked otherwise: -DADVEX_NATIVE=OFF comes first, so a build directory
# configured when -march=native was the default (its cache says ON) is portable again;
# pass -DADVEX_NATIVE=ON to build for this CPU only.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-"$here/build"}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DADVEX_NATIVE=OFF "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
