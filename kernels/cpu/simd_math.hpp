#pragma once
// The CPU kernels whose cost is arithmetic, not memory traffic: exp, log, sqrt, tanh,
// sigmoid, expm1, log1p and erf over contiguous runs, the passes of softmax rows, and uniform's Philox rounds (4x
// the scalar loop's speed with AVX-512, 2x with AVX2). They are compiled once per
// instruction set (simd_math_<isa>.cpp, each TU with its own -m flags and xsimd's default_arch
// for those flags) and chosen at run time (cpu_kernels.cpp), so a portable build still runs
// AVX2+FMA or AVX-512 code where the CPU has it: xsimd's exp on SSE2 emulates rounding and
// costs 4 to 8 times what it costs there.
//
// Only xsimd batch code, plain loops and x86 intrinsics xsimd lacks (each behind its
// architecture's register width and the compiler's flag macro) live here, no scalar math
// calls: a TU compiled with -mavx2 must define no inline function that another TU could
// share, or a CPU without AVX2 might run it. Every template takes the architecture as a parameter, so each TU's
// instantiations are its own symbols (the cpu_isa_symbols test checks the objects).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

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
  void (*expm1)(T* y, const T* x, i64 n);
  void (*log1p)(T* y, const T* x, i64 n);
  void (*erf)(T* y, const T* x, i64 n);
  // max (min) of x[0..n) (n > 0); NaN anywhere gives NaN
  T (*row_max)(const T* x, i64 n);
  T (*row_min)(const T* x, i64 n);
  // sum of x[0..n): blocks of kRowSumBlock elements summed in T (four accumulators), the
  // blocks' sums added in double, so float32's error grows with log2 of the block, not with n
  T (*row_sum)(const T* x, i64 n);
  // sum of exp(x[i] - shift), also written to y[i] unless y is null. While the exps are
  // computed, n elements at `ahead` are prefetched for reading and n at `claim` for writing
  // (either may be null): the next row's input, the row a later pass writes
  T (*exp_sum)(T* y, const T* x, i64 n, T shift, const T* ahead, T* claim);
  // y[i] *= c
  void (*scale)(T* y, i64 n, T c);
  // y[i] = (x[i] - a) - b, in this order
  void (*shift2)(T* y, const T* x, i64 n, T a, T b);
  // y[i] = uniform_at<T>(seed, counter + i, low, high) (kernels/functors.hpp), bit for bit:
  // Philox-4x32-10 on a batch of counters at once. `top` is T(high) and `below` the T next
  // to it towards low, which a draw that rounds up to `top` becomes when high > low.
  void (*uniform)(T* y, i64 n, std::uint64_t seed, std::uint64_t counter, double low, double high, T top,
                  T below);
  // y[i] = pow(a[i * sa], b[i * sb]) with sa, sb each 0 or 1; float only, and null where
  // the scalar loop is faster (double; SSE2).
  // 2^(b log2 a) in double, rounded once to float; lanes where a <= 0, a or b is not finite
  // (NaN included) take scalar(a, b), the caller's std::pow, so every IEEE special case
  // (pow(-8, 3), pow(0, -1), pow(1, NaN), ...) is the libm one.
  void (*pow)(T* y, const T* a, i64 sa, const T* b, i64 sb, i64 n, T (*scalar)(T, T));
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

// xsimd's exp overflows to inf early: from 88.3763 (float; the true limit is 88.7228) and
// 709.437 (double; 709.783). Lanes above `kExpSafe` are computed as exp(x / 2)^2 instead.
template <class T>
inline constexpr T kExpSafe = std::is_same_v<T, float> ? T(88.0) : T(709.0);

template <class A, class T>
xsimd::batch<T, A> exp_full_range(const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& e) {
  using B = xsimd::batch<T, A>;
  const auto big = x > B(kExpSafe<T>);
  if (!xsimd::any(big)) return e;  // nearly always
  const B half = xsimd::exp(x * B(T(0.5)));
  return xsimd::select(big, half * half, e);
}

