// The CUDA emulator itself (TAPEFLOW_CUDA=EMU): that it runs CUDA's semantics, and that it
// fails where a GPU would fail (or would silently compute garbage). Kernels here are written
// as nvcc would see them, launched through tapeflow_emu::launch (what rewrite_launches makes
// of <<<...>>>); this file goes through rewrite_launches too, for its __shared__ declarations. Failures that kill a CUDA context (sticky errors, faults) run in a forked
// child, whose exit and stderr are checked.
#include <catch2/catch.hpp>

#include <cublas_v2.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "tapeflow_cuda_emu.h"

namespace {

// out[i] = the sum of in over the block, by a shared-memory tree and warp shuffles: every
// thread must see the others' writes after each barrier.
__global__ void block_sum(float* out, const float* in) {
  __shared__ float partial[32];
  float v = in[blockIdx.x * blockDim.x + threadIdx.x];
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float w = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o /= 2) w += __shfl_xor_sync(0xffffffffu, w, o);
    if (threadIdx.x == 0) out[blockIdx.x] = w;
  }
}

// Every thread of a 2-D block of a 3-D grid writes its own coordinates.
__global__ void coordinates(int* out) {
  const unsigned t = threadIdx.y * blockDim.x + threadIdx.x;
  const unsigned b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  int* o = out + 4 * (b * blockDim.x * blockDim.y + t);
  o[0] = static_cast<int>(threadIdx.x);
  o[1] = static_cast<int>(threadIdx.y);
  o[2] = static_cast<int>(blockIdx.x + 10 * blockIdx.y + 100 * blockIdx.z);
  o[3] = static_cast<int>(gridDim.x * gridDim.y * gridDim.z);
}

__global__ void count_into(unsigned long long* counter, int* bins, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) {
    atomicAdd(counter, 1ull);
    atomicAdd(bins + i % 3, 1);
  }
}

// Each thread reads its shared slot before anyone in the block wrote it, then writes it: every
// block must read undefined memory (the poison), never the previous block's values.
__global__ void read_before_write(float* out) {
  __shared__ float slot[64];
  out[blockIdx.x * blockDim.x + threadIdx.x] = slot[threadIdx.x];
  __syncthreads();
  slot[threadIdx.x] = 1.0f;
}

// The order in which blocks start (thread 0 of each takes a ticket) and, in block 0, the
// order in which its threads first run.
__global__ void run_order(unsigned* tickets, unsigned* block_ticket, unsigned* thread_ticket) {
  if (threadIdx.x == 0) block_ticket[blockIdx.x] = atomicAdd(tickets, 1u);
  if (blockIdx.x == 0) thread_ticket[threadIdx.x] = atomicAdd(tickets + 1, 1u);
}

// Races for ThreadSanitizer builds: thread 0 of every block writes the same word; each thread
// reads its neighbour's shared slot with no barrier after the neighbour wrote it. And the
// same kernels made correct (an atomic; a barrier between the write and the read).
__global__ void blocks_race(int* out) {
  if (threadIdx.x == 0) out[0] = static_cast<int>(blockIdx.x);
}
__global__ void blocks_count(int* out) {
  if (threadIdx.x == 0) atomicAdd(out, 1);
}
__global__ void neighbours(float* out, bool barrier) {
  __shared__ float slot[64];
  slot[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (barrier) __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = slot[(threadIdx.x + 1) % blockDim.x];
}

// A barrier that thread 0 never reaches.
__global__ void divergent(float* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void read_at(float* out, const float* in, long long i) { out[0] = in[i]; }

template <class T>
T* device_alloc(std::size_t n) {
  void* p = nullptr;
  REQUIRE(cudaMalloc(&p, n * sizeof(T)) == cudaSuccess);
  return static_cast<T*>(p);
}

// Runs f in a forked child; returns what it printed and whether it ended by a signal / exit code.
struct Child {
  bool signaled = false;
  int code = 0;
  std::string err;
  // Ended by the fault: killed by the signal, or, under AddressSanitizer or ThreadSanitizer
  // (whose SIGSEGV handler runs last and exits with 1 or 66), with its report of it.
  bool faulted() const {
    return signaled || (code == 1 && err.find("AddressSanitizer: SEGV") != std::string::npos) ||
           (code == 66 && err.find("ThreadSanitizer: SEGV") != std::string::npos);
  }
};
Child in_child(const std::function<int()>& f) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);  // the child's own test report (after a fault) stays out of ours
    dup2(fds[1], 2);
    close(fds[0]);
    _exit(f());
  }
  close(fds[1]);
  Child c;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) c.err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  c.signaled = WIFSIGNALED(status);
  c.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

}  // namespace

