// Rule A (SparseDream online k-WTA, docs/rules/sparsedream.md, docs/design.md): the config
// struct mirroring SparseDreamConfig.native_dict(), the competition, the fused step, the
// bounds and the whole fit loop. Header-only, raw pointers, no Python types.
//
// Work per step: the drive p = W v (the only O(N D) part), the competition (stencil
// O(N r^2) / CSR O(nnz)), a top-k selection, and the update of the active rows only
// (O(|active| D)). In fit the drives come from the blocked drive (drive_block.hpp: B frames
// per pass over W, nonzero inputs only, dirty rows recomputed); single steps and the dense
// mode (block 0) run a dense pass over all N rows. The trace is kept as a sparse active set; row sums
// (normalized modes) are maintained incrementally. With several threads, one OpenMP
// region spans the whole fit: thread 0 runs the step loop, the drive pass and the lateral
// term are shared out in chunks (static split first, then stealing: team.hpp), and the
// selection and update run on thread 0. Nothing is allocated per step. Results do not
// depend on the thread count (bit for bit).
//
// Stopping (run_control.hpp): after every step the loop asks its Poll whether to stop (a
// Ctrl-C), and a step whose update would write a value that is not finite into W, the
// trace or a learned lateral stops the run before it writes anything (checked on the
// values the step writes only: the active rows, their trace entries and lateral rows).
// Either way the state is exactly that after the last completed step, bounds included.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>
#ifdef SD_PROFILE_ENGINE
#include <chrono>
#include <cstdio>
#endif

#include "common.hpp"
#include "rule_a_config.hpp"
#include "csr.hpp"
#include "drive_block.hpp"
#include "rows.hpp"
#include "run_control.hpp"
#include "simd.hpp"
#include "stencil.hpp"
#include "team.hpp"
#include "topk.hpp"

namespace sd {

/// A lateral operator: none, a stencil, or a CSR matrix (learned in place when
/// cfg.learn_lateral).
template <class T>
struct LateralView {
    int kind = LAT_NONE;
    StencilView<T> st;
    CsrView<T> csr;
};

/// Bytes of weights read per step below which a fit runs on one thread. The drive pass is
/// memory-bound, so its size in bytes decides; measured on the 2-core Zen 5 VM (both
/// float32 and float64): two threads start to pay at about 0.9 MB (24x24 x 400 float32:
/// 1.09x, 20x20 x 400 float64: 1.25x, 80x80 x 400 float32: 1.7x).
constexpr i64 kParallelMinBytes = i64(1) << 20;

/// From this many active rows on, the reconstruction and the row updates of a step are
/// done by blocks of kUpdateBlock neurons (on the threads that own the rows); fewer rows
/// (k winners without a trace) are done by thread 0 in the reference's order.
constexpr i64 kBlockUpdateMinRows = 32;
constexpr i64 kUpdateBlock = 256;

/// Pick the thread count: `requested` > 0 is used as given (tests force the parallel path
/// with it); 0 means automatic: all of OpenMP's threads (at most `max_useful`) when the
/// bytes streamed per step are at least kParallelMinBytes, else one.
inline int choose_threads(i64 bytes_per_item, int requested, i64 max_useful) {
#ifndef _OPENMP
    (void)bytes_per_item, (void)requested, (void)max_useful;
    return 1;
#else
    if (requested > 0) return requested;
    if (bytes_per_item < kParallelMinBytes) return 1;
    i64 nt = omp_max_threads();
    if (nt > max_useful) nt = max_useful;
    return nt < 1 ? 1 : int(nt);
#endif
}

// ----------------------------------------------------------------------- competition
/// The model part the competition reads: W (N, D), the lateral, the row sums.
template <class T>
struct Model {
    const RuleAConfig* cfg;
    T* W;
    i64 N, D;
    LateralView<T> lat;
    T* rowsum;  ///< (N,) when cfg->uses_rowsum(), else nullptr