template <class A, OpId op, class T>
xsimd::batch<T, A> unary_batch(const xsimd::batch<T, A>& x) {
  using B = xsimd::batch<T, A>;
  if constexpr (op == OpId::Exp) return exp_full_range<A>(x, xsimd::exp(x));
  else if constexpr (op == OpId::Log && std::is_same_v<T, double>) {
    // xsimd's double log takes subnormals for normals (log(4.9e-324) gave -746.52, not
    // -744.44): scale them up by 2^52 first
    const auto tiny = x < B(std::numeric_limits<double>::min());
    const B r = xsimd::log(xsimd::select(tiny, x * B(4503599627370496.0), x));
    return xsimd::select(tiny, r - B(36.04365338911715), r);  // 52 ln 2
  } else if constexpr (op == OpId::Log) return xsimd::log(x);
  else if constexpr (op == OpId::Sqrt) return xsimd::sqrt(x);
  else if constexpr (op == OpId::Tanh) return xsimd::tanh(x);
  else if constexpr (op == OpId::Expm1)  // keeps -0; above kExpSafe exp(x) - 1 is exp(x)
    return exp_full_range<A>(x, xsimd::select(x == B(T(0)), x, xsimd::expm1(x)));
  else if constexpr (op == OpId::Log1p) return xsimd::select(x == B(T(0)), x, xsimd::log1p(x));  // keeps -0
  else if constexpr (op == OpId::Erf) {
    // xsimd's erf gives NaN for huge x (1e300); beyond 6 erf rounds to +-1 in float64 already
    const auto big = xsimd::abs(x) > B(T(6));
    return xsimd::select(big, xsimd::copysign(B(T(1)), x), xsimd::erf(xsimd::select(big, B(T(0)), x)));
  }
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

template <class A, class T, bool is_max>
T row_extreme(const T* x, i64 n) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  const auto pick = [](const B& a, const B& b) {
    if constexpr (is_max) return xsimd::max(a, b);
    else return xsimd::min(a, b);
  };
  B m0(x[0]), m1(x[0]);
  auto nan = xsimd::isnan(m0);  // xsimd::max may drop NaN, so NaN is tracked on the side
  i64 i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {  // two chains: max's latency, not its throughput, bounds one
    const B v0 = B::load_unaligned(x + i), v1 = B::load_unaligned(x + i + W);
    m0 = pick(m0, v0);
    m1 = pick(m1, v1);
    nan = nan | xsimd::isnan(v0) | xsimd::isnan(v1);
  }
  for (; i + W <= n; i += W) {
    const B v = B::load_unaligned(x + i);
    m0 = pick(m0, v);
    nan = nan | xsimd::isnan(v);
  }
  if (i < n) {
    const B v = load_tail<A>(x, i, n, x[0]);  // x[0] is in m0 already
    m0 = pick(m0, v);
    nan = nan | xsimd::isnan(v);
  }
  if (xsimd::any(nan)) return std::numeric_limits<T>::quiet_NaN();
  alignas(64) T lanes[W];
  pick(m0, m1).store_aligned(lanes);
  T r = lanes[0];
  for (i64 j = 1; j < W; ++j) r = (is_max ? lanes[j] > r : lanes[j] < r) ? lanes[j] : r;
  return r;
}
template <class A, class T>
T row_max(const T* x, i64 n) {
  return row_extreme<A, T, true>(x, n);
}
template <class A, class T>
T row_min(const T* x, i64 n) {
  return row_extreme<A, T, false>(x, n);
}

inline constexpr i64 kRowSumBlock = 4096;

template <class A, class T>
T row_sum(const T* x, i64 n) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  double total = 0;
  for (i64 b0 = 0; b0 < n; b0 += kRowSumBlock) {
    const i64 bn = std::min(kRowSumBlock, n - b0);
    const T* p = x + b0;
    B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    i64 i = 0;
    for (; i + 4 * W <= bn; i += 4 * W) {
      a0 += B::load_unaligned(p + i);
      a1 += B::load_unaligned(p + i + W);
      a2 += B::load_unaligned(p + i + 2 * W);
      a3 += B::load_unaligned(p + i + 3 * W);
    }
    for (; i + W <= bn; i += W) a0 += B::load_unaligned(p + i);
    if (i < bn) a1 += load_tail<A>(p, i, bn, T(0));
    total += static_cast<double>(xsimd::hadd((a0 + a1) + (a2 + a3)));
  }
  return static_cast<T>(total);
}

