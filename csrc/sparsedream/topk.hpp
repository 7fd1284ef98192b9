// Deterministic top-k: the k largest entries of c in the total order (-c[n], n) ascending,
// that is by value descending with ties to the lower index (docs/design.md, rule A.3).
// Small k: one pass with an insertion buffer. Large k: nth_element + sort with the same
// total order. Both give the same list. A range may be done per thread and the per-thread
// lists merged (topk_merge) in range order.
#pragma once

#include <algorithm>

#include "common.hpp"
#include "simd.hpp"

namespace sd {

/// Above this k the selection uses nth_element instead of an insertion buffer.
constexpr i64 kTopkInsertionMax = 48;

/// True when (a, ia) comes before (b, ib) in the order (-value, index).
template <class T>
SD_INLINE bool topk_before(T a, i64 ia, T b, i64 ib) {
    return a > b || (a == b && ia < ib);
}

/// Top-k (k <= kTopkInsertionMax) of c over indices [n0, n1) into out, ascending in the order
/// (-c, n), by one pass with an insertion buffer; returns the count min(k, n1 - n0).
template <class T>
inline i64 topk_small(const T* c, i64 n0, i64 n1, i64 k, i64* out) {
    const i64 len = n1 - n0;
    if (len <= 0 || k <= 0) return 0;
    const i64 m = k < len ? k : len;
    // out[0..cnt) sorted; indices arrive ascending, so a newcomer equal to an entry goes
    // after it: only a strictly larger value moves forward
    T val[kTopkInsertionMax];
    // entry n into slot pos or earlier; the entries it beats move one slot back
    auto insert = [&](i64 pos, i64 n) {
        const T x = c[n];
        while (pos > 0 && x > val[pos - 1]) {
            val[pos] = val[pos - 1];
            out[pos] = out[pos - 1];
            --pos;
        }
        val[pos] = x;
        out[pos] = n;
    };
    i64 cnt = 0;
    i64 n = n0;
    for (; n < n1 && cnt < m; ++n) insert(cnt++, n);
    T worst = val[m - 1];
    for (;; ++n) {
        n = simd::first_above(c, n, n1, worst);  // skip everything not above the k-th
        if (n >= n1) break;
        insert(m - 1, n);
        worst = val[m - 1];
    }
    return m;
}

/// Top-k of c over indices [n0, n1) into out (ascending order (-c, n)); returns the count,
/// min(k, n1 - n0). `scratch` needs n1 - n0 entries when k > kTopkInsertionMax.
template <class T>
inline i64 topk_range(const T* c, i64 n0, i64 n1, i64 k, i64* out, i64* scratch) {
    if (k <= kTopkInsertionMax) return topk_small(c, n0, n1, k, out);
    const i64 len = n1 - n0;
    if (len <= 0) return 0;
    const i64 m = k < len ? k : len;
    for (i64 i = 0; i < len; ++i) scratch[i] = n0 + i;
    auto before = [c](i64 a, i64 b) { return topk_before(c[a], a, c[b], b); };
    if (m < len) std::nth_element(scratch, scratch + m, scratch + len, before);
    std::sort(scratch, scratch + m, before);
    std::copy(scratch, scratch + m, out);
    return m;
}

/// Top-k of the candidates cand[0..ncand) (indices into c) in the order (-c, n): out (k,).
/// `cand` is reordered.
template <class T>
inline void topk_merge(const T* c, i64* cand, i64 ncand, i64 k, i64* out) {
    auto before = [c](i64 a, i64 b) { return topk_before(c[a], a, c[b], b); };
    const i64 m = k < ncand ? k : ncand;
    std::partial_sort(cand, cand + m, cand + ncand, before);
    std::copy(cand, cand + m, out);
}

/// Whole-array top-k (single thread).
template <class T>
inline void topk(const T* c, i64 n, i64 k, i64* out, i64* scratch) {
    topk_range(c, 0, n, k, out, scratch);
}

}  // namespace sd
