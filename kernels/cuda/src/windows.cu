// The windows of conv2d and pooling: im2col, col2im, and max pooling's pool_select and
// pool_scatter. One CUDA thread per output element, channels innermost, so neighbouring
// threads read and write neighbouring addresses; no atomics (gathers, in the naive kernels'
// order of additions, so the same sums).
#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;

template <class T>
__global__ void im2col_kernel(T* out, const T* in, Layout in_l, Window2d w, T fill, i64 n) {
  const i64 c = in_l.shape[3], taps = w.kh * w.kw;
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    i64 r = e;
    const i64 ch = r % c;
    r /= c;
    const i64 t = r % taps;
    r /= taps;
    const i64 j = r % w.ow;
    r /= w.ow;
    const i64 i = r % w.oh, b = r / w.oh;
    const i64 row = i * w.stride - w.pad_top + t / w.kw * w.dilation;
    const i64 col = j * w.stride - w.pad_left + t % w.kw * w.dilation;
    const bool inside = row >= 0 && row < in_l.shape[1] && col >= 0 && col < in_l.shape[2];
    out[e] = inside ? in[b * in_l.strides[0] + row * in_l.strides[1] + col * in_l.strides[2] + ch * in_l.strides[3]]
                    : fill;
  }
}

// Element e of a contiguous [b, h, w, c] tensor: its indices.
struct Nhwc {
  i64 b, y, x, ch;
};
__device__ inline Nhwc nhwc_index(i64 e, i64 h, i64 w, i64 c) {
  Nhwc at;
  at.ch = e % c;
  e /= c;
  at.x = e % w;
  e /= w;
  at.y = e % h;
  at.b = e / h;
  return at;
}

// The windows [first, last] (of n) that may read position q of the padded axis: those with
// i * stride <= q < i * stride + span (q >= 0), span = (k - 1) * dilation + 1 (a dilated
// window reads q only when q - i * stride is a multiple of the dilation).
__device__ inline void windows_reading(i64 q, i64 span, i64 stride, i64 n, i64& first, i64& last) {
  first = q < span ? 0 : (q - span) / stride + 1;
  last = q / stride < n - 1 ? q / stride : n - 1;
}

// Each output element gathers the entries that read it, windows in increasing (i, j) order:
// the naive kernel's order of additions, so the same sums, and no atomics.
template <class T>
__global__ void col2im_kernel(T* out, Layout out_l, const T* in, Layout in_l, Window2d w, i64 n) {
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    const Nhwc at = nhwc_index(e, out_l.shape[1], out_l.shape[2], out_l.shape[3]);
    i64 i0, i1, j0, j1;
    const i64 d = w.dilation;
    windows_reading(at.y + w.pad_top, (w.kh - 1) * d + 1, w.stride, w.oh, i0, i1);
    windows_reading(at.x + w.pad_left, (w.kw - 1) * d + 1, w.stride, w.ow, j0, j1);
    const T* src = in + at.b * in_l.strides[0] + at.ch * in_l.strides[4];
    T acc = T(0);
    for (i64 i = i0; i <= i1; ++i) {
      const i64 oi = at.y + w.pad_top - i * w.stride;  // di * dilation when window i reads this row
      if (oi % d != 0) continue;
      for (i64 j = j0; j <= j1; ++j) {
        const i64 oj = at.x + w.pad_left - j * w.stride;
        if (oj % d != 0) continue;
        acc = wrap_add(acc, src[i * in_l.strides[1] + j * in_l.strides[2] + (oi / d * w.kw + oj / d) * in_l.strides[3]]);
      }
    }
    out[e] = acc;
  }
}

// The (row, col) of the first maximum of channel ch of x in window (b, i, j), in tap order
// (max_scan_takes); false when the window has no position inside the image.
template <class T>
__device__ bool pool_argmax(const T* x, const Layout& x_l, const Window2d& w, i64 b, i64 i, i64 j, i64 ch, i64& at_row,
                            i64& at_col) {
  const i64 top = i * w.stride - w.pad_top, left = j * w.stride - w.pad_left;
  const i64 row_end = top + w.kh < x_l.shape[1] ? top + w.kh : x_l.shape[1];
  const i64 col_end = left + w.kw < x_l.shape[2] ? left + w.kw : x_l.shape[2];
  const T* xb = x + b * x_l.strides[0] + ch * x_l.strides[3];
  bool found = false;
  T best = T(0);
  for (i64 row = top < 0 ? 0 : top; row < row_end; ++row) {
    for (i64 col = left < 0 ? 0 : left; col < col_end; ++col) {
      const T v = xb[row * x_l.strides[1] + col * x_l.strides[2]];
      if (!found || max_scan_takes(v, best)) {
        best = v;
        at_row = row;
        at_col = col;
        found = true;
      }
    }
  }
  return found;
}

