// The product of a minibatch with a weight matrix and the per-sample ranking the batch rules
// need (DreamComp: the first unit; Krotov-Hopfield: the first and the k-th), on a Team.
//
// A (rows, K) holds the rows that compete (DreamComp: W; Krotov-Hopfield: sign(W)|W|^(p-1));
// a batch is the rows X[idx[b]] (B of them, K columns). The product is taken sample-major,
// P[b, n] = A_n . x_b (one gemm per block of rows of A, the blocks spread over the threads;
// each sample's values are then contiguous for the per-sample phase, also on the threads).
// Two ways to rank, both giving the ranking of the exact products up to near-ties within
// float64 rounding (the float64 re-check sums exact float32 products in a fixed order):
//
// Screened (the default): P32 = fl32(A) fl32(X)^T (sgemm) differs from the exact A X^T by at
// most e_b = c max_n ||A_n|| ||x_b|| (c = 2 (K + 4) u32, which covers rounding both factors
// to float32 and summing in float32 in any order, fused or not, plus the float64 re-check's
// own error, while K u32 < 1/2; plus a term for float32 underflow, assuming IEEE gradual
// underflow, no flush-to-zero). The k first units by exact product are among the candidates
// P32[b, n] >= (k-th largest of P32[b, .]) - 2 e_b; those (one or two per sample on real
// data) get their product in float64 in a fixed order (blas::dot64) and are ranked by it,
// value descending, ties to the lower index. With k >= 2, a sample with exactly k candidates
// whose float32 first and k-th stand more than 2 e_b from their neighbours is settled from
// float32 (only those two products are computed in float64). So the ranking does not depend
// on the BLAS, its threads or the blocks; in float64 it is the ranking of the float64
// products (the reference's argmax of its dgemm unless two products lie within float64
// rounding of each other), in float32 the ranking of the exact products of the float32
// values (the reference's float32 gemm can differ from it where two products are within
// float32 rounding). Batches whose bound cannot be trusted (a row norm of A or of a sample
// not finite or above 1e30, or a product that could pass 1e30) or with more than
// cap_per_sample * B candidates (the decision depends on the total count only) are ranked
// the second way.
//
// Full: the product in A's dtype (sgemm / dgemm by blocks of rows) and the ranking of its
// values, in the order of the rule: NAN_FIRST is np.argmax's (a NaN beats every number,
// the first NaN wins), NAN_LAST is np.lexsort's on -P (NaNs after every number). Ties go to
// the lower index. (In float32 after a screening that gave up on its candidates, P32 is
// that product already.)
//
// The float32 copy of A and the row norms are kept between batches: the rule calls
// refresh_row(n) for every row it changed.
//
// products_finite() says whether every product of the batch is finite in A's dtype (the
// rules' reference updates are not finite otherwise: a NaN or inf product times the 0 of a
// unit that does not take the sample is NaN): always so when the screening ranked it (its
// norms bound every product by 1e30), else read from the full product.
#pragma once

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "blas.hpp"
#include "common.hpp"
#include "simd.hpp"
#include "team.hpp"

