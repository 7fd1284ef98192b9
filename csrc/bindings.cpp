// pybind11 bindings of rule A (SparseDream) and the module definition of sparsedream_fast._core.
// Arrays arrive as numpy arrays (never converted: W, trace and a learned lateral are updated
// in place), are checked (bind_common.hpp), then the compute runs without the GIL on raw
// pointers. The batch rules and the TNN columns bind in bind_batch.cpp and bind_tnn.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <string>

#include "bind_common.hpp"
#include "bind_rule_a.hpp"
#include "bind_run.hpp"
#include "sparsedream/rule_a.hpp"

namespace py = pybind11;
using sd::i32;
using sd::i64;

namespace {
using sd_bind::bad_dtype;
using sd_bind::check_shape;
using sd_bind::is_f32;
using sd_bind::is_f64;
using sd_bind::get_ptr;
using sd_bind::item;
using sd_bind::LateralArgs;
using sd_bind::parse_cfg;

template <class T>
sd::LateralView<T> make_lateral(const LateralArgs& a, const sd::RuleAConfig& cfg) {
    sd_bind::check_lateral<T>(a, cfg);
    sd::LateralView<T> lat;
    lat.kind = a.kind;
    if (a.kind == sd::LAT_STENCIL) {
        lat.st.kernel = get_ptr<T>(a.kernel, "kernel", false);
        lat.st.radius = a.kernel.shape(0) / 2;
        lat.st.rows = cfg.grid_rows;
        lat.st.cols = cfg.grid_cols;
        lat.st.uniform = a.uniform;
        if (a.row_scale.size() > 0) lat.st.row_scale = get_ptr<T>(a.row_scale, "row_scale", false);
    } else if (a.kind == sd::LAT_CSR) {
        lat.csr.indptr = get_ptr<i64>(a.indptr, "indptr", false);
        lat.csr.indices = get_ptr<i32>(a.indices, "indices", false);
        lat.csr.data = get_ptr<T>(a.data, "data", cfg.learn_lateral || (cfg.use_bounds && cfg.clip_lateral));
        lat.csr.n = cfg.n_neurons;
    }
    return lat;
}

// ---------------------------------------------------------------------- functions
template <class T>
int fit_t(py::array W, py::array trace, py::array X, py::array order, const py::dict& cfgd,
          const LateralArgs& la, bool reset_trace, i64 step0, int n_threads, const py::object& control,
          i64 block) {
    const sd::RuleAConfig cfg = parse_cfg(cfgd);
    const i64 N = cfg.n_neurons, D = cfg.n_inputs;
    check_shape(W, "W", {N, D});
    check_shape(trace, "trace", {N});
    check_shape(X, "X", {-1, D});
    check_shape(order, "order", {-1, -1});
    T* w = get_ptr<T>(W, "W", true);
    T* o = get_ptr<T>(trace, "trace", true);
    const T* x = get_ptr<T>(X, "X", false);
    const i64* ord = get_ptr<i64>(order, "order", false);
    const i64 n = X.shape(0), E = order.shape(0), S = order.shape(1);
    for (i64 i = 0; i < E * S; ++i)
        if (ord[i] < 0 || ord[i] >= n) throw py::index_error("order has an index outside [0, len(X))");
    const sd::LateralView<T> lat = make_lateral<T>(la, cfg);
    if (block < -1) throw py::value_error("block must be -1 (automatic), 0 (dense pass) or a frame count");
    sd_bind::PyPoll poll(control);
    sd::RunResult res;
    {
        py::gil_scoped_release nogil;
        res = sd::fit<T>(cfg, w, o, lat, x, ord, E, S, reset_trace, step0, n_threads, poll.poll(), block);
    }
    return poll.finish(res).status;
}

template <class T>
py::tuple infer_t(py::array W, py::array X, const py::dict& cfgd, const LateralArgs& la, int n_threads) {
    sd::RuleAConfig cfg = parse_cfg(cfgd);
    cfg.learn_lateral = cfg.clip_lateral = false;  // no learning here
    const i64 N = cfg.n_neurons, D = cfg.n_inputs, k = cfg.k;
    check_shape(W, "W", {N, D});
    check_shape(X, "X", {-1, D});
    const T* w = get_ptr<T>(W, "W", false);
    const T* x = get_ptr<T>(X, "X", false);
    const i64 n = X.shape(0);
    py::array_t<i64> win({n, k});
    py::array_t<T> val({n, k});
    const sd::LateralView<T> lat = make_lateral<T>(la, cfg);
    i64* pw = win.mutable_data();
    T* pv = val.mutable_data();
    {
        py::gil_scoped_release nogil;
        sd::infer<T>(cfg, w, lat, x, n, pw, pv, n_threads);
    }
    return py::make_tuple(win, val);
}

template <class T>
py::array_t<i64> topk_t(py::array c, i64 k) {
    if (c.ndim() != 1) throw py::value_error("c must be 1-D");
    const i64 n = c.shape(0);
    if (k < 1 || k > n) throw py::value_error("k must be in [1, len(c)]");
    const T* pc = get_ptr<T>(c, "c", false);
    py::array_t<i64> out(k);
    i64* po = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::vector<i64> scratch(k > sd::kTopkInsertionMax ? n : 0);
        sd::topk(pc, n, k, po, scratch.data());
    }
    return out;
}

