// Argument checks of the batch rules' fits (DreamComp, Krotov-Hopfield), shared by the CPU
// module's bindings (bind_batch.cpp) and the CUDA module's (cuda/bind_batch_cuda.cpp), so
// that both refuse the same inputs with the same messages.
#pragma once

#include <cmath>

#include "bind_common.hpp"

namespace sd_bind {

/// A DreamComp fit's arrays, checked: W (N, Dp), V (n, Dp), zeta and eta (Dp,), batches
/// (..., B) with indices in [0, n), win_out (B,).
template <class T>
struct DcArgs {
    T* W;
    const T *V, *zeta, *eta;
    const i64* batches;
    i64* win;
    i64 N, Dp, n, nbatches, B;
};

template <class T>
DcArgs<T> dc_args(py::array W, py::array V, py::array batches, py::array zeta, py::array eta, py::array win_out,
                  bool update) {
    if (W.ndim() != 2) throw py::value_error("W must be 2-D (N, D + C)");
    DcArgs<T> a;
    a.N = W.shape(0);
    a.Dp = W.shape(1);
    if (a.N < 1 || a.Dp < 1) throw py::value_error("W must have at least one row and one column");
    check_shape(V, "V", {-1, a.Dp});
    check_shape(zeta, "zeta", {a.Dp});
    check_shape(eta, "eta", {a.Dp});
    a.W = get_ptr<T>(W, "W", update);
    a.V = get_ptr<T>(V, "V", false);
    a.zeta = get_ptr<T>(zeta, "zeta", false);
    a.eta = get_ptr<T>(eta, "eta", false);
    a.n = V.shape(0);
    a.batches = check_batches(batches, a.n, a.nbatches, a.B);
    check_shape(win_out, "win_out", {a.B});
    a.win = get_ptr<i64>(win_out, "win_out", true);
    return a;
}

/// A Krotov-Hopfield fit's arrays, checked: W (H, D) with H >= 2, X (n, D), batches (E, nb,
/// B) with indices in [0, n); 2 <= k <= H, p a finite number >= 1.
template <class T>
struct KhArgs {
    T* W;
    const T* X;
    const i64* batches;
    i64 H, D, n, E, nb, B;
};

template <class T>
KhArgs<T> kh_args(py::array W, py::array X, py::array batches, double p, i64 k) {
    if (W.ndim() != 2) throw py::value_error("W must be 2-D (n_hidden, D)");
    KhArgs<T> a;
    a.H = W.shape(0);
    a.D = W.shape(1);
    if (a.H < 2 || a.D < 1) throw py::value_error("W must have at least two rows and one column");
    if (k < 2 || k > a.H) throw py::value_error("k must be in [2, n_hidden]");
    if (!(p >= 1.0) || !std::isfinite(p)) throw py::value_error("p must be a finite number >= 1");
    if (batches.ndim() != 3) throw py::value_error("batches must be 3-D (epochs, n_batches, batch_size)");
    check_shape(X, "X", {-1, a.D});
    a.W = get_ptr<T>(W, "W", true);
    a.X = get_ptr<T>(X, "X", false);
    a.n = X.shape(0);
    i64 nbt = 0;
    a.batches = check_batches(batches, a.n, nbt, a.B);
    a.E = batches.shape(0);
    a.nb = batches.shape(1);
    return a;
}

}  // namespace sd_bind
