// The GPU's limits and tapeflow's ops on it, in the machine's units (STYLE.md 10):
//   - the device's copy bandwidth: cudaMemcpyAsync device to device of 256 MiB (cudaEvent timing);
//   - element-wise ops, reductions and softmax through tapeflow's public API on CUDA tensors of
//     16M and 64M float32, in GB/s and % of that copy;
//   - matmul through tapeflow::matmul against cuBLAS called directly on the same buffers
//     (cublasGemmEx, cublasGemmStridedBatchedEx), exact float32, then TF32 on both sides, and
//     float64: TFLOP/s and % of cuBLAS;
//   - argsort and top_k over short and long rows, in GB/s of the least traffic a sort moves;
//   - the cost of a tiny op (launch-bound), in microseconds.
// Every result is checked (against tapeflow on the CPU, or against cuBLAS) before it is timed.
//
//   bench_cuda [--quick | --tiny] [--status] [--tsv FILE]
//
//   --quick   16M elements and matmuls up to 2048 only (a smoke test)
//   --tiny    sizes the CUDA emulator (TAPEFLOW_CUDA=EMU) runs in seconds: every case and check
//             of the full run, on small tensors; its times say nothing about a GPU
//   --status  print the device status line and exit
//
// Without a usable GPU it prints why (tapeflow::cuda::status()) and exits 0.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_util.hpp"
#include "tapeflow/core.hpp"
#include "tapeflow/kernels/cuda.hpp"

using namespace tapeflow;

namespace {

// Every CUDA runtime and cuBLAS call here is checked; a failure throws with the call and file:line.
#define TAPEFLOW_BENCH_CHECK(call) check_status((call), #call, __FILE__, __LINE__)

void check_status(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    throw std::runtime_error(
        fmt::format("{} failed: {} ({}) at {}:{}", call, cudaGetErrorString(e), cudaGetErrorName(e), file, line));
}
void check_status(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(fmt::format("{} failed: {} at {}:{}", call, cublasGetStatusString(s), file, line));
}

const Device kGpu = Device::cuda(0);

// Cases that failed (a wrong result, or an error: an op with no CUDA kernel yet, a failed CUDA
// call). Each is reported in the table and the next case still runs, since a GPU is lent for
// minutes and one failure must not cost the other measurements; main() then exits 1.
int failures = 0;

bool guard(const std::string& name, const std::function<void()>& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    ++failures;
    fmt::print("{:<48} FAILED: {}\n", name, e.what());
    return false;
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per call of fn on the GPU: a warm-up call, then the median of `samples` samples,
// each of `inner` calls between two synchronisations (inner grows until a sample lasts about
// min_sample_s, so that launching and synchronising are amortised over many calls).
double device_seconds(const std::function<void()>& fn, int samples = 10, double min_sample_s = 5e-3) {
  fn();
  cuda::synchronize(kGpu);
  auto start = bench::Clock::now();
  fn();
  cuda::synchronize(kGpu);
  const double first = bench::seconds_since(start);
  const int inner = std::clamp(static_cast<int>(std::ceil(min_sample_s / std::max(first, 1e-9))), 1, 100000);
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    start = bench::Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    cuda::synchronize(kGpu);
    t.push_back(bench::seconds_since(start) / inner);
  }
  return median(t);
}

// The device's copy bandwidth limit: cudaMemcpyAsync device to device on tapeflow's stream,
// each copy timed by a pair of events; median seconds of `reps` after a warm-up.
double copy_seconds(void* dst, const void* src, std::size_t bytes, int reps = 20) {
  auto stream = static_cast<cudaStream_t>(kernels::cuda::stream());
  cudaEvent_t start, stop;
  TAPEFLOW_BENCH_CHECK(cudaEventCreate(&start));
  TAPEFLOW_BENCH_CHECK(cudaEventCreate(&stop));
  TAPEFLOW_BENCH_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    TAPEFLOW_BENCH_CHECK(cudaEventRecord(start, stream));
    TAPEFLOW_BENCH_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
    TAPEFLOW_BENCH_CHECK(cudaEventRecord(stop, stream));
    TAPEFLOW_BENCH_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    TAPEFLOW_BENCH_CHECK(cudaEventElapsedTime(&ms, start, stop));
    t.push_back(ms * 1e-3);
  }
  TAPEFLOW_BENCH_CHECK(cudaEventDestroy(start));
  TAPEFLOW_BENCH_CHECK(cudaEventDestroy(stop));
  return median(t);
}

