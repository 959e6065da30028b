#pragma once
// The plain layout struct every kernel takes: a shape and strides in elements.
// Data pointers passed beside a Layout already point at the first element.
#include <cstdint>

#if defined(__CUDACC__)
#define TAPEFLOW_HD __host__ __device__
#else
#define TAPEFLOW_HD
#endif

namespace tapeflow::kernels {

inline constexpr int kMaxRank = 16;

struct Layout {
  int rank = 0;
  std::int64_t shape[kMaxRank] = {};
  std::int64_t strides[kMaxRank] = {};

  TAPEFLOW_HD std::int64_t size() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
  // Row-major contiguous (size-1 axes may have any stride).
  TAPEFLOW_HD bool contiguous() const {
    std::int64_t expected = 1;
    for (int i = rank - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
};

// The windows of im2col / col2im over NHWC images [batch, h, w, c]: window (i, j), for i < oh
// and j < ow, has tap t = di * kw + dj (di < kh, dj < kw) at the element
// (i * stride - pad_top + di * dilation, j * stride - pad_left + dj * dilation): a window spans
// (kh - 1) * dilation + 1 rows. The pooling kernels take dilation 1 only.
struct Window2d {
  std::int64_t kh = 1, kw = 1, stride = 1, pad_top = 0, pad_left = 0, oh = 0, ow = 0, dilation = 1;
};

// A contiguous row-major layout of the given shape.
inline Layout contiguous_layout(int rank, const std::int64_t* shape) {
  Layout l;
  l.rank = rank;
  std::int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    l.shape[i] = shape[i];
    l.strides[i] = s;
    s *= shape[i];
  }
  return l;
}

}  // namespace tapeflow::kernels
