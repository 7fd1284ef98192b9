// Rule C, Krotov & Hopfield's competing hidden units (docs/rules/krotov_hopfield.md;
// sparsedream_fast/krotov/reference.py), on the GPU. Wp = sign(W) |W|^(p-1) is computed
// once per fit and then kept up to date row by row (only the updated units change). Per
// epoch the samples are gathered in batch order; per minibatch:
//   1. I = X_b Wp^T (B, H), cuBLAS or the own GEMM kernel (batch_common.cuh);
//   2. a block per sample: its first and k-th unit (value descending, ties to the lower
//      index, NaN last), by k block-wide selections of the next unit in that order;
//   3. a block per (sample, role) slot whose unit has no earlier slot: the unit's g X and
//      xx = sum g I over its samples in sample order, ds = g X - xx W_u, and max |ds|;
//   4. a block per slot: nc = max(max |ds| over all slots, prec) (as Python's max on the
//      float64 value, cast to the dtype), then W_u += eps * (ds / nc) and W_u's row of Wp.
// Units neither first nor k-th of any sample are not touched: the reference adds exactly 0
// to them when W is finite, which the wrapper requires of a fit. Step 4 runs as a dry pass
// that checks every new value (and the batch's currents: the reference's xx_n takes
// I[n, b] * 0), then the pass that writes them: a batch whose update is not
// finite writes nothing and ends the fit (run_batches, batch_common.cuh, which also polls
// for a stop between launches). eps is read from device memory so that one CUDA graph
// serves every epoch of the annealing (short epochs are replayed as graphs).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "batch_common.cuh"

namespace sd {
namespace cuda {
namespace {

constexpr int kKhThreads = 256;

/// The ranking order of reference.ranks (np.lexsort((idx, -I))): value descending, NaN
/// after every number, ties (and NaNs) by index.
template <class T>
__device__ __forceinline__ bool rank_before(T v1, int i1, T v2, int i2) {
    if (i1 == kNone) return false;
    if (i2 == kNone) return true;
    const bool n1 = v1 != v1, n2 = v2 != v2;
    if (n1 != n2) return n2;
    if (n1) return i1 < i2;
    return v1 > v2 || (v1 == v2 && i1 < i2);
}

/// How |w|^(p-1) is computed: numpy's power takes fast paths for the exponents 1, 2, 0.5.
enum PowerMode { POW_ONE = 0, POW_SQUARE = 1, POW_SQRT = 2, POW_GENERAL = 3 };

/// sign(w) |w|^(p-1) as numpy computes np.sign(W) * np.abs(W) ** (p - 1) (krotov.hpp's
/// power_row, element by element). The general power goes through double in float32 so
/// that it is within an ulp of the CPU's powf (CUDA's powf is allowed 4 ulp of error).
template <class T>
__device__ __forceinline__ T weight_power(T x, int mode, double e) {
    if (mode == POW_ONE) return x;
    if (mode == POW_SQUARE) return x * (x < T(0) ? -x : x);
    const T sg = x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x == T(0) ? T(0) : x));
    const T a = x < T(0) ? -x : x;
    if (mode == POW_SQRT) return sg * T(sqrt(a));
    return sg * T(pow(double(a), e));
}

template <class T>
__global__ void kh_powers_kernel(const T* __restrict__ W, long long count, int mode, double e, T* __restrict__ Wp) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        Wp[i] = weight_power(W[i], mode, e);
}

/// Block b: the first and the k-th unit of sample b over the row I[b, :H].
template <class T>
__global__ void __launch_bounds__(kKhThreads) kh_rank_kernel(const T* __restrict__ I, int H, int k, int* __restrict__ first,
                                                            int* __restrict__ kth) {
    SD_DYNAMIC_SMEM(T, red_v);
    int* red_i = reinterpret_cast<int*>(red_v + 32);
    const T* row = I + (size_t)blockIdx.x * H;
    const auto order = [](T a, int i, T b, int j) { return rank_before(a, i, b, j); };
    Best<T> prev{T(0), kNone};
    for (int r = 0; r < k; ++r) {  // round r: the best unit ranked after the previous pick
        T bv = T(0);
        int bi = kNone;
        for (int u = threadIdx.x; u < H; u += blockDim.x) {
            const T v = row[u];
            if ((prev.idx == kNone || rank_before(prev.v, prev.idx, v, u)) && rank_before(v, u, bv, bi)) {
                bv = v;
                bi = u;
            }
        }
        prev = block_best_by(bv, bi, order, red_v, red_i);
        if (r == 0 && threadIdx.x == 0) first[blockIdx.x] = prev.idx;
    }
    if (threadIdx.x == 0) kth[blockIdx.x] = prev.idx;
}

