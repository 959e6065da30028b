#pragma once
// The CPU kernels whose cost is arithmetic, not memory traffic: exp, log, sqrt, tanh and
// sigmoid over contiguous runs, and the passes of softmax rows. They are compiled once per
// instruction set (simd_math_<isa>.cpp, each TU with its own -m flags and xsimd's default_arch
// for those flags) and chosen at run time (cpu_kernels.cpp), so a portable build still runs
// AVX2+FMA or AVX-512 code where the CPU has it: xsimd's exp on SSE2 emulates rounding and
// costs 4 to 8 times what it costs there.
//
// Only xsimd batch code and plain loops live here, no scalar math calls: a TU compiled with
// -mavx2 must define no inline function that another TU could share, or a CPU without AVX2
// might run it. Every template takes the architecture as a parameter, so each TU's
// instantiations are its own symbols (the cpu_isa_symbols test checks the objects).
#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels::cpu::simd {

using i64 = std::int64_t;

// The table one instruction set fills; cpu_kernels.cpp calls through the chosen one.
template <class T>
struct MathFns {
  void (*exp)(T* y, const T* x, i64 n);
  void (*log)(T* y, const T* x, i64 n);
  void (*sqrt)(T* y, const T* x, i64 n);
  void (*tanh)(T* y, const T* x, i64 n);
  void (*sigmoid)(T* y, const T* x, i64 n);
  // max of x[0..n) (n > 0); NaN anywhere gives NaN
  T (*row_max)(const T* x, i64 n);
  // sum of exp(x[i] - shift), also written to y[i] unless y is null
  T (*exp_sum)(T* y, const T* x, i64 n, T shift);
  // y[i] *= c
  void (*scale)(T* y, i64 n, T c);
  // y[i] = (x[i] - a) - b, in this order
  void (*shift2)(T* y, const T* x, i64 n, T a, T b);
};

struct MathTable {
  const char* name;  // xsimd's name of the architecture: "sse2", "fma3+avx2", "avx512bw", ...
  MathFns<float> f32;
  MathFns<double> f64;
};

// One per TU that is built (CMake defines TAPEFLOW_SIMD_AVX2 / _AVX512 for cpu_kernels.cpp).
const MathTable& table_baseline();
const MathTable& table_avx2();
const MathTable& table_avx512();

template <class A, OpId op, class T>
xsimd::batch<T, A> unary_batch(const xsimd::batch<T, A>& x) {
  using B = xsimd::batch<T, A>;
  if constexpr (op == OpId::Exp) return xsimd::exp(x);
  else if constexpr (op == OpId::Log) return xsimd::log(x);
  else if constexpr (op == OpId::Sqrt) return xsimd::sqrt(x);
  else if constexpr (op == OpId::Tanh) return xsimd::tanh(x);
  else {
    static_assert(op == OpId::Sigmoid);
    // the functor's stable form: exp(-|x|) never overflows
    const B e = xsimd::exp(-xsimd::abs(x));
    const B one(T(1));
    return xsimd::select(x >= B(T(0)), one, e) / (one + e);
  }
}

// The last partial batch of x[i..n), padded with `pad`.
template <class A, class T>
xsimd::batch<T, A> load_tail(const T* x, i64 i, i64 n, T pad) {
  constexpr i64 W = static_cast<i64>(xsimd::batch<T, A>::size);
  alignas(64) T buf[W];
  for (i64 j = 0; j < W; ++j) buf[j] = i + j < n ? x[i + j] : pad;
  return xsimd::batch<T, A>::load_aligned(buf);
}

// y[i] = op(x[i]); the tail goes through a padded batch, so an element's value never depends
// on where a run (or a thread's chunk) starts.
template <class A, OpId op, class T>
void unary_run(T* y, const T* x, i64 n) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  i64 i = 0;
  for (; i + W <= n; i += W) unary_batch<A, op>(B::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) {
    alignas(64) T buf[W];
    unary_batch<A, op>(load_tail<A>(x, i, n, T(1))).store_aligned(buf);
    for (i64 j = 0; i + j < n; ++j) y[i + j] = buf[j];
  }
}

template <class A, class T>
T row_max(const T* x, i64 n) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  B m(x[0]);
  auto nan = xsimd::isnan(m);  // xsimd::max may drop NaN, so NaN is tracked on the side
  i64 i = 0;
  for (; i + W <= n; i += W) {
    const B v = B::load_unaligned(x + i);
    m = xsimd::max(m, v);
    nan = nan | xsimd::isnan(v);
  }
  if (i < n) {
    const B v = load_tail<A>(x, i, n, x[0]);  // x[0] is in m already
    m = xsimd::max(m, v);
    nan = nan | xsimd::isnan(v);
  }
  if (xsimd::any(nan)) return std::numeric_limits<T>::quiet_NaN();
  alignas(64) T lanes[W];
  m.store_aligned(lanes);
  T r = lanes[0];
  for (i64 j = 1; j < W; ++j) r = lanes[j] > r ? lanes[j] : r;
  return r;
}

template <class A, class T>
T exp_sum(T* y, const T* x, i64 n, T shift) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  const B s(shift);
  B acc(T(0));
  i64 i = 0;
  for (; i + W <= n; i += W) {
    const B e = xsimd::exp(B::load_unaligned(x + i) - s);
    if (y != nullptr) e.store_unaligned(y + i);
    acc += e;
  }
  if (i < n) {
    // padded with -inf, whose exp is 0 (a shift of -inf or NaN makes every lane NaN anyway)
    const B e = xsimd::exp(load_tail<A>(x, i, n, -std::numeric_limits<T>::infinity()) - s);
    if (y != nullptr) {
      alignas(64) T buf[W];
      e.store_aligned(buf);
      for (i64 j = 0; i + j < n; ++j) y[i + j] = buf[j];
    }
    acc += e;
  }
  return xsimd::hadd(acc);
}

template <class A, class T>
void scale(T* y, i64 n, T c) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  const B cb(c);
  i64 i = 0;
  for (; i + W <= n; i += W) (B::load_unaligned(y + i) * cb).store_unaligned(y + i);
  for (; i < n; ++i) y[i] *= c;
}

template <class A, class T>
void shift2(T* y, const T* x, i64 n, T a, T b) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  const B ab(a), bb(b);
  i64 i = 0;
  for (; i + W <= n; i += W) ((B::load_unaligned(x + i) - ab) - bb).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = (x[i] - a) - b;
}

}  // namespace tapeflow::kernels::cpu::simd

// The definition of one table function, in the TU compiled for its instruction set.
#define TAPEFLOW_DEFINE_SIMD_TABLE(fn)                                                                         \
  namespace tapeflow::kernels::cpu::simd {                                                                     \
  namespace {                                                                                                  \
  template <class T>                                                                                           \
  constexpr MathFns<T> fns() {                                                                                 \
    using A = xsimd::default_arch;                                                                             \
    return {&unary_run<A, OpId::Exp, T>,  &unary_run<A, OpId::Log, T>,     &unary_run<A, OpId::Sqrt, T>,       \
            &unary_run<A, OpId::Tanh, T>, &unary_run<A, OpId::Sigmoid, T>, &row_max<A, T>,                     \
            &exp_sum<A, T>, &scale<A, T>, &shift2<A, T>};                                                                                   \
  }                                                                                                            \
  constexpr MathTable kTable{xsimd::default_arch::name(), fns<float>(), fns<double>()};                       \
  }                                                                                                            \
  const MathTable& fn() { return kTable; }                                                                     \
  }
