// Rule A's multiplicative update of one weight (docs/rules/sparsedream.md, step 8 and
// "Numerics"), shared by the CPU kernels (rows.hpp) and the CUDA kernel (rule_a.cu), so
// that every backend computes the same bits as reference.updated_rows. No other includes.
#pragma once

#if defined(__CUDACC__)
#define SD_HOST_DEVICE __host__ __device__
#else
#define SD_HOST_DEVICE
#endif

namespace sd {

/// w + (a * w) * g (a = lr * o_j, g = e / max(r, prec)), or 0 where that has the opposite
/// sign of w. The factor 1 + a g is negative when a winner's drive exceeds 1 / lr at a
/// pixel its reconstruction overshoots; a weight pushed below 0 later makes r <= 0 there,
/// where max(r, prec) turns the gain into e / prec and multiplies the weight by about
/// a / prec (1e9) each time it wins: the float32 demo's overflow to inf and NaN. NaN stays
/// NaN (both comparisons are false), so a non-finite update is still detected.
template <class T>
SD_HOST_DEVICE inline T rule_a_updated(T w, T a, T g) {
    const T x = w + (a * w) * g;
    return ((w > T(0) && x < T(0)) || (w < T(0) && x > T(0))) ? T(0) : x;
}

}  // namespace sd
