// The CPU kernels: same semantics as kernels/naive, written for speed.
//
// Element-wise kernels build an iteration Plan: size-1 axes dropped, axes ordered by the
// first operand's strides, adjacent axes merged where every operand allows it, so a
// contiguous tensor (or any dense view) becomes one flat run. The outer axes are walked
// with an odometer and the innermost axis is one tight loop, specialised for unit strides
// (auto-vectorised, or for exp/log/sqrt/tanh/sigmoid simd_math.hpp's xsimd code for the best
// instruction set the CPU has, chosen at run time) and stride-0 broadcast operands.
// Large tensors are split into one range per thread of thread_pool.hpp (num_threads()).
// Reductions fold contiguous runs with several vector accumulators, or add whole rows into
// the output row when the reduced axes are outer. Matmul goes to OpenBLAS's cblas_?gemm with
// transpose flags instead of copies.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "tapeflow/kernels/cpu.hpp"
#include "tapeflow/kernels/naive.hpp"
#include "simd_math.hpp"
#include "thread_pool.hpp"
// functors.hpp's CompareFn<LogicalNot> leaves its second parameter unused (reported upstream).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "tapeflow/kernels/functors.hpp"
#include "tapeflow/kernels/visit.hpp"
#pragma GCC diagnostic pop

namespace tapeflow::kernels::cpu {
namespace {

using i64 = std::int64_t;
using u64 = std::uint64_t;

// ---- threads -------------------------------------------------------------------------

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}
std::atomic<int> g_num_threads{0};  // 0: not set

// TAPEFLOW_NUM_THREADS, else OMP_NUM_THREADS (what users set for every BLAS-backed library),
// else every core; never more than the cores.
int default_threads() {
  static const int n = [] {
    for (const char* name : {"TAPEFLOW_NUM_THREADS", "OMP_NUM_THREADS"}) {
      if (const char* v = std::getenv(name)) {
        const int k = std::atoi(v);
        if (k > 0) return std::min(k, hardware_threads());
      }
    }
    return hardware_threads();
  }();
  return n;
}

// Work (in elements touched) below which a kernel stays on the calling thread: starting a
// parallel region costs a few microseconds, a cheap op streams ~256K floats in about that.
constexpr i64 kParallelMin = i64(1) << 18;
// Per-element cost factor of the ops that call exp/log/pow/philox per element.
constexpr i64 kHeavyCost = 16;
// The same for uniform's batched Philox (simd_math.hpp): about 4 cheap ops' time per element.
constexpr i64 kUniformCost = 4;
// Multiply-adds from which a single gemm is split over the pool's threads.
constexpr i64 kGemmSplitMin = i64(1) << 21;

// OpenBLAS keeps its own thread pool: give it the same count as ours so the two never run
// more threads than cores (they are never active at the same time).
void set_blas_threads(int n) {
  (void)n;  // our pool splits the work; OpenBLAS runs each block on the calling thread
  // asked every time: other code in the process (a benchmark's direct cblas calls) may change it
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

// ---- instruction sets ------------------------------------------------------------------

// The builds of simd_math.hpp, best first, with what the CPU must report to run each.
struct IsaBuild {
  const char* key;
  const simd::MathTable& (*table)();
  bool (*supported)();
};
#if defined(TAPEFLOW_SIMD_X86)
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
}
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
bool always() { return true; }
constexpr IsaBuild kIsaBuilds[] = {
#if defined(TAPEFLOW_SIMD_X86)
    {"avx512", &simd::table_avx512, &cpu_has_avx512},
    {"avx2", &simd::table_avx2, &cpu_has_avx2},
#endif
    {"baseline", &simd::table_baseline, &always},
};

const IsaBuild* find_isa(const std::string& key) {
  for (const IsaBuild& b : kIsaBuilds)
    if (key == b.key && b.supported()) return &b;
  return nullptr;
}

// The best the CPU runs, or TAPEFLOW_CPU_ISA's choice (a name it cannot run is reported on
// stderr, once, and the best is used).
const IsaBuild* initial_isa() {
  const IsaBuild* best = nullptr;
  for (const IsaBuild& b : kIsaBuilds) {
    if (b.supported()) {
      best = &b;
      break;
    }
  }
  if (const char* v = std::getenv("TAPEFLOW_CPU_ISA"); v != nullptr && *v != '\0') {
    if (const IsaBuild* chosen = find_isa(v)) return chosen;
    std::string names;
    for (const IsaBuild& b : kIsaBuilds)
      if (b.supported()) names += (names.empty() ? "" : ", ") + std::string(b.key);
    std::fprintf(stderr, "tapeflow: TAPEFLOW_CPU_ISA=%s is not one this CPU and build run (%s); using %s\n", v,
                 names.c_str(), best->key);
  }
  return best;
}

std::atomic<const IsaBuild*> g_isa{nullptr};  // null: initial_isa()'s

const IsaBuild& current_isa() {
  if (const IsaBuild* b = g_isa.load(std::memory_order_acquire)) return *b;
  static const IsaBuild* initial = initial_isa();
  return *initial;
}

template <class T>
const simd::MathFns<T>& math() {
  if constexpr (std::is_same_v<T, float>) return current_isa().table().f32;
  else return current_isa().table().f64;
}

// ---- op dispatch -----------------------------------------------------------------------

constexpr bool is_heavy(OpId op) {
  return op == OpId::Exp || op == OpId::Log || op == OpId::Log1p || op == OpId::Expm1 || op == OpId::Erf ||
         op == OpId::Sin || op == OpId::Cos || op == OpId::Tan || op == OpId::Asin || op == OpId::Acos ||
         op == OpId::Atan || op == OpId::Sinh || op == OpId::Cosh || op == OpId::Asinh || op == OpId::Acosh ||
         op == OpId::Atanh || op == OpId::Tanh || op == OpId::Sigmoid || op == OpId::PowScalar || op == OpId::Pow ||
         op == OpId::Atan2 || op == OpId::FloorDiv || op == OpId::FloorMod;  // floor_divide, mod: fmod's loop
}

// ---- iteration plans -------------------------------------------------------------------

// N operands of one shape walked together. Invariant: rank >= 1 and every shape[d] >= 2
// (or the single axis of a one-element plan); size == 0 means nothing to do.
template <int N>
struct Plan {
  int rank = 0;
  i64 size = 0;
  i64 shape[kMaxRank] = {};
  i64 strides[N][kMaxRank] = {};
};

// ls[k] are the operands' layouts, all with ls[0]'s rank and shape. Axes are ordered by
// |stride| of operand 0, largest outermost, so operand 0 is walked in memory order.
template <int N>
Plan<N> make_plan(const Layout* const (&ls)[N]) {
  Plan<N> p;
  const Layout& s = *ls[0];
  p.size = s.size();
  int axes[kMaxRank];
  int r = 0;
  for (int d = 0; d < s.rank; ++d)
    if (s.shape[d] != 1) axes[r++] = d;
  auto key = [&](int d) { return ls[0]->strides[d] < 0 ? -ls[0]->strides[d] : ls[0]->strides[d]; };
  for (int i = 1; i < r; ++i)  // stable insertion sort, descending key
    for (int j = i; j > 0 && key(axes[j - 1]) < key(axes[j]); --j) std::swap(axes[j - 1], axes[j]);
  for (int j = 0; j < r; ++j) {
    const int d = axes[j];
    if (p.rank > 0) {
      bool merge = true;
      for (int k = 0; k < N; ++k)
        merge = merge && p.strides[k][p.rank - 1] == ls[k]->strides[d] * s.shape[d];
      if (merge) {
        p.shape[p.rank - 1] *= s.shape[d];
        for (int k = 0; k < N; ++k) p.strides[k][p.rank - 1] = ls[k]->strides[d];
        continue;
      }
    }
    p.shape[p.rank] = s.shape[d];
    for (int k = 0; k < N; ++k) p.strides[k][p.rank] = ls[k]->strides[d];
    ++p.rank;
  }
  if (p.rank == 0) {  // a scalar, or only size-1 axes
    p.rank = 1;
    p.shape[0] = 1;
  }
  return p;
}

// Calls f(off, n) for the runs covering flat positions [begin, end) of the plan: off[k] is
// operand k's element offset at the run's start, the run goes n steps along the last axis.
template <int N, class F>
void run_range(const Plan<N>& p, i64 begin, i64 end, const F& f) {
  const int r = p.rank;
  i64 idx[kMaxRank];
  i64 off[N] = {};
  i64 rem = begin;
  for (int d = r - 1; d >= 0; --d) {
    idx[d] = rem % p.shape[d];
    rem /= p.shape[d];
    for (int k = 0; k < N; ++k) off[k] += idx[d] * p.strides[k][d];
  }
  const i64 len = p.shape[r - 1];
  for (i64 pos = begin; pos < end;) {
    const i64 n = std::min(len - idx[r - 1], end - pos);
    f(static_cast<const i64*>(off), n);
    pos += n;
    if (pos >= end) break;
    idx[r - 1] += n;
    for (int k = 0; k < N; ++k) off[k] += n * p.strides[k][r - 1];
    for (int d = r - 1; d > 0 && idx[d] == p.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
      for (int k = 0; k < N; ++k) off[k] += p.strides[k][d - 1] - p.shape[d] * p.strides[k][d];
    }
  }
}

// Calls f(off) for every index of the plan's first k axes (once when k == 0).
template <int N, class F>
void for_each_outer(const Plan<N>& p, int k, const F& f) {
  i64 idx[kMaxRank] = {};
  i64 off[N] = {};
  for (int d = 0; d < k; ++d)
    if (p.shape[d] == 0) return;
  for (;;) {
    f(static_cast<const i64*>(off));
    int d = k - 1;
    for (; d >= 0; --d) {
      ++idx[d];
      for (int c = 0; c < N; ++c) off[c] += p.strides[c][d];
      if (idx[d] < p.shape[d]) break;
      idx[d] = 0;
      for (int c = 0; c < N; ++c) off[c] -= p.strides[c][d] * p.shape[d];
    }
    if (d < 0) return;
  }
}

// Start of chunk c of [0, n) cut in `chunks` pieces, rounded to 64 elements so that two
// threads rarely write the same cache line.
i64 chunk_begin(i64 n, int c, int chunks) {
  if (c >= chunks) return n;
  return (n / chunks * c + (n % chunks) * c / chunks) & ~i64(63);
}

// Threads for `work` element-operations (never more than `items`, the units to split).
int threads_for(i64 work, i64 items) {
  if (work < kParallelMin) return 1;
  return static_cast<int>(std::min<i64>(num_threads(), items));
}

// All runs of the plan, split over threads when the work (size * cost) is large.
template <int N, class F>
void for_each_run(const Plan<N>& p, i64 cost, const F& f) {
  if (p.size == 0) return;
  const int nt = threads_for(p.size * cost, p.size / 64 + 1);
  if (nt <= 1) {
    run_range(p, 0, p.size, f);
    return;
  }
  detail::parallel_for(nt, [&](int c) { run_range(p, chunk_begin(p.size, c, nt), chunk_begin(p.size, c + 1, nt), f); });
}

// Rows [0, rows) cut over the pool's threads when the work (elements touched) is large.
template <class F>
void for_rows(i64 rows, i64 work, const F& body) {
  const int nt = threads_for(work, rows);
  if (nt <= 1) {
    body(i64(0), rows);
    return;
  }
  detail::parallel_for(nt, [&](int c) { body(rows * c / nt, rows * (c + 1) / nt); });
}

// ---- streaming stores ------------------------------------------------------------------

// Outputs larger than the caches are computed block by block into an L1-resident buffer and
// written with non-temporal stores: the output lines are then never read for ownership, which
// saves a third of a copy's memory traffic (what memcpy does for large sizes).
constexpr i64 kStreamMinBytes = i64(8) << 20;
constexpr i64 kStreamBlockBytes = 8192;

inline void stream_bytes(void* dst, const void* src, i64 bytes) {
#if defined(__SSE2__)
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  i64 i = 0;
  for (; i + 16 <= bytes; i += 16) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
  }
  if (i < bytes) std::memcpy(d + i, s + i, static_cast<std::size_t>(bytes - i));
#else
  std::memcpy(dst, src, static_cast<std::size_t>(bytes));
#endif
}

