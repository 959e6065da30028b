#pragma once
// The scalar math of every element-wise op, written once. The naive kernels, the CPU
// kernels' scalar paths and (later) the CUDA kernel template all call these.
// Integer inputs reach only the ops whose front-end accepts them (neg, abs, sign, relu,
// clip, arithmetic, floor_divide, mod, comparisons); transcendental ops are promoted to float first.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels {

template <OpId op> struct UnaryFn;  // T operator()(T x, double p0, double p1)
template <OpId op> struct BinaryFn; // T operator()(T a, T b)

// Integer +, -, * and negation wrap around (two's complement), as NumPy's do: signed overflow is
// undefined in C++, so they are computed in the unsigned type of the same width. Other types
// compute as written.
template <class T>
inline constexpr bool kWrapInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;
template <class T>
TAPEFLOW_HD T wrap_add(T a, T b) {
  if constexpr (kWrapInt<T>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(a) + U(b)));
  } else {
    return T(a + b);
  }
}
template <class T>
TAPEFLOW_HD T wrap_sub(T a, T b) {
  if constexpr (kWrapInt<T>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(a) - U(b)));
  } else {
    return T(a - b);
  }
}
template <class T>
TAPEFLOW_HD T wrap_mul(T a, T b) {
  if constexpr (kWrapInt<T>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(a) * U(b)));
  } else {
    return T(a * b);
  }
}
template <class T>
TAPEFLOW_HD T wrap_neg(T x) {
  if constexpr (kWrapInt<T>) {
    using U = std::make_unsigned_t<T>;
    return T(U(U(0) - U(x)));
  } else {
    return T(-x);
  }
}

// A floating value converted to the integer type I as CUDA's conversion instructions do
// (cvt.rzi.sat): truncated toward zero, saturated to I's range, NaN -> 0, so every device agrees
// (C++ leaves NaN and out-of-range values undefined). Written as selects over values every path
// computes (the converted value is always in range) so that loops of it still vectorise.
template <class I, class F>
TAPEFLOW_HD I saturate_cast(F x) {
  static_assert(kWrapInt<I> && std::is_floating_point_v<F>);
  using U = std::make_unsigned_t<I>;
  constexpr I imax = I(U(~U(0)) >> 1);
  constexpr I imin = I(-imax - 1);
  constexpr F lo = F(imin), hi = -lo;  // -2^(bits-1) and 2^(bits-1), exact in F
  const I r = static_cast<I>(x >= lo && x < hi ? x : F(0));
  return x >= hi ? imax : (x < lo ? imin : r);
}

// The element conversion of copy and astype: floating -> integer saturates (saturate_cast);
// everything else is static_cast.
template <class TO, class TI>
TAPEFLOW_HD TO convert(TI x) {
  if constexpr (kWrapInt<TO> && std::is_floating_point_v<TI>) {
    return saturate_cast<TO>(x);
  } else {
    return static_cast<TO>(x);
  }
}

// A bound p of clip on a T tensor: saturated to an integer T's range (clip(int32, 0, 1e10)
// clips at INT32_MAX); T(p) otherwise.
template <class T>
TAPEFLOW_HD T clip_bound(double p) {
  if constexpr (kWrapInt<T>) {
    return saturate_cast<T>(p);
  } else {
    return T(p);
  }
}

#define TAPEFLOW_UNARY(id, expr)                                             \
  template <> struct UnaryFn<OpId::id> {                                     \
    template <class T>                                                       \
    TAPEFLOW_HD T operator()(T x, double p0, double p1) const {              \
      (void)p0; (void)p1;                                                    \
      return expr;                                                           \
    }                                                                        \
  };
