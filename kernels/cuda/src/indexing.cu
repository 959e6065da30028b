// take_along_axis (gather) and scatter_add / scatter_reduce (atomic adds, or max / min by
// compare-and-swap, so duplicate indices combine).
#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;

// Offsets of element `linear` of shape S in three layouts of rank r at once; `skip` is the
// axis left out of the third (the gathered / scattered axis).
struct Offsets3 {
  i64 a = 0, b = 0, c = 0;
};
__device__ inline Offsets3 offsets3(const Layout& la, const Layout& lb, const Layout& lc, int skip, i64 linear) {
  Offsets3 o;
  for (int d = la.rank - 1; d >= 0; --d) {
    const i64 s = la.shape[d];
    const i64 i = linear % s;
    linear /= s;
    o.a += i * la.strides[d];
    o.b += i * lb.strides[d];
    if (d != skip) o.c += i * lc.strides[d];
  }
  return o;
}

template <class T>
__global__ void gather_kernel(T* out, Layout out_l, const T* in, Layout in_l, const std::int64_t* idx, Layout idx_l,
                              int axis, i64 n) {
  for (i64 i = detail::first_item(); i < n; i += detail::item_stride()) {
    const Offsets3 o = offsets3(out_l, idx_l, in_l, axis, i);
    const i64 k = idx[o.b];  // out of range: 0 (kernel_api.inc)
    out[o.a] = k >= 0 && k < in_l.shape[axis] ? in[o.c + k * in_l.strides[axis]] : T(0);
  }
}

__device__ inline void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ inline void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ inline void atomic_add(std::int32_t* p, std::int32_t v) { atomicAdd(reinterpret_cast<int*>(p), v); }
__device__ inline void atomic_add(std::int64_t* p, std::int64_t v) {
  // two's complement: unsigned addition wraps to the same bits
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

// max / min by compare-and-swap on the value's bits (CUDA has no floating atomicMax): the first
// CAS, of v's bits with themselves, reads the current value without a plain racing load
template <OpId op, class T>
__device__ void atomic_extreme(T* p, T v) {
  using Bits = std::conditional_t<sizeof(T) == 4, unsigned int, unsigned long long>;
  Bits* word = reinterpret_cast<Bits*>(p);
  Bits want;
  memcpy(&want, &v, sizeof(T));
  Bits old = atomicCAS(word, want, want);
  for (;;) {
    T cur;
    memcpy(&cur, &old, sizeof(T));
    const T next = BinaryFn<op>{}(cur, v);
    Bits next_bits;
    memcpy(&next_bits, &next, sizeof(T));
    if (next_bits == old) return;
    const Bits seen = atomicCAS(word, old, next_bits);
    if (seen == old) return;
    old = seen;
  }
}

template <OpId op, class T>
__device__ void atomic_combine(T* p, T v) {
  if constexpr (op == OpId::Add) atomic_add(p, v);
  else atomic_extreme<op>(p, v);
}

template <OpId op, class T>
__global__ void scatter_kernel(T* out, Layout out_l, const T* src, Layout src_l, const std::int64_t* idx,
                               Layout idx_l, int axis, i64 n) {
  for (i64 i = detail::first_item(); i < n; i += detail::item_stride()) {
    const Offsets3 o = offsets3(src_l, idx_l, out_l, axis, i);
    const i64 k = idx[o.b];  // out of range: dropped (kernel_api.inc)
    if (k >= 0 && k < out_l.shape[axis]) atomic_combine<op>(out + o.c + k * out_l.strides[axis], src[o.a]);
  }
}

template <OpId op, class T>
void launch_scatter(T* out, const Layout& out_l, const T* src, const Layout& src_l, const std::int64_t* idx,
                    const Layout& idx_l, int axis, i64 n) {
  if (n == 0) return;
  scatter_kernel<op, T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, out_l, src, src_l,
                                                                                               idx, idx_l, axis, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

}  // namespace

template <class T>
void gather(T* out, const Layout& out_l, const T* in, const Layout& in_l, const std::int64_t* idx, const Layout& idx_l,
            int axis) {
  const i64 n = out_l.size();
  if (n == 0) return;
  gather_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, out_l, in, in_l, idx,
                                                                                          idx_l, axis, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void scatter_reduce(OpId op, T* out, const Layout& out_l, const T* src, const Layout& src_l, const std::int64_t* idx,
                    const Layout& idx_l, int axis) {
  const i64 n = src_l.size();
  switch (op) {
    case OpId::Add: return launch_scatter<OpId::Add>(out, out_l, src, src_l, idx, idx_l, axis, n);
    case OpId::Maximum: return launch_scatter<OpId::Maximum>(out, out_l, src, src_l, idx, idx_l, axis, n);
    case OpId::Minimum: return launch_scatter<OpId::Minimum>(out, out_l, src, src_l, idx, idx_l, axis, n);
    default: throw CudaError(std::string("cuda scatter_reduce: not add, maximum or minimum: ") + op_name(op), 0);
  }
}

template <class T>
void scatter_add(T* out, const Layout& out_l, const T* src, const Layout& src_l, const std::int64_t* idx,
                 const Layout& idx_l, int axis) {
  scatter_reduce<T>(OpId::Add, out, out_l, src, src_l, idx, idx_l, axis);
}

#define TAPEFLOW_CUDA_GATHER(T)                                                                            \
  template void gather<T>(T*, const Layout&, const T*, const Layout&, const std::int64_t*, const Layout&, int);
TAPEFLOW_CUDA_GATHER(bool)
TAPEFLOW_CUDA_GATHER(std::int32_t)
TAPEFLOW_CUDA_GATHER(std::int64_t)
TAPEFLOW_CUDA_GATHER(float)
TAPEFLOW_CUDA_GATHER(double)
#undef TAPEFLOW_CUDA_GATHER
#define TAPEFLOW_CUDA_SCATTER(T)                                                                          \
  template void scatter_add<T>(T*, const Layout&, const T*, const Layout&, const std::int64_t*, const Layout&, \
                               int);                                                                      \
  template void scatter_reduce<T>(OpId, T*, const Layout&, const T*, const Layout&, const std::int64_t*,      \
                                  const Layout&, int);
TAPEFLOW_CUDA_SCATTER(std::int32_t)
TAPEFLOW_CUDA_SCATTER(std::int64_t)
TAPEFLOW_CUDA_SCATTER(float)
TAPEFLOW_CUDA_SCATTER(double)
#undef TAPEFLOW_CUDA_SCATTER

}  // namespace tapeflow::kernels::cuda
