#!/usr/bin/env bash
# Builds tapeflow (Release) in build/ and runs the main job: samples/mnist_keras trains a
# Dense(512, relu) + Dense(10, softmax) model on Fashion-MNIST for 5 epochs and prints the
# test accuracy. Arguments are passed to the sample (the first is the number of epochs).
# Run scripts/install_deps.sh first on a fresh machine (the README's quick start does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${TAPEFLOW_JOBS:-2}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEFLOW_BUILD_SAMPLES=ON
cmake --build build -j "$jobs" --target mnist_keras
exec build/samples/mnist_keras "$@"
