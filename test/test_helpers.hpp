#pragma once
// Shared test helpers: seeded random tensors of any dtype and layout, the naive kernels as
// the oracle (called on the very same input buffers, through layouts built here from the
// tensors' shape and strides), and a tolerant comparison of two tensors.
//
// Nothing here calls the library's compute paths to produce expected values: outputs are
// allocated with tapeflow::empty and filled by kernels::naive or by plain loops in this file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tapeflow/core.hpp"
#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/kernels/naive.hpp"
#include "tapeflow/op_id.hpp"

namespace th {

using namespace tapeflow;
using kernels::Layout;
namespace naive = tapeflow::kernels::naive;

inline constexpr DType kAllDTypes[] = {kBool, kInt32, kInt64, kFloat32, kFloat64};
inline constexpr DType kNumericDTypes[] = {kInt32, kInt64, kFloat32, kFloat64};
inline constexpr DType kFloatDTypes[] = {kFloat32, kFloat64};

// ------------------------------------------------------------------ small utilities

inline std::string str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

inline std::int64_t count(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) with T the C++ type of dtype d.
template <class F>
decltype(auto) visit_dtype(DType d, F&& f) {
  switch (d) {
    case DType::Bool: return f(Tag<bool>{});
    case DType::Int32: return f(Tag<std::int32_t>{});
    case DType::Int64: return f(Tag<std::int64_t>{});
    case DType::Float32: return f(Tag<float>{});
    case DType::Float64: return f(Tag<double>{});
  }
  return f(Tag<float>{});
}

// NumPy broadcasting of two shapes, written here independently of the library.
inline Shape broadcast(const Shape& a, const Shape& b) {
  const std::size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    const std::int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// ------------------------------------------------------------------ layouts for the naive kernels

// t's own layout (shape and strides in elements).
inline Layout layout_of(const Tensor& t) {
  Layout l;
  l.rank = static_cast<int>(t.rank());
  for (int i = 0; i < l.rank; ++i) {
    l.shape[i] = t.shape()[i];
    l.strides[i] = t.strides()[i];
  }
  return l;
}

// t seen as broadcast to `shape`: leading and size-1 broadcast axes get stride 0.
inline Layout layout_as(const Tensor& t, const Shape& shape) {
  Layout l;
  l.rank = static_cast<int>(shape.size());
  const int lead = l.rank - static_cast<int>(t.rank());
  for (int i = 0; i < l.rank; ++i) {
    l.shape[i] = shape[i];
    if (i < lead) {
      l.strides[i] = 0;
    } else {
      const std::int64_t d = t.shape()[i - lead];
      l.strides[i] = (d == 1 && shape[i] != 1) ? 0 : t.strides()[i - lead];
    }
  }
  return l;
}

inline Layout contiguous_layout(const Shape& s) { return kernels::contiguous_layout(static_cast<int>(s.size()), s.data()); }

// ------------------------------------------------------------------ reading values without the library

// Every element in row-major order, read through t's own shape/strides/offset, as double.
inline std::vector<double> values(const Tensor& t) {
  if (!t.device().is_cpu()) return values(t.to(Device::cpu()));
  std::vector<double> out;
  const std::int64_t n = t.size();
  out.reserve(static_cast<std::size_t>(n));
  if (n == 0) return out;
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  const int r = static_cast<int>(s.size());
  visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = static_cast<const T*>(t.data_ptr());
    std::vector<std::int64_t> idx(static_cast<std::size_t>(r), 0);
    for (std::int64_t flat = 0; flat < n; ++flat) {
      std::int64_t off = 0;
      for (int d = 0; d < r; ++d) off += idx[d] * st[d];
      out.push_back(static_cast<double>(p[off]));
      for (int d = r - 1; d >= 0; --d) {
        if (++idx[d] < s[d]) break;
        idx[d] = 0;
      }
    }
  });
  return out;
}

// A contiguous tensor of the given shape and dtype holding `vals` (converted with static_cast).
inline Tensor from_values(const std::vector<double>& vals, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(t.data_ptr());
    for (std::size_t i = 0; i < vals.size(); ++i) p[i] = static_cast<T>(vals[i]);
  });
  return t;
}

// ------------------------------------------------------------------ random shapes and tensors

