// Run-time SIMD dispatch and the dot-product kernels of the drive pass.
//
// The drive pass p = W v is the whole cost of a step; its kernels are written with
// intrinsics for AVX-512 and AVX2+FMA and picked at run time by CPU checks (never by
// -march=native). Every dot product has one fixed summation order per SIMD level, whatever
// the number of rows processed together or the thread that computes it: chunk j of the row
// (width w lanes) goes to accumulator j % 2, the masked tail chunk likewise, and the two
// accumulators are added and reduced in a fixed tree. So results do not depend on the
// thread count, and W v in `infer` equals W v in `fit` bit for bit.
//
// Element-wise kernels (row updates, clipping, sums) are plain C++ compiled three times
// (SD_MULTIVERSION) so the compiler's vectorizer uses the wide registers; they contain no
// reductions across lanes, so they give the same bits at every level.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common.hpp"

#if SD_HAVE_SIMD_DISPATCH
#include <immintrin.h>
#endif

namespace sd {
namespace simd {

enum Level : int { SCALAR = 0, AVX2 = 1, AVX512 = 2 };

// The blocked drive's tile kernel (simd_tile.inc) runs kTileGroup frames in lockstep over
// tiles of kTileVecs vectors of neurons; each level sets the two in its namespace below
// (kTileGroup * kTileVecs chains of fused multiply-adds in flight). These are the scalar
// level's, and the most frames a group may hold.
constexpr i64 kTileGroupMax = 8;
constexpr i64 kTileGroup = 8;
constexpr int kTileVecs = 1;

inline const char* level_name(int lvl) {
    switch (lvl) {
        case AVX512: return "avx512";
        case AVX2: return "avx2";
        default: return "scalar";
    }
}

/// The best level this CPU supports.
inline int max_supported() {
#if SD_HAVE_SIMD_DISPATCH
    static const int lvl = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return int(AVX512);
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return int(AVX2);
        return int(SCALAR);
    }();
    return lvl;
#else
    return SCALAR;
#endif
}

inline int parse_level(const char* s, int fallback) {
    if (!s) return fallback;
    if (!std::strcmp(s, "scalar")) return SCALAR;
    if (!std::strcmp(s, "avx2")) return AVX2;
    if (!std::strcmp(s, "avx512")) return AVX512;
    return fallback;
}

inline std::atomic<int>& level_ref() {
    // Environment override SPARSEDREAM_SIMD=scalar|avx2|avx512 (capped at what the CPU has).
    static std::atomic<int> lvl{[] {
        int best = max_supported();
        int want = parse_level(std::getenv("SPARSEDREAM_SIMD"), best);
        return want < best ? want : best;
    }()};
    return lvl;
}

/// The level the kernels use now.
inline int level() { return level_ref().load(std::memory_order_relaxed); }

/// Choose a level (capped at the best supported); returns the level set.
inline int set_level(int lvl) {
    int best = max_supported();
    if (lvl < 0) lvl = 0;
    if (lvl > best) lvl = best;
    level_ref().store(lvl);
    return lvl;
}

// ------------------------------------------------------------------- scalar dot kernels
template <class T>
inline void dot_rows_scalar(const T* W, i64 D, i64 n0, i64 n1, const T* v, T* out) {
    for (i64 n = n0; n < n1; ++n) {
        const T* w = W + n * D;
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        i64 d = 0;
        for (; d + 4 <= D; d += 4) {
            a0 += w[d] * v[d];
            a1 += w[d + 1] * v[d + 1];
            a2 += w[d + 2] * v[d + 2];
            a3 += w[d + 3] * v[d + 3];
        }
        for (; d < D; ++d) a0 += w[d] * v[d];
        out[n] = (a0 + a1) + (a2 + a3);
    }
}

template <class T>
inline void dot2_rows_scalar(const T* W, i64 D, i64 n0, i64 n1, const T* v, const T* vv,
                             T* out1, T* out2) {
    dot_rows_scalar(W, D, n0, n1, v, out1);
    dot_rows_scalar(W, D, n0, n1, vv, out2);
}

#if SD_HAVE_SIMD_DISPATCH
// --------------------------------------------------------------------------- AVX-512
namespace avx512 {
#define SD_TGT SD_TARGET_AVX512
/// Eight frames over one vector: the tile (D x 16 float32) stays in L1, and eight chains keep
/// both FMA units busy; two and four vectors measured the same at 80 x 80 (one thread).
constexpr i64 kTileGroup = 8;
constexpr int kTileVecs = 1;
template <class T> struct W_;
template <> struct W_<float> { static constexpr int w = 16; };
template <> struct W_<double> { static constexpr int w = 8; };
SD_TGT SD_INLINE __m512 vload(const float* p) { return _mm512_loadu_ps(p); }
SD_TGT SD_INLINE __m512d vload(const double* p) { return _mm512_loadu_pd(p); }
SD_TGT SD_INLINE __m512 vtail(const float* p, int n) {
    return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1u), p);
}
SD_TGT SD_INLINE __m512d vtail(const double* p, int n) {
    return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1u), p);
}
SD_TGT SD_INLINE __m512 vzero(float) { return _mm512_setzero_ps(); }
SD_TGT SD_INLINE __m512d vzero(double) { return _mm512_setzero_pd(); }
SD_TGT SD_INLINE __m512 vfma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
SD_TGT SD_INLINE __m512d vfma(__m512d a, __m512d b, __m512d c) { return _mm512_fmadd_pd(a, b, c); }
SD_TGT SD_INLINE __m512 vmul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
SD_TGT SD_INLINE __m512d vmul(__m512d a, __m512d b) { return _mm512_mul_pd(a, b); }
SD_TGT SD_INLINE float vsum(__m512 a, __m512 b) {
    __m512 s = _mm512_add_ps(a, b);
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}
SD_TGT SD_INLINE double vsum(__m512d a, __m512d b) {
    __m512d s = _mm512_add_pd(a, b);
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    q = _mm_add_sd(q, _mm_unpackhi_pd(q, q));
    return _mm_cvtsd_f64(q);
}
SD_TGT SD_INLINE unsigned gt_mask(__m512 a, float t) {
    return _mm512_cmp_ps_mask(a, _mm512_set1_ps(t), _CMP_GT_OQ);
}
SD_TGT SD_INLINE unsigned gt_mask(__m512d a, double t) {
    return _mm512_cmp_pd_mask(a, _mm512_set1_pd(t), _CMP_GT_OQ);
}
SD_TGT SD_INLINE __m512 vset1(float x) { return _mm512_set1_ps(x); }
SD_TGT SD_INLINE __m512d vset1(double x) { return _mm512_set1_pd(x); }
SD_TGT SD_INLINE void vstore(float* p, __m512 a) { _mm512_storeu_ps(p, a); }
SD_TGT SD_INLINE void vstore(double* p, __m512d a) { _mm512_storeu_pd(p, a); }
SD_TGT SD_INLINE __m512 vadd(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
SD_TGT SD_INLINE __m512d vadd(__m512d a, __m512d b) { return _mm512_add_pd(a, b); }
SD_TGT SD_INLINE __m512 vsub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
SD_TGT SD_INLINE __m512d vsub(__m512d a, __m512d b) { return _mm512_sub_pd(a, b); }
/// True when every lane is exactly zero (a NaN lane is not).
SD_TGT SD_INLINE bool all_zero(__m512 a) { return _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_EQ_OQ) == 0xffffu; }
SD_TGT SD_INLINE bool all_zero(__m512d a) { return _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_EQ_OQ) == 0xffu; }
/// Transpose the w x w block at src (row stride ls) into dst (row stride ld):
/// dst[c * ld + r] = src[r * ls + c]; bad += x - x over the values (NaN when one is not finite).
SD_TGT SD_INLINE void transpose_block(const float* src, i64 ls, float* dst, i64 ld, __m512& bad) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) {
        r[i] = _mm512_loadu_ps(src + i * ls);
        bad = _mm512_add_ps(bad, _mm512_sub_ps(r[i], r[i]));
    }
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {  // r[g + c]: rows g..g+3 at columns c, c+4, c+8, c+12 (128-bit lanes)
        r[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
        r[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
        r[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        r[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
        t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    }
    for (int c = 0; c < 4; ++c) {
        _mm512_storeu_ps(dst + c * ld, _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88));
        _mm512_storeu_ps(dst + (c + 8) * ld, _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD));
        _mm512_storeu_ps(dst + (c + 4) * ld, _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88));
        _mm512_storeu_ps(dst + (c + 12) * ld, _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xDD));
    }
}
SD_TGT SD_INLINE void transpose_block(const double* src, i64 ls, double* dst, i64 ld, __m512d& bad) {
    __m512d r[8], t[8];
    for (int i = 0; i < 8; ++i) {
        r[i] = _mm512_loadu_pd(src + i * ls);
        bad = _mm512_add_pd(bad, _mm512_sub_pd(r[i], r[i]));
    }
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
    }
    for (int g = 0; g < 8; g += 4) {  // rows g..g+3: columns (0,4), (2,6), (1,5), (3,7)
        r[g] = _mm512_shuffle_f64x2(t[g], t[g + 2], 0x88);
        r[g + 1] = _mm512_shuffle_f64x2(t[g], t[g + 2], 0xDD);
        r[g + 2] = _mm512_shuffle_f64x2(t[g + 1], t[g + 3], 0x88);
        r[g + 3] = _mm512_shuffle_f64x2(t[g + 1], t[g + 3], 0xDD);
    }
    static constexpr int col[4] = {0, 2, 1, 3};
    for (int q = 0; q < 4; ++q) {
        _mm512_storeu_pd(dst + col[q] * ld, _mm512_shuffle_f64x2(r[q], r[4 + q], 0x88));
        _mm512_storeu_pd(dst + (col[q] + 4) * ld, _mm512_shuffle_f64x2(r[q], r[4 + q], 0xDD));
    }
}
#include "simd_dot.inc"
#include "simd_tile.inc"
#undef SD_TGT
}  // namespace avx512

