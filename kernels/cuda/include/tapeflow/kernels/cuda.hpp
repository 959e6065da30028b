#pragma once
/// The CUDA kernels' host-side API. Plain C++ (compiles with g++ and nvcc): no CUDA, xtensor
/// or core type appears here; a stream is passed as `void*` (a cudaStream_t, nullptr = the
/// default stream). Pointers named `out`, `a`, `b` are device pointers.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tapeflow::kernels::cuda {

/// A failed CUDA runtime call. The message names the call, the CUDA error and file:line,
/// e.g. "cudaMalloc(&p, bytes) failed: out of memory (cudaErrorMemoryAllocation) at
/// kernels/cuda/src/memory.cu:12". The core rethrows it as tapeflow::DeviceError.
class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& message, int code) : std::runtime_error(message), code_(code) {}
  /// The cudaError_t value.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Number of usable CUDA devices; 0 when the runtime reports any error (no driver, a driver
/// too old for this runtime, no device, ...). Never throws.
int device_count() noexcept;

/// One line for logs: "CUDA device 0: <name> (sm_90, 79 GiB), runtime 13.0, driver 13.0"
/// or "no CUDA device: <CUDA's error string>". Never throws.
std::string device_status();

// ---------------------------------------------------------------- memory (no caching yet)
/// Device memory of `bytes` bytes (nullptr for 0 bytes). Throws CudaError.
void* device_alloc(std::size_t bytes);
/// Frees what device_alloc returned; nullptr is allowed. Never throws (errors are ignored).
void device_free(void* ptr) noexcept;
/// Synchronous copies of `bytes` bytes. Throw CudaError.
void copy_to_device(void* dst_device, const void* src_host, std::size_t bytes);
void copy_to_host(void* dst_host, const void* src_device, std::size_t bytes);
/// Waits for all work on the current device. Throws CudaError (also for earlier async errors).
void synchronize();

// ---------------------------------------------------------------- kernels
/// out[i] = a[i] + b[i] for i in [0, n), contiguous float32. Asynchronous on `stream`;
/// out may alias a or b. Throws CudaError when the launch fails.
void add_f32(float* out, const float* a, const float* b, std::int64_t n, void* stream = nullptr);

}  // namespace tapeflow::kernels::cuda
