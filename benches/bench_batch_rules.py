"""Benchmarks of the batch rules: DreamComp (rule B, seed 002) and Krotov-Hopfield (rule C, seed 003).

Each group times, on the same random data of the MNIST shape (D = 784 pixels in [0, 1],
10 classes) and the same initial weights, the notebook's own loop (transcribed below,
float64 numpy, importing nothing from the library), the library's numpy reference and every
fast backend in float32 and float64, all over the same number of samples per call, so the
times in a group compare directly; ``extra_info`` has ``samples_per_s`` and
``s_per_epoch`` (60,000 samples), the BLAS threads and the load average.

    pytest benches/ -k bench_batch_rules --benchmark-only                # small sizes
    pytest benches/ -k bench_batch_rules --benchmark-only --bench-slow   # + the issue's sizes
    pytest benches/ -k bench_batch_rules --benchmark-disable             # correctness checks only

(Select with ``-k`` from ``benches/``: naming the file itself makes benches/conftest.py
collect it twice, and every benchmark then runs twice.)

Default: DreamComp 400 neurons (B = 100) and 1,600 (B = 500), Krotov-Hopfield 100 hidden
units (p = 2, k = 2: the notebook's defaults) and 2,000 (p = 3, k = 7: the paper's MNIST
setting), 3,000 samples per call. Slow: DreamComp 6,400 neurons (B = 500), every size on
a whole 60,000-sample epoch, and the fast backends with BLAS held to one thread (and the
cpp backend's own threads, ``THREADS``, to one).

Before timing, every backend is checked against the reference on the group's first
batches (tolerances of tests/test_batch_backends.py), and the transcribed notebook loops
against the reference (``test_notebook_loops_are_the_rules``).
"""
from __future__ import annotations

import importlib
import os
from functools import lru_cache

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast.dreamcomp import reference as dc_ref
from sparsedream_fast.krotov import reference as kh_ref

D, C = 784, 10
EPOCH = 60_000
#: samples per timed call at the default sizes
SAMPLES = 3_000

_AVAILABLE = {n for n, i in sdf.backends().items() if i.available}
#: rules B and C: the reference and the fast backends that implement them here
BATCH_BACKENDS = ["numpy"] + [n for n in ("cpp", "numba", "cuda") if n in _AVAILABLE]