// ------------------------------------------------------------------------------ AVX2
namespace avx2 {
#define SD_TGT SD_TARGET_AVX2
/// Four frames over two vectors: each index and value loaded serves two fused multiply-adds
/// (loads, three per FMA with one vector, are what limits the kernel), eight accumulators of
/// the sixteen registers. Zen 3, 80 x 80, one thread: 32-35 us a frame against 41-46 with
/// eight frames over one vector (five runs each, on a noisy VM).
constexpr i64 kTileGroup = 4;
constexpr int kTileVecs = 2;
template <class T> struct W_;
template <> struct W_<float> { static constexpr int w = 8; };
template <> struct W_<double> { static constexpr int w = 4; };
alignas(32) static const std::int32_t kMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                      0,  0,  0,  0,  0,  0,  0,  0};
alignas(32) static const std::int64_t kMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
SD_TGT SD_INLINE __m256 vload(const float* p) { return _mm256_loadu_ps(p); }
SD_TGT SD_INLINE __m256d vload(const double* p) { return _mm256_loadu_pd(p); }
SD_TGT SD_INLINE __m256 vtail(const float* p, int n) {
    return _mm256_maskload_ps(p, _mm256_loadu_si256((const __m256i*)(kMask32 + 8 - n)));
}
SD_TGT SD_INLINE __m256d vtail(const double* p, int n) {
    return _mm256_maskload_pd(p, _mm256_loadu_si256((const __m256i*)(kMask64 + 4 - n)));
}
SD_TGT SD_INLINE __m256 vzero(float) { return _mm256_setzero_ps(); }
SD_TGT SD_INLINE __m256d vzero(double) { return _mm256_setzero_pd(); }
SD_TGT SD_INLINE __m256 vfma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
SD_TGT SD_INLINE __m256d vfma(__m256d a, __m256d b, __m256d c) { return _mm256_fmadd_pd(a, b, c); }
SD_TGT SD_INLINE __m256 vmul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
SD_TGT SD_INLINE __m256d vmul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
SD_TGT SD_INLINE float vsum(__m256 a, __m256 b) {
    __m256 s = _mm256_add_ps(a, b);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    return _mm_cvtss_f32(q);
}
SD_TGT SD_INLINE double vsum(__m256d a, __m256d b) {
    __m256d s = _mm256_add_pd(a, b);
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    q = _mm_add_sd(q, _mm_unpackhi_pd(q, q));
    return _mm_cvtsd_f64(q);
}
SD_TGT SD_INLINE unsigned gt_mask(__m256 a, float t) {
    return unsigned(_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(t), _CMP_GT_OQ)));
}
SD_TGT SD_INLINE unsigned gt_mask(__m256d a, double t) {
    return unsigned(_mm256_movemask_pd(_mm256_cmp_pd(a, _mm256_set1_pd(t), _CMP_GT_OQ)));
}
SD_TGT SD_INLINE __m256 vset1(float x) { return _mm256_set1_ps(x); }
SD_TGT SD_INLINE __m256d vset1(double x) { return _mm256_set1_pd(x); }
SD_TGT SD_INLINE void vstore(float* p, __m256 a) { _mm256_storeu_ps(p, a); }
SD_TGT SD_INLINE void vstore(double* p, __m256d a) { _mm256_storeu_pd(p, a); }
SD_TGT SD_INLINE __m256 vadd(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
SD_TGT SD_INLINE __m256d vadd(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
SD_TGT SD_INLINE __m256 vsub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
SD_TGT SD_INLINE __m256d vsub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }
SD_TGT SD_INLINE bool all_zero(__m256 a) {
    return _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ)) == 0xff;
}
SD_TGT SD_INLINE bool all_zero(__m256d a) {
    return _mm256_movemask_pd(_mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_EQ_OQ)) == 0xf;
}
SD_TGT SD_INLINE void transpose_block(const float* src, i64 ls, float* dst, i64 ld, __m256& bad) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) {
        r[i] = _mm256_loadu_ps(src + i * ls);
        bad = _mm256_add_ps(bad, _mm256_sub_ps(r[i], r[i]));
    }
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 8; g += 4) {  // r[g + c]: rows g..g+3 at columns c, c+4 (128-bit lanes)
        r[g] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
        r[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xEE);
        r[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        r[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
        _mm256_storeu_ps(dst + c * ld, _mm256_permute2f128_ps(r[c], r[4 + c], 0x20));
        _mm256_storeu_ps(dst + (c + 4) * ld, _mm256_permute2f128_ps(r[c], r[4 + c], 0x31));
    }
}
SD_TGT SD_INLINE void transpose_block(const double* src, i64 ls, double* dst, i64 ld, __m256d& bad) {
    __m256d r[4], t[4];
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_loadu_pd(src + i * ls);
        bad = _mm256_add_pd(bad, _mm256_sub_pd(r[i], r[i]));
    }
    t[0] = _mm256_unpacklo_pd(r[0], r[1]);
    t[1] = _mm256_unpackhi_pd(r[0], r[1]);
    t[2] = _mm256_unpacklo_pd(r[2], r[3]);
    t[3] = _mm256_unpackhi_pd(r[2], r[3]);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t[0], t[2], 0x20));
    _mm256_storeu_pd(dst + 2 * ld, _mm256_permute2f128_pd(t[0], t[2], 0x31));
    _mm256_storeu_pd(dst + ld, _mm256_permute2f128_pd(t[1], t[3], 0x20));
    _mm256_storeu_pd(dst + 3 * ld, _mm256_permute2f128_pd(t[1], t[3], 0x31));
}
#include "simd_dot.inc"
#include "simd_tile.inc"
#undef SD_TGT
}  // namespace avx2
#endif  // SD_HAVE_SIMD_DISPATCH

