// Naive loops vs tapeflow's vectorised ops, against the machine's limits measured by this same
// program (STYLE.md 10): STREAM-like copy / triad / read bandwidth at each tensor size with 1 and
// all threads, and OpenBLAS sgemm called directly at each matmul shape.
//
// For every case: the naive scalar kernel (kernels::naive, the tests' oracle) computes the
// reference; tapeflow's public op (1 thread and all threads) and its CPU kernel called directly
// (all threads, output preallocated: the op minus the front-end and the allocation) are checked
// against it, then timed (median of several runs after warm-up). A mismatch aborts.
//
// Output: Markdown on stdout (progress on stderr); with --tsv FILE, key/value lines for the
// peer comparison. --quick uses fewer sizes (a smoke test). --isa prints the CPU kernels'
// instruction set and exits.
#include <cblas.h>
#include <fmt/format.h>

#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bench_util.hpp"
#include "tapeflow/core.hpp"
#include "tapeflow/kernels/cpu.hpp"
#include "tapeflow/kernels/naive.hpp"

using namespace tapeflow;
using kernels::Layout;
using i64 = std::int64_t;

namespace {

// The limit kernels are compiled for the best instruction set this CPU has (the library's
// default build is portable), so that in-cache limits are what the machine can do.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BENCH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
// a plain vector loop, not a call to memcpy (glibc's streams past the cache from ~1 MB on)
#define BENCH_NO_MEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define BENCH_CLONES
#define BENCH_NO_MEMCPY
#endif

BENCH_CLONES BENCH_NO_MEMCPY void copy_range(float* __restrict c, const float* __restrict a, i64 b, i64 e) {
  for (i64 i = b; i < e; ++i) c[i] = a[i];
}
BENCH_CLONES void triad_range(float* __restrict a, const float* __restrict b, const float* __restrict c, float s,
                              i64 lo, i64 hi) {
  for (i64 i = lo; i < hi; ++i) a[i] = b[i] + s * c[i];
}
BENCH_CLONES float read_range(const float* __restrict a, i64 b, i64 e) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = b; i < e; ++i) s += a[i];
  return s;
}

// Calls f(t, begin, end) for t in [0, nt) over [0, n) in static chunks, on nt threads (the
// caller's thread alone when nt == 1: no parallel region at all).
template <class F>
void split(i64 n, int nt, const F& f) {
  if (nt <= 1) return f(0, i64(0), n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int t = 0; t < nt; ++t) f(t, n * t / nt, n * (t + 1) / nt);
}

volatile float g_sink;

int g_max_threads = 1;

// Tapeflow's kernels and OpenBLAS together (tapeflow keeps OpenBLAS at its own count; setting
// both keeps the two in step when this program also calls OpenBLAS directly).
int g_blas_threads = 1;  // what the direct cblas calls use (tapeflow resets OpenBLAS to 1 per gemm)
void set_threads(int n) {
  kernels::cpu::set_num_threads(n);
  g_blas_threads = n > 0 ? n : g_max_threads;
  openblas_set_num_threads(g_blas_threads);
}

Layout layout(std::vector<i64> shape, std::vector<i64> strides) {
  Layout l;
  l.rank = static_cast<int>(shape.size());
  for (int i = 0; i < l.rank; ++i) {
    l.shape[i] = shape[i];
    l.strides[i] = strides[i];
  }
  return l;
}
Layout contiguous(std::vector<i64> shape) {
  return kernels::contiguous_layout(static_cast<int>(shape.size()), shape.data());
}

std::string sci(double v) {
  if (v == 0) return "0";
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

// ------------------------------------------------------------------ limits (STREAM-like)

struct StreamLimits {
  // kind ("copy", "triad", "read") -> elements -> threads -> GB/s
  std::map<std::string, std::map<i64, std::map<int, double>>> gbs;
};

// Three arrays for the STREAM-like kernels.
struct StreamArrays {
  explicit StreamArrays(i64 n) : n(n), a(n, 1.0f), b(n, 2.0f), c(n, 0.5f) {}
  i64 n;
  std::vector<float> a, b, c;
};

// One run of a STREAM-like kernel over n elements on nt threads.
void stream_run(const std::string& kind, StreamArrays& s, int nt) {
  if (kind == "copy") {
    split(s.n, nt, [&](int, i64 lo, i64 hi) { copy_range(s.c.data(), s.a.data(), lo, hi); });
  } else if (kind == "triad") {
    split(s.n, nt, [&](int, i64 lo, i64 hi) { triad_range(s.a.data(), s.b.data(), s.c.data(), 0.5f, lo, hi); });
  } else {
    float part[64] = {};
    split(s.n, nt, [&](int t, i64 lo, i64 hi) { part[t] = read_range(s.b.data(), lo, hi); });
    g_sink = part[0];
  }
}

// Bytes moved as STREAM counts them (no write-allocate): copy 2 arrays, triad 3, read 1.
double stream_bytes(const std::string& kind, i64 n) {
  return (kind == "copy" ? 2.0 : kind == "triad" ? 3.0 : 1.0) * static_cast<double>(n) * sizeof(float);
}

StreamLimits measure_stream(const std::vector<i64>& sizes, const std::vector<int>& threads) {
  StreamLimits lim;
  for (i64 n : sizes) {
    StreamArrays arrays(n);
    for (int nt : threads)
      for (const char* kind : {"copy", "triad", "read"}) {
        bench::settle();  // no other pool's idle threads spinning (OpenBLAS's from its start-up)
        lim.gbs[kind][n][nt] =
            stream_bytes(kind, n) / bench::measure([&] { stream_run(kind, arrays, nt); }).seconds / 1e9;
      }
    fmt::print(stderr, "  stream n={} done\n", n);
  }
  return lim;
}

// How long each pool's idle threads keep running after a call returns, on nt threads (median
// of 3): tapeflow's pool, libgomp's (the STREAM-like kernels) and OpenBLAS's (direct sgemm).
struct IdleSpin {
  std::string pool, after;
  double seconds = 0;
};
std::vector<IdleSpin> measure_idle_spin(int nt, Generator& gen) {
  auto median3 = [](auto&& fn) {
    double t[3];
    for (double& v : t) v = bench::idle_spin_after(fn);
    std::sort(t, t + 3);
    return t[1];
  };
  set_threads(nt);
  const Tensor x = uniform({1024, 1024}, gen, -1, 1);
  StreamArrays arrays(i64(1) << 20);
  const i64 m = 512;
  std::vector<float> a(m * m, 0.5f), b(m * m, 0.25f), c(m * m);
  std::vector<IdleSpin> out = {
      {"tapeflow's thread pool", "`relu` of [1024, 1024]", median3([&] { Tensor y = relu(x); })},
      {"libgomp (OpenMP: the STREAM-like kernels)", "copy of 1M floats",
       median3([&] { stream_run("copy", arrays, nt); })},
      {"OpenBLAS's threads", "`cblas_sgemm` [512, 512] @ [512, 512]", median3([&] {
         cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, a.data(), m, b.data(), m, 0.0f,
                     c.data(), m);
       })}};
  set_threads(0);
  return out;
}

