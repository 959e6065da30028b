// binary: out = BinaryFn<op>(a, b), element-wise with broadcasting (elementwise.cuh has the
// kernels).
#include "elementwise.cuh"

namespace tapeflow::kernels::cuda {
namespace {

// pow and atan2 on integers, as the naive kernel computes them: std:: math promotes both to
// double.
template <OpId op, class T>
struct Promoted {
  __device__ T operator()(T a, T b) const {
    return static_cast<T>(BinaryFn<op>{}(static_cast<double>(a), static_cast<double>(b)));
  }
};

}  // namespace

template <class T>
void binary(OpId op, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  visit_op<OpKind::Binary>(op, [&](auto tag) {
    constexpr OpId id = decltype(tag)::value;
    if constexpr (std::is_integral_v<T> && detail::float_only(id)) {
      detail::launch_map2<false>(out, out_l, a, a_l, b, b_l, Promoted<id, T>{});
    } else {
      detail::launch_map2<true>(out, out_l, a, a_l, b, b_l, BinaryFn<id>{});
    }
  });
}

#define TAPEFLOW_CUDA_BINARY(T) \
  template void binary<T>(OpId, T*, const Layout&, const T*, const Layout&, const T*, const Layout&);
TAPEFLOW_CUDA_BINARY(std::int32_t)
TAPEFLOW_CUDA_BINARY(std::int64_t)
TAPEFLOW_CUDA_BINARY(float)
TAPEFLOW_CUDA_BINARY(double)
#undef TAPEFLOW_CUDA_BINARY

}  // namespace tapeflow::kernels::cuda
