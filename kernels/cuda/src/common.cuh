#pragma once
// Private to kernels/cuda's .cu files: launch shapes, index arithmetic on Layouts (with the
// axes coalesced), the op visitor's float-only list and warp / block reductions. Only CUDA
// and tapeflow's kernel headers are included here.
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
// Grid-stride loops: enough blocks to fill an H100 many times over, any n. On the CUDA
// emulator TAPEFLOW_CUDA_EMU_MAX_BLOCKS lowers it, so small tests walk every grid-stride loop
// (and the barriers that guard its next iteration) more than once.
#if defined(TAPEFLOW_CUDA_EMULATED)
inline const i64 kMaxBlocks = ::tapeflow_emu::max_blocks(65535);
#else
inline constexpr i64 kMaxBlocks = 65535;
#endif

// Blocks of `block` threads for n work items (n > 0), capped for grid-stride loops.
inline unsigned grid_for(i64 n, int block = kBlock) {
  return static_cast<unsigned>(std::clamp<i64>((n + block - 1) / block, 1, kMaxBlocks));
}

inline cudaStream_t current_stream() { return static_cast<cudaStream_t>(stream()); }

// Every launch is followed by this: a bad configuration throws at once.
#define TAPEFLOW_CUDA_LAUNCHED() TAPEFLOW_CUDA_CHECK(cudaGetLastError())

// The grid-stride loop of a 1-D launch: thread i handles items i, i + threads, ...
__device__ inline i64 first_item() { return static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline i64 item_stride() { return static_cast<i64>(blockDim.x) * gridDim.x; }

// N operands walked over one shape: offsets[k] of the element with row-major linear index i.
// Built on the host with size-1 axes dropped and axes that are contiguous in every operand
// merged, so a contiguous tensor becomes rank 1 and costs no division at all.
template <int N>
struct Indexer {
  int rank = 0;
  i64 shape[kMaxRank] = {};
  i64 strides[N][kMaxRank] = {};

  TAPEFLOW_HD void offsets(i64 linear, i64 (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = rank - 1; d > 0; --d) {
      const i64 q = linear / shape[d];
      const i64 i = linear - q * shape[d];
      linear = q;
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
    if (rank > 0) {
      for (int k = 0; k < N; ++k) off[k] += linear * strides[k][0];
    }
  }
  // Every operand is one run of stride 1 (rank 0 is one element).
  bool contiguous() const {
    if (rank == 0) return true;
    if (rank > 1) return false;
    for (int k = 0; k < N; ++k)
      if (strides[k][0] != 1) return false;
    return true;
  }
};

// Indexer over `shape` (rank axes) with operand k's strides strides[k].
template <int N>
Indexer<N> make_indexer(int rank, const i64* shape, const i64* const (&strides)[N]) {
  Indexer<N> ix;
  // from the innermost axis outwards; ix holds the kept axes innermost-first until the end
  for (int d = rank - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    const int last = ix.rank - 1;
    bool merge = last >= 0;
    for (int k = 0; merge && k < N; ++k) merge = strides[k][d] == ix.strides[k][last] * ix.shape[last];
    if (merge) {
      ix.shape[last] *= shape[d];
      continue;
    }
    ix.shape[ix.rank] = shape[d];
    for (int k = 0; k < N; ++k) ix.strides[k][ix.rank] = strides[k][d];
    ++ix.rank;
  }
  std::reverse(ix.shape, ix.shape + ix.rank);
  for (int k = 0; k < N; ++k) std::reverse(ix.strides[k], ix.strides[k] + ix.rank);
  return ix;
}

// Indexer over layouts of one shape (the first one's).
template <class... L>
Indexer<sizeof...(L) + 1> make_indexer(const Layout& first, const L&... rest) {
  const i64* const strides[] = {first.strides, rest.strides...};
  return make_indexer<sizeof...(L) + 1>(first.rank, first.shape, strides);
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

// Ops whose front-ends convert integer inputs to float32 first. The naive kernels still
// define them for integers (std:: math promotes to double); here they run through Promoted,
// on the general path only, as the core never sends them.
constexpr bool float_only(OpId op) {
  return op == OpId::Exp || op == OpId::Log || op == OpId::Log1p || op == OpId::Expm1 || op == OpId::Erf ||
         op == OpId::Sin || op == OpId::Cos || op == OpId::Tan || op == OpId::Asin || op == OpId::Acos ||
         op == OpId::Atan || op == OpId::Sinh || op == OpId::Cosh || op == OpId::Asinh || op == OpId::Acosh ||
         op == OpId::Atanh || op == OpId::Sqrt || op == OpId::Tanh || op == OpId::Sigmoid || op == OpId::PowScalar ||
         op == OpId::Pow || op == OpId::Atan2;
}

// Warp-wide reduction with `combine`; every lane gets the result (butterfly).
template <class T, class Combine>
__device__ T warp_reduce(T v, Combine combine) {
  for (int o = 16; o > 0; o /= 2) v = combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide reduction of one value per thread with `combine` (`identity` combines as a
// no-op); every thread gets the result. `scratch` holds 32 values; blockDim.x is a multiple
// of 32. Every thread of the block must call it.
template <class T, class Combine>
__device__ T block_reduce(T v, Combine combine, T identity, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_reduce(v, combine);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_reduce(lane < warps ? scratch[lane] : identity, combine);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace tapeflow::kernels::cuda::detail