inline std::int64_t rand_int(std::mt19937& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

// A random shape of rank in [min_rank, max_rank]; axes of length 1 often, 0 sometimes.
inline Shape random_shape(std::mt19937& rng, int min_rank = 0, int max_rank = 4, bool allow_zero = true) {
  const int r = static_cast<int>(rand_int(rng, min_rank, max_rank));
  Shape s(static_cast<std::size_t>(r));
  for (auto& d : s) {
    const auto u = rand_int(rng, 0, 19);
    d = (allow_zero && u == 0) ? 0 : (u < 5 ? 1 : rand_int(rng, 2, 5));
  }
  return s;
}

// A shape that broadcasts with s: per axis the same length or 1 (or anything where s has 1),
// and sometimes fewer or more leading axes.
inline Shape random_broadcast_partner(std::mt19937& rng, const Shape& s) {
  Shape out;
  const auto extra = rand_int(rng, 0, 2);
  if (extra == 1 && !s.empty()) {
    out.assign(s.begin() + rand_int(rng, 1, static_cast<std::int64_t>(s.size())), s.end());
  } else {
    out = s;
    if (extra == 2 && s.size() < 4) out.insert(out.begin(), rand_int(rng, 1, 3));
  }
  const std::size_t lead = out.size() > s.size() ? out.size() - s.size() : 0;
  for (std::size_t i = lead; i < out.size(); ++i) {
    const auto u = rand_int(rng, 0, 3);
    if (u == 0) out[i] = 1;
    else if (u == 1 && out[i] == 1) out[i] = rand_int(rng, 2, 4);
  }
  return out;
}

// Random values: floats in [lo, hi), integers in [lo, hi], bools half true. With
// integer_valued, floats too are whole numbers in [lo, hi] (so that ties and equality happen).
inline Tensor random_tensor(const Shape& shape, DType dtype, std::mt19937& rng, double lo = -3, double hi = 3,
                            bool integer_valued = false) {
  std::vector<double> v(static_cast<std::size_t>(count(shape)));
  for (auto& x : v) {
    if (dtype == kBool) x = static_cast<double>(rand_int(rng, 0, 1));
    else if (is_integral(dtype) || integer_valued) x = static_cast<double>(rand_int(rng, static_cast<std::int64_t>(lo), static_cast<std::int64_t>(hi)));
    else x = std::uniform_real_distribution<double>(lo, hi)(rng);
  }
  return from_values(v, shape, dtype);
}

// How an input tensor is laid out in memory.
enum class Make { Contiguous, Transposed, Strided, Reversed, Broadcast, Permuted };
inline constexpr Make kAllMakes[] = {Make::Contiguous, Make::Transposed, Make::Strided,
                                     Make::Reversed,   Make::Broadcast,  Make::Permuted};
inline const char* make_name(Make m) {
  switch (m) {
    case Make::Contiguous: return "contiguous";
    case Make::Transposed: return "transposed";
    case Make::Strided: return "strided (step 2, offset 1)";
    case Make::Reversed: return "reversed (negative steps)";
    case Make::Broadcast: return "broadcast (stride 0)";
    case Make::Permuted: return "permuted";
  }
  return "?";
}

// A random tensor of `shape` laid out as `how` says (a view of a bigger or permuted base).
inline Tensor make_input(const Shape& shape, DType dtype, std::mt19937& rng, Make how, double lo = -3,
                         double hi = 3, bool integer_valued = false) {
  const std::size_t r = shape.size();
  switch (how) {
    case Make::Contiguous: break;
    case Make::Transposed: {
      Shape rev(shape.rbegin(), shape.rend());
      return random_tensor(rev, dtype, rng, lo, hi, integer_valued).transpose();
    }
    case Make::Strided: {
      Shape big(shape);
      for (auto& d : big) d = 2 * d + 1;
      std::vector<Index> idx;
      for (std::size_t i = 0; i < r; ++i) idx.emplace_back(Slice(1, 1 + 2 * shape[i], 2));
      return random_tensor(big, dtype, rng, lo, hi, integer_valued).index(idx);
    }
    case Make::Reversed: {
      std::vector<Index> idx(r, Index(Slice(none, none, -1)));
      return random_tensor(shape, dtype, rng, lo, hi, integer_valued).index(idx);
    }
    case Make::Broadcast: {
      Shape small(shape);
      for (auto& d : small)
        if (rand_int(rng, 0, 1) == 0) d = 1;
      return random_tensor(small, dtype, rng, lo, hi, integer_valued).broadcast_to(shape);
    }
    case Make::Permuted: {
      std::vector<std::int64_t> perm(r);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      Shape base(r);
      for (std::size_t i = 0; i < r; ++i) base[static_cast<std::size_t>(perm[i])] = shape[i];
      return random_tensor(base, dtype, rng, lo, hi, integer_valued).permute(perm);
    }
  }
  return random_tensor(shape, dtype, rng, lo, hi, integer_valued);
}

// ------------------------------------------------------------------ the naive oracle

// A contiguous copy of t converted to dtype (naive::copy).
inline Tensor naive_cast(const Tensor& t, DType dtype) {
  Tensor out = empty(t.shape(), dtype);
  if (t.size() == 0) return out;
  const Layout ol = layout_of(out), il = layout_of(t);
  visit_dtype(dtype, [&](auto to) {
    using TO = typename decltype(to)::type;
    visit_dtype(t.dtype(), [&](auto from) {
      using TI = typename decltype(from)::type;
      naive::copy<TO, TI>(static_cast<TO*>(out.data_ptr()), ol, static_cast<const TI*>(t.data_ptr()), il);
    });
  });
  return out;
}

// naive::unary on x (already in the dtype of the computation).
inline Tensor naive_unary(OpId op, const Tensor& x, double p0 = 0, double p1 = 0) {
  Tensor out = empty(x.shape(), x.dtype());
  if (x.size() == 0) return out;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      naive::unary<T>(op, out.data<T>(), layout_of(out), x.data<T>(), layout_of(x), p0, p1);
    }
  });
  return out;
}

