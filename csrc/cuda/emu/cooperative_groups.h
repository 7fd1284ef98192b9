// The emulator's subset of <cooperative_groups.h> (see cuda_runtime.h in this directory).
#pragma once

#include "cuda_runtime.h"

namespace cooperative_groups {

struct grid_group {
    void sync() const { sd_emu::sync_grid(); }
    unsigned long long size() const {
        return (unsigned long long)gridDim.x * gridDim.y * gridDim.z * blockDim.x * blockDim.y * blockDim.z;
    }
    unsigned long long thread_rank() const {
        const unsigned long long b = blockIdx.x + (unsigned long long)gridDim.x * (blockIdx.y + (unsigned long long)gridDim.y * blockIdx.z);
        return b * blockDim.x * blockDim.y * blockDim.z + threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    }
    bool is_valid() const { return true; }
};

struct thread_block {
    void sync() const { sd_emu::sync_block(); }
    unsigned size() const { return blockDim.x * blockDim.y * blockDim.z; }
    unsigned thread_rank() const { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
};

inline grid_group this_grid() { return grid_group{}; }
inline thread_block this_thread_block() { return thread_block{}; }

}  // namespace cooperative_groups