    bool lateral_phase() const {
        const int m = cfg->competition;
        return lat.kind != LAT_NONE &&
               (m == COMP_LATERAL || m == COMP_NORMALIZED_LATERAL || m == COMP_MEAN_LATERAL);
    }
};

/// Per-input vectors of length N (shared by the threads of a fit, each writing its range).
template <class T>
struct CompBuffers {
    T* p;   ///< drive W v
    T* c;   ///< competition value
    T* q;   ///< p / max(rowsum, prec) (normalized modes)
    T* p2;  ///< W (v*v) (weighted_average)
    T* lx;  ///< L x
};

/// Phase 1 after the dot products, on rows [n0, n1): q, and c where it needs no lateral.
template <class T>
inline void competition_post_drive(const Model<T>& m, const CompBuffers<T>& b, i64 n0, i64 n1) {
    const RuleAConfig& cfg = *m.cfg;
    const T prec = T(cfg.prec);
    const int mode = cfg.competition;
    if (mode == COMP_WEIGHTED_AVERAGE) {  // c = W (v*v) / max(p, prec)
        for (i64 n = n0; n < n1; ++n) {
            const T pn = b.p[n];
            const T den = (pn != pn || pn > prec) ? pn : prec;
            b.c[n] = b.p2[n] / den;
        }
        return;
    }
    if (cfg.uses_rowsum()) {  // q = p / max(rowsum, prec)
        for (i64 n = n0; n < n1; ++n) {
            const T rs = m.rowsum[n];
            const T den = (rs != rs || rs > prec) ? rs : prec;
            b.q[n] = b.p[n] / den;
        }
    }
    if (m.lateral_phase()) return;
    // no lateral term (L = None: L x = 0), or a competition that does not use it
    if (mode == COMP_MEAN_LATERAL) {
        for (i64 n = n0; n < n1; ++n) b.c[n] = (T(3) * b.q[n] + T(0)) / T(4);
    } else if (mode == COMP_NORMALIZED_LATERAL) {
        for (i64 n = n0; n < n1; ++n) b.c[n] = b.p[n] + T(0);
    } else {
        for (i64 n = n0; n < n1; ++n) b.c[n] = b.p[n];
    }
}

/// Phase 1 on rows [n0, n1): the drive p = W v (and p2 = W (v*v)), then q and c where it
/// needs no lateral. vv = v*v (weighted_average only).
template <class T>
inline void competition_drive(const Model<T>& m, const T* v, const T* vv, const CompBuffers<T>& b,
                              i64 n0, i64 n1) {
    if (m.cfg->competition == COMP_WEIGHTED_AVERAGE)
        simd::dot2_rows((const T*)m.W, m.D, n0, n1, v, vv, b.p, b.p2);
    else
        simd::dot_rows((const T*)m.W, m.D, n0, n1, v, b.p);
    competition_post_drive(m, b, n0, n1);
}

/// Phase 2 on rows [n0, n1) (whole grid rows for a stencil): c from p, q and L x.
/// Needs p / q of every neuron (phase 1 done on all rows). tmp: stencil scratch.
template <class T>
inline void competition_lateral(const Model<T>& m, const CompBuffers<T>& b, i64 n0, i64 n1, T* tmp) {
    const int mode = m.cfg->competition;
    const T* x = mode == COMP_LATERAL ? b.p : b.q;
    if (m.lat.kind == LAT_STENCIL) {
        const i64 cols = m.lat.st.cols;
        stencil_rows(m.lat.st, x, b.lx, n0 / cols, n1 / cols, tmp);
    } else {
        csr_matvec_rows(m.lat.csr, x, b.lx, n0, n1);
    }
    if (mode == COMP_MEAN_LATERAL) {
        for (i64 n = n0; n < n1; ++n) b.c[n] = (T(3) * b.q[n] + b.lx[n]) / T(4);
    } else {
        for (i64 n = n0; n < n1; ++n) b.c[n] = b.p[n] + b.lx[n];
    }
}

/// Scratch entries one thread needs for the lateral term (any range of rows).
template <class T>
inline i64 lateral_tmp_size(const Model<T>& m) {
    return m.lat.kind == LAT_STENCIL ? stencil_tmp_size(m.lat.st, 0, m.lat.st.rows) : 0;
}

// Optional per-phase timers of the fit loop (thread 0): compile with -DSD_PROFILE_ENGINE.
#ifdef SD_PROFILE_ENGINE
struct EngineProfile {
    double drive = 0, lateral = 0, select = 0, update = 0, upd_part = 0, upd_sum = 0, upd_rows = 0, block = 0,
           dirty = 0;
    long steps = 0;
    ~EngineProfile() {  // per-step microseconds on stderr at exit
        if (steps <= 0) return;
        const double f = 1e6 / double(steps);
        std::fprintf(stderr, "steps %ld us/step: block %.2f dirty %.2f drive %.2f lateral %.2f select %.2f update %.2f\n",
                     steps, block * f, dirty * f, drive * f, lateral * f, select * f, update * f);
    }
};
inline EngineProfile& engine_profile() {
    static EngineProfile p;
    return p;
}
#define SD_PROF_NOW() std::chrono::steady_clock::now()
#define SD_PROF_ADD(field, t0)                                                                   \
    do {                                                                                         \
        auto t1_ = SD_PROF_NOW();                                                                \
        engine_profile().field += std::chrono::duration<double>(t1_ - (t0)).count();             \
        t0 = t1_;                                                                                \
    } while (0)
#else
#define SD_PROF_NOW() 0
#define SD_PROF_ADD(field, t0) (void)(t0)
#endif

// ----------------------------------------------------------------------------- engine
/// State and scratch of a fit (or of single steps) on one model. Constructed outside the
/// parallel region (all allocation happens here). In a fit, thread 0 runs the step loop
/// (run_master) and the other threads serve its parallel phases (Team).
template <class T>
class Engine {
public:
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;
    /// `block`: frames per block of the blocked drive in run() (0: a dense pass every step).
    Engine(const RuleAConfig& cfg, T* W, T* trace, const LateralView<T>& lat, int n_threads, i64 block = 0)
        : cfg_(cfg), trace_(trace), team_(n_threads) {
        const int nt = team_.threads();
        N_ = cfg.n_neurons;
        D_ = cfg.n_inputs;
        k_ = cfg.k < N_ ? cfg.k : N_;
        m_.cfg = &cfg_;
        m_.W = W;
        m_.N = N_;
        m_.D = D_;
        m_.lat = lat;
        m_.rowsum = nullptr;
        if (cfg.uses_rowsum()) {
            rowsum_.assign(N_, T(0));
            m_.rowsum = rowsum_.data();
        }
        p_.assign(N_, T(0));
        c_.assign(N_, T(0));
        b_.p = p_.data();
        b_.c = c_.data();
        b_.q = b_.p2 = b_.lx = nullptr;
        if (cfg.uses_rowsum()) { q_.assign(N_, T(0)); b_.q = q_.data(); }
        if (cfg.competition == COMP_WEIGHTED_AVERAGE) {
            p2_.assign(N_, T(0));
            b_.p2 = p2_.data();
            vv_.assign(D_, T(0));
        }
        if (m_.lateral_phase()) { lx_.assign(N_, T(0)); b_.lx = lx_.data(); }
        tmp_stride_ = lateral_tmp_size(m_) + 1;
        tmp_.assign(size_t(nt) * tmp_stride_, T(0));
        // top-k: per-chunk candidate lists merged by thread 0 (small k), or one serial
        // selection over all of c (large k)
        chunk_topk_ = k_ <= kTopkInsertionMax;
        const i64 slots = team_.chunk_slots();
        cand_.assign(size_t(slots) * k_, 0);
        cand_cnt_.assign(slots, 0);
        merged_.assign(size_t(slots) * k_, 0);
        topk_scratch_.assign(chunk_topk_ ? 0 : N_, 0);
        win_.assign(k_, 0);
        win_sorted_.assign(k_, 0);
        active_.reserve(N_ + k_);
        next_.reserve(N_ + k_);
        undo_.reserve(N_ + k_);
        is_win_.reserve(N_ + k_);
        ov_.reserve(N_ + k_);
        r_.assign(D_, T(0));
        e_.assign(D_, T(0));
        g_.assign(D_, T(0));
        if (cfg.learn_lateral) u_.assign(N_, T(0));
        if (cfg.use_trace || k_ >= kBlockUpdateMinRows) {
            const i64 nb = (N_ + kUpdateBlock - 1) / kUpdateBlock;
            part_.assign(size_t(nb) * D_, T(0));
            bstart_.assign(nb + 1, 0);
            chunk_bad_.assign(size_t(team_.chunk_slots()), 0);
            if (!cfg.use_trace) {
                perm_.assign(k_, 0);
                sidx_.assign(k_, 0);
                sval_.assign(k_, T(0));
            }
        }
        lateral_chunks_ = N_ / (1024 * nt);  // about 1024 neurons per chunk
        if (block > 0) {
            block_B_ = block;
            frame_ptr_.assign(size_t(block), nullptr);
            block_.init(N_, D_, block, cfg.competition == COMP_WEIGHTED_AVERAGE, nt, simd::level());
            dstamp_.assign(N_, -1);
            dirty_.reserve(size_t(std::min<i64>(N_, block * (k_ + 64))));
            if (cfg.use_bounds) {
                tstamp_.assign(N_, -1);
                touched_.reserve(size_t(std::min<i64>(N_, 1024)));
            }
        }
        init_trace_state();
    }

