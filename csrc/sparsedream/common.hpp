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

// ThreadSanitizer builds (tools/sanitize.sh tsan): libgomp is not instrumented, so TSan does
// not see the synchronisation at the start and at the end of an OpenMP parallel region (a
// pooled thread is woken by a futex inside libgomp). Without help it reports, as races, every
// read inside a region of data written before it, including the block of shared variables
// that the compiler stores at the `#pragma omp parallel` line and the outlined region reads,
// and every read after the region of data written in it. Around each region:
//   SD_TSAN_FORK(t)   before it (master): release on t, then ignore the master's own
//                     accesses (the compiler's stores of that block) until it enters;
//   SD_TSAN_ENTER(t)  first thing in it (every thread): thread 0 stops ignoring; acquire t;
//   SD_TSAN_LEAVE(t)  last thing in it (every thread): release on t;
//   SD_TSAN_JOIN(t)   after it (master): acquire t.
// What TSan then checks is the code's own synchronisation (the Team's atomics) and the data
// the threads share. Other builds generate no code.
#if defined(__SANITIZE_THREAD__)
#define SD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SD_TSAN 1
#endif
#endif
#ifdef SD_TSAN
#include <sanitizer/tsan_interface.h>
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#define SD_TSAN_FORK(addr) (__tsan_release((void*)(addr)), __tsan_ignore_thread_begin())
#define SD_TSAN_ENTER(addr) \
    ((::sd::omp_thread_id() == 0 ? __tsan_ignore_thread_end() : (void)0), __tsan_acquire((void*)(addr)))
#define SD_TSAN_LEAVE(addr) __tsan_release((void*)(addr))
#define SD_TSAN_JOIN(addr) __tsan_acquire((void*)(addr))
#else
#define SD_TSAN_FORK(addr) ((void)0)
#define SD_TSAN_ENTER(addr) ((void)0)
#define SD_TSAN_LEAVE(addr) ((void)0)
#define SD_TSAN_JOIN(addr) ((void)0)
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
