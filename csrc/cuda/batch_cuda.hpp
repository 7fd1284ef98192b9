// DreamComp (rule B) and Krotov-Hopfield (rule C) on the GPU: host interface of
// csrc/cuda/dreamcomp.cu and krotov.cu, plain C++ types so that the binding file is
// compiled by the host compiler. All arrays are host arrays, copied to the GPU and back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparsedream/run_control.hpp"

namespace sd {
namespace cuda {

/// How the minibatch product runs.
enum GemmKind { GEMM_AUTO = 0, GEMM_CUBLAS = 1, GEMM_KERNEL = 2 };

struct BatchOptions {
    int gemm = GEMM_AUTO;
    /// cuBLAS libraries to try, in order (file names for dlopen, or paths)
    std::vector<std::string> cublas_libs;
    /// replay each epoch as a CUDA graph (ignored by the emulator)
    bool graphs = true;
    /// DreamComp float32: products in TF32 on cuBLAS (float32 on the own kernel), winners
    /// confirmed by float64 dot products of the candidates the error bound leaves
    bool screen = false;
};

/// What a fit used.
struct BatchRunInfo {
    bool cublas = false;  ///< the product ran on cuBLAS (else the own kernel)
    bool graph = false;   ///< epochs were replayed as a CUDA graph
    bool screened = false;  ///< winners confirmed in float64 (DreamComp float32)
    bool tf32 = false;      ///< the float32 products ran in TF32
    std::string cublas_where;
    RunResult run;  ///< batches completed, and how the fit ended (run_control.hpp)
};

/// reference.fit of rule B on W (N, Dp) in place, or, with update false, only the winners
/// of the single batch. V (n, Dp); zeta, eta (Dp,); batches (E, nb, B) with indices in
/// [0, n). win_out (B,) receives the last batch's winners. W must be finite. The fit stops
/// after a batch when `poll` says so (polled between launches) and before a batch whose
/// update is not finite (that batch writes nothing); info.run says where. Throws
/// std::runtime_error on CUDA errors, std::invalid_argument for sizes the kernels cannot take.
template <class T>
BatchRunInfo dreamcomp_fit(T* W, std::int64_t N, std::int64_t Dp, const T* V, std::int64_t n, const T* zeta,
                           const T* eta, const std::int64_t* batches, std::int64_t E, std::int64_t nb,
                           std::int64_t B, bool update, const BatchOptions& opt, std::int64_t* win_out, Poll& poll);

/// reference.fit of rule C on W (H, D) in place: X (n, D), batches (E, nb, B), eps[e] the
/// learning rate of epoch e (already annealed), 2 <= k <= H. W must be finite; stops as
/// dreamcomp_fit does.
template <class T>
BatchRunInfo krotov_fit(T* W, std::int64_t H, std::int64_t D, const T* X, std::int64_t n,
                        const std::int64_t* batches, std::int64_t E, std::int64_t nb, std::int64_t B, double p,
                        std::int64_t k, double delta, const double* eps, double prec, const BatchOptions& opt,
                        Poll& poll);

/// reference.ranks on the GPU: I (B, H) row-major (one row per sample), 1 <= k <= H;
/// first, kth (B,).
template <class T>
void krotov_ranks(const T* I, std::int64_t B, std::int64_t H, std::int64_t k, std::int64_t* first,
                  std::int64_t* kth);

/// sign(W) |W|^(p-1) of W (rows, D), as krotov.fit computes it.
template <class T>
void krotov_weight_powers(const T* W, std::int64_t rows, std::int64_t D, double p, T* out);

}  // namespace cuda
}  // namespace sd
