// Rule A (SparseDream online k-WTA, docs/rules/sparsedream.md) on the GPU: a whole fit in one
// persistent cooperative kernel. Same semantics as sparsedream_fast/sparsedream/reference.py
// (every option: competitions, outputs, trace, stencil / CSR lateral, learned lateral, bounds).
//
// Block b owns the neurons [b*chunk, (b+1)*chunk) and, when they fit, keeps their rows of W
// in shared memory for the whole run (write-through to global memory, which the other
// blocks read for the reconstruction). Per step:
//   A  drive p (and the row sums / W(v*v) a competition needs) of the block's rows, a warp
//      per row;                                   grid barrier when the lateral needs halos
//   B  competition value of the block's neurons, block-local top-k -> k candidates;
//                                                 grid barrier
//   C  every block merges the B sorted candidate lists the same way (the k winners, ties to
//      the lower index); with a trace: trace update, a grid-wide max for the drop (barrier),
//      the active list in index order (barrier);
//   D  blocks that own an active row compute r = W^T o and g = clip(v - r) / max(r, prec)
//      (and, for a learned lateral, u = L^T o at their rows' columns);   grid barrier
//   E  owners update their active rows (and lateral rows); bounds every clip_every steps.
// So 2 barriers per step (3 with a lateral, 5 with a trace), one pass over W (on chip
// when it fits), and O(k D) global reads by the k owner blocks. The drives run over the
// frame's nonzero inputs only (an ordered list built per step in shared memory), except in
// the normalized modes (their row sums need every input) and in a block whose rows hold a
// NaN or an infinity at the start of a launch (inf * 0 must give NaN, as in the reference;
// a step never writes one, see D below).
//
// A fit is a series of launches of a few tens of milliseconds each, between which the host
// polls for a stop (Ctrl-C, run_control.hpp); the state stays on the device meanwhile.
// In D the owners also check that their rows' (and lateral rows') new values are finite;
// when one is not, after the barrier every block restores its trace entries and returns,
// so the state is that after the step before (reference.try_step).
#include <cooperative_groups.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "block_reduce.cuh"
#include "cuda_common.hpp"
#include "rule_a_cuda.hpp"
#include "sparsedream/rule_a_update.hpp"

namespace cg = cooperative_groups;

