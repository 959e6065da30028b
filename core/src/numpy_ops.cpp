// NumPy's array manipulation, masks, tests and norms as composites of the primitives of ops.def:
// views (reshape, broadcast_to, slices with negative steps), concat, where and reductions. Each
// is differentiable through the rules of its parts and runs on every device; none has a kernel.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "internal.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

using detail::check_defined;
using detail::reduce_axes;

void check_count(std::int64_t n, const char* op, const char* what, const Shape& shape) {
  if (n < 0) throw ValueError(fmt::format("{}: {} must be >= 0, got {} (shape {})", op, what, n, shape_str(shape)));
}

// [..., n, ...] -> [..., n * times, ...] along axis: each entry `times` times in a row
// (`outer` false, np.repeat), or the whole axis `times` times over (`outer` true, np.tile).
Tensor repeat_axis(const Tensor& x, int axis, std::int64_t times, bool outer) {
  if (times == 1) return x;
  const Shape& s = x.shape();
  Shape expanded(s.begin(), s.begin() + axis);
  Shape merged = expanded;
  if (outer) expanded.push_back(times);
  expanded.push_back(s[static_cast<std::size_t>(axis)]);
  if (!outer) expanded.push_back(times);
  merged.push_back(s[static_cast<std::size_t>(axis)] * times);
  expanded.insert(expanded.end(), s.begin() + axis + 1, s.end());
  merged.insert(merged.end(), s.begin() + axis + 1, s.end());
  return x.expand_dims(outer ? axis : axis + 1).broadcast_to(expanded).reshape(merged);
}

// x with a block of `before` and `after` entries of value along axis.
Tensor pad_axis(const Tensor& x, int axis, std::int64_t before, std::int64_t after, double value) {
  if (before == 0 && after == 0) return x;
  std::vector<Tensor> parts;
  Shape s = x.shape();
  if (before > 0) {
    s[static_cast<std::size_t>(axis)] = before;
    parts.push_back(full(s, value, x.dtype(), x.device()));
  }
  parts.push_back(x);
  if (after > 0) {
    s[static_cast<std::size_t>(axis)] = after;
    parts.push_back(full(s, value, x.dtype(), x.device()));
  }
  return concat(parts, axis);
}

// x where keep, else zero (false for bool).
Tensor keep_or_zero(const Tensor& x, const Tensor& keep) {
  return x.dtype() == kBool ? logical_and(x, keep) : where(keep, x, 0.0);
}

// bool [m, n]: col - row <= k (lower, tril) or col - row >= k (upper, triu), for x's last two axes
Tensor triangle(const Tensor& x, std::int64_t k, bool lower, const char* op) {
  check_defined(x, op);
  if (x.rank() < 2) {
    throw ShapeError(fmt::format("{}: needs at least 2 dimensions, got shape {}", op, shape_str(x.shape())));
  }
  const std::int64_t m = x.shape()[static_cast<std::size_t>(x.rank() - 2)];
  const std::int64_t n = x.shape()[static_cast<std::size_t>(x.rank() - 1)];
  const Tensor rows = arange(m, kInt64, x.device()).reshape({m, 1});
  const Tensor cols = arange(n, kInt64, x.device()).reshape({1, n});
  const Tensor diag = cols - rows;
  return keep_or_zero(x, lower ? diag <= static_cast<double>(k) : diag >= static_cast<double>(k));
}

// Not-zero as bool (NaN counts as true, as in NumPy).
Tensor truth(const Tensor& x, const char* op) {
  check_defined(x, op);
  return x.dtype() == kBool ? x : x != 0.0;
}

}  // namespace

Tensor tile(const Tensor& x, const std::vector<std::int64_t>& reps) {
  check_defined(x, "tile");
  for (auto r : reps) check_count(r, "tile", "every repetition", x.shape());
  Tensor y = x;
  // the shorter of rank and reps is padded with leading 1s, as NumPy
  while (y.rank() < static_cast<std::int64_t>(reps.size())) y = y.expand_dims(0);
  const std::size_t lead = static_cast<std::size_t>(y.rank()) - reps.size();
  for (std::size_t i = 0; i < reps.size(); ++i) y = repeat_axis(y, static_cast<int>(lead + i), reps[i], true);
  return y;
}

