// simd_math.hpp compiled with -mavx2 -mfma (kernels/CMakeLists.txt); run only where the CPU
// reports AVX2 and FMA.
#include <type_traits>

#include "simd_math.hpp"

static_assert(std::is_same_v<xsimd::default_arch, xsimd::fma3<xsimd::avx2>>, "built without -mavx2 -mfma");

TAPEFLOW_DEFINE_SIMD_TABLE(table_avx2)
