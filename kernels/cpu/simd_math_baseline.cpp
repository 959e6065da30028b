// simd_math.hpp for the build's own flags (SSE2 on a portable x86-64 build): every CPU the
// build runs on has it, and it is what TAPEFLOW_CPU_ISA=baseline selects.
#include "simd_math.hpp"

TAPEFLOW_DEFINE_SIMD_TABLE(table_baseline)
