// Convolution, average pooling and dropout as composites of primitives (im2col, matmul,
// reductions): they need no kernel and no gradient rule of their own, and are twice
// differentiable. The windows are primitives: im2col and col2im, each the other's gradient (as a
// stack of kh * kw strided slices they cost a convnet epoch a quarter of its time, most of it in
// the slices' gradients, kh * kw zero-filled images summed), and max pooling's
// max_pool_select and max_pool_scatter (as max over im2col's windows, its backward was an
// argmax, a compare, a select and a col2im over the windows: ~3.4 ms of a [64, 26, 26, 32]
// pool's 4 ms).
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "internal.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

using detail::layout_of;
using detail::ptr;

struct Window {
  std::int64_t out, pad_before;
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
    return {(in - k) / stride + 1, 0};
  }
  // ceil(in / stride) and (out - 1) * stride + k - in, in forms that cannot overflow:
  // (out - 1) * stride < in
  const std::int64_t out = in / stride + (in % stride != 0 ? 1 : 0);
  const std::int64_t total = out == 0 ? 0 : std::max<std::int64_t>(k - (in - (out - 1) * stride), 0);
  return {out, total / 2};
}

std::string dim_str(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); }

void check_nhwc(const Tensor& x, const char* op) {
  if (!x.defined() || x.rank() != 4) {
    throw ShapeError(fmt::format("{}: input must be [batch, height, width, channels], got {}", op, dim_str(x)));
  }
}

// The rows (or columns) a window of k taps `dilation` apart spans: (k - 1) * dilation + 1.
std::int64_t dilated_span(std::int64_t k, std::int64_t dilation, const char* op) {
  if (dilation <= 0) throw ValueError(fmt::format("{}: dilation must be positive, got {}", op, dilation));
  std::int64_t span = 0;
  if (k <= 0) return k;  // window() reports it
  if (__builtin_mul_overflow(k - 1, dilation, &span) || span == std::numeric_limits<std::int64_t>::max()) {
    throw ValueError(fmt::format("{}: a window of {} taps at dilation {} spans more than an int64 can count", op, k,
                                 dilation));
  }
  return span + 1;
}

// ShapeError unless x is [b, h, w, c] and filters a rank-4 `layout` with c at `channel_axis`.
void check_filters(const Tensor& x, const Tensor& filters, const char* layout, std::int64_t channel_axis,
                   const char* op) {
  check_nhwc(x, op);
  if (!filters.defined() || filters.rank() != 4) {
    throw ShapeError(fmt::format("{}: filters must be {}, got {}", op, layout, dim_str(filters)));
  }
  if (filters.dim(channel_axis) != x.dim(3)) {
    throw ShapeError(fmt::format("{}: input {} has {} channels but filters {} expect {}", op, shape_str(x.shape()),
                                 x.dim(3), shape_str(filters.shape()), filters.dim(channel_axis)));
  }
}

// The windows of an image of `image` [b, h, w, c] as the kernels take them.
kernels::Window2d window2d(const Shape& image, std::int64_t kh, std::int64_t kw, std::int64_t stride, Padding padding,
                           const char* op, std::int64_t dilation = 1) {
  const Window wh = window(image[1], dilated_span(kh, dilation, op), stride, padding, op, image);
  const Window ww = window(image[2], dilated_span(kw, dilation, op), stride, padding, op, image);
  std::int64_t taps = 0;
  if (__builtin_mul_overflow(kh, kw, &taps)) {
    throw ValueError(fmt::format("{}: a {}x{} window has more taps than an int64 can count", op, kh, kw));
  }
  kernels::Window2d w;
  w.kh = kh;
  w.kw = kw;
  w.dilation = dilation;
  w.stride = stride;
  w.pad_top = wh.pad_before;
  w.pad_left = ww.pad_before;
  w.oh = wh.out;
  w.ow = ww.out;
  return w;
}

