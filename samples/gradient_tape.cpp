// The GradientTape section of "Deep Learning with Python" (chapter 3, "Introduction to Keras
// and TensorFlow"), with tapeflow in place of TensorFlow:
//   y = 2x + 3 with a watched constant and with a Variable, the second derivative of a
//   position with nested tapes (speed and acceleration), a jacobian, and a custom op with
//   its own gradient (tf.custom_gradient).
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "tapeflow/autodiff.hpp"

using namespace tapeflow;

namespace {

void section(const char* title) { fmt::print("\n=== {}\n", title); }

// log(1 + exp(x)) with the gradient sigmoid(x), stable for large x where the forward's own
// ops would give exp(x) / (1 + exp(x)) = inf / inf. (tapeflow::softplus is the built-in one.)
Tensor my_softplus(const Tensor& x) {
  return custom_op(
      "softplus", {x},
      [](const std::vector<Tensor>& in) {
        const Tensor& v = in[0];
        // max(v, 0) + log(1 + exp(-|v|)): never overflows
        return relu(v) + log(exp(-abs(v)) + 1.0);
      },
      [](const std::vector<Tensor>& in, const Tensor&, const Tensor& grad) {
        return std::vector<Tensor>{grad * sigmoid(in[0])};
      });
}

}  // namespace

int main() {
  section("y = 2x + 3, x a constant the tape is told to watch (tape.watch(input_const))");
  {
    const Tensor x = scalar(3.0);
    GradientTape tape;
    tape.watch(x);
    const Tensor y = 2.0 * x + 3.0;
    const Tensor grad = tape.gradient(y, x);
    fmt::print("x = {}, y = {}, dy/dx = {}\n", x.item<float>(), y.item<float>(), grad.item<float>());
  }

  section("y = 2x + 3, x a Variable (watched automatically)");
  {
    Variable x(scalar(3.0), "x");
    GradientTape tape;
    const Tensor y = 2.0 * x + 3.0;
    const Tensor grad = tape.gradient(y, x);
    fmt::print("x = {}, y = {}, dy/dx = {}\n", x.item<float>(), y.item<float>(), grad.item<float>());
    fmt::print("the tape watched {} variable(s): \"{}\"\n", tape.watched_variables().size(),
               tape.watched_variables().at(0).name());
    // a gradient step, as an optimizer would take it
    x.assign_sub(grad * 0.1);
    fmt::print("after x -= 0.1 * dy/dx: x = {}\n", x.item<float>());
  }

  section("Nested tapes: position = 4.9 t^2 (the book), speed and acceleration");
  for (double t : {0.0, 1.0, 2.0}) {
    Variable time(scalar(t), "time");
    GradientTape outer_tape;
    Tensor speed;
    Tensor position;
    {
      GradientTape inner_tape;
      position = 4.9 * pow(time, 2.0);
      speed = inner_tape.gradient(position, time);
    }
    const Tensor acceleration = outer_tape.gradient(speed, time);
    fmt::print("time = {}: position = {:6.2f}, speed = {:6.2f}, acceleration = {:5.2f}\n", t,
               position.item<float>(), speed.item<float>(), acceleration.item<float>());
  }

  section("Nested tapes: position = time^3, speed = 3 time^2, acceleration = 6 time");
  for (double t : {0.0, 1.0, 2.0, 3.0}) {
    Variable time(scalar(t), "time");
    GradientTape outer_tape;
    Tensor speed, position;
    {
      GradientTape inner_tape;
      position = time * time * time;
      speed = inner_tape.gradient(position, time);
    }
    const Tensor acceleration = outer_tape.gradient(speed, time);
    fmt::print("time = {}: position = {:5.1f}, speed = {:5.1f}, acceleration = {:5.1f}\n", t, position.item<float>(),
               speed.item<float>(), acceleration.item<float>());
  }

  section("A jacobian: y = x @ W, x [1, 3], W [3, 2] -> dy/dx [1, 2, 1, 3]");
  {
    const Tensor x = tensor({1.f, 2.f, 3.f}, {1, 3});
    const Tensor W = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {3, 2});
    GradientTape tape(true);
    tape.watch(x);
    const Tensor y = matmul(x, W);
    fmt::print("y = {}\n", to_string(y));
    const Tensor j = tape.jacobian(y, x);
    fmt::print("jacobian(y, x) = {}\n", to_string(j));
    fmt::print("(row j of it is column j of W, as dy_j/dx_k = W[k, j])\n");
    const Tensor sq = x * x;
    fmt::print("batch_jacobian(x * x, x) = {}\n", to_string(tape.batch_jacobian(sq, x)));
  }

  section("A custom op with its own gradient: softplus(x) = log(1 + exp(x)), gradient sigmoid(x)");
  {
    const Tensor x = tensor({-100.f, -1.f, 0.f, 1.f, 100.f});
    GradientTape tape(true);
    tape.watch(x);
    const Tensor y = my_softplus(x);
    fmt::print("x              = {}\n", to_string(x));
    fmt::print("softplus(x)    = {}\n", to_string(y));
    fmt::print("d softplus/dx  = {}\n", to_string(tape.gradient(y, x)));
    // the same function written with plain ops overflows at x = 100: exp(100) is inf in float32
    const Tensor naive = log(exp(x) + 1.0);
    fmt::print("naive log(1 + exp(x)) = {}\n", to_string(naive));
    fmt::print("its gradient          = {}\n", to_string(tape.gradient(naive, x)));
    fmt::print("recorded ops: ");
    for (const auto& op : tape.recorded_ops()) fmt::print("{} ", op.name);
    fmt::print("\n");
    const Tensor builtin = tapeflow::softplus(x);  // the library's: plain ops, the overflow clamped
    fmt::print("built-in softplus(x) = {}, its gradient {}\n", to_string(builtin), to_string(tape.gradient(builtin, x)));
  }
  return 0;
}
