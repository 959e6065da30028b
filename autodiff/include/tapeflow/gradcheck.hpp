#pragma once
/// Finite-difference checks of gradients, for tapeflow's ops and users' own.
#include <functional>
#include <string>
#include <vector>

#include "tapeflow/tensor.hpp"

namespace tapeflow {

struct GradcheckOptions {
  double eps = 1e-6;   ///< central-difference step
  double atol = 1e-5;  ///< |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-4;
  std::uint64_t seed = 0;  ///< seeds the random output weighting
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  ///< the first mismatch: input, element, analytic and numeric values
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

/// Compares the tape's gradient of sum(fn(inputs) * w) (w random, fixed) with float64 central
/// differences, for every element of every floating input. Inputs are converted to float64
/// and may live on any device (the differences are then taken there).
GradcheckResult gradcheck(const TensorFunction& fn, const std::vector<Tensor>& inputs, GradcheckOptions options = {});

/// gradcheck of the gradient itself: checks second derivatives through nested tapes.
GradcheckResult gradgradcheck(const TensorFunction& fn, const std::vector<Tensor>& inputs,
                              GradcheckOptions options = {});

}  // namespace tapeflow
