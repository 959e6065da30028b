#pragma once
/// Shapes and strides.
#include <cstdint>
#include <string>
#include <vector>

namespace tapeflow {

/// A shape or a list of strides (in elements), outermost axis first.
using Shape = std::vector<std::int64_t>;

/// Number of elements of a shape (1 for rank 0).
std::int64_t numel(const Shape& shape);
/// Row-major contiguous strides of a shape.
Shape contiguous_strides(const Shape& shape);
/// "[2, 3]".
std::string shape_str(const Shape& shape);
/// NumPy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// An axis in [-rank, rank) made non-negative; throws IndexError naming `op`.
int normalize_axis(std::int64_t axis, std::int64_t rank, const char* op);

}  // namespace tapeflow
