#!/usr/bin/env bash
# Run THERE: on a machine with an NVIDIA GPU, in the repository root, with .gpu/debs carried
# over (made here by scripts/gpu_carry.sh). Within a time budget (default 540 s) it
#   1. unpacks every .deb of .gpu/debs into .gpu/prefix (dpkg -x, or ar + tar; never into /),
#   2. configures (Release, CUDA on, sm_80 + sm_90) against that prefix and builds everything
#      in build-gpu/ with all cores,
#   3. records nvidia-smi and tapeflow's device status,
#   4. runs the whole CTest suite,
#   5. runs bench_cuda (copy bandwidth, element-wise ops, matmul against cuBLAS, per-op cost),
#   6. runs the samples mnist_keras and convnet on cuda:0,
#   7. runs the same two jobs in PyTorch on the same GPU (benchmarks/peers/torch_peer.py), and
#      its argsort / topk on bench_cuda's sort shapes,
# and writes the logs and a Markdown report, gpu-report.md, to $OUT (else benchmarks/results/gpu/).
# A stage that fails or runs out of time is reported and the next ones still run where they can.
# The build folder is kept: on the same (warm) machine a second run rebuilds only what changed,
# so a run whose build used up the budget can simply be repeated.
#
#   scripts/gpu_run.sh [--budget S] [--quick] [--no-tests] [--no-peers] [--cuda ON|OFF|MOCK|EMU]
#                      [--build-dir DIR] [--prefix DIR] [OUTDIR]
#
#   --budget S   seconds for everything (default 540); each stage also has its own cap
#   --quick      one short epoch per job, small benchmarks (a smoke test of the pipeline)
#   --cuda OFF   the same pipeline on a CPU-only build (where CUDA does not build)
#   --cuda EMU   on the CUDA emulator (TAPEFLOW_CUDA=EMU): a dry run of every stage on a
#                machine without a GPU, the CUDA kernels, bench_cuda's checks (--tiny) and the
#                samples on cuda:0 (1 epoch; convnet on 128 examples) included; its times say
#                nothing about a GPU. Give it --budget: a cold build takes minutes on few cores
#   --cuda MOCK  against TAPEFLOW_CUDA=MOCK's host-memory devices (bench_cuda is not built)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
repo=$(pwd)

budget=540
quick=0
tests=1
peers=1
cuda_mode=ON
build="build-gpu"
prefix=.gpu/prefix
out=${OUT:-}
while (($#)); do
  case $1 in
    --budget) budget=$2 && shift ;;
    --quick) quick=1 ;;
    --no-tests) tests=0 ;;
    --no-peers) peers=0 ;;
    --cuda) cuda_mode=$2 && shift ;;
    --build-dir) build=$2 && shift ;;
    --prefix) prefix=$2 && shift ;;
    -h | --help)
      awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
      exit 0
      ;;
    -*)
      echo "gpu_run.sh: unknown option $1 (see --help)" >&2
      exit 2
      ;;
    *) out=$1 ;;
  esac
  shift
