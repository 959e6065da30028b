// Devices, streams, the caching allocator and copies. Plain C++ against the CUDA runtime API
// (g++ compiles this file; no kernels here).
#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_check.hpp"
#include "tapeflow/kernels/buffer_cache.hpp"
#include "tapeflow/kernels/cuda.hpp"

namespace tapeflow::kernels::cuda {

namespace {

std::string version_string(int v) {
  // CUDA encodes 13.0 as 13000.
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// -1 until this thread has set a device.
thread_local int t_device = -1;

std::atomic<std::uint64_t> g_host_waits{0};

// Waits for a stream. Every wait of the host for a device goes through here, except a staging
// buffer's event wait (free_slot, counted too) and cudaFreeHost when a staging buffer grows
// (not counted: once per size doubling).
void wait_stream(cudaStream_t s) {
  g_host_waits.fetch_add(1, std::memory_order_relaxed);
  TAPEFLOW_CUDA_CHECK(cudaStreamSynchronize(s));
}

// ---------------------------------------------------------------- the caching allocator

// Makes `device` current for its lifetime, then restores the thread's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : previous_(current_device()) {
    if (previous_ != device) set_device(device);
  }
  ~DeviceGuard() {
    if (previous_ != t_device && cudaSetDevice(previous_) == cudaSuccess) t_device = previous_;
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};

// cudaMalloc / cudaFree on one device, for BufferCache.
struct CudaBackend {
  int device;
  void* allocate(std::size_t bytes) {
    DeviceGuard guard(device);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // the cache empties itself and tries once more
      return nullptr;
    }
    TAPEFLOW_CUDA_CHECK(err);
    return p;
  }
  void free(void* p) noexcept {  // errors are dropped: this runs where nothing may throw
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(p) != cudaSuccess) cudaGetLastError();
    if (t_device >= 0 && t_device != device && cudaSetDevice(t_device) != cudaSuccess) cudaGetLastError();
  }
  // Cached buffers may still be used by queued work: wait for it first.
  void before_release() {
    DeviceGuard guard(device);
    wait_stream(static_cast<cudaStream_t>(stream()));
  }
};
// 512-byte multiples up to 1 MiB, then four size classes per power of two; every freed
// buffer stays cached until empty_cache() (or an allocation that finds the device full).
using DeviceCache = BufferCache<CudaBackend>;

// Page-locked host buffers that copies from the host go through: the bytes are copied into
// one, the DMA out of it is queued, and an event after it says when the buffer is free again.
// So a copy returns at once, without waiting for the work queued before it (a pageable copy
// must wait for the whole stream: the caller may reuse its memory on return).
struct Staging {
  static constexpr std::size_t kSlots = 16;
  static constexpr std::size_t kMaxBytes = std::size_t(4) << 20;
  struct Slot {
    void* host = nullptr;
    std::size_t capacity = 0;
    cudaEvent_t done = nullptr;  // recorded after the copy out of `host`
  };
  std::mutex mutex;
  std::array<Slot, kSlots> slots;
  std::size_t next = 0;
};

// Per-device state, made on first use and never destroyed (tensors in static storage may
// outlive any other static).
struct DeviceState {
  std::once_flag stream_once;
  cudaStream_t stream = nullptr;
  std::unique_ptr<DeviceCache> cache;
  Staging staging;
};

DeviceState& state(int device) {
  static std::mutex mutex;
  static auto* states = new std::map<int, std::unique_ptr<DeviceState>>();
  std::lock_guard<std::mutex> lock(mutex);
  auto& s = (*states)[device];
  if (!s) {
    s = std::make_unique<DeviceState>();
    s->cache = std::make_unique<DeviceCache>(CudaBackend{device}, 512, std::size_t(1) << 20, SIZE_MAX);
  }
  return *s;
}

// Throws CudaError naming the call, the device and file:line unless `device` is usable.
void check_index(int device, const char* what, const char* file, int line) {
  const int count = device_count();
  if (device < 0 || device >= count) {
    throw CudaError(std::string(what) + ": CUDA device " + std::to_string(device) + " is not available (" +
                        (count == 0 ? device_status() : std::to_string(count) + " device(s)") + ") at " + file +
                        ":" + std::to_string(line),
                    static_cast<int>(cudaErrorInvalidDevice));
  }
}
#define TAPEFLOW_CHECK_DEVICE(device, what) check_index(device, what, __FILE__, __LINE__)

}  // namespace

int device_count() noexcept {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      // Reset the runtime's last-error state so a later, unrelated check does not report it.
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
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
  return "CUDA device 0 of " + std::to_string(count) + ": " + prop.name + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(gib) + " GiB), runtime " + version_string(runtime) +
         ", driver " + version_string(driver);
}

void set_device(int index) {
  if (index == t_device && index >= 0) return;  // -1 is "not set yet", never a device
  TAPEFLOW_CHECK_DEVICE(index, "set_device");
  TAPEFLOW_CUDA_CHECK(cudaSetDevice(index));
  t_device = index;
}

int current_device() {
  if (t_device < 0) {
    int d = 0;
    TAPEFLOW_CUDA_CHECK(cudaGetDevice(&d));
    t_device = d;
  }
  return t_device;
}

