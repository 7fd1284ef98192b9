"""The C++ backend of DreamComp (rule B) and Krotov-Hopfield (rule C): what is particular to it.

``tests/test_batch_backends.py`` runs the cpp modules through the checks every fast backend
passes. Here: fresh random data per batch and per epoch in both dtypes, both ways of taking
the float32 product (the own AVX-512 kernel and scipy's sgemm), the screening on and off, one
and two threads (the results must not change by a bit), ties between equal rows that a BLAS
rounds differently, NaNs, the estimators (shuffle on and off, a final partial batch), and bad
arguments reaching the native entry points directly (a Python exception, never a crash).

Tolerances (as in test_batch_backends.py). float64: rtol 1e-9 (the backend differs from the
reference only in the order of sums of at most B terms and in a winner's drive, a float64
dot product in a fixed order instead of the gemm's entry: ~1e-16 relative per batch).
float32: rtol 1e-4, atol 1e-6: the same differences, in float32 (a few ulp per batch,
measured below 3e-7 relative after several epochs); winners and rankings are the argmax of
the exact products of the float32 values, which can differ from the reference's float32
gemm only where two products lie within float32 rounding of each other; on random data
the gaps are far larger, and exact ties are checked on their own.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

core = pytest.importorskip("sparsedream_fast._core",
                           reason="the compiled extension sparsedream_fast._core is not built")
if not hasattr(core, "dreamcomp_fit"):
    pytest.skip("this build of _core has no batch rules (rebuild: pip install -e .)", allow_module_level=True)

import sparsedream_fast as sdf  # noqa: E402
from sparsedream_fast._blas import gemm_capsules  # noqa: E402
from sparsedream_fast.dreamcomp import reference as dc_ref  # noqa: E402
from sparsedream_fast.krotov import reference as kh_ref  # noqa: E402

dc = importlib.import_module("sparsedream_fast.dreamcomp._cpp")
kh = importlib.import_module("sparsedream_fast.krotov._cpp")

DTYPES = ["float64", "float32"]
#: the float32 product: the own AVX-512 kernel where the CPU has it, else scipy's sgemm
PRODUCTS = ["avx512", "blas"]


def tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-4, atol=1e-6)


@pytest.fixture
def product(request, monkeypatch):
    """Select how the float32 products are taken (the SIMD level picks it), restored after."""
    want = request.param
    before = core.simd_level()
    if want == "avx512":
        if core.set_simd_level("avx512") != "avx512":
            core.set_simd_level(before)
            pytest.skip("the CPU has no AVX-512: the float32 products are always scipy's sgemm")
    else:
        core.set_simd_level("avx2")
    yield want
    core.set_simd_level(before)


@pytest.fixture
def knobs(monkeypatch):
    """Set the modules' SCREEN / THREADS for one test (restored after)."""
    def set_(screen=True, threads=None):
        for mod in (dc, kh):
            monkeypatch.setattr(mod, "SCREEN", screen)
            monkeypatch.setattr(mod, "THREADS", threads)
    return set_


def _dc_data(dtype, n=300, D=50, C=4, N=40, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.random((n, D)), rng.integers(0, C, n)
    V = dc_ref.extend(X, y, C, dtype)
    zeta, eta = dc_ref.synapse_vectors(D, C, 10.0, 0.01, 0.05, dtype)
    W0 = rng.uniform(0, 1, (N, D + C)).astype(dtype)
    return V, zeta, eta, W0, rng


def _kh_data(dtype, n=300, D=40, H=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, D)).astype(dtype), rng.normal(0, 1, (H, D)).astype(dtype), rng


