// Keras's activations as composites of primitives (ops.def): each is differentiable (twice)
// through the rules of its parts, and runs on every device. Where a branch that where() drops
// could overflow, its input is clamped first: the dropped branch's gradient is multiplied by 0,
// and 0 * inf would be NaN.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "internal.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

// x itself when floating, float32 for integers (as exp); bool is a DTypeError naming `op`.
Tensor floating_input(const Tensor& x, const char* op) {
  detail::check_defined(x, op);
  if (x.dtype() == kBool) {
    throw DTypeError(fmt::format("{}: bool tensors are not supported (shape {})", op, shape_str(x.shape())));
  }
  return is_floating(x.dtype()) ? x : x.astype(kFloat32);
}

}  // namespace

Tensor elu(const Tensor& x_in, double alpha) {
  const Tensor x = floating_input(x_in, "elu");
  return where(x > 0.0, x, expm1(minimum(x, 0.0)) * alpha);
}

Tensor selu(const Tensor& x_in) {
  constexpr double kAlpha = 1.6732632423543772848170429916717;
  constexpr double kScale = 1.0507009873554804934193349852946;
  const Tensor x = floating_input(x_in, "selu");
  return where(x > 0.0, x * kScale, expm1(minimum(x, 0.0)) * (kAlpha * kScale));
}

Tensor gelu(const Tensor& x_in, bool approximate) {
  const Tensor x = floating_input(x_in, "gelu");
  if (approximate) {
    constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
    // tanh has rounded to +-1 (float64 too) well before |x| = 10; clamped there, x^3 cannot
    // overflow into a NaN gradient (|x| > 1.8e19 in float32)
    const Tensor c = clip(x, -10.0, 10.0);
    return x * 0.5 * (tanh((c + c * c * c * 0.044715) * kSqrt2OverPi) + 1.0);
  }
  return x * 0.5 * (erf(x * 0.7071067811865476) + 1.0);  // 1 / sqrt(2)
}

Tensor silu(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "silu");
  return x * sigmoid(x);
}

Tensor leaky_relu(const Tensor& x_in, double negative_slope) {
  const Tensor x = floating_input(x_in, "leaky_relu");
  return where(x > 0.0, x, x * negative_slope);
}

Tensor softplus(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "softplus");
  // above t the result is x (TensorFlow's threshold, -(log(epsilon) + 2): 13.9 for float32,
  // where log1p(exp(x)) - x = exp(-x) is within about 2 ulps of x, and 34.0 for float64, where
  // it is below half an ulp)
  const double eps = x.dtype() == kFloat64 ? std::numeric_limits<double>::epsilon()
                                           : static_cast<double>(std::numeric_limits<float>::epsilon());
  const double t = -(std::log(eps) + 2.0);
  return where(x > t, x, log1p(exp(minimum(x, t))));
}

Tensor softsign(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "softsign");
  // x / (1 + |x|) differentiates to 1 / (1 + |x|) - |x| / (1 + |x|)^2, which cancels for large
  // |x| (1e7: 29% off); sign(x) (1 - 1 / (1 + |x|)) differentiates to exactly 1 / (1 + |x|)^2
  // but loses the value's precision near 0, so each form where it is exact
  const Tensor a = abs(x);
  const Tensor small = clip(x, -1.0, 1.0);  // keeps the unused branch finite for x = +-inf
  return where(a < 1.0, small / (abs(small) + 1.0), sign(x) * (1.0 - 1.0 / (a + 1.0)));
}

Tensor relu6(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "relu6");
  return minimum(6.0, relu(x));  // a tie at 6 goes to the constant: gradient 0 there, as TensorFlow's
}

Tensor hard_sigmoid(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "hard_sigmoid");
  return relu6(x + 3.0) / 6.0;
}

Tensor hard_silu(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "hard_silu");
  return x * hard_sigmoid(x);
}

Tensor mish(const Tensor& x_in) {
  const Tensor x = floating_input(x_in, "mish");
  return x * tanh(softplus(x));
}

}  // namespace tapeflow