// For a large 16-byte-aligned contiguous output of n elements: compute(buf, begin, len) fills
// buf with elements [begin, begin + len); returns false (nothing done) when streaming does not
// apply, so the caller takes its ordinary path.
template <class T, class F>
bool stream_flat(T* out, i64 n, i64 cost, const F& compute) {
  if (n * static_cast<i64>(sizeof(T)) < kStreamMinBytes || reinterpret_cast<std::uintptr_t>(out) % 16 != 0) {
    return false;
  }
  constexpr i64 kBlock = kStreamBlockBytes / static_cast<i64>(sizeof(T));
  const int nt = threads_for(n * cost, n / kBlock + 1);
  auto range = [&](i64 begin, i64 end) {
    alignas(64) T buf[kBlock];
    for (i64 i = begin; i < end; i += kBlock) {
      const i64 len = std::min(kBlock, end - i);
      compute(buf, i, len);
      stream_bytes(out + i, buf, len * static_cast<i64>(sizeof(T)));
    }
  };
  if (nt <= 1) {
    range(0, n);
  } else {
    detail::parallel_for(nt, [&](int c) { range(chunk_begin(n, c, nt), chunk_begin(n, c + 1, nt)); });
  }
#if defined(__SSE2__)
  _mm_sfence();  // the streamed lines are visible to every thread before the op returns
#endif
  return true;
}

// ---- element-wise ----------------------------------------------------------------------

// The auto-vectorised loops over contiguous runs (and a few others) are compiled twice, for
// AVX2 and the baseline (SSE2), and the loader picks one for the CPU (GCC's target_clones, an
// ifunc), so a portable build still runs 256-bit loops where the CPU has them. "avx2" rather
// than "arch=x86-64-v3": any GCC since 6 takes it (the GPU machine's compiler is not ours), and
// this TU, built with -ffp-contract=off, would not use FMA anyway: the AVX2 clone rounds exactly
// as the baseline and the naive kernels do.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && \
    defined(__GLIBC__) && !defined(TAPEFLOW_NO_VECTOR_CLONES)  // the clones need glibc's ifunc
#define TAPEFLOW_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TAPEFLOW_VECTOR_CLONES
#endif

template <class T>
constexpr bool kSimdFloat = std::is_same_v<T, float> || std::is_same_v<T, double>;

// y[i] = op(x[i]) for the ops simd_math.hpp has, on the instruction set in use.
template <OpId op, class T>
void simd_unary_run(T* y, const T* x, i64 n) {
  const simd::MathFns<T>& f = math<T>();
  if constexpr (op == OpId::Exp) f.exp(y, x, n);
  else if constexpr (op == OpId::Log) f.log(y, x, n);
  else if constexpr (op == OpId::Sqrt) f.sqrt(y, x, n);
  else if constexpr (op == OpId::Tanh) f.tanh(y, x, n);
  else if constexpr (op == OpId::Expm1) f.expm1(y, x, n);
  else if constexpr (op == OpId::Log1p) f.log1p(y, x, n);
  else if constexpr (op == OpId::Erf) f.erf(y, x, n);
  else {
    static_assert(op == OpId::Sigmoid);
    f.sigmoid(y, x, n);
  }
}

// libm's powf, for the lanes the vectorised pow leaves to it (kernels/cpu/simd_math.hpp)
float scalar_powf(float a, float b) { return std::pow(a, b); }

template <OpId op, class T>
TAPEFLOW_VECTOR_CLONES void unary_contiguous(T* y, const T* x, i64 n, double p0, double p1) {
  // float64 erf stays libm's: xsimd's errs by up to 2.4e-15 (11 ulps) near 0
  constexpr bool simd = op == OpId::Exp || op == OpId::Log || op == OpId::Sqrt || op == OpId::Tanh ||
                        op == OpId::Sigmoid || op == OpId::Expm1 || op == OpId::Log1p ||
                        (op == OpId::Erf && std::is_same_v<T, float>);
  if constexpr (simd && kSimdFloat<T>) {
    simd_unary_run<op>(y, x, n);
  } else {
    if constexpr (op == OpId::PowScalar && kSimdFloat<T>) {
      if (p0 == 2.0) {  // x ** 2 (squared errors): no pow call
        for (i64 i = 0; i < n; ++i) y[i] = x[i] * x[i];
        return;
      }
      if (p0 == 1.0) {  // the gradient of x ** 2
        std::copy(x, x + n, y);
        return;
      }
      if constexpr (std::is_same_v<T, float>) {
        if (const auto pow = math<float>().pow) {
          const float e = static_cast<float>(p0);  // the functor's T(p0)
          pow(y, x, 1, &e, 0, n, &scalar_powf);
          return;
        }
      }
    }
    const UnaryFn<op> f;
    for (i64 i = 0; i < n; ++i) y[i] = f(x[i], p0, p1);
  }
}

// y[i] = convert<TO>(x[i]) over contiguous runs. Floating -> integer saturates (NaN -> 0), but
// values in range, nearly all of them, take the plain conversion: float32 -> int32 converts
// blocks of batches with the instruction (cvttps2dq gives INT32_MIN for NaN and out-of-range
// lanes; a block with one is redone through saturate_cast), within 10% of the unchecked
// static_cast's loop (saturate_cast's selects in the loop cost 3.7x); the other pairs, scalar
// conversions on SSE2 anyway, test each value first.
template <class TO, class TI>
void convert_run(TO* y, const TI* x, i64 n) {
  if constexpr (std::is_same_v<TO, std::int32_t> && std::is_same_v<TI, float>) {
    using B = xsimd::batch<float>;
    using BI = xsimd::batch<std::int32_t>;
    constexpr i64 W = static_cast<i64>(B::size), kBatches = 8;
    static_assert(BI::size == B::size);
    const BI flagged(std::numeric_limits<std::int32_t>::min());
    i64 i = 0;
    for (; i + kBatches * W <= n; i += kBatches * W) {
      xsimd::batch_bool<std::int32_t> any_flagged(false);
      for (i64 u = 0; u < kBatches; ++u) {
        const BI r = xsimd::batch_cast<std::int32_t>(B::load_unaligned(x + i + u * W));
        r.store_unaligned(y + i + u * W);
        any_flagged = any_flagged || (r == flagged);
      }
      if (xsimd::any(any_flagged))
        for (i64 j = i; j < i + kBatches * W; ++j) y[j] = saturate_cast<std::int32_t>(x[j]);
    }
    for (; i < n; ++i) y[i] = saturate_cast<std::int32_t>(x[i]);
  } else if constexpr (kWrapInt<TO> && std::is_floating_point_v<TI>) {
    constexpr TI lo = TI(std::numeric_limits<TO>::min()), hi = -lo;  // -2^(bits-1), 2^(bits-1)
    for (i64 i = 0; i < n; ++i) {
      const TI v = x[i];
      y[i] = __builtin_expect(v >= lo && v < hi, 1) ? static_cast<TO>(v) : saturate_cast<TO>(v);
    }
  } else {
    for (i64 i = 0; i < n; ++i) y[i] = static_cast<TO>(x[i]);
  }
}

// A copy whose output runs along one axis and input along another (contiguous() of a
// transposed view): 2-D tiles, so both sides touch whole cache lines. Plan operands:
// 0 = out, 1 = in. Returns false when the plan has no such pair of axes.
template <class TO, class TI>
bool copy_transposed(TO* out, const TI* in, const Plan<2>& p) {
  const int r = p.rank;
  if (p.size == 0 || r < 2 || p.strides[0][r - 1] != 1 || p.strides[1][r - 1] == 1) return false;
  int d = r - 2;  // the axis along which the input is contiguous: the tiles' rows
  while (d >= 0 && p.strides[1][d] != 1) --d;
  if (d < 0) return false;
  int outer_axes[kMaxRank];
  int nouter = 0;
  for (int e = 0; e < r - 1; ++e)
    if (e != d) outer_axes[nouter++] = e;
  constexpr i64 kTile = 32;
  const i64 rows = p.shape[d], cols = p.shape[r - 1];
  const i64 out_row = p.strides[0][d], in_col = p.strides[1][r - 1];
  const i64 row_tiles = (rows + kTile - 1) / kTile;
  i64 outer = 1;
  for (int e = 0; e < nouter; ++e) outer *= p.shape[outer_axes[e]];
  const i64 tasks = outer * row_tiles;  // one strip of kTile rows each
  auto strip = [&](i64 t) {
    i64 o = t / row_tiles, oo = 0, io = 0;
    for (int e = nouter - 1; e >= 0; --e) {
      const int a = outer_axes[e];
      const i64 ix = o % p.shape[a];
      o /= p.shape[a];
      oo += ix * p.strides[0][a];
      io += ix * p.strides[1][a];
    }
    const i64 i0 = t % row_tiles * kTile, i1 = std::min(rows, i0 + kTile);
    for (i64 j0 = 0; j0 < cols; j0 += kTile) {
      const i64 j1 = std::min(cols, j0 + kTile);
      for (i64 i = i0; i < i1; ++i) {
        TO* y = out + oo + i * out_row;
        const TI* x = in + io + i;
        for (i64 j = j0; j < j1; ++j) y[j] = convert<TO>(x[j * in_col]);
      }
    }
  };
  const int nt = threads_for(p.size, tasks);
  if (nt <= 1) {
    for (i64 t = 0; t < tasks; ++t) strip(t);
  } else {
    detail::parallel_for(nt, [&](int c) {
      for (i64 t = tasks * c / nt, e = tasks * (c + 1) / nt; t < e; ++t) strip(t);
    });
  }
  return true;
}

// y[i] = c[i] ? u[i] : v[i] as a bit select: GCC does not vectorise the bool-driven
// select itself (a bool is 0 or 1, so 0 - c is an all-ones or all-zeros mask), and the
// branch it compiles mispredicts on a random mask (dropout's). UB / VB: u / v is one value
// broadcast along the run (where(keep, x, 0.0)).
template <class T, bool UB = false, bool VB = false>
void where_contiguous(T* y, const bool* c, const T* u, const T* v, i64 n) {
  if constexpr (sizeof(T) == 4 || sizeof(T) == 8) {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    const unsigned char* cc = reinterpret_cast<const unsigned char*>(c);
    for (i64 i = 0; i < n; ++i) {
      U a, b;
      std::memcpy(&a, u + (UB ? 0 : i), sizeof(T));
      std::memcpy(&b, v + (VB ? 0 : i), sizeof(T));
      const U m = U(0) - U(cc[i]);
      const U r = (a & m) | (b & ~m);
      std::memcpy(y + i, &r, sizeof(T));
    }
  } else {
    static_assert(std::is_same_v<T, bool>);  // bytes 0 or 1: (c & u) | (!c & v)
    const unsigned char* cc = reinterpret_cast<const unsigned char*>(c);
    const unsigned char* uc = reinterpret_cast<const unsigned char*>(u);
    const unsigned char* vc = reinterpret_cast<const unsigned char*>(v);
    unsigned char* yc = reinterpret_cast<unsigned char*>(y);
    for (i64 i = 0; i < n; ++i)
      yc[i] = static_cast<unsigned char>((cc[i] & uc[UB ? 0 : i]) | ((cc[i] ^ 1u) & vc[VB ? 0 : i]));
  }
}

