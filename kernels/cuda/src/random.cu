// Counter-based random numbers: element i is uniform_at / normal_at (functors.hpp) of
// (seed, offset + i), the same function the CPU kernels call. This file is compiled with
// -fmad=false (CMakeLists.txt): a fused multiply-add would round low + (high - low) * u
// differently from the host, and the same seed must give the same bits on every device.
#include "common.cuh"

namespace tapeflow::kernels::cuda {
namespace {

using detail::i64;

// Element i is uniform_at (kNormal false: a, b = low, high) or normal_at (a, b = mean,
// stddev) of counter offset + i.
template <bool kNormal, class T>
__global__ void random_kernel(T* out, i64 n, std::uint64_t seed, std::uint64_t offset, double a, double b) {
  for (i64 i = detail::first_item(); i < n; i += detail::item_stride()) {
    const std::uint64_t counter = offset + static_cast<std::uint64_t>(i);
    out[i] = kNormal ? normal_at<T>(seed, counter, a, b) : uniform_at<T>(seed, counter, a, b);
  }
}

template <bool kNormal, class T>
void launch_random(T* out, i64 n, std::uint64_t seed, std::uint64_t offset, double a, double b) {
  if (n <= 0) return;
  random_kernel<kNormal, T><<<detail::grid_for(n), detail::kBlock, 0, detail::current_stream()>>>(out, n, seed, offset,
                                                                                                 a, b);
  TAPEFLOW_CUDA_LAUNCHED();
}

}  // namespace

template <class T>
void uniform(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double low, double high) {
  launch_random<false>(out, n, seed, offset, low, high);
}

template <class T>
void normal(T* out, std::int64_t n, std::uint64_t seed, std::uint64_t offset, double mean, double stddev) {
  launch_random<true>(out, n, seed, offset, mean, stddev);
}

template void uniform<float>(float*, std::int64_t, std::uint64_t, std::uint64_t, double, double);
template void uniform<double>(double*, std::int64_t, std::uint64_t, std::uint64_t, double, double);
template void normal<float>(float*, std::int64_t, std::uint64_t, std::uint64_t, double, double);
template void normal<double>(double*, std::int64_t, std::uint64_t, std::uint64_t, double, double);

}  // namespace tapeflow::kernels::cuda