template <class A, class T>
T exp_sum(T* y, const T* x, i64 n, T shift, const T* ahead, T* claim) {
  using B = xsimd::batch<T, A>;
  constexpr i64 W = static_cast<i64>(B::size);
  constexpr i64 kLine = 64 / static_cast<i64>(sizeof(T));  // elements per cache line (>= W)
  const B s(shift);
  B acc(T(0));
  i64 i = 0;
  // The exps keep the core busy while the prefetches bring in the memory the next passes
  // touch. Rows of [4096, 4096] that waited for memory and computed by turns took 5.2 ms
  // (softmax) and 6.2 ms (log_softmax) at 2 threads, 4.3-4.8 ms with the prefetches.
  if (ahead != nullptr || claim != nullptr) {
    for (; i + W <= n; i += W) {
      if (i % kLine == 0) {
        if (ahead != nullptr) __builtin_prefetch(ahead + i, 0, 3);
        if (claim != nullptr) __builtin_prefetch(claim + i, 1, 3);
      }
      const B e = xsimd::exp(B::load_unaligned(x + i) - s);
      if (y != nullptr) e.store_unaligned(y + i);
      acc += e;
    }
    if (ahead != nullptr) __builtin_prefetch(ahead + n - 1, 0, 3);
    if (claim != nullptr) __builtin_prefetch(claim + n - 1, 1, 3);
  }
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

// ---- Philox-4x32-10 on a batch of counters --------------------------------------------

// The 64-bit products a[j] * b[j] of the even 32-bit lanes (x86's pmuludq): xsimd has no
// widening multiply, and its 64-bit multiply on AVX2 goes lane by lane.
template <class A>
xsimd::batch<std::uint64_t, A> mul_even_u32(const xsimd::batch<std::uint64_t, A>& a,
                                            const xsimd::batch<std::uint64_t, A>& b) {
  using R [[maybe_unused]] = typename xsimd::batch<std::uint64_t, A>::register_type;
#if defined(__SSE2__)
  if constexpr (sizeof(R) == 64) {
#if defined(__AVX512F__)
    return _mm512_mul_epu32(a, b);
#endif
  } else if constexpr (sizeof(R) == 32) {
#if defined(__AVX2__)
    return _mm256_mul_epu32(a, b);
#endif
  } else if constexpr (sizeof(R) == 16) {
    return _mm_mul_epu32(a, b);
  }
#endif
  constexpr std::size_t W = xsimd::batch<std::uint64_t, A>::size;
  alignas(64) std::uint64_t x[W], y[W];
  a.store_aligned(x);
  b.store_aligned(y);
  for (std::size_t j = 0; j < W; ++j) x[j] = (x[j] & 0xFFFFFFFFu) * (y[j] & 0xFFFFFFFFu);
  return xsimd::batch<std::uint64_t, A>::load_aligned(x);
}

// hi / lo: the high and low words of a[j] * m for every 32-bit lane j.
template <class A>
void mul_hilo_u32(const xsimd::batch<std::uint32_t, A>& a, const xsimd::batch<std::uint64_t, A>& m,
                  xsimd::batch<std::uint32_t, A>& hi, xsimd::batch<std::uint32_t, A>& lo) {
  using U64 = xsimd::batch<std::uint64_t, A>;
  using U32 = xsimd::batch<std::uint32_t, A>;
  using R [[maybe_unused]] = typename U64::register_type;
  const U64 a64 = xsimd::bitwise_cast<U64>(a);
  const U64 even = mul_even_u32<A>(a64, m);
  const U64 odd = mul_even_u32<A>(a64 >> 32, m);
  // the odd 32-bit lanes of the first, the even of the second: one blend where there is one
#if defined(__AVX512F__)
  if constexpr (sizeof(R) == 64) {
    lo = xsimd::bitwise_cast<U32>(U64(_mm512_mask_blend_epi32(0xAAAA, even, odd << 32)));
    hi = xsimd::bitwise_cast<U32>(U64(_mm512_mask_blend_epi32(0xAAAA, even >> 32, odd)));
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (sizeof(R) == 32) {
    lo = xsimd::bitwise_cast<U32>(U64(_mm256_blend_epi32(even, odd << 32, 0xAA)));
    hi = xsimd::bitwise_cast<U32>(U64(_mm256_blend_epi32(even >> 32, odd, 0xAA)));
    return;
  }
#endif
  const U64 low_words(std::uint64_t(0xFFFFFFFFu));
  lo = xsimd::bitwise_cast<U32>((even & low_words) | (odd << 32));
  hi = xsimd::bitwise_cast<U32>((even >> 32) | (odd & ~low_words));
}

// v, which the compiler must hold in a register as it is: a product passed through here is
// rounded before any sum it feeds (never fused into a multiply-add, whatever -ffp-contract says)
template <class A>
xsimd::batch<double, A> rounded(const xsimd::batch<double, A>& v) {
  typename xsimd::batch<double, A>::register_type r = v;
#if defined(__AVX512F__)
  __asm__("" : "+v"(r));
#elif defined(__SSE2__)
  __asm__("" : "+x"(r));
#endif  // elsewhere only the baseline TU is built, with -ffp-contract=off
  return r;
}

// Exact doubles of 64-bit lanes below 2^52: the lane's bits under 2^52's exponent, less 2^52.
template <class A>
xsimd::batch<double, A> small_u64_to_double(const xsimd::batch<std::uint64_t, A>& x) {
  using U64 = xsimd::batch<std::uint64_t, A>;
  using D = xsimd::batch<double, A>;
  return xsimd::bitwise_cast<D>(x | U64(std::uint64_t(0x4330000000000000u))) - D(0x1p52);
}

// float(a[j]) then float(b[j]) in one batch of floats (xsimd 8 converts only same-width lanes);
// false where this architecture has no such conversion here (the caller converts lane by lane).
template <class A>
bool narrow_to_float(const xsimd::batch<double, A>& a, const xsimd::batch<double, A>& b, xsimd::batch<float, A>& out) {
  using R [[maybe_unused]] = typename xsimd::batch<double, A>::register_type;
#if defined(__SSE2__)
  if constexpr (sizeof(R) == 64) {
#if defined(__AVX512DQ__)
    out = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(a)), _mm512_cvtpd_ps(b), 1);
    return true;
#endif
  } else if constexpr (sizeof(R) == 32) {
#if defined(__AVX__)
    out = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(a)), _mm256_cvtpd_ps(b), 1);
    return true;
