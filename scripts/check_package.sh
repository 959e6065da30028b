#!/usr/bin/env bash
# Installs tapeflow into a temporary prefix and builds + runs test/package, an out-of-tree
# consumer that only does find_package(tapeflow). Usage: scripts/check_package.sh [build-dir]
# The build dir (default build/) is reused when already configured (as scripts/test.sh
# leaves it), else configured as a library-only Release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${1:-build}
jobs=${TAPEFLOW_JOBS:-2}

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTAPEFLOW_BUILD_TESTS=OFF -DTAPEFLOW_BUILD_SAMPLES=OFF -DTAPEFLOW_BUILD_BENCHMARKS=OFF
fi
cmake --build "$build_dir" -j "$jobs"

work=$(mktemp -d "${TMPDIR:-/tmp}/tapeflow-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "check_package.sh: installing into $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"
  exit 1
}

# Only the install prefix may satisfy find_package: no package registry.
cmake -S test/package -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
cmake --build "$work/consumer"
"$work/consumer/consumer"
echo "check_package.sh: OK"
