// The CPU caching allocator. A fresh buffer of 1M floats or more costs 2-3x in page faults
// on this machine, so freed buffers are kept by size class and handed out again.
#include "tapeflow/allocator.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "internal.hpp"
#include "tapeflow/error.hpp"

namespace tapeflow {
namespace {

constexpr std::size_t kAlignment = 64;
// Keep at most this many freed bytes cached; beyond it buffers go back to the system.
constexpr std::size_t kMaxCachedBytes = std::size_t(2) << 30;

// Size classes: four per power of two (at most 25% waste), 64-byte multiples below 4 KiB.
std::size_t size_class(std::size_t n) {
  if (n <= 4096) return (n + kAlignment - 1) / kAlignment * kAlignment;
  std::size_t p = 4096;
  while (p * 2 < n) p *= 2;
  for (int q = 1; q <= 4; ++q) {
    const std::size_t c = p + p / 4 * q;
    if (c >= n) return c;
  }
  return p * 2;
}

class CpuCache {
 public:
  void* allocate(std::size_t nbytes, std::size_t& capacity) {
    capacity = size_class(nbytes == 0 ? 1 : nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    void* p = nullptr;
    auto it = free_.find(capacity);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= capacity;
      ++stats_.cache_hits;
    } else {
      p = std::aligned_alloc(kAlignment, capacity);
      if (!p) {
        release_all_locked();
        p = std::aligned_alloc(kAlignment, capacity);
      }
      if (!p) throw ValueError(fmt::format("allocate: out of memory for {} bytes", nbytes));
    }
    stats_.current_bytes += capacity;
    ++stats_.live_buffers;
    if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
    return p;
  }

  void deallocate(void* p, std::size_t capacity) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.current_bytes -= capacity;
    --stats_.live_buffers;
    if (stats_.cached_bytes + capacity > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    free_[capacity].push_back(p);
    stats_.cached_bytes += capacity;
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.current_bytes;
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_all_locked();
  }

 private:
  void release_all_locked() {
    for (auto& [size, list] : free_) {
      for (void* p : list) std::free(p);
      list.clear();
    }
    stats_.cached_bytes = 0;
  }

  std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  MemoryStats stats_;
};

CpuCache& cpu_cache() {
  // Never destroyed: tensors in static storage may outlive any other static.
  static CpuCache* cache = new CpuCache();
  return *cache;
}

}  // namespace

// CUDA devices: kernels/cuda's caching allocator (one per device, stream-ordered reuse).
MemoryStats memory_stats(Device device) {
  if (device.is_cpu()) return cpu_cache().stats();
  detail::use_device(device, "memory_stats");
  MemoryStats m;
#if defined(TAPEFLOW_HAVE_CUDA)
  const auto c = kernels::cuda::cache_stats(device.index);
  m = {c.current_bytes, c.peak_bytes, c.cached_bytes, c.live_buffers, c.allocations, c.cache_hits};
#endif
  return m;
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

Storage::Storage(std::size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    data_ = cpu_cache().allocate(nbytes, capacity_);
    return;
  }
  detail::use_device(device, "allocate");
#if defined(TAPEFLOW_HAVE_CUDA)
  try {
    data_ = kernels::cuda::allocate(device.index, nbytes, capacity_);
  } catch (const kernels::cuda::CudaError&) {
    detail::rethrow_device_error("allocate");
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