template <class T>
__global__ void pool_select_kernel(T* out, const T* x, Layout x_l, const T* v, Layout v_l, Window2d w, i64 n) {
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    const Nhwc at = nhwc_index(e, w.oh, w.ow, x_l.shape[3]);  // (b, i, j, ch) of the pooled output
    i64 row = 0, col = 0;
    out[e] = pool_argmax(x, x_l, w, at.b, at.y, at.x, at.ch, row, col)
                 ? v[at.b * v_l.strides[0] + row * v_l.strides[1] + col * v_l.strides[2] + at.ch * v_l.strides[3]]
                 : T(0);
  }
}

// Each image element sums g over the windows that contain it and select it, in increasing
// (i, j) order.
template <class T>
__global__ void pool_scatter_kernel(T* out, const T* x, Layout x_l, const T* g, Layout g_l, Window2d w, i64 n) {
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    const Nhwc at = nhwc_index(e, x_l.shape[1], x_l.shape[2], x_l.shape[3]);
    i64 i0, i1, j0, j1;
    windows_reading(at.y + w.pad_top, w.kh, w.stride, w.oh, i0, i1);
    windows_reading(at.x + w.pad_left, w.kw, w.stride, w.ow, j0, j1);
    T acc = T(0);
    for (i64 i = i0; i <= i1; ++i) {
      for (i64 j = j0; j <= j1; ++j) {
        i64 row = -1, col = -1;
        if (pool_argmax(x, x_l, w, at.b, i, j, at.ch, row, col) && row == at.y && col == at.x) {
          acc = wrap_add(acc, g[at.b * g_l.strides[0] + i * g_l.strides[1] + j * g_l.strides[2] + at.ch * g_l.strides[3]]);
        }
      }
    }
    out[e] = acc;
  }
}

}  // namespace

template <class T>
void pool_select(T* out, const T* x, const Layout& x_l, const T* v, const Layout& v_l, const Window2d& w) {
  const i64 n = x_l.shape[0] * w.oh * w.ow * x_l.shape[3];
  if (n == 0) return;
  pool_select_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, x, x_l, v, v_l, w, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void pool_scatter(T* out, const T* x, const Layout& x_l, const T* g, const Layout& g_l, const Window2d& w) {
  const i64 n = x_l.size();
  if (n == 0) return;
  pool_scatter_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, x, x_l, g, g_l, w, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void im2col(T* out, const T* in, const Layout& in_l, const Window2d& w, T fill) {
  const i64 n = in_l.shape[0] * w.oh * w.ow * w.kh * w.kw * in_l.shape[3];
  if (n == 0) return;
  im2col_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, in, in_l, w, fill, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void col2im(T* out, const Layout& out_l, const T* in, const Layout& in_l, const Window2d& w) {
  const i64 n = out_l.size();
  if (n == 0) return;
  col2im_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, out_l, in, in_l, w, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

#define TAPEFLOW_CUDA_IM2COL(T)                                                                 \
  template void im2col<T>(T*, const T*, const Layout&, const Window2d&, T);                     \
  template void col2im<T>(T*, const Layout&, const T*, const Layout&, const Window2d&);         \
  template void pool_select<T>(T*, const T*, const Layout&, const T*, const Layout&, const Window2d&); \
  template void pool_scatter<T>(T*, const T*, const Layout&, const T*, const Layout&, const Window2d&);
TAPEFLOW_CUDA_IM2COL(std::int32_t)
TAPEFLOW_CUDA_IM2COL(std::int64_t)
TAPEFLOW_CUDA_IM2COL(float)
TAPEFLOW_CUDA_IM2COL(double)
#undef TAPEFLOW_CUDA_IM2COL

}  // namespace tapeflow::kernels::cuda
