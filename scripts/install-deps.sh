#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need. The one place that lists them.
# Safe to re-run: does nothing when everything is already installed.
#   --aarch64  also the cross compiler and qemu-user for scripts/test-aarch64.sh (optional: only
#              the aarch64 kernel tests need them)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config   # toolchain
  libgtest-dev libgmock-dev libbenchmark-dev      # tests and micro-benchmarks
  libcli11-dev nlohmann-json3-dev                 # command line, JSON
  libedit-dev                                     # line editing and history in `gemma4 chat`
  libavformat-dev libavcodec-dev libavutil-dev    # media decoding (FFmpeg)
  libswscale-dev libswresample-dev
  libcpp-httplib-dev                              # the HTTP server (gemma4 serve)
)
# Node.js and npm run the server tests with the official openai client; any install will do (a
# newer one from elsewhere is kept), else Debian's.
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)
if [ "${1:-}" = "--aarch64" ]; then
  PACKAGES=(g++-aarch64-linux-gnu qemu-user libgtest-dev cmake ninja-build)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
