// Common definitions of the sparsedream kernels: integer types, inlining and target macros.
// Header-only, no Python types.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#define SD_X86 1
#else
#define SD_X86 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SD_INLINE inline __attribute__((always_inline))
#define SD_RESTRICT __restrict__
#else
#define SD_INLINE inline
#define SD_RESTRICT
#endif

#if SD_X86 && (defined(__GNUC__) || defined(__clang__))
#define SD_HAVE_SIMD_DISPATCH 1
// Kernels compiled for these instruction sets are picked at run time (never -march=native).
#define SD_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define SD_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#else
#define SD_HAVE_SIMD_DISPATCH 0
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace sd {

using i64 = std::int64_t;
using i32 = std::int32_t;

inline int omp_max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int omp_thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

}  // namespace sd