// ------------------------------------------------------------------- generic vectors
// GCC/clang vector types for register-blocked element-wise code (the stencil), as wide as
// the registers of the level a function is compiled for: 64 bytes (one zmm) for AVX-512,
// 32 (one ymm) for AVX2, 16 (one xmm) for SSE2. A type wider than the registers is not
// split into registers but kept on the stack (64-byte vectors under AVX2 ran the 5 x 5
// stencil 7x slower on a Zen 3 core: stores to the stack reloaded as vectors, which the
// store forwarding cannot serve). Lane-wise IEEE operations, so every width gives the
// same bits.
template <class T, int Bytes>
struct GVec {
    typedef T type __attribute__((vector_size(Bytes)));
    static constexpr int n = Bytes / int(sizeof(T));
};

// ------------------------------------------------------------------------- dispatch
/// out[n] = W[n, :] . v for n in [n0, n1) (W row-major, D columns).
template <class T>
inline void dot_rows(const T* W, i64 D, i64 n0, i64 n1, const T* v, T* out) {
#if SD_HAVE_SIMD_DISPATCH
    switch (level()) {
        case AVX512: avx512::dot_rows(W, D, n0, n1, v, out); return;
        case AVX2: avx2::dot_rows(W, D, n0, n1, v, out); return;
        default: break;
    }
#endif
    dot_rows_scalar(W, D, n0, n1, v, out);
}