namespace sd {
namespace batch {

enum NanOrder : int { NAN_FIRST = 0, NAN_LAST = 1 };

/// (x, i) precedes (y, j) in the rule's total order: value descending, index ascending, NaNs
/// first (NAN_FIRST) or last (NAN_LAST) among themselves by index.
template <int ORDER, class T>
SD_INLINE bool before(T x, i64 i, T y, i64 j) {
    const bool xn = x != x, yn = y != y;
    if (xn || yn) {
        if (xn && yn) return i < j;
        return ORDER == NAN_FIRST ? xn : yn;
    }
    if (x > y) return true;
    if (x < y) return false;
    return i < j;
}

/// dst = fl32(src) (n values; out-of-range values become +-inf, IEEE).
template <class T>
SD_INLINE void to_f32_impl(const T* SD_RESTRICT src, float* SD_RESTRICT dst, i64 n) {
    for (i64 j = 0; j < n; ++j) dst[j] = float(src[j]);
}
SD_MULTIVERSION(to_f32, to_f32_impl)

/// True when every x[j] is finite (x - x is 0 for a number, NaN for an infinity or a NaN).
template <class T>
SD_INLINE bool all_finite_impl(const T* SD_RESTRICT x, i64 n) {
    T acc = T(0);
    for (i64 j = 0; j < n; ++j) acc += x[j] - x[j];
    return acc == T(0);
}
SD_MULTIVERSION(all_finite, all_finite_impl)

/// The largest float <= x (so that, for a float f, f >= result <=> double(f) >= x).
inline float float_floor(double x) {
    float f = float(x);
    if (double(f) > x) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
}

/// Insert (x, i) into the sorted buffer v[0..c), ix[0..c) (order ORDER) of capacity k;
/// keeps the k first.
template <int ORDER, class T, class V>
SD_INLINE void insert_k(V* v, i64* ix, i64& c, i64 k, T x, i64 i) {
    i64 j;
    if (c < k) {
        j = c++;
    } else {
        if (!before<ORDER>(V(x), i, v[k - 1], ix[k - 1])) return;
        j = k - 1;
    }
    while (j > 0 && before<ORDER>(V(x), i, v[j - 1], ix[j - 1])) {
        v[j] = v[j - 1];
        ix[j] = ix[j - 1];
        --j;
    }
    v[j] = V(x);
    ix[j] = i;
}

/// The k-th largest of x[0..n) (finite values, 1 <= k <= n; `v` scratch of k): a sorted
/// buffer of the k largest so far, entered only by values above its k-th, which
/// simd::first_above finds a vector at a time (about k ln(n / k) entries on random data).
template <class F>
inline F kth_largest(const F* x, i64 n, i64 k, F* v) {
    for (i64 i = 0; i < k; ++i) {
        const F y = x[i];
        i64 j = i;
        while (j > 0 && y > v[j - 1]) {
            v[j] = v[j - 1];
            --j;
        }
        v[j] = y;
    }
    for (i64 i = simd::first_above(x, k, n, v[k - 1]); i < n; i = simd::first_above(x, i + 1, n, v[k - 1])) {
        const F y = x[i];
        i64 j = k - 1;
        while (j > 0 && y > v[j - 1]) {
            v[j] = v[j - 1];
            --j;
        }
        v[j] = y;
    }
    return v[k - 1];
}

// ------------------------------------------------------------------------------ engine
template <class T, int ORDER>
class BatchRanking {
public:
    BatchRanking(const BatchRanking&) = delete;
    BatchRanking& operator=(const BatchRanking&) = delete;

    /// A (rows, K) row-major, ranked k deep (1 <= k <= rows) for batches of up to Bmax
    /// samples; the screening gives up on a batch with more than cap_per_sample * B
    /// candidates.
    BatchRanking(Team& team, const blas::Gemm& g, const T* A, i64 rows, i64 K, i64 Bmax, i64 k, bool screen,
                 i64 cap_per_sample)
        : team_(team), g_(g), A_(A), rows_(rows), K_(K), Bmax_(Bmax), k_(k), screen_(screen),
          cap_per_sample_(cap_per_sample) {
        slots_ = team.chunk_slots();
        const int nt = team.threads();
        // blocks of rows per thread for the products: blocks of at least ~128 rows keep the
        // gemm efficient; more blocks let the master take over a late helper's share
        gemm_chunks_ = std::max<i64>(1, std::min<i64>(Team::kChunksPerThread, rows / (128 * nt)));
        row_chunks_ = std::max<i64>(1, std::min<i64>(Team::kChunksPerThread, rows / (64 * nt)));
        sample_chunks_ = std::max<i64>(1, std::min<i64>(Team::kChunksPerThread, Bmax / (2 * nt)));
        sv_.assign(size_t(slots_) * k, 0.0);
        nonfinite_.assign(size_t(slots_), 0);
        si_.assign(size_t(slots_) * k, 0);
        norm_.assign(rows, 0.0);
        xnorm_.assign(Bmax, 0.0);
        gap_.assign(Bmax, 0.0);
        kvf_.assign(size_t(slots_) * k, 0.0f);
        kvd_.assign(size_t(slots_) * k, 0.0);
        cand_.assign(size_t(slots_) * rows, 0);
        own_ = blas::own_f32_kernel();
        Bpad_ = own_ ? blas::padded_samples(Bmax) : Bmax;
        if (screen && !std::is_same<T, float>::value) A32own_.resize(size_t(rows) * K);
        A32_ = std::is_same<T, float>::value ? reinterpret_cast<const float*>(A) : A32own_.data();
        if (screen || std::is_same<T, float>::value) {  // float32 products (float32 data: always)
            X32_.assign(size_t(Bpad_) * K, 0.0f);
            P32_.assign(size_t(Bpad_) * rows, 0.0f);
        }
    }