// ---- reductions ------------------------------------------------------------------------

template <OpId op, class T>
T identity() {
  if constexpr (op == OpId::Sum) return T(0);
  else if constexpr (op == OpId::Prod) return T(1);
  else if constexpr (op == OpId::Max) return lowest_or_neg_inf<T>();
  else return max_or_inf<T>();
}

// acc op x; Max/Min propagate NaN (the functors of maximum/minimum); an integer Sum or Prod
// wraps around (the functors of add and mul)
template <OpId op, class T>
T combine(T acc, T x) {
  if constexpr (op == OpId::Sum) return wrap_add(acc, x);
  else if constexpr (op == OpId::Prod) return wrap_mul(acc, x);
  else if constexpr (op == OpId::Max) return BinaryFn<OpId::Maximum>{}(acc, x);
  else return BinaryFn<OpId::Minimum>{}(acc, x);
}

// Reductions reading more than this stream from memory: their rows go through SSE2's loop,
// which read a [4096, 4096] float matrix 15% faster here (AMD EPYC Zen 4, 1 thread: 2.9 against
// 3.3 ms, min of 25) than AVX-512's, while AVX-512 sums an in-cache [512, 512] 25% faster.
constexpr i64 kStreamBytes = i64(8) << 20;

template <class T>
const simd::MathFns<T>& streaming_math() {
  if constexpr (std::is_same_v<T, float>) return simd::table_baseline().f32;
  else return simd::table_baseline().f64;
}

// The fold of a float row: simd_math's row_sum (blocks summed in float, their sums in double),
// row_max or row_min (NaN wins), of the instruction set in use or, when `stream`, SSE2's.
// Picked once per op: a lookup per row cost short rows ([64, 64]) a tenth of their time.
// Prod has none: its rows take reduce_contiguous's eight-accumulator loop, as integers do.
template <class T>
using RowFn = T (*)(const T*, i64);
template <OpId op, class T>
inline constexpr bool kRowFn = kSimdFloat<T> && op != OpId::Prod;
template <OpId op, class T>
RowFn<T> row_fn(bool stream) {
  if constexpr (kRowFn<op, T>) {
    const simd::MathFns<T>& f = stream ? streaming_math<T>() : math<T>();
    if constexpr (op == OpId::Sum) return f.row_sum;
    else if constexpr (op == OpId::Max) return f.row_max;
    else return f.row_min;
  } else {
    (void)stream;
    return nullptr;
  }
}

// Fold of a contiguous run x[0, n); floats through `row` (row_fn's, looked up when null).
template <OpId op, class T>
T reduce_contiguous(const T* x, i64 n, RowFn<T> row = nullptr) {
  if constexpr (kRowFn<op, T>) {
    if (n == 0) return identity<op, T>();
    return (row != nullptr ? row : row_fn<op, T>(false))(x, n);
  } else {
    (void)row;
    T acc[8];
    for (T& a : acc) a = identity<op, T>();
    i64 i = 0;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] = combine<op>(acc[j], x[i + j]);
    for (; i < n; ++i) acc[0] = combine<op>(acc[0], x[i]);
    for (int j = 1; j < 8; ++j) acc[0] = combine<op>(acc[0], acc[j]);
    return acc[0];
  }
}

// Fold of x[0], x[s], ..., x[(n-1) s].
template <OpId op, class T>
T reduce_run(const T* x, i64 n, i64 s, RowFn<T> row) {
  if (s == 1) return reduce_contiguous<op>(x, n, row);
  if (n == 0) return identity<op, T>();
  if (s == 0) {  // a broadcast input
    if constexpr (op == OpId::Sum) {
      return wrap_mul(x[0], static_cast<T>(n));
    } else if constexpr (op == OpId::Prod) {  // x^n, multiplied left to right as the naive loop
      T acc = identity<op, T>();
      for (i64 i = 0; i < n; ++i) acc = combine<op>(acc, x[0]);
      return acc;
    } else {
      return combine<op>(identity<op, T>(), x[0]);
    }
  }
  T acc[4] = {identity<op, T>(), identity<op, T>(), identity<op, T>(), identity<op, T>()};
  i64 i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) acc[j] = combine<op>(acc[j], x[(i + j) * s]);
  for (; i < n; ++i) acc[0] = combine<op>(acc[0], x[i * s]);
  return combine<op>(combine<op>(acc[0], acc[1]), combine<op>(acc[2], acc[3]));
}

// Columns per block of reduce_rows: the block of the output row (and the float32 partial
// sums) stays in L2 while every input row streams through it in long contiguous runs.
constexpr i64 kColBlock = 8192;
// float32 rows summed in float before the partial is added to a double
constexpr i64 kRowBlock = 256;

// y[j] = y[j] op x[l rs + j] for l < rows in order, j < n: four rows per pass over y (a
// quarter of its loads and stores); Max/Min propagate NaN (the functors of maximum/minimum)
template <OpId op, class T>
TAPEFLOW_VECTOR_CLONES void combine_rows(T* y, const T* x, i64 rows, i64 rs, i64 n) {
  i64 l = 0;
  for (; l + 4 <= rows; l += 4) {
    const T *r0 = x + l * rs, *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
    for (i64 j = 0; j < n; ++j) {
      const T a = combine<op>(combine<op>(y[j], r0[j]), r1[j]);
      y[j] = combine<op>(combine<op>(a, r2[j]), r3[j]);
    }
  }
  for (; l < rows; ++l) {
    const T* row = x + l * rs;
    for (i64 j = 0; j < n; ++j) y[j] = combine<op>(y[j], row[j]);
  }
}

// The float32 sum's block of rows: p[j] = the float sum of x[l rs + j] over l < rows (four
// rows per pass: a quarter of the loads and stores of the partials), then t[j] += p[j]
TAPEFLOW_VECTOR_CLONES void sum_block_rows(float* p, double* t, const float* x, i64 rows, i64 rs, i64 n) {
  std::fill_n(p, n, 0.0f);
  i64 l = 0;
  for (; l + 4 <= rows; l += 4) {
    const float *r0 = x + l * rs, *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
    for (i64 j = 0; j < n; ++j) p[j] += (r0[j] + r1[j]) + (r2[j] + r3[j]);
  }
  for (; l < rows; ++l) {
    const float* row = x + l * rs;
    for (i64 j = 0; j < n; ++j) p[j] += row[j];
  }
  for (i64 j = 0; j < n; ++j) t[j] += p[j];
}

// y[j ys] = y[j ys] op x[l rs + j xs] for l < rows, j < n: `rows` input rows fold into one
// output row, vectorised along the row (never a strided gather per element).
template <OpId op, class T>
void reduce_rows(T* y, i64 ys, const T* x, i64 rows, i64 rs, i64 n, i64 xs) {
  if (ys == 1 && xs == 1 && rs == n && n < 64 && rows >= 256) {
    // short dense rows ([N, 4] summed over N): fold groups of g rows as rows of g * n
    // elements into a small buffer, then fold the buffer's g slices into y
    const i64 g = (64 + n - 1) / n, wide = g * n, groups = rows / g;
    T acc[128];
    std::fill_n(acc, wide, identity<op, T>());
    reduce_rows<op>(acc, 1, x, groups, wide, wide, 1);
    for (i64 t = 0; t < g; ++t)
      for (i64 j = 0; j < n; ++j) y[j] = combine<op>(y[j], acc[t * n + j]);
    x += groups * wide;
    rows -= groups * g;
  }
  if (ys == 1 && xs == 1) {
    if constexpr (op == OpId::Sum && std::is_same_v<T, float>) {
      if (rows > kRowBlock) {
        // per thread: float partials of kRowBlock rows, their sums in double
        thread_local std::vector<float> part;
        thread_local std::vector<double> total;
        part.resize(static_cast<std::size_t>(std::min(kColBlock, n)));
        total.resize(part.size());
        for (i64 c0 = 0; c0 < n; c0 += kColBlock) {
          const i64 cb = std::min(kColBlock, n - c0);
          float* pp = part.data();
          double* tp = total.data();
          std::fill_n(tp, cb, 0.0);
          for (i64 l0 = 0; l0 < rows; l0 += kRowBlock)
            sum_block_rows(pp, tp, x + l0 * rs + c0, std::min(rows, l0 + kRowBlock) - l0, rs, cb);
          for (i64 j = 0; j < cb; ++j) y[c0 + j] = static_cast<float>(y[c0 + j] + tp[j]);
        }
        return;
      }
    }
    for (i64 c0 = 0; c0 < n; c0 += kColBlock) {
      const i64 cb = std::min(kColBlock, n - c0);
      combine_rows<op>(y + c0, x + c0, rows, rs, cb);
    }
    return;
  }
  for (i64 l = 0; l < rows; ++l) {
    const T* row = x + l * rs;
    for (i64 j = 0; j < n; ++j) y[j * ys] = combine<op>(y[j * ys], row[j * xs]);
  }
}

// Plan operands: 0 = input, 1 = output (stride 0 on reduced axes). out is initialised.
template <OpId op, class T>
void reduce_serial(T* out, const T* in, const Plan<2>& p, RowFn<T> row) {
  const int r = p.rank;
  const i64 n = p.shape[r - 1], xs = p.strides[0][r - 1], ys = p.strides[1][r - 1];
  if (ys == 0 && n <= 16 && r >= 2 && p.strides[1][r - 2] != 0) {
    // short reduced runs under a kept axis ([N, 4] summed over 4): no call per run
    const i64 rows = p.shape[r - 2], rs = p.strides[0][r - 2], os = p.strides[1][r - 2];
    for_each_outer(p, r - 2, [&](const i64* off) {
      const T* x = in + off[0];
      T* y = out + off[1];
      for (i64 i = 0; i < rows; ++i) {
        T acc = identity<op, T>();
        for (i64 j = 0; j < n; ++j) acc = combine<op>(acc, x[i * rs + j * xs]);
        y[i * os] = combine<op>(y[i * os], acc);
      }
    });
  } else if (ys == 0) {  // innermost axis reduced: each run folds to one value
    for_each_outer(p, r - 1, [&](const i64* off) {
      T& y = out[off[1]];
      y = combine<op>(y, reduce_run<op>(in + off[0], n, xs, row));
    });
  } else if (r >= 2 && p.strides[1][r - 2] == 0) {  // the rows of axis r-2 fold into one output row
    const i64 rows = p.shape[r - 2], rs = p.strides[0][r - 2];
    for_each_outer(p, r - 2, [&](const i64* off) {
      reduce_rows<op>(out + off[1], ys, in + off[0], rows, rs, n, xs);
    });
  } else {
    for_each_outer(p, r - 1, [&](const i64* off) {
      reduce_rows<op>(out + off[1], ys, in + off[0], 1, 0, n, xs);
    });
  }
}

