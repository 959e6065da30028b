// simd_math.hpp compiled with -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx512vl -mfma
// (kernels/CMakeLists.txt); run only where the CPU reports all of them.
#include <type_traits>

// GCC 12's avx512fintrin.h initialises its undefined vectors from themselves (__Y = __Y), which
// -W(maybe-)uninitialized report wherever they are inlined: off for this TU (GCC's header)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "simd_math.hpp"

static_assert(std::is_same_v<xsimd::default_arch, xsimd::avx512bw>, "built without the AVX-512 flags");

TAPEFLOW_DEFINE_SIMD_TABLE(table_avx512)