// `fill` in T: an integer image saturates (-inf is the lowest value).
template <class T>
T fill_value(double fill) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(fill)) return T(0);
    if (fill <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (fill >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  }
  return static_cast<T>(fill);
}

void record_window(OpId id, const Tensor& in, const Tensor& out, const Shape& image, std::int64_t kh, std::int64_t kw,
                   std::int64_t stride, Padding padding, double fill, std::int64_t dilation) {
  detail::record(id, {in}, {out}, [&] {
    OpAttrs a;
    a.shape = image;
    a.axes = {kh, kw, stride, padding == Padding::Same ? 1 : 0, dilation};
    a.p0 = fill;
    return a;
  });
}

// im2col, with errors in the name of the op that asked (conv2d, avg_pool2d, ...).
Tensor patches(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride, Padding padding, double fill,
               const char* op, std::int64_t dilation = 1) {
  check_nhwc(x, op);
  const kernels::Window2d w = window2d(x.shape(), kh, kw, stride, padding, op, dilation);
  Tensor out = detail::empty_for({x.dim(0), w.oh, w.ow, kh * kw, x.dim(3)}, x.dtype(), x.device(), op);
  if (out.size() > 0) {
    const kernels::Layout xl = layout_of(x, op);
    TAPEFLOW_DISPATCH_NUMERIC(x.dtype(), op,
                              TAPEFLOW_KERNEL(out.device(), op,
                                              im2col<T>(ptr<T>(out), ptr<T>(x), xl, w, fill_value<T>(fill))));
  }
  record_window(OpId::Im2col, x, out, x.shape(), kh, kw, stride, padding, fill, dilation);
  return out;
}

// 0 means the pool size (Keras's strides=None); a negative stride is an error
std::int64_t default_stride(std::int64_t pool, std::int64_t stride, const char* op) {
  if (stride < 0) {
    throw ValueError(fmt::format("{}: stride must be positive (or 0: the pool size {}), got {}", op, pool, stride));
  }
  return stride > 0 ? stride : pool;
}

// max_pool_select (v's values at x's window maxima) or max_pool_scatter (v = g, their adjoint),
// with errors in the name of the op that asked.
Tensor max_pool_op(OpId id, const Tensor& x, const Tensor& v, std::int64_t pool, std::int64_t stride_in,
                   Padding padding, const char* op) {
  check_nhwc(x, op);
  detail::check_defined(v, op);
  detail::check_same_device(x, v, op);
  if (v.dtype() != x.dtype()) {
    throw DTypeError(fmt::format("{}: {} values for a {} input", op, dtype_name(v.dtype()), dtype_name(x.dtype())));
  }
  const std::int64_t stride = default_stride(pool, stride_in, op);
  const kernels::Window2d w = window2d(x.shape(), pool, pool, stride, padding, op);
  const Shape pooled{x.dim(0), w.oh, w.ow, x.dim(3)};
  const bool select = id == OpId::MaxPoolSelect;
  if (v.shape() != (select ? x.shape() : pooled)) {
    throw ShapeError(fmt::format("{}: {} {} do not fit the input {} (its {}x{} windows, stride {}: {})", op,
                                 select ? "values" : "gradients", shape_str(v.shape()), shape_str(x.shape()), pool,
                                 pool, stride, shape_str(pooled)));
  }
  Tensor out = empty(select ? pooled : x.shape(), x.dtype(), x.device());
  if (out.size() > 0) {
    const kernels::Layout xl = layout_of(x, op), vl = layout_of(v, op);
    if (select) {
      TAPEFLOW_DISPATCH_NUMERIC(
          x.dtype(), op, TAPEFLOW_KERNEL(out.device(), op, pool_select<T>(ptr<T>(out), ptr<T>(x), xl, ptr<T>(v), vl, w)));
    } else {
      TAPEFLOW_DISPATCH_NUMERIC(
          x.dtype(), op, TAPEFLOW_KERNEL(out.device(), op, pool_scatter<T>(ptr<T>(out), ptr<T>(x), xl, ptr<T>(v), vl, w)));
    }
  }
  detail::record(id, {x, v}, {out}, [&] {
    OpAttrs a;
    a.shape = x.shape();
    a.axes = {pool, pool, stride, padding == Padding::Same ? 1 : 0};
    return a;
  });
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& filters, std::int64_t stride, Padding padding, std::int64_t dilation) {
  check_filters(x, filters, "[kh, kw, in_channels, out_channels]", 2, "conv2d");
  const std::int64_t kh = filters.dim(0), kw = filters.dim(1), cin = filters.dim(2), cout = filters.dim(3);
  const Tensor p = patches(x, kh, kw, stride, padding, 0.0, "conv2d", dilation);  // [b, oh, ow, kh*kw, cin]
  const std::int64_t b = p.dim(0), oh = p.dim(1), ow = p.dim(2);
  const Tensor cols = p.reshape({b * oh * ow, kh * kw * cin});
  return matmul(cols, filters.reshape({kh * kw * cin, cout})).reshape({b, oh, ow, cout});
}