done
abs() { case $1 in /*) echo "$1" ;; *) echo "$repo/$1" ;; esac }
out=$(abs "${out:-benchmarks/results/gpu}")
build=$(abs "$build")
prefix=$(abs "$prefix")
mkdir -p "$out"

# what an earlier run left there would be taken for this run's results
rm -f "$out"/{unpack,configure,build}.log "$out"/{nvidia-smi,bench_cuda,mnist_keras_cuda,convnet_cuda}.txt \
  "$out"/ctest.log "$out"/torch_{mlp,convnet,sort}_cuda.txt "$out"/{bench_cuda,torch_cuda}.tsv "$out"/gpu-report.md

start=$SECONDS
reserve=15 # seconds kept for the report
jobs=$(nproc)
orig_ld=${LD_LIBRARY_PATH-}
rows=() # the stage table: name|result|seconds|log
failures=0

log() { echo "[gpu_run $((SECONDS - start))s] $*"; }
record() { rows+=("$1|$2|$3|$4"); }
skip() {
  record "$1" "skipped: $2" 0 ""
  log "$1: skipped ($2)"
}

# stage NAME CAP LOG CMD...: CMD under `timeout` (CAP seconds, or what is left of the budget
# less the reserve), its output in $out/LOG; records the result and returns CMD's status.
stage() {
  local name=$1 cap=$2 logf=$3
  shift 3
  local t=$((budget - (SECONDS - start) - reserve))
  ((t > cap)) && t=$cap
  if ((t < 10)); then
    skip "$name" "out of time"
    return 125
  fi
  log "$name (up to $t s) -> $logf"
  local s=$SECONDS rc=0 result=ok
  timeout -k 10 "$t" "$@" >"$out/$logf" 2>&1 || rc=$?
  case $rc in
    0) ;;
    124 | 137) result="timed out after $t s" ;;
    *) result="failed (exit $rc)" ;;
  esac
  record "$name" "$result" $((SECONDS - s)) "$logf"
  if ((rc != 0)); then
    failures=$((failures + 1))
    log "$name: $result; the end of $logf:"
    tail -n 8 "$out/$logf" | sed 's/^/    /'
  fi
  return "$rc"
}

# stage_bin NAME CAP LOG BINARY ARGS...: stage, or "skipped: not built" when BINARY is missing
stage_bin() {
  if [[ ! -x $4 ]]; then
    skip "$1" "not built ($(basename "$4"))"
    return 125
  fi
  stage "$@"
}

# ---------------------------------------------------------------- 1. the packages
# Every .deb of .gpu/debs into the prefix, again only when the set of .debs changed.
unpack() {
  local debs=("$repo"/.gpu/debs/*.deb) deb member z link target
  if [[ ! -e ${debs[0]} ]]; then
    echo "no .gpu/debs/*.deb (run scripts/gpu_carry.sh where apt works, and carry .gpu/debs): the system's packages are used"
    return 0
  fi
  # the .debs are Debian 12's amd64 builds: they need x86_64 and glibc >= 2.34 (libopenblas0, libgfortran5)
  local glibc
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
  [[ $(uname -m) == x86_64 ]] || echo "warning: this machine is $(uname -m); the carried packages are for x86_64"
  if [[ -n $glibc && $(printf '%s\n' 2.34 "$glibc" | sort -V | head -n 1) != 2.34 ]]; then
    echo "warning: glibc $glibc here; the carried OpenBLAS and libgfortran need 2.34 or newer"
  fi
  local want
  want=$(stat -c '%s %n' "${debs[@]}")
  if [[ -f $prefix/.unpacked && $(cat "$prefix/.unpacked") == "$want" ]]; then
    echo "$prefix is up to date (${#debs[@]} packages)"
    return 0
  fi
  case $prefix in / | "$repo" | "$HOME" | /usr | /usr/local)
    echo "refusing to unpack into $prefix (give --prefix a folder of its own)"
    return 1
    ;;
  esac
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for deb in "${debs[@]}"; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$prefix" || return 1
    else
      member=$(ar t "$deb" | grep '^data\.tar') || return 1
      case $member in *.xz) z=-J ;; *.gz) z=-z ;; *.zst) z=--zstd ;; *.bz2) z=-j ;; *) z= ;; esac
      ar p "$deb" "$member" | tar -x $z -C "$prefix" -f - || return 1
    fi
    echo "unpacked $(basename "$deb")"
  done
  # absolute links (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) are made to point inside
  while IFS= read -r link; do
    target=$(readlink "$link")
    [[ -e $prefix$target ]] && ln -sfn "$prefix$target" "$link"
  done < <(find "$prefix" -type l -lname '/*')
  echo "$want" >"$prefix/.unpacked"
}
log "unpack .gpu/debs into $prefix"
s=$SECONDS
if unpack >"$out/unpack.log" 2>&1; then
  record unpack ok $((SECONDS - s)) unpack.log
  grep '^warning' "$out/unpack.log"
else
  record unpack "failed" $((SECONDS - s)) unpack.log
  failures=$((failures + 1))
  tail -n 5 "$out/unpack.log"
fi

cmake_deps=()
if [[ -f $prefix/.unpacked ]]; then
  ma=$(basename "$(find "$prefix/usr/lib" -maxdepth 1 -name '*-linux-gnu*' -type d | head -n 1)")
  lib=$prefix/usr/lib/$ma
  # OpenBLAS is found by FindBLAS's find_library(BLAS_openblas_LIBRARY) and cblas.h by our
  # find_path: name both, so that no system copy is picked instead
  cmake_deps=(-DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_LIBRARY_PATH="$lib/openblas-pthread"
    -DBLAS_openblas_LIBRARY="$lib/openblas-pthread/libopenblas.so"
    -DTAPEFLOW_CBLAS_INCLUDE_DIR="$prefix/usr/include/$ma/openblas-pthread")
  # the runtime: OpenBLAS, libgfortran, libquadmath, fmt, zlib (the linker reads it too)
  export LD_LIBRARY_PATH="$lib/openblas-pthread:$lib:$prefix/lib/$ma${orig_ld:+:$orig_ld}"
  [[ -d $prefix/usr/share/datasets/fashion-mnist ]] &&
    export TAPEFLOW_FASHION_MNIST_DIR=$prefix/usr/share/datasets/fashion-mnist
fi

# ---------------------------------------------------------------- 2. configure and build
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
generator=(-G Ninja)
keep_going=(-- -k 0)
if ! command -v ninja >/dev/null; then
  generator=(-G "Unix Makefiles")
  keep_going=(-- -k)
fi
cuda_flags=(-DTAPEFLOW_CUDA="$cuda_mode")
if [[ $cuda_mode == ON || $cuda_mode == AUTO ]]; then
  cuda_flags+=(-DCMAKE_CUDA_ARCHITECTURES="80-real;90")
  [[ -x $nvcc ]] && cuda_flags+=(-DCMAKE_CUDA_COMPILER="$nvcc")
fi
stage configure 120 configure.log cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  "${cuda_flags[@]}" "${cmake_deps[@]}"
configured=$?
if ((configured == 0)); then
  # keep going past a target that fails, so that every other stage finds what did build
  stage build 100000 build.log cmake --build "$build" -j "$jobs" "${keep_going[@]}"
else
  skip build "configure failed"
fi

# ---------------------------------------------------------------- 3. the device
if command -v nvidia-smi >/dev/null; then
  stage nvidia-smi 30 nvidia-smi.txt env LD_LIBRARY_PATH="$orig_ld" nvidia-smi
  head -n 20 "$out/nvidia-smi.txt"
else
  skip nvidia-smi "no nvidia-smi on PATH"
fi
device_status="unknown (bench_cuda not built)"
if [[ -x $build/benchmarks/bench_cuda ]]; then
  device_status=$("$build/benchmarks/bench_cuda" --status 2>&1 | head -n 1)
fi
log "device: $device_status"

# ---------------------------------------------------------------- 4. the tests
if ((tests == 0)); then
  skip tests "--no-tests"
elif [[ ! -f $build/CTestTestfile.cmake ]]; then
  skip tests "not configured"
else
  # shellcheck disable=SC2016 # $0 and $1 are the inner shell's
  stage tests 240 ctest.log bash -c 'cd "$0" && exec ctest --output-on-failure -j "$1" --timeout 180' \
    "$build" "$(((jobs + 1) / 2))"
fi

# ---------------------------------------------------------------- 5.-6. benchmark and samples
mlp_epochs=5
conv_epochs=3
conv_examples=()
if ((quick)); then
  mlp_epochs=1
  conv_epochs=1
  conv_examples=(2000)
fi
bench_flags=(--tsv "$out/bench_cuda.tsv")
((quick)) && bench_flags+=(--quick)
if [[ $cuda_mode == EMU ]]; then # the emulator runs a GPU's work a thousand times slower
  mlp_epochs=1
  conv_epochs=1
  conv_examples=(128) # and the 10,000 test images: about two minutes on two cores
  bench_flags=(--tsv "$out/bench_cuda.tsv" --tiny)
fi
stage_bin bench_cuda 150 bench_cuda.txt "$build/benchmarks/bench_cuda" "${bench_flags[@]}"
stage_bin mnist_keras 120 mnist_keras_cuda.txt "$build/samples/mnist_keras" "$mlp_epochs" --device cuda
stage_bin convnet 180 convnet_cuda.txt "$build/samples/convnet" "$conv_epochs" "${conv_examples[@]}" --device cuda

# ---------------------------------------------------------------- 7. PyTorch on the same GPU
torch_python() {
  local py
  for py in python3 python /usr/bin/python3; do
    if command -v "$py" >/dev/null && LD_LIBRARY_PATH=$orig_ld "$py" -c "import torch, numpy" 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}
if ((peers == 0)); then
  skip "torch mlp" "--no-peers"
elif ! py=$(torch_python); then
  skip "torch mlp" "no Python with torch and numpy"
else
  peer_seconds=60
  ((quick)) && peer_seconds=5
  # PyTorch with the machine's own libraries, not the carried ones
  for job in mlp convnet; do
    epochs=$mlp_epochs
    [[ $job == convnet ]] && epochs=$conv_epochs
    stage "torch $job" 150 "torch_${job}_cuda.txt" env LD_LIBRARY_PATH="$orig_ld" "$py" \
      benchmarks/peers/torch_peer.py --device cuda --only "$job" --epochs "$epochs" --seconds "$peer_seconds" \
      --tsv "$out/torch_cuda.tsv"
  done
  sort_flags=()
  ((quick)) && sort_flags=(--quick)
  stage "torch sort" 60 "torch_sort_cuda.txt" env LD_LIBRARY_PATH="$orig_ld" "$py" \
    benchmarks/peers/torch_peer.py --device cuda --only sort "${sort_flags[@]}" --tsv "$out/torch_cuda.tsv"
fi

# ---------------------------------------------------------------- the report
# first_match / last_match FILE SED-EXPRESSION: the first / last line sed -n prints, or "n/a"
first_match() {
  local v=""
  [[ -f $1 ]] && v=$(sed -n "$2" "$1" | head -n 1)
  echo "${v:-n/a}"
}
last_match() {
  local v=""
  [[ -f $1 ]] && v=$(sed -n "$2" "$1" | tail -n 1)
  echo "${v:-n/a}"
}
tsv_value() {
  local v=""
  [[ -f $1 ]] && v=$(awk -F'\t' -v k="$2" '$1 == k { printf "%.3g", $2 }' "$1" | head -n 1)
  echo "${v:-n/a}"
}
os_name() {
  # shellcheck source=/dev/null
  (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }

# one row of the training table: JOB SAMPLE_LOG TORCH_KEY
training_row() {
  local job=$1 sample=$out/$2 key=$3
  local tf_s tf_acc tf_mem tf_waits torch_s torch_mem torch_acc
  tf_s=$(first_match "$sample" 's/^seconds per epoch (median of [^)]*): \([0-9.]*\).*/\1/p')
  tf_waits=$(first_match "$sample" 's/^host waits for the device per epoch (median): //p')
  tf_acc=$(first_match "$sample" 's/^test accuracy: //p')
  tf_mem=$(first_match "$sample" 's/^peak cuda:[0-9]* memory: \([0-9.]*\) MiB/\1/p')
  torch_s=$(tsv_value "$out/torch_cuda.tsv" "cuda/$key/epoch")
  torch_mem=$(tsv_value "$out/torch_cuda.tsv" "cuda/$key/peak_device")
  torch_acc=$(last_match "$out/torch_${key}_cuda.txt" 's/.* epoch [0-9]*: .*, accuracy \([0-9.]*\)$/\1/p')
  echo "| $job | $tf_s | $torch_s | $(ratio "$tf_s" "$torch_s") | $tf_acc | $torch_acc | $tf_mem | $torch_mem | $tf_waits |"
}