# ------------------------------------------------------------ the notebooks' loops (baselines)
def notebook_dreamcomp_epoch(w, full_input, perm, T_s, B, recon_vec, big_xi, xp=np):
    """Seed 002 In [4] (``dream_comp_recon_weights_custom_xi``): one epoch, line for line.

    The only changes: ``w``, the extended inputs ``full_input`` (n, D + C), the epoch's
    permutation and the vectors ``recon_vec`` / ``big_xi`` are arguments (so the run is
    comparable), tqdm and the drawing are gone, and ``xp`` is the array module (``cupy``
    for the notebook run on a GPU: what a user gets by swapping the import). Updates ``w``
    in place.
    """
    N = w.shape[0]
    inputs = full_input[perm]

    for i in range(T_s // B):
        v = inputs[i * B: (i + 1) * B]

        w_v = w @ v.T
        wins = xp.argmax(w_v, axis=0)

        win_mask = xp.zeros((N, B))
        win_mask[wins, xp.arange(B)] = 1
        win_mask /= xp.maximum(1, xp.sum(win_mask, axis=1)).reshape(-1, 1)

        v_update = win_mask @ v
        w_v_update = xp.sum(w_v * win_mask, axis=1).reshape(-1, 1)

        w += (v_update - (w_v_update * (w / recon_vec))) * big_xi
    return w


def notebook_krotov_epoch(synapses, M, perm, Num, eps, p, k, delta, prec, xp=np):
    """Seed 003 In [4]: the body of one epoch, line for line (``M = M[perm]`` then the
    minibatch loop), ``xp`` the array module as above. ``synapses`` is updated in place;
    returns it."""
    Ns, N = M.shape
    hid = synapses.shape[0]
    M = M[perm, :]
    for i in range(Ns // Num):
        inputs = xp.transpose(M[i * Num:(i + 1) * Num, :])
        sig = xp.sign(synapses)
        tot_input = xp.dot(sig * xp.absolute(synapses) ** (p - 1), inputs)

        y = xp.argsort(tot_input, axis=0)
        yl = xp.zeros((hid, Num))
        yl[y[hid - 1, :], xp.arange(Num)] = 1.0
        yl[y[hid - k], xp.arange(Num)] = -delta

        xx = xp.sum(xp.multiply(yl, tot_input), 1)
        ds = xp.dot(yl, xp.transpose(inputs)) - xp.multiply(xp.tile(xx.reshape(xx.shape[0], 1), (1, N)), synapses)

        nc = xp.amax(xp.absolute(ds))
        if nc < prec:
            nc = prec
        synapses += eps * xp.true_divide(ds, nc)
    return synapses


# ------------------------------------------------------------------------------ cases
def _case(name, n, slow=False, **kw):
    return pytest.param(dict(kw, n=n), id=name, marks=(pytest.mark.slow,) if slow else ())


#: DreamComp (seed 002's runs: R = 10, lr 0.006-0.008, label lr 0.1)
DC_CASES = [
    _case("N400-B100", SAMPLES, N=400, B=100, lr=0.006),
    _case("N1600-B500", SAMPLES, N=1600, B=500, lr=0.008),
    _case("N6400-B500", 6_000, True, N=6400, B=500, lr=0.006),
    _case("N1600-B500-epoch", EPOCH, True, N=1600, B=500, lr=0.008),
    _case("N6400-B500-epoch", EPOCH, True, N=6400, B=500, lr=0.006),
]
#: Krotov-Hopfield (seed 003's defaults; the paper's MNIST setting)
KH_CASES = [
    _case("hid100-p2-k2", SAMPLES, hid=100, p=2.0, k=2, B=100),
    _case("hid2000-p3-k7", SAMPLES, hid=2000, p=3.0, k=7, B=100),
    _case("hid2000-p3-k7-epoch", EPOCH, True, hid=2000, p=3.0, k=7, B=100),
]
DTYPES = ["float32", "float64"]
#: BLAS threads of the fast backends: the process's setting; one thread under the slow marker
THREADS = [pytest.param(None, id="blas-default"), pytest.param(1, id="blas-1", marks=pytest.mark.slow)]


@lru_cache(maxsize=None)
def data(n, seed=0):
    """Random inputs of the MNIST shape, ``X`` (n, 784) in [0, 1] and labels ``y`` (n,)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, D)), rng.integers(0, C, n)


@lru_cache(maxsize=None)
def perm(n, seed=1):
    return np.random.default_rng(seed).permutation(n)


def _batches(n, B):
    p = perm(n)
    return np.ascontiguousarray(p[: n // B * B].reshape(1, n // B, B))


def _threads():
    try:
        from threadpoolctl import threadpool_info
        n = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
        return int(max(n)) if n else None
    except Exception:
        return None


def record(benchmark, group, n, **info):
    info.update(samples_per_call=n, load_avg=os.getloadavg())
    info.setdefault("blas_threads", _threads())
    benchmark.extra_info.update(info)
    benchmark.group = group


def finish(benchmark, n):
    """After timing: samples/s and s per 60,000-sample epoch, from the median call."""
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None and stats.stats.median > 0:
        rate = n / stats.stats.median
        benchmark.extra_info.update(samples_per_s=rate, s_per_epoch=EPOCH / rate)


def tol(dtype):
    return dict(rtol=1e-9, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-4, atol=1e-6)


def _blas_limit(threads):
    if threads is None:
        import contextlib
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    import scipy.linalg.cython_blas  # noqa: F401  (numba's BLAS: loaded, so that it is limited too)
    return threadpool_limits(threads, user_api="blas")


def _blas_setting(mod, threads):
    """What the BLAS threads were: the limit, else the backend's own setting ("auto": chosen
    per batch by measurement), else the process's. The cpp backend runs its products on its
    own threads (``THREADS``: None = OpenMP's count), BLAS held to one."""
    if threads is not None:
        return threads
    if hasattr(mod, "THREADS"):
        return mod.THREADS or importlib.import_module("sparsedream_fast._core").max_threads()
    return getattr(mod, "BLAS_THREADS", None) or _threads()


def _hold_threads(monkeypatch, mod, threads):
    """Under the one-thread variant, the cpp backend's own threads are held to one too."""
    if threads is not None and hasattr(mod, "THREADS"):
        monkeypatch.setattr(mod, "THREADS", threads)


def _run(benchmark, fn, rounds_hint):
    """Time ``fn``: pytest-benchmark's loop for short calls, one pedantic round for epochs."""
    if rounds_hint:
        benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0)
    else:
        benchmark(fn)


# --------------------------------------------------------------------------- DreamComp
def _dc_inputs(case, dtype):
    X, y = data(case["n"])
    V = dc_ref.extend(X, y, C, dtype)
    zeta, eta = dc_ref.synapse_vectors(D, C, 10.0, case["lr"], 0.1, dtype)
    W0 = np.random.default_rng(2).uniform(0, 1, (case["N"], D + C)).astype(dtype)
    return V, zeta, eta, W0


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BATCH_BACKENDS)
@pytest.mark.parametrize("case", DC_CASES)
def test_dreamcomp(benchmark, case, backend, dtype, threads, monkeypatch):
    if backend == "numpy" and threads is not None:
        pytest.skip("the reference runs with the process's BLAS threads")
    mod = importlib.import_module(
        "sparsedream_fast.dreamcomp." + sdf.dreamcomp.model._IMPLEMENTED[backend])
    _hold_threads(monkeypatch, mod, threads)
    V, zeta, eta, W0 = _dc_inputs(case, dtype)
    batches = _batches(case["n"], case["B"])
    with _blas_limit(threads):
        # check (and warm up) on the first two batches
        W, Wr = W0.copy(), W0.copy()
        mod.fit(W, V, batches[:, :2], zeta, eta)
        dc_ref.fit(Wr, V, batches[:, :2], zeta, eta)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
        record(benchmark, f"dreamcomp {case['N']} neurons B={case['B']} n={case['n']}", case["n"],
               rule="B", backend=backend, dtype=dtype, N=case["N"], B=case["B"], D=D + C,
               blas_threads=_blas_setting(mod, threads))
        _run(benchmark, lambda: mod.fit(W0.copy(), V, batches, zeta, eta), case["n"] >= EPOCH)
    finish(benchmark, case["n"])