/// Block q = 2 b + role (role 0: sample b's first unit, 1: its k-th): if no earlier slot has
/// the same unit u, u's ds row (DS[q]) and its max |ds| (amax[q]); else unit[q] = -1.
/// X: the batch's samples (B, D); I (B, H). Shared memory: 2B ints of list and codes, 2 ints.
template <class T>
__global__ void __launch_bounds__(kKhThreads) kh_ds_kernel(const T* __restrict__ W, int D, const T* __restrict__ X,
                                                          const T* __restrict__ I, int H, int B,
                                                          const int* __restrict__ first, const int* __restrict__ kth,
                                                          T mdelta, T* __restrict__ DS, T* __restrict__ amax,
                                                          int* __restrict__ unit) {
    SD_DYNAMIC_SMEM(int, list);
    int* codes = list + B;
    int* flag = codes + B;
    T* red_v = reinterpret_cast<T*>(list);  // the final reduction reuses the memory (ds_smem sizes it)
    const int q = blockIdx.x, b = q >> 1, u = (q & 1) ? kth[b] : first[b];
    bool earlier = false;
    for (int j = threadIdx.x; j < b; j += blockDim.x) earlier |= first[j] == u || kth[j] == u;
    if (block_any(earlier, flag)) {
        if (threadIdx.x == 0) {
            unit[q] = -1;
            amax[q] = T(0);
        }
        return;
    }
    // u is first of sample j (g = 1) or its k-th (g = -delta); never both, as k >= 2
    const int c = block_collect(
        b, B, [&](int j) { return first[j] == u ? 1 : (kth[j] == u ? 2 : 0); }, list, codes, flag + 1);
    T xx = T(0);
    for (int l = 0; l < c; ++l) {
        const T v = I[(size_t)list[l] * H + u];
        xx += codes[l] == 1 ? v : mdelta * v;
    }
    const T* w = W + (size_t)u * D;
    T* ds = DS + (size_t)q * D;
    T mx = T(0);
    for (int j = threadIdx.x; j < D; j += blockDim.x) {
        const T x0 = X[(size_t)list[0] * D + j];
        T gx = codes[0] == 1 ? x0 : mdelta * x0;
        for (int l = 1; l < c; ++l) {
            const T x = X[(size_t)list[l] * D + j];
            gx = gx + (codes[l] == 1 ? x : mdelta * x);
        }
        const T d = gx - xx * w[j];
        ds[j] = d;
        mx = nan_max_abs(mx, d);
    }
    __syncthreads();  // list and codes are done with: their memory takes the reduction
    const T m = block_max_keep_nan(mx, red_v, reinterpret_cast<int*>(red_v + 32));
    if (threadIdx.x == 0) {
        unit[q] = u;
        amax[q] = m;
    }
}

/// Block q: nc from every slot's max |ds|, then W_u += eps * (ds / nc) and Wp's row u.
/// dry: only check the new values (status[BS_BAD] set when one is not finite); else write
/// them, unless the fit stopped or the dry pass found one (batch_common.cuh's BatchStatus).
template <class T>
__global__ void __launch_bounds__(kKhThreads) kh_apply_kernel(T* __restrict__ W, T* __restrict__ Wp, int D,
                                                             const T* __restrict__ DS, const T* __restrict__ amax,
                                                             const int* __restrict__ unit, int Q,
                                                             const T* __restrict__ eps, double prec, int mode, double e,
                                                             int dry, int* status) {
    SD_DYNAMIC_SMEM(T, red_v);
    if (status[BS_STOPPED] || (!dry && status[BS_BAD])) return;
    const int q = blockIdx.x, u = unit[q];
    if (u < 0) return;
    T mx = T(0);
    for (int s = threadIdx.x; s < Q; s += blockDim.x) mx = nan_max_abs(mx, amax[s]);
    const T m = block_max_keep_nan(mx, red_v, reinterpret_cast<int*>(red_v + 32));
    // Python's max(float(m), prec): m unless prec is larger (a NaN m stays), cast to T
    const T nc = prec > double(m) ? T(prec) : m;
    const T ep = *eps;
    T* w = W + (size_t)u * D;
    T* wp = Wp + (size_t)u * D;
    const T* ds = DS + (size_t)q * D;
    if (dry) {
        bool bad = false;
        for (int j = threadIdx.x; j < D; j += blockDim.x) {
            const T x = w[j] + ep * (ds[j] / nc);
            bad |= !(x - x == T(0));
        }
        if (bad) atomicExch(status + BS_BAD, 1);
        return;
    }
    for (int j = threadIdx.x; j < D; j += blockDim.x) {
        const T x = w[j] + ep * (ds[j] / nc);
        w[j] = x;
        wp[j] = weight_power(x, mode, e);
    }
}

