#pragma once
// Private to kernels/cuda's element-wise files (unary.cu, binary.cu, compare.cu, copy.cu):
// the kernel templates of every element-wise launch. Each op has two paths: contiguous
// operands with 16-byte vector loads and stores, and a general one for any strides
// (broadcast axes have stride 0) over an Indexer, whose contiguous case costs no division.
#include "common.cuh"

namespace tapeflow::kernels::cuda::detail {

// out[i] = f(in[i]) over contiguous, 16-byte aligned buffers; F is a unary functor (x) -> T.
template <class F, class T>
__global__ void map1_vec(T* out, const T* in, i64 n, F f) {
  constexpr int V = Vec<T>::kN;
  const i64 nv = n / V;
  auto* ov = reinterpret_cast<Vec<T>*>(out);
  const auto* iv = reinterpret_cast<const Vec<T>*>(in);
  for (i64 i = first_item(); i < nv; i += item_stride()) {
    Vec<T> x = iv[i];
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = f(x.v[k]);
    ov[i] = x;
  }
  for (i64 i = nv * V + first_item(); i < n; i += item_stride()) out[i] = f(in[i]);
}

// out = f(a, b) over contiguous, 16-byte aligned buffers of one type.
template <class F, class T>
__global__ void map2_vec(T* out, const T* a, const T* b, i64 n, F f) {
  constexpr int V = Vec<T>::kN;
  const i64 nv = n / V;
  auto* ov = reinterpret_cast<Vec<T>*>(out);
  const auto* av = reinterpret_cast<const Vec<T>*>(a);
  const auto* bv = reinterpret_cast<const Vec<T>*>(b);
  for (i64 i = first_item(); i < nv; i += item_stride()) {
    Vec<T> x = av[i];
    const Vec<T> y = bv[i];
#pragma unroll
    for (int k = 0; k < V; ++k) x.v[k] = f(x.v[k], y.v[k]);
    ov[i] = x;
  }
  for (i64 i = nv * V + first_item(); i < n; i += item_stride()) out[i] = f(a[i], b[i]);
}

// The general paths: operand 0 is the output.
template <class F, class R, class T>
__global__ void map1_strided(R* out, const T* in, Indexer<2> ix, i64 n, F f) {
  for (i64 i = first_item(); i < n; i += item_stride()) {
    i64 off[2];
    ix.offsets(i, off);
    out[off[0]] = f(in[off[1]]);
  }
}

template <class F, class R, class T>
__global__ void map2_strided(R* out, const T* a, const T* b, Indexer<3> ix, i64 n, F f) {
  for (i64 i = first_item(); i < n; i += item_stride()) {
    i64 off[3];
    ix.offsets(i, off);
    out[off[0]] = f(a[off[1]], b[off[2]]);
  }
}

// out = f(in) for any layouts of one shape; kVec (with R = T) adds the vector path.
template <bool kVec, class R, class T, class F>
void launch_map1(R* out, const Layout& out_l, const T* in, const Layout& in_l, F f) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const cudaStream_t s = current_stream();
  const Indexer<2> ix = make_indexer(out_l, in_l);
  if constexpr (kVec && std::is_same_v<R, T>) {
    if (ix.contiguous() && aligned16(out) && aligned16(in)) {
      map1_vec<F, T><<<grid_for(n / Vec<T>::kN + 1), kBlock, 0, s>>>(out, in, n, f);
      TAPEFLOW_CUDA_LAUNCHED();
      return;
    }
  }
  map1_strided<F, R, T><<<grid_for(n), kBlock, 0, s>>>(out, in, ix, n, f);
  TAPEFLOW_CUDA_LAUNCHED();
}

// out = f(a, b) for any layouts of one shape; kVec (with R = T) adds the vector path.
template <bool kVec, class R, class T, class F>
void launch_map2(R* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l, F f) {
  const i64 n = out_l.size();
  if (n == 0) return;
  const cudaStream_t s = current_stream();
  const Indexer<3> ix = make_indexer(out_l, a_l, b_l);
  if constexpr (kVec && std::is_same_v<R, T>) {
    if (ix.contiguous() && aligned16(out) && aligned16(a) && aligned16(b)) {
      map2_vec<F, T><<<grid_for(n / Vec<T>::kN + 1), kBlock, 0, s>>>(out, a, b, n, f);
      TAPEFLOW_CUDA_LAUNCHED();
      return;
    }
  }
  map2_strided<F, R, T><<<grid_for(n), kBlock, 0, s>>>(out, a, b, ix, n, f);
  TAPEFLOW_CUDA_LAUNCHED();
}

}  // namespace tapeflow::kernels::cuda::detail
