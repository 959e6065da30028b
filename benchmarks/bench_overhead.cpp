// Eager overhead on tiny tensors (shape [4]), for a chain of 100 ops: microseconds per op
// with no tape, with a recording tape, and per op of gradient() (issue 3's benchmark).
#include <fmt/format.h>

#include "bench_util.hpp"
#include "tapeflow/autodiff.hpp"

using namespace tapeflow;

namespace {
constexpr int kChain = 100;

Tensor chain(const Tensor& x0) {
  Tensor x = x0;
  for (int i = 0; i < kChain / 2; ++i) x = tanh(x * 0.9);  // 2 ops per step
  return x;
}
}  // namespace

int main() {
  Tensor x0 = tensor<float>({0.1f, 0.2f, 0.3f, 0.4f}, {4});
  const int reps = 200;
  auto per_op_us = [&](auto&& fn) {
    return bench::median_seconds([&] {
             for (int r = 0; r < reps; ++r) fn();
           }, 9, 2) / (reps * kChain) * 1e6;
  };
  const double plain = per_op_us([&] { chain(x0); });
  const double taped = per_op_us([&] {
    GradientTape tape;
    tape.watch(x0);
    chain(x0);
  });
  const double with_grad = per_op_us([&] {
    GradientTape tape;
    tape.watch(x0);
    Tensor y = chain(x0);
    tape.gradient(y, x0);
  });
  fmt::print("chain of {} ops on [4] float32, median of 9 runs of {} chains\n", kChain, reps);
  fmt::print("no tape:         {:.3f} us/op\n", plain);
  fmt::print("recording tape:  {:.3f} us/op\n", taped);
  fmt::print("gradient():      {:.3f} us/op (backward only: total with tape minus recording)\n", with_grad - taped);
  return 0;
}
