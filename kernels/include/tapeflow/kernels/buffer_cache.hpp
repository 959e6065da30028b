#pragma once
// The caching allocator every device uses (the CPU's in core/src/allocator.cpp, each GPU's
// in kernels/cuda): freed buffers are kept by size class and handed out again, so a steady
// training loop allocates nothing from the system after its first step.
//
// Backend provides:
//   void* allocate(std::size_t bytes)   // a fresh buffer, nullptr when out of memory
//   void free(void* p)                  // returns one to the system
//   void before_release()               // runs before cached buffers are freed (a GPU waits
//                                       // for its queued work here)
#include <cstddef>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace tapeflow::kernels {

// Byte counts of one cache (bytes are rounded-up capacities).
struct CacheStats {
  std::size_t current_bytes = 0;  // held by live buffers
  std::size_t peak_bytes = 0;     // highest current_bytes since start or reset_peak()
  std::size_t cached_bytes = 0;   // freed buffers kept for reuse
  std::size_t live_buffers = 0;
  std::size_t allocations = 0;    // requests served, from the cache or fresh
  std::size_t cache_hits = 0;     // requests served from the cache
};

// Size classes: multiples of `granule` up to `small`, then four per power of two (at most
// 25% waste).
inline std::size_t size_class(std::size_t n, std::size_t granule, std::size_t small) {
  if (n == 0) n = 1;
  if (n <= small) return (n + granule - 1) / granule * granule;
  std::size_t p = small;
  while (p * 2 < n) p *= 2;
  for (int q = 1; q <= 4; ++q) {
    const std::size_t c = p + p / 4 * q;
    if (c >= n) return c;
  }
  return p * 2;
}

template <class Backend>
class BufferCache {
 public:
  // Keeps at most max_cached freed bytes; beyond that, freed buffers go back to the system.
  BufferCache(Backend backend, std::size_t granule, std::size_t small, std::size_t max_cached)
      : backend_(std::move(backend)), granule_(granule), small_(small), max_cached_(max_cached) {}
  BufferCache(const BufferCache&) = delete;
  BufferCache& operator=(const BufferCache&) = delete;

  // At least `bytes` bytes (the capacity is written to `capacity`); nullptr when even an
  // emptied cache leaves the system without memory.
  void* allocate(std::size_t bytes, std::size_t& capacity) {
    capacity = size_class(bytes, granule_, small_);
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
      p = backend_.allocate(capacity);
      if (p == nullptr) {
        release_all_locked();
        p = backend_.allocate(capacity);
      }
      if (p == nullptr) return nullptr;
    }
    stats_.current_bytes += capacity;
    ++stats_.live_buffers;
    if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
    return p;
  }

  void deallocate(void* p, std::size_t capacity) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.current_bytes -= capacity;
    --stats_.live_buffers;
    try {
      if (stats_.cached_bytes + capacity <= max_cached_) {
        free_[capacity].push_back(p);
        stats_.cached_bytes += capacity;
        return;
      }
    } catch (...) {  // no host memory for the list: give the buffer back instead
    }
    backend_.free(p);
  }

  CacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes = stats_.current_bytes;
  }
  // Returns every cached buffer to the system.
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_all_locked();
  }

 private:
  void release_all_locked() {
    backend_.before_release();
    for (auto& [size, list] : free_) {
      for (void* p : list) backend_.free(p);
      list.clear();
    }
    stats_.cached_bytes = 0;
  }

  Backend backend_;
  std::size_t granule_, small_, max_cached_;
  std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;
  CacheStats stats_;
};

}  // namespace tapeflow::kernels
