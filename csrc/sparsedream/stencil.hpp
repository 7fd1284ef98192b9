// Lateral stencil on the neuron grid: 2D correlation with zero padding and a per-row scale
// (sparsedream_fast/lateral.py, Stencil):
//   (L x)[y, x] = row_scale[n] * sum_{a,b=-r..r} kernel[a+r, b+r] * x[y+a, x+b].
// Cost O(N r^2) (or O(N r) on the box path), never an N x N product.
//
// The input rows a range needs (with r halo rows) are copied into a zero-padded image; each
// block of 16 outputs then accumulates its taps in registers. The direct sum adds the
// products in the reference's order (kernel row-major, zero entries skipped, padding adding
// w * 0), so its result is the reference's to the bit.
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

/// Widest output block: one 64-byte vector (16 float); the scratch's slack is sized for it.
constexpr i64 kStencilBlock = 16;
/// The box path (separable sums) is used from this radius on; below it the direct sum
/// costs about the same and matches the reference bit for bit.
constexpr i64 kStencilBoxMinRadius = 3;

template <class T>
inline bool stencil_uses_box(const StencilView<T>& st) {
    return st.uniform && st.radius >= kStencilBoxMinRadius;
}

/// Scratch entries one thread needs for grid rows [y0, y1) (padded image, box sums).
template <class T>
inline i64 stencil_tmp_size(const StencilView<T>& st, i64 y0, i64 y1) {
    const i64 r = st.radius, cw = st.cols + 2 * r;
    const i64 cb = (st.cols + kStencilBlock - 1) / kStencilBlock * kStencilBlock;
    const i64 nr = y1 - y0 + 2 * r;
    return nr * cw + 2 * kStencilBlock + nr * cb;
}

/// Copy rows [y0 - r, y1 + r) of x into the zero-padded image P (row stride cols + 2r).
template <class T>
SD_INLINE void stencil_pad(const StencilView<T>& st, const T* SD_RESTRICT x, T* SD_RESTRICT P, i64 y0, i64 y1) {
    const i64 r = st.radius, cols = st.cols, cw = cols + 2 * r, nr = y1 - y0 + 2 * r;
    for (i64 py = 0; py < nr; ++py) {
        const i64 y = y0 - r + py;
        T* row = P + py * cw;
        if (y < 0 || y >= st.rows) {
            for (i64 i = 0; i < cw; ++i) row[i] = T(0);
            continue;
        }
        for (i64 i = 0; i < r; ++i) row[i] = row[r + cols + i] = T(0);
        const T* src = x + y * cols;
        for (i64 i = 0; i < cols; ++i) row[r + i] = src[i];
    }
    for (i64 i = 0; i < 2 * kStencilBlock; ++i) P[nr * cw + i] = T(0);  // slack read by the last block
}

#define SD_VLOAD(v, p) __builtin_memcpy(&(v), (p), sizeof(v))

/// o[l] = acc[l] (* sc[l]) for l < n (n <= lanes).
template <class T, class V>
SD_INLINE void stencil_store(V acc, T* SD_RESTRICT o, const T* SD_RESTRICT sc, i64 n) {
    constexpr i64 B = i64(sizeof(V) / sizeof(T));
    if (sc) {
        if (n == B) {
            V s;
            SD_VLOAD(s, sc);
            acc = acc * s;
        } else {
            for (i64 l = 0; l < n; ++l) acc[l] = acc[l] * sc[l];
        }
    }
    if (n == B)
        __builtin_memcpy(o, &acc, sizeof(acc));
    else
        for (i64 l = 0; l < n; ++l) o[l] = acc[l];
}