#endif
  } else if constexpr (sizeof(R) == 16) {
    out = _mm_movelh_ps(_mm_cvtpd_ps(a), _mm_cvtpd_ps(b));
    return true;
  }
#endif
  (void)a;
  (void)b;
  (void)out;
  return false;
}

// x[0..size) as a batch of doubles; false where this architecture has no such conversion
// here (the caller converts lane by lane).
template <class A>
bool widen_from_float(const float* x, xsimd::batch<double, A>& out) {
  using R [[maybe_unused]] = typename xsimd::batch<double, A>::register_type;
#if defined(__SSE2__)
  if constexpr (sizeof(R) == 64) {
#if defined(__AVX512F__)
    out = _mm512_cvtps_pd(_mm256_loadu_ps(x));
    return true;
#endif
  } else if constexpr (sizeof(R) == 32) {
#if defined(__AVX__)
    out = _mm256_cvtps_pd(_mm_loadu_ps(x));
    return true;
#endif
  } else if constexpr (sizeof(R) == 16) {
    out = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x))));
    return true;
  }
#endif
  (void)x;
  (void)out;
  return false;
}

template <class A>
xsimd::batch<double, A> widen(const float* x) {
  using D = xsimd::batch<double, A>;
  D d;
  if (widen_from_float<A>(x, d)) return d;
  alignas(64) double buf[D::size];
  for (std::size_t j = 0; j < D::size; ++j) buf[j] = static_cast<double>(x[j]);
  return D::load_aligned(buf);
}

// x * y + z, fused where the architecture has it (xsimd 8's fma is a multiply and an add on
// AVX-512), else multiplied and added
template <class A>
xsimd::batch<double, A> fmadd(const xsimd::batch<double, A>& x, const xsimd::batch<double, A>& y,
                              const xsimd::batch<double, A>& z) {
  using R [[maybe_unused]] = typename xsimd::batch<double, A>::register_type;
#if defined(__AVX512F__)
  if constexpr (sizeof(R) == 64) return _mm512_fmadd_pd(x, y, z);
#endif
#if defined(__FMA__)
  if constexpr (sizeof(R) == 32) return _mm256_fmadd_pd(x, y, z);
#endif
  return x * y + z;
}

