// copy (with dtype conversion), fill and where: element-wise writes through any output view.
#include <cstring>

#include "elementwise.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;
using detail::Indexer;

// floating -> integer saturates, NaN -> 0 (functors.hpp's convert): the emulator and the CPU
// give what the device's conversion instructions give
template <class TO, class TI>
struct Convert {
  __device__ TO operator()(TI x) const { return convert<TO>(x); }
};

template <class T>
__global__ void fill_kernel(T* out, Indexer<1> ix, i64 n, T value) {
  for (i64 i = detail::first_item(); i < n; i += detail::item_stride()) {
    i64 off[1];
    ix.offsets(i, off);
    out[off[0]] = value;
  }
}

template <class T>
__global__ void where_kernel(T* out, const bool* cond, const T* a, const T* b, Indexer<4> ix, i64 n) {
  for (i64 i = detail::first_item(); i < n; i += detail::item_stride()) {
    i64 off[4];
    ix.offsets(i, off);
    out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
  }
}

}  // namespace

template <class TO, class TI>
void copy(TO* out, const Layout& out_l, const TI* in, const Layout& in_l) {
  const i64 n = out_l.size();
  if (n == 0) return;
  if constexpr (std::is_same_v<TO, TI>) {
    if (detail::make_indexer(out_l, in_l).contiguous()) {
      if (out == in) return;  // cudaMemcpy leaves overlapping copies undefined
      TAPEFLOW_CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<std::size_t>(n) * sizeof(TO), cudaMemcpyDeviceToDevice,
                                          detail::current_stream()));
      return;
    }
  }
  detail::launch_map1<false>(out, out_l, in, in_l, Convert<TO, TI>{});
}

template <class T>
void fill(T* out, const Layout& out_l, T value) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const Indexer<1> ix = detail::make_indexer(out_l);
  const cudaStream_t s = detail::current_stream();
  const T zero{};
  if (ix.contiguous() && std::memcmp(&value, &zero, sizeof(T)) == 0) {  // all bits zero (not -0.0)
    TAPEFLOW_CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<std::size_t>(n) * sizeof(T), s));
    return;
  }
  fill_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, ix, n, value);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void where(T* out, const Layout& out_l, const bool* cond, const Layout& cond_l, const T* a, const Layout& a_l,
           const T* b, const Layout& b_l) {
  const i64 n = out_l.size();
  if (n == 0) return;
  where_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(
      out, cond, a, b, detail::make_indexer(out_l, cond_l, a_l, b_l), n);
  TAPEFLOW_CUDA_LAUNCHED();
}

#define TAPEFLOW_CUDA_COPY(T)                                                                             \
  template void where<T>(T*, const Layout&, const bool*, const Layout&, const T*, const Layout&, const T*, \
                         const Layout&);                                                                  \
  template void fill<T>(T*, const Layout&, T);                                                            \
  template void copy<T, bool>(T*, const Layout&, const bool*, const Layout&);                             \
  template void copy<T, std::int32_t>(T*, const Layout&, const std::int32_t*, const Layout&);             \
  template void copy<T, std::int64_t>(T*, const Layout&, const std::int64_t*, const Layout&);             \
  template void copy<T, float>(T*, const Layout&, const float*, const Layout&);                           \
  template void copy<T, double>(T*, const Layout&, const double*, const Layout&);
TAPEFLOW_CUDA_COPY(bool)
TAPEFLOW_CUDA_COPY(std::int32_t)
TAPEFLOW_CUDA_COPY(std::int64_t)
TAPEFLOW_CUDA_COPY(float)
TAPEFLOW_CUDA_COPY(double)
#undef TAPEFLOW_CUDA_COPY

}  // namespace tapeflow::kernels::cuda