@pytest.mark.parametrize("case", DC_CASES)
def test_dreamcomp_notebook(benchmark, case):
    X, y = data(case["n"])
    V = dc_ref.extend(X, y, C, np.float64)  # = the notebook's full_input
    recon = np.ones(D + C)
    recon[-C:] = 10.0
    big_xi = np.full(D + C, case["lr"])
    big_xi[-C:] = 0.1
    W0 = np.random.default_rng(2).uniform(0, 1, (case["N"], D + C))
    record(benchmark, f"dreamcomp {case['N']} neurons B={case['B']} n={case['n']}", case["n"],
           rule="B", backend="notebook", dtype="float64", N=case["N"], B=case["B"], D=D + C)
    _run(benchmark, lambda: notebook_dreamcomp_epoch(W0.copy(), V, perm(case["n"]), case["n"], case["B"],
                                                     recon, big_xi), case["n"] >= EPOCH)
    finish(benchmark, case["n"])


# ---------------------------------------------------------------------- Krotov-Hopfield
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BATCH_BACKENDS)
@pytest.mark.parametrize("case", KH_CASES)
def test_krotov(benchmark, case, backend, dtype, threads, monkeypatch):
    if backend == "numpy" and threads is not None:
        pytest.skip("the reference runs with the process's BLAS threads")
    mod = importlib.import_module("sparsedream_fast.krotov." + sdf.krotov.model._IMPLEMENTED[backend])
    _hold_threads(monkeypatch, mod, threads)
    X = np.ascontiguousarray(data(case["n"])[0], dtype=dtype)
    W0 = np.random.default_rng(3).normal(0.0, 1.0, (case["hid"], D)).astype(dtype)
    batches = _batches(case["n"], case["B"])
    args = (case["p"], case["k"], 0.4, 0.02, 1e-30)
    with _blas_limit(threads):
        W, Wr = W0.copy(), W0.copy()
        mod.fit(W, X, batches[:, :3], *args)
        kh_ref.fit(Wr, X, batches[:, :3], *args)
        np.testing.assert_allclose(W, Wr, **tol(dtype))
        record(benchmark, f"krotov {case['hid']} hidden p={case['p']:g} k={case['k']} B={case['B']} "
               f"n={case['n']}", case["n"], rule="C", backend=backend, dtype=dtype, hid=case["hid"],
               B=case["B"], p=case["p"], k=case["k"], D=D, blas_threads=_blas_setting(mod, threads))
        _run(benchmark, lambda: mod.fit(W0.copy(), X, batches, *args), case["n"] >= EPOCH)
    finish(benchmark, case["n"])


