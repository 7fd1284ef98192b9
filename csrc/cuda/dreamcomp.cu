// Rule B, DreamComp (docs/rules/dreamcomp.md; sparsedream_fast/dreamcomp/reference.py), on the
// GPU. Per epoch: the epoch's samples gathered in batch order (one kernel); per minibatch:
//   1. S = V_b W^T (B, N), cuBLAS or the own GEMM kernel (batch_common.cuh), in W's dtype;
//   2. a block per sample: its winner, argmax_n S[b, n] as np.argmax picks it (first NaN,
//      else first maximum), and its drive; or, screened (float32), the candidates whose
//      drive can still be the largest given the product's error bound, and among them the
//      largest float64 dot product (ties to the lower index);
//   3. a block per sample b whose winner n has no earlier sample in the batch: n's samples
//      in sample order (ordered compaction), U = (sum of them) * (1 / count),
//      s = sum_b drive_b * (1 / count), W_n += (U - s * (W_n / zeta)) * eta.
// The screening makes the float32 product cheap: on cuBLAS it runs on tensor cores in TF32
// (inputs rounded to 10 mantissa bits), which alone would pick wrong winners in near ties.
// |S~ - S| <= c ||w_n|| ||v_b|| with c = 2 (2 u_t + u_t^2 + (K + 2) u_a) (u_t = 2^-10 the
// TF32 truncation of an input, 0 without TF32; K u_a the float32 accumulation and the
// rounding of the result, u_a = 2^-24, 2^-22 on tensor cores; Cauchy-Schwarz for sum |w v|;
// a factor 2 of margin; subnormal inputs flushed to zero would break it, as on the CPU), so the
// exact winner's upper bound S~ + e is at least every neuron's lower bound S~ - e: the
// candidates are the neurons above the largest lower bound. Row norms of W are kept up to
// date by the update kernel; the samples' norms are computed once per fit. A sample whose
// products are not all finite takes the plain argmax (np.argmax's rule).
// Neurons that won nothing are not touched: the reference adds exactly 0 to them when W
// is finite, which the wrapper requires of a fit. The update runs as a dry pass that checks
// every new value (and the batch's products: the reference's s_n takes S[n, b] * 0), then
// the pass that writes them: a batch whose update is not finite writes
// nothing and ends the fit (run_batches, batch_common.cuh, which also polls for a stop
// between launches). Short epochs are replayed as one CUDA graph each.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "batch_common.cuh"

