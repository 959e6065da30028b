#pragma once
// The CPU kernels: vectorised (xsimd), threaded (OpenMP) for large tensors, GEMM through
// OpenBLAS. Only kernels/cpu's own translation units include xtensor / xsimd.
#include <cstdint>

#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels::cpu {
#include "tapeflow/kernels/kernel_api.inc"

// Threads used by the CPU kernels and OpenBLAS together (never more than the cores).
void set_num_threads(int n);
int num_threads();
}  // namespace tapeflow::kernels::cpu
