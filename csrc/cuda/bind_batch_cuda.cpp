// pybind11 bindings of the batch rules on the GPU (DreamComp, Krotov-Hopfield) in the CUDA
// module and its emulator. Same array checks as _core's (bind_common.hpp). A fit from weights
// that are not finite diverges at its first batch, as on the CPU (the GPU kernels leave the
// rows nobody selected alone, which is the reference's result only for finite rows); the
// screened ranking of winners() needs finite weights. Whole fits run without the GIL and
// stop at a batch boundary (control, bind_run.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_cuda.hpp"
#include "bind_batch_args.hpp"
#include "bind_common.hpp"
#include "bind_run.hpp"
#include "cublas_api.hpp"

namespace py = pybind11;
using sd::i64;
using sd_bind::bad_dtype;
using sd_bind::check_shape;
using sd_bind::get_ptr;
using sd_bind::is_f32;
using sd_bind::is_f64;

namespace {

sd::cuda::BatchOptions options(int gemm, const std::vector<std::string>& libs, bool graphs, bool screen = false) {
    if (gemm < sd::cuda::GEMM_AUTO || gemm > sd::cuda::GEMM_KERNEL)
        throw py::value_error("gemm must be 0 (auto), 1 (cublas) or 2 (kernel)");
    sd::cuda::BatchOptions o;
    o.gemm = gemm;
    o.cublas_libs = libs;
    o.graphs = graphs;
    o.screen = screen;
    return o;
}

py::dict info_dict(const sd::cuda::BatchRunInfo& info) {
    py::dict d;
    d["gemm"] = info.cublas ? "cublas" : "kernel";
    d["graph"] = info.graph;
    d["screened"] = info.screened;
    d["tf32"] = info.tf32;
    return d;
}

/// Runs f with the C++ exceptions of the kernels' hosts turned into Python's.
template <class F>
auto translate(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
}

template <class T>
bool all_finite(const T* w, i64 count) {
    for (i64 i = 0; i < count; ++i)
        if (!std::isfinite(w[i])) return false;
    return true;
}

template <class T>
void require_finite(const T* w, i64 count, const char* name) {
    if (!all_finite(w, count))
        throw py::value_error(std::string(name) + " has a NaN or infinite entry; the GPU fit needs finite weights");
}

/// A fit's run on the GPU without the GIL, polled through `control`; weights that are not
/// finite diverge before the first batch (nothing runs).
template <class F>
py::dict polled_fit(const py::object& control, bool finite, F&& fit) {
    sd_bind::PyPoll poll(control);
    sd::cuda::BatchRunInfo info;
    if (!finite) {
        info.run.status = sd::RUN_DIVERGED;
        poll.finish(info.run);
        return info_dict(info);
    }
    translate([&] {
        py::gil_scoped_release nogil;
        sd::Poll p = poll.poll();
        info = fit(p);
        return 0;
    });
    poll.finish(info.run);
    return info_dict(info);
}

template <class T>
py::dict dc_fit_t(py::array W, py::array V, py::array batches, py::array zeta, py::array eta, py::array win_out,
                  bool update, const sd::cuda::BatchOptions& opt, const py::object& control) {
    const sd_bind::DcArgs<T> a = sd_bind::dc_args<T>(W, V, batches, zeta, eta, win_out, update);
    if (!update && opt.screen) require_finite(a.W, a.N * a.Dp, "W");
    // batches (..., B): all leading dimensions but the first are one epoch
    const i64 E = batches.ndim() >= 3 ? i64(batches.shape(0)) : 1, nb = E > 0 ? a.nbatches / E : 0;
    return polled_fit(control, !update || all_finite(a.W, a.N * a.Dp), [&](sd::Poll& p) {
        return sd::cuda::dreamcomp_fit<T>(a.W, a.N, a.Dp, a.V, a.n, a.zeta, a.eta, a.batches, E, nb, a.B, update, opt,
                                          a.win, p);
    });
}

template <class T>
py::dict kh_fit_t(py::array W, py::array X, py::array batches, double p, i64 k, double delta, py::array eps,
                  double prec, const sd::cuda::BatchOptions& opt, const py::object& control) {
    const sd_bind::KhArgs<T> a = sd_bind::kh_args<T>(W, X, batches, p, k);
    check_shape(eps, "eps", {a.E});
    const double* pe = get_ptr<double>(eps, "eps", false);
    return polled_fit(control, all_finite(a.W, a.H * a.D), [&](sd::Poll& pl) {
        return sd::cuda::krotov_fit<T>(a.W, a.H, a.D, a.X, a.n, a.batches, a.E, a.nb, a.B, p, k, delta, pe, prec, opt,
                                       pl);
    });
}

template <class T>
void kh_ranks_t(py::array I, i64 k, py::array first, py::array kth) {
    if (I.ndim() != 2) throw py::value_error("I must be 2-D (B, H)");
    const i64 B = I.shape(0), H = I.shape(1);
    if (k < 1 || k > H) throw py::value_error("k must lie in [1, H], got " + std::to_string(k));
    const T* pi = get_ptr<T>(I, "I", false);
    check_shape(first, "first", {B});
    check_shape(kth, "kth", {B});
    i64* pf = get_ptr<i64>(first, "first", true);
    i64* pk = get_ptr<i64>(kth, "kth", true);
    translate([&] {
        py::gil_scoped_release nogil;
        sd::cuda::krotov_ranks<T>(pi, B, H, k, pf, pk);
        return 0;
    });
}

template <class T>
void kh_powers_t(py::array W, double p, py::array out) {
    if (W.ndim() != 2) throw py::value_error("W must be 2-D");
    check_shape(out, "out", {W.shape(0), W.shape(1)});
    const T* w = get_ptr<T>(W, "W", false);
    T* o = get_ptr<T>(out, "out", true);
    py::gil_scoped_release nogil;
    sd::cuda::krotov_weight_powers<T>(w, W.shape(0), W.shape(1), p, o);
}

}  // namespace

