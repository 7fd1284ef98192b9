// Lateral stencil on the neuron grid: 2D correlation with zero padding and a per-row scale
// (sparsedream_fast/lateral.py, Stencil):
//   (L x)[y, x] = row_scale[n] * sum_{a,b=-r..r} kernel[a+r, b+r] * x[y+a, x+b].
// Cost O(N r^2) (or O(N r) on the box path), never an N x N product.
#pragma once

#include "common.hpp"
#include "simd.hpp"

namespace sd {

template <class T>
struct StencilView {
    const T* kernel = nullptr;    ///< (2r+1)^2, row-major, centre 0
    i64 radius = 0;
    i64 rows = 0, cols = 0;       ///< grid
    const T* row_scale = nullptr; ///< (N,) or nullptr for all ones
    bool uniform = false;         ///< all off-centre kernel entries equal
};

/// Entries of per-thread scratch the box path needs for grid rows [y0, y1).
template <class T>
inline i64 stencil_tmp_size(const StencilView<T>& st, i64 y0, i64 y1) {
    return (y1 - y0 + 2 * st.radius) * st.cols;
}

/// Direct correlation: for each output, the terms are added in kernel row-major order,
/// zero kernel entries skipped, exactly as the reference (Stencil.matvec), so the result
/// is the reference's to the bit.
template <class T>
SD_INLINE void stencil_direct_impl(StencilView<T> st, const T* SD_RESTRICT x, T* SD_RESTRICT out,
                                   i64 y0, i64 y1) {
    const i64 r = st.radius, side = 2 * r + 1, cols = st.cols, rows = st.rows;
    for (i64 y = y0; y < y1; ++y) {
        T* o = out + y * cols;
        for (i64 i = 0; i < cols; ++i) o[i] = T(0);
        for (i64 a = 0; a < side; ++a) {
            const i64 yy = y + a - r;
            if (yy < 0 || yy >= rows) continue;
            const T* xr = x + yy * cols;
            for (i64 b = 0; b < side; ++b) {
                const T w = st.kernel[a * side + b];
                if (w == T(0)) continue;
                const i64 db = b - r;
                const i64 lo = db < 0 ? -db : 0;
                const i64 hi = db > 0 ? cols - db : cols;
                for (i64 i = lo; i < hi; ++i) o[i] = o[i] + w * xr[i + db];
            }
        }
        if (st.row_scale) {
            const T* sc = st.row_scale + y * cols;
            for (i64 i = 0; i < cols; ++i) o[i] = o[i] * sc[i];
        }
    }
}

/// Box path (all off-centre entries equal to s): s * (sum of the neighbours), the sum taken
/// separably (horizontal window sums, then vertical) with the centre left out of its own
/// row's sum, never subtracted, so no cancellation: equal to the direct sum up to rounding
/// of the reordered additions (a few ulp). tmp: stencil_tmp_size entries.
template <class T>
SD_INLINE void stencil_box_impl(StencilView<T> st, const T* SD_RESTRICT x, T* SD_RESTRICT out,
                                i64 y0, i64 y1, T* SD_RESTRICT tmp) {
    const i64 r = st.radius, cols = st.cols, rows = st.rows;
    const T s = st.kernel[0];
    const i64 ylo = y0 - r < 0 ? 0 : y0 - r;
    const i64 yhi = y1 + r > rows ? rows : y1 + r;
    // full horizontal window sums of the rows [ylo, yhi)
    for (i64 yy = ylo; yy < yhi; ++yy) {
        T* h = tmp + (yy - ylo) * cols;
        const T* xr = x + yy * cols;
        for (i64 i = 0; i < cols; ++i) h[i] = T(0);
        for (i64 db = -r; db <= r; ++db) {
            const i64 lo = db < 0 ? -db : 0;
            const i64 hi = db > 0 ? cols - db : cols;
            for (i64 i = lo; i < hi; ++i) h[i] = h[i] + xr[i + db];
        }
    }
    for (i64 y = y0; y < y1; ++y) {
        T* o = out + y * cols;
        const T* xr = x + y * cols;
        for (i64 i = 0; i < cols; ++i) o[i] = T(0);
        for (i64 db = -r; db <= r; ++db) {  // own row without the centre
            if (db == 0) continue;
            const i64 lo = db < 0 ? -db : 0;
            const i64 hi = db > 0 ? cols - db : cols;
            for (i64 i = lo; i < hi; ++i) o[i] = o[i] + xr[i + db];
        }
        for (i64 a = -r; a <= r; ++a) {
            const i64 yy = y + a;
            if (a == 0 || yy < ylo || yy >= yhi) continue;
            const T* h = tmp + (yy - ylo) * cols;
            for (i64 i = 0; i < cols; ++i) o[i] = o[i] + h[i];
        }
        if (st.row_scale) {
            const T* sc = st.row_scale + y * cols;
            for (i64 i = 0; i < cols; ++i) o[i] = (s * o[i]) * sc[i];
        } else {
            for (i64 i = 0; i < cols; ++i) o[i] = s * o[i];
        }
    }
}

SD_MULTIVERSION(stencil_direct, stencil_direct_impl)
SD_MULTIVERSION(stencil_box, stencil_box_impl)

/// True when the box path is used for this stencil (uniform kernel, radius >= 2: at radius
/// 1 the direct sum costs the same).
template <class T>
inline bool stencil_uses_box(const StencilView<T>& st) {
    return st.uniform && st.radius >= 2;
}

/// out = L x on grid rows [y0, y1) (out and x have N entries; only those rows of out are
/// written). tmp: stencil_tmp_size(st, y0, y1) entries (used by the box path).
template <class T>
inline void stencil_rows(const StencilView<T>& st, const T* x, T* out, i64 y0, i64 y1, T* tmp) {
    if (y1 <= y0) return;
    if (stencil_uses_box(st))
        stencil_box(st, x, out, y0, y1, tmp);
    else
        stencil_direct(st, x, out, y0, y1);
}

}  // namespace sd