template <class T>
py::tuple competition_t(py::array W, py::array v, const py::dict& cfgd, const LateralArgs& la) {
    sd::RuleAConfig cfg = parse_cfg(cfgd);
    cfg.learn_lateral = cfg.clip_lateral = false;  // read only here
    const i64 N = cfg.n_neurons, D = cfg.n_inputs;
    check_shape(W, "W", {N, D});
    check_shape(v, "v", {D});
    T* w = get_ptr<T>(W, "W", false);
    const T* pv = get_ptr<T>(v, "v", false);
    const sd::LateralView<T> lat = make_lateral<T>(la, cfg);
    py::array_t<T> p(N), c(N);
    T* pp = p.mutable_data();
    T* pc = c.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::vector<T> dummy_trace(N, T(0));
        sd::Engine<T> eng(cfg, w, dummy_trace.data(), lat, 1);
        eng.competition_single(pv);
        std::copy(eng.p(), eng.p() + N, pp);
        std::copy(eng.c(), eng.c() + N, pc);
    }
    return py::make_tuple(p, c);
}

template <class T>
py::object step_t(py::array W, py::array trace, py::array v, const py::dict& cfgd, const LateralArgs& la) {
    const sd::RuleAConfig cfg = parse_cfg(cfgd);
    const i64 N = cfg.n_neurons, D = cfg.n_inputs;
    check_shape(W, "W", {N, D});
    check_shape(trace, "trace", {N});
    check_shape(v, "v", {D});
    T* w = get_ptr<T>(W, "W", true);
    T* o = get_ptr<T>(trace, "trace", true);
    const T* pv = get_ptr<T>(v, "v", false);
    const sd::LateralView<T> lat = make_lateral<T>(la, cfg);
    py::array_t<i64> win(cfg.k);
    i64* pw = win.mutable_data();
    bool ok;
    {
        py::gil_scoped_release nogil;
        sd::Engine<T> eng(cfg, w, o, lat, 1);
        ok = eng.step_single(pv);
        std::copy(eng.winners(), eng.winners() + eng.k(), pw);
    }
    if (!ok) return py::none();
    return std::move(win);
}

template <class T>
py::array_t<T> reconstruct_t(py::array W, py::array idx, py::array vals) {
    if (W.ndim() != 2) throw py::value_error("W must be 2-D");
    const i64 N = W.shape(0), D = W.shape(1);
    if (idx.ndim() != 1) throw py::value_error("idx must be 1-D");
    const i64 m = idx.shape(0);
    check_shape(vals, "vals", {m});
    const T* w = get_ptr<T>(W, "W", false);
    const i64* pi = get_ptr<i64>(idx, "idx", false);
    const T* pv = get_ptr<T>(vals, "vals", false);
    for (i64 t = 0; t < m; ++t)
        if (pi[t] < 0 || pi[t] >= N) throw py::index_error("idx out of range");
    py::array_t<T> r(D);
    T* pr = r.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::fill(pr, pr + D, T(0));
        for (i64 t = 0; t < m; ++t) sd::rows::axpy(pr, pv[t], w + pi[t] * D, D);
    }
    return r;
}

