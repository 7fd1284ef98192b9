"""DreamComp (rule B) and Krotov-Hopfield (rule C): every fast backend against the reference.

Each backend's module has the reference's functions (``batch_update``, ``fit``); they are
compared per minibatch and over a short fit on random data, in both dtypes, with the
screening (winners and rankings from a float32 product plus float64 dot products of the
candidates) on and off.

Tolerances. float64: rtol 1e-9 (the backends differ from the reference only in the order
of a few sums of at most B terms: ~1e-15 per batch). float32: rtol 1e-4, atol 1e-6 (W
entries are O(1)). Winners and rankings agree (with screening, numba and cpp
rank the candidates by their own float64 dot products of the float32 values, which differ
from the reference's gemm only within rounding; tests/test_batch_screening.py checks the
guarantee on near ties); what differs is the
order of the sums over a winner's samples (U and s of rule B,
g X and xx of rule C: at most B terms, so at most ~B u = 25 * 6e-8 = 1.5e-6 relative per
batch and a few ulp in practice, measured 2e-7 after 5 epochs); 1e-4 leaves room for a
BLAS whose float32 gemm sums in another order than numpy's (~sqrt(D) ulp ~ 1e-6 on S,
which carries into s). On random data the gaps between the best and second-best neuron
(~1e-2 relative) are far above these differences, so winners and rankings must agree
exactly; ties are tested with hand-made exact ones (tests/test_batch_cpp.py has more for
cpp: ties between equal rows with random values, which a BLAS may round apart).
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast.dreamcomp import reference as dc_ref
from sparsedream_fast.krotov import reference as kh_ref
from testing import CUDA_EMULATED

_AVAILABLE = {n: i for n, i in sdf.backends().items() if n != "numpy"}


def _usable(n):
    return (n == "cuda" and CUDA_EMULATED) or (_AVAILABLE.get(n) is not None and _AVAILABLE[n].available)


#: the fast backends of rules B and C, each skipped with its reason when absent here (cuda
#: runs on the CPU emulator of its kernels where there is no GPU, see conftest.py)
BACKENDS = [pytest.param(n, marks=() if _usable(n) else pytest.mark.skip(reason=f"{n}: {_AVAILABLE[n].reason}"),
                         id=n)
            for n in ("cpp", "numba", "cuda")]
DTYPES = ["float64", "float32"]
#: both dtypes, with and without the screening
MODES = [("float64", True), ("float64", False), ("float32", True), ("float32", False)]
MODE_IDS = ["f64-screen", "f64-gemm", "f32-screen", "f32-gemm"]


def tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-4, atol=1e-6)


def _with_screen(mod, screen, monkeypatch, optional):
    """mod with its SCREEN set; a backend without screening (cuda: always the product in W's
    dtype, the *-gemm cases) skips the screened cases unless the test runs either way."""
    if monkeypatch is None:
        return mod
    if hasattr(mod, "SCREEN"):
        monkeypatch.setattr(mod, "SCREEN", screen)
    elif screen and not optional:
        pytest.skip("no float64 screening on this backend: its only mode is the *-gemm case")
    return mod


def dc_mod(backend, screen=True, monkeypatch=None, optional=False):
    return _with_screen(importlib.import_module(f"sparsedream_fast.dreamcomp._{backend}"), screen, monkeypatch,
                        optional)


def kh_mod(backend, screen=True, monkeypatch=None, optional=False):
    return _with_screen(importlib.import_module(f"sparsedream_fast.krotov._{backend}"), screen, monkeypatch,
                        optional)


def full_products(mod, *args, **kw):
    """``mod.fit(*args)``, through ``mod._run`` (the fit with its statistics) when the backend
    has one: the number of batches whose winners (ranking) came from the product in W's
    dtype instead of the screening; None for a backend without it."""
    if not hasattr(mod, "_run"):
        mod.fit(*args, **kw)
        return None
    out = mod._run(*args, **kw)
    return out[1] if isinstance(out, tuple) else out


def one_batch(n):
    return np.arange(n, dtype=np.int64).reshape(1, 1, -1)


# --------------------------------------------------------------------------- DreamComp
def _dc_case(dtype, n=200, D=40, C=4, N=30, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.random((n, D)), rng.integers(0, C, n)
    V = dc_ref.extend(X, y, C, dtype)
    zeta, eta = dc_ref.synapse_vectors(D, C, 10.0, 0.01, 0.05, dtype)
    W0 = rng.uniform(0, 1, (N, D + C)).astype(dtype)
    return V, zeta, eta, W0, rng


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_batch_matches_reference(backend, dtype, screen, monkeypatch):
    mod = dc_mod(backend, screen, monkeypatch)
    V, zeta, eta, W0, _ = _dc_case(dtype)
    W, Wr = W0.copy(), W0.copy()
    for start in (0, 25, 50):  # three batches in a row, the second from the first's result
        wins = mod.batch_update(W, V[start:start + 25], zeta, eta)
        wins_r = dc_ref.batch_update(Wr, V[start:start + 25], zeta, eta)
        np.testing.assert_array_equal(wins, wins_r)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    assert W.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_fit_matches_reference(backend, dtype, screen, monkeypatch):
    mod = dc_mod(backend, screen, monkeypatch)
    V, zeta, eta, W0, rng = _dc_case(dtype, n=230)
    batches = np.stack([rng.permutation(230)[:225].reshape(9, 25) for _ in range(4)])
    W, Wr = W0.copy(), W0.copy()
    full = full_products(mod, W, V, batches, zeta, eta)
    assert full in (None, 0 if screen else batches.shape[0] * batches.shape[1])
    dc_ref.fit(Wr, V, batches, zeta, eta)
    np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_losers_untouched(backend, dtype, screen, monkeypatch):
    """Rows that won nothing keep their bits (the reference adds exactly 0 to them)."""
    mod = dc_mod(backend, screen, monkeypatch)
    V, zeta, eta, W0, _ = _dc_case(dtype, N=60)
    W = W0.copy()
    wins = mod.batch_update(W, V[:10], zeta, eta)
    losers = np.setdiff1d(np.arange(60), wins)
    assert losers.size >= 50
    np.testing.assert_array_equal(W[losers], W0[losers])
    assert not np.array_equal(W[wins], W0[wins])


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_ties_and_near_ties(backend, dtype, screen, monkeypatch):
    """Exact ties go to the lower neuron; a float64 difference of 1e-12 relative (that
    float32 cannot see) is resolved as the reference resolves it."""
    mod = dc_mod(backend, screen, monkeypatch)
    rng = np.random.default_rng(3)
    D, C, N, B = 32, 2, 12, 16
    # values in multiples of 1/4: every dot product below is exact, whatever the order
    X = rng.integers(0, 5, (B, D)) / 4.0
    V = dc_ref.extend(X, np.arange(B) % C, C, dtype)
    W = (rng.integers(0, 2, (N, D + C)) / 16.0).astype(dtype)
    W[[2, 5, 9]] = 1.0  # three identical best rows: neuron 2 must win every sample
    zeta, eta = dc_ref.synapse_vectors(D, C, 10.0, 0.01, 0.05, dtype)
    Wr = W.copy()
    wins = mod.batch_update(W, V, zeta, eta)
    np.testing.assert_array_equal(wins, 2)
    np.testing.assert_array_equal(wins, dc_ref.batch_update(Wr, V, zeta, eta))
    np.testing.assert_allclose(W, Wr, **tol(dtype))
    if dtype == "float64":  # 9 better than 2 by 1e-10 on the samples with pixel 7 lit
        W = (rng.integers(0, 2, (N, D + C)) / 16.0)
        W[[2, 9]] = 1.0
        W[9, 7] += 1e-10
        Wr = W.copy()
        assert full_products(mod, W.copy(), V, one_batch(B), zeta, eta) in (None, 0 if screen else 1)
        wins = mod.batch_update(W, V, zeta, eta)
        np.testing.assert_array_equal(wins, np.where(X[:, 7] > 0, 9, 2))
        np.testing.assert_array_equal(wins, dc_ref.batch_update(Wr, V, zeta, eta))
        np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_screening_falls_back(backend, dtype, monkeypatch):
    """Weights beyond float32's range, and too many candidates (all rows equal), take the
    full product: the results stay the reference's. The equal rows and their data are
    multiples of 1/16 and 1/4 (every sum exact), so that every BLAS ties them: on random
    values a BLAS may round equal rows differently (OpenBLAS's edge kernels do), and the
    reference's float32 winner among them is then an accident of its BLAS."""
    mod = dc_mod(backend, True, monkeypatch, optional=True)
    V, zeta, eta, W0, _ = _dc_case(dtype)
    Vx = (np.round(V * 4) / 4).astype(dtype)
    cases = [(np.tile(np.round(W0[:1] * 16) / 16, (30, 1)).astype(dtype), Vx)]
    if dtype == "float64":  # float32 would overflow
        cases.append((W0 * 1e35, V))
    for W0, V in cases:
        W, Wr = W0.copy(), W0.copy()
        assert full_products(mod, W.copy(), V, one_batch(25), zeta, eta) in (None, 1)
        wins = mod.batch_update(W, V[:25], zeta, eta)
        np.testing.assert_array_equal(wins, dc_ref.batch_update(Wr, V[:25], zeta, eta))
        np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_winners_nan_and_ties(backend, dtype, screen, monkeypatch):
    """``winners`` is ``np.argmax(W V^T, axis=0)``: first maximum, first NaN (a NaN weight
    turns the screening off); on random data, the winners ``batch_update`` uses."""
    mod = dc_mod(backend, screen, monkeypatch)
    if not hasattr(mod, "winners"):
        pytest.skip(f"{backend} has no winners()")
    V = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype)
    W = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype)
    np.testing.assert_array_equal(mod.winners(W, V), [0, 2, 2])
    np.testing.assert_array_equal(mod.winners(W, V), np.argmax(W @ V.T, axis=0))
    W[3, 0] = np.nan
    np.testing.assert_array_equal(mod.winners(W, V), np.argmax(W @ V.T, axis=0))
    np.testing.assert_array_equal(mod.winners(W, V), [3, 3, 3])
    Vr, zeta, eta, W0, _ = _dc_case(dtype)
    np.testing.assert_array_equal(mod.winners(W0, Vr[:50]), mod.batch_update(W0.copy(), Vr[:50], zeta, eta))
    np.testing.assert_array_equal(mod.winners(W0, Vr[:50]), np.argmax(W0 @ Vr[:50].T, axis=0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_estimator_same_predictions(backend, dtype):
    rng = np.random.default_rng(5)
    X, y = rng.random((300, 36)), rng.integers(0, 4, 300)
    kw = dict(n_inputs=36, n_neurons=25, n_classes=4, lr=0.01, label_lr=0.05, batch_size=20,
              dtype=dtype, seed=2)
    fast = sdf.DreamComp(backend=backend, **kw).fit(X, y, epochs=3)
    ref = sdf.DreamComp(backend="numpy", **kw).fit(X, y, epochs=3)
    assert fast.backend_ == backend
    np.testing.assert_allclose(fast.weights_, ref.weights_, **tol(dtype))
    np.testing.assert_array_equal(fast.neuron_classes_, ref.neuron_classes_)
    Xt = rng.random((200, 36))
    np.testing.assert_array_equal(fast.predict(Xt), ref.predict(Xt))


def _auto_choice():
    """What ``backend="auto"`` must pick for rules B and C: cpp, then numba, then numpy."""
    return next(n for n in ("cpp", "numba", "numpy") if sdf.backends()[n].available)


def test_dreamcomp_auto_prefers_fastest():
    X, y = np.random.default_rng(0).random((40, 8)), np.arange(40) % 2
    m = sdf.DreamComp(n_inputs=8, n_neurons=4, n_classes=2, batch_size=10).fit(X, y)
    assert m.backend_ == _auto_choice()


# ---------------------------------------------------------------------- Krotov-Hopfield
def _kh_case(dtype, n=200, D=30, H=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, D)).astype(dtype), rng.normal(0, 1, (H, D)).astype(dtype), rng


PK = [(3.0, 7), (2.0, 2), (4.5, 3), (1.5, 24)]


@pytest.mark.parametrize("p, k", PK, ids=[f"p{p}-k{k}" for p, k in PK])
@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_batch_matches_reference(backend, dtype, screen, p, k, monkeypatch):
    mod = kh_mod(backend, screen, monkeypatch)
    X, W0, _ = _kh_case(dtype)
    W, Wr = W0.copy(), W0.copy()
    for start in (0, 20, 40):
        mod.batch_update(W, X[start:start + 20], p, k, 0.4, 0.02, 1e-30)
        kh_ref.batch_update(Wr, X[start:start + 20], p, k, 0.4, 0.02, 1e-30)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    assert W.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_fit_matches_reference(backend, dtype, screen, monkeypatch):
    mod = kh_mod(backend, screen, monkeypatch)
    X, W0, rng = _kh_case(dtype)
    batches = np.stack([rng.permutation(200)[:200].reshape(10, 20) for _ in range(3)])
    W, Wr = W0.copy(), W0.copy()
    full = full_products(mod, W, X, batches, 3.0, 5, 0.4, 0.02, 1e-30, epoch0=1, total_epochs=6)
    assert full in (None, 0 if screen else batches.shape[0] * batches.shape[1])
    kh_ref.fit(Wr, X, batches, 3.0, 5, 0.4, 0.02, 1e-30, epoch0=1, total_epochs=6)
    np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_ranks_ties_and_nan(backend, dtype):
    """First and k-th unit as the reference's lexsort: ties to the lower index, NaN last."""
    mod = kh_mod(backend)
    rng = np.random.default_rng(2)
    I = rng.integers(0, 4, (40, 30)).astype(dtype)  # many exact ties
    for k in (2, 3, 7, 40):
        for got, want in zip(mod.ranks(I, k), kh_ref.ranks(I, k)):
            np.testing.assert_array_equal(got, want)
    I[[0, 5], 3] = np.nan
    I[:, 4] = np.nan
    I[:37, 5] = np.nan
    for k in (2, 3, 7):
        for got, want in zip(mod.ranks(I, k), kh_ref.ranks(I, k)):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype, screen", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_ties_and_near_ties(backend, dtype, screen, monkeypatch):
    """Identical units rank by index; units 1e-12 apart (float32-identical) rank as in float64."""
    mod = kh_mod(backend, screen, monkeypatch)
    rng = np.random.default_rng(4)
    D, H, B = 16, 10, 12
    X = (rng.integers(0, 5, (B, D)) / 4.0).astype(dtype)
    W = (rng.integers(-2, 3, (H, D)) / 16.0).astype(dtype)
    W[[1, 4, 6, 8]] = 0.5  # four identical leaders (p = 2: Wp = W, exact currents)
    if dtype == "float64":
        W[8, 3] += 1e-12  # unit 8 ahead of 1, 4, 6 where pixel 3 is lit
    Wr = W.copy()
    assert full_products(mod, W.copy(), X, one_batch(B), 2.0, 3, 0.4, 0.02, 1e-30) in (None, 0 if screen else 1)
    mod.batch_update(W, X, 2.0, 3, 0.4, 0.02, 1e-30)
    kh_ref.batch_update(Wr, X, 2.0, 3, 0.4, 0.02, 1e-30)
    np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_screening_falls_back(backend, dtype, monkeypatch):
    """As for DreamComp: huge weights, and all units equal (every unit a candidate; exact
    values, as there)."""
    mod = kh_mod(backend, True, monkeypatch, optional=True)
    X, W0, _ = _kh_case(dtype, H=40)
    cases = [(np.tile(np.round(W0[:1] * 16) / 16, (40, 1)).astype(dtype), (np.round(X * 4) / 4).astype(dtype))]
    if dtype == "float64":  # float32 would overflow
        cases.append((W0 * 1e20, X))
    for W0, X in cases:
        W, Wr = W0.copy(), W0.copy()
        assert full_products(mod, W.copy(), X, one_batch(20), 3.0, 2, 0.4, 0.02, 1e-30) in (None, 1)
        mod.batch_update(W, X[:20], 3.0, 2, 0.4, 0.02, 1e-30)
        kh_ref.batch_update(Wr, X[:20], 3.0, 2, 0.4, 0.02, 1e-30)
        np.testing.assert_allclose(W, Wr, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_untouched_units_and_powers(backend, dtype):
    """Units neither first nor k-th keep their bits; Wp is numpy's bit for bit at p = 2, 3, 1.5."""
    mod = kh_mod(backend)
    X, W0, _ = _kh_case(dtype, H=80)
    W = W0.copy()
    mod.batch_update(W, X[:5], 3.0, 4, 0.4, 0.02, 1e-30)
    first, kth = kh_ref.ranks(kh_ref.currents(W0, X[:5], 3.0), 4)
    others = np.setdiff1d(np.arange(80), np.concatenate([first, kth]))
    assert others.size >= 70
    np.testing.assert_array_equal(W[others], W0[others])
    if hasattr(mod, "weight_powers"):
        for p in (2.0, 3.0, 1.5, 4.5, 1.0):
            want = np.sign(W0) * np.abs(W0) ** (p - 1)
            got = mod.weight_powers(W0, p)
            if p in (2.0, 3.0, 1.5):
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_krotov_estimator_same_transform(backend, dtype):
    X = np.random.default_rng(6).random((200, 30))
    kw = dict(n_inputs=30, n_hidden=20, k=4, batch_size=20, dtype=dtype, seed=1, power=2.0)
    fast = sdf.KrotovHopfield(backend=backend, **kw).fit(X, epochs=3)
    ref = sdf.KrotovHopfield(backend="numpy", **kw).fit(X, epochs=3)
    assert fast.backend_ == backend
    np.testing.assert_allclose(fast.weights_, ref.weights_, **tol(dtype))
    np.testing.assert_allclose(fast.transform(X), ref.transform(X), rtol=1e-3 if dtype == "float32" else 1e-8)


def test_krotov_auto_prefers_fastest():
    m = sdf.KrotovHopfield(n_inputs=8, n_hidden=6, k=2, batch_size=10).fit(
        np.random.default_rng(0).random((40, 8)))
    assert m.backend_ == _auto_choice()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_results_independent_of_blas_threads(backend, dtype, monkeypatch):
    """With the screening the results do not depend on the BLAS threads (OpenBLAS's gemm
    itself changes with them at these sizes): 1 thread == 2 threads, bitwise."""
    dmod, kmod = dc_mod(backend, True, monkeypatch, True), kh_mod(backend, True, monkeypatch, True)
    if not hasattr(dmod, "BLAS_THREADS"):
        pytest.skip(f"{backend} has no BLAS_THREADS")
    V, zeta, eta, W0, rng = _dc_case(dtype, n=400, N=300)
    X = rng.random((400, 44)).astype(dtype)
    H0 = rng.normal(0, 1, (300, 44)).astype(dtype)
    bd = rng.permutation(400).reshape(1, 4, 100)
    out = []
    for threads in (1, 2):
        monkeypatch.setattr(dmod, "BLAS_THREADS", threads)
        monkeypatch.setattr(kmod, "BLAS_THREADS", threads)
        W, H = W0.copy(), H0.copy()
        dmod.fit(W, V, bd, zeta, eta)
        kmod.fit(H, X, bd, 3.0, 5, 0.4, 0.02, 1e-30)
        out.append((W, H))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_blas_thread_limit(backend, monkeypatch):
    """The optional BLAS thread limit (threadpoolctl) is set during the fit and restored after."""
    dmod, kmod = dc_mod(backend), kh_mod(backend)
    if not hasattr(dmod, "BLAS_THREADS"):
        pytest.skip(f"{backend} has no BLAS_THREADS")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    seen = []
    real_dot = np.dot

    def spy_dot(*a, **kw):  # the fit's products run under the limit
        seen.append(max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"))
        return real_dot(*a, **kw)

    monkeypatch.setattr(dmod, "BLAS_THREADS", 1)
    monkeypatch.setattr(kmod, "BLAS_THREADS", 1)
    monkeypatch.setattr(dmod.np, "dot", spy_dot)
    V, zeta, eta, W0, _ = _dc_case("float64")
    W, Wr = W0.copy(), W0.copy()
    dmod.batch_update(W, V[:25], zeta, eta)
    X, H0, _ = _kh_case("float64")
    H, Hr = H0.copy(), H0.copy()
    kmod.batch_update(H, X[:20], 3.0, 4, 0.4, 0.02, 1e-30)
    monkeypatch.setattr(dmod.np, "dot", real_dot)
    assert seen and set(seen) == {1}
    assert [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"] == before
    dc_ref.batch_update(Wr, V[:25], zeta, eta)
    np.testing.assert_allclose(W, Wr, **tol("float64"))
    kh_ref.batch_update(Hr, X[:20], 3.0, 4, 0.4, 0.02, 1e-30)
    np.testing.assert_allclose(H, Hr, **tol("float64"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_edge_sizes(backend, dtype):
    """One neuron, batches of one, k = hid, k = 2 = hid."""
    dmod, kmod = dc_mod(backend), kh_mod(backend)
    rng = np.random.default_rng(8)
    for N, B in ((1, 1), (1, 5), (7, 1)):
        V = dc_ref.extend(rng.random((40, 6)), rng.integers(0, 2, 40), 2, dtype)
        zeta, eta = dc_ref.synapse_vectors(6, 2, 10.0, 0.01, 0.05, dtype)
        W0 = rng.uniform(0, 1, (N, 8)).astype(dtype)
        batches = rng.permutation(40)[: 40 // B * B].reshape(1, -1, B)
        W, Wr = W0.copy(), W0.copy()
        dmod.fit(W, V, batches, zeta, eta)
        dc_ref.fit(Wr, V, batches, zeta, eta)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
    for H, k, B in ((2, 2, 1), (3, 3, 4), (6, 6, 7)):
        X = rng.random((28, 5)).astype(dtype)
        W0 = rng.normal(0, 1, (H, 5)).astype(dtype)
        batches = rng.permutation(28)[: 28 // B * B].reshape(1, -1, B)
        W, Wr = W0.copy(), W0.copy()
        kmod.fit(W, X, batches, 3.0, k, 0.4, 0.02, 1e-30)
        kh_ref.fit(Wr, X, batches, 3.0, k, 0.4, 0.02, 1e-30)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
