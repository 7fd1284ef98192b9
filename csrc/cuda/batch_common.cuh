// Pieces shared by the batch rules on the GPU (dreamcomp.cu, krotov.cu): the product of a
// minibatch with the weights (cuBLAS when it is found at run time, else the module's own
// tiled kernel), an epoch replayed as a CUDA graph so that the 3 to 5 launches per
// minibatch cost one launch per epoch, and the loop over the batches that stops at a batch
// boundary (Ctrl-C, run_control.hpp) and before a batch whose update is not finite.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_cuda.hpp"
#include "block_reduce.cuh"
#include "cublas_api.hpp"
#include "cuda_common.hpp"

namespace sd {
namespace cuda {

// ------------------------------------------------------------------ own GEMM kernel
constexpr int kGemmTile = 64, kGemmK = 16, kGemmThreads = 256, kGemmPad = kGemmTile + 2;

/// C[r, c] = sum_k A[r, k] Bm[c, k] for r < rows, c < cols (all row-major, K contiguous):
/// 64 x 64 tiles of C per block, 16 values of k at a time through shared memory (stored k
/// major with a stride of 66: a warp's 32 float stores land on 32 banks, 2 kk + row, and its
/// reads are 16 consecutive values or broadcasts), each thread 4 x 4 outputs spaced 16 apart. Accumulates in T in increasing k.
template <class T>
__global__ void __launch_bounds__(kGemmThreads) gemm_nt_kernel(int rows, int cols, int K, const T* __restrict__ A,
                                                               const T* __restrict__ Bm, T* __restrict__ C) {
    SD_DYNAMIC_SMEM(T, sm);
    T* As = sm;                      // [kGemmK][kGemmPad]
    T* Bs = sm + kGemmK * kGemmPad;  // [kGemmK][kGemmPad]
    const int tid = threadIdx.x, tr = tid / 16, tc = tid % 16;
    const int r0 = blockIdx.y * kGemmTile, c0 = blockIdx.x * kGemmTile;
    T acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
    for (int k0 = 0; k0 < K; k0 += kGemmK) {
        for (int l = 0; l < kGemmTile * kGemmK / kGemmThreads; ++l) {
            const int e = tid + kGemmThreads * l, row = e / kGemmK, kk = e % kGemmK, gk = k0 + kk;
            const int gr = r0 + row, gc = c0 + row;
            As[kk * kGemmPad + row] = (gr < rows && gk < K) ? A[(size_t)gr * K + gk] : T(0);
            Bs[kk * kGemmPad + row] = (gc < cols && gk < K) ? Bm[(size_t)gc * K + gk] : T(0);
        }
        __syncthreads();
        for (int kk = 0; kk < kGemmK; ++kk) {
            T a[4], b[4];
            for (int i = 0; i < 4; ++i) a[i] = As[kk * kGemmPad + tr + 16 * i];
            for (int j = 0; j < 4; ++j) b[j] = Bs[kk * kGemmPad + tc + 16 * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        const int r = r0 + tr + 16 * i;
        if (r >= rows) continue;
        for (int j = 0; j < 4; ++j) {
            const int c = c0 + tc + 16 * j;
            if (c < cols) C[(size_t)r * cols + c] = acc[i][j];
        }
    }
}

/// The minibatch product C (rows, cols) = A (rows, K) Bm (cols, K)^T, row-major, on a stream.
template <class T>
class Gemm {
public:
    /// kind GEMM_AUTO: cuBLAS when one of `libs` loads, else the own kernel; GEMM_CUBLAS
    /// requires cuBLAS (std::invalid_argument when none loads); GEMM_KERNEL the own kernel.
    Gemm(int kind, const std::vector<std::string>& libs) {
        if (kind != GEMM_KERNEL) {
            const CublasApi& api = cublas_api(libs);
            if (api.ok()) {
                // one handle per host thread and device, kept for the life of the process:
                // creating one costs milliseconds, and destroying it at exit races the
                // driver's teardown
                thread_local std::map<int, CublasApi::Handle> handles;
                int dev = 0;
                check(cudaGetDevice(&dev), "cudaGetDevice");
                CublasApi::Handle& handle = handles[dev];
                if (!handle && api.create(&handle) != 0) {
                    handle = nullptr;
                    // e.g. a cuBLAS newer than the driver: auto takes the own kernel
                    if (kind == GEMM_CUBLAS)
                        throw std::runtime_error("cublasCreate failed (cuBLAS: " + api.where + ")");
                }
                if (handle) {
                    api_ = &api;
                    handle_ = handle;
                }
            } else if (kind == GEMM_CUBLAS) {
                throw std::invalid_argument("gemm='cublas' but " + api.where);
            }
        }
    }

    bool uses_cublas() const { return api_ != nullptr; }
    /// Largest relative error of one input as the product sees it (TF32 truncates 13 bits).
    static double input_rounding(bool tf32_used) { return tf32_used && sizeof(T) == 4 ? std::ldexp(1.0, -10) : 0.0; }

    /// tf32: float32 products on tensor cores with inputs rounded to TF32 (cuBLAS only; the
    /// caller bounds the error, see dreamcomp.cu); ignored for float64 and the own kernel.
    void operator()(cudaStream_t s, int rows, int cols, int K, const T* A, const T* Bm, T* C, bool tf32 = false) const {
        if (rows <= 0 || cols <= 0) return;
        if (api_) {
            // cuBLAS is column-major: there C is C^T (cols x rows, ld cols), Bm is a K x cols
            // matrix and A a K x rows one, so C^T = Bm^T A is gemm(T, N, cols, rows, K)
            const T one = T(1), zero = T(0);
            int st = api_->set_stream(handle_, reinterpret_cast<void*>(s));
            // the handle is shared by this thread's calls: set the mode every time
            if (st == 0) st = api_->set_math_mode(handle_, tf32 && sizeof(T) == 4 ? kCublasTf32Math : kCublasDefaultMath);
            if (st == 0) {
                if constexpr (sizeof(T) == 4)
                    st = api_->sgemm(handle_, kCublasOpT, kCublasOpN, cols, rows, K, &one, Bm, K, A, K, &zero, C, cols);
                else
                    st = api_->dgemm(handle_, kCublasOpT, kCublasOpN, cols, rows, K, &one, Bm, K, A, K, &zero, C, cols);
            }
            if (st != 0) throw std::runtime_error("cuBLAS gemm failed with status " + std::to_string(st));
            return;
        }
        const dim3 grid((cols + kGemmTile - 1) / kGemmTile, (rows + kGemmTile - 1) / kGemmTile);
        SD_LAUNCH_ON(gemm_nt_kernel<T>, grid, kGemmThreads, 2 * kGemmK * kGemmPad * sizeof(T), s)(rows, cols, K, A,
                                                                                                  Bm, C);
        check(cudaGetLastError(), "gemm kernel launch");
    }

private:
    const CublasApi* api_ = nullptr;
    CublasApi::Handle handle_ = nullptr;
};

// ---------------------------------------------------------------------- epoch graph
/// Runs enqueue() (the work of one epoch on stream s) directly, or, with use_graph, runs
/// the first epoch directly (so that cuBLAS and the module's kernels are loaded and
/// initialised outside a capture), captures the second as a CUDA graph and replays the
/// graph from then on. The per-epoch inputs (sample indices, learning rate) live in device
/// buffers that the caller fills before each run, so one graph serves every epoch. If the
/// capture fails (a library call that cannot be captured), the epochs run directly. The
/// emulator always runs directly.
class EpochGraph {
public:
    explicit EpochGraph(bool use_graph) : use_(use_graph) {}
    EpochGraph(const EpochGraph&) = delete;
    EpochGraph& operator=(const EpochGraph&) = delete;
    ~EpochGraph() {
#ifndef SD_CUDA_EMULATOR
        if (exec_) cudaGraphExecDestroy(exec_);
#endif
    }

    /// True once an epoch ran as a graph.
    bool used() const { return launched_; }

    template <class F>
    void run(cudaStream_t s, F&& enqueue) {
#ifndef SD_CUDA_EMULATOR
        if (use_ && !tried_ && runs_++ > 0) {
            tried_ = true;
            capture(s, enqueue);
        }
        if (exec_) {
            check(cudaGraphLaunch(exec_, s), "cudaGraphLaunch");
            launched_ = true;
            return;
        }
#else
        (void)use_;
        (void)tried_;
        (void)runs_;
#endif
        enqueue();
    }

private:
#ifndef SD_CUDA_EMULATOR
    template <class F>
    void capture(cudaStream_t s, F& enqueue) {
        if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
            cudaGetLastError();
            return;
        }
        bool ok = true;
        try {
            enqueue();
        } catch (const std::exception&) {
            ok = false;
        }
        cudaGraph_t g = nullptr;
        ok = cudaStreamEndCapture(s, &g) == cudaSuccess && ok && g;
        if (ok && cudaGraphInstantiate(&exec_, g, 0) != cudaSuccess) {
            exec_ = nullptr;
            ok = false;
        }
        if (g) cudaGraphDestroy(g);
        if (!ok) cudaGetLastError();  // capture errors are not sticky: run directly instead
    }
    cudaGraphExec_t exec_ = nullptr;
#endif
    bool use_, tried_ = false, launched_ = false;
    int runs_ = 0;
};

// ------------------------------------------------------------- stopping at a batch boundary
// A fit keeps three ints on the device (BatchStatus): [0] stopped (a batch's update was not
// finite: every later batch writes nothing), [1] the current batch's update is not finite,
// [2] batches completed. Per batch, the update kernel runs twice: a dry pass that only
// checks the new values (and sets [1]), then the pass that writes them unless [0] or [1]
// is set; then batch_tally_kernel counts the batch or stops the fit.
enum BatchStatus { BS_STOPPED = 0, BS_BAD = 1, BS_DONE = 2, BS_SIZE = 3 };

/// Sets status[BS_BAD] when a value of x[:count] is not finite (a batch's product: the
/// reference's update takes every product times 0 or g, and a NaN or inf there is NaN).
template <class T>
__global__ void flag_nonfinite_kernel(const T* __restrict__ x, long long count, int* status) {
    bool bad = false;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        bad |= !(x[i] - x[i] == T(0));
    if (bad) atomicExch(status + BS_BAD, 1);
}

/// flag_nonfinite_kernel over x[:count] on stream s.
template <class T>
void flag_nonfinite(const T* x, long long count, int* status, cudaStream_t s) {
    const int blocks = int(std::min<long long>((count + 255) / 256, 1024));
    if (count > 0) SD_LAUNCH_ON(flag_nonfinite_kernel<T>, blocks, 256, 0, s)(x, count, status);
}

/// After a batch's update: count it, or (its update not finite) stop the fit. (A template
/// only so that the header can define it for every .cu file.)
template <int = 0>
__global__ void batch_tally_kernel(int* status) {
    if (threadIdx.x != 0 || blockIdx.x != 0 || status[BS_STOPPED]) return;
    if (status[BS_BAD])
        status[BS_STOPPED] = 1;
    else
        ++status[BS_DONE];
}

/// The fit's batches on stream st, polled between launches: start(e) puts epoch e's inputs
/// in place (outside any graph), batches(i0, i1) enqueues batches [i0, i1) of the current
/// epoch (the epoch's gather first when i0 is 0), each followed by batch_tally_kernel on
/// dStatus. An epoch is enqueued in chunks of about Poll::kPollSeconds of GPU work, with a
/// synchronisation and a poll after each; once an epoch has taken under kGraphEpochSeconds,
/// the later epochs run whole (as a CUDA graph when `graph` is on), polled after each.
/// Returns the batches completed and how the run ended.
template <class Start, class Batches>
RunResult run_batches(Stream& st, EpochGraph& graph, std::int64_t E, std::int64_t nb, int* dStatus, Poll& poll,
                      Start&& start, Batches&& batches) {
    constexpr double kGraphEpochSeconds = 0.1;
    using Clock = std::chrono::steady_clock;
    int status[BS_SIZE] = {0, 0, 0};
    check(cudaMemcpyAsync(dStatus, status, sizeof(status), cudaMemcpyHostToDevice, st.s), "cudaMemcpy of the status");
    RunResult res;
    auto settle = [&] {  // wait for the enqueued work; true when the fit must end here
        st.sync();
        check(cudaMemcpy(status, dStatus, sizeof(status), cudaMemcpyDeviceToHost), "cudaMemcpy of the status");
        res.done = status[BS_DONE];
        if (status[BS_STOPPED]) {
            res.status = RUN_DIVERGED;
            return true;
        }
        return false;
    };
    double epoch_seconds = -1.0;
    std::int64_t chunk = 1;
    for (std::int64_t e = 0; e < E; ++e) {
        start(e);
        const bool last_epoch = e + 1 == E;
        if (epoch_seconds >= 0.0 && epoch_seconds < kGraphEpochSeconds) {
            graph.run(st.s, [&] { batches(0, nb); });
            if (settle()) return res;
            if (!last_epoch && poll.stop()) {
                res.status = RUN_STOPPED;
                return res;
            }
            continue;
        }
        const Clock::time_point t0 = Clock::now();
        for (std::int64_t i0 = 0; i0 < nb;) {
            const std::int64_t i1 = std::min(nb, i0 + chunk);
            const Clock::time_point c0 = Clock::now();
            batches(i0, i1);
            if (settle()) return res;
            const double took = std::chrono::duration<double>(Clock::now() - c0).count();
            if (took < Poll::kPollSeconds / 2 && chunk < nb) chunk *= 2;
            else if (took > 2 * Poll::kPollSeconds && chunk > 1) chunk /= 2;
            i0 = i1;
            if ((i0 < nb || !last_epoch) && poll.stop()) {
                res.status = RUN_STOPPED;
                return res;
            }
        }
        epoch_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    return res;
}

}  // namespace cuda
}  // namespace sd