// One aligned table: case, time per call, rate, and the ratio to the limit it is held against.
void row(const std::string& name, double seconds, double rate, const char* unit, const std::string& vs) {
  fmt::print("{:<48} {:>10} {:>9.1f} {:<8} {}\n", name, bench::human_seconds(seconds), rate, unit, vs);
}

std::string size_label(std::int64_t n) {
  return n >= (std::int64_t(1) << 20) ? fmt::format("{}M", n >> 20) : fmt::format("{}K", n >> 10);
}

// ---------------------------------------------------------------- element-wise and reductions
struct MemCase {
  const char* name;
  const char* key;           // in the --tsv results
  double bytes_per_element;  // bytes read + written per element of x (the minimal traffic)
  std::function<Tensor(const Tensor& x, const Tensor& y, const Tensor& v)> op;  // x, y [rows, 1024], v [1024]
  // against tapeflow on the CPU: |got - ref| <= atol + atol_n * n + rtol * |ref| (a sum over
  // all n values rounds more as n grows)
  double rtol, atol, atol_n;
};

std::vector<MemCase> mem_cases() {
  return {
      {"relu", "relu", 8, [](auto& x, auto&, auto&) { return relu(x); }, 0, 0, 0},
      {"add", "add", 12, [](auto& x, auto& y, auto&) { return x + y; }, 0, 0, 0},
      {"mul by a scalar", "mul_scalar", 8, [](auto& x, auto&, auto&) { return x * 2.0; }, 0, 0, 0},
      {"exp", "exp", 8, [](auto& x, auto&, auto&) { return exp(x); }, 2e-6, 0, 0},
      {"broadcast add [N/1024,1024]+[1024]", "bcast_add", 8, [](auto& x, auto&, auto& v) { return x + v; }, 0, 0, 0},
      {"transposed copy", "transpose_copy", 8, [](auto& x, auto&, auto&) { return x.transpose().contiguous(); }, 0, 0,
       0},
      {"sum over all", "sum_all", 4, [](auto& x, auto&, auto&) { return sum(x); }, 1e-5, 0, 1e-6},
      {"sum over the last axis", "sum_axis1", 4, [](auto& x, auto&, auto&) { return sum(x, {-1}); }, 1e-5, 2e-6 * 1024,
       0},
      {"softmax along the last axis", "softmax", 8, [](auto& x, auto&, auto&) { return softmax(x, -1); }, 1e-4, 1e-9,
       0},
  };
}

void bench_memory(const std::vector<std::int64_t>& sizes, double copy_gbs, const bench::Results& results) {
  Generator gen(0);
  const std::vector<MemCase> cases = mem_cases();
  std::vector<bool> bad(cases.size(), false);
  for (const std::int64_t n : sizes) {
    Tensor x, y, v;
    if (!guard(fmt::format("inputs {}", size_label(n)), [&] {
          x = uniform({n / 1024, 1024}, gen, -1, 1, kFloat32, kGpu);
          y = uniform({n / 1024, 1024}, gen, -1, 1, kFloat32, kGpu);
          v = uniform({1024}, gen, -1, 1, kFloat32, kGpu);
        }))
      continue;
    const bool check = n == sizes.front();  // the same kernels run at every size: checked at the first
    Tensor xc, yc, vc;
    if (check) xc = x.to(Device::cpu()), yc = y.to(Device::cpu()), vc = v.to(Device::cpu());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const MemCase& c = cases[i];
      const std::string name = fmt::format("{} {}", c.name, size_label(n));
      if (check && !guard(name, [&] {
            const auto got = c.op(x, y, v).to_vector<float>(), ref = c.op(xc, yc, vc).to_vector<float>();
            if (got.size() != ref.size())
              throw bench::Mismatch(fmt::format("{} values, the CPU {}", got.size(), ref.size()));
            bench::check_close(name + " on cuda:0", got.data(), ref.data(), static_cast<std::int64_t>(got.size()),
                               c.rtol, c.atol + c.atol_n * static_cast<double>(n), "tapeflow on the CPU");
          }))
        bad[i] = true;
      if (bad[i]) continue;
      guard(name, [&] {
        const double t = device_seconds([&] { c.op(x, y, v); });
        const double gbs = c.bytes_per_element * static_cast<double>(n) / t / 1e9;
        row(name, t, gbs, "GB/s", fmt::format("{:.0f}% of copy", 100 * gbs / copy_gbs));
        results.add(fmt::format("cuda/{}/{}", c.key, size_label(n)), gbs, "GB/s");
      });
    }
    // the full sum's coverage, exactly: n ones sum to n, every partial sum exact in float32 while n <= 2^24
    if (check && n <= (std::int64_t(1) << 24))
      guard(fmt::format("sum over all of {} ones", size_label(n)), [&] {
        const double s1 = sum(ones({n}, kFloat32, kGpu)).item<double>();
        if (s1 != static_cast<double>(n)) throw bench::Mismatch(fmt::format("{} instead of {}", s1, n));
      });
  }
}

