// LibTorch's C++ front end: the same element-wise ops, matmuls, per-op overhead and MLP training
// loop as tapeflow's benchmarks (same shapes and result keys as bench_kernels.cpp,
// bench_overhead.cpp and peer_common.py), at one thread setting. Each result is checked against
// the same op in float64 before it is timed.
//
//   OMP_NUM_THREADS=N libtorch_peer --threads N [--tsv FILE] [--epochs E] [--seconds S] [--quick]
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using i64 = std::int64_t;
constexpr int kChain = 100;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string g_tsv;
void add(const std::string& key, double value, const char* unit) {
  std::printf("%-32s %12.6g %s\n", key.c_str(), value, unit);
  std::fflush(stdout);
  if (g_tsv.empty()) return;
  std::ofstream f(g_tsv, std::ios::app);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  f << key << '\t' << buf << '\t' << unit << '\n';
}

// as bench_util.hpp's measure()
template <class F>
double measure(F&& fn, double budget = 0.3, double min_sample = 2e-3, int max_samples = 11) {
  auto t0 = Clock::now();
  fn();
  const double first = since(t0);
  if (first >= budget) {
    t0 = Clock::now();
    fn();
    return since(t0);
  }
  const int inner = std::max(1, static_cast<int>(std::ceil(min_sample / std::max(first, 1e-9))));
  t0 = Clock::now();
  for (int i = 0; i < inner; ++i) fn();
  const double sample = since(t0);
  const int samples = std::clamp(static_cast<int>(budget / std::max(sample, 1e-9)), 3, max_samples);
  std::vector<double> ts;
  for (int s = 0; s < samples; ++s) {
    t0 = Clock::now();
    for (int i = 0; i < inner; ++i) fn();
    ts.push_back(since(t0) / inner);
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

void check(const std::string& what, const torch::Tensor& got, const torch::Tensor& ref, double rtol, double atol) {
  if (!torch::allclose(got.to(torch::kDouble), ref, rtol, atol))
    throw std::runtime_error(what + ": result differs from the float64 reference");
}

void bench_ops(bool quick) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(42);
  auto u = [](std::vector<i64> shape) { return torch::rand(shape) * 2 - 1; };
  std::vector<std::pair<i64, i64>> shapes{{64, 64}, {512, 512}, {4096, 4096}};
  if (quick) shapes.pop_back();
  for (auto [r, c] : shapes) {
    const torch::Tensor x = u({r, c}), y = u({r, c}), v = u({c});
    const torch::Tensor xd = x.to(torch::kDouble), yd = y.to(torch::kDouble), vd = v.to(torch::kDouble);
    const std::string sk = std::to_string(r) + "x" + std::to_string(c);
    using Op = std::function<torch::Tensor()>;
    const std::vector<std::tuple<std::string, Op, torch::Tensor, double, double>> cases{
        {"relu", [&] { return torch::relu(x); }, torch::relu(xd), 0, 0},
        {"add", [&] { return x + y; }, xd + yd, 1e-7, 0},
        {"bcast_add", [&] { return x + v; }, xd + vd, 1e-7, 0},
        {"sum_axis0", [&] { return x.sum(0); }, xd.sum(0), 1e-5, 2e-6 * r},
        {"sum_axis1", [&] { return x.sum(1); }, xd.sum(1), 1e-5, 2e-6 * c},
        {"softmax", [&] { return torch::softmax(x, -1); }, torch::softmax(xd, -1), 1e-4, 1e-9},
    };
    for (const auto& [name, op, ref, rtol, atol] : cases) {
      check(name + "/" + sk, op(), ref, rtol, atol);
      add(name + "/" + sk, measure(op), "s");
    }
  }
  struct Mm {
    i64 m, k, n;
    bool ta, tb;
  };
  std::vector<Mm> mms{{256, 256, 256, false, false},   {512, 512, 512, false, false}, {1024, 1024, 1024, false, false},
                      {128, 784, 512, false, false},   {128, 512, 10, false, false},  {784, 128, 512, true, false},
                      {512, 128, 10, true, false},     {128, 10, 512, false, true},   {128, 512, 784, false, true}};
  if (quick) mms.erase(mms.begin() + 1, mms.begin() + 3);
  for (const Mm& mm : mms) {
    const torch::Tensor as = mm.ta ? u({mm.k, mm.m}) : u({mm.m, mm.k});
    const torch::Tensor bs = mm.tb ? u({mm.n, mm.k}) : u({mm.k, mm.n});
    const torch::Tensor a = mm.ta ? as.t() : as, b = mm.tb ? bs.t() : bs;  // transposed views
    const std::string key = std::string("matmul") + (mm.ta ? "_tn" : mm.tb ? "_nt" : "") + "/" +
                            std::to_string(mm.m) + "x" + std::to_string(mm.k) + "x" + std::to_string(mm.n);
    check(key, torch::matmul(a, b), torch::matmul(a.to(torch::kDouble), b.to(torch::kDouble)), 1e-4, 2e-6 * mm.k);
    add(key, measure([&] { return torch::matmul(a, b); }), "s");
  }
}

torch::Tensor chain(torch::Tensor x) {
  for (int i = 0; i < kChain / 2; ++i) x = torch::tanh(x * 0.9);
  return x;
}

void bench_overhead() {
  const torch::Tensor x0 = torch::tensor({0.1f, 0.2f, 0.3f, 0.4f});
  const torch::Tensor xg = x0.clone().requires_grad_();
  {
    const torch::Tensor y = chain(xg);
    const torch::Tensor g = torch::autograd::grad({y}, {xg}, {torch::ones_like(y)})[0];
    torch::Tensor v = x0.to(torch::kDouble), d = torch::ones({4}, torch::kDouble);
    for (int i = 0; i < kChain / 2; ++i) {
      v = torch::tanh(v * 0.9);
      d = d * 0.9 * (1 - v * v);
    }
    check("chain", y.detach(), v, 1e-5, 1e-7);
    check("chain gradient", g, d, 1e-3, 1e-12);
  }
  auto per_op_us = [](auto&& fn) {
    std::vector<double> ts;
    for (int s = 0; s < 11; ++s) {
      const auto t0 = Clock::now();
      for (int r = 0; r < 100; ++r) fn();
      if (s >= 2) ts.push_back(since(t0) / (100 * kChain) * 1e6);
    }
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
  };
  add("overhead/no_tape", per_op_us([&] { chain(x0); }), "us");
  add("overhead/tape", per_op_us([&] { chain(xg); }), "us");
  std::vector<double> ts;
  for (int s = 0; s < 11; ++s) {
    double total = 0;
    for (int r = 0; r < 100; ++r) {
      const torch::Tensor y = chain(xg);
      const torch::Tensor ones = torch::ones_like(y);
      const auto t0 = Clock::now();
      torch::autograd::grad({y}, {xg}, {ones});
      total += since(t0);
    }
    if (s >= 2) ts.push_back(total / (100 * kChain) * 1e6);
  }
  std::sort(ts.begin(), ts.end());
  add("overhead/gradient", ts[ts.size() / 2], "us");
}

// An IDX file (gzip or raw) as a uint8 tensor of its dimensions.
torch::Tensor read_idx(const std::string& dir, const std::string& stem) {
  std::string path = dir + "/" + stem + ".gz";
  if (!std::ifstream(path)) path = dir + "/" + stem;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<unsigned char> bytes;
  unsigned char buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  gzclose(f);
  const int ndim = bytes.at(3);
  std::vector<i64> dims;
  for (int d = 0; d < ndim; ++d) {
    const unsigned char* p = bytes.data() + 4 + 4 * d;
    dims.push_back((i64(p[0]) << 24) | (i64(p[1]) << 16) | (i64(p[2]) << 8) | i64(p[3]));
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndim);
  return torch::from_blob(bytes.data() + header, dims, torch::kUInt8).clone();
}

void bench_mlp(int max_epochs, double budget) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  const torch::Tensor x = read_idx(dir, "train-images-idx3-ubyte").reshape({-1, 784}).to(torch::kFloat) / 255.0;
  const torch::Tensor y = read_idx(dir, "train-labels-idx1-ubyte").to(torch::kLong);
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM from here on, as the tapeflow benchmark
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(784, 512), torch::nn::ReLU(), torch::nn::Linear(512, 10));
  // Keras's RMSprop defaults: lr 1e-3, rho 0.9, epsilon 1e-7
  torch::optim::RMSprop opt(model->parameters(), torch::optim::RMSpropOptions(1e-3).alpha(0.9).eps(1e-7));
  const i64 n = x.size(0);
  double loss_mean = 0, acc = 0;
  auto epoch = [&](i64 limit) {
    const torch::Tensor perm = torch::randperm(n);
    double loss_sum = 0;
    i64 seen = 0, correct = 0, step = 0;
    for (i64 i = 0; i < n && step < limit; i += 128, ++step) {
      const torch::Tensor idx = perm.slice(0, i, std::min(n, i + 128));
      const torch::Tensor xb = x.index_select(0, idx), yb = y.index_select(0, idx);
      opt.zero_grad();
      const torch::Tensor out = model->forward(xb);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(out, yb);
      loss.backward();
      opt.step();
      // the running loss and accuracy Keras's fit (and tapeflow's) keep per batch
      loss_sum += loss.item<double>() * static_cast<double>(yb.size(0));
      correct += out.argmax(1).eq(yb).sum().item<i64>();
      seen += yb.size(0);
    }
    loss_mean = loss_sum / static_cast<double>(seen);
    acc = static_cast<double>(correct) / static_cast<double>(seen);
  };
  epoch(10);  // warm-up
  // whole epochs while they fit the budget; a first epoch predicted longer is timed on part of
  // its batches and extrapolated (as peer_common.epoch_plan and tapeflow's bench_training)
  auto t0 = Clock::now();
  epoch(10);
  const double per_batch = since(t0) / 10;
  const i64 batches = (n + 127) / 128;
  int epochs = 1;
  i64 limit = batches;
  if (per_batch * static_cast<double>(batches) <= budget)
    epochs = std::max(1, std::min(max_epochs, static_cast<int>(budget / (per_batch * static_cast<double>(batches)))));
  else
    limit = std::max<i64>(10, static_cast<i64>(budget / per_batch));
  std::vector<double> times;
  for (int e = 0; e < epochs; ++e) {
    t0 = Clock::now();
    epoch(limit);
    times.push_back(since(t0) * static_cast<double>(batches) / static_cast<double>(limit));
    std::printf("  libtorch mlp epoch %d: %.2f s%s, loss %.4f, accuracy %.4f\n", e + 1, times.back(),
                limit == batches ? "" : " (extrapolated from part of the epoch)", loss_mean, acc);
  }
  if (acc < 0.7 && limit == batches) throw std::runtime_error("libtorch mlp: accuracy too low: the training loop is broken");
  add("mlp/epoch", *std::min_element(times.begin(), times.end()), "s");
  std::ifstream status("/proc/self/status");
  std::string line;
  double hwm_kb = -1;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) hwm_kb = std::atof(line.c_str() + 6);
  add("mlp/peak_rss", hwm_kb / 1024.0, "MB");
}

}  // namespace

int main(int argc, char** argv) try {
  int threads = 1, epochs = 2;
  double seconds = 40;
  bool quick = false;
  std::string skip;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--tsv" && i + 1 < argc) g_tsv = argv[++i];
    else if (a == "--epochs" && i + 1 < argc) epochs = std::stoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    else if (a == "--skip" && i + 1 < argc) skip = argv[++i];
    else if (a == "--quick") quick = true;
  }
  torch::set_num_threads(threads);
  std::printf("# libtorch %s (%d threads)\n", TORCH_VERSION, torch::get_num_threads());
  if (skip.find("ops") == std::string::npos) bench_ops(quick);
  if (skip.find("overhead") == std::string::npos) bench_overhead();
  if (skip.find("mlp") == std::string::npos) bench_mlp(epochs, seconds);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "libtorch_peer: error: %s\n", e.what());
  return 1;
}
