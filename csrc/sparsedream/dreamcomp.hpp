// Rule B, DreamComp (docs/rules/dreamcomp.md; sparsedream_fast/dreamcomp/reference.py): a whole
// fit in one call, on a Team of threads (team.hpp) inside one OpenMP region.
//
// Per minibatch V[idx] (B samples of D + C values):
// 1. the winner of every sample, argmax_n (W V^T)[n, b], ties to the lower index, by the
//    screened float32 product (batch_product.hpp: the rows of W in blocks over the threads,
//    one sgemm each; float64 products of the few candidates), or by the product in W's dtype
//    when the screening cannot be trusted for the batch;
// 2. every neuron that won something, on the threads: U = (sum of its samples) * (1 / count),
//    s = sum_b drive_b * (1 / count), W_n += (U - s * (W_n / zeta)) * eta, in the reference's
//    operation order and in W's dtype (no fused multiply-add: -ffp-contract=off).
// Neurons that won nothing are not touched (the reference adds exactly 0 to them). A batch
// whose update would write a value that is not finite (a winner's new row, or any row when a
// drive is not finite: the reference's s_n takes S[n, b] * 0) writes nothing: the winners'
// old rows are kept aside and put back, and the fit stops there (RUN_DIVERGED, run_control.hpp); a W
// that is not finite at the start diverges at the first batch, as in the reference (its
// update of such a row is not finite either). After every batch the fit asks its Poll
// whether to stop (Ctrl-C). A winner
// with one sample gets the reference's update up to its drive (a float64 dot product in a
// fixed order instead of the reference's gemm entry); with several, U and s are summed in
// sample order where the reference lets BLAS choose: they agree to rounding.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "batch_product.hpp"
#include "common.hpp"
#include "run_control.hpp"
#include "simd.hpp"
#include "team.hpp"

namespace sd {
namespace dreamcomp {

/// w += (U - s * (w / zeta)) * eta (the reference's expression, element by element).
template <class T>
SD_INLINE void update_row_impl(T* SD_RESTRICT w, const T* SD_RESTRICT U, T s, const T* SD_RESTRICT zeta,
                               const T* SD_RESTRICT eta, i64 n) {
    for (i64 j = 0; j < n; ++j) w[j] = w[j] + (U[j] - s * (w[j] / zeta[j])) * eta[j];
}
SD_MULTIVERSION(update_row, update_row_impl)

/// U = x (first sample), U += x (the next ones), U *= m.
template <class T>
SD_INLINE void copy_impl(T* SD_RESTRICT U, const T* SD_RESTRICT x, i64 n) {
    for (i64 j = 0; j < n; ++j) U[j] = x[j];
}
SD_MULTIVERSION(copy_row, copy_impl)
template <class T>
SD_INLINE void add_impl(T* SD_RESTRICT U, const T* SD_RESTRICT x, i64 n) {
    for (i64 j = 0; j < n; ++j) U[j] = U[j] + x[j];
}
SD_MULTIVERSION(add_row, add_impl)
template <class T>
SD_INLINE void scale_impl(T* SD_RESTRICT U, T m, i64 n) {
    for (i64 j = 0; j < n; ++j) U[j] = U[j] * m;
}
SD_MULTIVERSION(scale_row, scale_impl)

template <class T>
class Fit {
public:
    Fit(const Fit&) = delete;
    Fit& operator=(const Fit&) = delete;

    /// W (N, Dp) updated in place; V (n, Dp) the extended samples; zeta, eta (Dp,); batches
    /// of up to Bmax samples.
    Fit(T* W, i64 N, i64 Dp, const T* V, const T* zeta, const T* eta, i64 Bmax, const blas::Gemm& g, bool screen,
        int n_threads)
        : team_(n_threads),
          rank_(team_, g, W, N, Dp, Bmax, 1, screen, 16),
          W_(W), N_(N), Dp_(Dp), V_(V), zeta_(zeta), eta_(eta) {
        win_.assign(Bmax, 0);
        sw_.assign(Bmax, T(0));
        head_.assign(N, -1);
        nxt_.assign(Bmax, -1);
        old_.assign(size_t(Bmax) * Dp, T(0));
        bad_.assign(Bmax, 0);
        units_.assign(Bmax, 0);
        U_.assign(size_t(team_.chunk_slots()) * Dp, T(0));
        unit_chunks_ = std::max<i64>(1, std::min<i64>(Team::kChunksPerThread, Bmax / (8 * team_.threads())));
    }

    int threads() const { return team_.threads(); }
    i64 full_batches() const { return rank_.full_batches(); }
    const i64* winners() const { return win_.data(); }

