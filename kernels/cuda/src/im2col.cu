// im2col and col2im (the windows of conv2d and pooling): one CUDA thread per output element,
// channels innermost, so neighbouring threads read and write neighbouring addresses.
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
    const i64 row = i * w.stride - w.pad_top + t / w.kw, col = j * w.stride - w.pad_left + t % w.kw;
    const bool inside = row >= 0 && row < in_l.shape[1] && col >= 0 && col < in_l.shape[2];
    out[e] = inside ? in[b * in_l.strides[0] + row * in_l.strides[1] + col * in_l.strides[2] + ch * in_l.strides[3]]
                    : fill;
  }
}

// The windows [first, last] (of n) that read position q of the padded axis: those with
// i * stride <= q < i * stride + k (q >= 0).
__device__ inline void windows_reading(i64 q, i64 k, i64 stride, i64 n, i64& first, i64& last) {
  first = q < k ? 0 : (q - k) / stride + 1;
  last = q / stride < n - 1 ? q / stride : n - 1;
}

// Each output element gathers the entries that read it, windows in increasing (i, j) order:
// the naive kernel's order of additions, so the same sums, and no atomics.
template <class T>
__global__ void col2im_kernel(T* out, Layout out_l, const T* in, Layout in_l, Window2d w, i64 n) {
  const i64 h = out_l.shape[1], wd = out_l.shape[2], c = out_l.shape[3];
  for (i64 e = detail::first_item(); e < n; e += detail::item_stride()) {
    i64 r = e;
    const i64 ch = r % c;
    r /= c;
    const i64 x = r % wd;
    r /= wd;
    const i64 y = r % h, b = r / h;
    i64 i0, i1, j0, j1;
    windows_reading(y + w.pad_top, w.kh, w.stride, w.oh, i0, i1);
    windows_reading(x + w.pad_left, w.kw, w.stride, w.ow, j0, j1);
    T acc = T(0);
    for (i64 i = i0; i <= i1; ++i) {
      const i64 di = y + w.pad_top - i * w.stride;
      for (i64 j = j0; j <= j1; ++j) {
        const i64 dj = x + w.pad_left - j * w.stride;
        acc += in[b * in_l.strides[0] + i * in_l.strides[1] + j * in_l.strides[2] + (di * w.kw + dj) * in_l.strides[3] +
                  ch * in_l.strides[4]];
      }
    }
    out[e] = acc;
  }
}

}  // namespace

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

#define TAPEFLOW_CUDA_IM2COL(T)                                                   \
  template void im2col<T>(T*, const T*, const Layout&, const Window2d&, T); \
  template void col2im<T>(T*, const Layout&, const T*, const Layout&, const Window2d&);
TAPEFLOW_CUDA_IM2COL(std::int32_t)
TAPEFLOW_CUDA_IM2COL(std::int64_t)
TAPEFLOW_CUDA_IM2COL(float)
TAPEFLOW_CUDA_IM2COL(double)
#undef TAPEFLOW_CUDA_IM2COL

}  // namespace tapeflow::kernels::cuda
