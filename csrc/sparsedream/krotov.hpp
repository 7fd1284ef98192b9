// Rule C, Krotov-Hopfield competing hidden units (docs/rules/krotov_hopfield.md;
// sparsedream_fast/krotov/reference.py): a whole fit in one call, on a Team of threads.
//
// Per minibatch X[idx] (B samples, D values), with Wp = sign(W) |W|^(p-1) kept between
// batches (recomputed for the rows that change):
// 1. the first and k-th unit of every sample by I = Wp X^T (value descending, ties to the
//    lower index; NaN last as the reference's lexsort), by the screened float32 product
//    (batch_product.hpp) or by the product in W's dtype;
// 2. g has two non-zeros per sample, so only the units that are first or k-th somewhere (at
//    most 2B) have a non-zero row of ds: on the threads, xx_n = sum_b g I,
//    ds_n = sum_b g x_b - xx_n W_n (sample order), and the largest |ds|;
// 3. W_n += eps (ds_n / max(max|ds|, prec)) on those rows (the reference adds exactly 0 to
//    the others), then their Wp, float32 copy and norm.
// A batch whose update would write a value that is not finite (a current that is not finite,
// a NaN in ds, or a new weight that overflows) writes nothing, and the fit stops there (RUN_DIVERGED, run_control.hpp); a
// W that is not finite at the start diverges at the first batch, as in the reference (its
// ds of such a row is 0 * inf or 0 * NaN). After every batch the fit asks its Poll whether
// to stop (Ctrl-C).
// Numerics as the reference's, in W's dtype; eps and the normalizer are Python floats cast
// to the dtype (numpy 2's rule for a Python scalar with an array); the currents of a
// sample's first and k-th units are their float64 products rounded to the dtype. Wp is
// numpy's bit for bit at p = 2, 3 and 1.5 (numpy's power fast paths), pow otherwise.
#pragma once

#include <cmath>
#include <vector>

#include "batch_product.hpp"
#include "common.hpp"
#include "run_control.hpp"
#include "simd.hpp"
#include "team.hpp"

namespace sd {
namespace krotov {

/// wp = sign(w) |w|^(p-1), as numpy computes np.sign(W) * np.abs(W) ** (p - 1).
template <class T>
inline void power_row(const T* SD_RESTRICT w, T* SD_RESTRICT wp, double p, i64 n) {
    if (p == 2.0) {
        for (i64 j = 0; j < n; ++j) wp[j] = w[j];
    } else if (p == 3.0) {  // |w| ** 2 is numpy's square
        for (i64 j = 0; j < n; ++j) wp[j] = w[j] * std::fabs(w[j]);
    } else {
        const T e = T(p - 1.0);
        for (i64 j = 0; j < n; ++j) {
            const T x = w[j];
            const T sg = x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x == T(0) ? T(0) : x));  // np.sign
            const T a = std::fabs(x);
            wp[j] = sg * (p == 1.5 ? std::sqrt(a) : std::pow(a, e));  // ** 0.5 is numpy's sqrt
        }
    }
}

/// ds = gx - xx * w; returns max |ds| (NaN sets `nan`).
template <class T>
SD_INLINE T ds_row_impl(const T* SD_RESTRICT gx, T xx, const T* SD_RESTRICT w, T* SD_RESTRICT ds, i64 n,
                        bool* nan) {
    T amax = T(0);
    bool isnan = false;
    for (i64 j = 0; j < n; ++j) {
        const T d = gx[j] - xx * w[j];
        ds[j] = d;
        const T a = std::fabs(d);
        amax = a > amax ? a : amax;
        isnan |= a != a;
    }
    *nan = isnan;
    return amax;
}
SD_MULTIVERSION(ds_row, ds_row_impl)

