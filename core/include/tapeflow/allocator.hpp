#pragma once
/// Tensor storage and the CPU caching allocator.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tapeflow/dtype.hpp"

namespace tapeflow {

/// Byte counts of the caching allocator of one device.
struct MemoryStats {
  std::size_t current_bytes = 0;  ///< held by live storages
  std::size_t peak_bytes = 0;     ///< highest current_bytes since start or reset_peak_memory()
  std::size_t cached_bytes = 0;   ///< freed buffers kept for reuse
  std::size_t live_buffers = 0;   ///< live storages
  std::size_t allocations = 0;    ///< requests served, from the cache or fresh
  std::size_t cache_hits = 0;     ///< requests served from the cache
};

MemoryStats memory_stats(Device device = Device::cpu());
void reset_peak_memory(Device device = Device::cpu());
/// Returns every cached buffer to the system.
void empty_cache(Device device = Device::cpu());

/// A buffer of bytes on one device, shared by tensors and their views. Freed buffers go back
/// to the device's cache. `version` counts in-place writes (the tape checks it).
class Storage {
 public:
  /// `op` names the op in a DeviceError (a missing device, out of memory).
  Storage(std::size_t nbytes, Device device, const char* op = "allocate");
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  std::uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  std::size_t capacity_ = 0;
  Device device_;
  std::uint64_t version_ = 0;
};

}  // namespace tapeflow
