#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite. This is exactly what CI runs (.ci/run).
#   G4_FIXTURES_DIR  where the reference fixtures are (default ../shared/fixtures); without them
#                    the fixture tests skip visibly, except under CI=true where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
# The official openai npm client for the server's integration tests (tests/server/package-lock.json).
(cd tests/server && npm ci --no-audit --no-fund --loglevel=error)
ctest --test-dir build --output-on-failure -j2

# The GGUF and safetensors readers' hostile-input tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DG4_SANITIZE=ON \
  -DG4_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan --target gemma4_tests
build-asan/tests/gemma4_tests --gtest_filter='Gguf*:Fuzz*:Safetensors*'

# The NEON kernels: cross-built for aarch64 and run under qemu-user.
scripts/test-aarch64.sh
echo "all tests passed"
