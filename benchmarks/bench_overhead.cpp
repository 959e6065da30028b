// Eager overhead on tiny tensors (shape [4] float32), for a chain of 100 ops (x = tanh(x * 0.9),
// 50 times): microseconds per op with no tape, with a recording tape, and per recorded op of
// gradient() alone (issue 3's benchmark). The peers run the same chain.
//
// Output: Markdown on stdout; with --tsv FILE, key/value lines for the peer comparison.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "bench_util.hpp"
#include "tapeflow/autodiff.hpp"
#include "tapeflow/core.hpp"

using namespace tapeflow;

namespace {
constexpr int kChain = 100;

Tensor chain(const Tensor& x0) {
  Tensor x = x0;
  for (int i = 0; i < kChain / 2; ++i) x = tanh(x * 0.9);  // 2 ops per step
  return x;
}

// Median over `samples` of the mean per-op seconds of `reps` calls of fn.
template <class F>
double per_op_us(F&& fn, int reps = 100, int samples = 9) {
  return bench::median_seconds([&] {
           for (int r = 0; r < reps; ++r) fn();
         }, samples, 2) / (reps * kChain) * 1e6;
}
}  // namespace

int main(int argc, char** argv) try {
  const bench::Results results(bench::tsv_arg(argc, argv));
  const Tensor x0 = tensor<float>({0.1f, 0.2f, 0.3f, 0.4f}, {4});

  // check: the chain and its gradient against the same arithmetic in double
  {
    GradientTape tape;
    tape.watch(x0);
    const Tensor y = chain(x0);
    const Tensor g = tape.gradient(y, x0);
    const std::vector<float> xs = x0.to_vector<float>(), ys = y.to_vector<float>(), gs = g.to_vector<float>();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      double v = xs[i], d = 1;
      for (int s = 0; s < kChain / 2; ++s) {
        v = std::tanh(v * 0.9);
        d *= 0.9 * (1 - v * v);
      }
      bench::check_close("chain", &ys[i], std::vector<float>{static_cast<float>(v)}.data(), 1, 1e-5, 1e-7);
      bench::check_close("gradient of chain", &gs[i], std::vector<float>{static_cast<float>(d)}.data(), 1, 1e-3,
                         1e-12);
    }
  }

  const double plain = per_op_us([&] { chain(x0); });
  const double taped = per_op_us([&] {
    GradientTape tape;
    tape.watch(x0);
    chain(x0);
  });
  // gradient() alone: record untimed, time only the backward pass
  std::vector<double> grad_samples;
  for (int s = 0; s < 11; ++s) {
    double total = 0;
    const int reps = 100;
    for (int r = 0; r < reps; ++r) {
      GradientTape tape;
      tape.watch(x0);
      const Tensor y = chain(x0);
      const auto start = bench::Clock::now();
      const Tensor g = tape.gradient(y, x0);
      total += bench::seconds_since(start);
    }
    if (s >= 2) grad_samples.push_back(total / (reps * kChain) * 1e6);  // the first two warm up
  }
  std::sort(grad_samples.begin(), grad_samples.end());
  const double backward = grad_samples[grad_samples.size() / 2];

  fmt::print("## Eager overhead on tiny tensors\n\n");
  fmt::print("A chain of {} ops on a [4] float32 tensor (`x = tanh(x * 0.9)`, 50 times; the scalar 0.9 "
             "is a weak rank-0 tensor, as a Python scalar in PyTorch). Median of 9 samples of 100 chains; "
             "the result and its gradient checked against double arithmetic first.\n\n",
             kChain);
  fmt::print("| mode | us per op |\n|---|---:|\n");
  fmt::print("| no tape | {:.3f} |\n| recording tape (tape.watch(x)) | {:.3f} |\n"
             "| gradient(), per recorded op (backward alone) | {:.3f} |\n",
             plain, taped, backward);
  results.add("overhead/no_tape", plain, "us");
  results.add("overhead/tape", taped, "us");
  results.add("overhead/gradient", backward, "us");
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_overhead: error: {}\n", e.what());
  return 1;
}