TAPEFLOW_UNARY(Neg, wrap_neg(x))
// selects only (as clip below): NaN stays NaN, -0 and 0 give 0
TAPEFLOW_UNARY(Sign, T(x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x != x ? x : T(0)))))
TAPEFLOW_UNARY(Exp, T(std::exp(x)))
TAPEFLOW_UNARY(Log, T(std::log(x)))
TAPEFLOW_UNARY(Log1p, T(std::log1p(x)))
TAPEFLOW_UNARY(Expm1, T(std::expm1(x)))
TAPEFLOW_UNARY(Erf, T(std::erf(x)))
TAPEFLOW_UNARY(Sin, T(std::sin(x)))
TAPEFLOW_UNARY(Cos, T(std::cos(x)))
TAPEFLOW_UNARY(Tan, T(std::tan(x)))
TAPEFLOW_UNARY(Asin, T(std::asin(x)))
TAPEFLOW_UNARY(Acos, T(std::acos(x)))
TAPEFLOW_UNARY(Atan, T(std::atan(x)))
TAPEFLOW_UNARY(Sinh, T(std::sinh(x)))
TAPEFLOW_UNARY(Cosh, T(std::cosh(x)))
TAPEFLOW_UNARY(Asinh, T(std::asinh(x)))
TAPEFLOW_UNARY(Acosh, T(std::acosh(x)))
TAPEFLOW_UNARY(Atanh, T(std::atanh(x)))
TAPEFLOW_UNARY(Sqrt, T(std::sqrt(x)))
TAPEFLOW_UNARY(Tanh, T(std::tanh(x)))
// stable for large |x|: exp never overflows
TAPEFLOW_UNARY(Sigmoid, T(x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x))))
TAPEFLOW_UNARY(Relu, T(x < T(0) ? T(0) : x))  // NaN stays NaN, as in NumPy
TAPEFLOW_UNARY(Step, T(x > T(0) ? T(1) : T(0)))
TAPEFLOW_UNARY(PowScalar, T(std::pow(x, T(p0))))
#undef TAPEFLOW_UNARY
// floor, ceil and round: an integer is whole already and stays as it is; NaN, inf and -0 pass
// through. round is NumPy's, half to even: nearbyint under the default rounding mode on the
// host, rint on the device (the same, less the inexact flag).
template <class T>
TAPEFLOW_HD T round_half_even(T x) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) {
    return rintf(x);
  } else {
    return rint(x);
  }
#else
  return std::nearbyint(x);
#endif
}
#define TAPEFLOW_UNARY_WHOLE(id, expr)                          \
  template <> struct UnaryFn<OpId::id> {                        \
    template <class T>                                          \
    TAPEFLOW_HD T operator()(T x, double p0, double p1) const { \
      (void)p0;                                                 \
      (void)p1;                                                 \
      if constexpr (std::is_floating_point_v<T>) {              \
        return expr;                                            \
      } else {                                                  \
        return x;                                               \
      }                                                         \
    }                                                           \
  };
TAPEFLOW_UNARY_WHOLE(Floor, std::floor(x))
TAPEFLOW_UNARY_WHOLE(Ceil, std::ceil(x))
TAPEFLOW_UNARY_WHOLE(Round, round_half_even(x))
#undef TAPEFLOW_UNARY_WHOLE
// Floats: fabs, so abs(-0.0) is 0 (NumPy's), not -0. Integers: abs(INT_MIN) wraps to INT_MIN, as
// in NumPy.
template <> struct UnaryFn<OpId::Abs> {
  template <class T>
  TAPEFLOW_HD T operator()(T x, double p0, double p1) const {
    (void)p0;
    (void)p1;
    if constexpr (std::is_floating_point_v<T>) {
      return std::fabs(x);
    } else {
      return T(x < T(0) ? wrap_neg(x) : x);
    }
  }
};
// The bounds converted to T before any test: a conversion inside a branch may raise an FP
// exception, so g++ (-ftrapping-math) kept it there and the loop scalar, 40x slower than relu.
template <> struct UnaryFn<OpId::Clip> {
  template <class T>
  TAPEFLOW_HD T operator()(T x, double p0, double p1) const {
    const T lo = clip_bound<T>(p0), hi = clip_bound<T>(p1);
    return x < lo ? lo : (x > hi ? hi : x);
  }
};
template <> struct UnaryFn<OpId::ClipMask> {
  template <class T>
  TAPEFLOW_HD T operator()(T x, double p0, double p1) const {
    const T lo = clip_bound<T>(p0), hi = clip_bound<T>(p1);
    return ((x >= lo) & (x <= hi)) ? T(1) : T(0);
  }
};