Tensor depthwise_conv2d(const Tensor& x, const Tensor& filters, std::int64_t stride, Padding padding,
                        std::int64_t dilation) {
  const char* op = "depthwise_conv2d";
  check_filters(x, filters, "[kh, kw, in_channels, multiplier]", 2, op);
  const std::int64_t kh = filters.dim(0), kw = filters.dim(1), c = filters.dim(2), mult = filters.dim(3);
  const Tensor p = patches(x, kh, kw, stride, padding, 0.0, op, dilation);  // [b, oh, ow, kh*kw, c]
  const std::int64_t b = p.dim(0), oh = p.dim(1), ow = p.dim(2);
  // one matmul per channel: [c, b*oh*ow, kh*kw] @ [c, kh*kw, mult] -> [c, b*oh*ow, mult]
  const Tensor cols = p.reshape({b * oh * ow, kh * kw, c}).permute({2, 0, 1});
  const Tensor f = filters.reshape({kh * kw, c, mult}).permute({1, 0, 2});
  return matmul(cols, f).permute({1, 0, 2}).reshape({b, oh, ow, c * mult});
}

Tensor conv2d_transpose(const Tensor& x, const Tensor& filters, std::int64_t out_h, std::int64_t out_w,
                        std::int64_t stride, Padding padding, std::int64_t dilation) {
  const char* op = "conv2d_transpose";
  check_filters(x, filters, "[kh, kw, out_channels, in_channels]", 3, op);
  if (out_h < 0 || out_w < 0) throw ValueError(fmt::format("{}: output size {}x{} is negative", op, out_h, out_w));
  const std::int64_t kh = filters.dim(0), kw = filters.dim(1), cout = filters.dim(2), cin = filters.dim(3);
  const Shape image{x.dim(0), out_h, out_w, cout};
  const kernels::Window2d win = window2d(image, kh, kw, stride, padding, op, dilation);
  if (win.oh != x.dim(1) || win.ow != x.dim(2)) {
    throw ShapeError(fmt::format("{}: input {} is not the {}x{} windows (stride {}, dilation {}, {} padding) of "
                                 "the output {}, which are {}x{}",
                                 op, shape_str(x.shape()), kh, kw, stride, dilation,
                                 padding == Padding::Same ? "same" : "valid", shape_str(image), win.oh, win.ow));
  }
  // conv2d's input gradient: every input pixel spread over its window, then the windows summed
  // back: [b*h*w, cin] @ [cin, kh*kw*cout] -> cols [b, h, w, kh*kw, cout] -> col2im
  const std::int64_t b = x.dim(0), h = x.dim(1), w = x.dim(2);
  const Tensor cols = matmul(x.reshape({b * h * w, cin}), filters.reshape({kh * kw * cout, cin}).transpose());
  return col2im(cols.reshape({b, h, w, kh * kw, cout}), out_h, out_w, kh, kw, stride, padding, dilation);
}