namespace sd {
namespace cuda {
namespace {

template <class T>
struct Cand {
    T c, s;
    int idx;
};

template <class T>
struct FitArgs {
    // configuration
    int N, D, rows, cols, k, competition, output, lat_kind, radius, S, chunk;
    long long g0, g1;  // this launch runs the flattened steps [g0, g1) (epoch g / S, index g % S)
    bool use_clip, use_trace, learn_lateral, clip_lateral, use_bounds, halo, reset_trace, w_in_smem;
    T lr, clip, alpha, lat_lr, w_max, prec, drop;
    long long clip_every, step0;
    // state and data (device)
    T* W;
    T* o;
    const T* X;
    const long long* order;
    const T* kernel;
    const T* row_scale;
    const long long* indptr;
    const int* indices;
    T* ldata;
    // scratch (device)
    T* P;          // N: drive
    T* Q;          // N: p / rowsum (normalized modes), W(v*v) (weighted average)
    Cand<T>* cand; // B * k: each block's candidates, best first
    T* bmax;       // B: the blocks' largest |o| (trace)
    int* act_n;    // B: active rows per block (trace)
    int* act_i;    // N: block b's active rows at [b*chunk, ...)
    T* act_v;      // N
    T* ratio;      // nnz: the learned lateral's (o - u) / max(u, prec) per entry of active rows
    long long* last;  // k: the last step's winners
    T* o_prev;     // N: each block's trace entries before the current step (trace)
    int* status;   // [0] set when a step's update is not finite, [1] the steps this launch completed
};

template <class T>
__device__ __forceinline__ bool better(T c1, int i1, T c2, int i2) {
    if (i1 == kNone) return false;
    if (i2 == kNone) return true;
    return c1 > c2 || (c1 == c2 && i1 < i2);
}

/// The block's best (c, idx) over what each thread proposes; every thread gets it.
/// red_c, red_i: 32 slots of shared memory each.
template <class T>
__device__ Cand<T> block_best(T c_mine, int i_mine, T* red_c, int* red_i) {
    const auto order = [](T c1, int i1, T c2, int i2) { return better(c1, i1, c2, i2); };
    const Best<T> b = block_best_by(c_mine, i_mine, order, red_c, red_i);
    return Cand<T>{b.v, T(0), b.idx};
}

/// (L x)_j in the reference's order: the stencil offsets row by row with zero padding, then
/// the row scale; a CSR row in its stored order.
template <class T>
__device__ T lateral_at(int j, const T* x, int kind, int rows, int cols, int radius, const T* kernel,
                        const T* row_scale, const long long* indptr, const int* indices, const T* data) {
    T out = T(0);
    if (kind == LAT_STENCIL) {
        const int y = j / cols, xx = j % cols, side = 2 * radius + 1;
        for (int a = 0; a < side; ++a)
            for (int b = 0; b < side; ++b) {
                const T w = kernel[a * side + b];
                if (w == T(0)) continue;
                const int yy = y + a - radius, xb = xx + b - radius;
                const T val = (yy >= 0 && yy < rows && xb >= 0 && xb < cols) ? x[yy * cols + xb] : T(0);
                out = out + w * val;
            }
        if (row_scale) out = out * row_scale[j];
    } else if (kind == LAT_CSR) {
        for (long long q = indptr[j]; q < indptr[j + 1]; ++q) out = out + data[q] * x[indices[q]];
    }
    return out;
}

/// Competition value of neuron j from the drives P and Q (reference.competition).
template <class T>
__device__ T competition_at(int j, int mode, bool lat, const T* P, const T* Q, T prec, int kind, int rows, int cols,
                            int radius, const T* kernel, const T* row_scale, const long long* indptr,
                            const int* indices, const T* data) {
    const T p = P[j];
    switch (mode) {
        case COMP_DRIVE:
            return p;
        case COMP_LATERAL:
            return lat ? p + lateral_at(j, P, kind, rows, cols, radius, kernel, row_scale, indptr, indices, data) : p;
        case COMP_NORMALIZED_LATERAL: {
            const T lq = lat ? lateral_at(j, Q, kind, rows, cols, radius, kernel, row_scale, indptr, indices, data) : T(0);
            return p + lq;
        }
        case COMP_MEAN_LATERAL: {
            const T lq = lat ? lateral_at(j, Q, kind, rows, cols, radius, kernel, row_scale, indptr, indices, data) : T(0);
            return (T(3) * Q[j] + lq) / T(4);
        }
        default: {  // weighted average: Q holds W (v*v)
            const T den = p > prec ? p : prec;
            return Q[j] / den;
        }
    }
}

/// Drive of row w over the nonzero inputs (idx, val)[0..nnz) (and, weighted average, W (v*v)
/// over (idx, val2)): warp-wide. Skipping v_d = 0 is exact while the row is finite; the
/// caller takes row_drive (every input) for a block whose rows may not be.
template <class T>
__device__ T row_drive_sparse(const T* w, const int* idx, const T* val, const T* val2, int nnz, int mode, T* q) {
    T p = T(0), aux = T(0);
    const int lane = threadIdx.x & 31;
    if (mode == COMP_WEIGHTED_AVERAGE) {
        for (int t = lane; t < nnz; t += 32) {
            const T x = w[idx[t]];
            p += x * val[t];
            aux += x * val2[t];
        }
        p = warp_sum(p);
        *q = warp_sum(aux);
    } else {
        for (int t = lane; t < nnz; t += 32) p += w[idx[t]] * val[t];
        p = warp_sum(p);
    }
    return p;
}

/// Drive of row w against v (and into *q what the competition needs besides): warp-wide.
template <class T>
__device__ T row_drive(const T* w, const T* v, int D, int mode, T prec, T* q) {
    T p = T(0), aux = T(0);
    const int lane = threadIdx.x & 31;
    if (mode == COMP_NORMALIZED_LATERAL || mode == COMP_MEAN_LATERAL) {
        for (int d = lane; d < D; d += 32) {
            p += w[d] * v[d];
            aux += w[d];
        }
        p = warp_sum(p);
        aux = warp_sum(aux);
        *q = p / (aux > prec ? aux : prec);
    } else if (mode == COMP_WEIGHTED_AVERAGE) {
        for (int d = lane; d < D; d += 32) {
            p += w[d] * v[d];
            aux += w[d] * (v[d] * v[d]);
        }
        p = warp_sum(p);
        *q = warp_sum(aux);
    } else {
        for (int d = lane; d < D; d += 32) p += w[d] * v[d];
        p = warp_sum(p);
    }
    return p;
}

template <class T>
__device__ __forceinline__ T clip_to(T x, T lo, T hi) {  // np.clip: NaN stays NaN
    return x < lo ? lo : (x > hi ? hi : x);
}

template <class T>
__global__ void rule_a_fit_kernel(FitArgs<T> a) {
    cg::grid_group grid = cg::this_grid();
    const int tid = threadIdx.x, nt = blockDim.x, lane = tid & 31, warp = tid >> 5, nw = (nt + 31) >> 5;
    const int B = gridDim.x, b = blockIdx.x;
    const int n0 = b * a.chunk, n1 = a.N < n0 + a.chunk ? a.N : n0 + a.chunk, own = n1 - n0, D = a.D, k = a.k;

    SD_DYNAMIC_SMEM(T, sm);
    T* v = sm;                  // D
    T* g = v + D;               // D: r, then g
    T* own_c = g + D;           // chunk
    T* own_s = own_c + a.chunk; // chunk
    T* win_v = own_s + a.chunk; // k: the winners' activity
    T* prev_v = win_v + k;      // k: the previous step's winners' activity
    T* red_c = prev_v + k;      // 32 (64 reserved)
    T* nz_v = red_c + 64;       // D: the frame's nonzero inputs' values
    T* nz_v2 = nz_v + D;        // D: their squares (weighted average)
    T* wsm = nz_v2 + D;         // chunk * D when w_in_smem
    int* ints = reinterpret_cast<int*>(wsm + (a.w_in_smem ? (long long)a.chunk * D : 0));
    int* red_i = ints;          // 32
    int* win_i = red_i + 32;    // k
    int* prev_i = win_i + k;    // k: the previous step's winners
    int* heads = prev_i + k;    // B
    int* misc = heads + B;      // [0] own active count, [1] nonzeros, [2] own rows not all finite
    int* nz_i = misc + 4;       // D: the frame's nonzero inputs, ascending
    unsigned char* taken = reinterpret_cast<unsigned char*>(nz_i + D);  // chunk

    // the drive runs over the frame's nonzero inputs (the row sums of the normalized modes
    // need every input); a block whose rows hold a NaN or inf sums over every input instead
    const bool sparse_mode = a.competition == COMP_DRIVE || a.competition == COMP_LATERAL ||
                             a.competition == COMP_WEIGHTED_AVERAGE;
    if (tid == 0) misc[2] = 0;
    __syncthreads();
    {
        bool bad = false;
        for (long long q = tid; q < (long long)own * D; q += nt) {
            const T x = a.W[(long long)n0 * D + q];
            if (a.w_in_smem) wsm[q] = x;
            bad |= !(x - x == T(0));
        }
        if (bad) misc[2] = 1;
    }
    __syncthreads();
    const bool lat = a.lat_kind != LAT_NONE;

    for (long long gi = a.g0; gi < a.g1; ++gi) {
        const int s = int(gi % a.S);
        if (a.use_trace)  // the trace before this step (and before an epoch's reset, part of the step)
            for (int j = n0 + tid; j < n1; j += nt) {
                a.o_prev[j] = a.o[j];
                if (a.reset_trace && s == 0) a.o[j] = T(0);
            }
        {
            const T* x = a.X + a.order[gi] * D;
            for (int d = tid; d < D; d += nt) v[d] = x[d];
            __syncthreads();
            const bool sparse = sparse_mode && misc[2] == 0;
            int nnz = 0;
            if (sparse) {  // the nonzero inputs in order (warp 0, ballots), then their values
                nnz = block_collect(0, D, [&](int d) { return v[d] != T(0) ? 1 : 0; }, nz_i, (int*)nullptr, &misc[1]);
                for (int t = tid; t < nnz; t += nt) {
                    nz_v[t] = v[nz_i[t]];
                    nz_v2[t] = nz_v[t] * nz_v[t];
                }
                __syncthreads();
            }
            // A: drives of the block's rows
            for (int j = n0 + warp; j < n1; j += nw) {
                const T* w = a.w_in_smem ? wsm + (long long)(j - n0) * D : a.W + (long long)j * D;
                T q = T(0);
                const T p = sparse ? row_drive_sparse(w, nz_i, nz_v, nz_v2, nnz, a.competition, &q)
                                   : row_drive(w, v, D, a.competition, a.prec, &q);
                if (lane == 0) {
                    a.P[j] = p;
                    a.Q[j] = q;
                }
            }
            if (a.halo) grid.sync(); else __syncthreads();
            // B: competition values and the block's k best
            for (int j = n0 + tid; j < n1; j += nt) {
                const T c = competition_at(j, a.competition, lat, a.P, a.Q, a.prec, a.lat_kind, a.rows, a.cols,
                                           a.radius, a.kernel, a.row_scale, a.indptr, a.indices, a.ldata);
                own_c[j - n0] = c;
                own_s[j - n0] = a.output == OUT_DRIVE ? a.P[j] : c;
                taken[j - n0] = 0;
            }
            __syncthreads();
            for (int t = 0; t < k; ++t) {
                T mc = T(0);
                int mi = kNone;
                if (t < own)
                    for (int q = tid; q < own; q += nt)
                        if (!taken[q] && better(own_c[q], n0 + q, mc, mi)) {
                            mc = own_c[q];
                            mi = n0 + q;
                        }
                Cand<T> best = block_best(mc, mi, red_c, red_i);
                if (tid == 0) {
                    if (best.idx != kNone) {
                        best.s = own_s[best.idx - n0];
                        taken[best.idx - n0] = 1;
                    }
                    a.cand[(long long)b * k + t] = best;
                }
                __syncthreads();
            }
            grid.sync();
            // C: the k winners, the same in every block
            for (int i = tid; i < B; i += nt) heads[i] = 0;
            __syncthreads();
            for (int t = 0; t < k; ++t) {
                T mc = T(0);
                int mi = kNone;
                for (int i = tid; i < B; i += nt)
                    if (heads[i] < k) {
                        const Cand<T> c = a.cand[(long long)i * k + heads[i]];
                        if (better(c.c, c.idx, mc, mi)) {
                            mc = c.c;
                            mi = c.idx;
                        }
                    }
                const Cand<T> best = block_best(mc, mi, red_c, red_i);
                if (tid == 0) {
                    const int list = best.idx / a.chunk;
                    win_i[t] = best.idx;
                    win_v[t] = a.cand[(long long)list * k + heads[list]].s;
                    heads[list] += 1;
                }
                __syncthreads();
            }
            // the active rows (index, activity): the winners, or the trace's non-zeros
            auto winner_value = [&](int j) {  // 0 for a loser
                T v = T(0);
                for (int t = 0; t < k; ++t)
                    if (win_i[t] == j) v = win_v[t];
                return v;
            };
            // the activity of the block's neuron j; false when its row is not active
            auto activity = [&](int j, T* oj) {
                if (a.use_trace) {
                    *oj = a.o[j];
                    return *oj != T(0);
                }
                bool win = false;
                for (int t = 0; t < k; ++t)
                    if (win_i[t] == j) {
                        *oj = win_v[t];
                        win = true;
                    }
                return win;
            };
            // every active row (index, activity), in the reference's order
            auto for_each_active = [&](auto&& f) {
                if (a.use_trace) {
                    for (int i = 0; i < B; ++i)
                        for (int t = 0; t < a.act_n[i]; ++t) f(a.act_i[i * a.chunk + t], a.act_v[i * a.chunk + t]);
                } else {
                    for (int t = 0; t < k; ++t) f(win_i[t], win_v[t]);
                }
            };
            if (a.use_trace) {
                T m = T(0);
                for (int j = n0 + tid; j < n1; j += nt) {
                    const T aj = winner_value(j);
                    const T oj = a.o[j] + a.alpha * (aj - a.o[j]);
                    a.o[j] = oj;
                    const T mag = oj < T(0) ? -oj : oj;
                    m = mag > m ? mag : m;
                }
                const Cand<T> big = block_best(m, tid, red_c, red_i);
                if (tid == 0) a.bmax[b] = big.c;
                grid.sync();
                if (tid == 0) {
                    T top = T(0);
                    for (int i = 0; i < B; ++i) top = a.bmax[i] > top ? a.bmax[i] : top;
                    const T thr = a.drop * top;
                    int c = 0;
                    for (int j = n0; j < n1; ++j) {
                        T oj = a.o[j];
                        const T mag = oj < T(0) ? -oj : oj;
                        if (mag < thr) a.o[j] = oj = T(0);
                        if (oj != T(0)) {
                            a.act_i[n0 + c] = j;
                            a.act_v[n0 + c] = oj;
                            ++c;
                        }
                    }
                    a.act_n[b] = c;
                }
                grid.sync();
            }
            // D: reconstruction and gradient where this block owns an active row
            if (tid == 0) {
                int mine = 0;
                if (a.use_trace) {
                    mine = a.act_n[b];
                } else {
                    for (int t = 0; t < k; ++t) mine += win_i[t] >= n0 && win_i[t] < n1;
                }
                misc[0] = mine;
            }
            __syncthreads();
            const bool owner = misc[0] > 0;
            if (owner) {
                for (int d = tid; d < D; d += nt) {
                    T r = T(0);
                    for_each_active([&](int row, T o_row) { r += o_row * a.W[(long long)row * D + d]; });
                    T err = v[d] - r;
                    if (a.use_clip) err = clip_to(err, -a.clip, a.clip);
                    g[d] = err / (r > a.prec ? r : a.prec);
                }
                if (a.learn_lateral) {
                    // ratio at every entry (i, m) of the block's active rows: u_m = sum_a L[a, m] o_a
                    for (int j = n0; j < n1; ++j) {
                        T oj = T(0);
                        if (!activity(j, &oj)) continue;
                        for (long long q = a.indptr[j] + tid; q < a.indptr[j + 1]; q += nt) {
                            const int m = a.indices[q];
                            T u = T(0);
                            for_each_active([&](int row, T o_row) {
                                long long lo = a.indptr[row], hi = a.indptr[row + 1];
                                while (lo < hi) {  // indices are sorted within a row
                                    const long long mid = (lo + hi) / 2;
                                    if (a.indices[mid] < m) lo = mid + 1; else hi = mid;
                                }
                                if (lo < a.indptr[row + 1] && a.indices[lo] == m) u += a.ldata[lo] * o_row;
                            });
                            const T om = a.use_trace ? a.o[m] : winner_value(m);
                            a.ratio[q] = (om - u) / (u > a.prec ? u : a.prec);
                        }
                    }
                }
                __syncthreads();
                // the new values of the block's active rows (and lateral rows) must be finite
                bool bad = false;
                for (int j = n0 + warp; j < n1; j += nw) {
                    T oj = T(0);
                    if (!activity(j, &oj)) continue;
                    const T f = a.lr * oj;
                    const T* ws = a.w_in_smem ? wsm + (long long)(j - n0) * D : a.W + (long long)j * D;
                    for (int d = lane; d < D; d += 32) {
                        const T nv = sd::rule_a_updated(ws[d], f, g[d]);
                        bad |= !(nv - nv == T(0));
                    }
                    if (a.learn_lateral) {
                        const T fl = a.lat_lr * oj;
                        for (long long q = a.indptr[j] + lane; q < a.indptr[j + 1]; q += 32) {
                            const T nl = sd::rule_a_updated(a.ldata[q], fl, a.ratio[q]);
                            bad |= !(nl - nl == T(0));
                        }
                    }
                }
                if (bad) *(volatile int*)a.status = 1;
            }
            grid.sync();  // every read of the rows and lateral entries about to change is done
            if (*(volatile int*)a.status) {  // this step's update is not finite: undo its trace, stop
                if (a.use_trace) {
                    for (int j = n0 + tid; j < n1; j += nt) a.o[j] = a.o_prev[j];
                } else if (gi > a.g0) {  // o = the previous step's activity (written at a launch's end only)
                    for (int j = n0 + tid; j < n1; j += nt) {
                        T val = T(0);
                        for (int t = 0; t < k; ++t)
                            if (prev_i[t] == j) val = prev_v[t];
                        a.o[j] = val;
                    }
                }
                if (b == 0 && tid == 0) {
                    a.status[1] = int(gi - a.g0);
                    if (gi > a.g0)
                        for (int t = 0; t < k; ++t) a.last[t] = prev_i[t];
                }
                return;
            }
            // E: update the block's active rows
            if (owner) {
                for (int j = n0 + warp; j < n1; j += nw) {
                    T oj = T(0);
                    if (!activity(j, &oj)) continue;
                    const T f = a.lr * oj;
                    T* wg = a.W + (long long)j * D;
                    T* ws = a.w_in_smem ? wsm + (long long)(j - n0) * D : wg;
                    for (int d = lane; d < D; d += 32) {  // finite: checked in D
                        const T nv = sd::rule_a_updated(ws[d], f, g[d]);
                        ws[d] = nv;
                        wg[d] = nv;
                    }
                    if (a.learn_lateral) {
                        const T fl = a.lat_lr * oj;
                        for (long long q = a.indptr[j] + lane; q < a.indptr[j + 1]; q += 32)
                            a.ldata[q] = sd::rule_a_updated(a.ldata[q], fl, a.ratio[q]);
                    }
                }
            }
            if (a.use_bounds && (a.step0 + s) % a.clip_every == 0) {
                __syncthreads();
                for (long long q = tid; q < (long long)own * D; q += nt) {
                    const T c = clip_to(a.W[(long long)n0 * D + q], T(0), a.w_max);
                    a.W[(long long)n0 * D + q] = c;
                    if (a.w_in_smem) wsm[q] = c;
                }
                if (a.clip_lateral)
                    for (long long q = a.indptr[n0] + tid; q < a.indptr[n1]; q += nt)
                        a.ldata[q] = clip_to(a.ldata[q], T(0), a.w_max);
            }
            if (!a.use_trace && gi == a.g1 - 1) {
                // the reference leaves o = the last step's activity when there is no trace
                for (int j = n0 + tid; j < n1; j += nt) a.o[j] = winner_value(j);
            }
            if (b == 0 && gi == a.g1 - 1)
                for (int t = tid; t < k; t += nt) a.last[t] = win_i[t];
            for (int t = tid; t < k; t += nt) {
                prev_i[t] = win_i[t];
                prev_v[t] = win_v[t];
            }
            __syncthreads();
        }
    }
    if (b == 0 && tid == 0) a.status[1] = int(a.g1 - a.g0);
}

/// Inference: each block takes whole samples (drives of all N rows, competition, top-k).
template <class T>
__global__ void rule_a_infer_kernel(FitArgs<T> a, long long n, long long* winners, T* values, T* Pall, T* Qall,
                                    unsigned char* taken_all) {
    const int tid = threadIdx.x, nt = blockDim.x, lane = tid & 31, warp = tid >> 5, nw = (nt + 31) >> 5;
    const int N = a.N, D = a.D, k = a.k;
    SD_DYNAMIC_SMEM(T, sm);
    T* v = sm;
    T* red_c = v + D;
    int* red_i = reinterpret_cast<int*>(red_c + 64);
    T* P = Pall + (long long)blockIdx.x * N;
    T* Q = Qall + (long long)blockIdx.x * N;
    T* C = Q + (long long)gridDim.x * N;  // after the Q scratch: C and S per block
    T* Sv = C + (long long)gridDim.x * N;
    unsigned char* taken = taken_all + (long long)blockIdx.x * N;
    const bool lat = a.lat_kind != LAT_NONE;
    for (long long i = blockIdx.x; i < n; i += gridDim.x) {
        const T* x = a.X + i * D;
        for (int d = tid; d < D; d += nt) v[d] = x[d];
        __syncthreads();
        for (int j = warp; j < N; j += nw) {
            T q = T(0);
            const T p = row_drive(a.W + (long long)j * D, v, D, a.competition, a.prec, &q);
            if (lane == 0) {
                P[j] = p;
                Q[j] = q;
            }
        }
        __syncthreads();
        for (int j = tid; j < N; j += nt) {
            const T c = competition_at(j, a.competition, lat, P, Q, a.prec, a.lat_kind, a.rows, a.cols, a.radius,
                                       a.kernel, a.row_scale, a.indptr, a.indices, a.ldata);
            C[j] = c;
            Sv[j] = a.output == OUT_DRIVE ? P[j] : c;
            taken[j] = 0;
        }
        __syncthreads();
        for (int t = 0; t < k; ++t) {
            T mc = T(0);
            int mi = kNone;
            for (int j = tid; j < N; j += nt)
                if (!taken[j] && better(C[j], j, mc, mi)) {
                    mc = C[j];
                    mi = j;
                }
            const Cand<T> best = block_best(mc, mi, red_c, red_i);
            if (tid == 0) {
                winners[i * k + t] = best.idx;
                values[i * k + t] = Sv[best.idx];
                taken[best.idx] = 1;
            }
            __syncthreads();
        }
    }
}

/// Device copies of the lateral's arrays, pointed to from args.
template <class T>
struct DevLateral {
    DevBuf kernel, row_scale, indptr, indices, data;
    DevLateral(const RuleAConfig& cfg, const RuleALateral<T>& lat, FitArgs<T>& a)
        : kernel(lat.kind == LAT_STENCIL ? sizeof(T) * (2 * lat.radius + 1) * (2 * lat.radius + 1) : 0),
          row_scale(lat.row_scale ? sizeof(T) * cfg.n_neurons : 0),
          indptr(lat.kind == LAT_CSR ? sizeof(long long) * (cfg.n_neurons + 1) : 0),
          indices(lat.kind == LAT_CSR ? sizeof(int) * lat.nnz : 0),
          data(lat.kind == LAT_CSR ? sizeof(T) * lat.nnz : 0) {
        if (lat.kind == LAT_STENCIL) upload(kernel, lat.kernel, size_t(2 * lat.radius + 1) * (2 * lat.radius + 1));
        if (lat.row_scale) upload(row_scale, lat.row_scale, size_t(cfg.n_neurons));
        if (lat.kind == LAT_CSR) {
            upload(indptr, reinterpret_cast<const long long*>(lat.indptr), size_t(cfg.n_neurons + 1));
            upload(indices, reinterpret_cast<const int*>(lat.indices), size_t(lat.nnz));
            upload(data, lat.data, size_t(lat.nnz));
        }
        a.lat_kind = lat.kind;
        a.radius = lat.radius;
        a.kernel = kernel.as<T>();
        a.row_scale = row_scale.as<T>();
        a.indptr = indptr.as<long long>();
        a.indices = indices.as<int>();
        a.ldata = data.as<T>();
    }
};

template <class T>
FitArgs<T> make_args(const RuleAConfig& cfg) {
    FitArgs<T> a{};
    a.N = int(cfg.n_neurons);
    a.D = int(cfg.n_inputs);
    a.rows = int(cfg.grid_rows);
    a.cols = int(cfg.grid_cols);
    a.k = int(cfg.k);
    a.competition = cfg.competition;
    a.output = cfg.output;
    a.use_clip = cfg.use_error_clip;
    a.use_trace = cfg.use_trace;
    a.learn_lateral = cfg.learn_lateral;
    a.clip_lateral = cfg.use_bounds && cfg.clip_lateral;
    a.use_bounds = cfg.use_bounds;
    a.lr = T(cfg.lr);
    a.clip = T(cfg.error_clip);
    a.alpha = T(cfg.trace_alpha);
    a.lat_lr = T(cfg.lateral_lr);
    a.w_max = T(cfg.w_max);
    a.prec = T(cfg.prec);
    a.drop = T(cfg.trace_drop);
    a.clip_every = cfg.clip_every;
    return a;
}

int threads_per_block() {
#ifdef SD_CUDA_EMULATOR
    return 64;  // every thread is a fiber there
#else
    return 256;
#endif
}

}  // namespace

template <class T>
RunResult rule_a_fit(const RuleAConfig& cfg, T* W, T* trace, const RuleALateral<T>& lat, const T* X, std::int64_t n,
                     bool x_on_device, const std::int64_t* order, std::int64_t E, std::int64_t S, bool reset_trace,
                     std::int64_t step0, int blocks, std::int64_t* last_winners, Poll& poll) {
    if (cfg.n_neurons > INT_MAX / 2 || cfg.n_inputs > INT_MAX / 2)
        throw std::invalid_argument("rule A on the GPU: N and D must be below 2^30");
    FitArgs<T> a = make_args<T>(cfg);
    const int N = a.N, D = a.D, k = a.k;
    a.halo = a.competition != COMP_DRIVE && a.competition != COMP_WEIGHTED_AVERAGE && lat.kind != LAT_NONE;
    a.reset_trace = reset_trace;
    a.step0 = step0;
    a.S = int(S);
    RunResult res;
    if (E * S == 0) return res;

    int dev = 0, sms = 1, coop = 0, optin = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
    if (!coop) throw std::invalid_argument("rule A on the GPU needs a device with cooperative launch");
    const int nt = threads_per_block();
    auto kernel = rule_a_fit_kernel<T>;

    // one block per multiprocessor (or as asked), each owning a chunk of neurons
    int want = blocks > 0 ? blocks : sms;
    want = std::max(1, std::min(want, N));
    int chunk = (N + want - 1) / want;
    int B = (N + chunk - 1) / chunk;
    auto smem_for = [&](bool cached) {
        size_t t = sizeof(T) * (4 * size_t(D) + 2 * size_t(chunk) + 2 * size_t(k) + 64);
        if (cached) t += sizeof(T) * size_t(chunk) * size_t(D);
        t = (t + 15) / 16 * 16;
        return t + sizeof(int) * (32 + 2 * size_t(k) + size_t(B) + 4 + size_t(D)) + size_t(chunk) + 16;
    };
    a.w_in_smem = smem_for(true) <= size_t(optin);
    const size_t smem = smem_for(a.w_in_smem);
    if (smem > size_t(optin))
        throw std::invalid_argument("rule A on the GPU: k or the chunk of neurons per block needs more shared memory "
                                    "than the device has; lower k");
    if (smem > 48 * 1024)
        check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "cudaFuncSetAttribute");
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, nt, smem), "cudaOccupancyMaxActiveBlocks");
    if (per_sm < 1 || B > per_sm * sms)
        throw std::invalid_argument("rule A on the GPU: " + std::to_string(B) + " blocks cannot all be resident (" +
                                    std::to_string(per_sm) + " per multiprocessor, " + std::to_string(sms) +
                                    " multiprocessors)");
    a.chunk = chunk;

    const size_t nW = size_t(N) * D;
    DevBuf dW(sizeof(T) * nW), dO(sizeof(T) * N), dOrder(sizeof(long long) * size_t(E * S)),
        dX(x_on_device ? 0 : sizeof(T) * size_t(n) * D), dP(sizeof(T) * N), dQ(sizeof(T) * N),
        dCand(sizeof(Cand<T>) * size_t(B) * k), dBmax(sizeof(T) * B), dActN(sizeof(int) * B),
        dActI(sizeof(int) * N), dActV(sizeof(T) * N), dRatio(sizeof(T) * size_t(lat.kind == LAT_CSR ? lat.nnz : 0)),
        dLast(sizeof(long long) * k), dOPrev(sizeof(T) * N), dStatus(sizeof(int) * 2);
    upload(dW, W, nW);
    upload(dO, trace, size_t(N));
    upload(dOrder, reinterpret_cast<const long long*>(order), size_t(E * S));
    if (!x_on_device) upload(dX, X, size_t(n) * D);
    DevLateral<T> dl(cfg, lat, a);
    a.W = dW.as<T>();
    a.o = dO.as<T>();
    a.X = x_on_device ? X : dX.as<T>();
    a.order = dOrder.as<long long>();
    a.P = dP.as<T>();
    a.Q = dQ.as<T>();
    a.cand = dCand.as<Cand<T>>();
    a.bmax = dBmax.as<T>();
    a.act_n = dActN.as<int>();
    a.act_i = dActI.as<int>();
    a.act_v = dActV.as<T>();
    a.ratio = dRatio.as<T>();
    a.last = dLast.as<long long>();
    a.o_prev = dOPrev.as<T>();
    a.status = dStatus.as<int>();
    // launches of about kLaunchSeconds each (the steps per launch adapt), polled in between
    constexpr double kLaunchSeconds = 0.02;
    const long long total = (long long)(E * S);
    long long steps = 1;
    for (long long g = 0; g < total;) {
        a.g0 = g;
        a.g1 = std::min(total, g + steps);
        int st[2] = {0, 0};
        upload(dStatus, st, 2);
        void* args[] = {&a};
        const auto t0 = std::chrono::steady_clock::now();
        check(cudaLaunchCooperativeKernel(kernel, dim3(B), dim3(nt), args, smem), "rule A kernel launch");
        check(cudaDeviceSynchronize(), "rule A kernel");
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        check(cudaMemcpy(st, dStatus.p, sizeof(int) * 2, cudaMemcpyDeviceToHost), "cudaMemcpy status");
        res.done += st[1];
        g += st[1];
        if (st[0]) {
            res.status = RUN_DIVERGED;
            break;
        }
        if (dt < kLaunchSeconds / 2) steps = std::min<long long>(steps * 2, 1LL << 30);
        else if (dt > 2 * kLaunchSeconds && steps > 1) steps /= 2;
        if (g < total && poll.stop()) {
            res.status = RUN_STOPPED;
            break;
        }
    }
    check(cudaMemcpy(W, dW.p, sizeof(T) * nW, cudaMemcpyDeviceToHost), "cudaMemcpy W back");
    check(cudaMemcpy(trace, dO.p, sizeof(T) * N, cudaMemcpyDeviceToHost), "cudaMemcpy trace back");
    check(cudaMemcpy(last_winners, dLast.p, sizeof(long long) * k, cudaMemcpyDeviceToHost), "cudaMemcpy winners");
    if (lat.kind == LAT_CSR && (a.learn_lateral || a.clip_lateral))
        check(cudaMemcpy(lat.data, dl.data.p, sizeof(T) * size_t(lat.nnz), cudaMemcpyDeviceToHost),
              "cudaMemcpy lateral back");
    return res;
}

