#pragma once
// Plain scalar loops: the oracle of the tests and the naive side of the benchmarks.
// Never optimised.
#include <cstdint>

#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels::naive {
#include "tapeflow/kernels/kernel_api.inc"
}  // namespace tapeflow::kernels::naive
