// pybind11 bindings of the batch rules (DreamComp, Krotov-Hopfield) in module _core.
//
// The BLAS comes in as two PyCapsules from scipy.linalg.cython_blas.__pyx_capi__ ('sgemm',
// 'dgemm'); their names (the C signatures) are checked before a pointer is taken. Arrays are
// checked (bind_common.hpp: dtype, C-contiguity, writability, shape) and every sample index
// is checked against the data, then a whole fit runs without the GIL.
#include <Python.h>

#include <cstring>
#include <string>

#include "bind_batch_args.hpp"
#include "bind_common.hpp"
#include "bind_run.hpp"
#include "sparsedream/blas.hpp"
#include "sparsedream/dreamcomp.hpp"
#include "sparsedream/krotov.hpp"

namespace py = pybind11;
using sd::i64;

namespace {
using sd_bind::bad_dtype;
using sd_bind::check_batches;
using sd_bind::check_shape;
using sd_bind::is_f32;
using sd_bind::is_f64;
using sd_bind::get_ptr;

/// The function pointer of a cython_blas capsule whose signature is gemm's in `real` (the
/// scipy typedef of float ends in "_s *", of double in "_d *").
void* gemm_pointer(const py::object& cap, const char* which, char real) {
    if (!PyCapsule_CheckExact(cap.ptr()))
        throw py::type_error(std::string(which) + " must be a PyCapsule from scipy.linalg.cython_blas.__pyx_capi__['" +
                             which + "']");
    const char* name = PyCapsule_GetName(cap.ptr());
    if (!name) throw py::error_already_set();
    // void (char *, char *, int *, int *, int *, R *alpha, R *a, int *, R *b, int *, R *beta, R *c, int *)
    const std::string sig(name);
    const std::string head = "void (char *, char *, int *, int *, int *, ";
    bool ok = sig.compare(0, head.size(), head) == 0;
    if (ok) {  // the five real-pointer parameters all name the expected type
        std::string rest = sig.substr(head.size());
        const std::string suffix_s = std::string("_") + real + " *";
        const std::string plain = real == 's' ? "float *" : "double *";
        int reals = 0, ints = 0;
        size_t pos = 0;
        while (pos < rest.size()) {
            size_t end = rest.find_first_of(",)", pos);
            if (end == std::string::npos) break;
            std::string p = rest.substr(pos, end - pos);
            while (!p.empty() && p.front() == ' ') p.erase(p.begin());
            if (p == "int *") {
                ++ints;
            } else if (p == plain || (p.size() > suffix_s.size() &&
                                       p.compare(p.size() - suffix_s.size(), suffix_s.size(), suffix_s) == 0)) {
                ++reals;
            } else {
                ok = false;
            }
            pos = end + 1;
            if (rest[end] == ')') break;
        }
        ok = ok && reals == 5 && ints == 3;
    }
    if (!ok)
        throw py::value_error(std::string(which) + ": capsule signature is not ?gemm's: '" + sig + "'");
    void* f = PyCapsule_GetPointer(cap.ptr(), name);
    if (!f) throw py::error_already_set();
    return f;
}

sd::blas::Gemm make_gemm(const py::object& sgemm, const py::object& dgemm) {
    sd::blas::Gemm g;
    g.s = reinterpret_cast<sd::blas::sgemm_t>(gemm_pointer(sgemm, "sgemm", 's'));
    g.d = reinterpret_cast<sd::blas::dgemm_t>(gemm_pointer(dgemm, "dgemm", 'd'));
    return g;
}

void check_dims(i64 rows, i64 K, i64 B) {
    if (!sd::blas::fits_int(rows, K, B))
        throw py::value_error("matrix dimensions must fit the BLAS's 32-bit integers");
}

// ------------------------------------------------------------------------ DreamComp
template <class T>
i64 dc_fit_t(py::array W, py::array V, py::array batches, py::array zeta, py::array eta, py::array win_out,
             const py::object& sgemm, const py::object& dgemm, bool screen, int n_threads, bool update,
             const py::object& control) {
    const sd_bind::DcArgs<T> a = sd_bind::dc_args<T>(W, V, batches, zeta, eta, win_out, update);
    check_dims(a.N, a.Dp, a.B);
    const sd::blas::Gemm g = make_gemm(sgemm, dgemm);
    sd_bind::PyPoll poll(control);
    sd::RunResult res;
    i64 full;
    {
        py::gil_scoped_release nogil;
        sd::Poll p = poll.poll();
        full = sd::dreamcomp::fit<T>(a.W, a.N, a.Dp, a.V, a.zeta, a.eta, a.batches, a.nbatches, a.B, g, screen,
                                     n_threads, a.win, update, p, res);
    }
    poll.finish(res);
    return full;
}

i64 dc_fit(py::array W, py::array V, py::array batches, py::array zeta, py::array eta, py::array win_out,
           const py::object& sgemm, const py::object& dgemm, bool screen, int n_threads, bool update,
           const py::object& control) {
    if (is_f32(W))
        return dc_fit_t<float>(W, V, batches, zeta, eta, win_out, sgemm, dgemm, screen, n_threads, update, control);
    if (is_f64(W))
        return dc_fit_t<double>(W, V, batches, zeta, eta, win_out, sgemm, dgemm, screen, n_threads, update, control);
    bad_dtype("W", W);
}

// ---------------------------------------------------------------------- Krotov-Hopfield
template <class T>
i64 kh_fit_t(py::array W, py::array X, py::array batches, double p, i64 k, double delta, double eps0, double prec,
             i64 epoch0, i64 total, const py::object& sgemm, const py::object& dgemm, bool screen, int n_threads,
             const py::object& control) {
    if (total < 1) throw py::value_error("total_epochs must be >= 1");
    const sd_bind::KhArgs<T> a = sd_bind::kh_args<T>(W, X, batches, p, k);
    check_dims(a.H, a.D, a.B);
    const sd::blas::Gemm g = make_gemm(sgemm, dgemm);
    sd_bind::PyPoll poll(control);
    sd::RunResult res;
    i64 full;
    {
        py::gil_scoped_release nogil;
        sd::Poll pl = poll.poll();
        full = sd::krotov::fit<T>(a.W, a.H, a.D, a.X, a.batches, a.E, a.nb, a.B, p, k, delta, eps0, prec, epoch0,
                                  total, g, screen, n_threads, pl, res);
    }
    poll.finish(res);
    return full;
}

i64 kh_fit(py::array W, py::array X, py::array batches, double p, i64 k, double delta, double eps0, double prec,
           i64 epoch0, i64 total, const py::object& sgemm, const py::object& dgemm, bool screen, int n_threads,
           const py::object& control) {
    if (is_f32(W))
        return kh_fit_t<float>(W, X, batches, p, k, delta, eps0, prec, epoch0, total, sgemm, dgemm, screen, n_threads,
                               control);
    if (is_f64(W))
        return kh_fit_t<double>(W, X, batches, p, k, delta, eps0, prec, epoch0, total, sgemm, dgemm, screen, n_threads,
                                control);
    bad_dtype("W", W);
}

template <class T>
void kh_ranks_t(py::array I, i64 k, py::array first, py::array kth) {
    if (I.ndim() != 2) throw py::value_error("I must be 2-D (n_hidden, B)");
    const i64 H = I.shape(0), B = I.shape(1);
    if (k < 1 || k > H) throw py::value_error("k must be in [1, n_hidden]");
    check_shape(first, "first", {B});
    check_shape(kth, "kth", {B});
    const T* pi = get_ptr<T>(I, "I", false);
    i64* pf = get_ptr<i64>(first, "first", true);
    i64* pk = get_ptr<i64>(kth, "kth", true);
    py::gil_scoped_release nogil;
    sd::krotov::ranks(pi, H, B, k, pf, pk);
}

template <class T>
void kh_powers_t(py::array W, double p, py::array out) {
    if (W.ndim() != 2) throw py::value_error("W must be 2-D");
    const i64 H = W.shape(0), D = W.shape(1);
    check_shape(out, "out", {H, D});
    const T* w = get_ptr<T>(W, "W", false);
    T* o = get_ptr<T>(out, "out", true);
    py::gil_scoped_release nogil;
    sd::krotov::weight_powers(w, H, D, p, o);
}

}  // namespace

