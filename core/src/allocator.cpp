// The CPU caching allocator. A fresh buffer of 1M floats or more costs 2-3x in page faults
// on this machine, so freed buffers are kept by size class and handed out again.
#include "tapeflow/allocator.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "internal.hpp"
#include "tapeflow/kernels/buffer_cache.hpp"
#include "tapeflow/error.hpp"

#if defined(__linux__)
#include <sys/sysinfo.h>
#endif

namespace tapeflow {

std::size_t detail::cpu_memory_bytes() {
  static const std::size_t bytes = [] {
#if defined(__linux__)
    struct sysinfo info {};
    if (sysinfo(&info) == 0) {
      return static_cast<std::size_t>(info.totalram + info.totalswap) * static_cast<std::size_t>(info.mem_unit);
    }
#endif
    return std::numeric_limits<std::size_t>::max();
  }();
  return bytes;
}

namespace {

constexpr std::size_t kAlignment = 64;
// Keep at most this many freed bytes cached; beyond it buffers go back to the system.
constexpr std::size_t kMaxCachedBytes = std::size_t(2) << 30;

struct CpuBackend {
  // More than the machine's memory and swap is refused here, as Linux refuses it by default:
  // asked for it, some allocators (the sanitizers') abort instead of returning null.
  void* allocate(std::size_t bytes) {
    return bytes > detail::cpu_memory_bytes() ? nullptr : std::aligned_alloc(kAlignment, bytes);
  }
  void free(void* p) { std::free(p); }
  void before_release() {}
};
// 64-byte multiples below 4 KiB, then four size classes per power of two.
using CpuCache = kernels::BufferCache<CpuBackend>;

MemoryStats memory_stats_of(const kernels::CacheStats& c) {
  return {c.current_bytes, c.peak_bytes, c.cached_bytes, c.live_buffers, c.allocations, c.cache_hits};
}

CpuCache& cpu_cache() {
  // Never destroyed: tensors in static storage may outlive any other static.
  static CpuCache* cache = new CpuCache(CpuBackend{}, kAlignment, 4096, kMaxCachedBytes);
  return *cache;
}

}  // namespace

// CUDA devices: kernels/cuda's caching allocator (one per device, stream-ordered reuse).
MemoryStats memory_stats(Device device) {
  if (device.is_cpu()) return memory_stats_of(cpu_cache().stats());
  detail::use_device(device, "memory_stats");
#if defined(TAPEFLOW_HAVE_CUDA)
  return memory_stats_of(kernels::cuda::cache_stats(device.index));
#else
  return {};
#endif
}
void reset_peak_memory(Device device) {
  if (device.is_cpu()) return cpu_cache().reset_peak();
  detail::use_device(device, "reset_peak_memory");
#if defined(TAPEFLOW_HAVE_CUDA)
  kernels::cuda::reset_peak(device.index);
#endif
}
void empty_cache(Device device) {
  if (device.is_cpu()) return cpu_cache().release_all();
  detail::use_device(device, "empty_cache");
#if defined(TAPEFLOW_HAVE_CUDA)
  try {
    kernels::cuda::empty_cache(device.index);
  } catch (const kernels::cuda::CudaError&) {
    detail::rethrow_device_error("empty_cache");
  }
#endif
}

Storage::Storage(std::size_t nbytes, Device device, const char* op) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    data_ = cpu_cache().allocate(nbytes, capacity_);
    if (data_ == nullptr) throw ValueError(fmt::format("{}: out of memory for {} bytes", op, nbytes));
    return;
  }
  detail::use_device(device, op);
#if defined(TAPEFLOW_HAVE_CUDA)
  try {
    data_ = kernels::cuda::allocate(device.index, nbytes, capacity_);
  } catch (const kernels::cuda::CudaError&) {
    detail::rethrow_device_error(op);
  }
#endif
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    cpu_cache().deallocate(data_, capacity_);
    return;
  }
#if defined(TAPEFLOW_HAVE_CUDA)
  kernels::cuda::deallocate(device_.index, data_, capacity_);
#endif
}

}  // namespace tapeflow
