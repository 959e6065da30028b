#pragma once
// The CPU kernels: vectorised (xsimd), threaded (OpenMP) for large tensors, GEMM through
// OpenBLAS. Only kernels/cpu's own translation units include xtensor / xsimd.
#include <cstdint>
#include <string>
#include <vector>

#include "tapeflow/kernels/layout.hpp"
#include "tapeflow/op_id.hpp"

namespace tapeflow::kernels::cpu {
#include "tapeflow/kernels/kernel_api.inc"

// The instruction sets the arithmetic-bound kernels (exp, log, sqrt, tanh, sigmoid, softmax
// rows) can run here, best first: "avx512" and "avx2" where this CPU and an x86-64 build have
// them, and always "baseline" (the build's own flags; SSE2 on a portable x86-64 build).
std::vector<std::string> isas();
// The one in use, with xsimd's name for it, e.g. "avx512 (avx512bw)". The best of isas(), or
// the one the environment variable TAPEFLOW_CPU_ISA names when the first kernel runs.
std::string isa();
// Switches to one of isas() for the whole process; false, changing nothing, for any other key.
// Results differ between instruction sets in the last bits (FMA, other polynomial steps).
bool set_isa(const std::string& key);

// Threads used by the CPU kernels and OpenBLAS together (never more than the cores).
void set_num_threads(int n);
int num_threads();
}  // namespace tapeflow::kernels::cpu