/// out1[n] = W[n] . v and out2[n] = W[n] . vv in one pass over the rows [n0, n1).
template <class T>
inline void dot2_rows(const T* W, i64 D, i64 n0, i64 n1, const T* v, const T* vv, T* out1,
                      T* out2) {
#if SD_HAVE_SIMD_DISPATCH
    switch (level()) {
        case AVX512: avx512::dot2_rows(W, D, n0, n1, v, vv, out1, out2); return;
        case AVX2: avx2::dot2_rows(W, D, n0, n1, v, vv, out1, out2); return;
        default: break;
    }
#endif
    dot2_rows_scalar(W, D, n0, n1, v, vv, out1, out2);
}

/// First index i in [n0, n1) with c[i] > thr (NaN never compares greater), or n1.
template <class T>
inline i64 first_above(const T* c, i64 n0, i64 n1, T thr) {
#if SD_HAVE_SIMD_DISPATCH
    switch (level()) {
        case AVX512: return avx512::first_above(c, n0, n1, thr);
        case AVX2: return avx2::first_above(c, n0, n1, thr);
        default: break;
    }
#endif
    for (i64 i = n0; i < n1; ++i)
        if (c[i] > thr) return i;
    return n1;
}

/// outs[s][n] = W[n] . xs[s] for n in [n0, n1) and s < ns: several samples share one read of
/// each row (batch inference). Same summation order as dot_rows.
template <class T>
inline void dot_rows_batch(const T* W, i64 D, i64 n0, i64 n1, const T* const* xs,
                           T* const* outs, int ns) {
    int s = 0;
#if SD_HAVE_SIMD_DISPATCH
    switch (level()) {
        case AVX512:
            for (; s + 4 <= ns; s += 4) avx512::dot_rows_multi<T, 4>(W, D, n0, n1, xs + s, outs + s);
            for (; s < ns; ++s) avx512::dot_rows(W, D, n0, n1, xs[s], outs[s]);
            return;
        case AVX2:
            for (; s + 2 <= ns; s += 2) avx2::dot_rows_multi<T, 2>(W, D, n0, n1, xs + s, outs + s);
            for (; s < ns; ++s) avx2::dot_rows(W, D, n0, n1, xs[s], outs[s]);
            return;
        default: break;
    }
#endif
    for (; s < ns; ++s) dot_rows_scalar(W, D, n0, n1, xs[s], outs[s]);
}

}  // namespace simd
}  // namespace sd