    i64 k() const { return k_; }
    /// Batches ranked by the full product so far.
    i64 full_batches() const { return full_; }
    /// Whether every product of the last batch ranked is finite in A's dtype.
    bool products_finite() const { return finite_; }

    /// After row n of A changed: its norm and float32 copy (any thread, one row each).
    void refresh_row(i64 n) {
        const T* a = A_ + n * K_;
        if (screen_ && !std::is_same<T, float>::value) to_f32(a, A32own_.data() + n * K_, K_);
        norm_[n] = blas::norm64(a, K_);
    }

    /// Every row (master, a parallel phase).
    void refresh_all() {
        auto f = [&](int, i64, i64 b, i64 e) {
            for (i64 n = b; n < e; ++n) refresh_row(n);
        };
        team_.parallel_for(rows_, 1, row_chunks_, f);
    }

    /// Rank the batch X[idx[0..B)] (X row-major, K columns; master only): first[b] and, with
    /// k >= 2, kth[b] (the k-th unit), and their products vfirst[b], vkth[b] (rounded to T).
    /// Returns true when the screening ranked it, false when the full product did.
    bool rank(const T* X, const i64* idx, i64 B, i64* first, T* vfirst, i64* kth, T* vkth) {
        X_ = X;
        idx_ = idx;
        B_ = B;
        p32_ready_ = false;
        finite_ = true;
        if (screen_ && screened(first, vfirst, kth, vkth)) return true;
        ++full_;
        full(first, vfirst, kth, vkth);
        return false;
    }

private:
    // ------------------------------------------------------------------ screened path
    /// Margins 2 e_b of products computed with unit roundoff u (float32: 2^-24, float64:
    /// 2^-53) against the exact ones, into gap_; false when a norm is not finite or passes
    /// `big`, or a product could pass `big` (the bound is then no use; with norms <= 1e30
    /// every value is finite in float32: a sample entry beyond float32's range with small
    /// weights would make the float32 products inf * 0 = NaN).
    bool margins(double u, double tiny, double big) {
        const i64 B = B_, K = K_;
        double amax = 0.0;
        for (i64 n = 0; n < rows_; ++n) {
            const double x = norm_[n];
            if (!(x <= big)) return false;
            amax = x > amax ? x : amax;
        }
        const double c = 2.0 * double(K + 4) * u;
        for (i64 b = 0; b < B; ++b) {
            const double vn = xnorm_[b];
            if (!(vn <= big) || !(amax * vn <= big)) return false;
            gap_[b] = 2.0 * (c * amax * vn + tiny * (2.0 + amax + vn));
        }
        return true;
    }

    bool screened(i64* first, T* vfirst, i64* kth, T* vkth) {
        const i64 B = B_, K = K_, rows = rows_;
        // the batch in float32 and its row norms
        auto gather = [&](int, i64, i64 b0, i64 b1) {
            for (i64 b = b0; b < b1; ++b) {
                const T* x = X_ + idx_[b] * K;
                to_f32(x, X32_.data() + b * K, K);
                xnorm_[b] = blas::norm64(x, K);
            }
        };
        team_.parallel_for(B, 1, sample_chunks_, gather);
        if (!margins(std::ldexp(1.0, -24), double(K) * std::ldexp(1.0, -140), 1e30)) return false;
        product32();
        // per sample: threshold, candidates, ranking by float64 products
        ncand_.store(0, std::memory_order_relaxed);
        const i64 cap = cap_per_sample_ * B;
        auto per_sample = [&](int, i64 slot, i64 b0, i64 b1) {
            for (i64 b = b0; b < b1; ++b) {
                if (ncand_.load(std::memory_order_relaxed) > cap) return;  // the batch gives up anyway
                if (!refine_sample(P32_.data() + b * rows, b, slot, cap, first, vfirst, kth, vkth)) return;
            }
        };
        team_.parallel_for(B, 1, sample_chunks_, per_sample);
        // the decision depends only on the total count (whatever the threads did first)
        return ncand_.load(std::memory_order_relaxed) <= cap;
    }

