#!/usr/bin/env bash
# Data races in the CUDA kernels, without a GPU: kernels/cuda/src on the CUDA emulator built
# with ThreadSanitizer (TAPEFLOW_TSAN), in build-tsan/. Every CUDA thread is a fiber of its
# own and the emulator tells ThreadSanitizer what CUDA orders (the host around a launch,
# __syncthreads(), shuffles, atomics), so two threads of a block touching the same memory
# between barriers, or two blocks touching it without atomics, is a reported race and a
# failed test, whether or not it changes a result. Runs every CUDA kernel test (grid-stride
# launches capped at 3 blocks, so every loop runs more than once) and the emulator's own.
# A stage of .ci/run; needs the CUDA toolkit's headers, not nvcc or a GPU. --all builds and
# runs the whole suite under ThreadSanitizer instead (the CPU thread pool, the per-thread
# tapes, the allocator's locking; about 8 more minutes of building on 2 cores).
#
#   bash scripts/race_check.sh [--all] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
all=0
if [[ ${1:-} == --all ]]; then
  all=1
  shift
fi
build=${1:-build-tsan}
jobs=${TAPEFLOW_JOBS:-2}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DTAPEFLOW_CUDA=EMU -DTAPEFLOW_TSAN=ON \
  -DTAPEFLOW_WERROR=OFF -DTAPEFLOW_BUILD_TESTS=ON -DTAPEFLOW_BUILD_SAMPLES=OFF \
  -DTAPEFLOW_BUILD_BENCHMARKS=OFF
# halt_on_error=0: every race of a test is reported, then the test fails (exit 66)
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1
if ((all)); then
  cmake --build "$build" -j "$jobs"
  cd "$build"
  # the reversed reruns of the CUDA tests add nothing a race report depends on
  ctest --output-on-failure -j "$jobs" -E '_reversed$'
else
  cmake --build "$build" -j "$jobs" --target test_kernels_cuda test_cuda_emu
  cd "$build"
  # test_kernels_cuda is one process, and under TSan by far the longest run: its reductions
  # (half of its time) and the rest run as two processes side by side, so that both cores
  # work; every test case still runs once. (Built with TSan, it runs the integer value sweeps
  # and the big inputs of all but one op per kernel only in the other builds: see kSanitizedBuild
  # in the test.) Then the emulator's own tests.
  log_a=$(mktemp) log_b=$(mktemp)
  ./kernels/cuda/test_kernels_cuda '[reduce]' >"$log_a" 2>&1 &
  pid_a=$!
  ./kernels/cuda/test_kernels_cuda '~[reduce]' >"$log_b" 2>&1 &
  pid_b=$!
  status=0
  wait "$pid_a" || status=1
  wait "$pid_b" || status=1
  for log in "$log_a" "$log_b"; do
    if ((status)); then cat "$log"; else tail -n 3 "$log"; fi
  done
  rm -f "$log_a" "$log_b"
  ((status == 0)) || { echo "race_check.sh: test_kernels_cuda failed under ThreadSanitizer" >&2 && exit 1; }
  ctest --output-on-failure -R '^test_cuda_emu$'
fi
