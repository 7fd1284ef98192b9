// Rule D (TNN columns) on the GPU: host interface of csrc/cuda/tnn.cu, plain C++ types so
// that the binding file is compiled by the host compiler.
#pragma once

#include <cstdint>
#include <vector>

namespace sd {
namespace cuda {

struct TnnHostColumn {
    std::int64_t n = 0, d = 0, theta = 1, k = 1, w_max = 1, out0 = 0;
    double p[5] = {0, 0, 0, 0, 0};          // capture, minus, search, backoff, u_min
    const std::int32_t* in_lines = nullptr;  // (d,)
    const std::uint8_t* plastic = nullptr;   // (d,)
    void* W = nullptr;                       // host (n, d), int32 or uint8; updated when learning
};

struct TnnHostProgram {
    int T = 16;
    int weight_bytes = 4;  // 4: int32 weights, 1: uint8
    std::int64_t n_in = 0, n_lines = 0;
    std::vector<std::int32_t> delay_src, delay_dst, record;
    std::vector<TnnHostColumn> columns;
};

/// Runs the program over data (S, n_waves, n_in) uint8 on the current GPU: training in one
/// block (waves are sequential), inference with one block per sequence. Writes rec
/// (S, n_waves, R) and, when learning, the columns' weights back to the host. Returns the
/// wave counter after the last learning wave. Throws std::runtime_error on CUDA errors.
std::uint64_t tnn_run(const TnnHostProgram& prog, const std::uint8_t* data, std::int64_t S, std::int64_t n_waves,
                      bool learn, std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, std::uint8_t* rec);

}  // namespace cuda
}  // namespace sd