template <class T>
py::array_t<T> update_rows_t(py::array W, py::array idx, py::array vals, py::array v, py::array r, double lr,
                             bool use_error_clip, double error_clip, double prec) {
    if (W.ndim() != 2) throw py::value_error("W must be 2-D");
    const i64 N = W.shape(0), D = W.shape(1);
    if (idx.ndim() != 1) throw py::value_error("idx must be 1-D");
    const i64 m = idx.shape(0);
    check_shape(vals, "vals", {m});
    check_shape(v, "v", {D});
    check_shape(r, "r", {D});
    T* w = get_ptr<T>(W, "W", true);
    const i64* pi = get_ptr<i64>(idx, "idx", false);
    const T* pvals = get_ptr<T>(vals, "vals", false);
    const T* pv = get_ptr<T>(v, "v", false);
    const T* pr = get_ptr<T>(r, "r", false);
    for (i64 t = 0; t < m; ++t)
        if (pi[t] < 0 || pi[t] >= N) throw py::index_error("idx out of range");
    py::array_t<T> e(D);
    T* pe = e.mutable_data();
    {
        py::gil_scoped_release nogil;
        std::vector<T> g(D);
        sd::rows::error_and_gain(pv, pr, pe, g.data(), D, use_error_clip, T(error_clip), T(prec));
        const T tlr = T(lr);
        for (i64 t = 0; t < m; ++t) sd::rows::update_row(w + pi[t] * D, T(tlr * pvals[t]), (const T*)g.data(), D);
    }
    return e;
}

template <class T>
void apply_bounds_t(py::array W, py::object data, double w_max) {
    T* w = get_ptr<T>(W, "W", true);
    T* d = nullptr;
    i64 nnz = 0;
    if (!data.is_none()) {
        py::array a = data.cast<py::array>();
        d = get_ptr<T>(a, "data", true);
        nnz = a.size();
    }
    const i64 n = W.size();
    py::gil_scoped_release nogil;
    sd::rows::clip(w, n, T(0), T(w_max));
    if (d) sd::rows::clip(d, nnz, T(0), T(w_max));
}

