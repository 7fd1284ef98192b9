// Rule D: TNN columns (ramp-no-leak temporal neurons, k-WTA by earliest spike, stochastic
// STDP with Philox draws) and the network program that chains them wave by wave.
// Semantics: sparsedream_fast/tnn/reference.py (the specification) and tnn/program.py.
// Spike times are uint8 in [0, T], T meaning no spike.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"
#include "philox.hpp"
#include "run_control.hpp"
#include "simd.hpp"
#include "team.hpp"
#include "tnn_rule.hpp"

namespace sd {

/// Below this many synapses per wave in levels of several columns, training stays on one
/// thread: a parallel phase per wave costs about a microsecond.
constexpr i64 kTnnParallelMinSynapses = 4096;

/// One column of a network program (weights owned by the caller).
template <class Wt>
struct TnnColumn {
    i64 n = 0, d = 0;
    i64 theta = 1, k = 1, w_max = 1;
    StdpParams stdp{0, 0, 0, 0, 0};
    const i32* in_lines = nullptr;       // (d,)
    const std::uint8_t* plastic = nullptr;  // (d,)
    i64 out0 = 0;
    Wt* W = nullptr;                     // (n, d) row-major
};

template <class Wt>
struct TnnProgram {
    int T = 16;
    i64 n_in = 0, n_lines = 0;
    std::vector<i32> delay_src, delay_dst;
    std::vector<TnnColumn<Wt>> columns;
    std::vector<i32> record;
};

/// Philox of many synapse counters c0[m] sharing the other counter words and the key: the
/// three first outputs of each. A plain loop, compiled per SIMD level (SD_MULTIVERSION), where
/// it vectorizes across synapses (the 32 x 32 -> 64-bit products map to vpmuludq).
SD_INLINE void philox_batch_impl(const std::uint32_t* SD_RESTRICT c0, i64 n, std::uint32_t c1, std::uint32_t c2,
                                 std::uint32_t c3, std::uint32_t k0, std::uint32_t k1, std::uint32_t* SD_RESTRICT r0,
                                 std::uint32_t* SD_RESTRICT r1, std::uint32_t* SD_RESTRICT r2) {
    for (i64 m = 0; m < n; ++m) {
        const U32x4 r = philox4x32_10(c0[m], c1, c2, c3, k0, k1);
        r0[m] = r.v[0];
        r1[m] = r.v[1];
        r2[m] = r.v[2];
    }
}
SD_MULTIVERSION(philox_batch, philox_batch_impl)

/// Scratch of one column evaluation (reused across waves to avoid allocation).
struct TnnScratch {
    std::vector<std::uint8_t> x;        // gathered input times (d)
    std::vector<i32> active;            // inputs that spiked
    std::vector<std::uint8_t> fire;     // firing step per neuron (T = none)
    std::vector<i32> counts;            // neurons per firing step (T + 1)
    std::vector<std::uint32_t> syn, r0, r1, r2;  // STDP candidates (j * d + i) and their draws
    std::vector<i64> row_end;           // candidates of neuron j end at row_end[j]
    std::vector<double> g_plus, g_minus;  // F+ and F- probabilities per weight value
};

/// Firing step of neuron row W[0..d) for the active inputs: the first t with potential >= theta.
/// The potential is the sum of ramps min(max(t - x + 1, 0), w): each active input raises the
/// slope by one from step x to step x + w - 1, so a difference array of slopes gives it in
/// O(active + T) instead of O(d T).
template <class Wt>
SD_INLINE int fire_step(const Wt* SD_RESTRICT w, const std::uint8_t* SD_RESTRICT x,
                        const i32* SD_RESTRICT active, i64 n_active, int T, i64 theta, i32* SD_RESTRICT diff) {
    i64 cap = 0;  // the potential at the end of the wave bounds every step's
    for (i64 a = 0; a < n_active; ++a) {
        const i32 i = active[a];
        const i64 wi = i64(w[i]);
        const i64 room = T - i64(x[i]);
        cap += wi < room ? wi : room;
    }
    if (cap < theta) return T;
    std::memset(diff, 0, sizeof(i32) * (T + 1));
    for (i64 a = 0; a < n_active; ++a) {
        const i32 i = active[a];
        const i32 wi = i32(w[i]);
        if (wi <= 0) continue;
        const i32 xi = x[i];
        diff[xi] += 1;
        const i32 end = xi + wi;
        if (end < T) diff[end] -= 1;
    }
    i64 slope = 0, v = 0;
    for (int t = 0; t < T; ++t) {
        slope += diff[t];
        v += slope;
        if (v >= theta) return t;
    }
    return T;
}

/// One wave of one column: gather, fire, k-WTA (ties to the lower index), write the output
/// lines, and STDP when `learn`.
template <class Wt>
void tnn_column_wave(const TnnColumn<Wt>& col, int T, std::uint8_t* SD_RESTRICT lines, bool learn,
                     std::uint64_t wave, std::uint32_t column_id, std::uint32_t k0, std::uint32_t k1,
                     TnnScratch& s) {
    const i64 n = col.n, d = col.d;
    s.x.resize(d);
    s.active.resize(d);
    s.fire.resize(n);
    s.counts.assign(T + 1, 0);
    i64 n_active = 0;
    for (i64 i = 0; i < d; ++i) {
        const std::uint8_t xi = lines[col.in_lines[i]];
        s.x[i] = xi;
        if (xi < T) s.active[n_active++] = i32(i);
    }
    i32 diff[256 + 1];
    for (i64 j = 0; j < n; ++j) {
        const int f = fire_step(col.W + j * d, s.x.data(), s.active.data(), n_active, T, col.theta, diff);
        s.fire[j] = std::uint8_t(f);
        s.counts[f] += 1;
    }
    // k-WTA: all neurons firing before the cutoff step win, then the lowest indices at it.
    i64 before = 0;
    int cut = 0;
    while (cut < T && before + s.counts[cut] < col.k) before += s.counts[cut++];
    i64 at_cut = col.k - before;  // winners still to take at step `cut` (if cut < T)
    std::uint8_t* out = lines + col.out0;
    for (i64 j = 0; j < n; ++j) {
        const int f = s.fire[j];
        std::uint8_t y = std::uint8_t(T);
        if (f < cut) {
            y = std::uint8_t(f);
        } else if (f == cut && cut < T && at_cut > 0) {
            y = std::uint8_t(f);
            --at_cut;
        }
        out[j] = y;
    }
    if (!learn) return;

    // STDP. Only synapses in cases 1-4 draw (a counter-based draw is the same whether or not
    // the others are made); case 5 (neither spiked) never changes. The candidates' draws are
    // made in one vectorized batch, then applied.
    const std::uint8_t* plastic = col.plastic;
    s.syn.resize(size_t(n * d));
    s.row_end.resize(size_t(n));
    i64 n_syn = 0;
    for (i64 j = 0; j < n; ++j) {
        const std::uint32_t base = std::uint32_t(j * d);
        if (out[j] < T) {
            for (i64 i = 0; i < d; ++i)
                if (plastic[i]) s.syn[n_syn++] = base + std::uint32_t(i);
        } else {
            for (i64 a = 0; a < n_active; ++a)
                if (plastic[s.active[a]]) s.syn[n_syn++] = base + std::uint32_t(s.active[a]);
        }
        s.row_end[j] = n_syn;
    }
    s.r0.resize(size_t(n_syn) + 1);
    s.r1.resize(size_t(n_syn) + 1);
    s.r2.resize(size_t(n_syn) + 1);
    philox_batch(s.syn.data(), n_syn, std::uint32_t(wave), std::uint32_t(wave >> 32), column_id, k0, k1,
                 s.r0.data(), s.r1.data(), s.r2.data());
    // F+ and F- as tables over the weight values (the same operations, once per value).
    if (i64(s.g_plus.size()) != col.w_max + 1) {
        s.g_plus.resize(size_t(col.w_max + 1));
        s.g_minus.resize(size_t(col.w_max + 1));
    }
    for (i64 v = 0; v <= col.w_max; ++v) {
        s.g_plus[v] = stdp_stability(v, col.w_max, true);
        s.g_minus[v] = stdp_stability(v, col.w_max, false);
    }
    i64 m = 0;
    for (i64 j = 0; j < n; ++j) {
        const int y = out[j];
        Wt* SD_RESTRICT wrow = col.W + j * d;
        const std::uint32_t base = std::uint32_t(j * d);
        for (; m < s.row_end[j]; ++m) {
            const i64 i = i64(s.syn[m] - base);
            double p;
            bool up;
            stdp_case(s.x[i], y, T, col.stdp, &p, &up);  // candidates are never case 5
            const i64 w = i64(wrow[i]);
            wrow[i] = Wt(stdp_new_weight(w, col.w_max, up, p, up ? s.g_plus[w] : s.g_minus[w], col.stdp.u_min,
                                         s.r0[m], s.r1[m], s.r2[m]));
        }
    }
}

/// Columns grouped by dependency level within a wave: a column reading no column's lines is
/// at level 0, one reading columns of levels <= l at level l + 1. Columns of one level write
/// disjoint lines, read only lower levels and own their weights and Philox counters, so they
/// can run on different threads with the same bits as in order.
template <class Wt>
std::vector<std::vector<std::uint32_t>> tnn_levels(const TnnProgram<Wt>& prog) {
    std::vector<i64> owner(size_t(prog.n_lines), -1);
    for (size_t c = 0; c < prog.columns.size(); ++c)
        for (i64 j = 0; j < prog.columns[c].n; ++j) owner[size_t(prog.columns[c].out0 + j)] = i64(c);
    std::vector<i64> level(prog.columns.size(), 0);
    std::vector<std::vector<std::uint32_t>> out;
    for (size_t c = 0; c < prog.columns.size(); ++c) {
        const TnnColumn<Wt>& col = prog.columns[c];
        for (i64 i = 0; i < col.d; ++i) {
            const i64 o = owner[size_t(col.in_lines[i])];
            if (o >= 0 && level[size_t(o)] + 1 > level[c]) level[c] = level[size_t(o)] + 1;
        }
        if (size_t(level[c]) >= out.size()) out.resize(size_t(level[c]) + 1);
        out[size_t(level[c])].push_back(std::uint32_t(c));
    }
    return out;
}

/// Present sequences [s0, s1) of `data` (S, n_waves, n_in) to the program; record lines
/// into `rec` (S, n_waves, R). Returns the wave counter after the last learning wave.
/// With a Team (master thread only; its helpers serving), the columns of a level run on the
/// team's threads, one chunk per column. With a poll, it is asked after every sequence (a
/// sequence's waves share the delay lines, so a sequence is the unit a fit stops at);
/// `res` gets the sequences completed and how the run ended.
template <class Wt>
std::uint64_t tnn_run(const TnnProgram<Wt>& prog, const std::uint8_t* data, i64 s0, i64 s1, i64 n_waves,
                      bool learn, std::uint64_t wave, std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec,
                      Team* team = nullptr, Poll* poll = nullptr, RunResult* res = nullptr) {
    const int T = prog.T;
    const i64 L = prog.n_lines, R = i64(prog.record.size());
    std::vector<std::uint8_t> lines(L, std::uint8_t(T)), prev(L);
    const int nt = team ? team->threads() : 1;
    std::vector<TnnScratch> scratch(static_cast<size_t>(nt));
    const std::vector<std::vector<std::uint32_t>> levels = tnn_levels(prog);
    for (i64 s = s0; s < s1; ++s) {
        std::fill(prev.begin(), prev.end(), std::uint8_t(T));
        for (i64 wv = 0; wv < n_waves; ++wv) {
            std::memcpy(lines.data(), data + (s * n_waves + wv) * prog.n_in, size_t(prog.n_in));
            for (size_t m = 0; m < prog.delay_src.size(); ++m) lines[prog.delay_dst[m]] = prev[prog.delay_src[m]];
            for (const std::vector<std::uint32_t>& lv : levels) {
                if (nt == 1 || lv.size() < 2) {
                    for (std::uint32_t c : lv)
                        tnn_column_wave(prog.columns[c], T, lines.data(), learn, wave, c, k0, k1, scratch[0]);
                    continue;
                }
                std::uint8_t* ln = lines.data();
                auto f = [&](int tid, i64, i64 b, i64 e) {
                    for (i64 q = b; q < e; ++q)
                        tnn_column_wave(prog.columns[lv[size_t(q)]], T, ln, learn, wave, lv[size_t(q)], k0, k1,
                                        scratch[size_t(tid)]);
                };
                team->parallel_for(i64(lv.size()), 1, Team::kChunksPerThread, f);
            }
            std::uint8_t* r = rec + (s * n_waves + wv) * R;
            for (i64 m = 0; m < R; ++m) r[m] = lines[prog.record[m]];
            std::swap(lines, prev);
            if (learn) ++wave;
        }
        if (res) ++res->done;
        if (poll && s + 1 < s1 && poll->stop()) {
            if (res) res->status = RUN_STOPPED;
            break;
        }
    }
    return wave;
}

/// Training with `n_threads` threads (0: automatic, i.e. OpenMP's count when a level has
/// several columns and enough synapses to pay for a phase per wave). Same bits for any count.
/// Stops after a sequence when `poll` says so; `res` gets the sequences completed.
template <class Wt>
std::uint64_t tnn_fit(const TnnProgram<Wt>& prog, const std::uint8_t* data, i64 S, i64 n_waves, std::uint64_t wave,
                      std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec, int n_threads, Poll& poll,
                      RunResult& res) {
    res = RunResult();
    i64 parallel_synapses = 0;  // work in levels of two or more columns, per wave
    for (const std::vector<std::uint32_t>& lv : tnn_levels(prog))
        if (lv.size() >= 2)
            for (std::uint32_t c : lv) parallel_synapses += prog.columns[c].n * prog.columns[c].d;
    int nt = n_threads;
#ifdef _OPENMP
    if (nt <= 0) nt = parallel_synapses >= kTnnParallelMinSynapses ? omp_max_threads() : 1;
#else
    nt = 1;
#endif
    if (nt < 2 || parallel_synapses == 0)
        return tnn_run(prog, data, 0, S, n_waves, true, wave, k0, k1, rec, nullptr, &poll, &res);
    Team team(nt);
    std::uint64_t out = wave;
    team.run([&] { out = tnn_run(prog, data, 0, S, n_waves, true, wave, k0, k1, rec, &team, &poll, &res); });
    return out;
}

}  // namespace sd