// The axis to cut between threads, or -1. A kept axis gives each thread its own outputs; a
// reduced axis needs one partial output per extra thread (out_size elements each).
int reduce_split_axis(const Plan<2>& p, int nt, i64 out_size, bool partials_ok) {
  const int r = p.rank;
  auto kept = [&](int d) { return p.strides[1][d] != 0; };
  for (int d = 0; d < r - 1; ++d)  // an outer kept axis: each thread reads whole blocks of rows
    if (kept(d) && p.shape[d] >= 4 * nt) return d;
  int reduced = -1;  // the longest reduced axis the threads can share
  if (partials_ok)
    for (int d = 0; d < r; ++d)
      if (!kept(d) && p.shape[d] >= nt && (reduced < 0 || p.shape[d] > p.shape[reduced])) reduced = d;
  // Cutting the inner kept axis gives each thread a short piece of every row (sum over axis 0
  // of [4096, 4096]: 8 KB of each 16 KB row, at 2 threads slower than 1); cutting the reduced
  // axis keeps each thread's reads one stream, for one partial output per extra thread. That
  // is cheap (under 1/8 of the work) when at least 8 rows fold into each output per thread.
  const i64 partial_work = out_size * (nt - 1);
  if (reduced >= 0 && partial_work * 8 <= p.size) return reduced;
  if (kept(r - 1) && p.shape[r - 1] >= 1024 * nt) return r - 1;  // long pieces of rows
  if (reduced >= 0 && partial_work <= p.size) return reduced;
  int best = -1;
  for (int d = 0; d < r; ++d)
    if (kept(d) && p.shape[d] >= nt && (best < 0 || p.shape[d] > p.shape[best])) best = d;
  return best;
}

template <OpId op, class T>
void reduce_impl(T* out, const Layout& out_l, const T* in, const Layout& in_l) {
  // the output's own index space: the reduced axes (stride 0) collapse to length 1
  Layout init_l = out_l;
  bool partials_ok = true;  // out_l addresses [0, out_size) with non-negative strides
  for (int d = 0; d < init_l.rank; ++d) {
    if (init_l.strides[d] == 0) init_l.shape[d] = 1;
    if (init_l.strides[d] < 0) partials_ok = false;
  }
  const i64 out_size = init_l.size();
  if (out_size == 0) return;
  fill(out, init_l, identity<op, T>());
  const Layout* ls[2] = {&in_l, &out_l};
  const Plan<2> p = make_plan(ls);
  if (p.size == 0) return;
  if (partials_ok) {
    i64 last = 0;
    for (int d = 0; d < init_l.rank; ++d) last += (init_l.shape[d] - 1) * init_l.strides[d];
    partials_ok = last < out_size;
  }

  const int nt = threads_for(p.size, p.size);
  const int split = nt > 1 ? reduce_split_axis(p, nt, out_size, partials_ok) : -1;
  const RowFn<T> row = row_fn<op, T>(p.size > kStreamBytes / static_cast<i64>(sizeof(T)));
  if (split < 0) {
    reduce_serial<op>(out, in, p, row);
    return;
  }
  const bool partial = p.strides[1][split] == 0;
  const i64 len = p.shape[split];
  const int chunks = static_cast<int>(std::min<i64>(nt, len));
  std::vector<T> partials(partial ? static_cast<std::size_t>(out_size * (chunks - 1)) : 0, identity<op, T>());
  detail::parallel_for(chunks, [&](int c) {
    const i64 b = len * c / chunks, e = len * (c + 1) / chunks;
    Plan<2> q = p;
    q.shape[split] = e - b;
    T* y = partial ? (c == 0 ? out : partials.data() + (c - 1) * out_size) : out + b * p.strides[1][split];
    reduce_serial<op>(y, in + b * p.strides[0][split], q, row);
  });
  for (int c = 1; partial && c < chunks; ++c) {
    const T* part = partials.data() + (c - 1) * out_size;
    for (i64 i = 0; i < out_size; ++i) out[i] = combine<op>(out[i], part[i]);
  }
}

// ---- arg reductions --------------------------------------------------------------------

// ArgMax/ArgMin along x[0], x[s], ...: the first extreme, the first NaN if there is one.
template <OpId op, class T>
i64 arg_run(const T* x, i64 len, i64 s) {
  T best = x[0];
  if (best != best) return 0;
  i64 best_i = 0;
  for (i64 i = 1; i < len; ++i) {
    const T v = x[i * s];
    if (v != v) return i;
    if (op == OpId::ArgMax ? v > best : v < best) {
      best = v;
      best_i = i;
    }
  }
  return best_i;
}

// The same along a contiguous run, in two vectorised passes: the extreme value (NaN if any),
// then the first position holding it.
template <OpId op, class T>
i64 arg_contiguous(const T* x, i64 len) {
  if constexpr (kSimdFloat<T>) {
    using B = xsimd::batch<T>;
    constexpr i64 W = static_cast<i64>(B::size);
    const T m = reduce_contiguous<op == OpId::ArgMax ? OpId::Max : OpId::Min>(x, len);
    const bool nan = m != m;
    i64 i = 0;
    for (; i + W <= len; i += W) {
      const B v = B::load_unaligned(x + i);
      if (xsimd::any(nan ? xsimd::isnan(v) : v == B(m))) break;
    }
    for (; i < len; ++i)
      if (nan ? x[i] != x[i] : x[i] == m) return i;
    return 0;  // unreachable: m is one of the elements
  } else {
    return arg_run<op>(x, len, 1);
  }
}

// The same for n contiguous columns at once (the reduced axis is outer, stride s): a block of
// columns keeps each column's extreme and its index, and every row of the block updates them
// with vector compares and selects (no branch per element: on random data the branchy loop
// mispredicted about every other compare, ~5 ns per element). The index is kept as a T, exact
// for float32 below 2^24 rows, so values and indices share one vector type.
template <OpId op, class T>
void arg_columns(i64* out, const T* x, i64 len, i64 s, i64 n) {
  constexpr i64 kExact = sizeof(T) == 4 ? i64(1) << 24 : i64(1) << 53;
  constexpr i64 kBlock = 1024;
  if (len > kExact) {
    for (i64 j = 0; j < n; ++j) out[j] = arg_run<op>(x + j, len, s);
    return;
  }
  // take x over the current best b: b is not NaN, and x is NaN or beyond b
  auto take = [](auto v, auto b) {
    const auto beyond = op == OpId::ArgMax ? v > b : v < b;
    return (beyond || v != v) && b == b;
  };
  for (i64 c0 = 0; c0 < n; c0 += kBlock) {
    const i64 cb = std::min(kBlock, n - c0);
    T best[kBlock], idx[kBlock];
    std::copy_n(x + c0, cb, best);
    std::fill_n(idx, cb, T(0));
    for (i64 l = 1; l < len; ++l) {
      const T* row = x + l * s + c0;
      const T li = static_cast<T>(l);
      i64 j = 0;
      if constexpr (kSimdFloat<T>) {
        using B = xsimd::batch<T>;
        constexpr i64 W = static_cast<i64>(B::size);
        for (; j + W <= cb; j += W) {
          const B v = B::load_unaligned(row + j), b = B::load_unaligned(best + j);
          const auto t = (xsimd::isnan(v) || (op == OpId::ArgMax ? v > b : v < b)) && !xsimd::isnan(b);
          xsimd::select(t, v, b).store_unaligned(best + j);
          xsimd::select(t, B(li), B::load_unaligned(idx + j)).store_unaligned(idx + j);
        }
      }
      for (; j < cb; ++j) {
        const bool t = take(row[j], best[j]);
        best[j] = t ? row[j] : best[j];
        idx[j] = t ? li : idx[j];
      }
    }
    for (i64 j = 0; j < cb; ++j) out[c0 + j] = static_cast<i64>(idx[j]);
  }
}

template <OpId op, class T>
void arg_reduce_impl(i64* out, const T* in, const Layout& in_l, int axis) {
  Layout rest_in;  // the input without `axis`
  rest_in.rank = in_l.rank - 1;
  for (int d = 0, e = 0; d < in_l.rank; ++d) {
    if (d == axis) continue;
    rest_in.shape[e] = in_l.shape[d];
    rest_in.strides[e++] = in_l.strides[d];
  }
  const Layout rest_out = contiguous_layout(rest_in.rank, rest_in.shape);
  const Layout* ls[2] = {&rest_out, &rest_in};
  const Plan<2> p = make_plan(ls);
  const i64 len = in_l.shape[axis], s = in_l.strides[axis];
  const i64 os = p.strides[0][p.rank - 1], xs = p.strides[1][p.rank - 1];
  for_each_run(p, len, [&](const i64* off, i64 n) {
    if (os == 1 && xs == 1 && s != 1 && len > 1) {
      arg_columns<op>(out + off[0], in + off[1], len, s, n);
    } else {
      for (i64 j = 0; j < n; ++j) {
        const T* x = in + off[1] + j * xs;
        out[off[0] + j * os] = s == 1 ? arg_contiguous<op>(x, len) : arg_run<op>(x, len, s);
      }
    }
  });
}

// ---- argsort ---------------------------------------------------------------------------

// Each row's (key, index) pairs copied out contiguously and put in order by std::stable_sort
// (equal keys keep their index order); rows are cut over the pool's threads.
template <class T>
void argsort_impl(i64* out, const T* in, const Layout& in_l, int axis, bool descending) {
  const i64 len = in_l.shape[axis], step = in_l.strides[axis];
  const i64 rows = len == 0 ? 0 : in_l.size() / len;
  i64 inner = 1;  // out is contiguous: row r starts at (r / inner) * len * inner + r % inner
  for (int d = axis + 1; d < in_l.rank; ++d) inner *= in_l.shape[d];
  struct Key {
    T value;
    i64 index;
  };
  // work ~ n log2 n compares and moves
  i64 log_len = 1;
  while ((i64(1) << log_len) < len) ++log_len;
  for_rows(rows, in_l.size() * log_len, [&](i64 begin, i64 end) {
    std::vector<Key> keys(static_cast<std::size_t>(len));
    for (i64 r = begin; r < end; ++r) {
      i64 off = 0;  // the row's first element: r unravelled over the axes other than `axis`
      i64 q = r;
      for (int d = in_l.rank - 1; d >= 0; --d) {
        if (d == axis) continue;
        off += q % in_l.shape[d] * in_l.strides[d];
        q /= in_l.shape[d];
      }
      for (i64 i = 0; i < len; ++i) keys[static_cast<std::size_t>(i)] = {in[off + i * step], i};
      std::stable_sort(keys.begin(), keys.end(),
                       [descending](const Key& a, const Key& b) { return sorts_before(a.value, b.value, descending); });
      i64* y = out + r / inner * len * inner + r % inner;
      for (i64 k = 0; k < len; ++k) y[k * inner] = keys[static_cast<std::size_t>(k)].index;
    }
  });
}

// ---- matmul ----------------------------------------------------------------------------