// log2(x) for doubles x in [2^-149, 2^128] (every positive finite float), relative error
// ~1e-14: x = 2^e m with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with s = (m - 1) / (m + 1),
// |s| <= 0.172, summed to s^15 (the next term is 3e-14 of the first)
template <class A>
xsimd::batch<double, A> log2_of_float(const xsimd::batch<double, A>& x) {
  using D = xsimd::batch<double, A>;
  using U64 = xsimd::batch<std::uint64_t, A>;
  const U64 bits = xsimd::bitwise_cast<U64>(x);
  const U64 mant_mask(std::uint64_t(0x000FFFFFFFFFFFFFu)), one_bits(std::uint64_t(0x3FF0000000000000u));
  D m = xsimd::bitwise_cast<D>((bits & mant_mask) | one_bits);  // [1, 2)
  D e = small_u64_to_double<A>(bits >> 52) - D(1023.0);
  const auto big = m > D(1.4142135623730951);
  m = xsimd::select(big, m * D(0.5), m);
  e = xsimd::select(big, e + D(1.0), e);
  const D s = (m - D(1.0)) / (m + D(1.0));
  const D z = s * s;
  D p(1.0 / 15);
  p = fmadd<A>(p, z, D(1.0 / 13));
  p = fmadd<A>(p, z, D(1.0 / 11));
  p = fmadd<A>(p, z, D(1.0 / 9));
  p = fmadd<A>(p, z, D(1.0 / 7));
  p = fmadd<A>(p, z, D(1.0 / 5));
  p = fmadd<A>(p, z, D(1.0 / 3));
  p = fmadd<A>(p, z, D(1.0));
  // ln m = 2 s p; log2 m = ln m / ln 2
  return fmadd<A>(s * p, D(2.0 * 1.4426950408889634), e);
}

// 2^y for doubles y, relative error ~1e-13 where 2^y is a float or beyond (y is clamped to
// [-200, 200]: 0 and inf once rounded to float): y = n + f, |f| <= 1/2, e^(f ln 2) to f^11
template <class A>
xsimd::batch<double, A> exp2_for_float(const xsimd::batch<double, A>& y_in) {
  using D = xsimd::batch<double, A>;
  using U64 = xsimd::batch<std::uint64_t, A>;
  const D y = xsimd::min(xsimd::max(y_in, D(-200.0)), D(200.0));
  const D magic(0x1.8p52);  // adding it rounds to an integer, kept in the low mantissa bits
  const D t = y + magic;
  const D f = y - (t - magic);
  const U64 n = xsimd::bitwise_cast<U64>(t) - xsimd::bitwise_cast<U64>(magic);  // two's complement
  D p(4.44553827187081e-10);  // ln2^k / k!
  p = fmadd<A>(p, f, D(7.054911620801121e-09));
  p = fmadd<A>(p, f, D(1.0178086009239696e-07));
  p = fmadd<A>(p, f, D(1.3215486790144305e-06));
  p = fmadd<A>(p, f, D(1.5252733804059838e-05));
  p = fmadd<A>(p, f, D(0.00015403530393381606));
  p = fmadd<A>(p, f, D(0.0013333558146428441));
  p = fmadd<A>(p, f, D(0.009618129107628477));
  p = fmadd<A>(p, f, D(0.055504108664821576));
  p = fmadd<A>(p, f, D(0.2402265069591007));
  p = fmadd<A>(p, f, D(0.6931471805599453));
  p = fmadd<A>(p, f, D(1.0));
  const D scale = xsimd::bitwise_cast<D>((n + U64(std::uint64_t(1023))) << 52);
  return p * scale;
}