// ---------------------------------------------------------------- sort
// argsort (stable; rows past 64 merge-sort, O(len log^2 len)) and top_k along the last axis of
// float32 [rows, len]: short rows as in top-k metrics over classes, long ones as a full sort.
// GB/s counts the least any sort moves, the keys read once and the int64 indices written once
// (12 bytes per element), so its % of the copy is how far from that floor the passes stay.
void bench_sort(bool tiny, double copy_gbs, const bench::Results& results) {
  Generator gen(1);
  struct SortCase {
    std::int64_t rows, len;
  };
  const std::vector<SortCase> cases = tiny ? std::vector<SortCase>{{64, 100}, {2, 1 << 14}}
                                           : std::vector<SortCase>{{8192, 1000}, {16, 1 << 20}};
  for (const SortCase& c : cases) {
    const std::string shape = fmt::format("[{}, {}]", c.rows, c.len);
    Tensor x;
    if (!guard("inputs " + shape, [&] { x = uniform({c.rows, c.len}, gen, -1, 1, kFloat32, kGpu); })) continue;
    const Tensor xc = x.to(Device::cpu());
    const double n = static_cast<double>(c.rows * c.len);
    // the same indices as the CPU's std::stable_sort: the order is stable, so it is unique
    const std::string sort_name = "argsort " + shape;
    if (guard(sort_name, [&] {
          if (argsort(x).to_vector<std::int64_t>() != argsort(xc).to_vector<std::int64_t>())
            throw bench::Mismatch(sort_name + " on cuda:0: indices differ from the CPU's");
        }))
      guard(sort_name, [&] {
        const double t = device_seconds([&] { argsort(x); });
        const double gbs = 12 * n / t / 1e9;
        row(sort_name, t, gbs, "GB/s", fmt::format("{:.0f}% of copy", 100 * gbs / copy_gbs));
        results.add(fmt::format("cuda/argsort/{}x{}", c.rows, c.len), gbs, "GB/s");
      });
    const std::string top_name = "top_k 5 of " + shape;
    if (guard(top_name, [&] {
          if (top_k(x, 5).indices.to_vector<std::int64_t>() != top_k(xc, 5).indices.to_vector<std::int64_t>())
            throw bench::Mismatch(top_name + " on cuda:0: indices differ from the CPU's");
        }))
      guard(top_name, [&] {
        const double t = device_seconds([&] { top_k(x, 5); });
        const double gbs = 12 * n / t / 1e9;
        row(top_name, t, gbs, "GB/s", fmt::format("{:.0f}% of copy", 100 * gbs / copy_gbs));
        results.add(fmt::format("cuda/top_k5/{}x{}", c.rows, c.len), gbs, "GB/s");
      });
  }
}

// ---------------------------------------------------------------- matmul
// cuBLAS called directly on tapeflow's buffers: row-major C [batch, m, n] = A [batch, m, k] @
// B [batch, k, n], which column-major cuBLAS computes as C^T = B^T A^T.
class DirectGemm {
 public:
  DirectGemm() {
    TAPEFLOW_BENCH_CHECK(cublasCreate(&handle_));
    TAPEFLOW_BENCH_CHECK(cublasSetStream(handle_, static_cast<cudaStream_t>(kernels::cuda::stream())));
  }
  ~DirectGemm() { cublasDestroy(handle_); }
  DirectGemm(const DirectGemm&) = delete;
  DirectGemm& operator=(const DirectGemm&) = delete;

