// BLAS access of the batch rules (DreamComp, Krotov-Hopfield): function pointers handed in at
// run time, no link-time BLAS.
//
// The Python side takes sgemm / dgemm from scipy's `scipy.linalg.cython_blas.__pyx_capi__`
// (PyCapsules; their names are the C signatures, checked by the bindings) and passes them to
// the fit call, so the kernels run a tuned BLAS (scipy's OpenBLAS, MKL, ...) without the
// extension depending on one at build or load time. The calling convention is Fortran's:
// every argument by pointer, column-major matrices, 32-bit integers (scipy's cython_blas
// always takes `int *`; it converts for an ILP64 BLAS itself).
#pragma once

#include <climits>
#include <cmath>

#include "common.hpp"
#include "simd.hpp"

namespace sd {
namespace blas {

typedef void (*sgemm_t)(char* transa, char* transb, int* m, int* n, int* k, float* alpha, float* a,
                        int* lda, float* b, int* ldb, float* beta, float* c, int* ldc);
typedef void (*dgemm_t)(char* transa, char* transb, int* m, int* n, int* k, double* alpha, double* a,
                        int* lda, double* b, int* ldb, double* beta, double* c, int* ldc);

/// The gemm routines of one BLAS (either may be null when the caller never needs it).
struct Gemm {
    sgemm_t s = nullptr;
    dgemm_t d = nullptr;
};

/// True when every dimension of the products below fits the BLAS's `int`.
inline bool fits_int(i64 a, i64 b, i64 c) { return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX; }

/// C[b, r] = sum_j A[r, j] X[b, j] for the `rows` rows r of A (row-major, K columns) and the
/// B rows b of X (row-major, K columns): C is sample-major, row b at C + b * ldc.
///
/// Row-major A is column-major A^T (K x rows), row-major X is column-major X^T (K x B), and C
/// read column-major is the (rows x B) matrix A X^T with leading dimension ldc: the call is
/// gemm('T', 'N', rows, B, K, A, X, C). A block of rows of A is a block of columns of C
/// (C + r0, same ldc): each block is one call.
inline void product(const Gemm& g, const float* A, i64 rows, i64 K, const float* X, i64 B, float* C, i64 ldc) {
    if (rows <= 0 || B <= 0) return;
    char ta = 'T', tb = 'N';
    int m = int(rows), n = int(B), k = int(K), lda = int(K), ldb = int(K), ldcc = int(ldc);
    float one = 1.0f, zero = 0.0f;
    g.s(&ta, &tb, &m, &n, &k, &one, const_cast<float*>(A), &lda, const_cast<float*>(X), &ldb, &zero, C, &ldcc);
}

inline void product(const Gemm& g, const double* A, i64 rows, i64 K, const double* X, i64 B, double* C, i64 ldc) {
    if (rows <= 0 || B <= 0) return;
    char ta = 'T', tb = 'N';
    int m = int(rows), n = int(B), k = int(K), lda = int(K), ldb = int(K), ldcc = int(ldc);
    double one = 1.0, zero = 0.0;
    g.d(&ta, &tb, &m, &n, &k, &one, const_cast<double*>(A), &lda, const_cast<double*>(X), &ldb, &zero, C, &ldcc);
}

// ------------------------------------------------ float32 products: own AVX-512 kernel
// OpenBLAS builds with DYNAMIC_ARCH pick their kernels by CPU model; a CPU they do not know
// (AMD Zen 5 in 2026, e.g.) gets the AVX2 "Haswell" kernels, half of what its 512-bit FMA
// units can do. The float32 products of the batch rules only feed the screening (any
// summation order is within its bound, see batch_product.hpp), so with AVX-512 they use
// this kernel: dot-product form, a tile of kDotR rows of A by kDotS samples (24 zmm
// accumulators over 16 columns each), reading A and X where they are (no packing, so the
// rows a batch changes need no re-packing), one transposing reduction per tile. Measured
// on Zen 5: ~210 GF/s per core against OpenBLAS's ~115.
constexpr int kDotR = 4;
constexpr int kDotS = 6;

/// Rows of X (and of C) that product_f32 touches for B samples: B rounded up to kDotS
/// (the extra rows of X must be zero; the extra rows of C are written).
inline i64 padded_samples(i64 B) { return (B + kDotS - 1) / kDotS * kDotS; }

#if SD_HAVE_SIMD_DISPATCH
namespace avx512k {
/// Lane i of the result: the horizontal sum of the i-th vector.
SD_TARGET_AVX512 SD_INLINE __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    const __m512 v = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x88), _mm512_shuffle_f32x4(u0, u1, 0xDD));
    __m512 w = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    w = _mm512_add_ps(w, _mm512_permute_ps(w, 0xB1));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, w));
}