// naive::binary on a and b, both converted to dtype first, broadcast.
inline Tensor naive_binary(OpId op, const Tensor& a_in, const Tensor& b_in, DType dtype) {
  const Tensor a = naive_cast(a_in, dtype), b = naive_cast(b_in, dtype);
  const Shape s = broadcast(a.shape(), b.shape());
  Tensor out = empty(s, dtype);
  if (out.size() == 0) return out;
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      naive::binary<T>(op, out.data<T>(), layout_of(out), a.data<T>(), layout_as(a, s), b.data<T>(), layout_as(b, s));
    }
  });
  return out;
}

// naive::compare (comparisons and logic) with both operands converted to dtype: bool output.
inline Tensor naive_compare(OpId op, const Tensor& a_in, const Tensor& b_in, DType dtype) {
  const Tensor a = naive_cast(a_in, dtype), b = naive_cast(b_in, dtype);
  const Shape s = broadcast(a.shape(), b.shape());
  Tensor out = empty(s, kBool);
  if (out.size() == 0) return out;
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    naive::compare<T>(op, out.data<bool>(), layout_of(out), a.data<T>(), layout_as(a, s), b.data<T>(),
                      layout_as(b, s));
  });
  return out;
}

inline Tensor naive_where(const Tensor& cond, const Tensor& a_in, const Tensor& b_in, DType dtype) {
  const Tensor a = naive_cast(a_in, dtype), b = naive_cast(b_in, dtype);
  const Shape s = broadcast(cond.shape(), broadcast(a.shape(), b.shape()));
  Tensor out = empty(s, dtype);
  if (out.size() == 0) return out;
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    naive::where<T>(out.data<T>(), layout_of(out), cond.data<bool>(), layout_as(cond, s), a.data<T>(),
                    layout_as(a, s), b.data<T>(), layout_as(b, s));
  });
  return out;
}

// naive::reduce (Sum/Max/Min) of x over `axes` (normalised, non-empty or all), in x's dtype.
inline Tensor naive_reduce(OpId op, const Tensor& x, std::vector<std::int64_t> axes, bool keepdims) {
  const auto r = static_cast<std::int64_t>(x.rank());
  if (axes.empty()) {
    axes.resize(static_cast<std::size_t>(r));
    std::iota(axes.begin(), axes.end(), 0);
  }
  std::vector<bool> red(static_cast<std::size_t>(r), false);
  for (auto a : axes) red[static_cast<std::size_t>(a < 0 ? a + r : a)] = true;
  Shape keep, out_shape;
  for (std::int64_t i = 0; i < r; ++i) {
    keep.push_back(red[i] ? 1 : x.shape()[i]);
    if (!red[i] || keepdims) out_shape.push_back(keep.back());
  }
  Tensor out = empty(keep, x.dtype());
  if (out.size() > 0) {
    Layout ol = contiguous_layout(keep);
    for (int i = 0; i < ol.rank; ++i) {
      if (red[i]) ol.strides[i] = 0;
      ol.shape[i] = x.shape()[i];
    }
    visit_dtype(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) naive::reduce<T>(op, out.data<T>(), ol, x.data<T>(), layout_of(x));
    });
  }
  return Tensor(out.storage(), out_shape, contiguous_strides(out_shape), 0, out.dtype());
}

