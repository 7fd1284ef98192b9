// Element-wise kernels on rows of W and vectors of length D (reconstruction, error,
// multiplicative update, bounds, numpy-exact row sums). Plain C++ compiled per SIMD level
// by SD_MULTIVERSION; no lane reductions, so every level gives the same bits. The
// expressions follow the numpy reference operation by operation (no FMA contraction:
// the build uses -ffp-contract=off), so float32 results match numpy's to the bit.
#pragma once

#include <cmath>

#include "common.hpp"
#include "rule_a_update.hpp"
#include "simd.hpp"

namespace sd {
namespace rows {

/// y += a * x (length n).
template <class T>
SD_INLINE void axpy_impl(T* SD_RESTRICT y, T a, const T* SD_RESTRICT x, i64 n) {
    for (i64 d = 0; d < n; ++d) y[d] = y[d] + a * x[d];
}
SD_MULTIVERSION(axpy, axpy_impl)

/// The multiplicative update of one weight (rule_a_update.hpp: 0 where it would change sign).
template <class T>
SD_INLINE T updated(T w, T a, T g) {
    return rule_a_updated(w, a, g);
}

/// Multiplicative update of one row: w += (a * w) * g.
template <class T>
SD_INLINE void update_row_impl(T* SD_RESTRICT w, T a, const T* SD_RESTRICT g, i64 n) {
    for (i64 d = 0; d < n; ++d) w[d] = updated(w[d], a, g[d]);
}
SD_MULTIVERSION(update_row, update_row_impl)

/// True when update_row(w, a, g, n) would write only finite values (the same expression,
/// nothing stored), so that a step whose update is not finite can stop before it writes.
/// Lane-wise sums of x - x (0, or NaN for an inf or NaN x) vectorize without reassociation.
template <class T>
SD_INLINE bool update_row_finite_impl(const T* SD_RESTRICT w, T a, const T* SD_RESTRICT g, i64 n) {
    constexpr int L = 16;
    T acc[L] = {};
    i64 d = 0;
    for (; d + L <= n; d += L)
        for (int l = 0; l < L; ++l) {
            const T x = updated(w[d + l], a, g[d + l]);
            acc[l] += x - x;
        }
    T s = T(0);
    for (; d < n; ++d) {
        const T x = updated(w[d], a, g[d]);
        s += x - x;
    }
    for (int l = 0; l < L; ++l) s += acc[l];
    return s == T(0);
}
SD_MULTIVERSION(update_row_finite, update_row_finite_impl)

/// e = clip(v - r, -clip, clip) (when use_clip), g = e / max(r, prec) (numpy maximum).
template <class T>
SD_INLINE void error_impl(const T* SD_RESTRICT v, const T* SD_RESTRICT r, T* SD_RESTRICT e,
                          T* SD_RESTRICT g, i64 n, bool use_clip, T clip, T prec) {
    const T lo = -clip;
    if (use_clip) {
        for (i64 d = 0; d < n; ++d) {
            T x = v[d] - r[d];
            x = (x != x || x > lo) ? x : lo;
            x = (x != x || x < clip) ? x : clip;
            e[d] = x;
        }
    } else {
        for (i64 d = 0; d < n; ++d) e[d] = v[d] - r[d];
    }
    for (i64 d = 0; d < n; ++d) {
        T m = (r[d] != r[d] || r[d] > prec) ? r[d] : prec;
        g[d] = e[d] / m;
    }
}
SD_MULTIVERSION(error_and_gain, error_impl)

/// x = clip(x, lo, hi) in place, numpy semantics (NaN stays NaN, -0 becomes lo = +0).
template <class T>
SD_INLINE void clip_impl(T* SD_RESTRICT x, i64 n, T lo, T hi) {
    for (i64 d = 0; d < n; ++d) {
        T a = x[d];
        a = (a != a || a > lo) ? a : lo;
        a = (a != a || a < hi) ? a : hi;
        x[d] = a;
    }
}
SD_MULTIVERSION(clip, clip_impl)

/// vv = v * v.
template <class T>
SD_INLINE void square_impl(const T* SD_RESTRICT v, T* SD_RESTRICT vv, i64 n) {
    for (i64 d = 0; d < n; ++d) vv[d] = v[d] * v[d];
}
SD_MULTIVERSION(square, square_impl)

/// numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src), reproduced
/// exactly, so rowsum(W) equals numpy's W.sum(axis=1) to the bit.
template <class T>
inline T pairwise_sum_impl(const T* a, i64 n) {  // recursive: not always_inline
    if (n < 8) {
        T res = 0;
        for (i64 i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        T r[8];
        for (int j = 0; j < 8; ++j) r[j] = a[j];
        i64 i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; ++j) r[j] += a[i + j];
        T res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    i64 n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum_impl(a, n2) + pairwise_sum_impl(a + n2, n - n2);
}

/// rowsum[n] = sum of row n of W (numpy-exact) for n in [n0, n1).
template <class T>
SD_INLINE void row_sums_impl(const T* W, i64 D, i64 n0, i64 n1, T* rowsum) {
    for (i64 n = n0; n < n1; ++n) rowsum[n] = pairwise_sum_impl(W + n * D, D);
}
SD_MULTIVERSION(row_sums, row_sums_impl)

/// Clip rows [n0, n1) of W to [0, hi] and, when rowsum != nullptr, recompute their sums.
template <class T>
SD_INLINE void clip_rows_impl(T* W, i64 D, i64 n0, i64 n1, T hi, T* rowsum) {
    for (i64 n = n0; n < n1; ++n) {
        clip_impl(W + n * D, D, T(0), hi);
        if (rowsum) rowsum[n] = pairwise_sum_impl(W + n * D, D);
    }
}
SD_MULTIVERSION(clip_rows, clip_rows_impl)

/// Clip one row to [0, hi] in place (clip_impl); true when a value changed (or is NaN).
template <class T>
SD_INLINE bool clip_row_changed_impl(T* SD_RESTRICT x, i64 n, T hi) {
    int changed = 0;
    for (i64 d = 0; d < n; ++d) {
        const T a = x[d];
        T c = (a != a || a > T(0)) ? a : T(0);
        c = (c != c || c < hi) ? c : hi;
        changed |= !(c == a);
        x[d] = c;
    }
    return changed != 0;
}
SD_MULTIVERSION(clip_row_changed, clip_row_changed_impl)

}  // namespace rows
}  // namespace sd
