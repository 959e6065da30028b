#pragma once
// Private to kernels/cuda's .cu files: index arithmetic on Layouts, launch shapes, the op
// visitor and block reductions. Only CUDA and tapeflow's kernel headers are included here.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda_check.hpp"
#include "tapeflow/kernels/cuda.hpp"
#include "tapeflow/kernels/functors.hpp"
#include "tapeflow/kernels/visit.hpp"

namespace tapeflow::kernels::cuda::detail {

using i64 = std::int64_t;

inline constexpr int kBlock = 256;
// Grid-stride loops: enough blocks to fill an H100 many times over, any n.
inline constexpr i64 kMaxBlocks = 65535;

inline unsigned grid_for(i64 n, int block = kBlock) {
  return static_cast<unsigned>(std::min<i64>((n + block - 1) / block, kMaxBlocks));
}

inline cudaStream_t current_stream() { return static_cast<cudaStream_t>(stream()); }

// Every launch is followed by this: a bad configuration throws at once.
#define TAPEFLOW_CUDA_LAUNCHED() TAPEFLOW_CUDA_CHECK(cudaGetLastError())

// Offset of the element with row-major linear index `linear` in the layout's index space.
TAPEFLOW_HD inline i64 offset_at(const Layout& l, i64 linear) {
  i64 off = 0;
  for (int d = l.rank - 1; d >= 0; --d) {
    const i64 s = l.shape[d];
    const i64 i = linear % s;
    linear /= s;
    off += i * l.strides[d];
  }
  return off;
}

// True when every stride is 0 (a broadcast scalar).
inline bool all_zero_strides(const Layout& l) {
  for (int d = 0; d < l.rank; ++d)
    if (l.shape[d] != 1 && l.strides[d] != 0) return false;
  return true;
}

template <class T>
inline bool aligned16(const T* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// 16 bytes of T: one vectorised load or store.
template <class T>
struct alignas(16) Vec {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

// Ops whose front-ends convert integer inputs to float32 first: never instantiated for
// integer types (their std:: math has no integer device overloads).
constexpr bool float_only(OpId op) {
  return op == OpId::Exp || op == OpId::Log || op == OpId::Sqrt || op == OpId::Tanh || op == OpId::Sigmoid ||
         op == OpId::PowScalar || op == OpId::Pow || op == OpId::Div;
}

// Block-wide reduction of one value per thread with `combine` (`identity` combines as a
// no-op); every thread gets the result. `scratch` holds blockDim.x / 32 values; blockDim.x
// is a multiple of 32.
template <class T, class Combine>
__device__ T block_reduce(T v, Combine combine, T identity, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int o = 16; o > 0; o /= 2) v = combine(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : identity;
    for (int o = 16; o > 0; o /= 2) v = combine(v, __shfl_down_sync(0xffffffffu, v, o));
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace tapeflow::kernels::cuda::detail