void bind_batch_rules(py::module_& m) {
    m.def("dreamcomp_fit", &dc_fit, py::arg("W"), py::arg("V"), py::arg("batches"), py::arg("zeta"), py::arg("eta"),
          py::arg("win_out"), py::arg("sgemm"), py::arg("dgemm"), py::arg("screen") = true, py::arg("n_threads") = 0,
          py::arg("update") = true, SD_CONTROL_PYARG,
          "DreamComp (rule B) fit in place on W (N, D + C), float32 or float64, over the batches\n"
          "V[batches[..., :]] (int64, last axis the batch), all in one call without the GIL.\n"
          "sgemm, dgemm: capsules of scipy.linalg.cython_blas.__pyx_capi__. win_out (B,) int64\n"
          "receives the last batch's winners. update=False only ranks (W is not changed).\n"
          "control: None or int64 (3,) [stop request, batches done, status] (bind_run.hpp): stops after\n"
          "a batch on a stop request or a signal handler's exception (raised on return), and before a\n"
          "batch whose update is not finite (status 2). Returns the number of batches ranked by the full\n"
          "product (not the screening).");
    m.def("krotov_fit", &kh_fit, py::arg("W"), py::arg("X"), py::arg("batches"), py::arg("p"), py::arg("k"),
          py::arg("delta"), py::arg("eps0"), py::arg("prec"), py::arg("epoch0"), py::arg("total_epochs"),
          py::arg("sgemm"), py::arg("dgemm"), py::arg("screen") = true, py::arg("n_threads") = 0,
          SD_CONTROL_PYARG,
          "Krotov-Hopfield (rule C) fit in place on W (n_hidden, D), float32 or float64, over\n"
          "X[batches[e, i]] (batches int64 (E, n_batches, B)), eps = eps0 (1 - (epoch0 + e) /\n"
          "total_epochs), in one call without the GIL. control: as dreamcomp_fit's. Returns the\n"
          "number of batches ranked by the full product.");
    m.def(
        "krotov_ranks",
        [](py::array I, i64 k, py::array first, py::array kth) {
            if (is_f32(I)) return kh_ranks_t<float>(I, k, first, kth);
            if (is_f64(I)) return kh_ranks_t<double>(I, k, first, kth);
            bad_dtype("I", I);
        },
        py::arg("I"), py::arg("k"), py::arg("first"), py::arg("kth"),
        "First and k-th unit of every column of I (n_hidden, B) (value descending, ties to the\n"
        "lower index, NaN last) into first, kth (B,) int64.");
    m.def(
        "krotov_weight_powers",
        [](py::array W, double p, py::array out) {
            if (is_f32(W)) return kh_powers_t<float>(W, p, out);
            if (is_f64(W)) return kh_powers_t<double>(W, p, out);
            bad_dtype("W", W);
        },
        py::arg("W"), py::arg("p"), py::arg("out"), "out = sign(W) |W|^(p - 1) (numpy's bits at p = 2, 3, 1.5).");
}
