// Uses tapeflow as a user would after find_package(tapeflow): sum(ones({2, 3})) is 6.
#include <cstdio>

#include "tapeflow/core.hpp"

int main() {
  const tapeflow::Tensor x = tapeflow::ones({2, 3});
  const float total = tapeflow::sum(x).item<float>();
  if (total != 6.0f) {
    std::fprintf(stderr, "consumer: sum(ones({2, 3})) = %g, expected 6\n", static_cast<double>(total));
    return 1;
  }
  std::printf("consumer: sum(ones({2, 3})) = %g, the installed tapeflow package works\n",
              static_cast<double>(total));
  return 0;
}