// float pow: 2^(b log2 a) in double for a in (0, inf) and a finite b. log2 a errs by ~1e-14
// relatively and |b log2 a| <= 150 wherever the float result is neither 0 nor inf, so the
// result errs by ~1e-12 before the one rounding to float, which is what decides it (a result
// within ~2^-16 ulp of a rounding boundary may round the other way from libm's powf, itself
// not correctly rounded either).
template <class A>
void pow_f32(float* y, const float* a, i64 sa, const float* b, i64 sb, i64 n, float (*scalar)(float, float)) {
  using F = xsimd::batch<float, A>;
  using D = xsimd::batch<double, A>;
  constexpr i64 W = static_cast<i64>(F::size), H = W / 2;
  const F inf(std::numeric_limits<float>::infinity());
  alignas(64) float ab[W], bb[W], r[W];
  const bool a_one = sa == 0, b_one = sb == 0;  // one value broadcast along the run
  const D a_log = a_one ? log2_of_float<A>(D(static_cast<double>(a[0]))) : D(0.0);
  const D b_all(b_one ? static_cast<double>(b[0]) : 0.0);
  for (i64 i = 0; i < n; i += W) {
    const i64 m = n - i < W ? n - i : W;
    const float* pa = a_one ? a : a + i;  // (a broadcast operand is one float: no a + i)
    const float* pb = b_one ? b : b + i;
    if (m < W) {  // the last partial batch, padded with 1s
      for (i64 j = 0; j < W; ++j) {
        ab[j] = j < m ? a[(i + j) * sa] : 1.0f;
        bb[j] = j < m ? b[(i + j) * sb] : 1.0f;
      }
      pa = ab;
      pb = bb;
    }
    const F fa = a_one ? F(a[0]) : F::load_unaligned(pa);
    const F fb = b_one ? F(b[0]) : F::load_unaligned(pb);
    const D la0 = a_one ? a_log : log2_of_float<A>(widen<A>(pa));
    const D la1 = a_one ? a_log : log2_of_float<A>(widen<A>(pa + H));
    const D lo = exp2_for_float<A>((b_one ? b_all : widen<A>(pb)) * la0);
    const D hi = exp2_for_float<A>((b_one ? b_all : widen<A>(pb + H)) * la1);
    F f;
    if (!narrow_to_float<A>(lo, hi, f)) {
      alignas(64) double d[W];
      lo.store_aligned(d);
      hi.store_aligned(d + H);
      for (i64 j = 0; j < W; ++j) r[j] = static_cast<float>(d[j]);
      f = F::load_aligned(r);
    }
    const auto usual = (fa > F(0.0f)) & (fa < inf) & (xsimd::abs(fb) < inf);
    if (m == W && xsimd::all(usual)) {
      f.store_unaligned(y + i);
      continue;
    }
    f.store_aligned(r);
    alignas(64) float ua[W];
    F(xsimd::select(usual, F(1.0f), F(0.0f))).store_aligned(ua);
    for (i64 j = 0; j < m; ++j) {
      y[i + j] = ua[j] != 0.0f ? r[j] : scalar(a[(i + j) * sa], b[(i + j) * sb]);
    }
  }
}

// pow_f32 where it beats libm's scalar powf (4.5 ns an element on the reference machine):
// 2.0 ns with AVX-512, 3.1 with AVX2, 10 with two double lanes (SSE2), so not there
template <class A, class T>
constexpr auto pow_fn() {
  if constexpr (std::is_same_v<T, float> && sizeof(typename xsimd::batch<double, A>::register_type) >= 32)
    return &pow_f32<A>;
  else return static_cast<void (*)(T*, const T*, i64, const T*, i64, i64, T (*)(T, T))>(nullptr);
}