// ------------------------------------------------------------------ cases

struct Case {
  std::string op;     // "relu", "matmul", ...
  std::string label;  // shown in the table: "[64, 64]", "[128, 784] @ [784, 512]"
  std::string key;    // results key shared with the peers: "relu/64x64"
  std::string note;   // "dW1 = x^T @ dz1", ...
  bool flops = false; // work is FLOPs (GFLOP/s) rather than bytes (GB/s)
  double work = 0;
  std::string limit;  // "copy", "triad", "read" or "sgemm"
  i64 n_out = 0;
  double rtol = 0, atol = 0;
  std::function<void(float*)> naive;   // writes the reference
  std::function<Tensor()> op_fn;       // tapeflow's public op
  std::function<void(float*)> kernel;  // tapeflow's CPU kernel, output preallocated (optional)
  std::function<void(float*)> blas;    // cblas_sgemm called directly (matmul only)
  // The limit's workload on nt threads, timed interleaved with the op: the STREAM-like kernel
  // of the same traffic and size, or cblas_sgemm of the same shape.
  std::function<void(int nt)> limit_run;
  double limit_work = 0;  // bytes or FLOPs of one limit_run
};

struct Row {
  Case c;
  bench::Timing naive;
  std::map<int, bench::Timing> op, lim;  // by threads
  bench::Timing kernel;
  bool has_kernel = false;
};

double rate(const Case& c, double seconds) { return c.work / seconds / 1e9; }

constexpr double kBudget = 0.3;

Row run_case(Case c, const std::vector<int>& threads) {
  fmt::print(stderr, "  {:<10} {:<28}", c.op, c.label);
  Row r;
  std::vector<float> ref(c.n_out), out(c.n_out);
  // the reference, timed: a call slower than the budget is not repeated
  set_threads(1);
  auto start = bench::Clock::now();
  c.naive(ref.data());
  const double first = bench::seconds_since(start);
  r.naive = first >= kBudget ? bench::Timing{first, 1, 1} : bench::measure([&] { c.naive(out.data()); }, kBudget);
  for (int nt : threads) {
    set_threads(nt);
    if (c.blas) {
      c.blas(out.data());
      bench::check_close(fmt::format("cblas_sgemm {} ({} threads)", c.label, nt), out.data(), ref.data(), c.n_out,
                         c.rtol, c.atol);
    }
    const Tensor t = c.op_fn();
    if (t.size() != c.n_out || !t.is_contiguous())
      throw bench::Mismatch(fmt::format("{} {}: unexpected output of {} elements", c.op, c.label, t.size()));
    bench::check_close(fmt::format("tapeflow {} {} ({} threads)", c.op, c.label, nt), t.data<float>(), ref.data(),
                       c.n_out, c.rtol, c.atol);
    // threaded: each side's samples start once the other's idle threads stopped spinning
    std::tie(r.op[nt], r.lim[nt]) = bench::measure_pair([&] { Tensor o = c.op_fn(); }, [&] { c.limit_run(nt); },
                                                        2 * kBudget, 2e-3, 11, nt > 1);
  }
  if (c.kernel) {
    set_threads(threads.back());
    std::fill(out.begin(), out.end(), 0.0f);
    c.kernel(out.data());
    bench::check_close(fmt::format("cpu kernel {} {}", c.op, c.label), out.data(), ref.data(), c.n_out, c.rtol,
                       c.atol);
    bench::settle();
    r.kernel = bench::measure([&] { c.kernel(out.data()); }, kBudget);
    r.has_kernel = true;
  }
  set_threads(0);
  fmt::print(stderr, " naive {:>9}  tapeflow {:>9}\n", bench::human_seconds(r.naive.seconds),
             bench::human_seconds(r.op.at(threads.back()).seconds));
  r.c = std::move(c);
  return r;
}

