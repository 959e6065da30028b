#pragma once
/// The CUDA kernels' host-side API. Plain C++ (compiles with g++ and nvcc): no CUDA, xtensor
/// or core type appears here; a stream is passed as `void*` (a cudaStream_t).
///
/// Devices and streams: every call below works on the calling thread's *current device*
/// (set_device). Each device has one stream of its own (created on first use); every kernel,
/// copy and cuBLAS call of that device runs on it, in order, so a buffer freed to the cache
/// and handed out again is only touched after the work queued before it.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "tapeflow/kernels/buffer_cache.hpp"
#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels::cuda {

/// A failed CUDA runtime or cuBLAS call. The message names the call, the CUDA error and
/// file:line, e.g. "cudaMalloc(&p, bytes) failed: out of memory (cudaErrorMemoryAllocation)
/// at kernels/cuda/src/memory.cu:12". The core rethrows it as tapeflow::DeviceError.
class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& message, int code) : std::runtime_error(message), code_(code) {}
  /// The cudaError_t (or cublasStatus_t) value.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Number of usable CUDA devices; 0 when the runtime reports any error (no driver, a driver
/// too old for this runtime, no device, ...). Never throws. The answer is computed once.
int device_count() noexcept;

/// One line for logs: "CUDA device 0 of 1: <name> (sm_90, 79 GiB), runtime 13.0, driver 13.0"
/// or "no CUDA device: <CUDA's error string>". Never throws.
std::string device_status();

// ---------------------------------------------------------------- devices and streams
/// Makes `index` the calling thread's current device (cheap when it already is). Throws
/// CudaError when the index is not a usable device.
void set_device(int index);
/// The calling thread's current device.
int current_device();
/// The current device's stream (a cudaStream_t), created on first use.
void* stream();
/// Waits for everything queued on the current device's stream. Throws CudaError, also for
/// an earlier asynchronous error (a failed kernel).
void synchronize();
/// How many times the host has waited for queued device work since the process began:
/// synchronize(), copies to the host, copies between devices, copies from the host that
/// could not be staged (below), and a cache emptied to make room. Thread-safe.
std::uint64_t host_waits() noexcept;

// ---------------------------------------------------------------- the caching allocator
/// Counters of one device's caching allocator (tapeflow/kernels/buffer_cache.hpp).
using kernels::CacheStats;
/// At least `bytes` bytes on device `device` (its capacity is written to `capacity`). A freed
/// buffer of the same size class is reused; cudaMalloc runs only on a miss (and, when it
/// fails, once more after the cache is emptied). Never nullptr, also for 0 bytes.
/// Thread-safe. Throws CudaError.
void* allocate(int device, std::size_t bytes, std::size_t& capacity);
/// Returns a buffer to its device's cache. Never throws.
void deallocate(int device, void* ptr, std::size_t capacity) noexcept;
CacheStats cache_stats(int device);
void reset_peak(int device);
/// cudaFree of every cached buffer of `device`.
void empty_cache(int device);

// ---------------------------------------------------------------- copies
/// Host to device on the current device's stream; returns once `src_host` may be reused.
/// Up to 4 MiB go through one of the device's 16 page-locked staging buffers and do not wait
/// for the device (a buffer is reused once the copy out of it has run); larger copies, or
/// when no page-locked memory can be had, wait for the copy.
void copy_to_device(void* dst_device, const void* src_host, std::size_t bytes);
/// Device to host: waits for the stream first, so the host sees every earlier write.
void copy_to_host(void* dst_host, const void* src_device, std::size_t bytes);
/// Device to device (same or another device), ordered after earlier work on both. Across
/// devices it returns once the copy is done (the source's stream knows nothing of it).
void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes);

// ---------------------------------------------------------------- math modes
/// float32 matmul in TF32 tensor-core mode (off by default: exact float32, as PyTorch's
/// torch.backends.cuda.matmul.allow_tf32 = False).
void set_allow_tf32(bool allow);
bool allow_tf32();

// ---------------------------------------------------------------- kernels
// The same kernels as naive and cpu (kernel_api.inc) on device pointers of the current
// device, asynchronous on its stream. Launch errors throw CudaError. Exceptions to the
// "no allocation" rule: matmul may use cached workspace for layouts cuBLAS cannot take.
#include "tapeflow/kernels/kernel_api.inc"

}  // namespace tapeflow::kernels::cuda
