#pragma once
// Small helpers the layer-level tests share: the devices to run each case on, values read back
// as doubles, deterministic irregular inputs, and the finite-difference check of a layer's
// float32 weights.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "tapeflow/core.hpp"
#include "tapeflow/gradient_tape.hpp"
#include "tapeflow/variable.hpp"

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

// The worst error of the tape's gradients of `loss` (a scalar, float64 where the layer runs on
// float64 inputs) with respect to float32 `weights`, against central differences: each element
// moved by +-h, the difference divided by the step the float32 weight really took. The error is
// |analytic - numeric| / (1e-4 + |numeric|); `worst_at` names the element where it is largest.
inline double weights_gradcheck_error(const std::function<Tensor()>& loss, const std::vector<Variable>& weights,
                                      std::string* worst_at = nullptr, double h = 1e-3) {
  std::vector<Tensor> grads;
  {
    GradientTape tape;
    const Tensor l = loss();
    grads = tape.gradient(l, std::vector<Tensor>(weights.begin(), weights.end()));
  }
  double worst = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!grads[i].defined()) {
      if (worst_at) *worst_at = weights[i].name() + ": no gradient";
      return std::numeric_limits<double>::infinity();
    }
    const std::vector<double> analytic = dvals(grads[i]);
    Variable w = weights[i];
    const Tensor saved = w.clone();
    // the loss with element j of w at x0 + step, and the value the weight really took
    const auto moved = [&](std::int64_t j, double step, double& at) {
      Tensor flat = saved.clone().reshape({-1});
      flat(Slice(j, j + 1)).assign(tensor({saved.reshape({-1})[j].item<double>() + step}).astype(w.dtype()));
      w.assign(flat.reshape(w.shape()));
      at = w.reshape({-1})[j].item<double>();
      return loss().item<double>();
    };
    for (std::int64_t j = 0; j < w.size(); ++j) {
      double x_up = 0, x_down = 0;
      const double up = moved(j, h, x_up), down = moved(j, -h, x_down);
      w.assign(saved);
      const double numeric = (up - down) / (x_up - x_down), a = analytic[static_cast<std::size_t>(j)];
      const double err = std::abs(a - numeric) / (1e-4 + std::abs(numeric));
      if (err >= worst) {
        worst = err;
        if (worst_at) {
          std::ostringstream os;
          os << weights[i].name() << "[" << j << "]: analytic " << a << ", numeric " << numeric;
          *worst_at = os.str();
        }
      }
    }
  }
  return worst;
}

}  // namespace lt
