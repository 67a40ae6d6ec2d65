#!/bin/sh
# One command: install dependencies, build, and run the main job (advex demo): train the
# small model on Fashion-MNIST (cached after the first run) and print the FGSM table.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh"
exec "${BUILD_DIR:-$here/build}/advex" demo "$@"