/// NB consecutive output blocks of one grid row: NB independent add chains in flight (an
/// add's latency is 3-4 cycles and two issue per cycle, so up to eight keep the adders busy).
template <int VB, class T, int NB>
SD_INLINE void stencil_direct_blocks(const StencilView<T>& st, const T* base, i64 cw, i64 x0, T* o,
                                     const T* sc, i64 cols) {
    using V = typename simd::GVec<T, VB>::type;
    constexpr i64 B = simd::GVec<T, VB>::n;
    const i64 r = st.radius, side = 2 * r + 1;
    V acc[NB];
    for (int j = 0; j < NB; ++j) acc[j] = V{};
    for (i64 a = 0; a < side; ++a)  // kernel row-major, zero entries skipped
        for (i64 b = 0; b < side; ++b) {
            const T w = st.kernel[a * side + b];
            if (w == T(0)) continue;
            const V wv = V{} + w;
            const T* src = base + (a - r) * cw + (b - r) + x0;
            for (int j = 0; j < NB; ++j) {
                V v;
                SD_VLOAD(v, src + j * B);
                acc[j] = acc[j] + wv * v;
            }
        }
    for (int j = 0; j < NB; ++j) {
        const i64 xj = x0 + j * B;
        stencil_store<T, V>(acc[j], o + xj, sc ? sc + xj : nullptr, cols - xj < B ? cols - xj : B);
    }
}

template <int VB, class T>
SD_INLINE void stencil_direct_impl(StencilView<T> st, const T* SD_RESTRICT x, T* SD_RESTRICT out, i64 y0, i64 y1,
                                   T* SD_RESTRICT tmp) {
    constexpr i64 B = simd::GVec<T, VB>::n;
    const i64 r = st.radius, cols = st.cols, cw = cols + 2 * r;
    T* P = tmp;
    stencil_pad(st, x, P, y0, y1);
    for (i64 y = y0; y < y1; ++y) {
        const T* base = P + (y - y0 + r) * cw + r;
        T* o = out + y * cols;
        const T* sc = st.row_scale ? st.row_scale + y * cols : nullptr;
        // the row's blocks in groups of at most eight, as even as can be (80 columns of
        // float32 with AVX2: 5 + 5 blocks, not 8 + 2: a group of two waits on its adds)
        const i64 nblk = (cols + B - 1) / B, ngrp = (nblk + 7) / 8;
        i64 x0 = 0;
        for (i64 g = 0; g < ngrp; ++g) {
            const i64 nb = (nblk - x0 / B) / (ngrp - g);
            switch (nb) {
            case 8: stencil_direct_blocks<VB, T, 8>(st, base, cw, x0, o, sc, cols); break;
            case 7: stencil_direct_blocks<VB, T, 7>(st, base, cw, x0, o, sc, cols); break;
            case 6: stencil_direct_blocks<VB, T, 6>(st, base, cw, x0, o, sc, cols); break;
            case 5: stencil_direct_blocks<VB, T, 5>(st, base, cw, x0, o, sc, cols); break;
            case 4: stencil_direct_blocks<VB, T, 4>(st, base, cw, x0, o, sc, cols); break;
            case 3: stencil_direct_blocks<VB, T, 3>(st, base, cw, x0, o, sc, cols); break;
            case 2: stencil_direct_blocks<VB, T, 2>(st, base, cw, x0, o, sc, cols); break;
            case 1: stencil_direct_blocks<VB, T, 1>(st, base, cw, x0, o, sc, cols); break;
            default: break;
            }
            x0 += nb * B;
        }
    }
}

