// Training throughput on Fashion-MNIST (Debian's dataset-fashion-mnist, read by load_mnist):
// examples per second and seconds per epoch of model.fit, and the process's peak memory.
//
//   bench_training mlp [--threads N] [--epochs E] [--seconds S] [--breakdown FILE] [--tsv FILE]
//       The book's MLP: Dense(512, relu) -> Dense(10, softmax) on [784] images, RMSprop (Keras
//       defaults), sparse categorical crossentropy, accuracy, batch 128, float32, shuffled every
//       epoch. A warm-up over 10 batches, then up to E full epochs (default 2), each timed; no
//       further epoch starts once S seconds (default 40) would be passed. The best epoch counts.
//       --breakdown appends to FILE a table of where one training step goes.
//   --label TEXT is added to the row's "timed" column (the script marks a diagnostic run so).
//   bench_training convnet [--threads N] [--seconds S] [--tsv FILE]
//       The book's MNIST convnet: Conv2D(32, 3, relu) -> MaxPooling2D -> Conv2D(64, 3, relu) ->
//       MaxPooling2D -> Conv2D(128, 3, relu) -> Flatten -> Dense(10, softmax), RMSprop, batch 64.
//       A full epoch may be too long here: it trains on the first N examples, N chosen so that
//       the run takes about S seconds (default 20), and extrapolates to 60000.
//   bench_training rnn [--threads N] [--tsv FILE]
//       LSTM(128) and GRU(128) (Keras's defaults: return_sequences false, GRU reset_after) on
//       random inputs [64, 50, 64] float32 (batch, time, features), no dataset: median time of
//       an inference forward, and of a training step (forward under a GradientTape, mean of the
//       outputs as the loss, tape.gradient w.r.t. the layer's 3 weights). Each forward is first
//       checked against a naive float64 loop over the same weights.
//
// Output: Markdown table rows on stdout (the script adds the header); --tsv for the peers.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "tapeflow/kernels/cpu.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using i64 = std::int64_t;