Tensor max_pool2d(const Tensor& x, std::int64_t pool, std::int64_t stride, Padding padding) {
  return max_pool_op(OpId::MaxPoolSelect, x, x, pool, stride, padding, "max_pool2d");
}

Tensor max_pool_select(const Tensor& x, const Tensor& v, std::int64_t pool, std::int64_t stride, Padding padding) {
  return max_pool_op(OpId::MaxPoolSelect, x, v, pool, stride, padding, "max_pool_select");
}

Tensor max_pool_scatter(const Tensor& x, const Tensor& g, std::int64_t pool, std::int64_t stride, Padding padding) {
  return max_pool_op(OpId::MaxPoolScatter, x, g, pool, stride, padding, "max_pool_scatter");
}

Tensor avg_pool2d(const Tensor& x, std::int64_t pool, std::int64_t stride, Padding padding) {
  check_nhwc(x, "avg_pool2d");
  const std::int64_t s = default_stride(pool, stride, "avg_pool2d");
  const Tensor total = sum(patches(x, pool, pool, s, padding, 0.0, "avg_pool2d"), {3});
  if (padding == Padding::Valid) return total * (1.0 / static_cast<double>(pool * pool));
  // with same padding, average over the window's elements inside the input (as TensorFlow)
  const Tensor count = sum(patches(ones(x.shape(), x.dtype(), x.device()), pool, pool, s, padding, 0.0, "avg_pool2d"), {3});
  return total / count;
}

Tensor im2col(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride, Padding padding, double fill,
              std::int64_t dilation) {
  return patches(x, kh, kw, stride, padding, fill, "im2col", dilation);
}

Tensor col2im(const Tensor& cols, std::int64_t h, std::int64_t w, std::int64_t kh, std::int64_t kw,
              std::int64_t stride, Padding padding, std::int64_t dilation) {
  const char* op = "col2im";
  if (!cols.defined() || cols.rank() != 5) {
    throw ShapeError(fmt::format("col2im: cols must be [batch, oh, ow, kh * kw, channels], got {}", dim_str(cols)));
  }
  if (h < 0 || w < 0) throw ValueError(fmt::format("col2im: image size {}x{} is negative", h, w));
  const Shape image{cols.dim(0), h, w, cols.dim(4)};
  const kernels::Window2d win = window2d(image, kh, kw, stride, padding, op, dilation);
  if (cols.dim(1) != win.oh || cols.dim(2) != win.ow || cols.dim(3) != kh * kw) {
    throw ShapeError(fmt::format(
        "col2im: cols {} are not the {}x{} windows (stride {}, dilation {}, {} padding) of {}, which are {}",
        shape_str(cols.shape()), kh, kw, stride, dilation, padding == Padding::Same ? "same" : "valid", shape_str(image),
        shape_str({cols.dim(0), win.oh, win.ow, kh * kw, cols.dim(4)})));
  }
  Tensor out = empty(image, cols.dtype(), cols.device());
  if (out.size() > 0) {
    const kernels::Layout ol = layout_of(out, op), cl = layout_of(cols, op);
    TAPEFLOW_DISPATCH_NUMERIC(cols.dtype(), op,
                              TAPEFLOW_KERNEL(out.device(), op, col2im<T>(ptr<T>(out), ol, ptr<T>(cols), cl, win)));
  }
  record_window(OpId::Col2im, cols, out, image, kh, kw, stride, padding, 0, dilation);
  return out;
}

Tensor dropout(const Tensor& x, double rate, Generator& gen) {
  if (!(rate >= 0 && rate < 1)) throw ValueError(fmt::format("dropout: rate must be in [0, 1), got {}", rate));
  if (rate == 0) return x;
  const Tensor keep = uniform(x.shape(), gen, 0, 1, kFloat32, x.device()) >= rate;
  return where(keep, x * (1.0 / (1.0 - rate)), 0.0);
}

}  // namespace tapeflow