    /// The fit on the team (the calling thread is its master): batch t is
    /// idx = batches[t * B .. (t + 1) * B); `update` false only ranks (winners()). Stops
    /// after a batch when `poll` says so, and before a batch whose update is not finite.
    RunResult run(const i64* batches, i64 nbatches, i64 B, bool update, Poll& poll) {
        RunResult res;
        team_.run([&] { res = master(batches, nbatches, B, update, poll); });
        return res;
    }

private:
    RunResult master(const i64* batches, i64 nbatches, i64 B, bool update, Poll& poll) {
        RunResult res;
        if (update) {
            for (i64 n = 0; n < N_; ++n)
                if (!batch::all_finite((const T*)(W_ + n * Dp_), Dp_)) {
                    res.status = RUN_DIVERGED;
                    return res;
                }
        }
        rank_.refresh_all();
        for (i64 t = 0; t < nbatches; ++t) {
            const i64* idx = batches + t * B;
            rank_.rank(V_, idx, B, win_.data(), sw_.data(), nullptr, nullptr);
            // a drive that is not finite makes the reference's s_n NaN (S[n, b] * 0)
            if (update && (!rank_.products_finite() || !update_winners(idx, B))) {
                res.status = RUN_DIVERGED;
                return res;
            }
            ++res.done;
            if (t + 1 < nbatches && poll.stop()) {
                res.status = RUN_STOPPED;
                return res;
            }
        }
        return res;
    }

    /// The winners' updates; false (W as before) when one of them is not finite.
    bool update_winners(const i64* idx, i64 B) {
        // each winner's samples as a list, ascending (built from the back)
        for (i64 b = B - 1; b >= 0; --b) {
            const i64 n = win_[b];
            nxt_[b] = head_[n];
            head_[n] = b;
        }
        i64 nu = 0;
        for (i64 b = 0; b < B; ++b)
            if (head_[win_[b]] == b) units_[nu++] = win_[b];
        auto f = [&](int, i64 slot, i64 u0, i64 u1) {
            T* U = U_.data() + slot * Dp_;
            for (i64 u = u0; u < u1; ++u) bad_[u] = !update_one(units_[u], u, idx, U);
        };
        team_.parallel_for(nu, 1, unit_chunks_, f);
        for (i64 u = 0; u < nu; ++u) head_[units_[u]] = -1;
        bool ok = true;
        for (i64 u = 0; u < nu; ++u) ok = ok && !bad_[u];
        if (!ok)  // put the old rows back: the batch writes nothing, and the fit stops
            for (i64 u = 0; u < nu; ++u)
                std::copy(old_.data() + u * Dp_, old_.data() + (u + 1) * Dp_, W_ + units_[u] * Dp_);
        return ok;
    }

    /// Unit u (neuron n) of the batch: its update, its old row kept in old_ row u; false when
    /// the new row is not finite.
    bool update_one(i64 n, i64 u, const i64* idx, T* U) {
        const i64 Dp = Dp_;
        i64 c = 0;
        for (i64 b = head_[n]; b >= 0; b = nxt_[b]) ++c;
        const T m = T(1) / T(c);  // the reference's row of M: 1 / max(1, count)
        i64 b = head_[n];
        copy_row(U, V_ + idx[b] * Dp, Dp);
        T s = sw_[b] * m;
        for (b = nxt_[b]; b >= 0; b = nxt_[b]) {
            add_row(U, V_ + idx[b] * Dp, Dp);
            s += sw_[b] * m;
        }
        if (c > 1) scale_row(U, m, Dp);
        std::copy(W_ + n * Dp, W_ + (n + 1) * Dp, old_.data() + u * Dp);
        update_row(W_ + n * Dp, (const T*)U, s, zeta_, eta_, Dp);
        if (!batch::all_finite((const T*)(W_ + n * Dp), Dp)) return false;
        rank_.refresh_row(n);
        return true;
    }

    Team team_;
    batch::BatchRanking<T, batch::NAN_FIRST> rank_;
    T* W_;
    i64 N_, Dp_;
    const T* V_;
    const T* zeta_;
    const T* eta_;
    i64 unit_chunks_ = 1;
    std::vector<i64> win_, head_, nxt_, units_;
    std::vector<T> sw_, U_, old_;  // old_: the batch's winners' rows before their update
    std::vector<char> bad_;        // per unit of the batch: its new row is not finite
};

/// reference.fit: train on V[batches[t]] for the nbatches batches of B samples, in place on
/// W; win_out (B,) receives the last batch's winners. Returns the number of batches ranked
/// by the full product; `res` the batches completed and how the run ended (it stops after a
/// batch when `poll` says so, and before a batch whose update is not finite). Call without
/// the GIL.
template <class T>
inline i64 fit(T* W, i64 N, i64 Dp, const T* V, const T* zeta, const T* eta, const i64* batches, i64 nbatches,
               i64 B, const blas::Gemm& g, bool screen, int n_threads, i64* win_out, bool update, Poll& poll,
               RunResult& res) {
    res = RunResult();
    if (nbatches <= 0 || B <= 0) return 0;
    const int nt = batch::batch_threads(double(N) * double(Dp) * double(B), n_threads);
    Fit<T> eng(W, N, Dp, V, zeta, eta, B, g, screen, nt);
    res = eng.run(batches, nbatches, B, update, poll);
    for (i64 b = 0; b < B; ++b) win_out[b] = eng.winners()[b];
    return eng.full_batches();
}

}  // namespace dreamcomp
}  // namespace sd
