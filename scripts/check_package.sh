#!/usr/bin/env bash
# Installs tapeflow into a temporary prefix and builds + runs test/package, an out-of-tree
# consumer that only does find_package(tapeflow). Usage: scripts/check_package.sh [build-dir]
# The build dir (default build/) is reused when already configured (as scripts/test.sh
# leaves it), else configured as a library-only Release build. The consumer is built with the
# default compiler and, where clang++ is installed, with clang++ too (no C++ standard set: the
# package must bring C++17). It fails if the program loads any file from the build or source
# tree (an installed package must use only its prefix).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

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

echo "check_package.sh: installing $build_dir into $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"
  exit 1
}

compilers=(default)
command -v clang++ >/dev/null && compilers+=(clang++)
for cxx in "${compilers[@]}"; do
  consumer=$work/consumer-$cxx
  extra=()
  [[ $cxx != default ]] && extra=(-DCMAKE_CXX_COMPILER="$cxx")
  # Only the install prefix may satisfy find_package: no package registry.
  cmake -S test/package -B "$consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "${extra[@]}" >"$work/configure.log" || {
    cat "$work/configure.log"
    exit 1
  }
  cmake --build "$consumer"
  # the loader's record of every file the program opens (dlopen included)
  LD_DEBUG=files LD_DEBUG_OUTPUT="$work/ld-$cxx" "$consumer/consumer"
  if grep -h "file=$repo/" "$work/ld-$cxx".* 2>/dev/null | sed 's/^ *[0-9]*: *//' | sort -u | grep .; then
    echo "check_package.sh: the consumer ($cxx compiler) loaded the files above from $repo, not from the prefix" >&2
    exit 1
  fi
  echo "check_package.sh: OK ($cxx compiler)"
done