    int threads() const { return team_.threads(); }
    /// Frames per block of the blocked drive (0: none).
    i64 block() const { return block_B_; }
    /// Bytes of scratch the blocked drive holds.
    i64 block_bytes() const { return block_B_ ? block_.bytes() : 0; }
    const T* p() const { return p_.data(); }
    const T* c() const { return c_.data(); }
    const i64* winners() const { return win_.data(); }
    i64 k() const { return k_; }

    /// The fit on the team (the calling thread is its master): steps done and how it ended.
    RunResult run(const T* X, const i64* order, i64 E, i64 S, bool reset_trace, i64 step0, Poll& poll) {
        RunResult res;
        if (block_B_ > 0)
            team_.run([&] { res = run_master_blocked(X, order, E, S, reset_trace, step0, poll); });
        else
            team_.run([&] { res = run_master(X, order, E, S, reset_trace, step0, poll); });
        return res;
    }

    /// One step (reference.step) on the calling thread, without bounds; then winners().
    /// False: its update is not finite, and nothing was written.
    bool step_single(const T* v) {
        init_rowsums();
        return step(v);
    }

    /// Competition only (reference.competition) on the calling thread: p(), c().
    void competition_single(const T* v) {
        init_rowsums();
        prepare_vv(v);
        competition_drive(m_, v, (const T*)vv_.data(), b_, 0, N_);
        if (m_.lateral_phase()) competition_lateral(m_, b_, 0, N_, tmp_.data());
    }

private:
    /// The whole fit loop (reference.fit) on thread 0, until the end, the poll's stop or a
    /// step whose update is not finite.
    RunResult run_master(const T* X, const i64* order, i64 E, i64 S, bool reset_trace, i64 step0, Poll& poll) {
        init_rowsums();
        RunResult res;
        const i64 total = E * S;
        for (i64 g = 0; g < total; ++g) {
            const i64 i = g % S;
            const bool reset = i == 0 && reset_trace;
            if (reset) {
                saved_trace_.assign(trace_, trace_ + N_);  // the reset is part of the step
                reset_trace_state();
            }
            if (!step(X + order[g] * D_)) {
                if (reset) {
                    std::copy(saved_trace_.begin(), saved_trace_.end(), trace_);
                    init_trace_state();
                }
                res.status = RUN_DIVERGED;
                break;
            }
            ++res.done;
            if (cfg_.use_bounds && (step0 + i) % cfg_.clip_every == 0) {
                bounds_pending_ = true;  // W is clipped row by row in the next drive pass
                if (cfg_.clip_lateral) clip_lateral_data();
            }
            if (g + 1 < total && poll.stop()) {
                res.status = RUN_STOPPED;
                break;
            }
        }
        if (bounds_pending_) {  // bounds due after the last step: clip W now
            auto clip = [this](int, i64, i64 b, i64 e) { rows::clip_rows(m_.W, D_, b, e, T(cfg_.w_max), (T*)nullptr); };
            team_.parallel_for(N_, 4, chunks_for_rows(N_), clip);
            bounds_pending_ = false;
        }
        return res;
    }

    void prepare_vv(const T* v) {
        if (cfg_.competition == COMP_WEIGHTED_AVERAGE) rows::square(v, vv_.data(), D_);
    }

    void init_rowsums() {
        if (!cfg_.uses_rowsum()) return;
        auto f = [this](int, i64, i64 b, i64 e) { rows::row_sums((const T*)m_.W, D_, b, e, m_.rowsum); };
        team_.parallel_for(N_, 4, chunks_for_rows(N_), f);
    }

    /// The whole fit loop with the blocked drive (drive_block.hpp) on thread 0, until the
    /// end, the poll's stop or a step whose update is not finite (then the state is that after
    /// the step before: the drives of the block are scratch, nothing else was written). Bounds
    /// are applied at once (not merged into the next drive pass): the first clip of the call to
    /// all of W, later ones to the rows updated since the clip before (the others are still
    /// inside the bounds, so clipping them would change nothing).
    RunResult run_master_blocked(const T* X, const i64* order, i64 E, i64 S, bool reset_trace, i64 step0,
                                 Poll& poll) {
        init_rowsums();
        RunResult res;
        const i64 total = E * S;
        clipped_all_ = false;
        blk_start_ = blk_end_ = 0;
        for (i64 g = 0; g < total; ++g) {
            const i64 i = g % S;
            const bool reset = i == 0 && reset_trace;
            if (reset) {
                saved_trace_.assign(trace_, trace_ + N_);  // the reset is part of the step
                reset_trace_state();
            }
            if (g == blk_end_) begin_block(X, order, g, total, S, step0);
            if (!step_blocked(X + order[g] * D_, g - blk_start_)) {
                if (reset) {
                    std::copy(saved_trace_.begin(), saved_trace_.end(), trace_);
                    init_trace_state();
                }
                res.status = RUN_DIVERGED;
                break;
            }
            ++res.done;
            if (cfg_.use_bounds && (step0 + i) % cfg_.clip_every == 0) bounds_blocked(g);
            if (g + 1 < total && poll.stop()) {
                res.status = RUN_STOPPED;
                break;
            }
        }
        return res;
    }