template <class T>
void rule_a_infer(const RuleAConfig& cfg, const T* W, const RuleALateral<T>& lat, const T* X, std::int64_t n,
                  bool x_on_device, std::int64_t* winners, T* values) {
    if (n == 0) return;
    FitArgs<T> a = make_args<T>(cfg);
    const int N = a.N, D = a.D, k = a.k;
    int dev = 0, sms = 1;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    const int nt = threads_per_block();
    const int B = int(std::min<std::int64_t>(n, std::int64_t(sms) * 4));
    const size_t smem = sizeof(T) * (size_t(D) + 64) + sizeof(int) * 32;
    const size_t nW = size_t(N) * D;
    DevBuf dW(sizeof(T) * nW), dX(x_on_device ? 0 : sizeof(T) * size_t(n) * D), dP(sizeof(T) * size_t(B) * N),
        dQ(sizeof(T) * size_t(B) * N * 3), dTaken(size_t(B) * N), dWin(sizeof(long long) * size_t(n) * k),
        dVal(sizeof(T) * size_t(n) * k);
    upload(dW, W, nW);
    if (!x_on_device) upload(dX, X, size_t(n) * D);
    DevLateral<T> dl(cfg, lat, a);
    a.W = dW.as<T>();
    a.X = x_on_device ? X : dX.as<T>();
    SD_LAUNCH(rule_a_infer_kernel<T>, B, nt, smem)(a, (long long)n, dWin.as<long long>(), dVal.as<T>(), dP.as<T>(),
                                                  dQ.as<T>(), dTaken.as<unsigned char>());
    check(cudaGetLastError(), "rule A inference launch");
    check(cudaDeviceSynchronize(), "rule A inference");
    check(cudaMemcpy(winners, dWin.p, sizeof(long long) * size_t(n) * k, cudaMemcpyDeviceToHost), "cudaMemcpy winners");
    check(cudaMemcpy(values, dVal.p, sizeof(T) * size_t(n) * k, cudaMemcpyDeviceToHost), "cudaMemcpy values");
}

void mem_info(std::size_t* free_bytes, std::size_t* total_bytes) {
    check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

#define SD_INSTANTIATE(T)                                                                                         \
    template RunResult rule_a_fit<T>(const RuleAConfig&, T*, T*, const RuleALateral<T>&, const T*, std::int64_t,    \
                                     bool, const std::int64_t*, std::int64_t, std::int64_t, bool, std::int64_t, int, \
                                     std::int64_t*, Poll&);                                                          \
    template void rule_a_infer<T>(const RuleAConfig&, const T*, const RuleALateral<T>&, const T*, std::int64_t,    \
                                  bool, std::int64_t*, T*);
SD_INSTANTIATE(float)
SD_INSTANTIATE(double)
#undef SD_INSTANTIATE

}  // namespace cuda
}  // namespace sd
