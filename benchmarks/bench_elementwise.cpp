// relu and add on 16M float32: the naive scalar loop vs tapeflow's CPU kernel, in GB/s and as
// a fraction of the copy bandwidth measured by this same program (issue 2's benchmark line).
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

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

  const double t_copy = bench::median_seconds([&] { std::memcpy(out.data<float>(), x.data<float>(), mb); });
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
  line("memcpy (limit)", 2 * mb, t_copy);
  line("clone", 2 * mb, t_clone);
  line("relu naive", 2 * mb, t_relu_naive);
  line("relu tapeflow", 2 * mb, t_relu);
  line("add naive", 3 * mb, t_add_naive);
  line("add tapeflow", 3 * mb, t_add);
  fmt::print("speed-up over naive: relu {:.2f}x, add {:.2f}x\n", t_relu_naive / t_relu, t_add_naive / t_add);
  return 0;
}
