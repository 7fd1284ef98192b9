// pybind11 bindings of the optional CUDA module sparsedream_fast._cuda, and of its CPU
// emulation sparsedream_fast._cuda_emu (the same sources built against csrc/cuda/emu, for
// tests on machines without a GPU; never picked by backend="cuda" on its own).
// Importing it never touches the GPU; device_count() is 0 (not an error) without a GPU or
// a driver. CUDA errors become RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bind_rule_a.hpp"
#include "bind_run.hpp"
#include "bind_tnn_args.hpp"
#include "device.hpp"
#include "rule_a_cuda.hpp"
#include "tnn_cuda.hpp"

namespace py = pybind11;
void bind_batch_cuda(py::module_& m);  // bind_batch_cuda.cpp: DreamComp, Krotov-Hopfield
using sd_bind::bad_dtype;
using sd_bind::check_shape;
using sd_bind::is_f32;
using sd_bind::is_f64;
using sd_bind::get_ptr;
using sd_bind::LateralArgs;

namespace {

template <class T>
sd::cuda::RuleALateral<T> rule_a_lateral(const LateralArgs& a, const sd::RuleAConfig& cfg) {
    sd_bind::check_lateral<T>(a, cfg);
    sd::cuda::RuleALateral<T> lat;
    lat.kind = a.kind;
    if (a.kind == sd::LAT_STENCIL) {
        lat.kernel = get_ptr<T>(a.kernel, "kernel", false);
        lat.radius = int(a.kernel.shape(0) / 2);
        if (a.row_scale.size() > 0) lat.row_scale = get_ptr<T>(a.row_scale, "row_scale", false);
    } else if (a.kind == sd::LAT_CSR) {
        lat.indptr = get_ptr<std::int64_t>(a.indptr, "indptr", false);
        lat.indices = get_ptr<std::int32_t>(a.indices, "indices", false);
        lat.data = get_ptr<T>(a.data, "data", cfg.learn_lateral || (cfg.use_bounds && cfg.clip_lateral));
        lat.nnz = lat.indptr[cfg.n_neurons];
    }
    return lat;
}

/// X as (pointer, rows, on device): a host array, or a device pointer with its row count.
template <class T>
const T* rule_a_input(const py::object& X, std::uint64_t x_ptr, std::int64_t x_rows, std::int64_t D,
                      std::int64_t* n) {
    if (x_ptr) {
        if (x_rows < 0) throw py::value_error("x_rows must be >= 0 with a device pointer");
        *n = x_rows;
        return reinterpret_cast<const T*>(x_ptr);
    }
    py::array a = X.cast<py::array>();
    check_shape(a, "X", {-1, D});
    *n = a.shape(0);
    return get_ptr<T>(a, "X", false);
}

template <class T>
py::array_t<std::int64_t> rule_a_fit_t(py::array W, py::array trace, const py::object& X, std::uint64_t x_ptr,
                                       std::int64_t x_rows, py::array order, const py::dict& cfgd,
                                       const LateralArgs& la, bool reset_trace, std::int64_t step0, int blocks,
                                       const py::object& control) {
    const sd::RuleAConfig cfg = sd_bind::parse_cfg(cfgd);
    const std::int64_t N = cfg.n_neurons, D = cfg.n_inputs;
    check_shape(W, "W", {N, D});
    check_shape(trace, "trace", {N});
    check_shape(order, "order", {-1, -1});
    T* w = get_ptr<T>(W, "W", true);
    T* o = get_ptr<T>(trace, "trace", true);
    std::int64_t n = 0;
    const T* x = rule_a_input<T>(X, x_ptr, x_rows, D, &n);
    const std::int64_t* ord = get_ptr<std::int64_t>(order, "order", false);
    const std::int64_t E = order.shape(0), S = order.shape(1);
    for (std::int64_t i = 0; i < E * S; ++i)
        if (ord[i] < 0 || ord[i] >= n) throw py::index_error("order has an index outside [0, len(X))");
    if (E * S > 2147483647LL || E > 2147483647LL) throw py::value_error("too many steps for one call (2^31)");
    const sd::cuda::RuleALateral<T> lat = rule_a_lateral<T>(la, cfg);
    py::array_t<std::int64_t> last(cfg.k);
    std::int64_t* pl = last.mutable_data();
    std::fill(pl, pl + cfg.k, std::int64_t(-1));
    sd_bind::PyPoll poll(control);
    sd::RunResult res;
    try {
        py::gil_scoped_release nogil;
        sd::Poll p = poll.poll();
        res = sd::cuda::rule_a_fit<T>(cfg, w, o, lat, x, n, x_ptr != 0, ord, E, S, reset_trace, step0, blocks, pl, p);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    poll.finish(res);
    return last;
}

template <class T>
py::tuple rule_a_infer_t(py::array W, const py::object& X, std::uint64_t x_ptr, std::int64_t x_rows,
                         const py::dict& cfgd, const LateralArgs& la) {
    sd::RuleAConfig cfg = sd_bind::parse_cfg(cfgd);
    cfg.learn_lateral = cfg.clip_lateral = false;  // read only here
    const std::int64_t N = cfg.n_neurons, D = cfg.n_inputs, k = cfg.k;
    check_shape(W, "W", {N, D});
    const T* w = get_ptr<T>(W, "W", false);
    std::int64_t n = 0;
    const T* x = rule_a_input<T>(X, x_ptr, x_rows, D, &n);
    const sd::cuda::RuleALateral<T> lat = rule_a_lateral<T>(la, cfg);
    py::array_t<std::int64_t> win({n, k});
    py::array_t<T> val({n, k});
    std::int64_t* pw = win.mutable_data();
    T* pv = val.mutable_data();
    {
        py::gil_scoped_release nogil;
        sd::cuda::rule_a_infer<T>(cfg, w, lat, x, n, x_ptr != 0, pw, pv);
    }
    return py::make_tuple(win, val);
}


/// Same arguments and checks as _core.tnn_run (bind_tnn_args.hpp), run on the current GPU.
py::tuple tnn_run(const py::dict& prog, const py::list& columns, const py::array& data, bool learn,
                  std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, const std::string& wdtype,
                  const py::object& control) {
    const sd_bind::TnnArgs a = sd_bind::parse_tnn_args(prog, columns, data, wdtype);
    for (const sd::TnnColumnDesc& col : a.prog.columns)  // the kernel holds these in 32-bit ints
        if (col.n > (1 << 24) || col.theta > 2147483647LL || col.w_max > (1 << 20))
            throw py::value_error("column: n <= 2^24, theta < 2^31 and w_max <= 2^20 on the GPU");
    const std::int64_t S = a.S, n_waves = a.n_waves, R = std::int64_t(a.prog.record.size());
    py::array_t<std::uint8_t> rec({S, n_waves, R});
    std::uint8_t* r = rec.mutable_data();
    std::uint64_t wave;
    sd_bind::PyPoll poll(control);
    sd::RunResult res;
    {
        py::gil_scoped_release nogil;
        sd::Poll p = poll.poll();
        wave = sd::cuda::tnn_run(a.prog, a.data, S, n_waves, learn, wave0, k0, k1, r, p, res);
    }
    poll.finish(res);
    return py::make_tuple(rec, wave);
}

}  // namespace

namespace {

void define_module(py::module_& m) {
    m.def("device_count", &sd::cuda::device_count,
          "Number of visible CUDA GPUs (0 when there is none or no driver; never raises for that).");
    m.def("device_name", &sd::cuda::device_name, py::arg("i") = 0, "Name of GPU i.");
    m.def(
        "device_capability",
        [](int i) {
            int major = 0, minor = 0;
            sd::cuda::device_capability(i, &major, &minor);
            return py::make_tuple(major, minor);
        },
        py::arg("i") = 0, "Compute capability (major, minor) of GPU i.");
    m.def("runtime_version", &sd::cuda::runtime_version,
          "CUDA runtime version the module was built with (1000 * major + 10 * minor).");
    m.def("driver_version", &sd::cuda::driver_version, "CUDA version of the installed driver (0: none).");
    m.def("self_test", &sd::cuda::self_test, py::arg("i") = 0,
          "Run a tiny kernel on GPU i; True when its result is right.");
    m.def(
        "rule_a_fit",
        [](py::array W, py::array trace, const py::object& X, std::uint64_t x_ptr, std::int64_t x_rows,
           py::array order, const py::dict& cfg, int lat_kind, SD_LAT_ARGS, bool reset_trace, std::int64_t step0,
           int blocks, const py::object& control) {
            const LateralArgs la = SD_LAT_PACK;
            if (is_f32(W))
                return rule_a_fit_t<float>(W, trace, X, x_ptr, x_rows, order, cfg, la, reset_trace, step0, blocks,
                                           control);
            if (is_f64(W))
                return rule_a_fit_t<double>(W, trace, X, x_ptr, x_rows, order, cfg, la, reset_trace, step0, blocks,
                                            control);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("trace").noconvert(), py::arg("X"), py::arg("x_ptr"), py::arg("x_rows"),
        py::arg("order").noconvert(), py::arg("cfg"), SD_LAT_PYARGS, py::arg("reset_trace") = true,
        py::arg("step0") = 0, py::arg("blocks") = 0, SD_CONTROL_PYARG,
        "Rule A fit on the GPU in cooperative kernel launches: W, trace and a learned lateral's data updated in\n"
        "place. X: a host array (x_ptr 0) or a device pointer x_ptr to (x_rows, D) values. control: as\n"
        "_core.sparsedream_fit's (stops between launches, and before a step whose update is not finite).\n"
        "Returns the last completed step's winners (-1 when none).");
    m.def(
        "rule_a_infer",
        [](py::array W, const py::object& X, std::uint64_t x_ptr, std::int64_t x_rows, const py::dict& cfg,
           int lat_kind, SD_LAT_ARGS) {
            const LateralArgs la = SD_LAT_PACK;
            if (is_f32(W)) return rule_a_infer_t<float>(W, X, x_ptr, x_rows, cfg, la);
            if (is_f64(W)) return rule_a_infer_t<double>(W, X, x_ptr, x_rows, cfg, la);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("X"), py::arg("x_ptr"), py::arg("x_rows"), py::arg("cfg"), SD_LAT_PYARGS,
        "Rule A winners (n, k) and their activity for every row of X on the GPU, without learning.");
    m.def(
        "mem_info",
        [] {
            std::size_t f = 0, t = 0;
            sd::cuda::mem_info(&f, &t);
            return py::make_tuple(f, t);
        },
        "(free, total) device memory in bytes.");
    m.def("tnn_run", &tnn_run, py::arg("prog"), py::arg("columns"), py::arg("data"), py::arg("learn"),
          py::arg("wave0"), py::arg("k0"), py::arg("k1"), py::arg("wdtype"), SD_CONTROL_PYARG,
          "Rule D on the GPU: the same contract as _core.tnn_run (weights updated in place when learning; training\n"
          "runs in launches of about 20 ms and stops after a sequence on a stop request of control).");
    bind_batch_cuda(m);
}

}  // namespace

#ifdef SD_CUDA_EMULATOR
#include "emu/emu_selftest.hpp"

PYBIND11_MODULE(_cuda_emu, m) {
    m.doc() = "CPU emulation of sparsedream_fast._cuda: the same kernels run as fibers (tests only, slow).";
    m.attr("emulated") = true;
    define_module(m);
    m.def("emu_selftest", &emu_selftest, "Kernels that exercise the emulator's primitives; what each gave.");
}
#else
PYBIND11_MODULE(_cuda, m) {
    m.doc() = "Optional CUDA module of sparsedream_fast: rules A (SparseDream), B (DreamComp), C (Krotov-Hopfield), D (TNN).";
    m.attr("emulated") = false;
    define_module(m);
}
#endif