/// gx = g * x (first) or gx += g * x.
template <class T>
SD_INLINE void gx_set_impl(T* SD_RESTRICT gx, T g, const T* SD_RESTRICT x, i64 n) {
    for (i64 j = 0; j < n; ++j) gx[j] = g * x[j];
}
SD_MULTIVERSION(gx_set, gx_set_impl)
template <class T>
SD_INLINE void gx_add_impl(T* SD_RESTRICT gx, T g, const T* SD_RESTRICT x, i64 n) {
    for (i64 j = 0; j < n; ++j) gx[j] = gx[j] + g * x[j];
}
SD_MULTIVERSION(gx_add, gx_add_impl)

/// w += ep * (ds / nc).
template <class T>
SD_INLINE void apply_impl(T* SD_RESTRICT w, T ep, const T* SD_RESTRICT ds, T nc, i64 n) {
    for (i64 j = 0; j < n; ++j) w[j] = w[j] + ep * (ds[j] / nc);
}
SD_MULTIVERSION(apply_row, apply_impl)

/// Whether w + ep * (ds / nc) (apply_row's values) is finite everywhere, without writing.
template <class T>
SD_INLINE bool apply_finite_impl(const T* SD_RESTRICT w, T ep, const T* SD_RESTRICT ds, T nc, i64 n) {
    T acc = T(0);
    for (i64 j = 0; j < n; ++j) {
        const T y = w[j] + ep * (ds[j] / nc);
        acc += y - y;
    }
    return acc == T(0);
}
SD_MULTIVERSION(apply_finite, apply_finite_impl)

template <class T>
class Fit {
public:
    Fit(const Fit&) = delete;
    Fit& operator=(const Fit&) = delete;

    /// W (H, D) updated in place; X (n, D); 2 <= k <= H; batches of up to Bmax samples.
    Fit(T* W, i64 H, i64 D, const T* X, double p, i64 k, double delta, double prec, i64 Bmax,
        const blas::Gemm& g, bool screen, int n_threads)
        : team_(n_threads),
          Wp_(size_t(H) * D),
          rank_(team_, g, Wp_.data(), H, D, Bmax, k, screen, 16 * k),
          W_(W), H_(H), D_(D), X_(X), p_(p), k_(k), delta_(delta), prec_(prec) {
        first_.assign(Bmax, 0);
        kth_.assign(Bmax, 0);
        vf_.assign(Bmax, T(0));
        vk_.assign(Bmax, T(0));
        head_.assign(H, -1);
        nxt_.assign(2 * Bmax, -1);
        units_.assign(2 * Bmax, 0);
        const i64 slots = team_.chunk_slots();
        Ds_.assign(size_t(std::min<i64>(2 * Bmax, H)) * D, T(0));
        gx_.assign(size_t(slots) * D, T(0));
        amax_.assign(slots, T(0));
        nan_.assign(slots, 0);
        bad_.assign(slots, 0);
        unit_chunks_ = std::max<i64>(1, std::min<i64>(Team::kChunksPerThread, Bmax / (4 * team_.threads())));
        row_chunks_ = std::max<i64>(1, std::min<i64>(Team::kChunksPerThread, H / (64 * team_.threads())));
    }

    int threads() const { return team_.threads(); }
    i64 full_batches() const { return rank_.full_batches(); }

    /// The fit on the team (the calling thread is its master): epoch e (of E) has the batches
    /// batches[(e * nb + i) * B ...], eps = eps0 (1 - (epoch0 + e) / total). Stops after a
    /// batch when `poll` says so, and before a batch whose update is not finite.
    RunResult run(const i64* batches, i64 E, i64 nb, i64 B, double eps0, i64 epoch0, i64 total, Poll& poll) {
        RunResult res;
        team_.run([&] { res = master(batches, E, nb, B, eps0, epoch0, total, poll); });
        return res;
    }

private:
    RunResult master(const i64* batches, i64 E, i64 nb, i64 B, double eps0, i64 epoch0, i64 total, Poll& poll) {
        RunResult res;
        if (!powers_all()) {
            res.status = RUN_DIVERGED;
            return res;
        }
        for (i64 e = 0; e < E; ++e) {
            const double eps = eps0 * (1.0 - double(epoch0 + e) / double(total));  // as Python computes it
            for (i64 i = 0; i < nb; ++i) {
                const i64* idx = batches + (e * nb + i) * B;
                rank_.rank(X_, idx, B, first_.data(), vf_.data(), kth_.data(), vk_.data());
                // a current that is not finite makes the reference's xx_n NaN (I[n, b] * 0)
                if (!rank_.products_finite() || !update(idx, B, eps)) {
                    res.status = RUN_DIVERGED;
                    return res;
                }
                ++res.done;
                if (res.done < E * nb && poll.stop()) {
                    res.status = RUN_STOPPED;
                    return res;
                }
            }
        }
        return res;
    }

