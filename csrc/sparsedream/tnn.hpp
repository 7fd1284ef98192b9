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

namespace sd {

/// One column of a network program (weights owned by the caller).
template <class Wt>
struct TnnColumn {
    i64 n = 0, d = 0;
    i64 theta = 1, k = 1, w_max = 1;
    double capture = 0, minus = 0, search = 0, backoff = 0, u_min = 0;
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

/// Scratch of one column evaluation (reused across waves to avoid allocation).
struct TnnScratch {
    std::vector<std::uint8_t> x;        // gathered input times (d)
    std::vector<i32> active;            // inputs that spiked
    std::vector<std::uint8_t> fire;     // firing step per neuron (T = none)
    std::vector<i32> counts;            // neurons per firing step (T + 1)
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
    // the others are made); case 5 (neither spiked) never changes.
    const double wm = double(col.w_max);
    const std::uint32_t wlo = std::uint32_t(wave), whi = std::uint32_t(wave >> 32);
    const std::uint8_t* plastic = col.plastic;
    for (i64 j = 0; j < n; ++j) {
        const int y = out[j];
        Wt* SD_RESTRICT w = col.W + j * d;
        const std::uint32_t base = std::uint32_t(j * d);
        auto visit = [&](i64 i) {
            if (!plastic[i]) return;
            const int x = s.x[i];
            const bool xs = x < T, ys = y < T;
            double p;
            bool up;
            if (xs && ys) {
                up = x <= y;
                p = up ? col.capture : col.minus;
            } else if (xs) {
                up = true;
                p = col.search;
            } else {
                up = false;
                p = col.backoff;
            }
            const U32x4 r = philox4x32_10(base + std::uint32_t(i), wlo, whi, column_id, k0, k1);
            if (!(unit_double(r.v[0]) < p)) return;
            const double f = double(w[i]) / wm;  // a division, as in the reference (bitwise)
            const double g = up ? f * (2.0 - f) : (1.0 - f) * (1.0 + f);
            if (!(unit_double(r.v[1]) < g || unit_double(r.v[2]) < col.u_min)) return;
            const i64 nw = i64(w[i]) + (up ? 1 : -1);
            w[i] = Wt(nw < 0 ? 0 : (nw > col.w_max ? col.w_max : nw));
        };
        if (y < T) {
            for (i64 i = 0; i < d; ++i) visit(i);
        } else {
            for (i64 a = 0; a < n_active; ++a) visit(s.active[a]);
        }
    }
}

/// Present sequences [s0, s1) of `data` (S, n_waves, n_in) to the program; record lines
/// into `rec` (S, n_waves, R). Returns the wave counter after the last learning wave.
template <class Wt>
std::uint64_t tnn_run(const TnnProgram<Wt>& prog, const std::uint8_t* data, i64 s0, i64 s1, i64 n_waves,
                      bool learn, std::uint64_t wave, std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec) {
    const int T = prog.T;
    const i64 L = prog.n_lines, R = i64(prog.record.size());
    std::vector<std::uint8_t> lines(L, std::uint8_t(T)), prev(L);
    TnnScratch scratch;
    for (i64 s = s0; s < s1; ++s) {
        std::fill(prev.begin(), prev.end(), std::uint8_t(T));
        for (i64 wv = 0; wv < n_waves; ++wv) {
            std::memcpy(lines.data(), data + (s * n_waves + wv) * prog.n_in, size_t(prog.n_in));
            for (size_t m = 0; m < prog.delay_src.size(); ++m) lines[prog.delay_dst[m]] = prev[prog.delay_src[m]];
            for (size_t c = 0; c < prog.columns.size(); ++c)
                tnn_column_wave(prog.columns[c], T, lines.data(), learn, wave, std::uint32_t(c), k0, k1, scratch);
            std::uint8_t* r = rec + (s * n_waves + wv) * R;
            for (i64 m = 0; m < R; ++m) r[m] = lines[prog.record[m]];
            std::swap(lines, prev);
            if (learn) ++wave;
        }
    }
    return wave;
}

}  // namespace sd
