#pragma once
// Private to kernels/cuda: every CUDA runtime call goes through TAPEFLOW_CUDA_CHECK, which
// throws CudaError with the call, CUDA's message and file:line (a library never exits).
#include <cuda_runtime_api.h>

#include <string>

#include "tapeflow/kernels/cuda.hpp"

namespace tapeflow::kernels::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  throw CudaError(std::string(call) + " failed: " + cudaGetErrorString(err) + " (" +
                      cudaGetErrorName(err) + ") at " + file + ":" + std::to_string(line),
                  static_cast<int>(err));
}

}  // namespace tapeflow::kernels::cuda::detail

#define TAPEFLOW_CUDA_CHECK(call)                                                        \
  do {                                                                                   \
    const cudaError_t tapeflow_cuda_err_ = (call);                                       \
    if (tapeflow_cuda_err_ != cudaSuccess) {                                             \
      ::tapeflow::kernels::cuda::detail::throw_cuda_error(tapeflow_cuda_err_, #call,     \
                                                          __FILE__, __LINE__);           \
    }                                                                                    \
  } while (0)