// Compile an element-wise kernel `impl` (an always-inline template, plain C++) once per
// SIMD level and dispatch at run time: `name(args...)`. SD_MULTIVERSION_VEC does the same for
// a kernel written with generic vectors: `impl<Bytes>(args...)` gets the vector width of the
// level it is compiled for (GVec). Both are SD_MULTIVERSION_EACH, which takes the callee of
// each level.
#if SD_HAVE_SIMD_DISPATCH
#define SD_MULTIVERSION_EACH(name, f512, f2, fscalar)                                \
    template <class... A>                                                            \
    SD_TARGET_AVX512 auto name##_avx512(A... a) { return f512(a...); }               \
    template <class... A>                                                            \
    SD_TARGET_AVX2 auto name##_avx2(A... a) { return f2(a...); }                     \
    template <class... A>                                                            \
    auto name##_scalar(A... a) { return fscalar(a...); }                             \
    template <class... A>                                                            \
    inline auto name(A... a) {                                                       \
        switch (::sd::simd::level()) {                                               \
            case ::sd::simd::AVX512: return name##_avx512(a...);                     \
            case ::sd::simd::AVX2: return name##_avx2(a...);                         \
            default: return name##_scalar(a...);                                     \
        }                                                                            \
    }
#define SD_MULTIVERSION(name, impl) SD_MULTIVERSION_EACH(name, impl, impl, impl)
#define SD_MULTIVERSION_VEC(name, impl) SD_MULTIVERSION_EACH(name, impl<64>, impl<32>, impl<16>)
#else
#define SD_MULTIVERSION(name, impl)                                                  \
    template <class... A>                                                            \
    inline auto name(A... a) { return impl(a...); }
#define SD_MULTIVERSION_VEC(name, impl)                                              \
    template <class... A>                                                            \
    inline auto name(A... a) { return impl<16>(a...); }
#endif
