// compare: out = CompareFn<op>(a, b) as bool, element-wise with broadcasting (comparisons
// on every dtype, logic on bool; elementwise.cuh has the kernels).
#include "elementwise.cuh"

namespace tapeflow::kernels::cuda {

template <class T>
void compare(OpId op, bool* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  visit_op<OpKind::Compare, OpKind::Logical>(op, [&](auto tag) {
    // vector loads only for bool inputs (16 per load); other types take the general path
    detail::launch_map2<std::is_same_v<T, bool>>(out, out_l, a, a_l, b, b_l, CompareFn<decltype(tag)::value>{});
  });
}

#define TAPEFLOW_CUDA_COMPARE(T) \
  template void compare<T>(OpId, bool*, const Layout&, const T*, const Layout&, const T*, const Layout&);
TAPEFLOW_CUDA_COMPARE(bool)
TAPEFLOW_CUDA_COMPARE(std::int32_t)
TAPEFLOW_CUDA_COMPARE(std::int64_t)
TAPEFLOW_CUDA_COMPARE(float)
TAPEFLOW_CUDA_COMPARE(double)
#undef TAPEFLOW_CUDA_COMPARE

}  // namespace tapeflow::kernels::cuda