    /// Start the block at flattened step g: its frames and their drives (one pass over W).
    void begin_block(const T* X, const i64* order, i64 g, i64 total, i64 S, i64 step0) {
        i64 nb = std::min(block_B_, total - g);
        if (cfg_.use_bounds && !clipped_all_) {  // end the block at the first clip (it changes all rows)
            for (i64 j = 0; j < nb; ++j)
                if ((step0 + (g + j) % S) % cfg_.clip_every == 0) {
                    nb = j + 1;
                    break;
                }
        }
        blk_start_ = g;
        blk_end_ = g + nb;
        ++blk_serial_;
        dirty_.clear();
        for (i64 j = 0; j < nb; ++j) frame_ptr_[j] = X + order[g + j] * D_;
        block_.set_frames(frame_ptr_.data(), nb);
        auto f = [this](int tid, i64, i64 t0, i64 t1) { block_.product((const T*)m_.W, t0, t1, tid); };
        const i64 chunks = block_.tiles() / (4 * team_.threads());  // at least 4 tiles a chunk
        auto t0 = SD_PROF_NOW();
        team_.parallel_for(block_.tiles(), 1, chunks, f);
        SD_PROF_ADD(block, t0);
    }

    /// One step of a blocked fit: frame b of the block (its drives, dirty rows recomputed).
    /// False: its update is not finite and nothing was written.
    bool step_blocked(const T* v, i64 b) {
        b_.p = block_.p(b);
        b_.p2 = block_.p2(b);
        auto t0 = SD_PROF_NOW();
        if (!dirty_.empty()) recompute_dirty(b);
        SD_PROF_ADD(dirty, t0);
        const bool lat_phase = m_.lateral_phase();
        auto post = [this, lat_phase](int, i64 chunk, i64 n0, i64 n1) {
            competition_post_drive(m_, b_, n0, n1);
            if (!lat_phase) chunk_select(chunk, n0, n1);
        };
        if (N_ >= kBlockParallelMinRows) {
            team_.parallel_for(N_, 4, 2, post);
        } else {
            post(0, 0, 0, N_);
            serial_phase_ = true;
        }
        SD_PROF_ADD(drive, t0);
        const bool ok = finish_step(v);  // counts the step in the profile
        serial_phase_ = false;
        if (!ok) return false;
        for (i64 j : active_) {  // dirty for the rest of the block, touched for the next clip
            if (dstamp_[j] != blk_serial_) {
                dstamp_[j] = blk_serial_;
                dirty_.push_back(j);
            }
            if (cfg_.use_bounds && tstamp_[j] != touch_serial_) {
                tstamp_[j] = touch_serial_;
                touched_.push_back(j);
            }
        }
        return true;
    }

    /// The drives of frame b of the block for the rows updated since the block began. Each
    /// row's sum is one chain whatever range it falls in, so splitting the rows over the
    /// threads changes no bit; it pays from about a hundred rows (each ~75 gathered
    /// multiply-adds on tapestry frames; handing out an empty phase costs ~0.4 us on 2 threads).
    void recompute_dirty(i64 b) {
        const i64 nd = i64(dirty_.size());
        if (team_.threads() > 1 && nd >= kDirtyParallelMinRows) {
            auto f = [this, b](int, i64, i64 r0, i64 r1) {
                block_.recompute((const T*)m_.W, dirty_.data() + r0, r1 - r0, b);
            };
            team_.parallel_for(nd, 8, 1, f);
        } else {
            block_.recompute((const T*)m_.W, dirty_.data(), nd, b);
        }
    }

    /// Bounds after flattened step g of a blocked fit.
    void bounds_blocked(i64 g) {
        const T hi = T(cfg_.w_max);
        T* rs = cfg_.uses_rowsum() ? m_.rowsum : nullptr;
        if (!clipped_all_) {
            auto clip = [this, hi, rs](int, i64, i64 b, i64 e) { rows::clip_rows(m_.W, D_, b, e, hi, rs); };
            team_.parallel_for(N_, 4, chunks_for_rows(N_), clip);
            clipped_all_ = true;
            blk_end_ = g + 1;  // every drive of the block may have changed: a new block next step
        } else {
            for (i64 n : touched_) {
                T* w = m_.W + n * D_;
                if (!rows::clip_row_changed(w, D_, hi)) continue;
                if (rs) rs[n] = rows::pairwise_sum_impl((const T*)w, D_);
                if (dstamp_[n] != blk_serial_) {
                    dstamp_[n] = blk_serial_;
                    dirty_.push_back(n);
                }
            }
        }
        touched_.clear();
        ++touch_serial_;
        if (cfg_.clip_lateral) clip_lateral_data();
    }

    /// Chunks per thread for a pass over `rows` rows of W: about 128 KB of weights each.
    i64 chunks_for_rows(i64 rows) const {
        const i64 bytes = rows * D_ * i64(sizeof(T)) / team_.threads();
        return bytes / (i64(128) << 10);
    }

    /// Selection candidates of chunk `chunk` over neurons [n0, n1).
    void chunk_select(i64 chunk, i64 n0, i64 n1) {
        if (chunk_topk_) cand_cnt_[chunk] = topk_small(c_.data(), n0, n1, k_, cand_.data() + chunk * k_);
    }

