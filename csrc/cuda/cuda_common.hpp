// Pieces shared by the CUDA sources of csrc/cuda, spelled so that nvcc and the CPU emulator
// (csrc/cuda/emu) both build them: kernels launch with SD_LAUNCH(kernel, grid, block,
// smem)(args...) (SD_LAUNCH_ON(kernel, grid, block, smem, stream) on a stream) and take
// their dynamic shared memory with SD_DYNAMIC_SMEM(T, name).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#ifndef SD_CUDA_EMULATOR
#define SD_LAUNCH(kernel, grid, block, smem) kernel<<<(grid), (block), (smem)>>>
#define SD_LAUNCH_ON(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define SD_DYNAMIC_SMEM(T, name)                               \
    extern __shared__ __align__(16) unsigned char sd_smem_raw[]; \
    T* name = reinterpret_cast<T*>(sd_smem_raw)
#endif

namespace sd {
namespace cuda {

/// Turns a CUDA error into std::runtime_error (a Python RuntimeError) naming the step.
inline void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) {
        cudaGetLastError();  // clear the error state where it is not sticky
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
    }
}

/// A device buffer freed on scope exit (no leak when a later step throws).
struct DevBuf {
    void* p = nullptr;
    DevBuf() = default;
    explicit DevBuf(size_t bytes) {
        if (bytes) check(cudaMalloc(&p, bytes), "cudaMalloc");
    }
    ~DevBuf() {
        if (p) cudaFree(p);
    }
    DevBuf(const DevBuf&) = delete;
    DevBuf& operator=(const DevBuf&) = delete;
    template <class T>
    T* as() const {
        return static_cast<T*>(p);
    }
};

/// A stream of its own for one call, destroyed on scope exit.
struct Stream {
    cudaStream_t s = nullptr;
    Stream() { check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
    ~Stream() {
        if (s) cudaStreamDestroy(s);
    }
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    void sync() const { check(cudaStreamSynchronize(s), "kernel execution"); }
};

/// Copies count host values into dst (nothing when count is 0), ordered with the legacy
/// default stream's work (the kernels SD_LAUNCH starts).
template <class T>
void upload(DevBuf& dst, const T* src, size_t count) {
    if (count) check(cudaMemcpy(dst.p, src, count * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

/// The same, ordered on stream s: a copy from pageable memory may still be in flight when
/// cudaMemcpy returns, and a non-blocking stream does not wait for the default stream.
/// The host buffer may be reused on return (it has been staged).
template <class T>
void upload(DevBuf& dst, const T* src, size_t count, cudaStream_t s) {
    if (count)
        check(cudaMemcpyAsync(dst.p, src, count * sizeof(T), cudaMemcpyHostToDevice, s), "cudaMemcpy to device");
}

}  // namespace cuda
}  // namespace sd