Tensor repeat(const Tensor& x, std::int64_t repeats, std::int64_t axis) {
  check_defined(x, "repeat");
  check_count(repeats, "repeat", "repeats", x.shape());
  return repeat_axis(x, normalize_axis(axis, x.rank(), "repeat"), repeats, false);
}

Tensor repeat(const Tensor& x, std::int64_t repeats) {
  check_defined(x, "repeat");
  check_count(repeats, "repeat", "repeats", x.shape());
  return repeat_axis(x.reshape({-1}), 0, repeats, false);
}

Tensor pad(const Tensor& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& pad_width,
           double constant_value) {
  check_defined(x, "pad");
  const std::size_t rank = static_cast<std::size_t>(x.rank());
  if (pad_width.size() != rank && pad_width.size() != 1) {
    throw ValueError(fmt::format("pad: pad_width has {} (before, after) pairs for shape {}; needs {} or 1",
                                 pad_width.size(), shape_str(x.shape()), rank));
  }
  for (const auto& [before, after] : pad_width) {
    if (before < 0 || after < 0) {
      throw ValueError(fmt::format("pad: pad widths must be >= 0, got ({}, {}) for shape {}", before, after,
                                   shape_str(x.shape())));
    }
  }
  Tensor y = x;
  for (std::size_t a = 0; a < rank; ++a) {
    const auto& w = pad_width[pad_width.size() == 1 ? 0 : a];
    y = pad_axis(y, static_cast<int>(a), w.first, w.second, constant_value);
  }
  return y;
}

Tensor flip(const Tensor& x, const std::vector<std::int64_t>& axes) {
  check_defined(x, "flip");
  std::vector<Index> index(static_cast<std::size_t>(x.rank()), Index(all));
  for (auto a : reduce_axes(axes, x.rank(), "flip")) index[static_cast<std::size_t>(a)] = Slice(none, none, -1);
  return x.index(index);
}

Tensor tril(const Tensor& x, std::int64_t k) { return triangle(x, k, true, "tril"); }
Tensor triu(const Tensor& x, std::int64_t k) { return triangle(x, k, false, "triu"); }

Tensor reduce_any(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  const Tensor t = truth(x, "reduce_any");
  reduce_axes(axes, x.rank(), "reduce_any");
  return sum(t.astype(kInt64), axes, keepdims) > 0.0;
}

Tensor reduce_all(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  const Tensor t = truth(x, "reduce_all");
  reduce_axes(axes, x.rank(), "reduce_all");
  return sum(logical_not(t).astype(kInt64), axes, keepdims) == 0.0;
}

Tensor isnan(const Tensor& x) {
  check_defined(x, "isnan");
  return is_floating(x.dtype()) ? x != x : zeros(x.shape(), kBool, x.device());
}

Tensor isinf(const Tensor& x) {
  check_defined(x, "isinf");
  if (!is_floating(x.dtype())) return zeros(x.shape(), kBool, x.device());
  return abs(x) == std::numeric_limits<double>::infinity();
}

Tensor isfinite(const Tensor& x) {
  check_defined(x, "isfinite");
  if (!is_floating(x.dtype())) return ones(x.shape(), kBool, x.device());
  return abs(x) < std::numeric_limits<double>::infinity();  // false for NaN too
}

Tensor reduce_std(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims, std::int64_t ddof) {
  check_defined(x, "reduce_std");
  std::int64_t n = 1;
  for (auto a : reduce_axes(axes, x.rank(), "reduce_std")) n *= x.shape()[static_cast<std::size_t>(a)];
  if (ddof < 0) throw ValueError(fmt::format("reduce_std: ddof must be >= 0, got {} (shape {})", ddof, shape_str(x.shape())));
  const Tensor v = var(x, axes, keepdims);
  if (ddof == 0) return sqrt(v);
  // n - ddof <= 0 gives NaN (NumPy gives inf or NaN with a warning)
  const double scale = n > ddof ? static_cast<double>(n) / static_cast<double>(n - ddof) : std::nan("");
  return sqrt(v * scale);
}

