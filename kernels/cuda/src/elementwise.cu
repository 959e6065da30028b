// Element-wise CUDA kernels: unary, binary, compare, where, copy (with conversion) and fill.
// Each has a contiguous path with 16-byte vector loads and stores, a path for a broadcast
// scalar operand, and a general path for any strides (broadcast axes have stride 0) that
// recomputes every operand's offset from the output's linear index.
#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;
using detail::Vec;
using detail::offset_at;

// ------------------------------------------------------------------ unary

template <class F, class T>
__global__ void unary_contiguous(T* out, const T* in, i64 n, double p0, double p1) {
  const F f;
  constexpr int V = Vec<T>::kN;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  const i64 first = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 nv = n / V;
  auto* ov = reinterpret_cast<Vec<T>*>(out);
  const auto* iv = reinterpret_cast<const Vec<T>*>(in);
  for (i64 i = first; i < nv; i += stride) {
    Vec<T> x = iv[i];
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = f(x.v[k], p0, p1);
    ov[i] = x;
  }
  for (i64 i = nv * V + first; i < n; i += stride) out[i] = f(in[i], p0, p1);
}

template <class F, class T>
__global__ void unary_scalar_loop(T* out, const T* in, i64 n, double p0, double p1) {
  const F f;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = f(in[i], p0, p1);
}

template <class F, class T>
__global__ void unary_strided(T* out, Layout out_l, const T* in, Layout in_l, i64 n, double p0, double p1) {
  const F f;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[offset_at(out_l, i)] = f(in[offset_at(in_l, i)], p0, p1);
  }
}

// ------------------------------------------------------------------ binary and compare
// G(a, b) -> R, for binary (R = T) and compare (R = bool).

template <class G, class R, class T>
__global__ void binary_contiguous(R* out, const T* a, const T* b, i64 n) {
  const G g;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = g(a[i], b[i]);
}

// Same-type contiguous operands with 16-byte alignment: vector loads.
template <class G, class T>
__global__ void binary_contiguous_vec(T* out, const T* a, const T* b, i64 n) {
  const G g;
  constexpr int V = Vec<T>::kN;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  const i64 first = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 nv = n / V;
  auto* ov = reinterpret_cast<Vec<T>*>(out);
  const auto* av = reinterpret_cast<const Vec<T>*>(a);
  const auto* bv = reinterpret_cast<const Vec<T>*>(b);
  for (i64 i = first; i < nv; i += stride) {
    Vec<T> x = av[i];
    const Vec<T> y = bv[i];
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = g(x.v[k], y.v[k]);
    ov[i] = x;
  }
  for (i64 i = nv * V + first; i < n; i += stride) out[i] = g(a[i], b[i]);
}

// One operand is a broadcast scalar: scalar_first says which side it is on.
template <class G, class R, class T>
__global__ void binary_with_scalar(R* out, const T* x, const T* scalar, bool scalar_first, i64 n) {
  const G g;
  const T s = *scalar;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = scalar_first ? g(s, x[i]) : g(x[i], s);
  }
}

template <class G, class R, class T>
__global__ void binary_strided(R* out, Layout out_l, const T* a, Layout a_l, const T* b, Layout b_l, i64 n) {
  const G g;
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[offset_at(out_l, i)] = g(a[offset_at(a_l, i)], b[offset_at(b_l, i)]);
  }
}

template <class G, class R, class T>
void launch_binary(R* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const cudaStream_t s = detail::current_stream();
  const unsigned grid = detail::grid_for(n);
  if (out_l.contiguous() && a_l.contiguous() && b_l.contiguous()) {
    if constexpr (std::is_same_v<R, T>) {
      if (detail::aligned16(out) && detail::aligned16(a) && detail::aligned16(b)) {
        binary_contiguous_vec<G, T><<<detail::grid_for(n / Vec<T>::kN + 1), detail::kBlock, 0, s>>>(out, a, b, n);
        TAPEFLOW_CUDA_LAUNCHED();
        return;
      }
    }
    binary_contiguous<G, R, T><<<grid, detail::kBlock, 0, s>>>(out, a, b, n);
  } else if (out_l.contiguous() && a_l.contiguous() && detail::all_zero_strides(b_l)) {
    binary_with_scalar<G, R, T><<<grid, detail::kBlock, 0, s>>>(out, a, b, false, n);
  } else if (out_l.contiguous() && b_l.contiguous() && detail::all_zero_strides(a_l)) {
    binary_with_scalar<G, R, T><<<grid, detail::kBlock, 0, s>>>(out, b, a, true, n);
  } else {
    binary_strided<G, R, T><<<grid, detail::kBlock, 0, s>>>(out, out_l, a, a_l, b, b_l, n);
  }
  TAPEFLOW_CUDA_LAUNCHED();
}

// ------------------------------------------------------------------ where, copy, fill

template <class T>
__global__ void where_strided(T* out, Layout out_l, const bool* cond, Layout c_l, const T* a, Layout a_l, const T* b,
                              Layout b_l, i64 n) {
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[offset_at(out_l, i)] = cond[offset_at(c_l, i)] ? a[offset_at(a_l, i)] : b[offset_at(b_l, i)];
  }
}

template <class TO, class TI>
__global__ void copy_contiguous(TO* out, const TI* in, i64 n) {
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = static_cast<TO>(in[i]);
  }
}

template <class TO, class TI>
__global__ void copy_strided(TO* out, Layout out_l, const TI* in, Layout in_l, i64 n) {
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[offset_at(out_l, i)] = static_cast<TO>(in[offset_at(in_l, i)]);
  }
}

template <class T>
__global__ void fill_contiguous(T* out, i64 n, T value) {
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = value;
}