    /// One step: competition (parallel phases), selection and update (thread 0). False: the
    /// update is not finite and nothing was written (pending bounds were applied: they
    /// belong to the step before).
    bool step(const T* v) {
        prepare_vv(v);
        const T* vv = vv_.empty() ? nullptr : vv_.data();
        const bool lat_phase = m_.lateral_phase();
        const bool pending = bounds_pending_;
        // phase 1: drive pass over row chunks (pending bounds: clip each block of rows
        // first, while it is in cache, and recompute its row sums)
        auto drive = [this, v, vv, lat_phase, pending](int, i64 chunk, i64 n0, i64 n1) {
            if (pending) {
                T* rs = cfg_.uses_rowsum() ? m_.rowsum : nullptr;
                for (i64 a = n0; a < n1; a += 64) {
                    const i64 b = a + 64 < n1 ? a + 64 : n1;
                    rows::clip_rows(m_.W, D_, a, b, T(cfg_.w_max), rs);
                    competition_drive(m_, v, vv, b_, a, b);
                }
            } else {
                competition_drive(m_, v, vv, b_, n0, n1);
            }
            if (!lat_phase) chunk_select(chunk, n0, n1);
        };
        auto t0 = SD_PROF_NOW();
        team_.parallel_for(N_, 4, chunks_for_rows(N_), drive);
        SD_PROF_ADD(drive, t0);
        bounds_pending_ = false;
        return finish_step(v);
    }

    /// The rest of a step once p (and q, c where no lateral is needed) are known: the lateral
    /// term, the selection and the update. False: the update is not finite, nothing written.
    bool finish_step(const T* v) {
        const bool lat_phase = m_.lateral_phase();
        auto t0 = SD_PROF_NOW();
        // phase 2: the lateral term (needs p / q of all neurons), by grid rows for a stencil
        if (lat_phase) {
            const bool st = m_.lat.kind == LAT_STENCIL;
            const i64 cols = st ? m_.lat.st.cols : 1;
            auto lateral = [this, cols](int tid, i64 chunk, i64 a, i64 b) {
                const i64 n0 = a * cols, n1 = b * cols;
                competition_lateral(m_, b_, n0, n1, tmp_.data() + size_t(tid) * tmp_stride_);
                chunk_select(chunk, n0, n1);
            };
            team_.parallel_for(st ? m_.lat.st.rows : N_, st ? 1 : 4, lateral_chunks_, lateral);
            SD_PROF_ADD(lateral, t0);
        }
        select_winners();
        SD_PROF_ADD(select, t0);
        const bool ok = update(v);
        SD_PROF_ADD(update, t0);
#ifdef SD_PROFILE_ENGINE
        ++engine_profile().steps;
#endif
        return ok;
    }

    void select_winners() {
        if (!chunk_topk_) {
            topk_range(c_.data(), 0, N_, k_, win_.data(), topk_scratch_.data());
            return;
        }
        const i64 slots = team_.chunk_slots();
        if (slots == 1 || (serial_phase_ && !m_.lateral_phase())) {  // one chunk, 0, holds the selection
            std::copy(cand_.begin(), cand_.begin() + k_, win_.begin());
            return;
        }
        i64 nc = 0;
        for (i64 t = 0; t < slots; ++t)
            for (i64 j = 0; j < cand_cnt_[t]; ++j) merged_[nc++] = cand_[size_t(t) * k_ + j];
        topk_merge(c_.data(), merged_.data(), nc, k_, win_.data());
    }

    void init_trace_state() {
        active_.clear();
        trace_dirty_ = false;
        if (cfg_.use_trace) {
            for (i64 n = 0; n < N_; ++n)
                if (trace_[n] != T(0)) active_.push_back(n);
        } else {
            trace_dirty_ = true;  // previous activity unknown: zero it all at the next step
        }
    }

    void reset_trace_state() {
        std::fill(trace_, trace_ + N_, T(0));
        active_.clear();
        trace_dirty_ = false;
    }

    /// Trace, reconstruction, error and the update of the active rows. Every value the step
    /// writes is checked first: when one is not finite the step writes nothing (the trace
    /// entries it changed are restored) and returns false.
    bool update(const T* v) {
        const T* s = cfg_.output == OUT_DRIVE ? (const T*)b_.p : c_.data();
        T* o = trace_;
        std::copy(win_.begin(), win_.end(), win_sorted_.begin());
        std::sort(win_sorted_.begin(), win_sorted_.end());
        const i64* rows_sorted;  // active rows ascending (for L^T o)
        undo_.clear();
        undo_all_ = false;
        if (!cfg_.use_trace) {
            if (trace_dirty_) {
                undo_full_.assign(o, o + N_);  // first step of a call: o may hold anything
                undo_all_ = true;
                std::fill(o, o + N_, T(0));
                trace_dirty_ = false;
            } else {
                for (i64 j : active_) {
                    undo_.push_back({j, o[j]});
                    o[j] = T(0);
                }
            }
            active_.assign(win_.begin(), win_.end());  // competition order, as the reference
            ov_.resize(k_);
            for (i64 t = 0; t < k_; ++t) {
                ov_[t] = s[win_[t]];
                if (!undo_all_) undo_.push_back({win_[t], o[win_[t]]});
                o[win_[t]] = ov_[t];
            }
            rows_sorted = win_sorted_.data();
        } else {
            // union of the previous active set and the winners, ascending
            next_.clear();
            is_win_.clear();
            size_t a = 0, b = 0;
            while (a < active_.size() || b < size_t(k_)) {
                if (b == size_t(k_) || (a < active_.size() && active_[a] < win_sorted_[b])) {
                    next_.push_back(active_[a++]);
                    is_win_.push_back(0);
                } else {
                    if (a < active_.size() && active_[a] == win_sorted_[b]) ++a;
                    next_.push_back(win_sorted_[b++]);
                    is_win_.push_back(1);
                }
            }
            const T alpha = T(cfg_.trace_alpha);
            T big = T(0);
            for (size_t t = 0; t < next_.size(); ++t) {
                const i64 j = next_[t];
                const T aj = is_win_[t] ? s[j] : T(0);
                undo_.push_back({j, o[j]});
                const T oj = o[j] + alpha * (aj - o[j]);
                o[j] = oj;
                const T mag = std::abs(oj);
                if (mag > big || mag != mag) big = (big != big) ? big : mag;
            }
            const T thr = T(cfg_.trace_drop) * big;
            active_.clear();
            ov_.clear();
            for (i64 j : next_) {
                if (std::abs(o[j]) < thr) o[j] = T(0);
                if (o[j] != T(0)) {
                    active_.push_back(j);
                    ov_.push_back(o[j]);
                }
            }
            rows_sorted = active_.data();
        }
        // A non-finite activity makes its row's update non-finite too, so the rows' check
        // covers the trace.
        const i64 na = i64(active_.size());
        const bool blocked = na >= kBlockUpdateMinRows;
        const bool rows_ok = blocked ? prepare_rows_blocked(v, cfg_.use_trace ? active_.data() : nullptr)
                                     : prepare_rows_serial(v);
        const i64 nlat = cfg_.use_trace ? na : k_;
        bool ok = rows_ok;
        if (ok && cfg_.learn_lateral) {
            csr_rmatvec_rows(m_.lat.csr, (const T*)o, rows_sorted, nlat, u_.data());
            ok = csr_learn_finite(m_.lat.csr, (const T*)o, rows_sorted, nlat, T(cfg_.lateral_lr), T(cfg_.prec),
                                  (const T*)u_.data());
            if (!ok) csr_clear_u(m_.lat.csr, rows_sorted, nlat, u_.data());
        }
        if (!ok) {
            restore_trace();
            return false;
        }
        if (blocked)
            commit_rows_blocked();
        else
            commit_rows_serial();
        if (cfg_.learn_lateral)
            csr_learn_apply(m_.lat.csr, (const T*)o, rows_sorted, nlat, T(cfg_.lateral_lr), T(cfg_.prec), u_.data());
        return true;
    }