@pytest.mark.parametrize("case", KH_CASES)
def test_krotov_notebook(benchmark, case):
    X = data(case["n"])[0]
    W0 = np.random.default_rng(3).normal(0.0, 1.0, (case["hid"], D))
    record(benchmark, f"krotov {case['hid']} hidden p={case['p']:g} k={case['k']} B={case['B']} "
           f"n={case['n']}", case["n"], rule="C", backend="notebook", dtype="float64",
           hid=case["hid"], B=case["B"], p=case["p"], k=case["k"], D=D)
    _run(benchmark, lambda: notebook_krotov_epoch(W0.copy(), X, perm(case["n"]), case["B"], 0.02, case["p"],
                                                  case["k"], 0.4, 1e-30), case["n"] >= EPOCH)
    finish(benchmark, case["n"])


# ------------------------------------------------------------------------ the baselines
def test_notebook_loops_are_the_rules():
    """The transcribed loops compute rules B and C (the reference, float64, same orders)."""
    X, y = data(600)
    p = perm(600)
    V = dc_ref.extend(X, y, C, np.float64)
    recon = np.ones(D + C)
    recon[-C:] = 10.0
    big_xi = np.full(D + C, 0.006)
    big_xi[-C:] = 0.1
    w0 = np.random.default_rng(2).uniform(0, 1, (50, D + C))
    w = notebook_dreamcomp_epoch(w0.copy(), V, p, 600, 100, recon, big_xi)
    zeta, eta = dc_ref.synapse_vectors(D, C, 10.0, 0.006, 0.1, np.float64)
    wr = w0.copy()
    dc_ref.fit(wr, V, _batches(600, 100), zeta, eta)
    np.testing.assert_allclose(w, wr, rtol=1e-12, atol=0)

    s0 = np.random.default_rng(3).normal(0.0, 1.0, (40, D))
    s = notebook_krotov_epoch(s0.copy(), X, p, 100, 0.02, 3.0, 5, 0.4, 1e-30)
    sr = s0.copy()
    kh_ref.fit(sr, X, _batches(600, 100), 3.0, 5, 0.4, 0.02, 1e-30)
    np.testing.assert_allclose(s, sr, rtol=1e-12, atol=1e-14)