template <class T>
__global__ void fill_strided(T* out, Layout out_l, i64 n, T value) {
  const i64 stride = static_cast<i64>(blockDim.x) * gridDim.x;
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[offset_at(out_l, i)] = value;
  }
}

template <class T>
[[noreturn]] void not_for_integers(OpId op) {
  throw CudaError(std::string("cuda kernels: ") + op_name(op) + " is not defined for integer tensors (the front-end "
                  "converts them to float first)", 0);
}

}  // namespace

template <class T>
void unary(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l, double p0, double p1) {
  const i64 n = out_l.size();
  if (n == 0) return;
  visit_op<OpKind::Unary>(op, [&](auto tag) {
    constexpr OpId id = decltype(tag)::value;
    if constexpr (!std::is_floating_point_v<T> && detail::float_only(id)) {
      not_for_integers<T>(id);
    } else {
      using F = UnaryFn<id>;
      const cudaStream_t s = detail::current_stream();
      if (out_l.contiguous() && in_l.contiguous()) {
        if (detail::aligned16(out) && detail::aligned16(in)) {
          unary_contiguous<F, T><<<detail::grid_for(n / Vec<T>::kN + 1), detail::kBlock, 0, s>>>(out, in, n, p0, p1);
        } else {
          unary_scalar_loop<F, T><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, in, n, p0, p1);
        }
      } else {
        unary_strided<F, T><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, out_l, in, in_l, n, p0, p1);
      }
      TAPEFLOW_CUDA_LAUNCHED();
    }
  });
}

template <class T>
void binary(OpId op, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  visit_op<OpKind::Binary>(op, [&](auto tag) {
    constexpr OpId id = decltype(tag)::value;
    if constexpr (!std::is_floating_point_v<T> && detail::float_only(id)) {
      not_for_integers<T>(id);
    } else {
      launch_binary<BinaryFn<id>, T, T>(out, out_l, a, a_l, b, b_l);
    }
  });
}

template <class T>
void compare(OpId op, bool* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  visit_op<OpKind::Compare, OpKind::Logical>(op, [&](auto tag) {
    launch_binary<CompareFn<decltype(tag)::value>, bool, T>(out, out_l, a, a_l, b, b_l);
  });
}

template <class T>
void where(T* out, const Layout& out_l, const bool* cond, const Layout& cond_l, const T* a, const Layout& a_l,
           const T* b, const Layout& b_l) {
  const i64 n = out_l.size();
  if (n == 0) return;
  where_strided<T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, out_l, cond, cond_l, a,
                                                                                          a_l, b, b_l, n);
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class TO, class TI>
void copy(TO* out, const Layout& out_l, const TI* in, const Layout& in_l) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const cudaStream_t s = detail::current_stream();
  if (out_l.contiguous() && in_l.contiguous()) {
    if constexpr (std::is_same_v<TO, TI>) {
      TAPEFLOW_CUDA_CHECK(cudaMemcpyAsync(out, in, static_cast<std::size_t>(n) * sizeof(TO), cudaMemcpyDeviceToDevice, s));
      return;
    }
    copy_contiguous<TO, TI><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, in, n);
  } else {
    copy_strided<TO, TI><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, out_l, in, in_l, n);
  }
  TAPEFLOW_CUDA_LAUNCHED();
}

template <class T>
void fill(T* out, const Layout& out_l, T value) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const cudaStream_t s = detail::current_stream();
  if (out_l.contiguous()) {
    fill_contiguous<T><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, n, value);
  } else {
    fill_strided<T><<<detail::grid_for(n), detail::kBlock, 0, s>>>(out, out_l, n, value);
  }
  TAPEFLOW_CUDA_LAUNCHED();
}

#define TAPEFLOW_CUDA_ELEMENTWISE(T)                                                                     \
  template void unary<T>(OpId, T*, const Layout&, const T*, const Layout&, double, double);              \
  template void binary<T>(OpId, T*, const Layout&, const T*, const Layout&, const T*, const Layout&);
#define TAPEFLOW_CUDA_ALL(T)                                                                              \
  template void compare<T>(OpId, bool*, const Layout&, const T*, const Layout&, const T*, const Layout&); \
  template void where<T>(T*, const Layout&, const bool*, const Layout&, const T*, const Layout&, const T*, \
                         const Layout&);                                                                  \
  template void fill<T>(T*, const Layout&, T);                                                            \
  template void copy<T, bool>(T*, const Layout&, const bool*, const Layout&);                             \
  template void copy<T, std::int32_t>(T*, const Layout&, const std::int32_t*, const Layout&);             \
  template void copy<T, std::int64_t>(T*, const Layout&, const std::int64_t*, const Layout&);             \
  template void copy<T, float>(T*, const Layout&, const float*, const Layout&);                           \
  template void copy<T, double>(T*, const Layout&, const double*, const Layout&);
TAPEFLOW_CUDA_ELEMENTWISE(std::int32_t)
TAPEFLOW_CUDA_ELEMENTWISE(std::int64_t)
TAPEFLOW_CUDA_ELEMENTWISE(float)
TAPEFLOW_CUDA_ELEMENTWISE(double)
TAPEFLOW_CUDA_ALL(bool)
TAPEFLOW_CUDA_ALL(std::int32_t)
TAPEFLOW_CUDA_ALL(std::int64_t)
TAPEFLOW_CUDA_ALL(float)
TAPEFLOW_CUDA_ALL(double)
#undef TAPEFLOW_CUDA_ELEMENTWISE
#undef TAPEFLOW_CUDA_ALL

}  // namespace tapeflow::kernels::cuda
