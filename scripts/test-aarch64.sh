#!/usr/bin/env bash
# Cross-builds the kernel tests (G4_KERNELS_ONLY: src/core + src/ops, no FFmpeg/JSON/CLI11) for
# aarch64 with Debian's g++-aarch64-linux-gnu and runs them under qemu-user: once on qemu's default
# CPU ("max": NEON and the dot-product extension, so both NEON tables are checked against the
# scalar one), once on a Cortex-A53 (Armv8.0: no dot product, so the run-time dispatch must not
# pick it). Takes a minute or two on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --aarch64
cmake -S . -B build-aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release -DG4_KERNELS_ONLY=ON \
  -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake >/dev/null
cmake --build build-aarch64 --target gemma4_kernel_tests
# The dot-product unit is compiled with -march=armv8.2-a+dotprod: no shared symbols (kernels.h).
cmake "-DNM=$(command -v aarch64-linux-gnu-nm)" \
  "-DOBJECTS=build-aarch64/CMakeFiles/gemma4isa.dir/src/ops/arm/kernels_neon_dotprod.cpp.o" \
  -P cmake/check_isa_symbols.cmake
tests=build-aarch64/tests/kernels/gemma4_kernel_tests
qemu-aarch64 -L /usr/aarch64-linux-gnu "$tests" --gtest_brief=1
qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu "$tests" --gtest_brief=1 \
  --gtest_filter='KernelDispatch*:KernelFloat*:KernelQuantTile*:Ops*'
echo "aarch64 kernel tests passed"