namespace sd {
namespace cuda {
namespace {

constexpr int kDcThreads = 256;

/// np.argmax's order: a NaN before everything (the first NaN wins), then the larger value,
/// then the lower index.
template <class T>
__device__ __forceinline__ bool argmax_before(T v1, int i1, T v2, int i2) {
    if (i1 == kNone) return false;
    if (i2 == kNone) return true;
    const bool n1 = v1 != v1, n2 = v2 != v2;
    if (n1 || n2) return n1 && (!n2 || i1 < i2);
    return v1 > v2 || (v1 == v2 && i1 < i2);
}

/// The block's np.argmax of row[:N] and its value; every thread gets them.
template <class T>
__device__ Best<T> block_argmax(const T* row, int N, T* red_v, int* red_i) {
    T bv = T(0);
    int bi = kNone;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        const T v = row[n];
        if (argmax_before(v, n, bv, bi)) {
            bv = v;
            bi = n;
        }
    }
    const auto order = [](T a, int i, T b, int j) { return argmax_before(a, i, b, j); };
    return block_best_by(bv, bi, order, red_v, red_i);
}

/// Block b: the winner of sample b over the row S[b, :N], and its drive.
template <class T>
__global__ void __launch_bounds__(kDcThreads) dc_winner_kernel(const T* __restrict__ S, int N, int* __restrict__ win,
                                                              T* __restrict__ drive) {
    SD_DYNAMIC_SMEM(T, red_v);
    const Best<T> best = block_argmax(S + (size_t)blockIdx.x * N, N, red_v, reinterpret_cast<int*>(red_v + 32));
    if (threadIdx.x == 0) {
        win[blockIdx.x] = best.idx;
        drive[blockIdx.x] = best.v;
    }
}

/// Block r: the float64 norm of row r of X (rows of K values).
template <class T>
__global__ void __launch_bounds__(kDcThreads) row_norms_kernel(const T* __restrict__ X, int K, double* __restrict__ out) {
    SD_DYNAMIC_SMEM(double, red);
    const T* x = X + (size_t)blockIdx.x * K;
    double s = 0.0;
    for (int j = threadIdx.x; j < K; j += blockDim.x) s += double(x[j]) * double(x[j]);
    s = block_sum(s, red);
    if (threadIdx.x == 0) out[blockIdx.x] = sqrt(s);
}

/// Block b, screened: the winner of sample b among the candidates of S~[b, :N] (see the
/// file's notes), by float64 dot products of W's rows with the sample (P's row b), a warp
/// per candidate; idx: the batch's sample indices into vnorm.
template <class T>
__global__ void __launch_bounds__(kDcThreads) dc_winner_screened_kernel(
    const T* __restrict__ S, int N, const T* __restrict__ W, const T* __restrict__ P, int K,
    const double* __restrict__ wnorm, const double* __restrict__ vnorm, const long long* __restrict__ idx, double c,
    int* __restrict__ win, T* __restrict__ drive) {
    SD_DYNAMIC_SMEM(double, red_v);
    int* red_i = reinterpret_cast<int*>(red_v + 32);
    const int b = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const T* row = S + (size_t)b * N;
    const T* v = P + (size_t)b * K;
    const double cv = c * vnorm[idx[b]];
    const auto order = [](double a, int i, double bb, int j) { return argmax_before(a, i, bb, j); };
    double lo = -HUGE_VAL;
    bool odd = false;  // a non-finite product (NaN, or float32 overflow): no bound holds
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        const T x = row[n];
        odd |= !(x - x == T(0));
        const double l = double(x) - cv * wnorm[n];
        lo = l > lo ? l : lo;
    }
    if (block_any(odd, red_i)) {  // the plain argmax, as np.argmax
        const Best<T> best = block_argmax(row, N, reinterpret_cast<T*>(red_v), red_i);
        if (threadIdx.x == 0) {
            win[b] = best.idx;
            drive[b] = best.v;
        }
        return;
    }
    const double thr = block_best_by(lo, int(threadIdx.x), order, red_v, red_i).v;
    double bv = 0.0;
    int bi = kNone;
    for (int base = warp * 32; base < N; base += nw * 32) {  // the same trip count on a warp's lanes
        const int n = base + lane;
        unsigned mask = __ballot_sync(0xffffffffu, n < N && double(row[n]) + cv * wnorm[n] >= thr);
        while (mask) {
            const int nn = base + __ffs(mask) - 1;
            mask &= mask - 1u;
            const T* w = W + (size_t)nn * K;
            double d = 0.0;  // products of two float32 are exact in float64
            for (int t = lane; t < K; t += 32) d += double(w[t]) * double(v[t]);
            d = warp_sum(d);
            if (argmax_before(d, nn, bv, bi)) {
                bv = d;
                bi = nn;
            }
        }
    }
    const Best<double> best = block_best_by(bv, bi, order, red_v, red_i);
    if (threadIdx.x == 0) {
        win[b] = best.idx;
        drive[b] = T(best.v);
    }
}

/// Block b: if b is the first sample of its winner n in the batch, n's update from all of
/// n's samples. P: the batch's samples (B, Dp). Shared memory: B ints of sample list, 2 ints.
/// dry: only check the new values (status[BS_BAD] set when one is not finite); else write
/// them, unless the fit stopped or the dry pass found one (batch_common.cuh's BatchStatus).
template <class T>
__global__ void __launch_bounds__(kDcThreads) dc_update_kernel(T* __restrict__ W, int N, int Dp, const T* __restrict__ P,
                                                              int B,
                                                              const int* __restrict__ win, const T* __restrict__ drive,
                                                              const T* __restrict__ zeta, const T* __restrict__ eta,
                                                              double* __restrict__ wnorm, int dry, int* status) {
    SD_DYNAMIC_SMEM(int, list);
    int* flag = list + B;
    double* red = reinterpret_cast<double*>(list + ((B + 3) & ~1));  // 8-byte aligned after list and flags
    if (status[BS_STOPPED] || (!dry && status[BS_BAD])) return;
    const int b = blockIdx.x, n = win[b];
    if (n < 0 || n >= N) return;  // no winner (cannot happen for finite W; never write outside W)
    bool earlier = false;
    for (int j = threadIdx.x; j < b; j += blockDim.x) earlier |= win[j] == n;
    if (block_any(earlier, flag)) return;  // the block of n's first sample does it
    const int c = block_collect(b, B, [&](int j) { return win[j] == n ? 1 : 0; }, list, nullptr, flag + 1);
    const T m = T(1) / T(c);  // the reference's row of M: 1 / max(1, count)
    T s = drive[list[0]] * m;
    for (int l = 1; l < c; ++l) s += drive[list[l]] * m;
    T* w = W + (size_t)n * Dp;
    double sq = 0.0;
    bool bad = false;
    for (int j = threadIdx.x; j < Dp; j += blockDim.x) {
        T U = P[(size_t)list[0] * Dp + j];
        for (int l = 1; l < c; ++l) U = U + P[(size_t)list[l] * Dp + j];
        if (c > 1) U = U * m;
        const T x = w[j];
        const T y = x + (U - s * (x / zeta[j])) * eta[j];
        if (dry) {
            bad |= !(y - y == T(0));
        } else {
            w[j] = y;
            sq += double(y) * double(y);
        }
    }
    if (dry) {
        if (bad) atomicExch(status + BS_BAD, 1);
        return;
    }
    if (wnorm) {  // the screening's row norm (the same branch on every thread)
        sq = block_sum(sq, red);
        if (threadIdx.x == 0) wnorm[n] = sqrt(sq);
    }
}

/// The update's shared memory: the sample list, 2 ints, then 32 doubles for the norm.
size_t update_smem(std::int64_t B) { return size_t((B + 3) & ~std::int64_t(1)) * sizeof(int) + 32 * sizeof(double); }

}  // namespace

