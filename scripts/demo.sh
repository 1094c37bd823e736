#!/usr/bin/env bash
# Sets up, builds and runs the main job on the default model that ships with the project.
# Until a trained demo model ships, that model is a small random-weight Gemma 4 that gemma4 writes
# itself: the generated tokens are noise. For a real model see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p models
[ -f models/demo-random.gguf ] || build/gemma4 init-random -o models/demo-random.gguf --seed 1
build/gemma4 info -m models/demo-random.gguf
build/gemma4 run -m models/demo-random.gguf --ids 2,105,3,4,5 -n 16 --seed 1