    /// Wp of every row and the ranking's copies; false when W is not finite.
    bool powers_all() {
        std::fill(bad_.begin(), bad_.end(), 0);
        auto f = [&](int, i64 slot, i64 r0, i64 r1) {
            for (i64 n = r0; n < r1; ++n) {
                power_row(W_ + n * D_, Wp_.data() + n * D_, p_, D_);
                if (!batch::all_finite((const T*)(W_ + n * D_), D_)) bad_[slot] = 1;
            }
        };
        team_.parallel_for(H_, 1, row_chunks_, f);
        for (char b : bad_)
            if (b) return false;
        rank_.refresh_all();
        return true;
    }

    /// Entry e of the per-unit lists: sample e / 2, its first unit (e even, g = 1) or its
    /// k-th (e odd, g = -delta).
    i64 unit_of(i64 e) const { return e % 2 == 0 ? first_[e / 2] : kth_[e / 2]; }

    /// One batch's update; false (nothing written) when it is not finite.
    bool update(const i64* idx, i64 B, double eps) {
        const i64 D = D_;
        for (i64 e = 2 * B - 1; e >= 0; --e) {  // lists ascending (built from the back)
            const i64 n = unit_of(e);
            nxt_[e] = head_[n];
            head_[n] = e;
        }
        i64 nu = 0;
        for (i64 e = 0; e < 2 * B; ++e)
            if (head_[unit_of(e)] == e) units_[nu++] = unit_of(e);
        const T one = T(1), mdelta = T(-delta_);
        // ds rows of the selected units, and the largest |ds|
        const i64 slots = team_.chunk_slots();
        std::fill(amax_.begin(), amax_.end(), T(0));
        std::fill(nan_.begin(), nan_.end(), 0);
        auto fds = [&](int, i64 slot, i64 u0, i64 u1) {
            T* gx = gx_.data() + slot * D;
            T amax = T(0);
            bool anynan = false;
            for (i64 u = u0; u < u1; ++u) {
                const i64 n = units_[u];
                T xx = T(0);
                bool firstterm = true;
                for (i64 e = head_[n]; e >= 0; e = nxt_[e]) {
                    const i64 b = e / 2;
                    const T gg = e % 2 == 0 ? one : mdelta;
                    xx += gg * (e % 2 == 0 ? vf_[b] : vk_[b]);
                    const T* x = X_ + idx[b] * D;
                    if (firstterm) {
                        gx_set(gx, gg, x, D);
                        firstterm = false;
                    } else {
                        gx_add(gx, gg, x, D);
                    }
                }
                bool nan = false;
                const T a = ds_row(gx, xx, (const T*)(W_ + n * D), Ds_.data() + u * D, D, &nan);
                amax = a > amax ? a : amax;
                anynan |= nan;
            }
            amax_[slot] = amax;
            nan_[slot] = anynan;
        };
        team_.parallel_for(nu, 1, unit_chunks_, fds);
        for (i64 u = 0; u < nu; ++u) head_[units_[u]] = -1;
        T amax = T(0);
        bool isnan = false;
        for (i64 s = 0; s < slots; ++s) {
            amax = amax_[s] > amax ? amax_[s] : amax;
            isnan |= nan_[s] != 0;
        }
        if (isnan) return false;  // a NaN in ds: the reference's W becomes NaN everywhere (0 / NaN)
        // nc = max(max|ds|, prec) in Python floats, cast to the dtype with eps
        const double nc64 = double(amax) >= prec_ ? double(amax) : prec_;
        const T nc = T(nc64), ep = T(eps);
        std::fill(bad_.begin(), bad_.end(), 0);
        auto fcheck = [&](int, i64 slot, i64 u0, i64 u1) {
            for (i64 u = u0; u < u1; ++u)
                if (!apply_finite((const T*)(W_ + units_[u] * D), ep, (const T*)(Ds_.data() + u * D), nc, D))
                    bad_[slot] = 1;
        };
        team_.parallel_for(nu, 1, unit_chunks_, fcheck);
        for (char bad : bad_)
            if (bad) return false;
        auto fapply = [&](int, i64, i64 u0, i64 u1) {
            for (i64 u = u0; u < u1; ++u) {
                const i64 n = units_[u];
                apply_row(W_ + n * D, ep, (const T*)(Ds_.data() + u * D), nc, D);
                power_row(W_ + n * D, Wp_.data() + n * D, p_, D);
                rank_.refresh_row(n);
            }
        };
        team_.parallel_for(nu, 1, unit_chunks_, fapply);
        return true;
    }