/// NB consecutive output blocks of the box path for padded row pc.
template <int VB, class T, int NB>
SD_INLINE void stencil_box_blocks(const StencilView<T>& st, const T* P, const T* H, i64 cw, i64 cb, i64 pc, i64 x0,
                                  T s, T* o, const T* sc, i64 cols) {
    using V = typename simd::GVec<T, VB>::type;
    constexpr i64 B = simd::GVec<T, VB>::n;
    const i64 r = st.radius;
    const T* prow = P + pc * cw + x0;
    V acc[NB];
    for (int j = 0; j < NB; ++j) acc[j] = V{};
    for (i64 b = 0; b <= 2 * r; ++b) {  // own row without the centre
        if (b == r) continue;
        for (int j = 0; j < NB; ++j) {
            V v;
            SD_VLOAD(v, prow + b + j * B);
            acc[j] = acc[j] + v;
        }
    }
    for (i64 a = 0; a <= 2 * r; ++a) {  // the other rows' window sums
        if (a == r) continue;
        const T* h = H + (pc + a - r) * cb + x0;
        for (int j = 0; j < NB; ++j) {
            V v;
            SD_VLOAD(v, h + j * B);
            acc[j] = acc[j] + v;
        }
    }
    for (int j = 0; j < NB; ++j) {
        const i64 xj = x0 + j * B;
        stencil_store<T, V>((V{} + s) * acc[j], o + xj, sc ? sc + xj : nullptr, cols - xj < B ? cols - xj : B);
    }
}

/// Box path (all off-centre entries equal to s): s * (sum of the neighbours), taken
/// separably (horizontal window sums H, then vertical), the centre left out of its own
/// row's sum (never subtracted, so no cancellation). Equal to the direct sum up to the
/// rounding of the reordered additions (a few ulp).
template <int VB, class T>
SD_INLINE void stencil_box_impl(StencilView<T> st, const T* SD_RESTRICT x, T* SD_RESTRICT out, i64 y0, i64 y1,
                                T* SD_RESTRICT tmp) {
    using V = typename simd::GVec<T, VB>::type;
    constexpr i64 B = simd::GVec<T, VB>::n;
    const i64 r = st.radius, cols = st.cols, cw = cols + 2 * r;
    const i64 cb = (cols + kStencilBlock - 1) / kStencilBlock * kStencilBlock;
    const i64 nr = y1 - y0 + 2 * r;
    const T s = st.kernel[0];
    T* P = tmp;
    T* H = P + nr * cw + 2 * kStencilBlock;
    stencil_pad(st, x, P, y0, y1);
    for (i64 py = 0; py < nr; ++py) {  // H[py][x] = sum_{b=-r..r} x[y, x+b]
        const T* prow = P + py * cw;
        T* h = H + py * cb;
        for (i64 x0 = 0; x0 < cb; x0 += B) {
            V acc = V{};
            for (i64 b = 0; b <= 2 * r; ++b) {
                V v;
                SD_VLOAD(v, prow + x0 + b);
                acc = acc + v;
            }
            __builtin_memcpy(h + x0, &acc, sizeof(acc));
        }
    }
    for (i64 y = y0; y < y1; ++y) {
        const i64 pc = y - y0 + r;
        T* o = out + y * cols;
        const T* sc = st.row_scale ? st.row_scale + y * cols : nullptr;
        i64 x0 = 0;
        for (; x0 + 4 * B <= cols; x0 += 4 * B) stencil_box_blocks<VB, T, 4>(st, P, H, cw, cb, pc, x0, s, o, sc, cols);
        for (; x0 < cols; x0 += B) stencil_box_blocks<VB, T, 1>(st, P, H, cw, cb, pc, x0, s, o, sc, cols);
    }
}

SD_MULTIVERSION_VEC(stencil_direct, stencil_direct_impl)
SD_MULTIVERSION_VEC(stencil_box, stencil_box_impl)

/// out = L x on grid rows [y0, y1) (out and x have N entries; only those rows of out are
/// written). tmp: stencil_tmp_size(st, y0, y1) entries.
template <class T>
inline void stencil_rows(const StencilView<T>& st, const T* x, T* out, i64 y0, i64 y1, T* tmp) {
    if (y1 <= y0) return;
    if (stencil_uses_box(st))
        stencil_box(st, x, out, y0, y1, tmp);
    else
        stencil_direct(st, x, out, y0, y1, tmp);
}

}  // namespace sd
