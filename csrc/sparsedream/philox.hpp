// Philox4x32-10 (Salmon et al., SC 2011; Random123's philox4x32_10), host and device.
// A pure function of (counter, key): the TNN's STDP draws are the same whichever backend or
// thread computes them, in whatever order (numpy twin: sparsedream_fast/tnn/philox.py).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SD_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
// always inlined, also into the SIMD-targeted batch loops (which then vectorize it)
#define SD_HD inline __attribute__((always_inline))
#else
#define SD_HD inline
#endif

namespace sd {

struct U32x4 {
    std::uint32_t v[4];
};

SD_HD U32x4 philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                          std::uint32_t k0, std::uint32_t k1) {
    for (int r = 0; r < 10; ++r) {
        if (r) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const std::uint64_t p0 = std::uint64_t(c0) * 0xD2511F53u;
        const std::uint64_t p1 = std::uint64_t(c2) * 0xCD9E8D57u;
        const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
        const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    return U32x4{{c0, c1, c2, c3}};
}

/// A uint32 draw as a double in [0, 1): r * 2^-32, exact (so comparisons agree everywhere).
SD_HD double unit_double(std::uint32_t r) { return double(r) * (1.0 / 4294967296.0); }

}  // namespace sd
