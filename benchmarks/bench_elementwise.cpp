// relu and add on 16M float32: the naive scalar loop vs tapeflow's CPU kernel, in GB/s and as
// a fraction of the copy bandwidth measured by this same program (issue 2's benchmark line).
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "bench_util.hpp"
#include "tapeflow/core.hpp"
#include "tapeflow/kernels/naive.hpp"

using namespace tapeflow;

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? std::atoll(argv[1]) : (std::int64_t(1) << 24);
  Generator gen(0);
  Tensor x = uniform({n}, gen, -1, 1), y = uniform({n}, gen, -1, 1);
  Tensor out = empty({n});
  const auto l = kernels::contiguous_layout(1, &n);
  const double mb = static_cast<double>(n) * sizeof(float);

  // validate before timing
  kernels::naive::unary<float>(OpId::Relu, out.data<float>(), l, x.data<float>(), l, 0, 0);
  if (relu(x).to_vector<float>() != out.to_vector<float>()) return fmt::print("relu mismatch\n"), 1;
  kernels::naive::binary<float>(OpId::Add, out.data<float>(), l, x.data<float>(), l, y.data<float>(), l);
  if (add(x, y).to_vector<float>() != out.to_vector<float>()) return fmt::print("add mismatch\n"), 1;

  // the machine's copy bandwidth: memcpy on one thread, and on every core (halves in parallel)
  const double t_copy1 = bench::median_seconds([&] { std::memcpy(out.data<float>(), x.data<float>(), mb); });
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const double t_copyn = bench::median_seconds([&] {
    std::vector<std::thread> threads;
    const std::size_t part = static_cast<std::size_t>(n) / cores;
    for (unsigned c = 0; c < cores; ++c) {
      const std::size_t begin = c * part, len = c + 1 == cores ? static_cast<std::size_t>(n) - begin : part;
      threads.emplace_back([&, begin, len] {
        std::memcpy(out.data<float>() + begin, x.data<float>() + begin, len * sizeof(float));
      });
    }
    for (auto& t : threads) t.join();
  });
  const double t_copy = std::min(t_copy1, t_copyn);
  // the book's naive_relu / naive_add as plain C++ loops (the compiler vectorises these)
  const double t_relu_loop = bench::median_seconds([&] {
    const float* px = x.data<float>();
    float* po = out.data<float>();
    for (std::int64_t i = 0; i < n; ++i) po[i] = px[i] > 0 ? px[i] : 0.0f;
  });
  const double t_add_loop = bench::median_seconds([&] {
    const float* px = x.data<float>();
    const float* py = y.data<float>();
    float* po = out.data<float>();
    for (std::int64_t i = 0; i < n; ++i) po[i] = px[i] + py[i];
  });
  const double t_clone = bench::median_seconds([&] { Tensor c = x.clone(); });
  const double t_relu_naive = bench::median_seconds(
      [&] { kernels::naive::unary<float>(OpId::Relu, out.data<float>(), l, x.data<float>(), l, 0, 0); });
  const double t_relu = bench::median_seconds([&] { Tensor r = relu(x); });
  const double t_add_naive = bench::median_seconds([&] {
    kernels::naive::binary<float>(OpId::Add, out.data<float>(), l, x.data<float>(), l, y.data<float>(), l);
  });
  const double t_add = bench::median_seconds([&] { Tensor r = add(x, y); });

  const double copy_gbs = 2 * mb / t_copy / 1e9;
  auto line = [&](const char* name, double bytes, double t) {
    const double gbs = bytes / t / 1e9;
    fmt::print("{:<22} {:>9.3f} ms {:>8.2f} GB/s {:>6.0f}% of copy\n", name, t * 1e3, gbs, 100 * gbs / copy_gbs);
  };
  fmt::print("n = {} float32 ({:.0f} MB per tensor), median of 7 runs after 2 warm-ups\n", n, mb / 1e6);
  fmt::print("GB/s = bytes read + written / time; '% of copy' is against the faster memcpy below\n");
  line("memcpy, 1 thread", 2 * mb, t_copy1);
  line(fmt::format("memcpy, {} threads", cores).c_str(), 2 * mb, t_copyn);
  line("relu plain loop", 2 * mb, t_relu_loop);
  line("add plain loop", 3 * mb, t_add_loop);
  line("clone", 2 * mb, t_clone);
  line("relu naive kernel", 2 * mb, t_relu_naive);
  line("relu tapeflow", 2 * mb, t_relu);
  line("add naive kernel", 3 * mb, t_add_naive);
  line("add tapeflow", 3 * mb, t_add);
  fmt::print("speed-up over the naive kernel: relu {:.1f}x, add {:.1f}x; over the plain loop: relu {:.2f}x, add {:.2f}x\n",
             t_relu_naive / t_relu, t_add_naive / t_add, t_relu_loop / t_relu, t_add_loop / t_add);
  return 0;
}