// relu, add, broadcast add, sum over axis 0 and 1, softmax over rows of x [rows, cols].
std::vector<Case> elementwise_cases(i64 rows, i64 cols, Generator& gen) {
  const i64 n = rows * cols;
  const Tensor x = uniform({rows, cols}, gen, -1, 1), y = uniform({rows, cols}, gen, -1, 1),
               v = uniform({cols}, gen, -1, 1);
  const float *xp = x.data<float>(), *yp = y.data<float>(), *vp = v.data<float>();
  const Layout l = contiguous({rows, cols});
  const Layout row_l = layout({rows, cols}, {0, 1});  // v broadcast over rows
  const Layout col_l = layout({rows, cols}, {1, 0});  // one value per row, broadcast over columns
  const Layout keep_cols = layout({rows, cols}, {0, 1}), keep_rows = layout({rows, cols}, {1, 0});
  const std::string shape = fmt::format("[{}, {}]", rows, cols), sk = fmt::format("{}x{}", rows, cols);
  const double fb = sizeof(float);
  std::vector<Case> cs;
  auto arrays = std::make_shared<StreamArrays>(n);
  auto add_case = [&](Case c) {
    c.label = c.label.empty() ? shape : c.label;
    c.key = c.op + "/" + sk;
    c.limit_run = [arrays, kind = c.limit](int nt) { stream_run(kind, *arrays, nt); };
    c.limit_work = stream_bytes(c.limit, n);
    cs.push_back(std::move(c));
  };
  {
    Case c;
    c.op = "relu";
    c.work = 2 * n * fb;
    c.limit = "copy";
    c.n_out = n;
    c.naive = [=](float* o) { kernels::naive::unary<float>(OpId::Relu, o, l, xp, l, 0, 0); };
    c.op_fn = [x] { return relu(x); };
    c.kernel = [=](float* o) { kernels::cpu::unary<float>(OpId::Relu, o, l, xp, l, 0, 0); };
    add_case(c);
  }
  {
    Case c;
    c.op = "add";
    c.work = 3 * n * fb;
    c.limit = "triad";
    c.n_out = n;
    c.naive = [=](float* o) { kernels::naive::binary<float>(OpId::Add, o, l, xp, l, yp, l); };
    c.op_fn = [x, y] { return x + y; };
    c.kernel = [=](float* o) { kernels::cpu::binary<float>(OpId::Add, o, l, xp, l, yp, l); };
    add_case(c);
  }
  {
    Case c;
    c.op = "bcast_add";
    c.label = shape + fmt::format(" + [{}]", cols);
    c.work = (2 * n + cols) * fb;
    c.limit = "copy";
    c.n_out = n;
    c.naive = [=](float* o) { kernels::naive::binary<float>(OpId::Add, o, l, xp, l, vp, row_l); };
    c.op_fn = [x, v] { return x + v; };
    c.kernel = [=](float* o) { kernels::cpu::binary<float>(OpId::Add, o, l, xp, l, vp, row_l); };
    add_case(c);
  }
  for (int axis : {0, 1}) {
    Case c;
    c.op = fmt::format("sum_axis{}", axis);
    c.label = shape + fmt::format(" -> [{}]", axis == 0 ? cols : rows);
    c.n_out = axis == 0 ? cols : rows;
    c.work = (n + c.n_out) * fb;
    c.limit = "read";
    const i64 len = axis == 0 ? rows : cols;
    c.rtol = 1e-5;
    c.atol = 2e-6 * static_cast<double>(len);
    const Layout ol = axis == 0 ? keep_cols : keep_rows;
    c.naive = [=](float* o) { kernels::naive::reduce<float>(OpId::Sum, o, ol, xp, l); };
    c.op_fn = [x, axis] { return sum(x, {axis}); };
    c.kernel = [=](float* o) { kernels::cpu::reduce<float>(OpId::Sum, o, ol, xp, l); };
    add_case(c);
  }
  {
    // The naive side composes the naive kernels as the softmax composite composes the ops:
    // m = max(x, rows), e = exp(x - m), out = e / sum(e, rows). Traffic counted as a fused
    // softmax would move it (read x, write out): the lower bound.
    Case c;
    c.op = "softmax";
    c.label = shape + " rows";
    c.work = 2 * n * fb;
    c.limit = "copy";
    c.n_out = n;
    c.rtol = 1e-4;
    c.atol = 1e-9;
    auto m = std::make_shared<std::vector<float>>(rows), s = std::make_shared<std::vector<float>>(rows);
    auto e = std::make_shared<std::vector<float>>(n);
    c.naive = [=](float* o) {
      kernels::naive::reduce<float>(OpId::Max, m->data(), keep_rows, xp, l);
      kernels::naive::binary<float>(OpId::Sub, e->data(), l, xp, l, m->data(), col_l);
      kernels::naive::unary<float>(OpId::Exp, e->data(), l, e->data(), l, 0, 0);
      kernels::naive::reduce<float>(OpId::Sum, s->data(), keep_rows, e->data(), l);
      kernels::naive::binary<float>(OpId::Div, o, l, e->data(), l, s->data(), col_l);
    };
    c.op_fn = [x] { return softmax(x, -1); };
    c.kernel = [=](float* o) { kernels::cpu::softmax<float>(false, o, xp, l, 1); };
    add_case(c);
  }
  return cs;
}

