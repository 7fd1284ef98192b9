// Kernels that check the emulator's own primitives (bound as _cuda_emu.emu_selftest and
// asserted in tests/test_cuda_emu.py): the kernels of csrc/cuda rely on their semantics.
#include <cooperative_groups.h>

#include <string>
#include <vector>

#include "cuda_common.hpp"
#include "emu_selftest.hpp"

namespace cg = cooperative_groups;

namespace {

__global__ void warp_ops(int* out) {
    const int lane = int(threadIdx.x % 32), warp = int(threadIdx.x / 32);
    int v = lane;
    for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);  // lane 0: the sum
    int x = lane;
    for (int d = 16; d > 0; d /= 2) x += __shfl_xor_sync(0xffffffffu, x, d);   // every lane: the sum
    const unsigned odd = __ballot_sync(0xffffffffu, lane & 1);
    const int from7 = __shfl_sync(0xffffffffu, lane * 10, 7);
    if (lane == 0) out[warp * 4 + 0] = v;
    if (lane == 5) out[warp * 4 + 1] = x;
    if (lane == 9) out[warp * 4 + 2] = int(odd == 0xAAAAAAAAu);
    if (lane == 3) out[warp * 4 + 3] = from7;
}

__global__ void grid_exchange(int* slots, int* out) {
    cg::grid_group grid = cg::this_grid();
    if (threadIdx.x == 0) slots[blockIdx.x] = int(blockIdx.x) + 1;
    grid.sync();
    int s = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) s += slots[b];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

// lane 0 shuffles with a warp whose other lanes wait for the block: a hang on a GPU
__global__ void divergent_barrier(int* out) {
    int v = int(threadIdx.x);
    if (threadIdx.x == 0)
        v = __shfl_sync(0xffffffffu, v, 1);
    else
        __syncthreads();
    out[threadIdx.x] = v;
}

__global__ void grid_sync_without_cooperation(int*) { cg::this_grid().sync(); }

std::string error_of(cudaError_t err) {
    cudaGetLastError();
    return err == cudaSuccess ? std::string() : std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

}  // namespace

std::map<std::string, std::string> emu_selftest() {
    std::map<std::string, std::string> r;
    std::vector<int> out(4 * 4, -1);
    SD_LAUNCH(warp_ops, 1, 128, 0)(out.data());
    r["warp"] = std::to_string(out[0]) + " " + std::to_string(out[1]) + " " + std::to_string(out[2]) + " " +
                std::to_string(out[3]) + " " + std::to_string(out[12]);
    std::vector<int> slots(8, 0), got(8 * 16, 0);
    int* sp = slots.data();
    int* gp = got.data();
    void* args[] = {&sp, &gp};
    r["grid_error"] = error_of(cudaLaunchCooperativeKernel(grid_exchange, dim3(8), dim3(16), args, 0));
    long long total = 0;
    for (int v : got) total += v;
    r["grid"] = std::to_string(total);
    r["too_large"] = error_of(cudaLaunchCooperativeKernel(grid_exchange, dim3(9), dim3(16), args, 0));
    std::vector<int> o(64, 0);
    SD_LAUNCH(divergent_barrier, 1, 64, 0)(o.data());
    r["divergent"] = error_of(cudaGetLastError());
    SD_LAUNCH(grid_sync_without_cooperation, 2, 32, 0)(o.data());
    r["not_cooperative"] = error_of(cudaGetLastError());
    SD_LAUNCH(warp_ops, 1, 2048, 0)(out.data());
    r["bad_config"] = error_of(cudaGetLastError());
    return r;
}