int power_mode(double p) {
    if (p == 2.0) return POW_ONE;
    if (p == 3.0) return POW_SQUARE;
    if (p == 1.5) return POW_SQRT;
    return POW_GENERAL;
}

size_t reduce_smem(size_t t) { return 32 * (t + sizeof(int)); }
size_t ds_smem(std::int64_t B, size_t t) { return std::max(size_t(2 * B + 2) * sizeof(int), reduce_smem(t)); }

template <class T>
void powers(const T* dW, std::int64_t count, double p, T* dWp, cudaStream_t s) {
    const int blocks = int(std::min<std::int64_t>((count + kKhThreads - 1) / kKhThreads, 65535));
    if (count > 0) SD_LAUNCH_ON(kh_powers_kernel<T>, blocks, kKhThreads, 0, s)(dW, (long long)count, power_mode(p), p - 1.0, dWp);
}

}  // namespace

template <class T>
BatchRunInfo krotov_fit(T* W, std::int64_t H, std::int64_t D, const T* X, std::int64_t n,
                        const std::int64_t* batches, std::int64_t E, std::int64_t nb, std::int64_t B, double p,
                        std::int64_t k, double delta, const double* eps, double prec, const BatchOptions& opt,
                        Poll& poll) {
    BatchRunInfo info;
    if (E <= 0 || nb <= 0 || B <= 0) return info;
    if (k < 2 || k > H) throw std::invalid_argument("k must lie in [2, n_hidden]");
    if (H >= INT_MAX || D >= INT_MAX || B * nb >= INT_MAX / 2 || H * B >= (std::int64_t(1) << 40))
        throw std::invalid_argument("KrotovHopfield on the GPU: sizes beyond 2^31 units, inputs or samples per epoch");
    int optin = 0, dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
    const size_t smem = ds_smem(B, sizeof(T));
    if (smem > size_t(optin))
        throw std::invalid_argument("KrotovHopfield on the GPU: batch_size " + std::to_string(B) +
                                    " is over the limit of this GPU's shared memory");
    if (smem > 48 * 1024)
        check(cudaFuncSetAttribute(kh_ds_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "cudaFuncSetAttribute");

    Stream st;
    const Gemm<T> gemm(opt.gemm, opt.cublas_libs);
    info.cublas = gemm.uses_cublas();
    const std::int64_t per_epoch = nb * B, Q = 2 * B;
    DevBuf dW(H * D * sizeof(T)), dWp(H * D * sizeof(T)), dX(n * D * sizeof(T)), dIdx(per_epoch * sizeof(long long));
    DevBuf dXe(per_epoch * D * sizeof(T)), dI(B * H * sizeof(T)), dFirst(B * sizeof(int)), dKth(B * sizeof(int));
    DevBuf dDS(Q * D * sizeof(T)), dAmax(Q * sizeof(T)), dUnit(Q * sizeof(int)), dEps(sizeof(T));
    DevBuf dStatus(BS_SIZE * sizeof(int));
    upload(dW, W, H * D, st.s);
    upload(dX, X, n * D, st.s);
    powers(dW.as<T>(), H * D, p, dWp.as<T>(), st.s);

    const int iH = int(H), iD = int(D), iB = int(B), iQ = int(Q), ik = int(k), mode = power_mode(p);
    const T mdelta = T(-delta);
    const int gather_blocks = int(std::min<std::int64_t>((per_epoch * D + kKhThreads - 1) / kKhThreads, 65535));
    auto enqueue = [&](std::int64_t i0, std::int64_t i1) {
        if (i0 == 0)
            SD_LAUNCH_ON(gather_rows_kernel<T>, gather_blocks, kKhThreads, 0, st.s)(
                dX.as<T>(), dIdx.as<long long>(), (long long)per_epoch, iD, dXe.as<T>());
        for (std::int64_t i = i0; i < i1; ++i) {
            const T* Xb = dXe.as<T>() + i * B * D;
            gemm(st.s, iB, iH, iD, Xb, dWp.as<T>(), dI.as<T>());
            SD_LAUNCH_ON(kh_rank_kernel<T>, iB, kKhThreads, reduce_smem(sizeof(T)), st.s)(dI.as<T>(), iH, ik,
                                                                                     dFirst.as<int>(), dKth.as<int>());
            SD_LAUNCH_ON(kh_ds_kernel<T>, iQ, kKhThreads, smem, st.s)(dW.as<T>(), iD, Xb, dI.as<T>(), iH, iB,
                                                                   dFirst.as<int>(), dKth.as<int>(), mdelta,
                                                                   dDS.as<T>(), dAmax.as<T>(), dUnit.as<int>());
            flag_nonfinite(dI.as<T>(), (long long)B * H, dStatus.as<int>(), st.s);
            for (int dry = 1; dry >= 0; --dry)
                SD_LAUNCH_ON(kh_apply_kernel<T>, iQ, kKhThreads, reduce_smem(sizeof(T)), st.s)(
                    dW.as<T>(), dWp.as<T>(), iD, dDS.as<T>(), dAmax.as<T>(), dUnit.as<int>(), iQ, dEps.as<T>(), prec,
                    mode, p - 1.0, dry, dStatus.as<int>());
            SD_LAUNCH_ON(batch_tally_kernel<>, 1, 1, 0, st.s)(dStatus.as<int>());
        }
        check(cudaGetLastError(), "KrotovHopfield kernel launch");
    };
    EpochGraph graph(opt.graphs && E > 2);
    std::vector<T> eps_t(E);
    for (std::int64_t e = 0; e < E; ++e) eps_t[e] = T(eps[e]);  // numpy 2 casts the Python float eps to W's dtype
    // every epoch's indices and rate at once; the graph reads the current epoch's from dIdx, dEps
    DevBuf dAll(E * per_epoch * sizeof(long long)), dEpsAll(E * sizeof(T));
    upload(dAll, reinterpret_cast<const long long*>(batches), E * per_epoch, st.s);
    upload(dEpsAll, eps_t.data(), E, st.s);
    auto start = [&](std::int64_t e) {
        check(cudaMemcpyAsync(dIdx.p, dAll.as<long long>() + e * per_epoch, per_epoch * sizeof(long long),
                              cudaMemcpyDeviceToDevice, st.s),
              "cudaMemcpy of the sample indices");
        check(cudaMemcpyAsync(dEps.p, dEpsAll.as<T>() + e, sizeof(T), cudaMemcpyDeviceToDevice, st.s),
              "cudaMemcpy of eps");
    };
    info.run = run_batches(st, graph, E, nb, dStatus.as<int>(), poll, start, enqueue);
    st.sync();
    info.graph = graph.used();
    check(cudaMemcpy(W, dW.p, H * D * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy of W");
    return info;
}

template <class T>
void krotov_ranks(const T* I, std::int64_t B, std::int64_t H, std::int64_t k, std::int64_t* first,
                  std::int64_t* kth) {
    if (B <= 0) return;
    if (k < 1 || k > H) throw std::invalid_argument("k must lie in [1, H]");
    if (H >= INT_MAX || B >= INT_MAX) throw std::invalid_argument("ranks on the GPU: sizes beyond 2^31");
    Stream st;
    DevBuf dI(B * H * sizeof(T)), dF(B * sizeof(int)), dK(B * sizeof(int));
    upload(dI, I, B * H, st.s);
    SD_LAUNCH_ON(kh_rank_kernel<T>, int(B), kKhThreads, reduce_smem(sizeof(T)), st.s)(dI.as<T>(), int(H), int(k),
                                                                                  dF.as<int>(), dK.as<int>());
    check(cudaGetLastError(), "ranks kernel launch");
    st.sync();
    std::vector<int> f(B), kk(B);
    check(cudaMemcpy(f.data(), dF.p, B * sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
    check(cudaMemcpy(kk.data(), dK.p, B * sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (std::int64_t b = 0; b < B; ++b) {
        first[b] = f[b];
        kth[b] = kk[b];
    }
}

template <class T>
void krotov_weight_powers(const T* W, std::int64_t rows, std::int64_t D, double p, T* out) {
    const std::int64_t count = rows * D;
    if (count <= 0) return;
    Stream st;
    DevBuf dW(count * sizeof(T)), dWp(count * sizeof(T));
    upload(dW, W, count, st.s);
    powers(dW.as<T>(), count, p, dWp.as<T>(), st.s);
    check(cudaGetLastError(), "powers kernel launch");
    st.sync();
    check(cudaMemcpy(out, dWp.p, count * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy");
}

#define SD_KH_INSTANTIATE(T)                                                                                        \
    template BatchRunInfo krotov_fit<T>(T*, std::int64_t, std::int64_t, const T*, std::int64_t, const std::int64_t*, \
                                        std::int64_t, std::int64_t, std::int64_t, double, std::int64_t, double,      \
                                        const double*, double, const BatchOptions&, Poll&);                          \
    template void krotov_ranks<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t*, std::int64_t*); \
    template void krotov_weight_powers<T>(const T*, std::int64_t, std::int64_t, double, T*);
SD_KH_INSTANTIATE(float)
SD_KH_INSTANTIATE(double)
#undef SD_KH_INSTANTIATE

}  // namespace cuda
}  // namespace sd