void* stream() {
  // the last answer, per thread: every kernel launch asks
  thread_local int t_stream_device = -1;
  thread_local cudaStream_t t_stream = nullptr;
  const int device = current_device();
  if (device == t_stream_device) return t_stream;
  DeviceState& s = state(device);
  std::call_once(s.stream_once,
                 [&] { TAPEFLOW_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking)); });
  t_stream_device = device;
  t_stream = s.stream;
  return s.stream;
}

void synchronize() { wait_stream(static_cast<cudaStream_t>(stream())); }

std::uint64_t host_waits() noexcept { return g_host_waits.load(std::memory_order_relaxed); }

void* allocate(int device, std::size_t bytes, std::size_t& capacity) {
  TAPEFLOW_CHECK_DEVICE(device, "allocate");
  void* p = state(device).cache->allocate(bytes, capacity);
  if (p == nullptr) {  // out of memory even after emptying the cache
    const std::string call = "cudaMalloc of " + std::to_string(capacity) + " bytes on CUDA device " +
                             std::to_string(device) + " (its cache emptied)";
    detail::throw_cuda_error(cudaErrorMemoryAllocation, call.c_str(), __FILE__, __LINE__);
  }
  return p;
}

void deallocate(int device, void* ptr, std::size_t capacity) noexcept {
  if (ptr == nullptr) return;
  try {
    state(device).cache->deallocate(ptr, capacity);
  } catch (...) {
  }
}

CacheStats cache_stats(int device) {
  TAPEFLOW_CHECK_DEVICE(device, "cache_stats");
  return state(device).cache->stats();
}
void reset_peak(int device) {
  TAPEFLOW_CHECK_DEVICE(device, "reset_peak");
  state(device).cache->reset_peak();
}
void empty_cache(int device) {
  TAPEFLOW_CHECK_DEVICE(device, "empty_cache");
  state(device).cache->release_all();
}

namespace {

// A staging buffer of at least `bytes` whose last copy has run, or nullptr when no page-locked
// memory can be had. Called with the staging mutex held.
Staging::Slot* free_slot(Staging& staging, std::size_t bytes) {
  Staging::Slot& slot = staging.slots[staging.next];
  staging.next = (staging.next + 1) % Staging::kSlots;
  if (slot.done == nullptr) {
    TAPEFLOW_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  } else {
    const cudaError_t ready = cudaEventQuery(slot.done);
    if (ready == cudaErrorNotReady) {  // the host is kSlots copies ahead of the device
      cudaGetLastError();
      g_host_waits.fetch_add(1, std::memory_order_relaxed);
      TAPEFLOW_CUDA_CHECK(cudaEventSynchronize(slot.done));
    } else {
      TAPEFLOW_CUDA_CHECK(ready);
    }
  }
  if (slot.capacity < bytes) {
    if (slot.host != nullptr) TAPEFLOW_CUDA_CHECK(cudaFreeHost(slot.host));
    slot.host = nullptr;
    slot.capacity = 0;
    std::size_t capacity = std::size_t(64) << 10;
    while (capacity < bytes) capacity *= 2;
    if (cudaHostAlloc(&slot.host, capacity, cudaHostAllocDefault) != cudaSuccess) {
      cudaGetLastError();  // no page-locked memory: the caller copies from pageable memory
      slot.host = nullptr;
      return nullptr;
    }
    slot.capacity = capacity;
  }
  return &slot;
}

}  // namespace

void copy_to_device(void* dst_device, const void* src_host, std::size_t bytes) {
  if (bytes == 0) return;
  const auto s = static_cast<cudaStream_t>(stream());
  if (bytes <= Staging::kMaxBytes) {
    Staging& staging = state(current_device()).staging;
    std::lock_guard<std::mutex> lock(staging.mutex);
    if (Staging::Slot* slot = free_slot(staging, bytes)) {
      std::memcpy(slot->host, src_host, bytes);
      TAPEFLOW_CUDA_CHECK(cudaMemcpyAsync(dst_device, slot->host, bytes, cudaMemcpyHostToDevice, s));
      TAPEFLOW_CUDA_CHECK(cudaEventRecord(slot->done, s));
      return;
    }
  }
  TAPEFLOW_CUDA_CHECK(cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, s));
  wait_stream(s);  // the host buffer may be reused at once
}

void copy_to_host(void* dst_host, const void* src_device, std::size_t bytes) {
  if (bytes == 0) return;
  const auto s = static_cast<cudaStream_t>(stream());
  TAPEFLOW_CUDA_CHECK(cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, s));
  wait_stream(s);
}

void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == src_device) {
    DeviceGuard guard(dst_device);
    TAPEFLOW_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream())));
    return;
  }
  {
    DeviceGuard guard(src_device);
    synchronize();  // the source's writes are done
  }
  // Waits for the copy too: the source's own stream knows nothing of it, and may reuse the
  // buffer as soon as its owner frees it.
  DeviceGuard guard(dst_device);
  TAPEFLOW_CUDA_CHECK(
      cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, static_cast<cudaStream_t>(stream())));
  synchronize();
}

}  // namespace tapeflow::kernels::cuda
