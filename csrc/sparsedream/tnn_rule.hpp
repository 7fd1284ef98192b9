// Rule D's per-synapse STDP decision, shared by the C++ kernel (tnn.hpp) and the CUDA kernel
// (cuda/tnn.cu), so that both apply literally the same arithmetic as the reference
// (sparsedream_fast/tnn/reference.py: stdp_update).
#pragma once

#include <cstdint>

#include "philox.hpp"

namespace sd {

struct StdpParams {
    double capture, minus, search, backoff, u_min;
};

// IEEE operations rounded one by one: no fused multiply-add on the device (the host build
// uses -ffp-contract=off), as numpy computes f * (2 - f) and (1 - f) * (1 + f).
#if defined(__CUDA_ARCH__)
#define SD_DMUL(a, b) __dmul_rn((a), (b))
#define SD_DADD(a, b) __dadd_rn((a), (b))
#define SD_DDIV(a, b) __ddiv_rn((a), (b))
#else
#define SD_DMUL(a, b) ((a) * (b))
#define SD_DADD(a, b) ((a) + (b))
#define SD_DDIV(a, b) ((a) / (b))
#endif

/// Probability of F+ (up) or F- (down) at weight w: f (2 - f) or (1 - f)(1 + f), f = w / w_max.
SD_HD double stdp_stability(long long w, long long w_max, bool up) {
    const double f = SD_DDIV(double(w), double(w_max));
    return up ? SD_DMUL(f, SD_DADD(2.0, -f)) : SD_DMUL(SD_DADD(1.0, -f), SD_DADD(1.0, f));
}

/// The STDP case of a synapse with input time x and output time y (T = no spike): false for
/// case 5 (neither spiked: never changes); else its probability and direction.
SD_HD bool stdp_case(int x, int y, int T, const StdpParams& p, double* prob, bool* up) {
    const bool xs = x < T, ys = y < T;
    if (xs && ys) {
        *up = x <= y;                   // case 1 (capture) or case 2 (minus)
        *prob = *up ? p.capture : p.minus;
    } else if (xs) {
        *up = true;                     // case 3 (search)
        *prob = p.search;
    } else if (ys) {
        *up = false;                    // case 4 (backoff)
        *prob = p.backoff;
    } else {
        return false;
    }
    return true;
}

/// The weight after one decision with the synapse's draws r0 (case), r1 (F), r2 (u_min floor)
/// and the stability probability g of its direction; kept in [0, w_max].
SD_HD long long stdp_new_weight(long long w, long long w_max, bool up, double prob, double g, double u_min,
                                std::uint32_t r0, std::uint32_t r1, std::uint32_t r2) {
    if (!(unit_double(r0) < prob)) return w;
    if (!(unit_double(r1) < g || unit_double(r2) < u_min)) return w;
    const long long nw = w + (up ? 1 : -1);
    return nw < 0 ? 0 : (nw > w_max ? w_max : nw);
}

}  // namespace sd
