// Element-wise CUDA kernels. Launchers take (out, inputs..., n, stream), as llm.c's do.
// Only CUDA and our own kernels header are included here: xtensor never reaches nvcc.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.hpp"
#include "tapeflow/kernels/cuda.hpp"

namespace tapeflow::kernels::cuda {

namespace {

constexpr int kBlock = 256;
// Grid-stride loops: enough blocks to fill an H100/H200 several times over, any n.
constexpr std::int64_t kMaxBlocks = 65535;

__global__ void add_f32_kernel(float* out, const float* a, const float* b, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    out[i] = a[i] + b[i];
  }
}

unsigned grid_for(std::int64_t n) {
  return static_cast<unsigned>(std::min<std::int64_t>((n + kBlock - 1) / kBlock, kMaxBlocks));
}

}  // namespace

void add_f32(float* out, const float* a, const float* b, std::int64_t n, void* stream) {
  if (n <= 0) return;
  add_f32_kernel<<<grid_for(n), kBlock, 0, static_cast<cudaStream_t>(stream)>>>(out, a, b, n);
  TAPEFLOW_CUDA_CHECK(cudaGetLastError());
}

}  // namespace tapeflow::kernels::cuda