Tensor norm(const Tensor& x, double ord, const std::vector<std::int64_t>& axes, bool keepdims) {
  check_defined(x, "norm");
  reduce_axes(axes, x.rank(), "norm");
  if (ord != 1 && ord != 2) {
    throw ValueError(fmt::format("norm: ord must be 1 or 2 (vector norms), got {} (shape {})", ord,
                                 shape_str(x.shape())));
  }
  if (x.dtype() == kBool) {
    throw DTypeError(fmt::format("norm: bool tensors are not supported (shape {})", shape_str(x.shape())));
  }
  const Tensor xf = is_floating(x.dtype()) ? x : x.astype(kFloat32);
  return ord == 1 ? sum(abs(xf), axes, keepdims) : sqrt(sum(square(xf), axes, keepdims));
}

namespace {
// The inclusive scan of y along `axis` by Hillis-Steele: after the pass of shift d, y[i]
// combines x[max(0, i - 2d + 1) .. i]; combine(later, earlier) is one element-wise op, so the
// scan is O(n log n) ops of public tensor ops and differentiable through them. The first d
// entries of a pass are kept as they are (no identity padded in, so max/min need none).
template <class Combine>
Tensor scan_axis(Tensor y, int axis, Combine combine) {
  const std::int64_t n = y.shape()[static_cast<std::size_t>(axis)];
  std::vector<Index> lead(static_cast<std::size_t>(y.rank()), Index(all)), tail = lead, head = lead;
  const auto at = static_cast<std::size_t>(axis);
  for (std::int64_t d = 1; d < n; d *= 2) {
    lead[at] = Slice(0, d);
    tail[at] = Slice(d, n);
    head[at] = Slice(0, n - d);
    y = concat({y.index(lead), combine(y.index(tail), y.index(head))}, axis);
  }
  return y;
}

// cumsum / cumprod / cummax / cummin: the checks, bool as int64, then the scan of x (flipped
// along the axis for `reverse`; shifted by one with `identity` in front for `exclusive`).
template <class Combine>
Tensor cumulative(const Tensor& x, std::int64_t axis_in, bool exclusive, bool reverse, double identity,
                  const char* op, Combine combine) {
  check_defined(x, op);
  if (x.rank() == 0) {
    throw ShapeError(fmt::format("{}: needs at least 1 dimension, got shape {}", op, shape_str(x.shape())));
  }
  const int axis = normalize_axis(axis_in, x.rank(), op);
  Tensor y = x.dtype() == kBool ? x.astype(kInt64) : x;
  const std::int64_t n = y.shape()[static_cast<std::size_t>(axis)];
  if (n == 0) return y;
  if (reverse) y = flip(y, {axis});
  if (exclusive) {
    std::vector<Index> head(static_cast<std::size_t>(y.rank()), Index(all));
    head[static_cast<std::size_t>(axis)] = Slice(0, n - 1);
    y = pad_axis(y.index(head), axis, 1, 0, identity);
  }
  y = scan_axis(y, axis, combine);
  return reverse ? flip(y, {axis}) : y;
}
}  // namespace

Tensor cumsum(const Tensor& x, std::int64_t axis, bool exclusive, bool reverse) {
  return cumulative(x, axis, exclusive, reverse, 0.0, "cumsum",
                    [](const Tensor& later, const Tensor& earlier) { return later + earlier; });
}

Tensor cumprod(const Tensor& x, std::int64_t axis, bool exclusive, bool reverse) {
  return cumulative(x, axis, exclusive, reverse, 1.0, "cumprod",
                    [](const Tensor& later, const Tensor& earlier) { return later * earlier; });
}

// maximum's / minimum's gradient goes to its first operand on ties and to a NaN operand (the
// first if both): here the later block, so each y[i]'s gradient reaches the last position
// holding its extremum, or the last NaN (the index torch.cummax / cummin return).
Tensor cummax(const Tensor& x, std::int64_t axis) {
  return cumulative(x, axis, false, false, 0.0, "cummax",
                    [](const Tensor& later, const Tensor& earlier) { return maximum(later, earlier); });
}

Tensor cummin(const Tensor& x, std::int64_t axis) {
  return cumulative(x, axis, false, false, 0.0, "cummin",
                    [](const Tensor& later, const Tensor& earlier) { return minimum(later, earlier); });
}

}  // namespace tapeflow