    /// Undo this step's writes to the trace (a step that stops before its update).
    void restore_trace() {
        if (undo_all_) std::copy(undo_full_.begin(), undo_full_.end(), trace_);
        for (size_t t = undo_.size(); t-- > 0;) trace_[undo_[t].first] = undo_[t].second;
        // the engine's active set no longer describes the trace: rebuild it from the trace
        if (cfg_.use_trace) {
            active_.clear();
            for (i64 n = 0; n < N_; ++n)
                if (trace_[n] != T(0)) active_.push_back(n);
        } else {
            trace_dirty_ = true;
        }
    }

    /// r, e, g on thread 0, r summed over the active rows in their order (the reference's
    /// order), and the check of the rows' update. Used for few active rows (k winners, no
    /// trace). False: an updated value would not be finite.
    bool prepare_rows_serial(const T* v) {
        const i64 na = i64(active_.size());
        std::fill(r_.begin(), r_.end(), T(0));  // r = sum_j o_j W_j, W before the update
        for (i64 t = 0; t < na; ++t) rows::axpy(r_.data(), ov_[t], (const T*)(m_.W + active_[t] * D_), D_);
        rows::error_and_gain(v, (const T*)r_.data(), e_.data(), g_.data(), D_, cfg_.use_error_clip,
                             T(cfg_.error_clip), T(cfg_.prec));
        const T lr = T(cfg_.lr);
        for (i64 t = 0; t < na; ++t)
            if (!rows::update_row_finite((const T*)(m_.W + active_[t] * D_), T(lr * ov_[t]), (const T*)g_.data(), D_))
                return false;
        return true;
    }

    /// The row updates prepared by prepare_rows_serial.
    void commit_rows_serial() {
        const i64 na = i64(active_.size());
        const T lr = T(cfg_.lr);
        for (i64 t = 0; t < na; ++t) {
            T* w = m_.W + active_[t] * D_;
            rows::update_row(w, T(lr * ov_[t]), (const T*)g_.data(), D_);
            if (m_.rowsum) m_.rowsum[active_[t]] = rows::pairwise_sum_impl((const T*)w, D_);
        }
    }

    /// Many active rows (a trace keeps ~40 k of them): r is the sum, in block order, of
    /// partial sums over fixed blocks of kUpdateBlock neurons (each over its active rows in
    /// ascending order), and each block's partial sum, check and row updates are done by the
    /// thread that owns those rows in the drive pass, so the rows stay in that core's
    /// cache. (Thread 0 doing it all pulled half the rows from the other core and back:
    /// 38 us instead of 12 us per step at 80x80 with two threads.) The blocks do not
    /// depend on the thread count, so neither do the results.
    /// `sorted`: the active rows ascending with ov_ in the same order, or nullptr (then the
    /// k winners are sorted here). False: an updated value would not be finite.
    bool prepare_rows_blocked(const T* v, const i64* sorted) {
        const i64 na = i64(active_.size());
        const i64* idx = sorted;
        const T* val = ov_.data();
        if (!sorted) {  // no trace: the winners in competition order; sort them with their values
            for (i64 t = 0; t < na; ++t) perm_[t] = t;
            std::sort(perm_.begin(), perm_.begin() + na, [this](i64 a, i64 b) { return active_[a] < active_[b]; });
            for (i64 t = 0; t < na; ++t) {
                sidx_[t] = active_[perm_[t]];
                sval_[t] = ov_[perm_[t]];
            }
            idx = sidx_.data();
            val = sval_.data();
        }
        blk_idx_ = idx;
        blk_val_ = val;
        const i64 nb = (N_ + kUpdateBlock - 1) / kUpdateBlock;
        for (i64 b = 0, t = 0; b <= nb; ++b) {  // block b holds active rows [bstart_[b], bstart_[b+1])
            while (t < na && idx[t] < b * kUpdateBlock) ++t;
            bstart_[b] = t;
        }
        auto partial = [this, idx, val](int, i64, i64 b0, i64 b1) {
            for (i64 b = b0; b < b1; ++b) {
                if (bstart_[b] == bstart_[b + 1]) continue;
                T* pr = part_.data() + b * D_;
                std::fill(pr, pr + D_, T(0));
                for (i64 t = bstart_[b]; t < bstart_[b + 1]; ++t)
                    rows::axpy(pr, val[t], (const T*)(m_.W + idx[t] * D_), D_);
            }
        };
        blk_chunks_ = na * D_ * i64(sizeof(T)) / (i64(64) << 10) / team_.threads();
        auto t0 = SD_PROF_NOW();
        team_.parallel_for(nb, 1, blk_chunks_, partial);
        SD_PROF_ADD(upd_part, t0);
        std::fill(r_.begin(), r_.end(), T(0));
        for (i64 b = 0; b < nb; ++b)
            if (bstart_[b] != bstart_[b + 1]) rows::axpy(r_.data(), T(1), (const T*)(part_.data() + b * D_), D_);
        rows::error_and_gain(v, (const T*)r_.data(), e_.data(), g_.data(), D_, cfg_.use_error_clip,
                             T(cfg_.error_clip), T(cfg_.prec));
        const T lr = T(cfg_.lr);
        std::fill(chunk_bad_.begin(), chunk_bad_.end(), char(0));
        auto check = [this, idx, val, lr](int, i64 chunk, i64 b0, i64 b1) {
            for (i64 t = bstart_[b0]; t < bstart_[b1]; ++t)
                if (!rows::update_row_finite((const T*)(m_.W + idx[t] * D_), T(lr * val[t]), (const T*)g_.data(), D_)) {
                    chunk_bad_[chunk] = 1;
                    return;
                }
        };
        team_.parallel_for(nb, 1, blk_chunks_, check);
        SD_PROF_ADD(upd_sum, t0);
        for (char b : chunk_bad_)
            if (b) return false;
        return true;
    }

