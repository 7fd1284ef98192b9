// Argument parsing and checks of rule A's entry points, shared by the CPU module
// (bindings.cpp) and the CUDA module (cuda/bindings_cuda.cpp): the config dict and the
// lateral operator's arrays, checked before any kernel runs.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bind_common.hpp"
#include "sparsedream/rule_a_config.hpp"

namespace sd_bind {

inline sd::RuleAConfig parse_cfg(const py::dict& d) {
    sd::RuleAConfig c;
    c.n_neurons = item<std::int64_t>(d, "n_neurons");
    c.n_inputs = item<std::int64_t>(d, "n_inputs");
    c.grid_rows = item<std::int64_t>(d, "grid_rows");
    c.grid_cols = item<std::int64_t>(d, "grid_cols");
    c.k = item<std::int64_t>(d, "k");
    c.lr = item<double>(d, "lr");
    c.competition = item<int>(d, "competition");
    c.output = item<int>(d, "output");
    c.use_error_clip = item<bool>(d, "use_error_clip");
    c.error_clip = item<double>(d, "error_clip");
    c.use_trace = item<bool>(d, "use_trace");
    c.trace_alpha = item<double>(d, "trace_alpha");
    c.learn_lateral = item<bool>(d, "learn_lateral");
    c.clip_lateral = d.contains("clip_lateral") ? d["clip_lateral"].cast<bool>() : false;
    c.lateral_lr = item<double>(d, "lateral_lr");
    c.use_bounds = item<bool>(d, "use_bounds");
    c.w_max = item<double>(d, "w_max");
    c.clip_every = item<std::int64_t>(d, "clip_every");
    c.prec = item<double>(d, "prec");
    c.trace_drop = item<double>(d, "trace_drop");
    if (c.n_neurons < 1 || c.n_inputs < 1 || c.grid_rows * c.grid_cols != c.n_neurons)
        throw py::value_error("cfg: inconsistent n_neurons / grid");
    if (c.k < 1 || c.k > c.n_neurons) throw py::value_error("cfg: k must be in [1, n_neurons]");
    if (c.competition < 0 || c.competition > 4) throw py::value_error("cfg: unknown competition");
    if (c.output < 0 || c.output > 1) throw py::value_error("cfg: unknown output");
    if (c.use_bounds && c.clip_every < 1) throw py::value_error("cfg: clip_every must be >= 1");
    return c;
}

/// The lateral arguments every rule-A entry point takes (check_lateral checks them).
struct LateralArgs {
    int kind;
    py::array kernel, row_scale;
    bool uniform;
    py::array indptr, indices, data;
};


/// Checks the lateral's arrays against cfg (shapes, CSR structure, what learning needs),
/// and, for a stencil marked uniform, that its off-centre entries are equal. T: the dtype.
template <class T>
void check_lateral(const LateralArgs& a, const sd::RuleAConfig& cfg) {
    const std::int64_t N = cfg.n_neurons;
    if (a.kind == sd::LAT_STENCIL) {
        if (a.kernel.ndim() != 2 || a.kernel.shape(0) != a.kernel.shape(1) || a.kernel.shape(0) % 2 != 1)
            throw py::value_error("stencil kernel must be square with an odd side");
        const T* k = get_ptr<T>(a.kernel, "kernel", false);
        if (a.row_scale.size() > 0) {
            check_shape(a.row_scale, "row_scale", {N});
            get_ptr<T>(a.row_scale, "row_scale", false);
        }
        if (a.uniform) {  // the box path reads kernel[0] as the off-centre value
            const std::int64_t side = a.kernel.shape(0), r = side / 2;
            for (std::int64_t i = 0; i < side * side; ++i)
                if (i != r * side + r && k[i] != k[0])
                    throw py::value_error("stencil marked uniform but its off-centre entries differ");
        }
    } else if (a.kind == sd::LAT_CSR) {
        check_shape(a.indptr, "indptr", {N + 1});
        const std::int64_t* ip = get_ptr<std::int64_t>(a.indptr, "indptr", false);
        const std::int64_t nnz = ip[N];
        check_shape(a.indices, "indices", {nnz});
        check_shape(a.data, "data", {nnz});
        const std::int32_t* ix = get_ptr<std::int32_t>(a.indices, "indices", false);
        if (ip[0] != 0) throw py::value_error("indptr[0] must be 0");
        for (std::int64_t i = 0; i < N; ++i)
            if (ip[i + 1] < ip[i]) throw py::value_error("indptr must be non-decreasing");
        for (std::int64_t k = 0; k < nnz; ++k)
            if (ix[k] < 0 || ix[k] >= N) throw py::value_error("CSR column index out of range");
        get_ptr<T>(a.data, "data", cfg.learn_lateral || (cfg.use_bounds && cfg.clip_lateral));
    } else if (a.kind != sd::LAT_NONE) {
        throw py::value_error("unknown lateral kind");
    }
    if (cfg.learn_lateral && a.kind != sd::LAT_CSR)
        throw py::value_error("learn_lateral needs a CSR lateral");
    if (cfg.use_bounds && cfg.clip_lateral && a.kind != sd::LAT_CSR)
        throw py::value_error("clip_lateral needs a CSR lateral");
}

}  // namespace sd_bind

// Lateral arguments (every rule-A entry point): kind 0 none / 1 stencil / 2 CSR, then the
// stencil (kernel, row_scale or empty, uniform) and the CSR (indptr, indices, data).
#define SD_LAT_ARGS py::array kernel, py::array row_scale, bool uniform, py::array indptr, py::array indices, py::array data
#define SD_LAT_PACK LateralArgs{lat_kind, kernel, row_scale, uniform, indptr, indices, data}
#define SD_LAT_PYARGS                                                                                     \
    py::arg("lat_kind"), py::arg("kernel").noconvert(), py::arg("row_scale").noconvert(), py::arg("uniform"), \
        py::arg("indptr").noconvert(), py::arg("indices").noconvert(), py::arg("data").noconvert()