// out [m, n] = a [m, k] @ b [k, n]; ta: a is the transposed view of a [k, m] tensor, tb: b of
// a [n, k] tensor (as the tape's matmul rule passes them: BLAS transposes, not copies).
Case matmul_case(i64 m, i64 k, i64 n, bool ta, bool tb, std::string note, Generator& gen) {
  const Tensor as = ta ? uniform({k, m}, gen, -1, 1) : uniform({m, k}, gen, -1, 1);
  const Tensor bs = tb ? uniform({n, k}, gen, -1, 1) : uniform({k, n}, gen, -1, 1);
  const Tensor a = ta ? as.transpose() : as, b = tb ? bs.transpose() : bs;
  const float *ap = as.data<float>(), *bp = bs.data<float>();
  const Layout al = ta ? layout({m, k}, {1, m}) : layout({m, k}, {k, 1});
  const Layout bl = tb ? layout({k, n}, {1, k}) : layout({k, n}, {n, 1});
  Case c;
  c.op = "matmul";
  c.label = fmt::format("[{}, {}]{} @ [{}, {}]{}", m, k, ta ? "ᵀ" : "", k, n, tb ? "ᵀ" : "");
  c.key = fmt::format("matmul{}/{}x{}x{}", ta ? "_tn" : tb ? "_nt" : "", m, k, n);
  c.note = std::move(note);
  c.flops = true;
  c.work = 2.0 * m * k * n;
  c.limit = "sgemm";
  c.n_out = m * n;
  c.rtol = 1e-4;
  c.atol = 2e-6 * static_cast<double>(k);
  c.naive = [=](float* o) { kernels::naive::matmul<float>(o, ap, al, bp, bl); };
  c.op_fn = [a, b] { return matmul(a, b); };
  c.kernel = [=](float* o) { kernels::cpu::matmul<float>(o, ap, al, bp, bl); };
  c.blas = [=](float* o) {
    openblas_set_num_threads(g_blas_threads);  // tapeflow's matmul, interleaved, sets it to 1
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                static_cast<int>(n), static_cast<int>(k), 1.0f, ap, static_cast<int>(ta ? m : k), bp,
                static_cast<int>(tb ? k : n), 0.0f, o, static_cast<int>(n));
  };
  auto scratch = std::make_shared<std::vector<float>>(m * n);
  c.limit_run = [blas = c.blas, scratch](int) { blas(scratch->data()); };  // threads: set_threads()
  c.limit_work = c.work;
  return c;
}

}  // namespace