// How one matrix [rows, cols] with strides (sr, sc) is handed to row-major cblas: as is
// (NoTrans, ld = sr), as the transpose of a row-major matrix (Trans, ld = sc), or not at all
// (ok = false: overlapping, broadcast or negative strides; copy it first). Size-1 axes can
// have any stride; ld still has to be >= max(1, cols of the stored matrix).
struct BlasMatrix {
  bool ok = false;
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  i64 ld = 1;
};
BlasMatrix blas_matrix(i64 rows, i64 cols, i64 sr, i64 sc) {
  const i64 max_ld = INT_MAX;
  if ((sc == 1 || cols <= 1) && (rows <= 1 || (sr >= std::max<i64>(1, cols) && sr <= max_ld)))
    return {true, CblasNoTrans, rows <= 1 ? std::max<i64>(1, cols) : sr};
  if ((sr == 1 || rows <= 1) && (cols <= 1 || (sc >= std::max<i64>(1, rows) && sc <= max_ld)))
    return {true, CblasTrans, cols <= 1 ? std::max<i64>(1, rows) : sc};
  return {};
}

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, i64 m, i64 n, i64 k, const float* a, i64 lda,
          const float* b, i64 ldb, float* c, i64 ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), 1.0f, a, blasint(lda), b,
              blasint(ldb), 0.0f, c, blasint(ldc));
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, i64 m, i64 n, i64 k, const double* a, i64 lda,
          const double* b, i64 ldb, double* c, i64 ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), 1.0, a, blasint(lda), b,
              blasint(ldb), 0.0, c, blasint(ldc));
}

// c[m, n] = a[m, k] @ b[k, n] for any strides; c contiguous. Operands BLAS cannot read as
// they are go through a contiguous copy.
template <class T>
void gemm_strided(T* c, const T* a, i64 m, i64 k, i64 as_m, i64 as_k, const T* b, i64 n, i64 bs_k,
                  i64 bs_n) {
  std::vector<T> a_copy, b_copy;
  BlasMatrix am = blas_matrix(m, k, as_m, as_k), bm = blas_matrix(k, n, bs_k, bs_n);
  if (!am.ok) {
    a_copy.resize(static_cast<std::size_t>(m * k));
    for (i64 i = 0; i < m; ++i)
      for (i64 p = 0; p < k; ++p) a_copy[i * k + p] = a[i * as_m + p * as_k];
    a = a_copy.data();
    am = {true, CblasNoTrans, std::max<i64>(1, k)};
  }
  if (!bm.ok) {
    b_copy.resize(static_cast<std::size_t>(k * n));
    for (i64 p = 0; p < k; ++p)
      for (i64 j = 0; j < n; ++j) b_copy[p * n + j] = b[p * bs_k + j * bs_n];
    b = b_copy.data();
    bm = {true, CblasNoTrans, std::max<i64>(1, n)};
  }
  // Large products are split into blocks of C's columns (or rows), one OpenBLAS call per pool
  // thread; OpenBLAS itself stays on one thread, so only our pool ever runs (no two pools
  // spinning against each other on few cores).
  const i64 ldc = std::max<i64>(1, n);
  const int nt = m * n * k >= kGemmSplitMin ? std::min<int>(num_threads(), static_cast<int>(std::max(m, n) / 16)) : 1;
  if (nt <= 1) {
    gemm(am.trans, bm.trans, m, n, k, a, am.ld, b, bm.ld, c, ldc);
    return;
  }
  const bool by_columns = n >= m;
  detail::parallel_for(nt, [&](int t) {
    const i64 len = by_columns ? n : m;
    const i64 lo = len * t / nt / 16 * 16, hi = t + 1 == nt ? len : len * (t + 1) / nt / 16 * 16;
    if (hi <= lo) return;
    if (by_columns) {  // B's columns [lo, hi): offset lo (NoTrans) or lo rows of B^T
      const T* bb = b + (bm.trans == CblasNoTrans ? lo : lo * bm.ld);
      gemm(am.trans, bm.trans, m, hi - lo, k, a, am.ld, bb, bm.ld, c + lo, ldc);
    } else {  // A's rows [lo, hi)
      const T* aa = a + (am.trans == CblasNoTrans ? lo * am.ld : lo);
      gemm(am.trans, bm.trans, hi - lo, n, k, aa, am.ld, b, bm.ld, c + lo * ldc, ldc);
    }
  });
}


// Integer matmul (no BLAS): i-p-j order, the inner loop runs along a row of b and c. Integer
// products and sums wrap around, as NumPy's.
template <class T>
void matmul_loop(T* c, const T* a, i64 m, i64 k, i64 as_m, i64 as_k, const T* b, i64 n, i64 bs_k,
                 i64 bs_n) {
  for (i64 i = 0; i < m; ++i) {
    T* row = c + i * n;
    std::fill_n(row, n, T(0));
    for (i64 p = 0; p < k; ++p) {
      const T av = a[i * as_m + p * as_k];
      const T* brow = b + p * bs_k;
      if (bs_n == 1)
        for (i64 j = 0; j < n; ++j) row[j] = wrap_add(row[j], wrap_mul(av, brow[j]));
      else
        for (i64 j = 0; j < n; ++j) row[j] = wrap_add(row[j], wrap_mul(av, brow[j * bs_n]));
    }
  }
}

// OpenBLAS runs a gemm below 64^3 multiply-adds on one thread; batches of such gemms are
// split over our threads instead.
constexpr i64 kSmallGemm = i64(1) << 18;

template <class T>
void matmul_impl(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  const int r = a_l.rank, nb = r - 2;
  const i64 m = a_l.shape[r - 2], k = a_l.shape[r - 1], n = b_l.shape[r - 1];
  const i64 as_m = a_l.strides[r - 2], as_k = a_l.strides[r - 1];
  const i64 bs_k = b_l.strides[r - 2], bs_n = b_l.strides[r - 1];
  i64 batch = 1;
  for (int d = 0; d < nb; ++d) batch *= a_l.shape[d];
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    std::fill_n(out, batch * m * n, T(0));
    return;
  }
  constexpr bool blas = kSimdFloat<T>;
  const bool fits_blas = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX;

  // [batch..., m, k] @ [k, n] with b broadcast over the batch and a's rows evenly spaced
  // (its batch axes and m merge into one axis, in order): one gemm with batch * m rows, as
  // for a dense layer applied to a sequence.
  if constexpr (blas) {
    bool shared = fits_blas && batch > 1 && batch * m <= INT_MAX;
    for (int d = 0; d < nb; ++d) shared = shared && (b_l.strides[d] == 0 || b_l.shape[d] == 1);
    i64 sr = 0, span = 1;  // stride and length of the merged row axis so far (inner first)
    for (int d = nb; d >= 0 && shared; --d) {
      if (a_l.shape[d] == 1) continue;
      if (span == 1) sr = a_l.strides[d];
      else shared = a_l.strides[d] == sr * span;
      span *= a_l.shape[d];
    }
    if (shared && sr > 0) {
      const BlasMatrix am = blas_matrix(batch * m, k, sr, as_k);
      if (am.ok && am.trans == CblasNoTrans) {
        set_blas_threads(num_threads());
        gemm_strided(out, a, batch * m, k, sr, as_k, b, n, bs_k, bs_n);
        return;
      }
    }
  }

  Layout batch_l;  // the batch odometer: a's and b's offsets per batch index
  batch_l.rank = nb;
  for (int d = 0; d < nb; ++d) batch_l.shape[d] = a_l.shape[d];
  std::vector<i64> a_off(static_cast<std::size_t>(batch)), b_off(static_cast<std::size_t>(batch));
  {
    i64 idx[kMaxRank] = {};
    for (i64 t = 0; t < batch; ++t) {
      i64 ao = 0, bo = 0;
      for (int d = 0; d < nb; ++d) {
        ao += idx[d] * a_l.strides[d];
        bo += idx[d] * b_l.strides[d];
      }
      a_off[t] = ao;
      b_off[t] = bo;
      for (int d = nb - 1; d >= 0; --d) {
        if (++idx[d] < batch_l.shape[d]) break;
        idx[d] = 0;
      }
    }
  }
  auto one = [&](i64 t) {
    T* c = out + t * m * n;
    if constexpr (blas) {
      if (fits_blas) {
        gemm_strided(c, a + a_off[t], m, k, as_m, as_k, b + b_off[t], n, bs_k, bs_n);
        return;
      }
    }
    matmul_loop(c, a + a_off[t], m, k, as_m, as_k, b + b_off[t], n, bs_k, bs_n);
  };
  const i64 flops = m * n * k;
  const bool split_batches = batch > 1 && (!blas || !fits_blas || flops < kSmallGemm);
  const int nt = split_batches ? threads_for(batch * flops, batch) : 1;
  if (blas) set_blas_threads(split_batches ? 1 : num_threads());
  if (nt <= 1) {
    for (i64 t = 0; t < batch; ++t) one(t);
    return;
  }
  detail::parallel_for(nt, [&](int c) {
    for (i64 t = batch * c / nt, e = batch * (c + 1) / nt; t < e; ++t) one(t);
  });
}

// ---- random ----------------------------------------------------------------------------

// out[i] = g(i) for i < n, split over threads (every element depends only on i).
template <class T, class G>
void generate(T* out, i64 n, const G& g) {
  const int nt = threads_for(n * kHeavyCost, n / 64 + 1);
  if (nt <= 1) {
    for (i64 i = 0; i < n; ++i) out[i] = g(i);
    return;
  }
  detail::parallel_for(nt, [&](int c) {
    for (i64 i = chunk_begin(n, c, nt), e = chunk_begin(n, c + 1, nt); i < e; ++i) out[i] = g(i);
  });
}

}  // namespace

std::vector<std::string> isas() {
  std::vector<std::string> keys;
  for (const IsaBuild& b : kIsaBuilds)
    if (b.supported()) keys.emplace_back(b.key);
  return keys;
}

std::string isa() {
  const IsaBuild& b = current_isa();
  return std::string(b.key) + " (" + b.table().name + ")";
}

bool set_isa(const std::string& key) {
  const IsaBuild* b = find_isa(key);
  if (b == nullptr) return false;
  g_isa.store(b, std::memory_order_release);
  return true;
}

void set_num_threads(int n) {
  const int hw = hardware_threads();
  g_num_threads.store(n <= 0 ? hw : std::min(n, hw), std::memory_order_relaxed);
}

int num_threads() {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : default_threads();
}

template <class T>
void unary(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l, double p0, double p1) {
  visit_op<OpKind::Unary>(op, [&](auto tag) {
    constexpr OpId o = decltype(tag)::value;
    const UnaryFn<o> f;
    const Layout* ls[2] = {&out_l, &in_l};
    const Plan<2> p = make_plan(ls);
    const i64 so = p.strides[0][p.rank - 1], si = p.strides[1][p.rank - 1];
    if (p.rank == 1 && so == 1 && si == 1 &&
        stream_flat(out, p.size, is_heavy(o) ? kHeavyCost : 1,
                    [&](T* buf, i64 i, i64 len) { unary_contiguous<o>(buf, in + i, len, p0, p1); })) {
      return;
    }
    for_each_run(p, is_heavy(o) ? kHeavyCost : 1, [&](const i64* off, i64 n) {
      T* y = out + off[0];
      const T* x = in + off[1];
      if (so == 1 && si == 1) {
        unary_contiguous<o>(y, x, n, p0, p1);
      } else if (si == 0) {
        const T v = f(*x, p0, p1);
        for (i64 i = 0; i < n; ++i) y[i * so] = v;
      } else {
        for (i64 i = 0; i < n; ++i) y[i * so] = f(x[i * si], p0, p1);
      }
    });
  });
}

