// Device queries. Plain C++ against the CUDA runtime API (no nvcc needed for this file).
#include <cuda_runtime_api.h>

#include <string>

#include "cuda_check.hpp"
#include "tapeflow/kernels/cuda.hpp"

namespace tapeflow::kernels::cuda {

namespace {
std::string version_string(int v) {
  // CUDA encodes 13.0 as 13000.
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}
}  // namespace

int device_count() noexcept {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    // Reset the runtime's last-error state so a later, unrelated check does not report it.
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string device_status() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(err);
  }
  if (count == 0) return "no CUDA device: the runtime reports 0 devices";
  cudaDeviceProp prop{};
  const cudaError_t perr = cudaGetDeviceProperties(&prop, 0);
  if (perr != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA device 0: properties unavailable: ") + cudaGetErrorString(perr);
  }
  int runtime = 0;
  int driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  const auto gib = static_cast<unsigned long long>(prop.totalGlobalMem >> 30);
  return "CUDA device 0 of " + std::to_string(count) + ": " + prop.name + " (sm_" +
         std::to_string(prop.major) + std::to_string(prop.minor) + ", " + std::to_string(gib) +
         " GiB), runtime " + version_string(runtime) + ", driver " + version_string(driver);
}

void* device_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  TAPEFLOW_CUDA_CHECK(cudaMalloc(&ptr, bytes));
  return ptr;
}

void device_free(void* ptr) noexcept {
  if (ptr != nullptr && cudaFree(ptr) != cudaSuccess) cudaGetLastError();
}

void copy_to_device(void* dst_device, const void* src_host, std::size_t bytes) {
  if (bytes == 0) return;
  TAPEFLOW_CUDA_CHECK(cudaMemcpy(dst_device, src_host, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst_host, const void* src_device, std::size_t bytes) {
  if (bytes == 0) return;
  TAPEFLOW_CUDA_CHECK(cudaMemcpy(dst_host, src_device, bytes, cudaMemcpyDeviceToHost));
}

void synchronize() { TAPEFLOW_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace tapeflow::kernels::cuda
