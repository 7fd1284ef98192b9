// CUDA runtime queries and a tiny self-test kernel: the place where the CUDA kernels of
// the library live (csrc/cuda/<rule>.cu), sharing the raw-pointer style of csrc/sparsedream.
#include "cuda_common.hpp"

#include <stdexcept>
#include <string>

#include "device.hpp"

namespace sd {
namespace cuda {
namespace {

/// Errors that mean "no usable GPU here" rather than a fault.
bool means_no_device(cudaError_t err) {
    switch (err) {
        case cudaErrorNoDevice:
        case cudaErrorInsufficientDriver:
        case cudaErrorSystemDriverMismatch:
        case cudaErrorCompatNotSupportedOnDevice:
        case cudaErrorStubLibrary:
        case cudaErrorDevicesUnavailable:
        case cudaErrorSystemNotReady:
        case cudaErrorInitializationError:
            return true;
        default:
            return false;
    }
}

__global__ void axpy_kernel(int n, float a, const float* x, float* y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

}  // namespace

int device_count() {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError();
        if (means_no_device(err)) return 0;
        check(err, "cudaGetDeviceCount");
    }
    return n;
}

std::string device_name(int i) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, i), "cudaGetDeviceProperties");
    return std::string(prop.name);
}

void device_capability(int i, int* major, int* minor) {
    check(cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, i), "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(minor, cudaDevAttrComputeCapabilityMinor, i), "cudaDeviceGetAttribute");
}

int runtime_version() {
    int v = 0;
    check(cudaRuntimeGetVersion(&v), "cudaRuntimeGetVersion");
    return v;
}

int driver_version() {
    int v = 0;
    if (cudaDriverGetVersion(&v) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return v;
}

bool self_test(int dev) {
    check(cudaSetDevice(dev), "cudaSetDevice");
    const int n = 1000;
    float hx[n], hy[n];
    for (int i = 0; i < n; ++i) { hx[i] = float(i); hy[i] = 1.0f; }
    float *dx = nullptr, *dy = nullptr;
    check(cudaMalloc(&dx, n * sizeof(float)), "cudaMalloc");
    cudaError_t err = cudaMalloc(&dy, n * sizeof(float));
    if (err != cudaSuccess) { cudaFree(dx); check(err, "cudaMalloc"); }
    bool ok = false;
    try {
        check(cudaMemcpy(dx, hx, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
        check(cudaMemcpy(dy, hy, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
        SD_LAUNCH(axpy_kernel, (n + 255) / 256, 256, 0)(n, 2.0f, dx, dy);
        check(cudaGetLastError(), "axpy_kernel launch");
        check(cudaDeviceSynchronize(), "axpy_kernel");
        check(cudaMemcpy(hy, dy, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
        ok = true;
        for (int i = 0; i < n; ++i) ok = ok && hy[i] == 2.0f * float(i) + 1.0f;
    } catch (...) {
        cudaFree(dx);
        cudaFree(dy);
        throw;
    }
    cudaFree(dx);
    cudaFree(dy);
    return ok;
}

}  // namespace cuda
}  // namespace sd