  void operator()(const Tensor& c, const Tensor& a, const Tensor& b, bool tf32) const {
    const bool f64 = a.dtype() == kFloat64;
    const std::int64_t batch = a.rank() == 3 ? a.dim(0) : 1, m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
    const cudaDataType_t type = f64 ? CUDA_R_64F : CUDA_R_32F;
    const cublasComputeType_t compute = f64    ? CUBLAS_COMPUTE_64F
                                        : tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                               : CUBLAS_COMPUTE_32F;
    const double one64 = 1, zero64 = 0;
    const float one32 = 1, zero32 = 0;
    const void* alpha = f64 ? static_cast<const void*>(&one64) : static_cast<const void*>(&one32);
    const void* beta = f64 ? static_cast<const void*>(&zero64) : static_cast<const void*>(&zero32);
    const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
    if (batch == 1) {
      TAPEFLOW_BENCH_CHECK(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, alpha, b.device_data_ptr(), type,
                                        ni, a.device_data_ptr(), type, ki, beta, c.device_data_ptr(), type, ni, compute,
                                        CUBLAS_GEMM_DEFAULT));
    } else {
      TAPEFLOW_BENCH_CHECK(cublasGemmStridedBatchedEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, ni, mi, ki, alpha,
                                                      b.device_data_ptr(), type, ni, k * n, a.device_data_ptr(), type,
                                                      ki, m * k, beta, c.device_data_ptr(), type, ni, m * n,
                                                      static_cast<int>(batch), compute, CUBLAS_GEMM_DEFAULT));
    }
  }

 private:
  cublasHandle_t handle_ = nullptr;
};

struct MatmulCase {
  Shape a, b;
  DType dtype;
};

template <class T>
void check_matmul(const std::string& what, const Tensor& got, const Tensor& ref, std::int64_t k, bool tf32,
                  const char* reference) {
  const auto g = got.to_vector<T>(), r = ref.to_vector<T>();
  // TF32 rounds the inputs to 10 mantissa bits: an error ~1e-3 per product, growing as sqrt(k)
  const double atol = std::is_same_v<T, double> ? 1e-12 * static_cast<double>(k)
                      : tf32                    ? 2e-3 * std::sqrt(static_cast<double>(k))
                                                : 2e-6 * static_cast<double>(k);
  bench::check_close(what, g.data(), r.data(), static_cast<std::int64_t>(g.size()), tf32 ? 1e-2 : 1e-4, atol,
                     reference);
}

void bench_matmul(const std::vector<MatmulCase>& cases, bool tf32, const bench::Results& results) {
  cuda::set_allow_tf32(tf32);
  const DirectGemm gemm;
  Generator gen(1);
  bool checked_cpu = false;
  for (const MatmulCase& mc : cases) {
    const std::int64_t batch = mc.a.size() == 3 ? mc.a[0] : 1, m = mc.a.end()[-2], k = mc.a.back(), n = mc.b.back();
    const std::string label = fmt::format("{}{}x{}x{} {}{}", batch > 1 ? fmt::format("[{}] ", batch) : "", m, k, n,
                                          dtype_name(mc.dtype), tf32 ? " tf32" : "");
    guard("matmul " + label, [&] {
      const Tensor a = uniform(mc.a, gen, -1, 1, mc.dtype, kGpu), b = uniform(mc.b, gen, -1, 1, mc.dtype, kGpu);
      const Tensor c = matmul(a, b), direct = empty(c.shape(), mc.dtype, kGpu);
      gemm(direct, a, b, tf32);
      const bool f64 = mc.dtype == kFloat64;
      auto check = [&](const Tensor& got, const Tensor& ref, const std::string& what, const char* reference) {
        if (f64) return check_matmul<double>(what, got, ref, k, tf32, reference);
        check_matmul<float>(what, got, ref, k, tf32, reference);
      };
      if (!checked_cpu) {  // the first case against the CPU (OpenBLAS), every case against cuBLAS
        checked_cpu = true;
        check(c, matmul(a.to(Device::cpu()), b.to(Device::cpu())), "tapeflow matmul " + label, "tapeflow on the CPU");
      }
      check(c, direct, "tapeflow matmul " + label, "cuBLAS called directly");
      const double flops = 2.0 * static_cast<double>(batch * m * n * k);
      const double t_direct = device_seconds([&] { gemm(direct, a, b, tf32); });
      const double t_ours = device_seconds([&] { matmul(a, b); });
      const double ours = flops / t_ours / 1e12, limit = flops / t_direct / 1e12;
      row(fmt::format("matmul {} tapeflow", label), t_ours, ours, "TFLOP/s",
          fmt::format("{:.0f}% of cuBLAS", 100 * ours / limit));
      row(fmt::format("matmul {} cuBLAS", label), t_direct, limit, "TFLOP/s",
          batch > 1 ? "the limit (cublasGemmStridedBatchedEx)" : "the limit (cublasGemmEx)");
      const std::string key = fmt::format("cuda/matmul/{}{}x{}x{}/{}{}", batch > 1 ? fmt::format("{}x", batch) : "", m,
                                          k, n, dtype_name(mc.dtype), tf32 ? "_tf32" : "");
      results.add(key + "/tapeflow", ours, "TFLOP/s");
      results.add(key + "/cublas", limit, "TFLOP/s");
    });
  }
  cuda::set_allow_tf32(false);
}

