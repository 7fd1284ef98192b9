// cublas_api() of the CPU emulator: host loops with cuBLAS's definition of gemm
// (column-major C = alpha op(A) op(B) + beta C), so that the emulator tests check the
// arguments the batch rules pass to cuBLAS (transposes, leading dimensions), not only the
// module's own GEMM kernel. Device memory is host memory here.
#include <cstring>

#include "../cublas_api.hpp"

namespace sd {
namespace cuda {
namespace {

int g_handle_tag;
int g_math_mode = kCublasDefaultMath;

int create(void** h) {
    *h = &g_handle_tag;
    return 0;
}
int set_stream(void*, void*) { return 0; }
int set_math_mode(void*, int mode) {
    g_math_mode = mode;
    return 0;
}

/// An input as the tensor cores see it under TF32 math: the 13 low mantissa bits dropped
/// (truncation, the larger of the errors the hardware's conversions make).
template <class T>
T tf32(T v) {
    if constexpr (sizeof(T) == 4) {
        unsigned u;
        std::memcpy(&u, &v, 4);
        u &= 0xFFFFE000u;
        std::memcpy(&v, &u, 4);
    }
    return v;
}

template <class T>
int gemm(void* h, int ta, int tb, int m, int n, int k, const T* alpha, const T* A, int lda, const T* B, int ldb,
         const T* beta, T* C, int ldc) {
    if (h != &g_handle_tag) return 1;  // CUBLAS_STATUS_NOT_INITIALIZED
    if (m < 0 || n < 0 || k < 0 || lda < (ta == kCublasOpN ? m : k) || ldb < (tb == kCublasOpN ? k : n) ||
        ldc < m || (ta != kCublasOpN && ta != kCublasOpT) || (tb != kCublasOpN && tb != kCublasOpT))
        return 7;  // CUBLAS_STATUS_INVALID_VALUE
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            T acc = T(0);
            for (int l = 0; l < k; ++l) {
                T a = ta == kCublasOpN ? A[i + size_t(l) * lda] : A[l + size_t(i) * lda];
                T b = tb == kCublasOpN ? B[l + size_t(j) * ldb] : B[j + size_t(l) * ldb];
                if (g_math_mode == kCublasTf32Math) {  // cuBLAS applies it to float32 only
                    a = tf32(a);
                    b = tf32(b);
                }
                acc += a * b;
            }
            T& c = C[i + size_t(j) * ldc];
            c = *beta == T(0) ? *alpha * acc : *alpha * acc + *beta * c;  // beta 0: C is not read
        }
    return 0;
}

}  // namespace

const CublasApi& cublas_api(const std::vector<std::string>&) {
    static CublasApi api = [] {
        CublasApi a;
        a.create = create;
        a.set_stream = set_stream;
        a.set_math_mode = set_math_mode;
        a.sgemm = gemm<float>;
        a.dgemm = gemm<double>;
        a.where = "emulated cuBLAS (host loops)";
        return a;
    }();
    return api;
}

}  // namespace cuda
}  // namespace sd
