#pragma once
// TAPEFLOW_CUDA=EMU: the CUDA C++ that kernels/cuda/src uses, for g++ on a machine without a
// GPU. Force-included (-include) into every rewritten .cu file (rewrite_launches.cpp turns
// `kernel<<<grid, block, shared, stream>>>(args)` into `tapeflow_emu::launch(...)(args)`); the
// runtime behind it (runtime.cpp) runs each launch's grid block by block, every CUDA thread
// of a block on a fiber of its own, so __syncthreads() and warp shuffles have their real
// meaning. Declares nothing of tapeflow: the kernel sources stay the ones nvcc compiles.
//
// What it models: thread / block indices, __shared__ memory per block (undefined, as 0xff
// bytes, at each block's start; on the heap, so ASan sees overflows), __syncthreads() and
// __shfl_xor_sync() (full warps), atomicAdd, launch-configuration limits, streams that run
// their work only when the host waits for them, device memory the host cannot touch and whose
// every allocation ends at a guard page; with TAPEFLOW_TSAN, data races between CUDA threads
// (runtime.cpp). What it does not: timing, warp-synchronous code without a shuffle, memory
// fences, textures, dynamic shared memory.

// Kernel sources may test for the emulator (kernels/cuda/src/common.cuh does, for the one knob
// below).
#define TAPEFLOW_CUDA_EMULATED 1

// rewrite_launches turns every __shared__ declaration of kernels/cuda/src into a reference to
// the block's copy (shared_memory below); one it did not see would still compile, as memory
// of the host thread that every block running on it shares.
#undef __shared__
#define __shared__ static thread_local
#include <cuda_runtime.h>
#include <math.h>  // exp, log, ... of float and double in the global namespace, as CUDA has them

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tapeflow_emu {

struct BlockCtx {
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
struct ThreadCtx {
  uint3 thread_idx;
  const BlockCtx* block;
};
// The CUDA thread running on this host thread now (set by the scheduler at every switch).
extern thread_local ThreadCtx* t_thread;

void syncthreads();
// TAPEFLOW_CUDA_EMU_MAX_BLOCKS (at least 1) where it is set, else `fallback`: the most blocks
// the kernels' host code puts in a grid-stride launch.
long long max_blocks(long long fallback);
// The running block's copy of the __shared__ variable `key` (rewrite_launches turns each
// declaration into a reference to it): made by the first thread of a block that asks, filled
// with 0xff bytes (NaN, -1) as a GPU's shared memory starts with no defined value, so a read
// before the block wrote shows; freed after the block.
void* shared_block(const void* key, std::size_t bytes, std::size_t align);
template <class A>
A& shared_memory(const char* key) {
  return *static_cast<A*>(shared_block(key, sizeof(A), alignof(A)));
}
std::uint64_t shfl_xor_bits(unsigned mask, std::uint64_t bits, int lane_mask, int width);

struct LaunchConfig {
  const char* kernel;
  dim3 grid;
  dim3 block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  std::size_t param_bytes;
};
// Checks the configuration and the pointer arguments (nullptr or device memory of the
// stream's device), then queues the grid on the stream: thread_body runs once per CUDA
// thread. Errors are reported as CUDA reports them (cudaGetLastError, or sticky).
void enqueue_kernel(const LaunchConfig& config, const void* const* pointers, int count,
                    std::function<void()> thread_body);

template <class... P>
class Launch {
 public:
  Launch(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream)
      : kernel_(kernel), config_{name, grid, block, shared, stream, (0 + ... + sizeof(P))} {}

  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    // The parameters are copied once, as CUDA copies them into the kernel's parameter space.
    auto params = std::make_shared<std::tuple<std::decay_t<P>...>>(static_cast<P>(std::forward<A>(args))...);
    // one entry per parameter: the pointer ones, nullptr for the others (enqueue skips those)
    const void* pointers[sizeof...(P) + 1] = {};
    std::apply([&](const auto&... p) { std::size_t i = 0; ((pointers[i++] = as_pointer(p)), ...); }, *params);
    void (*kernel)(P...) = kernel_;
    enqueue_kernel(config_, pointers, static_cast<int>(sizeof...(P)), [kernel, params] { std::apply(kernel, *params); });
  }

 private:
  template <class T>
  static const void* as_pointer(const T& v) {
    if constexpr (std::is_pointer_v<T>) {
      return static_cast<const void*>(v);
    } else {
      return nullptr;
    }
  }
  void (*kernel_)(P...);
  LaunchConfig config_;
};

template <class... P>
Launch<P...> launch(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, std::size_t shared = 0,
                    cudaStream_t stream = nullptr) {
  return Launch<P...>(kernel, name, grid, block, shared, stream);
}

}  // namespace tapeflow_emu

#define threadIdx (::tapeflow_emu::t_thread->thread_idx)
#define blockIdx (::tapeflow_emu::t_thread->block->block_idx)
#define blockDim (::tapeflow_emu::t_thread->block->block_dim)
#define gridDim (::tapeflow_emu::t_thread->block->grid_dim)
#define __syncthreads() ::tapeflow_emu::syncthreads()

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move 4 or 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = ::tapeflow_emu::shfl_xor_bits(mask, bits, lane_mask, width);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// A compare-and-swap loop on the value's bits (4 or 8 bytes), with the _n builtins that
// ThreadSanitizer sees as atomics.
template <class T>
inline T tapeflow_emu_atomic_add(T* p, T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomicAdd of 4 or 8 bytes");
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  auto* word = reinterpret_cast<Bits*>(p);
  Bits old_bits = __atomic_load_n(word, __ATOMIC_RELAXED);
  T old;
  for (;;) {
    std::memcpy(&old, &old_bits, sizeof(T));
    T next;
    if constexpr (std::is_integral_v<T>) {  // wraps, as on the device
      using U = std::make_unsigned_t<T>;
      next = static_cast<T>(static_cast<U>(old) + static_cast<U>(v));
    } else {
      next = old + v;
    }
    Bits next_bits;
    std::memcpy(&next_bits, &next, sizeof(T));
    if (__atomic_compare_exchange_n(word, &old_bits, next_bits, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return old;
  }
}
inline float atomicAdd(float* p, float v) { return tapeflow_emu_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return tapeflow_emu_atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return tapeflow_emu_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return tapeflow_emu_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return tapeflow_emu_atomic_add(p, v);
}
// *p = (*p == compare ? v : *p), atomically; returns the old value, as CUDA's.
template <class W>
inline W tapeflow_emu_atomic_cas(W* p, W compare, W v) {
  __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // on failure the builtin stored the value it saw there
}
inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned v) { return tapeflow_emu_atomic_cas(p, compare, v); }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare, unsigned long long v) {
  return tapeflow_emu_atomic_cas(p, compare, v);
}
