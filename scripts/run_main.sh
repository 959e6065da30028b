#!/usr/bin/env bash
# Builds tapeflow (Release) in build/ and runs the main job. Until training exists it is the
# samples/tensors walk-through on Fashion-MNIST. Arguments are passed to the sample.
# Run scripts/install_deps.sh first on a fresh machine (the README's quick start does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${TAPEFLOW_JOBS:-2}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEFLOW_BUILD_SAMPLES=ON
cmake --build build -j "$jobs" --target tensors
exec build/samples/tensors "$@"
