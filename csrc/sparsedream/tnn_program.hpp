// A TNN network program as the compiled entry points receive it (plain C++, no Python types):
// the description the C++ kernel (tnn.hpp) and the CUDA kernel (cuda/tnn.cu) both run.
// Layout and order of evaluation: sparsedream_fast/tnn/program.py.
#pragma once

#include <cstdint>
#include <vector>

namespace sd {

struct TnnColumnDesc {
    std::int64_t n = 0, d = 0, theta = 1, k = 1, w_max = 1, out0 = 0;
    double p[5] = {0, 0, 0, 0, 0};          // capture, minus, search, backoff, u_min
    const std::int32_t* in_lines = nullptr;  // (d,)
    const std::uint8_t* plastic = nullptr;   // (d,)
    void* W = nullptr;                       // host (n, d), int32 or uint8; updated when learning
};

struct TnnProgramDesc {
    int T = 16;
    int weight_bytes = 4;  // 4: int32 weights, 1: uint8
    std::int64_t n_in = 0, n_lines = 0;
    std::vector<std::int32_t> delay_src, delay_dst, record;
    std::vector<TnnColumnDesc> columns;
};

}  // namespace sd