std::string build_info() {
    std::ostringstream s;
#if defined(__clang__)
    s << "clang " << __clang_major__ << "." << __clang_minor__ << "." << __clang_patchlevel__;
#elif defined(__GNUC__)
    s << "gcc " << __GNUC__ << "." << __GNUC_MINOR__ << "." << __GNUC_PATCHLEVEL__;
#elif defined(_MSC_VER)
    s << "msvc " << _MSC_VER;
#else
    s << "unknown compiler";
#endif
#ifdef _OPENMP
    s << ", OpenMP " << _OPENMP << " (" << sd::omp_max_threads() << " threads)";
#else
    s << ", no OpenMP (1 thread)";
#endif
    s << ", SIMD " << sd::simd::level_name(sd::simd::level()) << " (CPU supports "
      << sd::simd::level_name(sd::simd::max_supported()) << ")";
    return s.str();
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "Compiled CPU kernels of sparsedream_fast (rule A: SparseDream online k-WTA).";

    m.def("build_info", &build_info, "Compiler, OpenMP threads and SIMD level of this build.");
    m.def("simd_level", [] { return std::string(sd::simd::level_name(sd::simd::level())); },
          "The SIMD level the kernels use now: 'avx512', 'avx2' or 'scalar'.");
    m.def("set_simd_level",
          [](const std::string& name) {
              int lvl = sd::simd::parse_level(name.c_str(), -1);
              if (lvl < 0) throw py::value_error("SIMD level must be 'scalar', 'avx2' or 'avx512'");
              return std::string(sd::simd::level_name(sd::simd::set_level(lvl)));
          },
          py::arg("level"), "Use at most this SIMD level (for tests); returns the level set.");
    m.def("max_threads", &sd::omp_max_threads, "OpenMP's thread count (1 without OpenMP).");
    m.attr("parallel_min_bytes") = sd::kParallelMinBytes;
    bind_batch_rules(m);
    bind_tnn(m);

    m.def(
        "sparsedream_fit",
        [](py::array W, py::array trace, py::array X, py::array order, const py::dict& cfg, int lat_kind,
           SD_LAT_ARGS, bool reset_trace, i64 step0, int n_threads, const py::object& control, i64 block) {
            const LateralArgs la = SD_LAT_PACK;
            if (is_f32(W)) return fit_t<float>(W, trace, X, order, cfg, la, reset_trace, step0, n_threads, control, block);
            if (is_f64(W)) return fit_t<double>(W, trace, X, order, cfg, la, reset_trace, step0, n_threads, control, block);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("trace").noconvert(), py::arg("X").noconvert(),
        py::arg("order").noconvert(), py::arg("cfg"), SD_LAT_PYARGS, py::arg("reset_trace") = true,
        py::arg("step0") = 0, py::arg("n_threads") = 0, SD_CONTROL_PYARG, py::arg("block") = -1,
        "Rule A fit (reference.fit) in place on W, trace and a learned lateral's data, without the GIL.\n"
        "order: int64 (E, S). n_threads: 0 automatic. control: None or int64 (3,) [stop request, steps\n"
        "done, status] (bind_run.hpp). Stops at a step boundary on a stop request or a signal handler's\n"
        "exception (raised on return), and before a step whose update is not finite. Returns the status:\n"
        "0 done, 1 stopped, 2 diverged. block: frames per block of the blocked drive (-1 automatic, 0 a\n"
        "dense pass every step).");

    m.def(
        "sparsedream_infer",
        [](py::array W, py::array X, const py::dict& cfg, int lat_kind, SD_LAT_ARGS, int n_threads) {
            const LateralArgs la = SD_LAT_PACK;
            if (is_f32(W)) return infer_t<float>(W, X, cfg, la, n_threads);
            if (is_f64(W)) return infer_t<double>(W, X, cfg, la, n_threads);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("X").noconvert(), py::arg("cfg"), SD_LAT_PYARGS,
        py::arg("n_threads") = 0,
        "Rule A inference (reference.infer): (winners int64 (n, k), values (n, k)).");

    m.def(
        "topk",
        [](py::array c, i64 k) {
            if (is_f32(c)) return topk_t<float>(c, k);
            if (is_f64(c)) return topk_t<double>(c, k);
            bad_dtype("c", c);
        },
        py::arg("c").noconvert(), py::arg("k"),
        "Indices (k,) int64 of the k largest entries of c, value descending, ties to the lower index.");

    m.def(
        "competition",
        [](py::array W, py::array v, const py::dict& cfg, int lat_kind, SD_LAT_ARGS) {
            const LateralArgs la = SD_LAT_PACK;
            if (is_f32(W)) return competition_t<float>(W, v, cfg, la);
            if (is_f64(W)) return competition_t<double>(W, v, cfg, la);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("v").noconvert(), py::arg("cfg"), SD_LAT_PYARGS,
        "Drive and competition value (p, c) of one input (reference.competition).");

    m.def(
        "step",
        [](py::array W, py::array trace, py::array v, const py::dict& cfg, int lat_kind, SD_LAT_ARGS) {
            const LateralArgs la = SD_LAT_PACK;
            if (is_f32(W)) return step_t<float>(W, trace, v, cfg, la);
            if (is_f64(W)) return step_t<double>(W, trace, v, cfg, la);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("trace").noconvert(), py::arg("v").noconvert(), py::arg("cfg"),
        SD_LAT_PYARGS, "One fused learning step in place (reference.step, no bounds); returns the winners, or None\n"
        "when its update is not finite (then nothing was written).");

    m.def(
        "reconstruct",
        [](py::array W, py::array idx, py::array vals) -> py::array {
            if (is_f32(W)) return reconstruct_t<float>(W, idx, vals);
            if (is_f64(W)) return reconstruct_t<double>(W, idx, vals);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("idx").noconvert(), py::arg("vals").noconvert(),
        "r = sum_j vals[j] * W[idx[j]] (reference.reconstruct).");

    m.def(
        "update_rows",
        [](py::array W, py::array idx, py::array vals, py::array v, py::array r, double lr, bool use_error_clip,
           double error_clip, double prec) -> py::array {
            if (is_f32(W)) return update_rows_t<float>(W, idx, vals, v, r, lr, use_error_clip, error_clip, prec);
            if (is_f64(W)) return update_rows_t<double>(W, idx, vals, v, r, lr, use_error_clip, error_clip, prec);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("idx").noconvert(), py::arg("vals").noconvert(), py::arg("v").noconvert(),
        py::arg("r").noconvert(), py::arg("lr"), py::arg("use_error_clip"), py::arg("error_clip"), py::arg("prec"),
        "Multiplicative update of the rows idx in place (reference.update_rows); returns the error e.");

    m.def(
        "apply_bounds",
        [](py::array W, double w_max, py::object data) {
            if (is_f32(W)) return apply_bounds_t<float>(W, data, w_max);
            if (is_f64(W)) return apply_bounds_t<double>(W, data, w_max);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("w_max"), py::arg("data") = py::none(),
        "Clip W (and a learned lateral's data, when given) to [0, w_max] in place.");
}