// a != a ? a : (b != b ? b : (a > b ? a : b)) (the first NaN, else the larger; b on a tie),
// written as selects of values every path computes: from the nested form g++ loaded b only
// where a is not NaN (masked loads), and max over axis 0 ran 2.5-3x slower
template <class T>
TAPEFLOW_HD T nan_max(T a, T b) {
  const T m = a > b ? a : b;
  const T r = b != b ? b : m;
  return a != a ? a : r;
}
template <class T>
TAPEFLOW_HD T nan_min(T a, T b) {
  const T m = a < b ? a : b;
  const T r = b != b ? b : m;
  return a != a ? a : r;
}

// NumPy's floor division and remainder (npy_divmod), shared by floor_divide and mod so the two
// agree: a == floor_divide(a, b) * b + mod(a, b) up to rounding.
// Integers: the quotient rounded toward -inf, the remainder with b's sign; b == 0 gives 0 for
// both (div's rule: no trap; NumPy's values), b == -1 is a negation (INT_MIN // -1 wraps to
// INT_MIN, as NumPy's) and remainder 0, never the overflowing INT_MIN / -1.
// Floats: the remainder is fmod(a, b) moved to b's sign (a zero one takes b's sign); the
// quotient (a - mod) / b, made whole by floor and rounded to the nearest when that is off by
// more than a half (it is exact but for the last bits). b == 0: a / b (+-inf or NaN) and
// fmod's NaN, as NumPy; so 1 // 0.1 is 9 (NumPy's, as 1 % 0.1 is 0.09999...), not TensorFlow's
// floor(1 / 0.1) = 10.
template <class T>
TAPEFLOW_HD T floor_div(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (b == T(0)) return a / b;
    T mod = std::fmod(a, b);
    T div = (a - mod) / b;
    if (mod != T(0) && ((b < T(0)) != (mod < T(0)))) div -= T(1);
    if (div == T(0)) return std::copysign(T(0), a / b);
    T q = std::floor(div);
    if (div - q > T(0.5)) q += T(1);
    return q;
  } else {
    if (b == T(0)) return T(0);
    if (b == T(-1)) return wrap_neg(a);
    const T q = T(a / b);
    return (a % b != T(0) && ((a < T(0)) != (b < T(0)))) ? T(q - T(1)) : q;
  }
}
template <class T>
TAPEFLOW_HD T floor_mod(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    T mod = std::fmod(a, b);
    if (b == T(0)) return mod;
    if (mod == T(0)) return std::copysign(T(0), b);
    return (b < T(0)) != (mod < T(0)) ? T(mod + b) : mod;
  } else {
    if (b == T(0) || b == T(-1)) return T(0);
    const T r = T(a % b);
    return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? T(r + b) : r;
  }
}

#define TAPEFLOW_BINARY(id, expr)                                            \
  template <> struct BinaryFn<OpId::id> {                                    \
    template <class T>                                                       \
    TAPEFLOW_HD T operator()(T a, T b) const { return expr; }                \
  };
TAPEFLOW_BINARY(Add, wrap_add(a, b))
TAPEFLOW_BINARY(Sub, wrap_sub(a, b))
TAPEFLOW_BINARY(Mul, wrap_mul(a, b))
// Integer division truncates toward zero, as C++ does; division by zero gives 0 and INT_MIN / -1
// wraps to INT_MIN (a negation, as floor_div's), never the trapping C++ division. The public
// div promotes integers to float32; this is the kernels' own integer entry.
template <class T>
TAPEFLOW_HD T trunc_div(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return a / b;
  } else {
    if (b == T(0)) return T(0);
    if (b == T(-1)) return wrap_neg(a);
    return T(a / b);
  }
}
TAPEFLOW_BINARY(Div, trunc_div(a, b))
TAPEFLOW_BINARY(Pow, T(std::pow(a, b)))
// NaN propagates, as in NumPy's maximum/minimum
TAPEFLOW_BINARY(Maximum, nan_max(a, b))
TAPEFLOW_BINARY(Minimum, nan_min(a, b))
TAPEFLOW_BINARY(Atan2, T(std::atan2(a, b)))  // a = y, b = x
TAPEFLOW_BINARY(FloorDiv, floor_div(a, b))
TAPEFLOW_BINARY(FloorMod, floor_mod(a, b))
// a times the derivative, as the unfused rules computed it (integers wrap around)
TAPEFLOW_BINARY(TanhGrad, wrap_mul(a, wrap_sub(T(1), wrap_mul(b, b))))
TAPEFLOW_BINARY(SigmoidGrad, wrap_mul(wrap_mul(a, b), wrap_sub(T(1), b)))
// selects only: g++ makes a * (b > 0 ? 1 : 0) a branch (a * 0 may trap) and the loop scalar,
// 30x slower than mul. A NaN gradient stays NaN; an infinite one where b <= 0 gives 0.
TAPEFLOW_BINARY(ReluGrad, T(b > T(0) ? a : (a != a ? a : T(0))))
#undef TAPEFLOW_BINARY

