// Uses tapeflow as a user would after find_package(tapeflow): sum(ones({2, 3})) is 6, a Dense
// layer trains a step, and where a CUDA device is present (a GPU, or the emulator of a
// TAPEFLOW_CUDA=EMU package) a matmul on cuda:0 (cuBLAS) agrees with the CPU.
#include <cmath>
#include <cstdio>

#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;

int main() {
  const float total = sum(ones({2, 3})).item<float>();
  if (total != 6.0f) {
    std::fprintf(stderr, "consumer: sum(ones({2, 3})) = %g, expected 6\n", static_cast<double>(total));
    return 1;
  }
  Sequential model(layers::Dense(1));
  model.compile("sgd", "mse");
  const double loss = model.fit(ones({4, 2}), ones({4, 1}), [] {
    FitOptions o;
    o.epochs = 1;
    o.verbose = 0;
    return o;
  }())["loss"].back();
  if (!std::isfinite(loss)) {
    std::fprintf(stderr, "consumer: fit gave loss %g\n", loss);
    return 1;
  }
  std::printf("consumer: sum(ones({2, 3})) = %g, one fit step: loss %.4f\n", static_cast<double>(total), loss);
  if (cuda::is_available()) {
    const Tensor a = arange(12, kFloat32).reshape({3, 4}), b = arange(8, kFloat32).reshape({4, 2});
    const Tensor on_gpu = matmul(a.to(Device::cuda(0)), b.to(Device::cuda(0))).to(Device::cpu());
    const double diff = max(abs(on_gpu - matmul(a, b))).item<double>();
    if (diff != 0) {
      std::fprintf(stderr, "consumer: matmul on cuda:0 differs from the CPU by %g\n", diff);
      return 1;
    }
    std::printf("consumer: matmul on cuda:0 (cuBLAS) agrees with the CPU\n");
  } else {
    std::printf("consumer: no CUDA device (%s): the cuda:0 check is skipped\n", cuda::status().c_str());
  }
  std::printf("consumer: the installed tapeflow package works\n");
  return 0;
}