    /// Sample b from its products `row` (rows values, within gap_[b] / 2 of the exact ones):
    /// the candidates are the values >= (k-th largest) - gap_[b], ranked by their float64
    /// products. False when the batch's candidates pass `cap` (cap < 0: no limit).
    template <class F>
    bool refine_sample(const F* row, i64 b, i64 slot, i64 cap, i64* first, T* vfirst, i64* kth, T* vkth) {
        const i64 K = K_, k = k_, rows = rows_;
        F thr;
        if constexpr (std::is_same<F, float>::value) {
            thr = float_floor(double(kth_largest(row, rows, k, kvf_.data() + slot * k)) - gap_[b]);
        } else {  // the rounding of thr is far inside the factor 2 of slack in gap_
            thr = kth_largest(row, rows, k, kvd_.data() + slot * k) - gap_[b];
        }
        // x >= thr <=> x > the value just below thr
        const F below = std::nextafter(thr, -std::numeric_limits<F>::infinity());
        i64* c = cand_.data() + slot * rows;
        i64 m = 0;
        for (i64 i = simd::first_above(row, i64(0), rows, below); i < rows; i = simd::first_above(row, i + 1, rows, below))
            c[m++] = i;
        if (cap >= 0 && ncand_.fetch_add(m, std::memory_order_relaxed) + m > cap) return false;
        const T* x = X_ + idx_[b] * K;
        if (k == 1) {  // m >= 1: the maximum is a candidate
            i64 best = c[0];
            double bd = blas::dot64(A_ + best * K, x, K);
            for (i64 i = 1; i < m; ++i) {  // rows ascending: strict > keeps the lower index
                const double d = blas::dot64(A_ + c[i] * K, x, K);
                if (d > bd) {
                    bd = d;
                    best = c[i];
                }
            }
            first[b] = best;
            vfirst[b] = T(bd);
            return true;
        }
        double* sv = sv_.data() + slot * k;
        i64* si = si_.data() + slot * k;
        i64 f = 0;
        if (m == k) {  // settled from `row` when the first and the k-th stand apart
            for (i64 i = 0; i < k; ++i) insert_k<NAN_LAST>(sv, si, f, k, double(row[c[i]]), c[i]);
            if (sv[0] - sv[1] > gap_[b] && sv[k - 2] - sv[k - 1] > gap_[b]) {
                first[b] = si[0];
                kth[b] = si[k - 1];
                vfirst[b] = T(blas::dot64(A_ + si[0] * K, x, K));
                vkth[b] = T(blas::dot64(A_ + si[k - 1] * K, x, K));
                return true;
            }
            f = 0;
        }
        for (i64 i = 0; i < m; ++i) insert_k<NAN_LAST>(sv, si, f, k, blas::dot64(A_ + c[i] * K, x, K), c[i]);
        first[b] = si[0];
        kth[b] = si[k - 1];
        vfirst[b] = T(sv[0]);
        vkth[b] = T(sv[k - 1]);
        return true;
    }

    /// P32 (B, rows) = fl32(A) X32^T by blocks of rows of A over the threads.
    void product32() {
        const i64 B = B_, K = K_, rows = rows_;
        if (own_) std::fill(X32_.begin() + B * K, X32_.begin() + blas::padded_samples(B) * K, 0.0f);
        auto prod = [&](int, i64, i64 r0, i64 r1) {
            blas::product_f32(g_, own_, A32_ + r0 * K, r1 - r0, K, X32_.data(), B, P32_.data() + r0, rows);
        };
        team_.parallel_for(rows, 16, gemm_chunks_, prod);
        p32_ready_ = true;
    }