// ---------------------------------------------------------------- index modes
// gather_nd and unsorted_segment_sum of float32 [rows, 64] with IndexMode::Raise (the indices
// copied to the host, checked and turned into rows there: a wait for the device every call)
// against Fill (the rows computed on the device, nothing waits): what a training loop saves by
// passing a mode. GB/s counts the rows read and written once plus the indices.
void bench_index_modes(bool tiny, double copy_gbs, const bench::Results& results) {
  const std::int64_t rows = tiny ? 1 << 12 : 1 << 18, f = 64, segments = 1024;
  Generator gen(2);
  Tensor params, idx, ids;
  if (!guard("index mode inputs", [&] {
        params = uniform({rows, f}, gen, -1, 1, kFloat32, kGpu);
        idx = (arange(rows, kInt64, kGpu) * 7919 % rows).reshape({rows, 1});
        ids = arange(rows, kInt64, kGpu) * 7919 % segments;
      }))
    return;
  struct Case {
    const char* name;
    const char* key;
    std::function<Tensor(IndexMode)> fn;
    double bytes;
  };
  const double n = static_cast<double>(rows);
  const std::vector<Case> cases = {
      {"gather_nd [rows, 1] of [rows, 64]", "gather_nd", [&](IndexMode m) { return gather_nd(params, idx, 0, m); },
       n * (2 * 4 * f + 8)},
      {"unsorted_segment_sum [rows, 64], 1024 segs", "segment_sum",
       [&](IndexMode m) { return unsorted_segment_sum(params, ids, segments, m); }, n * (4 * f + 8)},
  };
  for (const Case& c : cases) {
    for (IndexMode m : {IndexMode::Raise, IndexMode::Fill}) {
      const std::string name = fmt::format("{}, {}", c.name, m == IndexMode::Raise ? "raise" : "fill");
      if (!guard(name, [&] {
            const Tensor got = c.fn(m).to(Device::cpu());
            const Tensor want = c.fn(IndexMode::Raise).to(Device::cpu());
            if (!reduce_all(abs(got - want) <= 1e-4 + 1e-5 * abs(want)).item<bool>())
              throw bench::Mismatch(name + ": differs from raise mode");
          }))
        continue;
      guard(name, [&] {
        const double t = device_seconds([&] { c.fn(m); });
        const double gbs = c.bytes / t / 1e9;
        row(name, t, gbs, "GB/s", fmt::format("{:.0f}% of copy", 100 * gbs / copy_gbs));
        results.add(fmt::format("cuda/index_mode/{}/{}", c.key, m == IndexMode::Raise ? "raise" : "fill"), gbs,
                    "GB/s");
      });
    }
  }
}

// ---------------------------------------------------------------- per-op overhead
void bench_overhead(const bench::Results& results) {
  guard("add [4]", [&] {
    const Tensor a = ones({4}, kFloat32, kGpu), b = ones({4}, kFloat32, kGpu);
    if (add(a, b).to_vector<float>() != std::vector<float>(4, 2.0f)) throw bench::Mismatch("add [4] on cuda:0: not 2");
    Tensor scratch = empty({4}, kFloat32, kGpu);
    auto stream = static_cast<cudaStream_t>(kernels::cuda::stream());
    const double t_floor = device_seconds(
        [&] { TAPEFLOW_BENCH_CHECK(cudaMemsetAsync(scratch.device_data_ptr(), 0, 16, stream)); }, 10, 20e-3);
    const double t_add = device_seconds([&] { add(a, b); }, 10, 20e-3);
    const double t_sync = device_seconds(
        [&] {
          add(a, b);
          cuda::synchronize(kGpu);
        },
        10, 20e-3);
    row("cudaMemsetAsync 16 B (driver floor)", t_floor, t_floor * 1e6, "us/op", "the limit");
    row("add [4], queued", t_add, t_add * 1e6, "us/op", fmt::format("{:.1f}x the floor", t_add / t_floor));
    row("add [4] + synchronize (round trip)", t_sync, t_sync * 1e6, "us/op", "");
    results.add("cuda/overhead/floor", t_floor * 1e6, "us");
    results.add("cuda/overhead/add", t_add * 1e6, "us");
    results.add("cuda/overhead/add_sync", t_sync * 1e6, "us");
  });
}

}  // namespace

