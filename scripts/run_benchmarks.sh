#!/usr/bin/env bash
# Builds tapeflow's benchmarks (Release, in build-bench/) and runs them all, writing one Markdown
# report: the machine's limits measured in the same run (STREAM-like bandwidth, OpenBLAS sgemm),
# naive loops vs tapeflow's ops, eager overhead, training throughput on Fashion-MNIST, where
# tapeflow stands against issue 6's targets, and a chart (PNG beside the report, when matplotlib
# can be had).
#
#   scripts/run_benchmarks.sh [--peers] [--quick] [--no-chart] [REPORT.md]
#
#   REPORT.md   where the report goes (default benchmarks/results/cpu-report.md)
#   --peers     also install (Debian's libtorch-dev and python3-torch, PyPI's tensorflow-cpu in a
#               venv) and run the peers: LibTorch C++, PyTorch from Python, TensorFlow/Keras, each at
#               1 and all threads, side by side with ratios. Needs root for apt-get and network.
#   --quick     small sizes and short training: a smoke test of the whole pipeline (~1 minute)
#   --no-chart  no PNG (otherwise matplotlib is used from python3, or pip-installed once into
#               build-bench/chart-venv; skipped with a note if that fails)
#
# Key/value results of the run are kept in build-bench/results/. Nothing here is part of the
# test suite. The default run takes about 4-5 minutes on 2 cores (plus the first build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

report=benchmarks/results/cpu-report.md
peers=0
quick=0
chart=1
for arg in "$@"; do
  case $arg in
    --peers) peers=1 ;;
    --quick) quick=1 ;;
    --no-chart) chart=0 ;;
    -h | --help)
      sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "run_benchmarks.sh: unknown option $arg (see --help)" >&2
      exit 2
      ;;
    *) report=$arg ;;
  esac
