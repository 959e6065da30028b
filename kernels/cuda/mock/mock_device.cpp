// A stand-in for kernels/cuda on machines without a GPU (configure with TAPEFLOW_CUDA=MOCK):
// two "devices" whose memory is host memory from a BufferCache and whose kernels are the CPU
// ones. It implements tapeflow/kernels/cuda.hpp exactly, so the core's device
// plumbing (dispatch, to(), mixed-device errors, layers and fit on a device, the tape
// returning gradients across devices) runs its per-device tests in CI under ASan+UBSan.
// It says nothing about the real kernels: kernels/cuda/src is only ever tested on a GPU.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "tapeflow/kernels/buffer_cache.hpp"
#include "tapeflow/kernels/cuda.hpp"
#include "tapeflow/kernels/cpu.hpp"

namespace tapeflow::kernels::cuda {
namespace {

constexpr int kDevices = 2;  // two, so that copies between devices are exercised too
thread_local int t_device = 0;
std::atomic<bool> g_allow_tf32{false};

struct HostBackend {
  void* allocate(std::size_t bytes) { return std::aligned_alloc(512, bytes); }
  void free(void* p) { std::free(p); }
  void before_release() {}
};
using MockCache = BufferCache<HostBackend>;

MockCache& cache(int device) {
  // never destroyed: tensors in static storage may outlive any other static
  static MockCache* caches[kDevices] = {new MockCache(HostBackend{}, 512, std::size_t(1) << 20, SIZE_MAX),
                                        new MockCache(HostBackend{}, 512, std::size_t(1) << 20, SIZE_MAX)};
  return *caches[device];
}

void check_index(int device, const char* what) {
  if (device < 0 || device >= kDevices) {
    throw CudaError(std::string(what) + ": CUDA device " + std::to_string(device) + " is not available (" +
                        std::to_string(kDevices) + " mock devices)",
                    101);  // cudaErrorInvalidDevice
  }
}

}  // namespace

int device_count() noexcept { return kDevices; }
std::string device_status() {
  return "CUDA device 0 of 2: tapeflow mock device (host memory, CPU kernels; TAPEFLOW_CUDA=MOCK)";
}
void set_device(int index) {
  check_index(index, "set_device");
  t_device = index;
}
int current_device() { return t_device; }
void* stream() { return nullptr; }
// The waits a real device would make (kernels/cuda/src/device.cpp counts the same ones).
std::atomic<std::uint64_t> g_host_waits{0};
void synchronize() { g_host_waits.fetch_add(1); }
std::uint64_t host_waits() noexcept { return g_host_waits.load(); }

void* allocate(int device, std::size_t bytes, std::size_t& capacity) {
  check_index(device, "allocate");
  void* p = cache(device).allocate(bytes, capacity);
  if (p == nullptr) throw CudaError("allocate: out of memory for " + std::to_string(bytes) + " bytes", 2);
  return p;
}
void deallocate(int device, void* ptr, std::size_t capacity) noexcept {
  if (ptr != nullptr && device >= 0 && device < kDevices) cache(device).deallocate(ptr, capacity);
}
CacheStats cache_stats(int device) {
  check_index(device, "cache_stats");
  return cache(device).stats();
}
void reset_peak(int device) {
  check_index(device, "reset_peak");
  cache(device).reset_peak();
}
void empty_cache(int device) {
  check_index(device, "empty_cache");
  cache(device).release_all();
}

void copy_to_device(void* dst_device, const void* src_host, std::size_t bytes) {
  if (bytes > 0) std::memcpy(dst_device, src_host, bytes);
}
void copy_to_host(void* dst_host, const void* src_device, std::size_t bytes) {
  if (bytes == 0) return;
  g_host_waits.fetch_add(1);
  std::memcpy(dst_host, src_device, bytes);
}
void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes) {
  check_index(dst_device, "copy_device_to_device");
  check_index(src_device, "copy_device_to_device");
  if (bytes == 0) return;
  if (dst_device != src_device) g_host_waits.fetch_add(2);
  std::memmove(dst, src, bytes);
}

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

// ---- the kernels: the CPU ones on the "device" buffers ----

