// Rule A's configuration: the mirror of SparseDreamConfig.native_dict()
// (sparsedream_fast/sparsedream/config.py), shared by the C++ kernels (rule_a.hpp) and the
// CUDA ones (csrc/cuda/rule_a.cu). Plain data, no OpenMP or SIMD includes.
#pragma once

#include <cmath>
#include <cstdint>

namespace sd {

enum Competition : int {
    COMP_DRIVE = 0,
    COMP_LATERAL = 1,
    COMP_NORMALIZED_LATERAL = 2,
    COMP_MEAN_LATERAL = 3,
    COMP_WEIGHTED_AVERAGE = 4,
};
enum Output : int { OUT_DRIVE = 0, OUT_COMPETITION = 1 };
enum LateralKind : int { LAT_NONE = 0, LAT_STENCIL = 1, LAT_CSR = 2 };

/// Mirror of SparseDreamConfig.native_dict() (sparsedream_fast/sparsedream/config.py).
struct RuleAConfig {
    std::int64_t n_neurons = 0, n_inputs = 0, grid_rows = 0, grid_cols = 0, k = 1;
    double lr = 0.0;
    int competition = COMP_LATERAL;
    int output = OUT_DRIVE;
    bool use_error_clip = false;
    double error_clip = INFINITY;
    bool use_trace = false;
    double trace_alpha = 1.0;
    bool learn_lateral = false;
    bool clip_lateral = false;  ///< the bounds clip the (CSR) lateral too
    double lateral_lr = 0.0;
    bool use_bounds = false;
    double w_max = INFINITY;
    std::int64_t clip_every = 100;
    double prec = 1e-10;
    double trace_drop = 1e-12;

    bool uses_rowsum() const {
        return competition == COMP_NORMALIZED_LATERAL || competition == COMP_MEAN_LATERAL;
    }
};

}  // namespace sd