done
case $report in /*) ;; *) report=$repo/$report ;; esac
mkdir -p "$(dirname "$report")"

build=$repo/build-bench
rdir=$build/results
jobs=${TAPEFLOW_JOBS:-2}
ncores=$(nproc)
thread_settings=(1) # each benchmark at 1 and all threads
((ncores > 1)) && thread_settings+=("$ncores")
start_time=$SECONDS
rm -rf "$rdir"
mkdir -p "$rdir"
body=$rdir/body.md
: >"$body"

log() { echo "[run_benchmarks $((SECONDS - start_time))s] $*" >&2; }
die() {
  echo "run_benchmarks.sh: error: $*" >&2
  exit 1
}
# step NAME CMD...: stdout to the report body, stderr to build-bench/results/NAME.log;
# a failing step (a result that did not match its naive reference, say) aborts the run.
step() {
  local name=$1
  shift
  log "$name"
  if ! "$@" >>"$body" 2>>"$rdir/$name.log"; then
    tail -n 20 "$rdir/$name.log" >&2
    die "$name failed (log: $rdir/$name.log)"
  fi
}

# ---------------------------------------------------------------- build
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "configure and build (Release, $build, -j$jobs)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEFLOW_BUILD_TESTS=OFF \
  -DTAPEFLOW_BUILD_SAMPLES=OFF -DTAPEFLOW_BUILD_BENCHMARKS=ON -DTAPEFLOW_CUDA=OFF >"$rdir/cmake.log" 2>&1 ||
  { tail -n 30 "$rdir/cmake.log" >&2; die "cmake failed"; }
cmake --build "$build" -j "$jobs" --target bench_kernels bench_overhead bench_training >"$rdir/build.log" 2>&1 ||
  { grep -E "error|Error" "$rdir/build.log" | head -n 30 >&2; die "build failed (log: $rdir/build.log)"; }
bin=$build/benchmarks
quick_flag=()
peer_flags=()
[[ $quick == 1 ]] && quick_flag=(--quick) && peer_flags=(--quick --epochs 1)

# ---------------------------------------------------------------- tapeflow
cpu_isa=$("$bin/bench_kernels" --isa 2>/dev/null || true)
step kernels "$bin/bench_kernels" --tsv "$rdir/tapeflow.tsv" "${quick_flag[@]}"
echo >>"$body"
step overhead "$bin/bench_overhead" --tsv "$rdir/tapeflow.tsv"
echo >>"$body"

training() {
  echo "## Training throughput on Fashion-MNIST"
  echo
  if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
    echo "Skipped: Fashion-MNIST is not installed (\`apt-get install dataset-fashion-mnist\`)."
    return 0
  fi
  local epochs=2 seconds=40 conv_seconds=20
  [[ $quick == 1 ]] && epochs=1 seconds=5 conv_seconds=3
  echo "\`model.fit\` on the 60000 training images, float32, shuffled every epoch, with the running loss and"
  echo "accuracy Keras keeps (a warm-up first). MLP: Dense(512, relu) -> Dense(10, softmax), RMSprop, batch 128."
  echo "Convnet: the book's chapter-8 MNIST convnet, RMSprop, batch 64. Peak RSS is the process's VmHWM,"
  echo "reset after the dataset is loaded (the resident dataset, 188 MB of float32 images, still counts);"
  echo "peak tensor memory is tapeflow's allocator peak over the same span."
  echo
  echo "| model | timed | threads | examples/s | s/epoch | last loss / accuracy | peak RSS MB | peak tensor MB |"
  echo "|---|---|---:|---:|---:|---|---:|---:|"
  local t
  for t in "${thread_settings[@]}"; do
    "$bin/bench_training" mlp --threads "$t" --epochs "$epochs" --seconds "$seconds" --tsv "$rdir/tapeflow.tsv" \
      --breakdown "$rdir/mlp-breakdown.md"
  done
  # Diagnostic, not compared with the peers: all threads with OpenMP's idle threads sleeping
  # instead of spinning (they otherwise fight OpenBLAS's threads and other processes for the cores)
  if ((ncores > 1)); then
    OMP_WAIT_POLICY=passive "$bin/bench_training" mlp --threads "$ncores" --epochs 1 --seconds "$seconds" \
      --label "OMP_WAIT_POLICY=passive (diagnostic)"
  fi
  # the convnet at the MLP's better thread count
  local best
  best=$(awk -F'\t' '$1 ~ /^mlp\/epoch\// { split($1, p, "/"); t = p[3]; sub("t", "", t);
           if (min == "" || $2 < min) { min = $2; best = t } } END { print best }' "$rdir/tapeflow.tsv")
  "$bin/bench_training" convnet --threads "${best:-1}" --seconds "$conv_seconds" --tsv "$rdir/tapeflow.tsv"
  [[ -f $rdir/mlp-breakdown.md ]] && cat "$rdir/mlp-breakdown.md"
  echo
}
step training training

recurrent() {
  echo "## Recurrent layers"
  echo
  echo "LSTM(128) and GRU(128) (Keras's defaults: the last output, GRU reset_after) on random inputs [64, 50, 64]"
  echo "float32 (batch, time, features), each checked against a naive float64 loop first. Median time of an"
  echo "inference forward, and of a training step: forward under a GradientTape, mean as the loss, gradient"
  echo "w.r.t. the layer's weights (no optimizer)."
  echo
  echo "| layer | threads | forward | training step |"
  echo "|---|---:|---:|---:|"
  local t
  for t in "${thread_settings[@]}"; do "$bin/bench_training" rnn --threads "$t" --tsv "$rdir/tapeflow.tsv"; done
  echo
}
step recurrent recurrent

# ---------------------------------------------------------------- peers
torch_python() {
  local py
  for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null && "$py" -c "import torch, numpy" 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}
tf_python() {
  local py
  for py in /tmp/tfvenv/bin/python "$build/peers-venv/bin/python"; do
    if [[ -x $py ]] && "$py" -c "import tensorflow, keras, numpy" 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

install_peers() {
  # LibTorch C++ and PyTorch from Python: Debian's packages (1.13). PyPI's `torch` is the CUDA
  # build (gigabytes) and no CPU-only wheel is reachable by name, so Python uses Debian's too.
  if ! dpkg -s libtorch-dev python3-torch >/dev/null 2>&1; then
    log "installing libtorch-dev python3-torch (apt-get)"
    local sudo=()
    [[ $(id -u) != 0 ]] && sudo=(sudo -n)
    { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
      libtorch-dev python3-torch; } >"$rdir/peers-apt.log" 2>&1 || log "apt-get failed (see $rdir/peers-apt.log)"
  fi
  if ! tf_python >/dev/null; then
    log "installing tensorflow-cpu into $build/peers-venv (pip)"
    { python3 -m venv "$build/peers-venv" && "$build/peers-venv/bin/pip" install -q tensorflow-cpu; } \
      >"$rdir/peers-pip.log" 2>&1 || log "pip install tensorflow-cpu failed (see $rdir/peers-pip.log)"
  fi
  if dpkg -s libtorch-dev >/dev/null 2>&1; then
    log "building the LibTorch peer"
    { cmake -S benchmarks/peers/libtorch -B "$build/peers-libtorch" -G Ninja -DCMAKE_BUILD_TYPE=Release &&
      cmake --build "$build/peers-libtorch" -j "$jobs"; } >"$rdir/peers-libtorch-build.log" 2>&1 ||
      log "the LibTorch peer did not build (see $rdir/peers-libtorch-build.log)"
  fi
}

# run_peer NAME THREADS CMD...: one thread setting of one peer; a failure is reported, not fatal
run_peer() {
  local name=$1 t=$2
  shift 2
  log "peer $name, $t thread(s)"
  if ! OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$@" --threads "$t" --tsv "$rdir/$name-t$t.tsv" \
    "${peer_flags[@]}" >>"$rdir/$name.log" 2>&1; then
    echo "failed at $t thread(s): $(grep -v '^\s*$' "$rdir/$name.log" | tail -n 1)" >"$rdir/$name.status"
    rm -f "$rdir/$name-t$t.tsv"
  fi
}

peers_run() {
  install_peers
  local py t
  if py=$(torch_python); then
    echo "ran: torch $("$py" -c 'import torch; print(torch.__version__)') from Debian's python3-torch ($py)" >"$rdir/torch.version"
    # the convnet too (a row beside tapeflow's; a whole epoch fits the peer's 40 s budget here)
    local parts=ops,overhead,mlp,rnn
    [[ $quick == 1 ]] || parts+=,convnet
    for t in "${thread_settings[@]}"; do run_peer torch "$t" "$py" benchmarks/peers/torch_peer.py --only "$parts"; done
  else
    echo "not run: PyTorch for Python could not be installed (Debian's python3-torch; PyPI has no CPU-only torch by name)" >"$rdir/torch.status"
  fi
  if [[ -x $build/peers-libtorch/libtorch_peer ]]; then
    echo "ran: LibTorch $(dpkg-query -W -f '${Version}' libtorch-dev) (Debian's libtorch-dev)" >"$rdir/libtorch.version"
    for t in "${thread_settings[@]}"; do run_peer libtorch "$t" "$build/peers-libtorch/libtorch_peer"; done
  else
    echo "not run: Debian's libtorch-dev is not installed or the peer did not build" >"$rdir/libtorch.status"
  fi
  if py=$(tf_python); then
    echo "ran: $("$py" -c 'import tensorflow as tf, keras; print("tensorflow", tf.__version__, "keras", keras.__version__)' 2>/dev/null) from PyPI's tensorflow-cpu ($py)" >"$rdir/keras.version"
    for t in "${thread_settings[@]}"; do run_peer keras "$t" "$py" benchmarks/peers/keras_peer.py; done
  else
    echo "not run: tensorflow-cpu could not be installed from PyPI" >"$rdir/keras.status"
  fi
}
if [[ $peers == 1 ]]; then
  peers_run
fi

step summary python3 benchmarks/summarize.py "$rdir"

# ---------------------------------------------------------------- chart
chart_png=${report%.md}.png
chart_note=""
if [[ $chart == 1 ]]; then
  chart_py=""
  for py in python3 "$build/chart-venv/bin/python"; do
    if command -v "$py" >/dev/null && "$py" -c "import matplotlib" 2>/dev/null; then
      chart_py=$py
      break
    fi
  done
  if [[ -z $chart_py ]]; then
    log "installing matplotlib into $build/chart-venv (pip)"
    if { python3 -m venv "$build/chart-venv" && "$build/chart-venv/bin/pip" install -q matplotlib; } \
      >"$rdir/chart-pip.log" 2>&1; then
      chart_py=$build/chart-venv/bin/python
    fi
  fi
  if [[ -n $chart_py ]] && "$chart_py" benchmarks/plot.py "$rdir" "$chart_png" 2>"$rdir/chart.log"; then
    chart_note="![tapeflow against the limits, the naive loops and the peers]($(basename "$chart_png"))"
  else
    chart_note="No chart: matplotlib could not be had (see $rdir/chart*.log)."
  fi
fi

# ---------------------------------------------------------------- the report
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
threads_per_core=$(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -n 1)
caches=$(lscpu | sed -n 's/^\(L[123][di]\{0,1\}\) cache: *\(.*\)/\1 \2/p' | paste -sd ';' - | sed 's/;/; /g')
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt" | head -n 1)
compiler_version=$("${compiler:-c++}" --version | head -n 1)
openblas=$(dpkg-query -W -f '${db:Status-Abbrev}${Package} ${Version}\n' 'libopenblas0*' 2>/dev/null |
  sed -n 's/^ii *//p' | paste -sd ',' - | sed 's/,/, /g')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
