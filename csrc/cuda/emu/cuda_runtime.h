// A CPU emulator of the part of CUDA that the kernels of csrc/cuda use, so that the very
// same kernel sources run (slowly) on a machine without a GPU, in CI and in tests.
//
// It is picked up instead of the toolkit's <cuda_runtime.h> when this directory comes first
// on the include path (the _cuda_emu target of CMakeLists.txt; never the real _cuda module).
// A kernel's threads are fibers (ucontext) of the calling OS thread: each runs until it
// reaches a barrier (__syncthreads, a warp shuffle or __syncwarp, grid.sync()) or returns,
// and a barrier opens when every live thread of its block / warp / grid waits at it. The
// order in which runnable threads resume is shuffled every round (seeded by the environment
// variable SD_EMU_SEED, default 1), so a read that lacks the barrier before it sees a
// different writer order from run to run and shows as a wrong result, not as luck.
// A barrier that can never open (divergence) and a grid.sync() outside a cooperative launch
// are reported as CUDA errors, as are bad launch configurations.
//
// What it does not emulate: memory-model effects of real concurrency, timing, warp-level
// divergence rules, and any intrinsic not declared here (a kernel using one does not build).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define SD_CUDA_EMULATOR 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __constant__

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
typedef dim3 uint3;

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorStubLibrary = 34,
    cudaErrorInsufficientDriver = 35,
    cudaErrorDevicesUnavailable = 46,
    cudaErrorNoDevice = 100,
    cudaErrorLaunchFailure = 719,
    cudaErrorCooperativeLaunchTooLarge = 720,
    cudaErrorSystemNotReady = 802,
    cudaErrorSystemDriverMismatch = 803,
    cudaErrorCompatNotSupportedOnDevice = 804,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
    cudaDevAttrCooperativeLaunch = 95,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
    cudaDevAttrL2CacheSize = 38,
};

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct cudaDeviceProp {
    char name[256];
    int multiProcessorCount;
    int major, minor;
    size_t sharedMemPerBlock, sharedMemPerBlockOptin, totalGlobalMem;
    int maxThreadsPerBlock, cooperativeLaunch, l2CacheSize;
};

typedef struct sd_emu_stream* cudaStream_t;

namespace sd_emu {

/// The emulated device: small, so that grids stay small enough for fibers.
constexpr int kSMs = 4;
constexpr int kBlocksPerSM = 2;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kSharedPerBlock = 48 * 1024, kSharedOptin = 227 * 1024;

/// Per-thread view of the running kernel (the builtins threadIdx, blockIdx, ... read it).
struct ThreadView {
    dim3 tid, bid, bdim, gdim;
    unsigned char* smem;
};
ThreadView& view();

// Barriers and warp exchange, implemented in emu.cpp.
void sync_block();
void sync_warp();
void sync_grid();
/// Publishes 8 bytes for this lane, waits for the warp, returns the 8 bytes of lane src.
std::uint64_t warp_exchange(std::uint64_t mine, int src_lane);
unsigned lane_id();

/// Runs body() once per thread of a grid (a cooperative launch lets threads of different
/// blocks wait for each other at grid.sync(); a plain one runs the blocks one after another).
/// func identifies the kernel for its shared-memory limit (cudaFuncSetAttribute).
cudaError_t launch(const void* func, dim3 grid, dim3 block, size_t smem, bool cooperative,
                   const std::function<void()>& body);
size_t& max_dynamic_smem(const void* func);

template <class F>
struct Launcher {
    F* f;
    dim3 grid, block;
    size_t smem;
    template <class... A>
    void operator()(A&&... args) const {
        auto tup = std::make_tuple(std::forward<A>(args)...);
        launch(reinterpret_cast<const void*>(f), grid, block, smem, false, [&] { std::apply(f, tup); });
    }
};

template <class... P, size_t... I>
void call_packed(void (*f)(P...), void** args, std::index_sequence<I...>) {
    f(*static_cast<typename std::remove_reference<P>::type*>(args[I])...);
}

template <class T>
std::uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type over 8 bytes");
    std::uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T>
T from_bits(std::uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

}  // namespace sd_emu

#define threadIdx (::sd_emu::view().tid)
#define blockIdx (::sd_emu::view().bid)
#define blockDim (::sd_emu::view().bdim)
#define gridDim (::sd_emu::view().gdim)
#define warpSize 32

/// Kernel launch that spells the same under nvcc and the emulator: SD_LAUNCH(k, g, b, s)(args).
#define SD_LAUNCH(kernel, grid, block, smem) \
    (::sd_emu::Launcher<std::remove_pointer_t<decltype(&kernel)>>{&kernel, dim3(grid), dim3(block), size_t(smem)})
/// The same on a stream (the emulator runs work when it is issued: streams are tags).
#define SD_LAUNCH_ON(kernel, grid, block, smem, stream) SD_LAUNCH(kernel, grid, block, smem)
/// The block's dynamic shared memory as a T*.
#define SD_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::sd_emu::view().smem)

inline void __syncthreads() { sd_emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { sd_emu::sync_warp(); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline unsigned __activemask() { return 0xffffffffu; }

template <class T>
T __shfl_sync(unsigned, T v, int src, int width = 32) {
    const int lane = int(sd_emu::lane_id());
    const int base = lane - lane % width;
    return sd_emu::from_bits<T>(sd_emu::warp_exchange(sd_emu::to_bits(v), base + ((src % width) + width) % width));
}
template <class T>
T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
    const int lane = int(sd_emu::lane_id());
    const int src = lane % width + int(delta) < width ? lane + int(delta) : lane;
    return sd_emu::from_bits<T>(sd_emu::warp_exchange(sd_emu::to_bits(v), src));
}
template <class T>
T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
    const int lane = int(sd_emu::lane_id());
    const int src = lane % width >= int(delta) ? lane - int(delta) : lane;
    return sd_emu::from_bits<T>(sd_emu::warp_exchange(sd_emu::to_bits(v), src));
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
    const int lane = int(sd_emu::lane_id());
    const int src = (lane ^ mask) / width == lane / width ? lane ^ mask : lane;
    return sd_emu::from_bits<T>(sd_emu::warp_exchange(sd_emu::to_bits(v), src));
}
unsigned __ballot_sync(unsigned mask, int pred);
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, !pred) == 0; }