template <class T>
BatchRunInfo dreamcomp_fit(T* W, std::int64_t N, std::int64_t Dp, const T* V, std::int64_t n, const T* zeta,
                           const T* eta, const std::int64_t* batches, std::int64_t E, std::int64_t nb,
                           std::int64_t B, bool update, const BatchOptions& opt, std::int64_t* win_out, Poll& poll) {
    BatchRunInfo info;
    if (E <= 0 || nb <= 0 || B <= 0) return info;
    if (N >= INT_MAX || Dp >= INT_MAX || B * nb >= INT_MAX || N * B >= (std::int64_t(1) << 40))
        throw std::invalid_argument("DreamComp on the GPU: sizes beyond 2^31 neurons, inputs or samples per epoch");
    int optin = 0, dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
    if (update && update_smem(B) > size_t(optin))
        throw std::invalid_argument("DreamComp on the GPU: batch_size " + std::to_string(B) + " is over the limit of " +
                                    std::to_string(optin / 4 - 2) + " of this GPU's shared memory");
    if (update && update_smem(B) > 48 * 1024)
        check(cudaFuncSetAttribute(dc_update_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(update_smem(B))),
              "cudaFuncSetAttribute");

    Stream st;
    const Gemm<T> gemm(opt.gemm, opt.cublas_libs);
    info.cublas = gemm.uses_cublas();
    const bool screen = opt.screen && sizeof(T) == 4, tf32 = screen && gemm.uses_cublas();
    // per addition 2^-24 (float32, round to nearest), 2^-22 on tensor cores (their float32
    // accumulation may truncate and align with a few bits less)
    const double ut = Gemm<T>::input_rounding(tf32), ua = std::ldexp(1.0, tf32 ? -22 : -24);
    const double c = 2.0 * (2.0 * ut + ut * ut + double(Dp + 2) * ua);
    if (screen && c > 0.5)
        throw std::invalid_argument("DreamComp on the GPU: too many inputs for the screening's error bound; "
                                    "set SCREEN = False");
    const std::int64_t per_epoch = nb * B;
    DevBuf dW(N * Dp * sizeof(T)), dV(n * Dp * sizeof(T)), dZ(Dp * sizeof(T)), dE(Dp * sizeof(T));
    DevBuf dIdx(per_epoch * sizeof(long long)), dP(per_epoch * Dp * sizeof(T)), dS(B * N * sizeof(T));
    DevBuf dWin(B * sizeof(int)), dDrive(B * sizeof(T)), dStatus(BS_SIZE * sizeof(int));
    upload(dW, W, N * Dp, st.s);
    upload(dV, V, n * Dp, st.s);
    upload(dZ, zeta, Dp, st.s);
    upload(dE, eta, Dp, st.s);
    DevBuf dWn(screen ? N * sizeof(double) : 0), dVn(screen ? n * sizeof(double) : 0);
    const size_t red_smem = 32 * (sizeof(double) + sizeof(int));
    if (screen) {
        SD_LAUNCH_ON(row_norms_kernel<T>, int(N), kDcThreads, red_smem, st.s)(dW.as<T>(), int(Dp), dWn.as<double>());
        if (n > 0) SD_LAUNCH_ON(row_norms_kernel<T>, int(n), kDcThreads, red_smem, st.s)(dV.as<T>(), int(Dp), dVn.as<double>());
    }

    const int iN = int(N), iDp = int(Dp), iB = int(B);
    const int gather_blocks = int(std::min<std::int64_t>((per_epoch * Dp + kDcThreads - 1) / kDcThreads, 65535));
    auto enqueue = [&](std::int64_t i0, std::int64_t i1) {
        if (i0 == 0)
            SD_LAUNCH_ON(gather_rows_kernel<T>, gather_blocks, kDcThreads, 0, st.s)(
                dV.as<T>(), dIdx.as<long long>(), (long long)per_epoch, iDp, dP.as<T>());
        for (std::int64_t i = i0; i < i1; ++i) {
            const T* Pb = dP.as<T>() + i * B * Dp;
            gemm(st.s, iB, iN, iDp, Pb, dW.as<T>(), dS.as<T>(), tf32);
            if (screen)
                SD_LAUNCH_ON(dc_winner_screened_kernel<T>, iB, kDcThreads, red_smem, st.s)(
                    dS.as<T>(), iN, dW.as<T>(), Pb, iDp, dWn.as<double>(), dVn.as<double>(),
                    dIdx.as<long long>() + i * B, c, dWin.as<int>(), dDrive.as<T>());
            else
                SD_LAUNCH_ON(dc_winner_kernel<T>, iB, kDcThreads, 32 * (sizeof(T) + sizeof(int)), st.s)(
                    dS.as<T>(), iN, dWin.as<int>(), dDrive.as<T>());
            if (update) {
                flag_nonfinite(dS.as<T>(), (long long)B * N, dStatus.as<int>(), st.s);
                for (int dry = 1; dry >= 0; --dry)
                    SD_LAUNCH_ON(dc_update_kernel<T>, iB, kDcThreads, update_smem(B), st.s)(
                        dW.as<T>(), iN, iDp, Pb, iB, dWin.as<int>(), dDrive.as<T>(), dZ.as<T>(), dE.as<T>(),
                        screen ? dWn.as<double>() : nullptr, dry, dStatus.as<int>());
            }
            SD_LAUNCH_ON(batch_tally_kernel<>, 1, 1, 0, st.s)(dStatus.as<int>());
        }
        check(cudaGetLastError(), "DreamComp kernel launch");
    };
    EpochGraph graph(opt.graphs && E > 2);
    static_assert(sizeof(long long) == sizeof(std::int64_t), "sample indices are copied as they are");
    // every epoch's indices at once; the graph reads the current epoch's from dIdx
    DevBuf dAll(E * per_epoch * sizeof(long long));
    upload(dAll, reinterpret_cast<const long long*>(batches), E * per_epoch, st.s);
    auto start = [&](std::int64_t e) {
        check(cudaMemcpyAsync(dIdx.p, dAll.as<long long>() + e * per_epoch, per_epoch * sizeof(long long),
                              cudaMemcpyDeviceToDevice, st.s),
              "cudaMemcpy of the sample indices");
    };
    info.run = run_batches(st, graph, E, nb, dStatus.as<int>(), poll, start, enqueue);
    st.sync();
    info.graph = graph.used();
    info.screened = screen;
    info.tf32 = tf32;
    std::vector<int> win(B);
    check(cudaMemcpy(win.data(), dWin.p, B * sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy of the winners");
    for (std::int64_t b = 0; b < B; ++b) win_out[b] = win[b];
    if (update) check(cudaMemcpy(W, dW.p, N * Dp * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy of W");
    return info;
}

#define SD_DC_INSTANTIATE(T)                                                                                          \
    template BatchRunInfo dreamcomp_fit<T>(T*, std::int64_t, std::int64_t, const T*, std::int64_t, const T*, const T*, \
                                           const std::int64_t*, std::int64_t, std::int64_t, std::int64_t, bool,        \
                                           const BatchOptions&, std::int64_t*, Poll&);
SD_DC_INSTANTIATE(float)
SD_DC_INSTANTIATE(double)
#undef SD_DC_INSTANTIATE

}  // namespace cuda
}  // namespace sd