// Binary ops on [rows, n] with short rows (n < kShortRow) and a dense output, each input
// dense, one repeated row (strides [0, 1]: a bias) or one element per row ([s, 0]): a run per
// row costs more than its n elements ([43264, 32] + [32]: 440 us against 200 us for x + x),
// so blocks of whole rows go through one flat loop, the repeated inputs expanded into tiles
// first. Returns false (nothing done) where it does not apply.
constexpr i64 kShortRow = 256;
constexpr i64 kRowTile = 1024;  // elements per flat loop

// y[i] = op(u[i * su], v[i * sv]) with su, sv each 0 or 1
template <OpId op, class T>
TAPEFLOW_VECTOR_CLONES void binary_contiguous(T* y, const T* u, i64 su, const T* v, i64 sv, i64 n) {
  if constexpr (op == OpId::Pow && std::is_same_v<T, float>) {
    if (const auto pow = math<float>().pow) {
      pow(y, u, su, v, sv, n, &scalar_powf);
      return;
    }
  }
  const BinaryFn<op> f;
  if (su == 1 && sv == 1) {
    for (i64 i = 0; i < n; ++i) y[i] = f(u[i], v[i]);
  } else if (su == 1) {
    const T s = *v;
    for (i64 i = 0; i < n; ++i) y[i] = f(u[i], s);
  } else if (sv == 1) {
    const T s = *u;
    for (i64 i = 0; i < n; ++i) y[i] = f(s, v[i]);
  } else {
    const T r = f(*u, *v);
    for (i64 i = 0; i < n; ++i) y[i] = r;
  }
}

template <OpId op, class T>
bool binary_short_rows(const Plan<3>& p, T* out, const T* a, const T* b, i64 cost) {
  if (p.rank != 2 || p.size == 0 || p.shape[1] >= kShortRow) return false;
  const i64 rows = p.shape[0], n = p.shape[1];
  if (p.strides[0][0] != n || p.strides[0][1] != 1) return false;
  enum class Kind { kDense, kRow, kColumn };
  Kind kinds[2];
  for (int k = 0; k < 2; ++k) {
    const i64 s0 = p.strides[k + 1][0], s1 = p.strides[k + 1][1];
    if (s0 == n && s1 == 1) kinds[k] = Kind::kDense;
    else if (s0 == 0 && s1 == 1) kinds[k] = Kind::kRow;
    else if (s1 == 0) kinds[k] = Kind::kColumn;
    else return false;
  }
  const T* in[2] = {a, b};
  const i64 block = kRowTile / n;  // rows per flat loop (n < kShortRow, so at least 4)
  for_rows(rows, p.size * cost, [&](i64 r0, i64 r1) {
    alignas(64) T tile[2][kRowTile];
    const T* src[2] = {nullptr, nullptr};
    for (int k = 0; k < 2; ++k) {
      if (kinds[k] != Kind::kRow) continue;
      for (i64 j = 0; j < block; ++j) std::copy(in[k], in[k] + n, tile[k] + j * n);
      src[k] = tile[k];
    }
    for (i64 r = r0; r < r1; r += block) {
      const i64 rb = std::min(block, r1 - r), m = rb * n;
      for (int k = 0; k < 2; ++k) {
        if (kinds[k] == Kind::kDense) {
          src[k] = in[k] + r * n;
        } else if (kinds[k] == Kind::kColumn) {
          const i64 s0 = p.strides[k + 1][0];
          for (i64 j = 0; j < rb; ++j) std::fill_n(tile[k] + j * n, n, in[k][(r + j) * s0]);
          src[k] = tile[k];
        }
      }
      binary_contiguous<op>(out + r * n, src[0], 1, src[1], 1, m);
    }
  });
  return true;
}

template <class T>
void binary(OpId op, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b,
            const Layout& b_l) {
  visit_op<OpKind::Binary>(op, [&](auto tag) {
    constexpr OpId o = decltype(tag)::value;
    const BinaryFn<o> f;
    const Layout* ls[3] = {&out_l, &a_l, &b_l};
    const Plan<3> p = make_plan(ls);
    const i64 so = p.strides[0][p.rank - 1], sa = p.strides[1][p.rank - 1], sb = p.strides[2][p.rank - 1];
    if (p.rank == 1 && so == 1 && sa == 1 && sb == 1 &&
        stream_flat(out, p.size, is_heavy(o) ? kHeavyCost : 1,
                    [&](T* buf, i64 i, i64 len) { binary_contiguous<o>(buf, a + i, 1, b + i, 1, len); })) {
      return;
    }
    if (binary_short_rows<o>(p, out, a, b, is_heavy(o) ? kHeavyCost : 1)) return;
    for_each_run(p, is_heavy(o) ? kHeavyCost : 1, [&](const i64* off, i64 n) {
      T* y = out + off[0];
      const T* u = a + off[1];
      const T* v = b + off[2];
      if (so == 1 && (sa == 1 || sa == 0) && (sb == 1 || sb == 0)) {
        binary_contiguous<o>(y, u, sa, v, sb, n);
      } else {
        for (i64 i = 0; i < n; ++i) y[i * so] = f(u[i * sa], v[i * sb]);
      }
    });
  });
}

// y[i] = op(u[i], v[i * sv]) with sv 0 or 1
template <OpId op, class T>
TAPEFLOW_VECTOR_CLONES void compare_contiguous(bool* y, const T* u, const T* v, i64 sv, i64 n) {
  const CompareFn<op> f;
  if (sv == 1) {
    for (i64 i = 0; i < n; ++i) y[i] = f(u[i], v[i]);
  } else {
    const T s = *v;
    for (i64 i = 0; i < n; ++i) y[i] = f(u[i], s);
  }
}

template <class T>
void compare(OpId op, bool* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b,
             const Layout& b_l) {
  visit_op<OpKind::Compare, OpKind::Logical>(op, [&](auto tag) {
    const CompareFn<decltype(tag)::value> f;
    const Layout* ls[3] = {&out_l, &a_l, &b_l};
    const Plan<3> p = make_plan(ls);
    const i64 so = p.strides[0][p.rank - 1], sa = p.strides[1][p.rank - 1], sb = p.strides[2][p.rank - 1];
    for_each_run(p, 1, [&](const i64* off, i64 n) {
      bool* y = out + off[0];
      const T* u = a + off[1];
      const T* v = b + off[2];
      if (so == 1 && sa == 1 && (sb == 1 || sb == 0)) {
        compare_contiguous<decltype(tag)::value>(y, u, v, sb, n);
      } else {
        for (i64 i = 0; i < n; ++i) y[i * so] = f(u[i * sa], v[i * sb]);
      }
    });
  });
}

template <class T>
void where(T* out, const Layout& out_l, const bool* cond, const Layout& cond_l, const T* a,
           const Layout& a_l, const T* b, const Layout& b_l) {
  const Layout* ls[4] = {&out_l, &cond_l, &a_l, &b_l};
  const Plan<4> p = make_plan(ls);
  const int r = p.rank - 1;
  const i64 so = p.strides[0][r], sc = p.strides[1][r], sa = p.strides[2][r], sb = p.strides[3][r];
  for_each_run(p, 1, [&](const i64* off, i64 n) {
    T* y = out + off[0];
    const bool* c = cond + off[1];
    const T* u = a + off[2];
    const T* v = b + off[3];
    if (so == 1 && sc == 1 && sa == 1 && sb == 1) {
      where_contiguous(y, c, u, v, n);
    } else if (so == 1 && sc == 1 && sa == 1 && sb == 0) {
      where_contiguous<T, false, true>(y, c, u, v, n);
    } else if (so == 1 && sc == 1 && sa == 0 && sb == 1) {
      where_contiguous<T, true, false>(y, c, u, v, n);
    } else {
      for (i64 i = 0; i < n; ++i) y[i * so] = c[i * sc] ? u[i * sa] : v[i * sb];
    }
  });
}

template <class TO, class TI>
void copy(TO* out, const Layout& out_l, const TI* in, const Layout& in_l) {
  const Layout* ls[2] = {&out_l, &in_l};
  const Plan<2> p = make_plan(ls);
  if (copy_transposed(out, in, p)) return;
  const i64 so = p.strides[0][p.rank - 1], si = p.strides[1][p.rank - 1];
  if (p.rank == 1 && so == 1 && si == 1 && static_cast<const void*>(out) != static_cast<const void*>(in) &&
      stream_flat(out, p.size, 1, [&](TO* buf, i64 i, i64 len) {
        convert_run(buf, in + i, len);
      })) {
    return;
  }
  for_each_run(p, 1, [&](const i64* off, i64 n) {
    TO* y = out + off[0];
    const TI* x = in + off[1];
    if (so == 1 && si == 1) {
      if constexpr (std::is_same_v<TO, TI>) {
        if (y != x) std::memmove(y, x, static_cast<std::size_t>(n) * sizeof(TO));
      } else {
        convert_run(y, x, n);
      }
    } else if (si == 0) {
      const TO v = convert<TO>(*x);
      for (i64 i = 0; i < n; ++i) y[i * so] = v;
    } else {
      for (i64 i = 0; i < n; ++i) y[i * so] = convert<TO>(x[i * si]);
    }
  });
}

template <class T>
void fill(T* out, const Layout& out_l, T value) {
  const Layout* ls[1] = {&out_l};
  const Plan<1> p = make_plan(ls);
  const i64 so = p.strides[0][p.rank - 1];
  for_each_run(p, 1, [&](const i64* off, i64 n) {
    T* y = out + off[0];
    if (so == 1) {
      std::fill_n(y, n, value);
    } else {
      for (i64 i = 0; i < n; ++i) y[i * so] = value;
    }
  });
}

template <class T>
void reduce(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l) {
  if (op == OpId::Sum) reduce_impl<OpId::Sum>(out, out_l, in, in_l);
  else if (op == OpId::Max) reduce_impl<OpId::Max>(out, out_l, in, in_l);
  else if (op == OpId::Min) reduce_impl<OpId::Min>(out, out_l, in, in_l);
  else if (op == OpId::Prod) reduce_impl<OpId::Prod>(out, out_l, in, in_l);
}

template <class T>
void arg_reduce(OpId op, std::int64_t* out, const T* in, const Layout& in_l, int axis) {
  if (op == OpId::ArgMax) arg_reduce_impl<OpId::ArgMax>(out, in, in_l, axis);
  else if (op == OpId::ArgMin) arg_reduce_impl<OpId::ArgMin>(out, in, in_l, axis);
}

template <class T>
void argsort(std::int64_t* out, const T* in, const Layout& in_l, int axis, bool descending) {
  argsort_impl<T>(out, in, in_l, axis, descending);
}

template <class T>
void matmul(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  matmul_impl(out, a, a_l, b, b_l);
}

