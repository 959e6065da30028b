#!/usr/bin/env bash
# Installs what is missing, builds tapeflow (Release, warnings as errors) in build/ and runs
# every test. The README's test command and the first stage of .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=${TAPEFLOW_JOBS:-2}

bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEFLOW_WERROR=ON \
  -DTAPEFLOW_BUILD_TESTS=ON
cmake --build build -j "$jobs"
cd build
ctest --output-on-failure -j "$jobs"
