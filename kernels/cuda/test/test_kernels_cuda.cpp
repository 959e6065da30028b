// kernels/cuda against the CPU. Runs everywhere: without a usable device it checks that the
// queries report the reason and that calls throw CudaError with file:line.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tapeflow/kernels/cuda.hpp"

namespace cuda = tapeflow::kernels::cuda;

namespace {

// Owns a device buffer of n floats.
struct DeviceBuffer {
  explicit DeviceBuffer(std::int64_t n)
      : ptr(static_cast<float*>(cuda::device_alloc(static_cast<std::size_t>(n) * sizeof(float)))) {}
  ~DeviceBuffer() { cuda::device_free(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* ptr;
};

}  // namespace

TEST_CASE("cuda: device queries never throw and agree") {
  const int count = cuda::device_count();
  const std::string status = cuda::device_status();
  WARN(status);
  CHECK(count >= 0);
  if (count == 0) {
    CHECK(status.rfind("no CUDA device: ", 0) == 0);
  } else {
    CHECK(status.rfind("CUDA device 0 of ", 0) == 0);
  }
}

TEST_CASE("cuda: a failed call throws CudaError naming the call and file:line") {
  float host = 0;
  // A null source is invalid with a device; without one, the missing driver is the error.
  try {
    cuda::copy_to_host(&host, nullptr, sizeof(float));
    FAIL("copy_to_host from nullptr did not throw");
  } catch (const cuda::CudaError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("cudaMemcpy(") != std::string::npos);
    CHECK(what.find("kernels/cuda/src/device.cpp:") != std::string::npos);
    CHECK(e.code() != 0);
  }
}

TEST_CASE("cuda: add_f32 matches the CPU") {
  if (cuda::device_count() == 0) {
    WARN("skipped, " << cuda::device_status());
    return;
  }
  // Not a multiple of the block size; large enough for the grid-stride loop to wrap.
  for (const std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1000},
                               std::int64_t{(1 << 24) + 3}}) {
    std::vector<float> a(static_cast<std::size_t>(n)), b(a.size()), out(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = 0.5f * static_cast<float>(i % 1000);
      b[i] = -0.25f * static_cast<float>(i % 777);
    }
    DeviceBuffer da(n), db(n), dout(n);
    cuda::copy_to_device(da.ptr, a.data(), a.size() * sizeof(float));
    cuda::copy_to_device(db.ptr, b.data(), b.size() * sizeof(float));
    cuda::add_f32(dout.ptr, da.ptr, db.ptr, n);
    // In place: a += b.
    cuda::add_f32(da.ptr, da.ptr, db.ptr, n);
    cuda::synchronize();
    cuda::copy_to_host(out.data(), dout.ptr, out.size() * sizeof(float));
    std::vector<float> in_place(a.size());
    cuda::copy_to_host(in_place.data(), da.ptr, in_place.size() * sizeof(float));
    for (std::size_t i = 0; i < a.size(); ++i) {
      // a[i] + b[i] is exact in float32 for these values.
      if (out[i] != a[i] + b[i] || in_place[i] != a[i] + b[i]) {
        FAIL("n=" << n << " i=" << i << ": " << out[i] << ", " << in_place[i] << " vs " << a[i] + b[i]);
      }
    }
  }
}