void bind_batch_cuda(py::module_& m) {
    m.def(
        "dreamcomp_fit",
        [](py::array W, py::array V, py::array batches, py::array zeta, py::array eta, py::array win_out, bool update,
           int gemm, const std::vector<std::string>& cublas_libs, bool graphs, bool screen,
           const py::object& control) {
            const sd::cuda::BatchOptions opt = options(gemm, cublas_libs, graphs, screen);
            if (is_f32(W)) return dc_fit_t<float>(W, V, batches, zeta, eta, win_out, update, opt, control);
            if (is_f64(W)) return dc_fit_t<double>(W, V, batches, zeta, eta, win_out, update, opt, control);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("V").noconvert(), py::arg("batches").noconvert(),
        py::arg("zeta").noconvert(), py::arg("eta").noconvert(), py::arg("win_out").noconvert(), py::arg("update"),
        py::arg("gemm") = 0, py::arg("cublas_libs") = std::vector<std::string>(), py::arg("graphs") = true,
        py::arg("screen") = false, SD_CONTROL_PYARG,
        "Rule B on the GPU: W (N, D + C) trained in place on V[batches] (update) or only the winners of one batch;\n"
        "win_out (B,) gets the last batch's winners. screen (float32): TF32 products on cuBLAS, winners confirmed\n"
        "in float64 (winners only: W must be finite). control: as _core.dreamcomp_fit's (stops between launches,\n"
        "and before a batch whose update is not finite). Returns {'gemm': 'cublas' | 'kernel', 'graph', 'screened',\n"
        "'tf32': bool}.");
    m.def(
        "krotov_fit",
        [](py::array W, py::array X, py::array batches, double p, i64 k, double delta, py::array eps, double prec,
           int gemm, const std::vector<std::string>& cublas_libs, bool graphs, const py::object& control) {
            const sd::cuda::BatchOptions opt = options(gemm, cublas_libs, graphs);
            if (is_f32(W)) return kh_fit_t<float>(W, X, batches, p, k, delta, eps, prec, opt, control);
            if (is_f64(W)) return kh_fit_t<double>(W, X, batches, p, k, delta, eps, prec, opt, control);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("X").noconvert(), py::arg("batches").noconvert(), py::arg("p"),
        py::arg("k"), py::arg("delta"), py::arg("eps").noconvert(), py::arg("prec"), py::arg("gemm") = 0,
        py::arg("cublas_libs") = std::vector<std::string>(), py::arg("graphs") = true, SD_CONTROL_PYARG,
        "Rule C on the GPU: W (H, D) trained in place on X[batches] (E, nb, B), eps (E,) float64 per epoch.\n"
        "control: as dreamcomp_fit's. Returns {'gemm': 'cublas' | 'kernel', 'graph': bool}.");
    m.def(
        "krotov_ranks",
        [](py::array I, i64 k, py::array first, py::array kth) {
            if (is_f32(I)) return kh_ranks_t<float>(I, k, first, kth);
            if (is_f64(I)) return kh_ranks_t<double>(I, k, first, kth);
            bad_dtype("I", I);
        },
        py::arg("I").noconvert(), py::arg("k"), py::arg("first").noconvert(), py::arg("kth").noconvert(),
        "First and k-th unit of every row of I (B, H) on the GPU (value descending, ties to the lower index, NaN last).");
    m.def(
        "krotov_weight_powers",
        [](py::array W, double p, py::array out) {
            if (is_f32(W)) return kh_powers_t<float>(W, p, out);
            if (is_f64(W)) return kh_powers_t<double>(W, p, out);
            bad_dtype("W", W);
        },
        py::arg("W").noconvert(), py::arg("p"), py::arg("out").noconvert(), "sign(W) |W|^(p-1) on the GPU into out.");
    m.def(
        "cublas_status",
        [](const std::vector<std::string>& libs) {
            const sd::cuda::CublasApi& api = sd::cuda::cublas_api(libs);
            return py::make_tuple(api.ok(), api.where);
        },
        py::arg("cublas_libs"),
        "(found, where): whether cuBLAS loads from the first usable of cublas_libs (decided once per process).");
}