# (the reports this script writes do not count)
[[ -n $(git status --porcelain -- . ':(exclude)benchmarks/results' 2>/dev/null) ]] &&
  dirty=" (with uncommitted changes in the working tree)"
busy_note=""
load1=${load_start%% *}
if awk -v l="$load1" -v n="$ncores" 'BEGIN { exit !(l > 0.5 * n) }'; then
  busy_note="**The machine was busy** (load average ${load_start} at the start, ${load_end} at the end, on ${ncores} cores): other processes took CPU time, so these numbers are noisy and the multi-threaded ones are hit hardest (a parallel region waits for its slowest thread). Rerun on an idle machine before quoting them."
fi
took=$((SECONDS - start_time))

{
  echo "# tapeflow CPU benchmark report"
  echo
  echo "Produced by \`bash scripts/run_benchmarks.sh$([[ $peers == 1 ]] && echo " --peers")$([[ $quick == 1 ]] && echo " --quick")\` in ${took} s."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| commit | \`$commit\`$dirty |"
  echo "| CPU | $cpu, $ncores cores (nproc), $threads_per_core thread(s) per core |"
  echo "| caches | $caches |"
  echo "| memory | $mem |"
  echo "| OS | $os |"
  echo "| compiler | $compiler_version, Release (-O3, portable: no -march=native) |"
  echo "| CPU kernels' instruction set | ${cpu_isa:-unknown} (exp, log, sqrt, tanh, sigmoid, softmax; picked at run time) |"
  echo "| BLAS | ${openblas:-unknown}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} |"
  echo "| load average | ${load_start} at the start, ${load_end} at the end |"
  if [[ $peers == 1 ]]; then
    for p in torch libtorch keras; do
      [[ -f $rdir/$p.version ]] && echo "| peer $p | $(cat "$rdir/$p.version") |"
    done
  fi
  echo
  [[ -n $busy_note ]] && echo "$busy_note" && echo
  echo "Reproduce: \`bash scripts/run_benchmarks.sh [--peers] [report.md]\` (see \`--help\`). Every kernel"
  echo "result is checked against the naive reference before it is timed; times are medians of several"
  echo "runs after a warm-up. No GPU here: the CUDA kernels are not part of this report."
  echo
  [[ -n $chart_note ]] && echo "$chart_note" && echo
  cat "$body"
} >"$rdir/report.md"
mv "$rdir/report.md" "$report"
log "report: $report (${took} s)"