/// C[s * ldc + r] = A_r . X_s for r < R (R <= 4 rows at A, stride K) and s < kDotS.
template <int R>
SD_TARGET_AVX512 SD_INLINE void tile(const float* A, const float* X, i64 K, float* C, i64 ldc) {
    constexpr int S = kDotS;
    __m512 acc[4][S];
    for (int r = 0; r < 4; ++r)
        for (int s = 0; s < S; ++s) acc[r][s] = _mm512_setzero_ps();
    i64 k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 a[R];
        for (int r = 0; r < R; ++r) a[r] = _mm512_loadu_ps(A + r * K + k);
        for (int s = 0; s < S; ++s) {
            const __m512 x = _mm512_loadu_ps(X + s * K + k);
            for (int r = 0; r < R; ++r) acc[r][s] = _mm512_fmadd_ps(a[r], x, acc[r][s]);
        }
    }
    if (k < K) {
        const __mmask16 m = __mmask16((1u << (K - k)) - 1u);
        __m512 a[R];
        for (int r = 0; r < R; ++r) a[r] = _mm512_maskz_loadu_ps(m, A + r * K + k);
        for (int s = 0; s < S; ++s) {
            const __m512 x = _mm512_maskz_loadu_ps(m, X + s * K + k);
            for (int r = 0; r < R; ++r) acc[r][s] = _mm512_fmadd_ps(a[r], x, acc[r][s]);
        }
    }
    for (int s = 0; s < S; ++s) {
        const __m128 v = hsum4(acc[0][s], acc[1][s], acc[2][s], acc[3][s]);
        if (R == 4)
            _mm_storeu_ps(C + s * ldc, v);
        else
            _mm_mask_storeu_ps(C + s * ldc, __mmask8((1u << R) - 1u), v);
    }
}

/// C[b * ldc + r] = A_r . X_b for r < rows, b < Bp (Bp a multiple of kDotS).
SD_TARGET_AVX512 inline void product_f32(const float* A, i64 rows, i64 K, const float* X, i64 Bp, float* C,
                                         i64 ldc) {
    // blocks of 128 rows (~400 KB, in L2) swept by every tile of samples (in L1)
    constexpr i64 kBlock = 128;
    for (i64 n0 = 0; n0 < rows; n0 += kBlock) {
        const i64 n1 = n0 + kBlock < rows ? n0 + kBlock : rows;
        for (i64 b = 0; b < Bp; b += kDotS) {
            const float* x = X + b * K;
            float* c = C + b * ldc;
            i64 n = n0;
            for (; n + 4 <= n1; n += 4) tile<4>(A + n * K, x, K, c + n, ldc);
            switch (n1 - n) {
                case 3: tile<3>(A + n * K, x, K, c + n, ldc); break;
                case 2: tile<2>(A + n * K, x, K, c + n, ldc); break;
                case 1: tile<1>(A + n * K, x, K, c + n, ldc); break;
                default: break;
            }
        }
    }
}
}  // namespace avx512k
#endif

/// True when product_f32 runs the AVX-512 kernel (else the BLAS's sgemm).
inline bool own_f32_kernel() {
#if SD_HAVE_SIMD_DISPATCH
    return simd::level() == simd::AVX512;
#else
    return false;
#endif
}

/// C[b * ldc + r] = A_r . X_b (float32, any summation order) for the `rows` rows of A and
/// the first B rows of X; with `own` (own_f32_kernel() when the buffers were sized) X and C
/// must have padded_samples(B) rows, the extra ones of X zero.
inline void product_f32(const Gemm& g, bool own, const float* A, i64 rows, i64 K, const float* X, i64 B, float* C,
                        i64 ldc) {
#if SD_HAVE_SIMD_DISPATCH
    if (own) {
        avx512k::product_f32(A, rows, K, X, padded_samples(B), C, ldc);
        return;
    }
#endif
    (void)own;
    product(g, A, rows, K, X, B, C, ldc);
}

// --------------------------------------------------------- fixed-order float64 dot products
/// sum_j a_j b_j in float64, in one fixed order: term j goes to accumulator j % 8, the
/// accumulators are added in a fixed tree. No fused multiply-add (the build uses
/// -ffp-contract=off), so every SIMD level, thread and call gives the same bits; float32
/// inputs give exact products (24 + 24 bits < 53).
template <class T>
SD_INLINE double dot64_impl(const T* SD_RESTRICT a, const T* SD_RESTRICT b, i64 n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    i64 j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; ++l) acc[l] += double(a[j + l]) * double(b[j + l]);
    for (int l = 0; j < n; ++j, ++l) acc[l] += double(a[j]) * double(b[j]);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
SD_MULTIVERSION(dot64, dot64_impl)

/// Euclidean norm in float64 (dot64 order).
template <class T>
inline double norm64(const T* a, i64 n) {
    return std::sqrt(dot64(a, a, n));
}

}  // namespace blas
}  // namespace sd