    Team team_;
    std::vector<T> Wp_;
    batch::BatchRanking<T, batch::NAN_LAST> rank_;
    T* W_;
    i64 H_, D_;
    const T* X_;
    double p_;
    i64 k_;
    double delta_, prec_;
    i64 unit_chunks_ = 1, row_chunks_ = 1;
    std::vector<i64> first_, kth_, head_, nxt_, units_;
    std::vector<T> vf_, vk_, Ds_, gx_, amax_;
    std::vector<char> nan_;
    std::vector<char> bad_;  // per chunk slot: a row it checked is not finite
};

/// reference.fit: E epochs of nb batches of B samples (batches (E, nb, B)), eps annealed over
/// `total` epochs from epoch0, in place on W. Returns the number of batches ranked by the
/// full product; `res` the batches completed and how the run ended (it stops after a batch
/// when `poll` says so, and before a batch whose update is not finite). Call without the GIL.
template <class T>
inline i64 fit(T* W, i64 H, i64 D, const T* X, const i64* batches, i64 E, i64 nb, i64 B, double p, i64 k,
               double delta, double eps0, double prec, i64 epoch0, i64 total, const blas::Gemm& g, bool screen,
               int n_threads, Poll& poll, RunResult& res) {
    res = RunResult();
    if (E <= 0 || nb <= 0 || B <= 0) return 0;
    const int nt = batch::batch_threads(double(H) * double(D) * double(B), n_threads);
    Fit<T> eng(W, H, D, X, p, k, delta, prec, B, g, screen, nt);
    res = eng.run(batches, E, nb, B, eps0, epoch0, total, poll);
    return eng.full_batches();
}

/// reference.ranks: first and k-th unit of every column of I (H, B) (NaN last).
template <class T>
inline void ranks(const T* I, i64 H, i64 B, i64 k, i64* first, i64* kth) {
    std::vector<T> v(k);
    std::vector<i64> ix(k);
    for (i64 b = 0; b < B; ++b) {
        i64 c = 0;
        for (i64 n = 0; n < H; ++n) batch::insert_k<batch::NAN_LAST>(v.data(), ix.data(), c, k, I[n * B + b], n);
        first[b] = ix[0];
        kth[b] = ix[k - 1];
    }
}

/// sign(W) |W|^(p-1) of every row of W (H, D).
template <class T>
inline void weight_powers(const T* W, i64 H, i64 D, double p, T* out) {
    for (i64 n = 0; n < H; ++n) power_row(W + n * D, out + n * D, p, D);
}

}  // namespace krotov
}  // namespace sd