// The arithmetic-bound ops on each instruction set the CPU kernels can use here (simd_math.hpp),
// through the public ops, the sets' samples interleaved so that all see the same load.
void isa_section(const bench::Results& results, bool quick, int nt) {
  const std::vector<std::string> isas = kernels::cpu::isas();
  const std::string saved = kernels::cpu::isa().substr(0, kernels::cpu::isa().find(' '));
  Generator gen(7);
  struct Op {
    std::string name;
    Shape shape;
    std::function<Tensor(const Tensor&)> fn;
  };
  const i64 big = quick ? 1024 : 4096;
  const std::vector<Op> ops = {
      {"exp", {512, 512}, [](const Tensor& x) { return exp(x); }},
      {"tanh", {512, 512}, [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", {512, 512}, [](const Tensor& x) { return sigmoid(x); }},
      {"softmax rows", {512, 512}, [](const Tensor& x) { return softmax(x, -1); }},
      {"log_softmax rows", {128, 10}, [](const Tensor& x) { return log_softmax(x, -1); }},
      {"softmax rows", {big, big}, [](const Tensor& x) { return softmax(x, -1); }},
      // a fresh generator per call: every call (and every set) draws the same numbers
      {"uniform", {1024, 1024}, [](const Tensor& x) {
         Generator g(11);
         return uniform(x.shape(), g, -1.0, 1.0);
       }},
      {"dropout 0.5", {1024, 1024}, [](const Tensor& x) {
         Generator g(11);
         return dropout(x, 0.5, g);
       }},
  };
  fmt::print("\n## Instruction sets of the arithmetic-bound kernels\n\n");
  fmt::print(
      "exp, log, sqrt, tanh, sigmoid, the softmax passes and uniform's Philox are built once per "
      "instruction set and "
      "picked at run time (the best the CPU has: **{}** here; `TAPEFLOW_CPU_ISA` or "
      "`kernels::cpu::set_isa` choose another). Median us per call of the public op, float32; the "
      "sets are timed in turn, sample by sample.\n\n",
      kernels::cpu::isa());
  for (int threads : nt > 1 ? std::vector<int>{1, nt} : std::vector<int>{1}) {
    set_threads(threads);
    fmt::print("{} thread{}:\n\n| op | shape |", threads, threads > 1 ? "s" : "");
    for (const std::string& k : isas) fmt::print(" {} us |", k);
    fmt::print(" best / baseline |\n|---|---|");
    for (std::size_t i = 0; i <= isas.size(); ++i) fmt::print("---:|");
    fmt::print("\n");
    for (const Op& op : ops) {
      const Tensor x = uniform(op.shape, gen, -4.0, 4.0);
      // every set's result close to the baseline's before anything is timed
      kernels::cpu::set_isa("baseline");
      const Tensor want = op.fn(x);
      std::map<std::string, std::vector<double>> samples;
      for (const std::string& k : isas) {
        kernels::cpu::set_isa(k);
        const Tensor got = op.fn(x);
        bench::check_close(op.name + " on " + k, got.data<float>(), want.data<float>(), got.size(), 1e-5, 1e-6,
                           "the baseline's result");
        op.fn(x);  // warm-up
      }
      const int reps = quick ? 5 : 9;
      for (int rep = 0; rep < reps; ++rep) {
        for (const std::string& k : isas) {
          kernels::cpu::set_isa(k);
          samples[k].push_back(bench::measure([&] { op.fn(x); }, 0.02).seconds);
        }
      }
      fmt::print("| {} | {} |", op.name, shape_str(op.shape));
      double best = 1e30;
      for (const std::string& k : isas) {
        std::vector<double>& v = samples[k];
        std::sort(v.begin(), v.end());
        const double med = v[v.size() / 2];
        best = std::min(best, med);
        fmt::print(" {} |", sci(med * 1e6));
        results.add(fmt::format("isa/{}/{}/{}/{}t", op.name, shape_str(op.shape), k, threads), med, "s");
      }
      fmt::print(" {:.2f}x |\n", samples["baseline"][samples["baseline"].size() / 2] / best);
    }
    fmt::print("\n");
  }
  kernels::cpu::set_isa(saved);
  set_threads(0);
}

// Every element-wise op of ops.def (new rows join by themselves), float32, through its CPU
// kernel into a preallocated output at 1 thread, after a check against the naive kernel.
// Memory-bound ops of one kind should cost about the same: an op far slower than the others
// of its kind is a loop the compiler left scalar (relu_grad and clip were, 30-40x).
void op_table_section(const bench::Results& results, bool quick) {
  const i64 rows = quick ? 256 : 1024, cols = 1024, n = rows * cols;
  Generator gen(5);
  const Layout l = contiguous({rows, cols});
  const Tensor any_a = uniform({rows, cols}, gen, -3, 3), any_b = uniform({rows, cols}, gen, -3, 3);
  const Tensor pos_a = uniform({rows, cols}, gen, 0.5, 2), pos_b = uniform({rows, cols}, gen, 0.5, 2);
  // asin, acos and atanh inside (-1, 1), acosh from 1: timed on their domains, not on NaN
  const Tensor unit_a = uniform({rows, cols}, gen, -0.99, 0.99), from_one_a = uniform({rows, cols}, gen, 1, 4);
  std::vector<float> out(static_cast<std::size_t>(n)), ref(out.size());
  set_threads(1);
  fmt::print("\n## Every element-wise op of the op table\n\n");
  fmt::print(
      "float32 [{}, {}] (contiguous), the CPU kernel called into a preallocated output at 1 thread, median "
      "per call; checked against the naive kernel first. GB/s counts the inputs read and the output "
      "written once; **x cheapest** is the time over that of the cheapest op of the same kind.\n\n",
      rows, cols);
  for (OpKind kind : {OpKind::Unary, OpKind::Binary}) {
    struct Entry {
      std::string name;
      double seconds;
      double bytes;
    };
    std::vector<Entry> entries;
    for (std::size_t i = 0; i < kNumOps; ++i) {
      if (kOpInfo[i].kind != kind) continue;
      const OpId op = static_cast<OpId>(i);
      // the domains of log, sqrt and pow; clip's bounds; a fractional power
      const bool positive = op == OpId::Log || op == OpId::Log1p || op == OpId::Sqrt || op == OpId::PowScalar || op == OpId::Pow;
      const bool unit = op == OpId::Asin || op == OpId::Acos || op == OpId::Atanh;
      const float* a = (op == OpId::Acosh ? from_one_a : unit ? unit_a : positive ? pos_a : any_a).data<float>();
      const float* b = (positive ? pos_b : any_b).data<float>();
      const double p0 = op == OpId::PowScalar ? 2.5 : op == OpId::Clip || op == OpId::ClipMask ? -1 : 0;
      const double p1 = op == OpId::Clip || op == OpId::ClipMask ? 1 : 0;
      std::function<void(float*)> naive, kernel;
      if (kind == OpKind::Unary) {
        naive = [&](float* o) { kernels::naive::unary<float>(op, o, l, a, l, p0, p1); };
        kernel = [&](float* o) { kernels::cpu::unary<float>(op, o, l, a, l, p0, p1); };
      } else {
        naive = [&](float* o) { kernels::naive::binary<float>(op, o, l, a, l, b, l); };
        kernel = [&](float* o) { kernels::cpu::binary<float>(op, o, l, a, l, b, l); };
      }
      naive(ref.data());
      kernel(out.data());
      bench::check_close(fmt::format("cpu kernel {}", kOpInfo[i].name), out.data(), ref.data(), n, 1e-5, 1e-6,
                         "the naive kernel");
      const double t = bench::measure([&] { kernel(out.data()); }, quick ? 0.05 : 0.15).seconds;
      entries.push_back({kOpInfo[i].name, t, (kind == OpKind::Unary ? 2.0 : 3.0) * n * sizeof(float)});
      results.add(fmt::format("optable/{}", kOpInfo[i].name), t, "s");
    }
    double cheapest = 1e30;
    for (const Entry& e : entries) cheapest = std::min(cheapest, e.seconds);
    fmt::print("| {} op | us | GB/s | x cheapest |\n|---|---:|---:|---:|\n",
               kind == OpKind::Unary ? "unary" : "binary");
    for (const Entry& e : entries)
      fmt::print("| {} | {} | {} | {:.1f} |\n", e.name, sci(e.seconds * 1e6), sci(e.bytes / e.seconds / 1e9),
                 e.seconds / cheapest);
    fmt::print("\n");
  }
  set_threads(0);
}

// unsorted_segment_max as a scatter_max of the rows into [segments, features] against the
// composite it replaced (stop 28): the max over rows of where(row in segment, row, lowest),
// [rows, segments, features] in memory, written here with the public API. Peak bytes the CPU
// allocator held above the inputs (memory_stats), median time of each at 1 thread.
void segment_section(const bench::Results& results, bool quick) {
  const i64 n = quick ? 1000 : 4000, segments = quick ? 100 : 500, f = 16;
  Generator gen(7);
  const Tensor data = uniform({n, f}, gen, -1, 1);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  std::vector<bool> member(static_cast<std::size_t>(n * segments), false);
  for (i64 r = 0; r < n; ++r) {
    ids[static_cast<std::size_t>(r)] = (r * 7919) % segments;  // every segment, in a scattered order
    member[static_cast<std::size_t>(r * segments + ids[static_cast<std::size_t>(r)])] = true;
  }
  const Tensor id_t = tensor(ids, {n}, kInt64), in_segment = tensor(member, {n, segments, 1}, kBool);
  const Tensor lowest = full({1}, std::numeric_limits<float>::lowest());
  const std::function<Tensor()> old_way = [&] { return max(where(in_segment, data.expand_dims(1), lowest), {0}); };
  const std::function<Tensor()> new_way = [&] { return unsorted_segment_max(data, id_t, segments); };
  if (!reduce_all(old_way() == new_way()).item<bool>())
    throw std::runtime_error("unsorted_segment_max: the scatter and the composite differ");
  set_threads(1);
  fmt::print("\n## unsorted_segment_max: scatter_max against the where + max composite it replaced\n\n");
  fmt::print("float32 data [{}, {}], {} segments, 1 thread; results checked equal first. Peak: the CPU "
             "allocator's peak bytes above the inputs during the calls.\n\n| way | peak MB | time |\n|---|---:|---:|\n",
             n, f, segments);
  for (const auto& [name, key, fn] : {std::tuple{"where + max over [rows, segments, features]", "composite", old_way},
                                      std::tuple{"scatter_max into [segments, features]", "scatter", new_way}}) {
    reset_peak_memory();
    const std::size_t held = memory_stats().current_bytes;
    const std::function<Tensor()>& call = fn;  // (a structured binding is no lambda capture in C++17)
    const double t = bench::measure([&] { call(); }).seconds;
    const double mb = static_cast<double>(memory_stats().peak_bytes - held) / 1e6;
    fmt::print("| {} | {:.2f} | {} |\n", name, mb, bench::human_seconds(t));
    results.add(fmt::format("segment_max/{}", key), t, "s");
    results.add(fmt::format("segment_max/{}/peak", key), mb, "MB");
  }
}

// gather_nd and unsorted_segment_sum with IndexMode::Raise (indices read and turned into rows on
// the host) against Fill (rows computed with tensor ops on the indices' device), on the CPU at
// 1 thread: what the device path costs where there is no device to spare a copy from (on CUDA,
// Raise also waits for the device; bench_cuda measures that). Results checked equal first.
void index_mode_section(const bench::Results& results, bool quick) {
  const i64 rows = quick ? 1 << 14 : 1 << 17, f = 16, segments = 1024;
  Generator gen(8);
  const Tensor params = uniform({rows, f}, gen, -1, 1);
  std::vector<std::int64_t> coords(static_cast<std::size_t>(rows)), ids(static_cast<std::size_t>(rows));
  for (i64 r = 0; r < rows; ++r) {
    coords[static_cast<std::size_t>(r)] = (r * 7919) % rows;
    ids[static_cast<std::size_t>(r)] = (r * 7919) % segments;
  }
  const Tensor idx = tensor(coords, {rows, 1}, kInt64), id_t = tensor(ids, {rows}, kInt64);
  struct Case {
    const char* name;
    const char* key;
    std::function<Tensor(IndexMode)> fn;
  };
  const std::vector<Case> cases = {
      {"gather_nd [rows, 1] of [rows, 16]", "gather_nd", [&](IndexMode m) { return gather_nd(params, idx, 0, m); }},
      {"unsorted_segment_sum of [rows, 16], 1024 segments", "segment_sum",
       [&](IndexMode m) { return unsorted_segment_sum(params, id_t, segments, m); }},
  };
  set_threads(1);
  fmt::print("\n## gather_nd, unsorted_segment_sum: IndexMode::Raise (rows on the host) against Fill (on the device)\n\n");
  fmt::print("float32, rows = {}, 1 thread, CPU tensors; results checked equal first.\n\n"
             "| op | Raise | Fill | Fill / Raise |\n|---|---:|---:|---:|\n",
             rows);
  for (const Case& c : cases) {
    if (!reduce_all(c.fn(IndexMode::Raise) == c.fn(IndexMode::Fill)).item<bool>())
      throw std::runtime_error(std::string(c.name) + ": Raise and Fill differ");
    const double t_raise = bench::measure([&] { c.fn(IndexMode::Raise); }).seconds;
    const double t_fill = bench::measure([&] { c.fn(IndexMode::Fill); }).seconds;
    fmt::print("| {} | {} | {} | {:.2f} |\n", c.name, bench::human_seconds(t_raise), bench::human_seconds(t_fill),
               t_fill / t_raise);
    results.add(fmt::format("index_mode/{}/raise", c.key), t_raise, "s");
    results.add(fmt::format("index_mode/{}/fill", c.key), t_fill, "s");
  }
  // take of whole rows in a scattered order (an embedding lookup): the gather kernel's row loop
  fmt::print("\ntake(x [n, width], rows [n], 0, Clip) in a scattered order, 1 thread; GB/s of the rows read and "
             "written and the indices read.\n\n| width | n | time | GB/s |\n|---:|---:|---:|---:|\n");
  for (const i64 width : {i64(4), i64(16), i64(64), i64(256)}) {
    const i64 n = (quick ? i64(1) << 18 : i64(1) << 21) / width;
    const Tensor x = uniform({n, width}, gen, -1, 1);
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (i64 r = 0; r < n; ++r) order[static_cast<std::size_t>(r)] = (r * 7919) % n;
    const Tensor rows_t = tensor(order, {n}, kInt64);
    if (!reduce_all(take(x, rows_t, 0, IndexMode::Clip)[1] == x[order[1]]).item<bool>())
      throw std::runtime_error("take: row 1 is not x[7919 % n]");
    const double t = bench::measure([&] { take(x, rows_t, 0, IndexMode::Clip); }).seconds;
    const double gbs = static_cast<double>(n * (2 * width * 4 + 8)) / t / 1e9;
    fmt::print("| {} | {} | {} | {:.1f} |\n", width, n, bench::human_seconds(t), gbs);
    results.add(fmt::format("take_rows/{}", width), gbs, "GB/s");
  }
}

int main(int argc, char** argv) try {
  if (bench::has_flag(argc, argv, "--isa")) {  // the instruction set in use, for the report's header
    fmt::print("{}\n", kernels::cpu::isa());
    return 0;
  }
  const bench::Results results(bench::tsv_arg(argc, argv));
  const bool quick = bench::has_flag(argc, argv, "--quick");
  if (bench::has_flag(argc, argv, "--indexing")) {  // only the two index-op sections (seconds, not minutes)
    segment_section(results, quick);
    index_mode_section(results, quick);
    return 0;
  }
  set_threads(0);
  g_max_threads = kernels::cpu::num_threads();
  std::vector<int> threads{1};
  if (g_max_threads > 1) threads.push_back(g_max_threads);
  const int nt = threads.back();

  // sizes: small (4K elements), cache-sized (256K), large (16M); the STREAM headline at 64M
  const std::vector<std::pair<i64, i64>> shapes =
      quick ? std::vector<std::pair<i64, i64>>{{64, 64}, {512, 512}}
            : std::vector<std::pair<i64, i64>>{{64, 64}, {512, 512}, {4096, 4096}};
  const i64 stream_big = quick ? (i64(1) << 22) : (i64(1) << 26);
  std::vector<i64> stream_sizes;
  for (auto [r, c] : shapes) stream_sizes.push_back(r * c);
  stream_sizes.push_back(stream_big);

  fmt::print(stderr, "limits: STREAM-like copy / triad / read\n");
  const StreamLimits lim = measure_stream(stream_sizes, threads);
  Generator gen(42);
  const std::vector<IdleSpin> spins = nt > 1 ? measure_idle_spin(nt, gen) : std::vector<IdleSpin>{};

  std::vector<Row> rows;
  fmt::print(stderr, "naive vs tapeflow\n");
  for (auto [r, c] : shapes) {
    for (Case& cs : elementwise_cases(r, c, gen)) rows.push_back(run_case(std::move(cs), threads));
  }
  std::vector<Case> mm;
  for (i64 s : quick ? std::vector<i64>{256} : std::vector<i64>{256, 512, 1024})
    mm.push_back(matmul_case(s, s, s, false, false, "square", gen));
  mm.push_back(matmul_case(128, 784, 512, false, false, "MLP forward: x @ W1", gen));
  mm.push_back(matmul_case(128, 512, 10, false, false, "MLP forward: h @ W2", gen));
  mm.push_back(matmul_case(784, 128, 512, true, false, "MLP backward: dW1 = xᵀ @ dz1", gen));
  mm.push_back(matmul_case(512, 128, 10, true, false, "MLP backward: dW2 = hᵀ @ dz2", gen));
  mm.push_back(matmul_case(128, 10, 512, false, true, "MLP backward: dh = dz2 @ W2ᵀ", gen));
  mm.push_back(matmul_case(128, 512, 784, false, true, "MLP backward: dx = dz1 @ W1ᵀ (not needed in training)", gen));
  for (Case& cs : mm) rows.push_back(run_case(std::move(cs), threads));

  // ---------------------------------------------------------------- report
  fmt::print("## Limits of this machine, measured in this run\n\n");
  fmt::print(
      "STREAM-like kernels (this program, compiled for the CPU's best vector ISA, OpenMP static "
      "chunks); bytes counted as STREAM does (copy 2 arrays, triad 3, read 1; no write-allocate). "
      "Median of several runs after warm-up.\n\n");
  fmt::print("| kernel | elements | MB per array |");
  for (int t : threads) fmt::print(" {} thread{} GB/s |", t, t > 1 ? "s" : "");
  fmt::print("\n|---|---:|---:|");
  for (std::size_t i = 0; i < threads.size(); ++i) fmt::print("---:|");
  fmt::print("\n");
  for (const char* kind : {"copy", "triad", "read"}) {
    for (i64 n : stream_sizes) {
      fmt::print("| {}{} | {} | {:.3g} |", kind, n == stream_big ? " (DRAM headline)" : "", n, n * 4.0 / 1e6);
      for (int t : threads) {
        const double g = lim.gbs.at(kind).at(n).at(t);
        fmt::print(" {} |", sci(g));
        results.add(fmt::format("limit/{}/{}/{}t", kind, n, t), g, "GB/s");
      }
      fmt::print("\n");
    }
  }
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  fmt::print("\nOpenBLAS `cblas_sgemm` called directly (threads via `openblas_set_num_threads`), timed "
             "interleaved with tapeflow's matmul of the same shape (below). OpenBLAS runs its `{}` kernels "
             "here{}.\n\n",
             openblas_get_corename(),
             coretype ? fmt::format(" (OPENBLAS_CORETYPE={} is set in the environment: the sgemm limit is that "
                                    "kernel's, not necessarily the CPU's)",
                                    coretype)
                      : "");
  fmt::print("| shape (m, k) @ (k, n) | use |");
  for (int t : threads) fmt::print(" {} thread{} GFLOP/s |", t, t > 1 ? "s" : "");
  fmt::print("\n|---|---|");
  for (std::size_t i = 0; i < threads.size(); ++i) fmt::print("---:|");
  fmt::print("\n");
  for (const Row& r : rows) {
    if (!r.c.blas) continue;
    fmt::print("| {} | {} |", r.c.label, r.c.note);
    for (int t : threads) {
      const double g = r.c.limit_work / r.lim.at(t).seconds / 1e9;
      fmt::print(" {} |", sci(g));
      results.add(fmt::format("limit/sgemm/{}/{}t", r.c.key.substr(r.c.key.find('/') + 1), t), g, "GFLOP/s");
    }
    fmt::print("\n");
  }

  if (!spins.empty()) {
    fmt::print(
        "\nIdle threads after a call, {} threads: how long the process's other threads keep running "
        "after the call returns (their states in /proc/self/task, polled every 0.2 ms; median of 3). "
        "While they spin they hold a core, so on a machine with few cores a measurement that follows runs "
        "with fewer. The threaded op / limit pairs below therefore wait this long between samples "
        "(`bench::settle`), then make one untimed call, before each timed sample.\n\n"
        "| pool | after | idle threads run for |\n|---|---|---:|\n",
        nt);
    for (const IdleSpin& sp : spins) {
      fmt::print("| {} | {} | {} |\n", sp.pool, sp.after, bench::human_seconds(sp.seconds));
      results.add("idle_spin/" + sp.pool.substr(0, sp.pool.find(' ')), sp.seconds, "s");
    }
  }

  fmt::print("\n## Naive loop vs tapeflow\n\n");
  fmt::print(
      "- **naive**: `kernels::naive`, the scalar loops the tests use as their oracle (1 thread).\n"
      "- **tapeflow**: the public op (`relu(x)`, `x + y`, `sum(x, {{0}})`, `softmax(x)`, `matmul(a, b)`), "
      "output allocated by the op (caching allocator), at 1 and {} threads "
      "(`kernels::cpu::set_num_threads`).\n"
      "- **kernel**: tapeflow's CPU kernel called directly into a preallocated output, {} threads "
      "(the op minus front-end and allocation).\n"
      "- **limit**: what the machine does with the same traffic at the same size, timed interleaved "
      "with the op (samples alternate, so both see the same load; threaded, each sample waits until the "
      "other side's idle threads have stopped spinning): the STREAM-like kernel of the same "
      "pattern (relu, broadcast add, softmax: copy; add: triad; sums: read); for matmul, `cblas_sgemm` "
      "on the same shape and transposes. GB/s counts each input read once and the output written once "
      "(softmax: x read once and out written once; its three passes over a row run in cache).\n"
      "- **% of limit**: tapeflow's best thread count against the limit's best thread count.\n"
      "- Every result (naive, op at each thread count, kernel, sgemm) was checked against the naive "
      "reference before timing: element-wise ops bit-exact, sums/matmul/softmax to a tolerance.\n\n",
      nt, nt);
  fmt::print("| op | shape | unit | naive | tapeflow 1 thr | tapeflow {} thr | kernel {} thr | limit 1 thr | "
             "limit {} thr | % of limit | tapeflow time | vs naive |\n",
             nt, nt, nt);
  fmt::print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    const Case& c = r.c;
    const double best_t = std::min(r.op.at(1).seconds, r.op.at(nt).seconds);
    const double lim1 = c.limit_work / r.lim.at(1).seconds / 1e9, limn = c.limit_work / r.lim.at(nt).seconds / 1e9;
    const double pct_v = 100 * rate(c, best_t) / std::max(lim1, limn);
    const std::string kind = c.flops ? "" : " " + c.limit;
    fmt::print("| {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {:.0f}% | {} | {:.1f}x |\n", c.op, c.label,
               c.note.empty() || c.note == "square" ? "" : " (" + c.note + ")", c.flops ? "GFLOP/s" : "GB/s",
               sci(rate(c, r.naive.seconds)) + (r.naive.samples == 1 ? "¹" : ""), sci(rate(c, r.op.at(1).seconds)),
               sci(rate(c, r.op.at(nt).seconds)), r.has_kernel ? sci(rate(c, r.kernel.seconds)) : "—",
               sci(lim1) + kind, sci(limn) + kind, pct_v, bench::human_seconds(best_t), r.naive.seconds / best_t);
    results.add(c.key, best_t, "s");
    results.add(c.key + "/naive", r.naive.seconds, "s");
    results.add(c.key + "/pct_limit", pct_v, "%");
  }
  fmt::print("\n¹ one run (too slow to repeat). \"vs naive\": naive time / tapeflow's best time.\n");
  isa_section(results, quick, nt);
  op_table_section(results, quick);
  segment_section(results, quick);
  index_mode_section(results, quick);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_kernels: error: {}\n", e.what());
  return 1;
}