// Comparisons and logic return bool.
template <OpId op> struct CompareFn;
#define TAPEFLOW_COMPARE(id, expr)                                           \
  template <> struct CompareFn<OpId::id> {                                   \
    template <class T>                                                       \
    TAPEFLOW_HD bool operator()(T a, T b) const { (void)b; return expr; }    \
  };
TAPEFLOW_COMPARE(Equal, a == b)
TAPEFLOW_COMPARE(NotEqual, a != b)
TAPEFLOW_COMPARE(Less, a < b)
TAPEFLOW_COMPARE(LessEqual, a <= b)
TAPEFLOW_COMPARE(Greater, a > b)
TAPEFLOW_COMPARE(GreaterEqual, a >= b)
TAPEFLOW_COMPARE(LogicalAnd, bool(a) && bool(b))
TAPEFLOW_COMPARE(LogicalOr, bool(a) || bool(b))
TAPEFLOW_COMPARE(LogicalNot, !bool(a))
#undef TAPEFLOW_COMPARE

// Does x replace best in a scan for the first maximum? Larger wins; NaN wins over a number and
// the first NaN stays (NumPy's argmax, max pooling's selection).
template <class T>
TAPEFLOW_HD bool max_scan_takes(T x, T best) {
  return x > best || (x != x && best == best);
}

// argsort's order: does a come strictly before b? NaN is larger than every number, +inf
// included (NumPy's sort and PyTorch's sort/topk): last ascending, first descending; NaNs, and
// -0.0 with 0.0, are equal. Equal keys keep their index order (the kernels break ties by index).
template <class T>
TAPEFLOW_HD bool sorts_before(T a, T b, bool descending) {
  const bool a_nan = a != a, b_nan = b != b;
  return descending ? (a_nan && !b_nan) || a > b : (b_nan && !a_nan) || a < b;
}

// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
// Counter-based: element i of a stream depends only on (key, i), so every device and
// every thread split gives the same numbers.
struct Philox4x32 {
  std::uint32_t v[4];
};
TAPEFLOW_HD inline Philox4x32 philox4x32_10(std::uint64_t counter, std::uint64_t key) {
  std::uint32_t c0 = static_cast<std::uint32_t>(counter), c1 = static_cast<std::uint32_t>(counter >> 32);
  std::uint32_t c2 = 0, c3 = 0;
  std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  for (int r = 0; r < 10; ++r) {
    const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * c0;
    const std::uint64_t p1 = std::uint64_t(0xCD9E8D57u) * c2;
    const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
    const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Element `counter` of a uniform or normal stream (kernel_api.inc's formula), for every
// device: rounding to T never returns `high` (low + (high - low) * u can round up in float32).
template <class T>
TAPEFLOW_HD T uniform_at(std::uint64_t seed, std::uint64_t counter, double low, double high) {
  const Philox4x32 r = philox4x32_10(counter, seed);
  double u;
  if constexpr (std::is_same_v<T, float>) {
    u = static_cast<double>(r.v[0] >> 8) * 0x1p-24;
  } else {
    const std::uint64_t bits = (std::uint64_t(r.v[0]) << 32) | r.v[1];
    u = static_cast<double>(bits >> 11) * 0x1p-53;
  }
  T v = static_cast<T>(low + (high - low) * u);
  if (high > low && v >= static_cast<T>(high)) v = std::nextafter(static_cast<T>(high), static_cast<T>(low));
  return v;
}
template <class T>
TAPEFLOW_HD T normal_at(std::uint64_t seed, std::uint64_t counter, double mean, double stddev) {
  const Philox4x32 r = philox4x32_10(counter, seed);
  const double u1 = (r.v[0] + 1.0) * 0x1p-32;
  const double u2 = r.v[1] * 0x1p-32;
  const double two_pi = 6.283185307179586476925286766559;
  return static_cast<T>(mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
}

}  // namespace tapeflow::kernels