    /// The row updates prepared by prepare_rows_blocked, by the threads owning the rows.
    void commit_rows_blocked() {
        const i64 nb = (N_ + kUpdateBlock - 1) / kUpdateBlock;
        const i64* idx = blk_idx_;
        const T* val = blk_val_;
        const T lr = T(cfg_.lr);
        auto upd = [this, idx, val, lr](int, i64, i64 b0, i64 b1) {
            for (i64 t = bstart_[b0]; t < bstart_[b1]; ++t) {
                T* w = m_.W + idx[t] * D_;
                rows::update_row(w, T(lr * val[t]), (const T*)g_.data(), D_);
                if (m_.rowsum) m_.rowsum[idx[t]] = rows::pairwise_sum_impl((const T*)w, D_);
            }
        };
        auto t0 = SD_PROF_NOW();
        team_.parallel_for(nb, 1, blk_chunks_, upd);
        SD_PROF_ADD(upd_rows, t0);
    }

    void clip_lateral_data() {
        CsrView<T>& L = m_.lat.csr;
        rows::clip(L.data, L.indptr[L.n], T(0), T(cfg_.w_max));
    }

    RuleAConfig cfg_;
    T* trace_;
    Team team_;
    i64 N_ = 0, D_ = 0, k_ = 0;
    Model<T> m_;
    CompBuffers<T> b_;
    std::vector<T> rowsum_, p_, c_, q_, p2_, lx_, vv_, tmp_, r_, e_, g_, u_, ov_;
    i64 tmp_stride_ = 0;
    bool chunk_topk_ = true;
    i64 lateral_chunks_ = 1;
    std::vector<i64> cand_, cand_cnt_, topk_scratch_, win_, win_sorted_, merged_, active_, next_;
    std::vector<char> is_win_;
    std::vector<T> part_, sval_;                 // blocked update: partial sums, sorted values
    std::vector<i64> bstart_, perm_, sidx_;      // blocked update: block starts, sort scratch
    bool trace_dirty_ = false;
    bool bounds_pending_ = false;
    // a step that stops before its update: the trace entries it changed, or all of them
    std::vector<std::pair<i64, T>> undo_;
    std::vector<T> undo_full_, saved_trace_;
    bool undo_all_ = false;
    std::vector<char> chunk_bad_;               // blocked update: a chunk's rows would not be finite
    const i64* blk_idx_ = nullptr;              // blocked update: rows and values between check and commit
    const T* blk_val_ = nullptr;
    i64 blk_chunks_ = 1;
    // blocked drive (run_master_blocked)
    static constexpr i64 kBlockParallelMinRows = 16384;  // below: a step's O(N) work on thread 0
    static constexpr i64 kDirtyParallelMinRows = 96;     // below: dirty rows recomputed on thread 0
    i64 block_B_ = 0;
    blockdrive::Block<T> block_;
    std::vector<const T*> frame_ptr_;
    i64 blk_start_ = 0, blk_end_ = 0, blk_serial_ = 0;
    bool clipped_all_ = false, serial_phase_ = false;
    std::vector<i64> dirty_, dstamp_;    // rows updated since the block began (stamped with its serial)
    std::vector<i64> touched_, tstamp_;  // rows updated since the last clip (blocked bounds)
    i64 touch_serial_ = 0;
};

// ------------------------------------------------------------------------ entry points
/// Dense frames and weights that fit in L2 run faster with a dense pass per step than with the
/// blocked drive (20 x 20 x 400 float32, one thread: 10.6 against 15.5 us a step on frames
/// without zeros; the two meet near 32 x 32, 1.6 MB; on the tapestry's frames, 19% nonzero,
/// the blocked drive is faster at every size, 7.5 against 12.2 us at 20 x 20). A linear fit
/// of the two puts the switch at 60% nonzero inputs. The size: on an AVX2 Zen 3 core (two
/// threads, dense frames, benches/bench_rule_a_drive.py) the dense pass is still 1.1x faster at
/// 40 x 40 (2.6 MB; 0.90 and 0.92 in two runs) and 1.18x slower at 48 x 48 (3.7 MB); on the
/// AVX-512 Xeon the two were even at 40 x 40 (1.03). So up to 3 MB.
constexpr i64 kDenseSwitchBytes = i64(3) << 20;
constexpr double kDenseSwitchDensity = 0.6;

/// Mean share of nonzero inputs over the first (at most) 1,024 frames of a call.
template <class T>
inline double call_density(const T* X, const i64* order, i64 steps, i64 D) {
    const i64 n = std::min<i64>(steps, 1024);
    i64 nz = 0;
    for (i64 i = 0; i < n; ++i) {
        const T* v = X + order[i] * D;
        for (i64 d = 0; d < D; ++d) nz += v[d] != T(0);
    }
    return n ? double(nz) / double(n * D) : 0.0;
}

/// reference.fit: train on X[order[e, i]] for every epoch row e, in place on W, trace and a
/// learned lateral. n_threads: 0 automatic. Call without the GIL. Stops early when `poll`
/// says so or before a step whose update is not finite; returns the steps done and why.
/// block: frames per block of the blocked drive; -1 chooses (a dense pass for dense frames on
/// weights that fit in L2, else blockdrive::choose_block), 0 runs a dense pass every step.
template <class T>
inline RunResult fit(const RuleAConfig& cfg, T* W, T* trace, const LateralView<T>& lat, const T* X,
                     const i64* order, i64 E, i64 S, bool reset_trace, i64 step0, int n_threads,
                     Poll poll = Poll(), i64 block = -1) {
    const i64 N = cfg.n_neurons, D = cfg.n_inputs;
    const i64 bytes = N * D * i64(sizeof(T));
    const int nt = choose_threads(bytes, n_threads, N / 64);
    const bool two = cfg.competition == COMP_WEIGHTED_AVERAGE;
    const i64 k = cfg.k < N ? cfg.k : N;
    if (block < 0)
        block = bytes <= kDenseSwitchBytes && call_density(X, order, E * S, D) > kDenseSwitchDensity
                    ? 0
                    : blockdrive::choose_block(N, D, k, i64(sizeof(T)), two, E * S);
    if (block > blockdrive::kMaxBlock) block = blockdrive::kMaxBlock;
    if (block > E * S) block = E * S;
    Engine<T> eng(cfg, W, trace, lat, nt, block);
    return eng.run(X, order, E, S, reset_trace, step0, poll);
}

/// reference.infer: winners (n, k) and their activity s for each row of X, no learning.
/// Samples are processed in blocks sharing one read of W; blocks are split over threads.
template <class T>
inline void infer(const RuleAConfig& cfg, const T* W, const LateralView<T>& lat, const T* X, i64 n,
                  i64* win_out, T* val_out, int n_threads) {
    const i64 N = cfg.n_neurons, D = cfg.n_inputs, k = cfg.k < N ? cfg.k : N;
    const bool wa = cfg.competition == COMP_WEIGHTED_AVERAGE;
    constexpr int kBlock = 8;
    const i64 nblocks = (n + kBlock - 1) / kBlock;
    // blocks of samples are independent: threads pay once there is enough work in all
    const int nt = choose_threads(N * D * i64(sizeof(T)) * nblocks, n_threads, nblocks);
    Model<T> m;
    m.cfg = &cfg;
    m.W = const_cast<T*>(W);
    m.N = N;
    m.D = D;
    m.lat = lat;
    std::vector<T> rowsum(cfg.uses_rowsum() ? N : 0);
    m.rowsum = rowsum.empty() ? nullptr : rowsum.data();
    if (m.rowsum) rows::row_sums(W, D, i64(0), N, m.rowsum);
    const i64 tmpn = lateral_tmp_size(m) + 1;
    const bool lat_phase = m.lateral_phase();
    // per-thread scratch, allocated here (no allocation inside the parallel region):
    // kBlock drives (and W (x*x) for weighted_average), c, q, L x, stencil scratch, x*x
    struct Scratch {
        std::vector<T> P, P2, c, q, lx, tmp, XX;
        std::vector<i64> sel;
    };
    std::vector<Scratch> ws(nt);
    for (Scratch& w : ws) {
        w.P.resize(size_t(kBlock) * N);
        w.P2.resize(wa ? size_t(kBlock) * N : 0);
        w.c.resize(N);
        w.q.resize(cfg.uses_rowsum() ? N : 0);
        w.lx.resize(lat_phase ? N : 0);
        w.tmp.resize(tmpn);
        w.XX.resize(wa ? size_t(kBlock) * D : 0);
        w.sel.resize(k > kTopkInsertionMax ? N : 0);
    }
    char tsan_fork = 0, tsan_join = 0;  // the region's edges for TSan (common.hpp)
    SD_TSAN_FORK(&tsan_fork);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
    SD_TSAN_ENTER(&tsan_fork);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (i64 blk = 0; blk < nblocks; ++blk) {
        Scratch& w = ws[omp_thread_id()];
        const i64 s0 = blk * kBlock;
        const int ns = int(std::min<i64>(kBlock, n - s0));
        const T* xs[2 * kBlock];
        T* outs[2 * kBlock];
        int nv = 0;
        for (int s = 0; s < ns; ++s) {
            xs[nv] = X + (s0 + s) * D;
            outs[nv++] = w.P.data() + size_t(s) * N;
        }
        if (wa) {
            for (int s = 0; s < ns; ++s) {
                rows::square(X + (s0 + s) * D, w.XX.data() + size_t(s) * D, D);
                xs[nv] = w.XX.data() + size_t(s) * D;
                outs[nv++] = w.P2.data() + size_t(s) * N;
            }
        }
        for (i64 a = 0; a < N; a += 64)  // W rows in L2-sized tiles, each read once per block
            simd::dot_rows_batch(W, D, a, std::min<i64>(N, a + 64), xs, outs, nv);
        for (int s = 0; s < ns; ++s) {
            CompBuffers<T> b;
            b.p = w.P.data() + size_t(s) * N;
            b.p2 = wa ? w.P2.data() + size_t(s) * N : nullptr;
            b.c = w.c.data();
            b.q = w.q.empty() ? nullptr : w.q.data();
            b.lx = w.lx.empty() ? nullptr : w.lx.data();
            competition_post_drive(m, b, 0, N);
            if (lat_phase) competition_lateral(m, b, 0, N, w.tmp.data());
            i64* win = win_out + (s0 + s) * k;
            topk(b.c, N, k, win, w.sel.empty() ? nullptr : w.sel.data());
            const T* sv = cfg.output == OUT_DRIVE ? b.p : b.c;
            for (i64 j = 0; j < k; ++j) val_out[(s0 + s) * k + j] = sv[win[j]];
        }
    }
    SD_TSAN_LEAVE(&tsan_join);
    }
    SD_TSAN_JOIN(&tsan_join);
    (void)tsan_fork, (void)tsan_join;
}

}  // namespace sd