template <class A, class T>
void uniform(T* y, i64 n, std::uint64_t seed, std::uint64_t counter, double low, double high, T top, T below) {
  using U32 = xsimd::batch<std::uint32_t, A>;
  using U64 = xsimd::batch<std::uint64_t, A>;
  using D = xsimd::batch<double, A>;
  using F = xsimd::batch<float, A>;
  constexpr i64 W = static_cast<i64>(U32::size), H = W / 2;
  // Element i + e of a batch draws counter i + e. Its 32-bit lane is 2e for e < H and
  // 2(e - H) + 1 above, so the even lanes, as 64-bit words, hold elements [0, H) in order and
  // the odd lanes [H, W).
  alignas(64) std::uint32_t lane[W];
  for (i64 j = 0; j < W; ++j) lane[j] = static_cast<std::uint32_t>(j % 2 == 0 ? j / 2 : H + j / 2);
  const U32 element = U32::load_aligned(lane);
  const U64 m0(std::uint64_t(0xD2511F53u)), m1(std::uint64_t(0xCD9E8D57u));
  const U64 low_words(std::uint64_t(0xFFFFFFFFu));
  const D low_d(low), span(high - low);
  const bool clamp = high > low;
  U32 key0[10], key1[10];  // the round keys, the same for every batch
  for (int r = 0; r < 10; ++r) {
    key0[r] = U32(static_cast<std::uint32_t>(seed) + std::uint32_t(r) * 0x9E3779B9u);
    key1[r] = U32(static_cast<std::uint32_t>(seed >> 32) + std::uint32_t(r) * 0xBB67AE85u);
  }
  alignas(64) double x[W];
  alignas(64) T v[W];
  for (i64 i = 0; i < n; i += W) {
    const std::uint64_t first = counter + static_cast<std::uint64_t>(i);
    const std::uint32_t first_lo = static_cast<std::uint32_t>(first);
    U32 c0 = U32(first_lo) + element, c1;
    if (first_lo <= 0xFFFFFFFFu - static_cast<std::uint32_t>(W - 1)) {
      c1 = U32(static_cast<std::uint32_t>(first >> 32));
    } else {  // the counter's low word wraps inside this batch
      for (i64 j = 0; j < W; ++j) {
        const i64 e = j % 2 == 0 ? j / 2 : H + j / 2;
        lane[j] = static_cast<std::uint32_t>((first + std::uint64_t(e)) >> 32);
      }
      c1 = U32::load_aligned(lane);
    }
    U32 c2(std::uint32_t(0)), c3(std::uint32_t(0));
    for (int r = 0; r < 10; ++r) {
      U32 hi0, lo0, hi1, lo1;
      mul_hilo_u32<A>(c0, m0, hi0, lo0);
      mul_hilo_u32<A>(c2, m1, hi1, lo1);
      c0 = hi1 ^ c1 ^ key0[r];
      c1 = lo1;
      c2 = hi0 ^ c3 ^ key1[r];
      c3 = lo0;
    }
    // functors.hpp's u from the output words, exactly, then low + (high - low) * u in double,
    // the product rounded before the sum as everywhere else (rounded(): these TUs let the
    // compiler fuse multiply-adds)
    const U64 w0 = xsimd::bitwise_cast<U64>(c0);
    D u_first, u_second;  // elements [0, H) and [H, W)
    if constexpr (std::is_same_v<T, float>) {
      u_first = small_u64_to_double<A>((w0 & low_words) >> 8) * D(0x1p-24);
      u_second = small_u64_to_double<A>(w0 >> 40) * D(0x1p-24);
    } else {
      // 53 bits of (w0 << 32 | w1) >> 11: the high 21 and the low 32 converted apart, summed exactly
      const U64 w1 = xsimd::bitwise_cast<U64>(c1);
      const U64 first_bits = (((w0 & low_words) << 32) | (w1 & low_words)) >> 11;
      const U64 second_bits = ((w0 & ~low_words) | (w1 >> 32)) >> 11;
      auto to_u = [&](const U64& b) {
        return (small_u64_to_double<A>(b >> 32) * D(0x1p32) + small_u64_to_double<A>(b & low_words)) * D(0x1p-53);
      };
      u_first = to_u(first_bits);
      u_second = to_u(second_bits);
    }
    const D x_first = low_d + rounded<A>(span * u_first), x_second = low_d + rounded<A>(span * u_second);
    const i64 m = n - i < W ? n - i : W;
    if constexpr (std::is_same_v<T, float>) {
      F f;
      if (narrow_to_float<A>(x_first, x_second, f)) {
        if (clamp) f = xsimd::select(f >= F(top), F(below), f);
        if (m == W) {
          f.store_unaligned(y + i);
          continue;
        }
        f.store_aligned(v);
      } else {
        x_first.store_aligned(x);
        x_second.store_aligned(x + H);
        for (i64 j = 0; j < W; ++j) {
          const T t = static_cast<T>(x[j]);
          v[j] = clamp && t >= top ? below : t;
        }
      }
    } else {
      const D t[2] = {clamp ? xsimd::select(x_first >= D(top), D(below), x_first) : x_first,
                      clamp ? xsimd::select(x_second >= D(top), D(below), x_second) : x_second};
      if (m == W) {
        t[0].store_unaligned(y + i);
        t[1].store_unaligned(y + i + H);
        continue;
      }
      t[0].store_aligned(v);
      t[1].store_aligned(v + H);
    }
    for (i64 j = 0; j < m; ++j) y[i + j] = v[j];
  }
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
            &unary_run<A, OpId::Tanh, T>, &unary_run<A, OpId::Sigmoid, T>, &unary_run<A, OpId::Expm1, T>,      \
            &unary_run<A, OpId::Log1p, T>, &unary_run<A, OpId::Erf, T>, &row_max<A, T>,                        \
            &row_min<A, T>, &row_sum<A, T>,                                                                   \
            &exp_sum<A, T>, &scale<A, T>, &shift2<A, T>,                                                       \
            &uniform<A, T>,                                                                                   \
            pow_fn<A, T>()};                                                                                   \
  }                                                                                                            \
  constexpr MathTable kTable{xsimd::default_arch::name(), fns<float>(), fns<double>()};                       \
  }                                                                                                            \
  const MathTable& fn() { return kTable; }                                                                     \
  }
