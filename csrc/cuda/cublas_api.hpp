// The few cuBLAS entry points of the batch rules (DreamComp, Krotov-Hopfield), loaded at run
// time with dlopen: the CUDA module neither links cuBLAS nor fails to import without it, and
// the products fall back to the module's own GEMM kernel where no cuBLAS is found. The types
// are spelled here with the ABI of <cublas_v2.h> (opaque handle, int enums), so the build
// needs no cuBLAS header either. The CPU emulator (csrc/cuda/emu/cublas_emu.cpp) implements
// the same table with host loops that follow cuBLAS's column-major definition.
#pragma once

#include <string>
#include <vector>

namespace sd {
namespace cuda {

struct CublasApi {
    using Handle = void*;
    using Status = int;  // cublasStatus_t: 0 is CUBLAS_STATUS_SUCCESS
    Status (*create)(Handle*) = nullptr;                  // cublasCreate_v2
    Status (*set_stream)(Handle, void* stream) = nullptr;  // cublasSetStream_v2
    Status (*set_math_mode)(Handle, int mode) = nullptr;    // cublasSetMathMode
    Status (*sgemm)(Handle, int transa, int transb, int m, int n, int k, const float* alpha, const float* A,
                    int lda, const float* B, int ldb, const float* beta, float* C, int ldc) = nullptr;
    Status (*dgemm)(Handle, int transa, int transb, int m, int n, int k, const double* alpha, const double* A,
                    int lda, const double* B, int ldb, const double* beta, double* C, int ldc) = nullptr;
    /// The library loaded, or why none was.
    std::string where;
    bool ok() const { return create && set_stream && set_math_mode && sgemm && dgemm; }
};

/// cublasOperation_t
constexpr int kCublasOpN = 0, kCublasOpT = 1;
/// cublasMath_t: float32 products as they are, or with inputs rounded to TF32 on tensor cores
constexpr int kCublasDefaultMath = 0, kCublasTf32Math = 3;

/// cuBLAS from the first of `candidates` (file names or paths) that loads and has every
/// entry point. Loaded once per process: later calls return the first result.
const CublasApi& cublas_api(const std::vector<std::string>& candidates);

}  // namespace cuda
}  // namespace sd