template <class T>
void gather(T* out, const Layout& out_l, const T* in, const Layout& in_l, const std::int64_t* idx,
            const Layout& idx_l, int axis) {
  // walk the output's shape; the input moves along `axis` only through the index
  Layout src_l = in_l;
  src_l.shape[axis] = out_l.shape[axis];
  src_l.strides[axis] = 0;
  const i64 step = in_l.strides[axis];
  const u64 len = static_cast<u64>(in_l.shape[axis]);  // an index out of range gives 0 (kernel_api.inc)
  const Layout* ls[3] = {&out_l, &idx_l, &src_l};
  const Plan<3> p = make_plan(ls);
  const int r = p.rank - 1;
  const i64 so = p.strides[0][r], si = p.strides[1][r], sx = p.strides[2][r];
  if (p.rank == 2 && si == 0 && so == 1 && sx == 1) {
    // rows of a take (an embedding lookup): one index per contiguous output row, copied in a
    // plain loop over the rows; the walk below cost narrow rows ([N, 16] floats) nearly twice
    const i64 rows = p.shape[0], n = p.shape[1];
    const i64 ro = p.strides[0][0], ri = p.strides[1][0], rx = p.strides[2][0];
    for_rows(rows, rows * n * 2, [&](i64 begin, i64 end) {
      for (i64 row = begin; row < end; ++row) {
        T* y = out + row * ro;
        const i64 k = idx[row * ri];
        if (static_cast<u64>(k) < len) std::memcpy(y, in + row * rx + k * step, static_cast<std::size_t>(n) * sizeof(T));
        else std::fill(y, y + n, T(0));
      }
    });
    return;
  }
  for_each_run(p, 2, [&](const i64* off, i64 n) {
    T* y = out + off[0];
    const i64* ix = idx + off[1];
    const T* x = in + off[2];
    if (si == 0 && so == 1 && sx == 1) {  // one index for the run: whole rows (a batch's take)
      if (static_cast<u64>(ix[0]) < len) std::copy(x + ix[0] * step, x + ix[0] * step + n, y);
      else std::fill(y, y + n, T(0));
    } else {
      for (i64 j = 0; j < n; ++j) {
        const i64 k = ix[j * si];
        y[j * so] = static_cast<u64>(k) < len ? x[j * sx + k * step] : T(0);
      }
    }
  });
}

namespace {
// serial: duplicate indices make any split along `axis` race
template <class T, class Combine>
void scatter_with(Combine combine, T* out, const Layout& out_l, const T* src, const Layout& src_l,
                  const std::int64_t* idx, const Layout& idx_l, int axis) {
  Layout dst_l = out_l;
  dst_l.shape[axis] = src_l.shape[axis];
  dst_l.strides[axis] = 0;
  const i64 step = out_l.strides[axis];
  const u64 len = static_cast<u64>(out_l.shape[axis]);
  const Layout* ls[3] = {&src_l, &idx_l, &dst_l};
  const Plan<3> p = make_plan(ls);
  if (p.size == 0) return;
  const int r = p.rank - 1;
  const i64 ss = p.strides[0][r], si = p.strides[1][r], sy = p.strides[2][r];
  run_range(p, 0, p.size, [&](const i64* off, i64 n) {
    const T* x = src + off[0];
    const i64* ix = idx + off[1];
    T* y = out + off[2];
    for (i64 j = 0; j < n; ++j) {
      const i64 k = ix[j * si];
      if (static_cast<u64>(k) >= len) continue;  // dropped (kernel_api.inc)
      T& dst = y[j * sy + k * step];
      dst = combine(dst, x[j * ss]);
    }
  });
}
}  // namespace

template <class T>
void scatter_reduce(OpId op, T* out, const Layout& out_l, const T* src, const Layout& src_l,
                    const std::int64_t* idx, const Layout& idx_l, int axis) {
  switch (op) {
    case OpId::Add:
      return scatter_with([](T a, T b) { return wrap_add(a, b); }, out, out_l, src, src_l, idx, idx_l, axis);
    case OpId::Maximum: return scatter_with(BinaryFn<OpId::Maximum>{}, out, out_l, src, src_l, idx, idx_l, axis);
    case OpId::Minimum: return scatter_with(BinaryFn<OpId::Minimum>{}, out, out_l, src, src_l, idx, idx_l, axis);
    default:
      throw std::invalid_argument(std::string("cpu scatter_reduce: not add, maximum or minimum: ") + op_name(op));
  }
}

template <class T>
void scatter_add(T* out, const Layout& out_l, const T* src, const Layout& src_l,
                 const std::int64_t* idx, const Layout& idx_l, int axis) {
  scatter_reduce<T>(OpId::Add, out, out_l, src, src_l, idx, idx_l, axis);
}

// im2col when the pixels are packed (unit channel stride) and a window row's kw * c = kKwc
// elements are few (the first layer of a convnet: 1 or 3 channels): tap row by tap row, the
// row's bounds and start once, then a copy of known length per window (the general loop took
// about 3 ns a window row, a copy of 3 floats included).
template <i64 kKwc, class T>
void im2col_short(T* out, const T* in, const Layout& in_l, const Window2d& w, T fill) {
  const i64 h = in_l.shape[1], wd = in_l.shape[2], c = in_l.shape[3];
  const i64 sb = in_l.strides[0], sh = in_l.strides[1];
  const i64 step = w.kh * kKwc, row_len = w.ow * step, xstep = w.stride * c;
  // [j_lo, j_hi): the windows whose columns all lie inside the image
  const i64 j_lo = std::min(w.ow, (w.pad_left + w.stride - 1) / w.stride);
  const i64 last = wd + w.pad_left - w.kw;  // the last window's leftmost column, padded
  const i64 j_hi = std::max(j_lo, std::min(w.ow, last < 0 ? i64(0) : last / w.stride + 1));
  for_rows(in_l.shape[0] * w.oh, in_l.shape[0] * w.oh * row_len, [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) {
      const i64 n = r / w.oh, i = r % w.oh;
      for (i64 di = 0; di < w.kh; ++di) {
        T* y = out + r * row_len + di * kKwc;
        const i64 row = i * w.stride - w.pad_top + di;
        if (row < 0 || row >= h) {
          for (i64 j = 0; j < w.ow; ++j) std::fill_n(y + j * step, kKwc, fill);
          continue;
        }
        const T* xr = in + n * sb + row * sh;
        auto edge = [&](i64 j) {
          for (i64 dj = 0; dj < w.kw; ++dj) {
            const i64 col = j * w.stride - w.pad_left + dj;
            for (i64 k = 0; k < c; ++k) y[j * step + dj * c + k] = col < 0 || col >= wd ? fill : xr[col * c + k];
          }
        };
        for (i64 j = 0; j < j_lo; ++j) edge(j);
        const T* x = xr + (j_lo * w.stride - w.pad_left) * c;
        T* yj = y + j_lo * step;
        for (i64 j = j_lo; j < j_hi; ++j, x += xstep, yj += step)
          for (i64 k = 0; k < kKwc; ++k) yj[k] = x[k];
        for (i64 j = j_hi; j < w.ow; ++j) edge(j);
      }
    }
  });
}

template <class T>
void im2col(T* out, const T* in, const Layout& in_l, const Window2d& w, T fill) {
  const i64 h = in_l.shape[1], wd = in_l.shape[2], c = in_l.shape[3];
  const i64 sb = in_l.strides[0], sh = in_l.strides[1], sw = in_l.strides[2], sc = in_l.strides[3];
  const i64 row_len = w.ow * w.kh * w.kw * c;  // output elements per window row (n, i)
  // with unit channel stride, packed pixels and undilated windows, a window row's kw taps are
  // kw * c elements in a row in the input as in the output: one copy
  const bool packed = sc == 1 && sw == c && w.dilation == 1;
  switch (packed ? w.kw * c : 0) {
    case 1: return im2col_short<1>(out, in, in_l, w, fill);
    case 2: return im2col_short<2>(out, in, in_l, w, fill);
    case 3: return im2col_short<3>(out, in, in_l, w, fill);
    case 4: return im2col_short<4>(out, in, in_l, w, fill);
    case 5: return im2col_short<5>(out, in, in_l, w, fill);
    case 6: return im2col_short<6>(out, in, in_l, w, fill);
    case 7: return im2col_short<7>(out, in, in_l, w, fill);
    case 9: return im2col_short<9>(out, in, in_l, w, fill);
    case 15: return im2col_short<15>(out, in, in_l, w, fill);
    default: break;
  }
  auto copy_run = [&](T* y, const T* x, i64 len) {
    if (sc == 1) {
      for (i64 k = 0; k < len; ++k) y[k] = x[k];
    } else {
      for (i64 k = 0; k < len; ++k) y[k] = x[k * sc];
    }
  };
  // output rows (n, i): [n, i, :, :, :] is row_len elements in a row
  for_rows(in_l.shape[0] * w.oh, in_l.shape[0] * w.oh * row_len, [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) {
      const i64 n = r / w.oh, i = r % w.oh;
      T* y = out + r * row_len;
      for (i64 j = 0; j < w.ow; ++j) {
        const i64 col0 = j * w.stride - w.pad_left;
        for (i64 di = 0; di < w.kh; ++di) {
          const i64 row = i * w.stride - w.pad_top + di * w.dilation;
          if (row < 0 || row >= h) {
            std::fill_n(y, w.kw * c, fill);
          } else if (packed && col0 >= 0 && col0 + w.kw <= wd) {
            copy_run(y, in + n * sb + row * sh + col0 * sw, w.kw * c);
          } else {
            for (i64 dj = 0; dj < w.kw; ++dj) {
              const i64 col = col0 + dj * w.dilation;
              if (col < 0 || col >= wd) {
                std::fill_n(y + dj * c, c, fill);
              } else {
                copy_run(y + dj * c, in + n * sb + row * sh + col * sw, c);
              }
            }
          }
          y += w.kw * c;
        }
      }
    }
  });
}

// col2im's image n: o (zeroed here) gets every window's entries of in added, in order
template <class T>
TAPEFLOW_VECTOR_CLONES void col2im_image(T* o, const Layout& out_l, const T* in, const Layout& in_l,
                                         const Window2d& w) {
  const i64 h = out_l.shape[1], wd = out_l.shape[2], c = out_l.shape[3], image = h * wd * c;
  const i64 s1 = in_l.strides[1], s2 = in_l.strides[2], st = in_l.strides[3], sc = in_l.strides[4];
  std::fill_n(o, image, T(0));
  for (i64 i = 0; i < w.oh; ++i) {
    for (i64 j = 0; j < w.ow; ++j) {
      for (i64 di = 0; di < w.kh; ++di) {
        const i64 row = i * w.stride - w.pad_top + di * w.dilation;
        if (row < 0 || row >= h) continue;
        for (i64 dj = 0; dj < w.kw; ++dj) {
          const i64 col = j * w.stride - w.pad_left + dj * w.dilation;
          if (col < 0 || col >= wd) continue;
          T* y = o + (row * wd + col) * c;
          const T* x = in + i * s1 + j * s2 + (di * w.kw + dj) * st;
          if (sc == 1) {
            for (i64 k = 0; k < c; ++k) y[k] = wrap_add(y[k], x[k]);
          } else {
            for (i64 k = 0; k < c; ++k) y[k] = wrap_add(y[k], x[k * sc]);
          }
        }
      }
    }
  }
}

template <class T>
void col2im(T* out, const Layout& out_l, const T* in, const Layout& in_l, const Window2d& w) {
  const i64 image = out_l.shape[1] * out_l.shape[2] * out_l.shape[3];
  // One image per thread, its windows added in order: `in` is read front to back (a gather
  // into each pixel read it in kh * kw places at once and waited on memory), the image being
  // added to stays in cache, and every pixel sums in increasing (i, j) order, as the naive
  // kernel does.
  for_rows(out_l.shape[0], out_l.size() * w.kh * w.kw, [&](i64 n0, i64 n1) {
    for (i64 n = n0; n < n1; ++n) col2im_image(out + n * image, out_l, in + n * in_l.strides[0], in_l, w);
  });
}

