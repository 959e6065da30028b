// Convolution, pooling and dropout as composites of primitives (slices, stack, matmul,
// reductions): they need no kernel and no gradient rule of their own, and are twice
// differentiable. A fused primitive replaces one only when a benchmark shows it matters.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

struct Window {
  std::int64_t out, pad_before, padded;
};

// Output length and padding along one spatial axis, as TensorFlow computes them.
Window window(std::int64_t in, std::int64_t k, std::int64_t stride, Padding padding, const char* op,
              const Shape& x_shape) {
  if (k <= 0 || stride <= 0) {
    throw ValueError(fmt::format("{}: window {} and stride {} must be positive", op, k, stride));
  }
  if (padding == Padding::Valid) {
    if (in < k) {
      throw ShapeError(fmt::format("{}: window {} is larger than the input {} (shape {}) with valid padding", op, k,
                                   in, shape_str(x_shape)));
    }
    return {(in - k) / stride + 1, 0, in};
  }
  const std::int64_t out = (in + stride - 1) / stride;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * stride + k - in, 0);
  return {out, total / 2, in + total};
}

void check_nhwc(const Tensor& x, const char* op) {
  if (!x.defined() || x.rank() != 4) {
    throw ShapeError(fmt::format("{}: input must be [batch, height, width, channels], got {}", op,
                                 x.defined() ? shape_str(x.shape()) : std::string("undefined")));
  }
}

// [batch, oh, ow, kh * kw, c]: every window of x, padded with `fill` outside.
Tensor patches(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride, Padding padding, double fill,
               const char* op) {
  const Window wh = window(x.dim(1), kh, stride, padding, op, x.shape());
  const Window ww = window(x.dim(2), kw, stride, padding, op, x.shape());
  Tensor xp = x;
  if (wh.padded != x.dim(1) || ww.padded != x.dim(2)) {
    const Shape padded{x.dim(0), wh.padded, ww.padded, x.dim(3)};
    xp = slice_scatter(x, padded, {0, wh.pad_before, ww.pad_before, 0}, {1, 1, 1, 1});
    if (fill != 0) {
      const Tensor inside = slice_scatter(ones_like(x), padded, {0, wh.pad_before, ww.pad_before, 0}, {1, 1, 1, 1});
      xp = where(inside > 0.0, xp, fill);
    }
  }
  std::vector<Tensor> taps;
  for (std::int64_t i = 0; i < kh; ++i) {
    for (std::int64_t j = 0; j < kw; ++j) {
      taps.push_back(xp(all, Slice(i, i + (wh.out - 1) * stride + 1, stride),
                        Slice(j, j + (ww.out - 1) * stride + 1, stride), all));
    }
  }
  return stack(taps, 3);
}

std::int64_t default_stride(std::int64_t pool, std::int64_t stride) { return stride > 0 ? stride : pool; }

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& filters, std::int64_t stride, Padding padding) {
  check_nhwc(x, "conv2d");
  if (!filters.defined() || filters.rank() != 4) {
    throw ShapeError(fmt::format("conv2d: filters must be [kh, kw, in_channels, out_channels], got {}",
                                 filters.defined() ? shape_str(filters.shape()) : std::string("undefined")));
  }
  if (filters.dim(2) != x.dim(3)) {
    throw ShapeError(fmt::format("conv2d: input {} has {} channels but filters {} expect {}", shape_str(x.shape()),
                                 x.dim(3), shape_str(filters.shape()), filters.dim(2)));
  }
  const std::int64_t kh = filters.dim(0), kw = filters.dim(1), cin = filters.dim(2), cout = filters.dim(3);
  const Tensor p = patches(x, kh, kw, stride, padding, 0.0, "conv2d");  // [b, oh, ow, kh*kw, cin]
  const std::int64_t b = p.dim(0), oh = p.dim(1), ow = p.dim(2);
  const Tensor cols = p.reshape({b * oh * ow, kh * kw * cin});
  return matmul(cols, filters.reshape({kh * kw * cin, cout})).reshape({b, oh, ow, cout});
}

Tensor max_pool2d(const Tensor& x, std::int64_t pool, std::int64_t stride, Padding padding) {
  check_nhwc(x, "max_pool2d");
  const double lowest = -std::numeric_limits<double>::infinity();
  return max(patches(x, pool, pool, default_stride(pool, stride), padding, lowest, "max_pool2d"), {3});
}

Tensor avg_pool2d(const Tensor& x, std::int64_t pool, std::int64_t stride, Padding padding) {
  check_nhwc(x, "avg_pool2d");
  const std::int64_t s = default_stride(pool, stride);
  const Tensor total = sum(patches(x, pool, pool, s, padding, 0.0, "avg_pool2d"), {3});
  if (padding == Padding::Valid) return total * (1.0 / static_cast<double>(pool * pool));
  // with same padding, average over the window's elements inside the input (as TensorFlow)
  const Tensor count = sum(patches(ones(x.shape(), x.dtype(), x.device()), pool, pool, s, padding, 0.0, "avg_pool2d"), {3});
  return total / count;
}

Tensor dropout(const Tensor& x, double rate, Generator& gen) {
  if (!(rate >= 0 && rate < 1)) throw ValueError(fmt::format("dropout: rate must be in [0, 1), got {}", rate));
  if (rate == 0) return x;
  const Tensor keep = uniform(x.shape(), gen, 0, 1, kFloat32, x.device()) >= rate;
  return where(keep, x * (1.0 / (1.0 - rate)), 0.0);
}

}  // namespace tapeflow