TEST_CASE("emu: barriers and shuffles give every block its sum") {
  const int blocks = 5, threads = 256;
  std::vector<float> host(blocks * threads);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i % 17) - 3.0f;
  float* in = device_alloc<float>(host.size());
  float* out = device_alloc<float>(blocks);
  REQUIRE(cudaMemcpy(in, host.data(), host.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess);
  tapeflow_emu::launch(&block_sum, "block_sum", blocks, threads)(out, in);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  std::vector<float> sums(blocks);
  REQUIRE(cudaMemcpy(sums.data(), out, blocks * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int b = 0; b < blocks; ++b) {
    float want = 0;
    for (int t = 0; t < threads; ++t) want += host[static_cast<std::size_t>(b * threads + t)];
    CHECK(sums[static_cast<std::size_t>(b)] == want);
  }
  CHECK(cudaFree(in) == cudaSuccess);
  CHECK(cudaFree(out) == cudaSuccess);
}

TEST_CASE("emu: thread and block indices cover 2-D blocks of a 3-D grid") {
  const dim3 grid(3, 2, 2), block(8, 4);
  const int n = 12 * 32;
  int* out = device_alloc<int>(4 * n);
  tapeflow_emu::launch(&coordinates, "coordinates", grid, block)(out);
  std::vector<int> h(4 * n);
  REQUIRE(cudaMemcpy(h.data(), out, h.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int b = 0; b < 12; ++b) {
    for (int t = 0; t < 32; ++t) {
      const int* o = &h[static_cast<std::size_t>(4 * (b * 32 + t))];
      CHECK(o[0] == t % 8);
      CHECK(o[1] == t / 8);
      CHECK(o[2] == b % 3 + 10 * ((b / 3) % 2) + 100 * (b / 6));
      CHECK(o[3] == 12);
    }
  }
  CHECK(cudaFree(out) == cudaSuccess);
}

TEST_CASE("emu: atomicAdd counts every thread") {
  auto* counter = device_alloc<unsigned long long>(1);
  int* bins = device_alloc<int>(3);
  REQUIRE(cudaMemset(counter, 0, 8) == cudaSuccess);
  REQUIRE(cudaMemset(bins, 0, 12) == cudaSuccess);
  tapeflow_emu::launch(&count_into, "count_into", 4, 128)(counter, bins, 500);
  unsigned long long c = 0;
  int b[3] = {};
  REQUIRE(cudaMemcpy(&c, counter, 8, cudaMemcpyDeviceToHost) == cudaSuccess);
  REQUIRE(cudaMemcpy(b, bins, 12, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(c == 500);
  CHECK(b[0] == 167);
  CHECK(b[1] == 167);
  CHECK(b[2] == 166);
  CHECK(cudaFree(counter) == cudaSuccess);
  CHECK(cudaFree(bins) == cudaSuccess);
}

TEST_CASE("emu: every block's shared memory starts undefined") {
  const int blocks = 3, threads = 64;
  float* out = device_alloc<float>(blocks * threads);
  tapeflow_emu::launch(&read_before_write, "read_before_write", blocks, threads)(out);
  std::vector<std::uint32_t> bits(blocks * threads);
  REQUIRE(cudaMemcpy(bits.data(), out, bits.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (const std::uint32_t b : bits) CHECK(b == 0xffffffffu);  // a NaN, not block 0's 1.0f
  CHECK(cudaFree(out) == cudaSuccess);
}

TEST_CASE("emu: blocks and threads run in index order, or reversed with TAPEFLOW_CUDA_EMU_ORDER=reverse") {
  const char* order = std::getenv("TAPEFLOW_CUDA_EMU_ORDER");
  const bool reverse = order != nullptr && std::string(order) == "reverse";
  const unsigned blocks = 6, threads = 96;
  auto* tickets = device_alloc<unsigned>(2 + blocks + threads);
  REQUIRE(cudaMemset(tickets, 0, 8) == cudaSuccess);
  tapeflow_emu::launch(&run_order, "run_order", blocks, threads)(tickets, tickets + 2, tickets + 2 + blocks);
  std::vector<unsigned> h(2 + blocks + threads);
  REQUIRE(cudaMemcpy(h.data(), tickets, h.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (unsigned b = 0; b < blocks; ++b) CHECK(h[2 + b] == (reverse ? blocks - 1 - b : b));
  for (unsigned t = 0; t < threads; ++t) CHECK(h[2 + blocks + t] == (reverse ? threads - 1 - t : t));
  CHECK(cudaFree(tickets) == cudaSuccess);
}

TEST_CASE("emu: queued work runs only when the host waits") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  float* d = device_alloc<float>(4);
  const float src[4] = {1, 2, 3, 4};
  float back[4] = {0, 0, 0, 0};
  REQUIRE(cudaMemcpyAsync(d, src, 16, cudaMemcpyHostToDevice, s) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(back, d, 16, cudaMemcpyDeviceToHost, s) == cudaSuccess);
  CHECK(back[3] == 0);  // a host that reads before it waits sees nothing yet
  REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(back[3] == 4);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
  CHECK(cudaFree(d) == cudaSuccess);
}

TEST_CASE("emu: events complete when their stream has run up to them") {
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
  cudaEvent_t start = nullptr, stop = nullptr;
  REQUIRE(cudaEventCreate(&start) == cudaSuccess);
  REQUIRE(cudaEventCreate(&stop) == cudaSuccess);
  CHECK(cudaEventQuery(start) == cudaSuccess);  // never recorded: complete
  float* d = device_alloc<float>(1 << 16);
  REQUIRE(cudaEventRecord(start, s) == cudaSuccess);
  REQUIRE(cudaMemsetAsync(d, 0, 4 << 16, s) == cudaSuccess);
  REQUIRE(cudaEventRecord(stop, s) == cudaSuccess);
  CHECK(cudaEventQuery(stop) == cudaErrorNotReady);  // queued, not run
  float ms = -1;
  CHECK(cudaEventElapsedTime(&ms, start, stop) == cudaErrorNotReady);
  CHECK(cudaGetLastError() == cudaErrorNotReady);
  REQUIRE(cudaEventSynchronize(stop) == cudaSuccess);
  CHECK(cudaEventQuery(stop) == cudaSuccess);
  REQUIRE(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess);
  CHECK(ms >= 0);
  CHECK(ms < 10000);
  // recorded again: not complete until the stream runs up to the new record
  REQUIRE(cudaEventRecord(stop, s) == cudaSuccess);
  CHECK(cudaEventQuery(stop) == cudaErrorNotReady);
  CHECK(cudaEventDestroy(stop) == cudaSuccess);  // with its stamp still queued
  CHECK(cudaStreamSynchronize(s) == cudaSuccess);
  CHECK(cudaEventDestroy(stop) == cudaErrorInvalidResourceHandle);
  CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
  CHECK(cudaEventDestroy(start) == cudaSuccess);
  CHECK(cudaStreamDestroy(s) == cudaSuccess);
  CHECK(cudaFree(d) == cudaSuccess);
}

TEST_CASE("emu: bad launches and copies are refused as CUDA refuses them") {
  float* d = device_alloc<float>(8);
  tapeflow_emu::launch(&read_at, "read_at", 1, 2048)(d, d, 0LL);  // more than 1024 threads
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);  // not sticky
  tapeflow_emu::launch(&read_at, "read_at", dim3(1, 70000), 32)(d, d, 0LL);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  float host[8] = {};
  CHECK(cudaMemcpy(host, d, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // direction swapped
  CHECK(cudaMemcpy(host, d, 64, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);   // past the allocation
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  void* huge = nullptr;
  CHECK(cudaMalloc(&huge, std::size_t(1) << 40) == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
  CHECK(cudaSetDevice(7) == cudaErrorInvalidDevice);
  CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
  CHECK(cudaFree(d) == cudaSuccess);
}

TEST_CASE("emu: cuBLAS checks leading dimensions and the matrices' memory") {
  cublasHandle_t h = nullptr;
  REQUIRE(cublasCreate_v2(&h) == CUBLAS_STATUS_SUCCESS);
  double* a = device_alloc<double>(6);
  double* c = device_alloc<double>(4);
  const double one = 1, zero = 0;
  // C (2 x 2) = A (2 x 3) * A^T: lda 2 fits, lda 1 does not
  CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 3, &one, a, CUDA_R_64F, 1, a, CUDA_R_64F, 2, &zero, c,
                     CUDA_R_64F, 2, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 3, &one, a, CUDA_R_64F, 2, a, CUDA_R_64F, 2, &zero, c,
                     CUDA_R_64F, 2, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 3, &one, a, CUDA_R_64F, 2, a, CUDA_R_64F, 2, &zero, c,
                     CUDA_R_64F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
  const double ah[6] = {1, 2, 3, 4, 5, 6};  // column-major 2 x 3: rows (1 3 5), (2 4 6)
  REQUIRE(cudaMemcpy(a, ah, sizeof ah, cudaMemcpyHostToDevice) == cudaSuccess);
  REQUIRE(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 3, &one, a, CUDA_R_64F, 2, a, CUDA_R_64F, 2, &zero, c,
                       CUDA_R_64F, 2, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  double ch[4] = {};
  REQUIRE(cudaMemcpy(ch, c, sizeof ch, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(ch[0] == 35);  // 1 + 9 + 25
  CHECK(ch[1] == 44);  // 2 + 12 + 30
  CHECK(ch[2] == 44);
  CHECK(ch[3] == 56);  // 4 + 16 + 36
  CHECK(cudaFree(a) == cudaSuccess);
  CHECK(cudaFree(c) == cudaSuccess);
  CHECK(cublasDestroy_v2(h) == CUBLAS_STATUS_SUCCESS);
}

TEST_CASE("emu: faults a GPU would have end the child with a message naming them") {
  SECTION("a barrier not every thread reaches is a launch failure, and sticky") {
    const Child c = in_child([] {
      float* d = nullptr;
      if (cudaMalloc(reinterpret_cast<void**>(&d), 256 * 4) != cudaSuccess) return 10;
      tapeflow_emu::launch(&divergent, "divergent", 1, 64)(d);
      if (cudaGetLastError() != cudaSuccess) return 11;  // the launch itself is fine
      if (cudaDeviceSynchronize() != cudaErrorLaunchFailure) return 12;
      void* p = nullptr;
      return cudaMalloc(&p, 16) == cudaErrorLaunchFailure ? 0 : 13;  // the context is dead
    });
    CHECK(c.code == 0);
    CHECK(c.err.find("kernel divergent: block (0, 0, 0) of 64 threads cannot go on") != std::string::npos);
  }
  SECTION("host memory passed to a kernel") {
    const Child c = in_child([] {
      static float host[4];
      tapeflow_emu::launch(&read_at, "read_at", 1, 1)(host, host, 0LL);
      return cudaGetLastError() == cudaErrorIllegalAddress ? 0 : 1;
    });
    CHECK(c.code == 0);
    CHECK(c.err.find("kernel read_at: pointer argument 1") != std::string::npos);
    CHECK(c.err.find("is host memory") != std::string::npos);
  }
  SECTION("a read past the end of an allocation hits its guard page") {
    const Child c = in_child([] {
      float* d = nullptr;
      if (cudaMalloc(reinterpret_cast<void**>(&d), 1000 * 4) != cudaSuccess) return 10;
      tapeflow_emu::launch(&read_at, "read_at", 1, 1)(d, d, 1100LL);
      cudaDeviceSynchronize();
      return 99;  // not reached
    });
    CHECK(c.faulted());
    CHECK(c.err.find("illegal address: read_at touched byte 4400 of a live 4000-byte allocation") !=
          std::string::npos);
  }
  SECTION("the host reading device memory") {
    const Child c = in_child([] {
      float* d = nullptr;
      if (cudaMalloc(reinterpret_cast<void**>(&d), 64) != cudaSuccess) return 10;
      volatile float x = d[3];
      (void)x;
      return 99;  // not reached
    });
    CHECK(c.faulted());
    CHECK(c.err.find("illegal address: the host") != std::string::npos);
  }
}

TEST_CASE("emu: under ThreadSanitizer, races between blocks and between barriers are reported") {
#if !defined(__SANITIZE_THREAD__)
  SUCCEED("built without ThreadSanitizer (TAPEFLOW_TSAN): nothing to check");
#else
  const auto run = [](bool racy_blocks, bool racy_block) {
    return in_child([=] {
      int* n = nullptr;
      float* f = nullptr;
      if (cudaMalloc(reinterpret_cast<void**>(&n), 4) != cudaSuccess) return 10;
      if (cudaMalloc(reinterpret_cast<void**>(&f), 3 * 64 * 4) != cudaSuccess) return 11;
      if (cudaMemset(n, 0, 4) != cudaSuccess) return 12;
      if (racy_blocks) {
        tapeflow_emu::launch(&blocks_race, "blocks_race", 3, 32)(n);
      } else {
        tapeflow_emu::launch(&blocks_count, "blocks_count", 3, 32)(n);
      }
      tapeflow_emu::launch(&neighbours, "neighbours", 3, 64)(f, !racy_block);
      int h = 0;
      if (cudaMemcpy(&h, n, 4, cudaMemcpyDeviceToHost) != cudaSuccess) return 13;
      if (!racy_blocks && h != 3) return 14;
      return cudaFree(n) == cudaSuccess && cudaFree(f) == cudaSuccess ? 0 : 15;
    });
  };
  SECTION("correct kernels: no report") {
    const Child c = run(false, false);
    CHECK(c.code == 0);
    CHECK(c.err.find("ThreadSanitizer") == std::string::npos);
  }
  SECTION("two blocks writing one word") {
    // (the exit code is not checked: run after the cuBLAS case, whose OpenBLAS has started
    // threads in this process before the fork, the child reports and still exits 0)
    const Child c = run(true, false);
    CHECK(c.err.find("WARNING: ThreadSanitizer: data race") != std::string::npos);
    CHECK(c.err.find("blocks_race") != std::string::npos);
    CHECK(c.err.find("neighbours") == std::string::npos);
    CHECK(c.err.find("of block (1, 0, 0)") != std::string::npos);
  }
  SECTION("a shared read of another thread's write with no barrier between") {
    const Child c = run(false, true);
    CHECK(c.err.find("WARNING: ThreadSanitizer: data race") != std::string::npos);
    CHECK(c.err.find("neighbours") != std::string::npos);
    CHECK(c.err.find("blocks_race") == std::string::npos);
  }
#endif
}