# ------------------------------------------------------------------- fresh random data
@pytest.mark.parametrize("product", PRODUCTS, indirect=True)
@pytest.mark.parametrize("screen", [True, False], ids=["screen", "gemm"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_dreamcomp_batches_and_epochs(dtype, screen, seed, product, knobs):
    knobs(screen)
    V, zeta, eta, W0, rng = _dc_data(dtype, seed=100 + seed)
    W, Wr = W0.copy(), W0.copy()
    for start in range(0, 150, 30):  # batch by batch
        wins = dc.batch_update(W, V[start:start + 30], zeta, eta)
        np.testing.assert_array_equal(wins, dc_ref.batch_update(Wr, V[start:start + 30], zeta, eta))
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    batches = np.stack([rng.permutation(300)[:290].reshape(10, 29) for _ in range(3)])  # 10 unused samples
    W, Wr = W0.copy(), W0.copy()
    win, full = dc._run(W, V, batches, zeta, eta)
    dc_ref.fit(Wr, V, batches, zeta, eta)
    np.testing.assert_allclose(W, Wr, **tol(dtype))
    assert full == (0 if screen else batches.shape[0] * batches.shape[1])
    assert win.dtype == np.int64 and win.shape == (29,)  # the last batch's winners


@pytest.mark.parametrize("product", PRODUCTS, indirect=True)
@pytest.mark.parametrize("screen", [True, False], ids=["screen", "gemm"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p, k", [(3.0, 7), (2.0, 2), (4.5, 4)], ids=["p3-k7", "p2-k2", "p4.5-k4"])
def test_krotov_batches_and_epochs(dtype, screen, p, k, product, knobs):
    knobs(screen)
    X, W0, rng = _kh_data(dtype, seed=int(p * 10) + k)
    W, Wr = W0.copy(), W0.copy()
    for start in range(0, 100, 25):
        kh.batch_update(W, X[start:start + 25], p, k, 0.4, 0.02, 1e-30)
        kh_ref.batch_update(Wr, X[start:start + 25], p, k, 0.4, 0.02, 1e-30)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    batches = np.stack([rng.permutation(300)[:275].reshape(11, 25) for _ in range(3)])
    W, Wr = W0.copy(), W0.copy()
    full = kh._run(W, X, batches, p, k, 0.4, 0.02, 1e-30, epoch0=2, total_epochs=7)
    kh_ref.fit(Wr, X, batches, p, k, 0.4, 0.02, 1e-30, epoch0=2, total_epochs=7)
    np.testing.assert_allclose(W, Wr, **tol(dtype))
    assert full == (0 if screen else batches.shape[0] * batches.shape[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_threads_product_or_screening(dtype, knobs):
    """One thread or two, the own kernel or sgemm, screening on or off: the same bits (the
    winners and rankings come from float64 dot products in a fixed order, the rest is
    element-wise). Big enough for several blocks of rows per thread."""
    V, zeta, eta, W0, rng = _dc_data(dtype, n=640, D=90, N=700)
    X, H0, _ = _kh_data(dtype, n=640, D=90, H=600)
    bd = rng.permutation(640).reshape(1, 10, 64)
    before = core.simd_level()
    levels = ["avx512", "avx2"] if core.set_simd_level("avx512") == "avx512" else ["avx2"]
    out = []
    try:
        for level in levels:
            core.set_simd_level(level)
            for threads in (1, 2):
                for screen in (True, False):
                    knobs(screen, threads)
                    W, H = W0.copy(), H0.copy()
                    dc.fit(W, V, bd, zeta, eta)
                    kh.fit(H, X, bd, 3.0, 5, 0.4, 0.02, 1e-30)
                    out.append((level, threads, screen, W, H))
    finally:
        core.set_simd_level(before)
    for level, threads, screen, W, H in out[1:]:
        np.testing.assert_array_equal(W, out[0][3], err_msg=f"DreamComp {level} {threads} threads screen={screen}")
        np.testing.assert_array_equal(H, out[0][4], err_msg=f"Krotov {level} {threads} threads screen={screen}")
    Wr, Hr = W0.copy(), H0.copy()
    dc_ref.fit(Wr, V, bd, zeta, eta)
    kh_ref.fit(Hr, X, bd, 3.0, 5, 0.4, 0.02, 1e-30)
    np.testing.assert_allclose(out[0][3], Wr, **tol(dtype))
    np.testing.assert_allclose(out[0][4], Hr, **tol(dtype))


# --------------------------------------------------------------------------------- ties
def _dc_update_given(W, V, wins, zeta, eta):
    """Steps 2-4 of the reference with the winners given (the reference's own code)."""
    N, B = W.shape[0], V.shape[0]
    S = W @ V.T
    M = np.zeros((N, B), dtype=W.dtype)
    M[wins, np.arange(B)] = 1
    M /= np.maximum(1, np.sum(M, axis=1)).reshape(-1, 1)
    W += (M @ V - (np.sum(S * M, axis=1).reshape(-1, 1) * (W / zeta))) * eta


def _kh_update_given(W, X, first, kth, p, delta, eps, prec):
    B = X.shape[0]
    I = kh_ref.currents(W, X, p)
    g = np.zeros(I.shape, dtype=W.dtype)
    g[first, np.arange(B)] = 1.0
    g[kth, np.arange(B)] = -delta
    xx = np.sum(g * I, axis=1)
    ds = g @ X - xx[:, None] * W
    W += eps * (ds / max(float(np.max(np.abs(ds))), prec))


@pytest.mark.parametrize("product", PRODUCTS, indirect=True)
@pytest.mark.parametrize("screen", [True, False], ids=["screen", "gemm"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_equal_rows_tie_to_the_lowest(dtype, screen, product, knobs):
    """Rows equal to the bit tie exactly, whatever the BLAS does with them (OpenBLAS rounds
    equal rows differently in its edge kernels): the winner, and the first unit, is the
    lowest of them. Random values, so the sums are not exact."""
    knobs(screen)
    V, zeta, eta, W0, rng = _dc_data(dtype, N=37)
    W0[[3, 11, 20, 36]] = W0[0] * 2.0  # four equal leaders (rows 3, 11, 20, 36)
    W = W0.copy()
    wins = dc.batch_update(W, V[:40], zeta, eta)
    np.testing.assert_array_equal(wins, 3)
    np.testing.assert_array_equal(dc.winners(W0, V[:40]), 3)
    Wr = W0.copy()
    _dc_update_given(Wr, V[:40], wins, zeta, eta)
    np.testing.assert_allclose(W, Wr, **tol(dtype))
    # all rows equal: every candidate (more than the screening takes), still the lowest
    Wall = np.tile(W0[:1], (37, 1))
    np.testing.assert_array_equal(dc.winners(Wall, V[:40]), 0)

    X, H0, _ = _kh_data(dtype, H=33)
    H0[[5, 9, 30]] = np.abs(H0[0]) * 3.0  # three equal leaders: first 5, k-th (k = 3) 30
    H = H0.copy()
    kh.batch_update(H, X[:30], 3.0, 3, 0.4, 0.02, 1e-30)
    Hr = H0.copy()
    _kh_update_given(Hr, X[:30], np.full(30, 5), np.full(30, 30), 3.0, 0.4, 0.02, 1e-30)
    np.testing.assert_allclose(H, Hr, **tol(dtype))
    first, kth = kh.ranks(np.tile(np.float64(1.5), (6, 4)).astype(dtype), 4)
    np.testing.assert_array_equal(first, 0)
    np.testing.assert_array_equal(kth, 3)


@pytest.mark.parametrize("screen", [True, False], ids=["screen", "gemm"])
def test_float64_near_ties(screen, knobs):
    """Drives 1e-12 apart (equal in float32) are told apart as in float64."""
    knobs(screen)
    V, zeta, eta, W0, _ = _dc_data("float64", N=25)
    W0[[4, 17]] = W0[0] * 2.0
    W0[17] *= 1 + 1e-12  # 17 ahead by 1e-12 relative on every sample
    W, Wr = W0.copy(), W0.copy()
    wins = dc.batch_update(W, V[:30], zeta, eta)
    np.testing.assert_array_equal(wins, 17)
    np.testing.assert_array_equal(wins, dc_ref.batch_update(Wr, V[:30], zeta, eta))
    np.testing.assert_allclose(W, Wr, **tol("float64"))
    X, H0, _ = _kh_data("float64", H=20)
    H0[[2, 6, 13]] = np.abs(H0[0]) * 3.0
    H0[13] *= 1 + 1e-12  # order 13, 2, 6 (k = 3: 6 is the k-th)
    H, Hr = H0.copy(), H0.copy()
    kh.batch_update(H, X[:30], 2.0, 3, 0.4, 0.02, 1e-30)
    # 2 and 6 are equal rows (the reference's BLAS may round them apart): the update with
    # the ranking 13, 2, 6 as the reference computes it
    _kh_update_given(Hr, X[:30], np.full(30, 13), np.full(30, 6), 2.0, 0.4, 0.02, 1e-30)
    np.testing.assert_allclose(H, Hr, **tol("float64"))
    np.testing.assert_array_equal(kh.ranks(kh_ref.currents(H0, X[:30], 2.0), 3),
                                  kh_ref.ranks(kh_ref.currents(H0, X[:30], 2.0), 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_weights_follow_the_reference(dtype):
    """A NaN weight: DreamComp's winner is np.argmax's (the first NaN). A batch whose update
    is not finite (a losing row with a -inf: the reference's S * 0 makes it NaN; a NaN in
    Krotov-Hopfield's W makes every row NaN) is refused by both, writing nothing."""
    V, zeta, eta, W0, _ = _dc_data(dtype)
    W0[7, 3] = np.nan
    np.testing.assert_array_equal(dc.winners(W0, V[:20]), np.argmax(W0 @ V[:20].T, axis=0))
    np.testing.assert_array_equal(dc.winners(W0, V[:20]), 7)
    W, Wr = W0.copy(), W0.copy()
    W[7, 3] = Wr[7, 3] = 0.5
    W[9, 2] = Wr[9, 2] = -np.inf  # never wins: the reference's S * 0 makes its row NaN
    before = W.copy()
    for mod, A in ((dc_ref, Wr), (dc, W)):
        with pytest.raises(sdf.DivergenceError, match="not finite"):
            mod.batch_update(A, V[:20], zeta, eta)
        np.testing.assert_array_equal(A, before)
    X, H0, _ = _kh_data(dtype)
    H0[4, 0] = np.nan
    for mod in (kh_ref, kh):
        H = H0.copy()
        with pytest.raises(sdf.DivergenceError, match="not finite"):
            mod.batch_update(H, X[:20], 3.0, 3, 0.4, 0.02, 1e-30)
        np.testing.assert_array_equal(H, H0)


# ---------------------------------------------------------------------------- estimators
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_estimators_partial_batch_and_shuffle(dtype, shuffle):
    """n = 7 B + 13: the final partial batch is dropped by every backend; with and without
    shuffling the cpp estimator follows the reference."""
    rng = np.random.default_rng(11)
    X, y = rng.random((7 * 20 + 13, 30)), rng.integers(0, 3, 7 * 20 + 13)
    kw = dict(n_inputs=30, n_neurons=16, n_classes=3, lr=0.01, label_lr=0.05, batch_size=20, dtype=dtype, seed=4)
    fast = sdf.DreamComp(backend="cpp", **kw).fit(X, y, epochs=3, shuffle=shuffle)
    ref = sdf.DreamComp(backend="numpy", **kw).fit(X, y, epochs=3, shuffle=shuffle)
    assert fast.backend_ == "cpp"
    np.testing.assert_allclose(fast.weights_, ref.weights_, **tol(dtype))
    np.testing.assert_array_equal(fast.predict(X), ref.predict(X))
    kw = dict(n_inputs=30, n_hidden=12, k=3, batch_size=20, dtype=dtype, seed=4)
    fast = sdf.KrotovHopfield(backend="cpp", **kw).fit(X, epochs=3, shuffle=shuffle)
    ref = sdf.KrotovHopfield(backend="numpy", **kw).fit(X, epochs=3, shuffle=shuffle)
    assert fast.backend_ == "cpp"
    np.testing.assert_allclose(fast.weights_, ref.weights_, **tol(dtype))
    if not shuffle:  # in order: the last 13 samples (the partial batch) are never used
        Xg = X.copy()
        Xg[140:] = 0.5
        again = sdf.KrotovHopfield(backend="cpp", **kw).fit(Xg, epochs=3, shuffle=False)
        np.testing.assert_array_equal(again.weights_, fast.weights_)


def test_auto_prefers_cpp():
    X, y = np.random.default_rng(0).random((40, 8)), np.arange(40) % 2
    assert sdf.DreamComp(n_inputs=8, n_neurons=4, n_classes=2, batch_size=10).fit(X, y).backend_ == "cpp"
    assert sdf.KrotovHopfield(n_inputs=8, n_hidden=6, k=2, batch_size=10).fit(X).backend_ == "cpp"


# ----------------------------------------------------------------- the native entry points
def _dc_args(dtype="float64"):
    V, zeta, eta, W0, _ = _dc_data(dtype, n=50, N=10)
    sg, dg = gemm_capsules()
    return dict(W=W0, V=V, batches=np.arange(40, dtype=np.int64).reshape(1, 4, 10), zeta=zeta, eta=eta,
                win_out=np.zeros(10, np.int64), sgemm=sg, dgemm=dg)


def _kh_args(dtype="float64"):
    X, H0, _ = _kh_data(dtype, n=50, H=10)
    sg, dg = gemm_capsules()
    return dict(W=H0, X=X, batches=np.arange(40, dtype=np.int64).reshape(1, 4, 10), p=3.0, k=3, delta=0.4,
                eps0=0.02, prec=1e-30, epoch0=0, total_epochs=1, sgemm=sg, dgemm=dg)


def _bad_dc():
    a = _dc_args()
    f32 = _dc_args("float32")
    return [
        ("W int", dict(W=a["W"].astype(np.int64)), TypeError),
        ("V float32 with W float64", dict(V=f32["V"]), TypeError),
        ("zeta float32", dict(zeta=f32["zeta"]), TypeError),
        ("W 1-D", dict(W=a["W"][0]), ValueError),
        ("W empty", dict(W=a["W"][:0]), ValueError),
        ("V columns", dict(V=a["V"][:, :-1].copy()), ValueError),
        ("V 1-D", dict(V=a["V"][0]), ValueError),
        ("zeta length", dict(zeta=a["zeta"][:-1].copy()), ValueError),
        ("eta 2-D", dict(eta=a["eta"][None]), ValueError),
        ("W not C-contiguous", dict(W=np.asfortranarray(a["W"])), ValueError),
        ("W read-only", dict(W=np.frombuffer(a["W"].tobytes()).reshape(a["W"].shape)), ValueError),
        ("V strided", dict(V=a["V"][::2]), ValueError),
        ("batches int32", dict(batches=a["batches"].astype(np.int32)), TypeError),
        ("batches float", dict(batches=a["batches"].astype(np.float64)), TypeError),
        ("batches 0-D", dict(batches=np.array(3, np.int64)), ValueError),
        ("sample index too large", dict(batches=a["batches"] + 20), IndexError),
        ("sample index negative", dict(batches=a["batches"] - 1), IndexError),
        ("win_out length", dict(win_out=np.zeros(9, np.int64)), ValueError),
        ("win_out dtype", dict(win_out=np.zeros(10, np.int32)), TypeError),
        ("sgemm None", dict(sgemm=None), TypeError),
        ("sgemm is dgemm", dict(sgemm=a["dgemm"]), ValueError),
        ("dgemm is ddot", dict(dgemm=__import__("scipy.linalg.cython_blas", fromlist=["x"]).__pyx_capi__["ddot"]),
         ValueError),
    ]


@pytest.mark.parametrize("name, change, exc", _bad_dc(), ids=[c[0] for c in _bad_dc()])
def test_dreamcomp_fit_rejects_bad_arguments(name, change, exc):
    args = _dc_args()
    W0 = args["W"].copy()
    args.update(change)
    with pytest.raises(exc):
        core.dreamcomp_fit(**args)
    if "W" not in change:
        np.testing.assert_array_equal(args["W"], W0)  # nothing ran


def _bad_kh():
    a = _kh_args()
    return [
        ("W int", dict(W=a["W"].astype(np.int32)), TypeError),
        ("X float32 with W float64", dict(X=a["X"].astype(np.float32)), TypeError),
        ("X columns", dict(X=a["X"][:, :5].copy()), ValueError),
        ("W one row", dict(W=a["W"][:1].copy()), ValueError),
        ("k = 1", dict(k=1), ValueError),
        ("k > hidden", dict(k=11), ValueError),
        ("p < 1", dict(p=0.5), ValueError),
        ("p NaN", dict(p=float("nan")), ValueError),
        ("total_epochs 0", dict(total_epochs=0), ValueError),
        ("batches 2-D", dict(batches=a["batches"][0]), ValueError),
        ("sample index too large", dict(batches=a["batches"] * 5), IndexError),
        ("W read-only", dict(W=np.frombuffer(a["W"].tobytes()).reshape(a["W"].shape)), ValueError),
        ("dgemm not a capsule", dict(dgemm=lambda *x: None), TypeError),
    ]


@pytest.mark.parametrize("name, change, exc", _bad_kh(), ids=[c[0] for c in _bad_kh()])
def test_krotov_fit_rejects_bad_arguments(name, change, exc):
    args = _kh_args()
    args.update(change)
    with pytest.raises(exc):
        core.krotov_fit(**args)


def test_small_entry_points_reject_bad_arguments():
    I = np.zeros((5, 3))
    f, k = np.zeros(3, np.int64), np.zeros(3, np.int64)
    with pytest.raises(ValueError):
        core.krotov_ranks(I, 6, f, k)
    with pytest.raises(ValueError):
        core.krotov_ranks(I, 0, f, k)
    with pytest.raises(ValueError):
        core.krotov_ranks(I, 2, np.zeros(4, np.int64), k)
    with pytest.raises(TypeError):
        core.krotov_ranks(I.astype(np.int64), 2, f, k)
    with pytest.raises(ValueError):
        core.krotov_ranks(I[0], 2, f, k)
    with pytest.raises(ValueError):
        core.krotov_weight_powers(I, 3.0, np.zeros((5, 2)))
    with pytest.raises(TypeError):
        core.krotov_weight_powers(I, 3.0, np.zeros((5, 3), np.float32))


def test_empty_and_degenerate_calls():
    """No batch, or batches of size 0: nothing happens, nothing breaks."""
    a = _dc_args()
    W0 = a["W"].copy()
    a.update(batches=np.zeros((1, 0, 10), np.int64))
    assert core.dreamcomp_fit(**a) == 0
    np.testing.assert_array_equal(a["W"], W0)
    a.update(batches=np.zeros((1, 3, 0), np.int64), win_out=np.zeros(0, np.int64))
    assert core.dreamcomp_fit(**a) == 0
    k = _kh_args()
    H0 = k["W"].copy()
    k.update(batches=np.zeros((2, 0, 10), np.int64))
    assert core.krotov_fit(**k) == 0
    np.testing.assert_array_equal(k["W"], H0)


def test_blas_held_to_one_thread_and_restored():
    """During a fit every BLAS runs one thread (the fit's threads call it); after, the
    settings are back, also after fits in several Python threads at once."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import threading

    from sparsedream_fast import _blas

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with _blas.SingleThreadedBlas() as held:
        assert held.ok
        assert set(blas_threads()) == {1}
        with _blas.SingleThreadedBlas():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}  # the inner exit does not restore
    assert blas_threads() == before
    V, zeta, eta, W0, rng = _dc_data("float64", n=600, N=300)
    bd = rng.permutation(600).reshape(1, 6, 100)
    want = W0.copy()
    dc.fit(want, V, bd, zeta, eta)
    outs = [W0.copy() for _ in range(4)]
    threads = [threading.Thread(target=dc.fit, args=(W, V, bd, zeta, eta)) for W in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for W in outs:
        np.testing.assert_array_equal(W, want)
    assert blas_threads() == before
