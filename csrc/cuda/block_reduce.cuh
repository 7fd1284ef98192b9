// Block- and warp-level pieces shared by the kernels of csrc/cuda (rule A, DreamComp,
// Krotov-Hopfield): reductions to the best (value, index) under a caller's ordering, sums,
// a block-wide "any", and an ordered compaction. Every function here must be reached by all
// threads of the block (they contain barriers), and blockDim.x must be a multiple of 32.
#pragma once

#include <climits>

#include "cuda_common.hpp"

namespace sd {
namespace cuda {

/// Index of "no candidate" in the reductions below.
constexpr int kNone = INT_MAX;

/// A (value, index) pair.
template <class T>
struct Best {
    T v;
    int idx;
};

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    return v;
}

/// The block's sum of what each thread holds, every thread gets it: warp sums, then the
/// warps' sums in warp order (a fixed order: the result does not depend on scheduling).
/// red: 32 slots of shared memory.
template <class T>
__device__ T block_sum(T v, T* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    T total = red[0];
    for (int w = 1; w < nw; ++w) total += red[w];
    __syncthreads();
    return total;
}

/// The block's best (v, idx) under better(v1, i1, v2, i2) over what each thread proposes;
/// every thread gets it. red_v, red_i: 32 slots of shared memory each. `better` must be a
/// strict total order on the candidates (ties broken by index), so the result does not
/// depend on the order of the reduction.
template <class T, class Better>
__device__ Best<T> block_best_by(T v_mine, int i_mine, Better better, T* red_v, int* red_i) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int d = 16; d > 0; d >>= 1) {
        const T v = __shfl_xor_sync(0xffffffffu, v_mine, d);
        const int i = __shfl_xor_sync(0xffffffffu, i_mine, d);
        if (better(v, i, v_mine, i_mine)) {
            v_mine = v;
            i_mine = i;
        }
    }
    if (lane == 0) {
        red_v[warp] = v_mine;
        red_i[warp] = i_mine;
    }
    __syncthreads();
    Best<T> best{red_v[0], red_i[0]};
    for (int w = 1; w < nw; ++w)
        if (better(red_v[w], red_i[w], best.v, best.idx)) best = Best<T>{red_v[w], red_i[w]};
    __syncthreads();  // red is reused by the next call
    return best;
}

/// True on every thread when pred is true on some thread. flag: one int of shared memory.
__device__ __forceinline__ bool block_any(bool pred, int* flag) {
    if (threadIdx.x == 0) *flag = 0;
    __syncthreads();
    if (pred) *flag = 1;
    __syncthreads();
    const bool any = *flag != 0;
    __syncthreads();
    return any;
}

/// Ordered compaction: writes every j in [j0, j1) with code(j) != 0 to list (and code(j)
/// to codes, when not null), in increasing j; returns their count on every thread. Warp 0
/// does it with ballots, so the order is j's, whatever the scheduling. count: one int of
/// shared memory; list and codes are shared or global memory with room for j1 - j0.
template <class F>
__device__ int block_collect(int j0, int j1, F code, int* list, int* codes, int* count) {
    if (threadIdx.x < 32) {
        const unsigned lane = threadIdx.x;
        int n = 0;
        for (int base = j0; base < j1; base += 32) {
            const int j = base + int(lane);
            const int c = j < j1 ? code(j) : 0;
            const unsigned mask = __ballot_sync(0xffffffffu, c != 0);
            if (c != 0) {
                const int pos = n + __popc(mask & ((1u << lane) - 1u));
                list[pos] = j;
                if (codes) codes[pos] = c;
            }
            n += __popc(mask);
        }
        if (lane == 0) *count = n;
    }
    __syncthreads();
    const int n = *count;
    __syncthreads();
    return n;
}

/// max(a, |x|) that keeps a NaN (numpy's max of |ds| is NaN when one entry is).
template <class T>
__device__ __forceinline__ T nan_max_abs(T a, T x) {
    const T ax = x < T(0) ? -x : x;
    return (a != a || ax > a || ax != ax) ? (a != a ? a : ax) : a;
}

/// The block's largest value, NaN when some thread's is NaN; every thread gets it.
template <class T>
__device__ T block_max_keep_nan(T v, T* red_v, int* red_i) {
    const auto order = [](T a, int i, T b, int j) {
        if (i == kNone) return false;
        if (j == kNone) return true;
        return (a != a && b == b) || a > b || (a == b && i < j);
    };
    return block_best_by(v, int(threadIdx.x), order, red_v, red_i).v;
}

/// Copies rows idx[r] of src (rows of `cols` values) to row r of dst, r < rows.
template <class T>
__global__ void gather_rows_kernel(const T* __restrict__ src, const long long* __restrict__ idx, long long rows,
                                   int cols, T* __restrict__ dst) {
    const long long total = rows * cols;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const long long r = e / cols, c = e % cols;
        dst[e] = src[idx[r] * cols + c];
    }
}

}  // namespace cuda
}  // namespace sd