namespace {

std::string arg_value(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

// Seconds of one fit() over (x, y) for one epoch; `logs` gets the last epoch's values.
double timed_fit(Model& model, const Tensor& x, const Tensor& y, i64 batch, std::uint64_t seed, Logs* logs) {
  FitOptions options;
  options.epochs = 1;
  options.batch_size = batch;
  options.verbose = 0;
  options.seed = seed;
  const auto start = bench::Clock::now();
  const History h = model.fit(x, y, options);
  const double s = bench::seconds_since(start);
  if (logs) {
    logs->clear();
    for (const auto& [k, v] : h.history) (*logs)[k] = v.back();
  }
  return s;
}

std::string g_label;  // --label: appended to the "timed" column

void print_row(const std::string& model, const std::string& how_, int threads, double epoch_s, double loss,
               double acc) {
  const std::string how = g_label.empty() ? how_ : how_ + ", " + g_label;
  const double peak_rss_mb = bench::proc_status_kb("VmHWM") / 1024;
  const double peak_tensor_mb = static_cast<double>(memory_stats().peak_bytes) / (1 << 20);
  fmt::print("| {} | {} | {} | {:.0f} | {:.2f} | {:.3f} / {:.3f} | {:.0f} | {:.0f} |\n", model, how, threads,
             60000 / epoch_s, epoch_s, loss, acc, peak_rss_mb, peak_tensor_mb);
}

// Where one MLP training step goes (batch 128): each part timed alone through the public API,
// median of many steps, as Markdown rows appended to `path`.
void mlp_step_breakdown(Sequential& model, const Tensor& x, const Tensor& y, double epoch_s, int nt,
                        const std::string& path) {
  const i64 batch = 128, steps = (x.dim(0) + batch - 1) / batch;
  Generator gen(7);
  const Tensor idx = (uniform({batch}, gen, 0, static_cast<double>(x.dim(0)))).astype(kInt64);
  const Tensor xb = take(x, idx), yb = take(y, idx);
  std::vector<Tensor> sources;
  for (const Variable& v : model.trainable_weights()) sources.push_back(v);
  const auto& dense1 = dynamic_cast<const layers::Dense&>(*model.layers().at(0));
  const auto& dense2 = dynamic_cast<const layers::Dense&>(*model.layers().at(1));
  const Tensor w1 = dense1.kernel(), w2 = dense2.kernel();
  const Tensor h = relu(matmul(xb, w1)), dz1 = ones({batch, 512}), dz2 = ones({batch, 10});
  optimizers::RMSprop optimizer;
  std::vector<Tensor> grads;
  {
    GradientTape tape;
    grads = tape.gradient(model.compute_loss(yb, model(xb, true)), sources);
  }
  const std::vector<Variable> variables = model.trainable_weights();
  struct Part {
    const char* name;
    double s;
  };
  // train_step and the step's GEMMs alone are timed interleaved (GEMM speed here comes and goes
  // with the other processes on the machine; interleaving keeps the two comparable)
  const auto [step_t, gemm_t] = bench::measure_pair(
      [&] { model.train_step(xb, yb); },
      [&] {
        Tensor a = matmul(xb, w1), b = matmul(h, w2), c = matmul(xb.transpose(), dz1), d = matmul(h.transpose(), dz2),
               e = matmul(dz2, w2.transpose());
      },
      1.0);
  const std::vector<Part> parts{
      {"batch: take 128 shuffled rows of x and y",
       bench::measure([&] { Tensor a = take(x, idx), b = take(y, idx); }).seconds},
      {"forward (training, no tape)", bench::measure([&] { Tensor p = model(xb, true); }).seconds},
      {"forward + loss under a tape + tape.gradient",
       bench::measure([&] {
         GradientTape tape;
         Tensor loss = model.compute_loss(yb, model(xb, true));
         tape.gradient(loss, sources);
       }).seconds},
      {"optimizer.apply_gradients (RMSprop, 4 variables)",
       bench::measure([&] { optimizer.apply_gradients(grads, variables); }).seconds},
      {"model.train_step (all of it, with the metrics)", step_t.seconds},
      {"for scale, timed interleaved with train_step: the step's 5 matmuls alone (x@W1, h@W2, dW1 = xᵀ@dz1, "
       "dW2 = hᵀ@dz2, dh = dz2@W2ᵀ)",
       gemm_t.seconds},
  };
  std::ofstream f(path, std::ios::app);
  f << fmt::format("\nWhere one MLP step goes at {} thread{} (batch 128; each part alone, median; x {} steps = one "
                   "epoch; the measured epoch was {:.2f} s):\n\n",
                   nt, nt > 1 ? "s" : "", steps, epoch_s);
  f << "| part of a step | per step | x steps per epoch | share of the epoch |\n|---|---:|---:|---:|\n";
  for (const Part& p : parts)
    f << fmt::format("| {} | {} | {:.2f} s | {:.0f}% |\n", p.name, bench::human_seconds(p.s), p.s * steps,
                     100 * p.s * steps / epoch_s);
}

// A naive float64 LSTM or GRU (Keras's equations, gates and weight layout; GRU reset_after)
// over x [batch, time, features] with the layer's weights: the last h, [batch, units].
std::vector<double> recurrent_reference(bool lstm, const Tensor& x, const layers::Recurrent& l) {
  const auto xv = x.astype(kFloat64).to_vector<double>();
  const auto w = l.kernel().astype(kFloat64).to_vector<double>();
  const auto r = l.recurrent_kernel().astype(kFloat64).to_vector<double>();
  const auto b = l.bias().astype(kFloat64).to_vector<double>();
  using std::size_t;
  const auto batch = static_cast<size_t>(x.dim(0)), steps = static_cast<size_t>(x.dim(1)),
             in = static_cast<size_t>(x.dim(2)), u = static_cast<size_t>(l.units()), gu = (lstm ? 4 : 3) * u;
  const auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
  std::vector<double> h(batch * u), c(batch * u), zx(gu), zh(gu);
  for (size_t n = 0; n < batch; ++n) {
    double* hn = &h[n * u];
    double* cn = &c[n * u];
    for (size_t t = 0; t < steps; ++t) {
      // zx = x_t @ kernel + bias (GRU: its input bias, row 0); zh = h @ recurrent_kernel (+ row 1)
      const double* xt = &xv[(n * steps + t) * in];
      for (size_t j = 0; j < gu; ++j) {
        zx[j] = b[j];
        zh[j] = lstm ? 0 : b[gu + j];
        for (size_t k = 0; k < in; ++k) zx[j] += xt[k] * w[k * gu + j];
        for (size_t k = 0; k < u; ++k) zh[j] += hn[k] * r[k * gu + j];
      }
      for (size_t j = 0; j < u; ++j) {
        const auto z = [&](size_t k) { return zx[k * u + j] + zh[k * u + j]; };
        if (lstm) {  // gates i, f, c, o
          cn[j] = sigmoid(z(1)) * cn[j] + sigmoid(z(0)) * std::tanh(z(2));
          hn[j] = sigmoid(z(3)) * std::tanh(cn[j]);
        } else {  // gates z, r, h; the reset gate scales the recurrent part (with its bias)
          const double zg = sigmoid(z(0)), rg = sigmoid(z(1));
          hn[j] = zg * hn[j] + (1 - zg) * std::tanh(zx[2 * u + j] + rg * zh[2 * u + j]);
        }
      }
    }
  }
  return h;
}

// bench_training rnn: see the top of the file. Prints one Markdown row per layer.
void bench_recurrent(int nt, const bench::Results& results) {
  const i64 batch = 64, steps = 50, features = 64, units = 128;
  Generator gen(1);
  const Tensor x = uniform({batch, steps, features}, gen, -1, 1);
  for (const bool lstm : {true, false}) {
    std::shared_ptr<layers::Recurrent> layer;
    if (lstm) layer = std::make_shared<layers::LSTM>(units);
    else layer = std::make_shared<layers::GRU>(units);
    layer->set_seed(0);
    (*layer)(x(Slice(0, 1), Slice(0, 1)));  // build
    // random biases (zeros by default), so that the check sees them
    Variable bias = layer->bias();
    bias.assign(uniform(bias.shape(), gen, -0.5, 0.5));
    const char* name = lstm ? "lstm" : "gru";
    const Tensor y = (*layer)(x);
    const std::vector<double> ref = recurrent_reference(lstm, x, *layer);
    const auto got = y.astype(kFloat64).to_vector<double>();
    bench::check_close(fmt::format("{} forward", name), got.data(), ref.data(), static_cast<i64>(ref.size()), 1e-4,
                       1e-5, "a naive float64 loop");
    std::vector<Tensor> sources;
    for (const Variable& v : layer->trainable_weights()) sources.push_back(v);
    const auto train_step = [&] {
      GradientTape tape;
      const Tensor loss = mean((*layer)(x, true));
      return tape.gradient(loss, sources);
    };
    const bench::Timing forward = bench::measure([&] { Tensor o = (*layer)(x); }, 1.0);
    const bench::Timing train = bench::measure([&] { train_step(); }, 1.5);
    fmt::print("| {}({}) | {} | {} | {} |\n", lstm ? "LSTM" : "GRU", units, nt, bench::human_seconds(forward.seconds),
               bench::human_seconds(train.seconds));
    results.add(fmt::format("{}/forward/{}t", name, nt), forward.seconds, "s");
    results.add(fmt::format("{}/train_step/{}t", name, nt), train.seconds, "s");
  }
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    fmt::print(stderr,
               "usage: bench_training mlp|convnet|rnn [--threads N] [--epochs E] [--seconds S] [--tsv FILE]\n");
    return 2;
  }
  const std::string which = argv[1];
  const bench::Results results(bench::tsv_arg(argc, argv));
  const int threads = std::stoi(arg_value(argc, argv, "--threads", "0"));
  g_label = arg_value(argc, argv, "--label", "");
  kernels::cpu::set_num_threads(threads);
  const int nt = kernels::cpu::num_threads();
  if (which == "rnn") {
    bench_recurrent(nt, results);
    return 0;
  }

  const MnistData data = load_mnist();
  // peak memory of the training alone (the loaded dataset stays resident and counts)
  bench::reset_peak_rss();
  reset_peak_memory();
  const i64 n_train = data.train_images.dim(0);
  const Tensor& y = data.train_labels;
  auto optimizer = std::make_shared<optimizers::RMSprop>();

  if (which == "mlp") {
    const int max_epochs = std::stoi(arg_value(argc, argv, "--epochs", "2"));
    const double budget = std::stod(arg_value(argc, argv, "--seconds", "40"));
    const Tensor x = data.train_images.reshape({n_train, 28 * 28});
    Sequential model(layers::Dense(512, "relu"), layers::Dense(10, "softmax"));
    model.set_seed(0);
    model.compile(optimizer, "sparse_categorical_crossentropy", {"accuracy"});
    timed_fit(model, x(Slice(0, 1280)), y(Slice(0, 1280)), 128, 0, nullptr);  // warm-up
    std::vector<double> times;
    Logs logs;
    double spent = 0;
    for (int e = 0; e < max_epochs && (e == 0 || spent + times.back() <= budget); ++e) {
      times.push_back(timed_fit(model, x, y, 128, static_cast<std::uint64_t>(e + 1), &logs));
      fmt::print(stderr, "  mlp, {} threads, epoch {}: {:.2f} s, loss {:.4f}, accuracy {:.4f}\n", nt, e + 1,
                 times.back(), logs["loss"], logs["accuracy"]);
      spent += times.back();
    }
    const int epochs = static_cast<int>(times.size());
    // training works: the book's MLP reaches ~0.8 accuracy in its first epoch on Fashion-MNIST
    if (!(logs["accuracy"] > 0.7))
      throw std::runtime_error(fmt::format("mlp: accuracy {} after {} epochs: training is broken", logs["accuracy"],
                                           epochs));
    const double best = *std::min_element(times.begin(), times.end());
    const std::string breakdown = arg_value(argc, argv, "--breakdown", "");
    if (!breakdown.empty()) mlp_step_breakdown(model, x, y, best, nt, breakdown);
    print_row("MLP 784-512-10", epochs == 1 ? std::string("1 full epoch") : fmt::format("best of {} full epochs", epochs), nt, best, logs["loss"],
              logs["accuracy"]);
    results.add(fmt::format("mlp/epoch/{}t", nt), best, "s");
    results.add(fmt::format("mlp/peak_rss/{}t", nt), bench::proc_status_kb("VmHWM") / 1024, "MB");
    return 0;
  }
  if (which == "convnet") {
    const double budget = std::stod(arg_value(argc, argv, "--seconds", "20"));
    const i64 batch = 64;
    const Tensor x = data.train_images.reshape({n_train, 28, 28, 1});
    Sequential model(layers::Conv2D(32, 3, "relu"), layers::MaxPooling2D(2), layers::Conv2D(64, 3, "relu"),
                     layers::MaxPooling2D(2), layers::Conv2D(128, 3, "relu"), layers::Flatten(),
                     layers::Dense(10, "softmax"));
    model.set_seed(0);
    model.compile(optimizer, "sparse_categorical_crossentropy", {"accuracy"});
    // warm-up on 2 batches, then 4 timed batches estimate the time per example
    timed_fit(model, x(Slice(0, 2 * batch)), y(Slice(0, 2 * batch)), batch, 0, nullptr);
    const double probe = timed_fit(model, x(Slice(0, 4 * batch)), y(Slice(0, 4 * batch)), batch, 1, nullptr);
    const double per_example = probe / (4 * batch);
    const i64 n = std::clamp<i64>(static_cast<i64>(budget / per_example) / batch * batch, 4 * batch, n_train);
    Logs logs;
    const double t = timed_fit(model, x(Slice(0, n)), y(Slice(0, n)), batch, 2, &logs);
    const double epoch_s = t * static_cast<double>(n_train) / static_cast<double>(n);
    fmt::print(stderr, "  convnet, {} threads: {} examples in {:.2f} s -> {:.1f} s per epoch\n", nt, n, t, epoch_s);
    print_row("convnet (book ch. 8), batch 64",
              n == n_train ? "1 full epoch"
                           : fmt::format("{} examples ({} batches) timed, extrapolated to 60000", n, n / batch),
              nt, epoch_s, logs["loss"], logs["accuracy"]);
    results.add(fmt::format("convnet/epoch/{}t", nt), epoch_s, "s");
    results.add(fmt::format("convnet/peak_rss/{}t", nt), bench::proc_status_kb("VmHWM") / 1024, "MB");
    return 0;
  }
  fmt::print(stderr, "bench_training: unknown model '{}' (mlp, convnet or rnn)\n", which);
  return 2;
} catch (const std::exception& e) {
  fmt::print(stderr, "bench_training: error: {}\n", e.what());
  return 1;
}
