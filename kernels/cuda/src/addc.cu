// addc: the optimizers' fused update out = out + value * (a * b) or out + value * (a / b).
// Built with -fmad=false (CMakeLists.txt): a fused multiply-add would round out + value * q
// once instead of twice and give other bits than the CPU.
#include "elementwise.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;
using detail::Indexer;

template <class T, bool kDivide>
__global__ void addc_kernel(T* out, const T* a, const T* b, Indexer<3> ix, i64 n, T value) {
  for (i64 i = detail::first_item(); i < n; i += detail::item_stride()) {
    i64 off[3];
    ix.offsets(i, off);
    const T q = kDivide ? a[off[1]] / b[off[2]] : a[off[1]] * b[off[2]];
    out[off[0]] = out[off[0]] + value * q;
  }
}

}  // namespace

template <class T>
void addc(bool divide, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l,
          T value) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const Indexer<3> ix = detail::make_indexer(out_l, a_l, b_l);
  const cudaStream_t s = detail::current_stream();
  if (divide) addc_kernel<T, true><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, a, b, ix, n, value);
  else addc_kernel<T, false><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, a, b, ix, n, value);
  TAPEFLOW_CUDA_LAUNCHED();
}

template void addc<float>(bool, float*, const Layout&, const float*, const Layout&, const float*, const Layout&,
                          float);
template void addc<double>(bool, double*, const Layout&, const double*, const Layout&, const double*, const Layout&,
                           double);

}  // namespace tapeflow::kernels::cuda
