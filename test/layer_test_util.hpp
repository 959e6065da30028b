#pragma once
// Small helpers the layer-level tests share: the devices to run each case on, values read back
// as doubles, and deterministic irregular inputs.
#include <cmath>
#include <cstdint>
#include <vector>

#include "tapeflow/core.hpp"

namespace lt {

using namespace tapeflow;

inline std::vector<double> dvals(const Tensor& t) { return t.astype(kFloat64).to_vector<double>(); }

// The CPU, then the first CUDA device where there is one (the emulator's in CI).
inline std::vector<Device> devices() {
  std::vector<Device> d = {Device::cpu()};
  if (cuda::is_available()) d.push_back(Device::cuda(0));
  return d;
}

// Distinct, irregular values in [lo, hi).
inline Tensor irregular(const Shape& shape, double lo = -2.0, double hi = 2.0, DType dtype = kFloat32) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    v[static_cast<std::size_t>(i)] = lo + (hi - lo) * std::fmod(0.618034 * double(i + 1) * double(i + 3), 1.0);
  }
  return tensor(v, shape, kFloat64).astype(dtype);
}

}  // namespace lt