// naive::arg_reduce along axis (normalised): int64 of x's shape minus the axis.
inline Tensor naive_arg_reduce(OpId op, const Tensor& x, int axis) {
  Shape s = x.shape();
  s.erase(s.begin() + axis);
  Tensor out = empty(s, kInt64);
  if (out.size() == 0) return out;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) naive::arg_reduce<T>(op, out.data<std::int64_t>(), x.data<T>(), layout_of(x), axis);
  });
  return out;
}

// naive::argsort along axis (normalised): int64 of x's shape; bool as int32 (false < true).
inline Tensor naive_argsort(const Tensor& x, int axis, bool descending) {
  if (x.dtype() == kBool) return naive_argsort(naive_cast(x, kInt32), axis, descending);
  Tensor out = empty(x.shape(), kInt64);
  if (out.size() == 0) return out;
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) naive::argsort<T>(out.data<std::int64_t>(), x.data<T>(), layout_of(x), axis, descending);
  });
  return out;
}

// ------------------------------------------------------------------ comparison

struct Tol {
  double rtol, atol;
};
inline Tol default_tol(DType d) {
  switch (d) {
    case DType::Float32: return {2e-5, 2e-6};
    case DType::Float64: return {1e-12, 1e-13};
    default: return {0, 0};
  }
}

inline bool close(double a, double e, Tol tol) {
  if (std::isnan(a) || std::isnan(e)) return std::isnan(a) && std::isnan(e);
  if (std::isinf(a) || std::isinf(e)) return a == e;
  return std::abs(a - e) <= tol.atol + tol.rtol * std::abs(e);
}

// Same shape, same dtype, values equal within tol (by default the tolerance of the dtype;
// NaN matches NaN, infinities match exactly). Reports the first mismatches.
inline void check_close(const Tensor& actual, const Tensor& expected, Tol tol = {-1, -1}) {
  REQUIRE(actual.defined());
  REQUIRE(expected.defined());
  INFO("actual shape " << str(actual.shape()) << " dtype " << dtype_name(actual.dtype()) << "; expected shape "
                       << str(expected.shape()) << " dtype " << dtype_name(expected.dtype()));
  CHECK(str(actual.shape()) == str(expected.shape()));
  CHECK(dtype_name(actual.dtype()) == std::string(dtype_name(expected.dtype())));
  if (actual.shape() != expected.shape()) return;
  if (tol.rtol < 0) tol = default_tol(expected.dtype());
  const auto a = values(actual), e = values(expected);
  std::size_t bad = 0;
  std::ostringstream first;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!close(a[i], e[i], tol)) {
      if (bad < 5) first << "  [" << i << "] actual " << a[i] << " expected " << e[i] << "\n";
      ++bad;
    }
  }
  INFO("mismatches (flat index):\n" << first.str());
  CHECK(bad == 0);
}

// Values of t equal `expected` (row-major) within tol, and t has the given shape.
inline void check_values(const Tensor& t, const Shape& shape, const std::vector<double>& expected,
                         Tol tol = {1e-6, 1e-6}) {
  REQUIRE(t.defined());
  INFO("shape " << str(t.shape()) << " dtype " << dtype_name(t.dtype()));
  REQUIRE(str(t.shape()) == str(shape));
  const auto a = values(t);
  REQUIRE(a.size() == expected.size());
  std::size_t bad = 0;
  std::ostringstream first;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!close(a[i], expected[i], tol)) {
      if (bad < 5) first << "  [" << i << "] actual " << a[i] << " expected " << expected[i] << "\n";
      ++bad;
    }
  }
  INFO("mismatches (flat index):\n" << first.str());
  CHECK(bad == 0);
}

// Row-major multi-index of flat index i in shape s.
inline std::vector<std::int64_t> unravel(std::int64_t i, const Shape& s) {
  std::vector<std::int64_t> idx(s.size());
  for (std::size_t d = s.size(); d-- > 0;) {
    idx[d] = s[d] ? i % s[d] : 0;
    i = s[d] ? i / s[d] : 0;
  }
  return idx;
}

}  // namespace th