gpu=$(LD_LIBRARY_PATH=$orig_ld nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  head -n 1)
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null | head -n 1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no .git here)")
took=$((SECONDS - start))
report=$out/gpu-report.md
{
  echo "# tapeflow GPU report"
  echo
  echo "Produced by \`bash scripts/gpu_run.sh$( ((quick)) && echo " --quick")$([[ $cuda_mode != ON ]] && echo " --cuda $cuda_mode")\` in $took s (budget $budget s)."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| commit | $commit |"
  echo "| GPU | ${gpu:-no nvidia-smi} |"
  echo "| tapeflow | $device_status |"
  case $cuda_mode in
    ON | AUTO) cuda_note=", sm_80 + sm_90" ;;
    EMU) cuda_note=" (the CUDA emulator: a dry run, its times say nothing about a GPU)" ;;
    *) cuda_note="" ;;
  esac
  echo "| CUDA | $("$nvcc" --version 2>/dev/null | tail -n 1 || echo "no nvcc"); TAPEFLOW_CUDA=$cuda_mode$cuda_note |"
  echo "| host | $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $jobs cores (nproc); $(os_name); $(ldd --version 2>/dev/null | head -n 1) |"
  echo "| compiler | $("${cxx:-c++}" --version 2>/dev/null | head -n 1), Release; $(cmake --version | head -n 1) |"
  echo "| PyTorch | $(first_match "$out/torch_mlp_cuda.txt" 's/^# torch //p') |"
  echo
  echo "## Stages"
  echo
  echo "| stage | result | seconds | log |"
  echo "|---|---|---:|---|"
  for r in "${rows[@]}"; do
    IFS='|' read -r name result secs logf <<<"$r"
    echo "| $name | $result | $secs | ${logf:+\`$logf\`} |"
  done
  echo
  if [[ -f $out/nvidia-smi.txt ]]; then
    echo "## nvidia-smi"
    echo
    echo '```text'
    cat "$out/nvidia-smi.txt"
    echo '```'
    echo
  fi
  echo "## Tests (CTest, the whole suite)"
  echo
  if [[ -f $out/ctest.log ]]; then
    echo '```text'
    grep -E "tests passed|tests failed|Total Test time" "$out/ctest.log" || echo "no summary: see ctest.log"
    sed -n '/The following tests FAILED/,$p' "$out/ctest.log" | head -n 40
    echo '```'
  else
    echo "Not run."
  fi
  echo
  echo "## bench_cuda"
  echo
  echo "Device copy bandwidth (cudaMemcpyAsync of 256 MiB, read + written bytes), tapeflow's element-wise"
  echo "ops, reductions and softmax on CUDA tensors in GB/s and % of that copy; matmul through"
  echo "\`tapeflow::matmul\` against cuBLAS called directly on the same buffers, exact float32 and TF32 on"
  echo "both sides, float64; the cost of a tiny op. Every result is checked before it is timed."
  echo
  echo '```text'
  if [[ -f $out/bench_cuda.txt ]]; then cat "$out/bench_cuda.txt"; else echo "not run"; fi
  echo '```'
  echo
  echo "## Training on Fashion-MNIST: tapeflow and PyTorch on the same GPU"
  echo
  echo "tapeflow: \`samples/mnist_keras $mlp_epochs --device cuda\` and \`samples/convnet $conv_epochs ${conv_examples[*]} --device cuda\`,"
  echo "median seconds of all epochs (the first included), test accuracy, the device allocator's peak."
  echo "PyTorch: \`benchmarks/peers/torch_peer.py --device cuda\`, the same models, optimizer (RMSprop, Keras's"
  echo "defaults), batch sizes (128, 64) and per-batch running loss and accuracy; median seconds of the timed"
  echo "epochs after a 10-batch warm-up, the last epoch's training accuracy, \`torch.cuda.max_memory_allocated\`."
  echo "Both exact float32 (no TF32, cuDNN's included), batches copied from the CPU at every step. PyTorch's"
  echo "loop reads its loss and accuracy after each batch (\`.item()\`); tapeflow's fit reads them once per epoch"
  echo "(the last column: \`cuda::host_waits()\` during an epoch)."
  echo
  echo "| job | tapeflow s/epoch | PyTorch s/epoch | tapeflow / PyTorch | tapeflow test accuracy | PyTorch train accuracy | tapeflow peak device MiB | PyTorch peak device MiB | tapeflow host waits / epoch |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  training_row "MLP (mnist_keras), batch 128" mnist_keras_cuda.txt mlp
  training_row "convnet (book ch. 8), batch 64" convnet_cuda.txt convnet
  echo
  echo "## Sorting: tapeflow and PyTorch on the same GPU"
  echo
  echo "float32 [rows, len] along the last axis: \`argsort\` (stable; tapeflow merge-sorts rows past 64) against"
  echo "\`torch.argsort(stable=True)\`, \`top_k(x, 5)\` against \`torch.topk(x, 5)\`; GB/s of 12 bytes per element"
  echo "(the keys read, the int64 indices written, once each), from bench_cuda and torch_peer.py --only sort."
  echo
  echo "| case | tapeflow GB/s | PyTorch GB/s | tapeflow / PyTorch |"
  echo "|---|---:|---:|---:|"
  for key in argsort/8192x1000 argsort/16x1048576 top_k5/8192x1000 top_k5/16x1048576; do
    tf=$(tsv_value "$out/bench_cuda.tsv" "cuda/$key")
    pt=$(tsv_value "$out/torch_cuda.tsv" "cuda/$key")
    echo "| $key | $tf | $pt | $(ratio "$tf" "$pt") |"
  done
} >"$report"

# ---------------------------------------------------------------- summary
echo
echo "==== gpu_run summary ($took s of $budget s; $failures stage(s) failed or timed out) ===="
for r in "${rows[@]}"; do
  IFS='|' read -r name result secs _ <<<"$r"
  printf '  %-14s %-36s %5s s\n' "$name" "$result" "$secs"
done
echo "  device: $device_status"
if [[ -f $out/ctest.log ]]; then
  grep -E "tests passed" "$out/ctest.log" | sed 's/^/  ctest: /'
  sed -n '/The following tests FAILED/,$p' "$out/ctest.log" | sed -n '2,16p'
fi
[[ -f $out/bench_cuda.txt ]] && sed 's/^/  /' "$out/bench_cuda.txt"
sed -n '/^| job /,$p' "$report" | sed 's/^/  /'
echo "  report: $report"
exit $((failures > 0))
