#!/usr/bin/env bash
# Configures and builds the release tree in build/ (the gemma4 binary, tests, micro-benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