    // ---------------------------------------------------------------------- full path
    void full(i64* first, T* vfirst, i64* kth, T* vkth) {
        const i64 B = B_, K = K_, k = k_, rows = rows_;
        // float32 after a screening that gave up on its candidates: P32 is the product in T
        const bool have = std::is_same<T, float>::value && p32_ready_;
        p32_ready_ = false;
        if constexpr (std::is_same<T, float>::value) {
            if (!have) {  // the screening's product, without its screening
                auto gather = [&](int, i64, i64 b0, i64 b1) {
                    for (i64 b = b0; b < b1; ++b) {
                        std::memcpy(X32_.data() + b * K, X_ + idx_[b] * K, sizeof(float) * K);
                        xnorm_[b] = blas::norm64(X_ + idx_[b] * K, K);
                    }
                };
                team_.parallel_for(B, 1, sample_chunks_, gather);
                product32();
                p32_ready_ = false;
            }
        } else {
            if (P_.size() < size_t(B) * rows) P_.resize(size_t(Bmax_) * rows);
            if (XT_.size() < size_t(B) * K) XT_.resize(size_t(Bmax_) * K);
            auto gather = [&](int, i64, i64 b0, i64 b1) {
                for (i64 b = b0; b < b1; ++b) {
                    std::memcpy(XT_.data() + b * K, X_ + idx_[b] * K, sizeof(T) * K);
                    xnorm_[b] = blas::norm64(X_ + idx_[b] * K, K);
                }
            };
            team_.parallel_for(B, 1, sample_chunks_, gather);
            auto prod = [&](int, i64, i64 r0, i64 r1) {
                blas::product(g_, A_ + r0 * K, r1 - r0, K, (const T*)XT_.data(), B, P_.data() + r0, rows);
            };
            team_.parallel_for(rows, 16, gemm_chunks_, prod);
        }
        const T* P;
        if constexpr (std::is_same<T, float>::value)
            P = P32_.data();
        else
            P = P_.data();
        // near-ties of the product in T get their float64 products too (a BLAS may round
        // equal products differently, e.g. in its edge kernels): equal rows tie exactly
        const bool f32 = std::is_same<T, float>::value;
        const bool refine = f32 ? margins(std::ldexp(1.0, -24), double(K) * std::ldexp(1.0, -140), 1e30)
                                : margins(std::ldexp(1.0, -53), double(K) * std::ldexp(1.0, -1000), 1e150);
        // each sample's k first, in the rule's order (NaNs included)
        std::fill(nonfinite_.begin(), nonfinite_.end(), 0);
        auto per_sample = [&](int, i64 slot, i64 b0, i64 b1) {
            double* v = sv_.data() + slot * k;
            i64* ix = si_.data() + slot * k;
            for (i64 b = b0; b < b1; ++b) {
                const T* row = P + b * rows;
                if (!all_finite(row, rows)) nonfinite_[slot] = 1;
                if (refine) {
                    refine_sample(row, b, slot, -1, first, vfirst, kth, vkth);
                    continue;
                }
                i64 c = 0;
                for (i64 n = 0; n < rows; ++n) {
                    // a later row enters a full buffer only when larger than its k-th or
                    // when a NaN is involved
                    if (c == k && row[n] <= T(v[k - 1])) continue;
                    insert_k<ORDER>(v, ix, c, k, row[n], n);
                }
                first[b] = ix[0];
                vfirst[b] = T(v[0]);
                if (k >= 2) {
                    kth[b] = ix[k - 1];
                    vkth[b] = T(v[k - 1]);
                }
            }
        };
        team_.parallel_for(B, 1, sample_chunks_, per_sample);
        for (char c : nonfinite_) finite_ = finite_ && !c;
    }

    Team& team_;
    blas::Gemm g_;
    const T* A_;
    i64 rows_, K_, Bmax_, k_;
    bool screen_;
    i64 cap_per_sample_;
    i64 slots_ = 1, gemm_chunks_ = 1, row_chunks_ = 1, sample_chunks_ = 1;
    i64 full_ = 0;
    bool p32_ready_ = false;
    bool own_ = false;  // float32 products by blas::avx512k (else the BLAS's sgemm)
    i64 Bpad_ = 0;
    // the batch being ranked
    const T* X_ = nullptr;
    const i64* idx_ = nullptr;
    i64 B_ = 0;
    // per-slot scratch of the rankings (float64 values hold T exactly)
    std::vector<double> sv_;
    std::vector<char> nonfinite_;  // per chunk slot: a product it ranked is not finite
    bool finite_ = true;
    std::vector<i64> si_;
    // screening
    std::vector<float> A32own_;
    const float* A32_ = nullptr;
    std::vector<double> norm_, xnorm_, gap_;
    std::vector<float> X32_, P32_;
    std::vector<float> kvf_;  // k-th largest scratch
    std::vector<double> kvd_;
    std::vector<i64> cand_;
    std::atomic<i64> ncand_{0};
    // full path
    std::vector<T> P_, XT_;
};

// ----------------------------------------------------------------------- threads
/// Threads for products of `work` multiply-adds per batch: `requested` > 0 as given; 0: all
/// of OpenMP's when a batch is big enough to pay for the synchronization, else one.
inline int batch_threads(double work, int requested) {
#ifndef _OPENMP
    (void)work, (void)requested;
    return 1;
#else
    if (requested > 0) return requested;
    return work >= double(1 << 21) ? omp_max_threads() : 1;
#endif
}

}  // namespace batch
}  // namespace sd