namespace {
constexpr i64 kPoolChannels = 64;

// Max pooling's scan over window (n, i, j) of x for channels [c0, c0 + cn) (cn <= kPoolChannels):
// each channel's first maximum best[k] and, when kTaps, its tap tap[k] = di * kw + dj. kUnit:
// x's channel stride is 1 (the loops over channels vectorise). False when the window has no
// position inside the image.
template <bool kUnit, bool kTaps, class T>
TAPEFLOW_VECTOR_CLONES bool pool_scan(const T* x, const Layout& x_l, const Window2d& w, i64 n, i64 i, i64 j, i64 c0,
                                      i64 cn, T* best, std::int32_t* tap) {
  const i64 s3 = kUnit ? 1 : x_l.strides[3];
  const i64 top = i * w.stride - w.pad_top, left = j * w.stride - w.pad_left;
  const i64 row_end = std::min(top + w.kh, x_l.shape[1]), col_end = std::min(left + w.kw, x_l.shape[2]);
  bool found = false;
  for (i64 row = std::max<i64>(top, 0); row < row_end; ++row) {
    for (i64 col = std::max<i64>(left, 0); col < col_end; ++col) {
      const T* p = x + n * x_l.strides[0] + row * x_l.strides[1] + col * x_l.strides[2] + c0 * s3;
      const auto t = static_cast<std::int32_t>((row - top) * w.kw + (col - left));
      if (!found) {
        for (i64 k = 0; k < cn; ++k) best[k] = p[k * s3];
        if constexpr (kTaps) std::fill_n(tap, cn, t);
        found = true;
        continue;
      }
      for (i64 k = 0; k < cn; ++k) {
        const T v = p[k * s3];
        const bool takes = max_scan_takes(v, best[k]);
        best[k] = takes ? v : best[k];
        if constexpr (kTaps) tap[k] = takes ? t : tap[k];
      }
    }
  }
  return found;
}

// Offsets of the taps t = di * kw + dj from a window's top-left corner, in a layout whose rows
// and columns are row_step and col_step apart.
std::vector<i64> tap_offsets(const Window2d& w, i64 row_step, i64 col_step) {
  std::vector<i64> rel(static_cast<std::size_t>(w.kh * w.kw));
  for (i64 di = 0; di < w.kh; ++di)
    for (i64 dj = 0; dj < w.kw; ++dj) rel[static_cast<std::size_t>(di * w.kw + dj)] = di * row_step + dj * col_step;
  return rel;
}
}  // namespace

template <class T>
void pool_select(T* out, const T* x, const Layout& x_l, const T* v, const Layout& v_l, const Window2d& w) {
  const i64 c = x_l.shape[3];
  bool same = x == v;  // max pooling: the maxima themselves
  for (int d = 0; d < 4; ++d) same = same && x_l.strides[d] == v_l.strides[d];
  const bool unit = x_l.strides[3] == 1;
  const std::vector<i64> rel = tap_offsets(w, v_l.strides[1], v_l.strides[2]);
  for_rows(x_l.shape[0] * w.oh, x_l.shape[0] * w.oh * w.ow * c * w.kh * w.kw, [&](i64 r0, i64 r1) {
    T best[kPoolChannels];
    std::int32_t tap[kPoolChannels];
    for (i64 r = r0; r < r1; ++r) {
      const i64 n = r / w.oh, i = r % w.oh;
      for (i64 j = 0; j < w.ow; ++j) {
        T* o = out + (r * w.ow + j) * c;
        for (i64 c0 = 0; c0 < c; c0 += kPoolChannels) {
          const i64 cn = std::min(kPoolChannels, c - c0);
          bool found;
          if (same) {
            found = unit ? pool_scan<true, false>(x, x_l, w, n, i, j, c0, cn, best, tap)
                         : pool_scan<false, false>(x, x_l, w, n, i, j, c0, cn, best, tap);
            if (found) std::copy_n(best, cn, o + c0);
          } else {
            found = unit ? pool_scan<true, true>(x, x_l, w, n, i, j, c0, cn, best, tap)
                         : pool_scan<false, true>(x, x_l, w, n, i, j, c0, cn, best, tap);
            // v's offset at the window's top-left corner (negative when that lies in the padding),
            // then each channel's tap
            const i64 corner = n * v_l.strides[0] + (i * w.stride - w.pad_top) * v_l.strides[1] +
                               (j * w.stride - w.pad_left) * v_l.strides[2];
            if (found) {
              for (i64 k = 0; k < cn; ++k) {
                o[c0 + k] = v[corner + rel[static_cast<std::size_t>(tap[k])] + (c0 + k) * v_l.strides[3]];
              }
            }
          }
          if (!found) std::fill_n(o + c0, cn, T(0));
        }
      }
    }
  });
}

template <class T>
void pool_scatter(T* out, const T* x, const Layout& x_l, const T* g, const Layout& g_l, const Window2d& w) {
  const i64 h = x_l.shape[1], wd = x_l.shape[2], c = x_l.shape[3], image = h * wd * c;
  const bool unit = x_l.strides[3] == 1;
  const std::vector<i64> rel = tap_offsets(w, wd * c, c);
  // one image per thread, its windows in order (as col2im)
  for_rows(x_l.shape[0], x_l.size() + x_l.shape[0] * w.oh * w.ow * c * w.kh * w.kw, [&](i64 n0, i64 n1) {
    T best[kPoolChannels];
    std::int32_t tap[kPoolChannels];
    for (i64 n = n0; n < n1; ++n) {
      T* o = out + n * image;
      std::fill_n(o, image, T(0));
      for (i64 i = 0; i < w.oh; ++i) {
        for (i64 j = 0; j < w.ow; ++j) {
          // the offset of the window's top-left corner (negative when that lies in the padding)
          const i64 corner = ((i * w.stride - w.pad_top) * wd + (j * w.stride - w.pad_left)) * c;
          for (i64 c0 = 0; c0 < c; c0 += kPoolChannels) {
            const i64 cn = std::min(kPoolChannels, c - c0);
            const bool found = unit ? pool_scan<true, true>(x, x_l, w, n, i, j, c0, cn, best, tap)
                                    : pool_scan<false, true>(x, x_l, w, n, i, j, c0, cn, best, tap);
            if (!found) continue;
            const T* gp = g + n * g_l.strides[0] + i * g_l.strides[1] + j * g_l.strides[2] + c0 * g_l.strides[3];
            for (i64 k = 0; k < cn; ++k) {
              T& y = o[corner + rel[static_cast<std::size_t>(tap[k])] + c0 + k];
              y = wrap_add(y, gp[k * g_l.strides[3]]);
            }
          }
        }
      }
    }
  });
}

// Philox on a batch of counters (simd_math.hpp), the same bits as uniform_at.
template <class T>
void uniform(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double low, double high) {
  if (n <= 0) return;
  const simd::MathFns<T>& f = math<T>();
  const T top = static_cast<T>(high), below = std::nextafter(top, static_cast<T>(low));
  const int nt = threads_for(n * kUniformCost, n / 64 + 1);
  detail::parallel_for(nt, [&](int c) {
    const i64 b = chunk_begin(n, c, nt), e = chunk_begin(n, c + 1, nt);
    f.uniform(out + b, e - b, seed, offset + std::uint64_t(b), low, high, top, below);
  });
}

template <class T>
void normal(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double mean, double stddev) {
  generate(out, n, [&](i64 i) { return normal_at<T>(seed, offset + std::uint64_t(i), mean, stddev); });
}

// softmax / log_softmax: contiguous rows (the axis innermost and dense) take three vectorised
// passes per row on the instruction set in use (max; exp and sum; scale, or shift for log);
// other layouts walk the axis with strides.
// Rows of at least kPrefetchRow elements prefetch the next row's input, and for log_softmax
// their own output row, during the exp pass; shorter rows leave it to the hardware.
constexpr i64 kPrefetchRow = 256;

template <class T>
void softmax_row(bool log, T* y, const T* x, i64 len, const T* next) {
  const simd::MathFns<T>& f = math<T>();
  const T m = f.row_max(x, len);
  const bool pf = len >= kPrefetchRow;
  if (!log) {
    f.scale(y, len, T(1) / f.exp_sum(y, x, len, m, pf ? next : nullptr, nullptr));
  } else {
    // (x - m) - log(total), in this order: m + log(total) would round away the small part
    const T total = f.exp_sum(nullptr, x, len, m, pf ? next : nullptr, pf ? y : nullptr);
    f.shift2(y, x, len, m, std::log(total));
  }
}

template <class T>
void softmax(bool log, T* out, const T* in, const Layout& in_l, int axis) {
  const i64 len = in_l.shape[axis];
  if (len == 0) return;
  const i64 groups = in_l.size() / len;
  const bool rows = axis == in_l.rank - 1 && in_l.strides[axis] == 1;
  const int nt = threads_for(in_l.size() * kHeavyCost, groups);
  if (rows) {
    // the other axes give each row's start
    Layout outer = in_l;
    outer.rank = in_l.rank - 1;
    auto row_start = [&](i64 g) {
      i64 off = 0;
      for (int d = outer.rank - 1; d >= 0; --d) {
        off += g % outer.shape[d] * outer.strides[d];
        g /= outer.shape[d];
      }
      return off;
    };
    detail::parallel_for(nt, [&](int c) {
      const i64 b = groups * c / nt, e = groups * (c + 1) / nt;
      i64 off = b < e ? row_start(b) : 0;
      for (i64 g = b; g < e; ++g) {
        const bool last = g + 1 == e;
        const i64 next = last ? 0 : row_start(g + 1);
        softmax_row(log, out + g * len, in + off, len, last ? nullptr : in + next);
        off = next;
      }
    });
    return;
  }
  naive::softmax<T>(log, out, in, in_l, axis);
}

// The optimizers' fused update: out = out + value * (a op b), one pass over the three.
template <class T>
void addc(bool divide, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b,
          const Layout& b_l, T value) {
  auto update = [&](auto div) {
    const Layout* ls[3] = {&out_l, &a_l, &b_l};
    const Plan<3> p = make_plan(ls);
    const i64 so = p.strides[0][p.rank - 1], sa = p.strides[1][p.rank - 1], sb = p.strides[2][p.rank - 1];
    auto q = [](T u, T v) { return decltype(div)::value ? u / v : u * v; };
    for_each_run(p, 1, [&](const i64* off, i64 n) {
      T* y = out + off[0];
      const T* u = a + off[1];
      const T* v = b + off[2];
      if (so == 1 && sa == 1 && sb == 1) {
        for (i64 i = 0; i < n; ++i) y[i] = y[i] + value * q(u[i], v[i]);
      } else {
        for (i64 i = 0; i < n; ++i) y[i * so] = y[i * so] + value * q(u[i * sa], v[i * sb]);
      }
    });
  };
  if (divide) update(std::true_type{});
  else update(std::false_type{});
}

// ---- explicit instantiations ----
#include "tapeflow/kernels/kernel_instantiations.inc"

}  // namespace tapeflow::kernels::cpu