// Fibers never run at the same time, so atomics are plain read-modify-writes.
template <class T>
T atomicAdd(T* p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <class T>
T atomicSub(T* p, T v) {
    T old = *p;
    *p = old - v;
    return old;
}
template <class T>
T atomicMax(T* p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <class T>
T atomicMin(T* p, T v) {
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <class T>
T atomicExch(T* p, T v) {
    T old = *p;
    *p = v;
    return old;
}
template <class T>
T atomicCAS(T* p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}
template <class T>
T atomicOr(T* p, T v) {
    T old = *p;
    *p = old | v;
    return old;
}

inline unsigned __float_as_uint(float f) { return sd_emu::from_bits<unsigned>(sd_emu::to_bits(f)); }
inline float __uint_as_float(unsigned u) { return sd_emu::from_bits<float>(sd_emu::to_bits(u)); }
inline int __float_as_int(float f) { return sd_emu::from_bits<int>(sd_emu::to_bits(f)); }
inline float __int_as_float(int u) { return sd_emu::from_bits<float>(sd_emu::to_bits(u)); }
inline long long __double_as_longlong(double f) { return sd_emu::from_bits<long long>(sd_emu::to_bits(f)); }
inline double __longlong_as_double(long long u) { return sd_emu::from_bits<double>(sd_emu::to_bits(u)); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
template <class T>
T __ldg(const T* p) { return *p; }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(unsigned v) { return __builtin_ffs(int(v)); }
inline int __clz(unsigned v) { return v ? __builtin_clz(v) : 32; }

// ------------------------------------------------------------------ runtime API subset
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t);
constexpr unsigned cudaStreamNonBlocking = 1;
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
namespace sd_emu {
/// Streams created and not yet destroyed.
int streams_alive();
}  // namespace sd_emu
cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
    return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

template <class F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || size_t(value) > sd_emu::kSharedOptin) return cudaErrorInvalidValue;
        sd_emu::max_dynamic_smem(reinterpret_cast<const void*>(func)) = size_t(value);
    }
    return cudaSuccess;
}

template <class F>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, F* func, int block, size_t smem) {
    const size_t limit = std::max(sd_emu::kSharedPerBlock, sd_emu::max_dynamic_smem(reinterpret_cast<const void*>(func)));
    *n = (block <= 0 || block > sd_emu::kMaxThreadsPerBlock || smem > limit) ? 0 : sd_emu::kBlocksPerSM;
    return cudaSuccess;
}

/// Cooperative launch (the same call as the CUDA runtime's template overload).
template <class... P>
cudaError_t cudaLaunchCooperativeKernel(void (*func)(P...), dim3 grid, dim3 block, void** args, size_t smem = 0,
                                        cudaStream_t = nullptr) {
    if (size_t(grid.x) * grid.y * grid.z > size_t(sd_emu::kSMs * sd_emu::kBlocksPerSM))
        return cudaErrorCooperativeLaunchTooLarge;
    return sd_emu::launch(reinterpret_cast<const void*>(func), grid, block, smem, true,
                          [&] { sd_emu::call_packed(func, args, std::index_sequence_for<P...>{}); });
}