template <class T>
void unary(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l, double p0, double p1) {
  cpu::unary<T>(op, out, out_l, in, in_l, p0, p1);
}
template <class T>
void binary(OpId op, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  cpu::binary<T>(op, out, out_l, a, a_l, b, b_l);
}
template <class T>
void compare(OpId op, bool* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  cpu::compare<T>(op, out, out_l, a, a_l, b, b_l);
}
template <class T>
void where(T* out, const Layout& out_l, const bool* cond, const Layout& cond_l, const T* a, const Layout& a_l,
           const T* b, const Layout& b_l) {
  cpu::where<T>(out, out_l, cond, cond_l, a, a_l, b, b_l);
}
template <class TO, class TI>
void copy(TO* out, const Layout& out_l, const TI* in, const Layout& in_l) {
  cpu::copy<TO, TI>(out, out_l, in, in_l);
}
template <class T>
void fill(T* out, const Layout& out_l, T value) {
  cpu::fill<T>(out, out_l, value);
}
template <class T>
void reduce(OpId op, T* out, const Layout& out_l, const T* in, const Layout& in_l) {
  cpu::reduce<T>(op, out, out_l, in, in_l);
}
template <class T>
void arg_reduce(OpId op, std::int64_t* out, const T* in, const Layout& in_l, int axis) {
  cpu::arg_reduce<T>(op, out, in, in_l, axis);
}
template <class T>
void argsort(std::int64_t* out, const T* in, const Layout& in_l, int axis, bool descending) {
  cpu::argsort<T>(out, in, in_l, axis, descending);
}
template <class T>
void matmul(T* out, const T* a, const Layout& a_l, const T* b, const Layout& b_l) {
  cpu::matmul<T>(out, a, a_l, b, b_l);
}
template <class T>
void gather(T* out, const Layout& out_l, const T* in, const Layout& in_l, const std::int64_t* idx,
            const Layout& idx_l, int axis) {
  cpu::gather<T>(out, out_l, in, in_l, idx, idx_l, axis);
}
template <class T>
void scatter_add(T* out, const Layout& out_l, const T* src, const Layout& src_l, const std::int64_t* idx,
                 const Layout& idx_l, int axis) {
  cpu::scatter_add<T>(out, out_l, src, src_l, idx, idx_l, axis);
}
template <class T>
void scatter_reduce(OpId op, T* out, const Layout& out_l, const T* src, const Layout& src_l, const std::int64_t* idx,
                    const Layout& idx_l, int axis) {
  cpu::scatter_reduce<T>(op, out, out_l, src, src_l, idx, idx_l, axis);
}
template <class T>
void im2col(T* out, const T* in, const Layout& in_l, const Window2d& w, T fill) {
  cpu::im2col<T>(out, in, in_l, w, fill);
}
template <class T>
void col2im(T* out, const Layout& out_l, const T* in, const Layout& in_l, const Window2d& w) {
  cpu::col2im<T>(out, out_l, in, in_l, w);
}
template <class T>
void pool_select(T* out, const T* x, const Layout& x_l, const T* v, const Layout& v_l, const Window2d& w) {
  cpu::pool_select<T>(out, x, x_l, v, v_l, w);
}
template <class T>
void pool_scatter(T* out, const T* x, const Layout& x_l, const T* g, const Layout& g_l, const Window2d& w) {
  cpu::pool_scatter<T>(out, x, x_l, g, g_l, w);
}
template <class T>
void softmax(bool log, T* out, const T* in, const Layout& in_l, int axis) {
  cpu::softmax<T>(log, out, in, in_l, axis);
}
template <class T>
void addc(bool divide, T* out, const Layout& out_l, const T* a, const Layout& a_l, const T* b, const Layout& b_l,
          T value) {
  cpu::addc<T>(divide, out, out_l, a, a_l, b, b_l, value);
}
template <class T>
void uniform(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double low, double high) {
  cpu::uniform<T>(out, n, seed, offset, low, high);
}
template <class T>
void normal(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double mean, double stddev) {
  cpu::normal<T>(out, n, seed, offset, mean, stddev);
}

#include "tapeflow/kernels/kernel_instantiations.inc"

}  // namespace tapeflow::kernels::cuda
