#include "tapeflow/shape.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tapeflow/error.hpp"

namespace tapeflow {

std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  bool overflow = false;
  for (auto d : shape) overflow = __builtin_mul_overflow(n, d, &n) || overflow;
  for (auto d : shape)
    if (d == 0) return 0;
  if (overflow) throw ValueError(fmt::format("shape {} has more elements than an int64 can count", shape_str(shape)));
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    if (__builtin_mul_overflow(s, shape[i] > 0 ? shape[i] : 1, &s)) {
      throw ValueError(fmt::format("shape {} has more elements than an int64 can count", shape_str(shape)));
    }
  }
  return strides;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    // align from the right
    const std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw ShapeError(fmt::format(
          "{}: shapes {} and {} cannot be broadcast: size {} vs {} at axis {} (counting from the right: {})",
          op, shape_str(a), shape_str(b), da, db, i, static_cast<std::int64_t>(i) - static_cast<std::int64_t>(rank)));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int normalize_axis(std::int64_t axis, std::int64_t rank, const char* op) {
  if (axis < -rank || axis >= rank) {
    throw IndexError(fmt::format("{}: axis {} is out of range for a tensor of rank {}", op, axis, rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

}  // namespace tapeflow