int main(int argc, char** argv) {
  const std::string status = cuda::status();
  if (bench::has_flag(argc, argv, "--status")) return fmt::print("{}\n", status), 0;
  fmt::print("{}\n", status);
  if (!cuda::is_available()) {
    fmt::print("bench_cuda: no usable GPU, nothing to measure\n");
    return 0;
  }
  const bool tiny = bench::has_flag(argc, argv, "--tiny");
  const bool quick = tiny || bench::has_flag(argc, argv, "--quick");
  const bench::Results results(bench::tsv_arg(argc, argv));
  try {
    kernels::cuda::set_device(0);
    // (a) the limit: a device-to-device copy of 256 MiB, bytes read + written
    const std::int64_t copy_n = tiny ? std::int64_t(1) << 20 : std::int64_t(64) << 20;  // float32: 256 MiB
    Tensor src = ones({copy_n}, kFloat32, kGpu), dst = empty({copy_n}, kFloat32, kGpu);
    const std::size_t copy_bytes = src.nbytes();
    const double t_copy = copy_seconds(dst.device_data_ptr(), src.device_data_ptr(), copy_bytes);
    if (dst.to_vector<float>() != src.to_vector<float>())
      throw bench::Mismatch("cudaMemcpyAsync: dst differs from src");
    const double copy_gbs = 2.0 * static_cast<double>(copy_bytes) / t_copy / 1e9;

    fmt::print(
        "median of 10 samples after a warm-up, each sample many calls between two synchronisations;\n"
        "GB/s = minimal bytes read + written / time; TFLOP/s = 2mnk / time; results checked first\n\n");
    fmt::print("{:<48} {:>10} {:>9} {:<8} {}\n", "case", "time", "rate", "unit", "vs limit");
    row(fmt::format("cudaMemcpyAsync D2D {} MiB", copy_bytes >> 20), t_copy, copy_gbs, "GB/s", "the limit");
    results.add("cuda/copy", copy_gbs, "GB/s");

    // (b) memory-bound ops through the public API
    std::vector<std::int64_t> sizes{tiny ? std::int64_t(1) << 18 : std::int64_t(16) << 20};
    if (!quick) sizes.push_back(std::int64_t(64) << 20);
    bench_memory(sizes, copy_gbs, results);

    // (c) matmul against cuBLAS on the same buffers, exact float32, then TF32 on both sides
    std::vector<MatmulCase> f32;
    for (const std::int64_t s : {1024, 2048, 4096, 8192}) {
      const std::int64_t d = tiny ? s / 8 : s;
      if (!quick || s <= 2048) f32.push_back({{d, d}, {d, d}, kFloat32});
    }
    const std::int64_t bs = tiny ? 64 : 512;
    f32.push_back({{64, bs, bs}, {64, bs, bs}, kFloat32});
    bench_matmul(f32, false, results);
    bench_matmul(f32, true, results);
    const std::int64_t s64 = tiny ? 128 : quick ? 1024 : 4096;
    bench_matmul({{{s64, s64}, {s64, s64}, kFloat64}}, false, results);

    // (d) sorting
    bench_sort(tiny, copy_gbs, results);

    // (e) index ops with and without a host read of their indices
    bench_index_modes(tiny, copy_gbs, results);

    // (f) per-op overhead
    bench_overhead(results);
    if (failures) return fmt::print(stderr, "bench_cuda: {} case(s) failed (see the table)\n", failures), 1;
  } catch (const std::exception& e) {  // a wrong copy, tapeflow::Error, CudaError, a failed CUDA call
    fmt::print(stderr, "bench_cuda: {}\n", e.what());
    return 1;
  }
  return 0;
}
