// Eager overhead on tiny tensors (shape [4] float32), for a chain of 100 ops (x = tanh(x * 0.9),
// 50 times): microseconds per op with no tape, with a recording tape, and per recorded op of
// gradient() alone (issue 3's benchmark). The peers run the same chain.
// `bench_overhead slices`: the backward of a loop over time steps, sum over t of tanh(x(all, t))
// for x [64, 200, 128] float32 (each step's slice gradient joins x's gradient).
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

// The slices mode: record untimed, time gradient() alone; median of 9 after 2 warm-ups.
int slices_mode(const bench::Results& results) {
  constexpr std::int64_t kBatch = 64, kSteps = 200, kFeatures = 128;
  Generator gen(7);
  const Tensor x = normal({kBatch, kSteps, kFeatures}, gen);
  auto backward = [&] {
    GradientTape tape;
    tape.watch(x);
    Tensor acc = tanh(x(all, 0));
    for (std::int64_t t = 1; t < kSteps; ++t) acc = acc + tanh(x(all, t));
    const Tensor loss = sum(acc);
    const auto start = bench::Clock::now();
    const Tensor g = tape.gradient(loss, x);
    return std::make_pair(bench::seconds_since(start), g);
  };
  {  // check: d/dx tanh(x) = 1 - tanh(x)^2, element by element
    const Tensor g = backward().second;
    const Tensor ref = 1.0 - square(tanh(x));
    const std::vector<float> gs = g.to_vector<float>(), rs = ref.to_vector<float>();
    bench::check_close("gradient of the slice loop", gs.data(), rs.data(), static_cast<std::int64_t>(gs.size()),
                       1e-5, 1e-6, "1 - tanh(x)^2");
  }
  std::vector<double> t;
  for (int s = 0; s < 11; ++s) {
    const double seconds = backward().first;
    if (s >= 2) t.push_back(seconds);
  }
  std::sort(t.begin(), t.end());
  const double ms = t[t.size() / 2] * 1e3;
  const double grad_mb = static_cast<double>(kBatch * kSteps * kFeatures) * 4 / 1e6;
  fmt::print("## Backward of a loop over slices\n\n");
  fmt::print("x [{}, {}, {}] float32 (a {:.1f} MB gradient), loss = sum over t of tanh(x(all, t)); gradient() "
             "alone, median of 9 after 2 warm-ups.\n\n",
             kBatch, kSteps, kFeatures, grad_mb);
  fmt::print("| mode | ms per gradient() |\n|---|---:|\n| {} slices x(all, t) | {:.2f} |\n", kSteps, ms);
  results.add("overhead/slice_loop_backward", ms, "ms");
  return 0;
}
}  // namespace

int main(int argc, char** argv) try {
  const bench::Results results(bench::tsv_arg(argc, argv));
  if (bench::has_flag(argc, argv, "slices")) return slices_mode(results);
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
