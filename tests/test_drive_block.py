"""Rule A's blocked drive over nonzero inputs (C++ and Numba fits) against the reference.

The C++ fit (drive_block.hpp) and the Numba fit (``_numba._block_product``) compute the drives of B frames per pass over W, each over its frame's nonzero
inputs only, and recomputes the rows updated since the block began. These tests force every
path (a dense pass every step, small and large blocks) on inputs that exercise it: sparse
frames, dense frames, all-zero frames, frames with one nonzero, the digit tapestry, every
option set of test_backends.py, weights that are not finite, and block boundaries that fall
on clips. float64 must equal the reference to the tests' tolerance; the drive itself must not
depend on the block size, on chunked calls or on the thread count (the same bits).
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsedream_fast as sdf
from testing import FAST_BACKENDS, tol
from test_backends import CASES, D, _seed

BLOCKS = [0, 1, 3, 16, 256]  # 0: dense pass every step; 1: a block per frame
_BACKENDS = [pytest.param(b, marks=() if b in FAST_BACKENDS else pytest.mark.skip(reason=f"{b} is not usable here"))
             for b in ("cpp", "numba")]
needs_cpp = pytest.mark.skipif("cpp" not in FAST_BACKENDS, reason="the C++ backend is not built")


@pytest.fixture(params=_BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def block(monkeypatch, backend):
    """Set the backend's frames per block for the test (restored afterwards)."""
    from sparsedream_fast.sparsedream.model import backend_module
    mod = backend_module(backend)

    def set_block(b):
        monkeypatch.setattr(mod, "BLOCK", b)
    return set_block


def _frames(kind, n, d, seed):
    """Inputs in [0, 1] of one kind: sparse (80% zeros), dense, zeros (all-zero frames and frames
    with a single nonzero among sparse ones)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    if kind == "dense":
        return X
    X[rng.random((n, d)) < 0.8] = 0.0
    if kind == "zeros":
        X[::4] = 0.0                       # all-zero frames
        one = np.arange(1, n, 4)
        X[one] = 0.0
        X[one, rng.integers(0, d, one.size)] = rng.random(one.size) + 0.5   # one nonzero each
    return X


_REF = {}


def _kw(case, dtype, **extra):
    kw = dict(n_inputs=D, grid=(6, 6), k=5, lr=0.05, dtype=dtype, seed=3)
    kw.update(CASES[case])
    kw.update(extra)
    return kw


def _reference(case, kind, dtype, epochs):
    key = (case, kind, dtype, epochs)
    if key not in _REF:
        X = _frames(kind, 120, D, _seed(case) + 17)
        m = sdf.SparseDream(**_kw(case, dtype, backend="numpy"))
        shuffle = CASES[case].get("trace") is None
        m.fit(X, epochs=epochs, shuffle=shuffle)
        _REF[key] = (X, m)
    return _REF[key]


def _fit(backend, case, X, dtype, epochs, **extra):
    m = sdf.SparseDream(**_kw(case, dtype, backend=backend))
    shuffle = CASES[case].get("trace") is None
    return m.fit(X, epochs=epochs, shuffle=shuffle, **extra)


def _assert_like(fast, ref, dtype):
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(fast.weights_, ref.weights_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(fast.trace_, ref.trace_, rtol=rtol, atol=atol)
    if ref.lateral_ is not None:
        np.testing.assert_allclose(fast.lateral_.toarray(), ref.lateral_.toarray(), rtol=rtol, atol=atol)


# weighted_average on a frame with one nonzero input d gives c_n = (W_nd v_d^2) / (W_nd v_d),
# that is v_d for every neuron up to one rounding: all N neurons tie, and the winners are
# whatever the last bit of each drive makes them (the dense C++ pass and BLAS differ there
# too). That case has no well-defined winners; every other case does.
_KINDS = [(c, k) for c in CASES for k in ("sparse", "zeros", "dense") if (c, k) != ("weighted_average", "zeros")]


@pytest.mark.parametrize("case,kind", _KINDS)
def test_every_block_size_matches_reference_float64(backend, block, case, kind):
    X, ref = _reference(case, kind, "float64", 2)
    for b in BLOCKS:
        block(b)
        fast = _fit(backend, case, X, "float64", 2)
        _assert_like(fast, ref, "float64")
        np.testing.assert_array_equal(fast.winners(X[:30]), ref.winners(X[:30]), err_msg=f"block {b}")


@pytest.mark.parametrize("case", ["seed001_default", "trace", "weighted_average", "normalized_learned_bounds"])
def test_blocked_float32_matches_reference(backend, block, case):
    X, ref = _reference(case, "sparse", "float32", 1)
    for b in (0, 16):
        block(b)
        _assert_like(_fit(backend, case, X, "float32", 1), ref, "float32")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["seed001_default", "trace", "weighted_average", "mean_lateral_bounds_inf",
                                  "trace_learned_all_pairs"])
def test_drive_does_not_depend_on_block_or_chunks(backend, block, case, dtype):
    """Every blocked run gives the same bits: blocks of 3, 16 or 256 frames, one call or calls
    of 7 steps (blocks then start elsewhere)."""
    X = _frames("sparse", 90, D, 5)
    runs = []
    for b in (3, 16, 256):
        block(b)
        runs.append(_fit(backend, case, X, dtype, 2).weights_)
    block(16)
    runs.append(_fit(backend, case, X, dtype, 2, callback=lambda *a: None, callback_every=7).weights_)
    for W in runs[1:]:
        np.testing.assert_array_equal(W, runs[0])


@needs_cpp
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["seed001_default", "trace", "weighted_average", "trace_learned_all_pairs"])
def test_cpp_blocked_drive_does_not_depend_on_threads(case, dtype):
    """One thread or two on the team (the automatic choice keeps a map this small on one): the
    same bits."""
    from sparsedream_fast import _core
    from sparsedream_fast.sparsedream import _cpp
    X = _frames("sparse", 90, D, 5)
    m = sdf.SparseDream(**_kw(case, dtype, backend="cpp"))
    m.fit(X[:1], epochs=1)
    st = m._state
    W0, L0 = st.W.copy(), None if st.lateral is None or not hasattr(st.lateral, "data") else st.lateral.data.copy()
    order = np.arange(X.shape[0], dtype=np.int64)[None, :]
    Xc = np.ascontiguousarray(X, dtype=dtype)
    out = []
    for nt in (1, 2):
        st.W[...] = W0
        st.trace[...] = 0
        if L0 is not None:
            st.lateral.data[...] = L0
        _core.sparsedream_fit(st.W, st.trace, Xc, order, m.config_.native_dict(), n_threads=nt, block=16,
                              **_cpp._lateral_args(st.lateral, np.dtype(dtype), learn=_cpp._writes_lateral(m.config_)))
        out.append(st.W.copy())
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tapestry_frames_blocked(backend, block, dtype):
    """D = 400 digit-tapestry frames (81% zeros), a 12 x 12 map: the tiles' SIMD paths with
    full and partial tiles (144 neurons), blocks crossing the epoch boundary."""
    from sparsedream_fast.data import digit_tapestry_frames
    X, _ = digit_tapestry_frames(n_frames=100 if dtype == "float64" else 40, source="generated", seed=5)
    assert (X == 0).mean() > 0.5
    kw = dict(n_inputs=400, grid=(12, 12), k=5, lr=0.1, lateral=sdf.lateral.box(2, 0.1), error_clip=1.0,
              init=(0.15, 0.16), dtype=dtype, seed=11)
    ref = sdf.SparseDream(backend="numpy", **kw).fit(X, epochs=2)
    for b in (0, 64):
        block(b)
        _assert_like(sdf.SparseDream(backend=backend, **kw).fit(X, epochs=2), ref, dtype)


@pytest.mark.parametrize("level", ["scalar", "avx2", "avx512"])
def test_every_simd_level(backend, block, level):
    """The tile kernels of each SIMD level (and the scalar one) against the reference; D = 37
    leaves a tail after the vector-wide transposes."""
    from sparsedream_fast import _core
    before = _core.simd_level()
    got = _core.set_simd_level(level)
    try:
        if got != level:
            pytest.skip(f"this CPU has no {level}")
        d = 37
        X = _frames("sparse", 60, d, 8)
        kw = dict(n_inputs=d, grid=(7, 11), k=4, lr=0.05, lateral=sdf.lateral.box(1, 0.1), error_clip=1.0,
                  dtype="float64", seed=2, w_max=0.5, clip_every=9, init=(0.0, 0.6))
        ref = sdf.SparseDream(backend="numpy", **kw).fit(X, epochs=2)
        for dt in ("float64", "float32"):
            ref_d = ref if dt == "float64" else sdf.SparseDream(backend="numpy", **{**kw, "dtype": dt}).fit(X, epochs=2)
            block(16)
            _assert_like(sdf.SparseDream(backend="cpp", **{**kw, "dtype": dt}).fit(X, epochs=2), ref_d, dt)
    finally:
        _core.set_simd_level(before)


def _fit_outcome(m, X, **fit_kw):
    """Fit m; return (W, trace, steps done, step of the DivergenceError or None)."""
    try:
        m.fit(X, **fit_kw)
        err = None
    except sdf.DivergenceError as e:
        err = e.step
    return m.weights_.copy(), m.trace_.copy(), m.n_steps_, err


def test_nonfinite_weights_are_not_skipped(backend, block):
    """A weight that is inf in a column where the frames are zero: the reference's drive is NaN
    there (inf * 0), so the blocked drive must sum that tile over every input, not only the
    nonzeros. That row's other weights are large: with its drive NaN it never wins (the
    reference's ranking), while a drive that skipped the zero input would make it win and its
    update (inf) stop the fit at step 0. The blocked run must be the dense pass's run: every
    step, the same weights."""
    from sparsedream_fast.sparsedream import reference
    X = _frames("sparse", 40, D, 3)
    col = 11
    X[:, col] = 0.0
    W0 = np.random.default_rng(0).uniform(0.1, 0.2, (36, D))
    W0[7] = 5.0
    W0[7, col] = np.inf
    kw = dict(n_inputs=D, grid=(6, 6), k=3, lr=0.05, lateral=None, competition="drive", dtype="float64", seed=0)
    m0 = sdf.SparseDream(backend="numpy", **kw)
    with np.errstate(invalid="ignore"):
        p, _ = reference.competition(W0, X[0], None, m0._config(D))
    assert np.isnan(p[7]) and np.isfinite(np.delete(p, 7)).all()
    runs = []
    for b in (0, 16):
        block(b)
        m = sdf.SparseDream(backend=backend, **kw)
        m._check_init = lambda cfg: W0  # the model refuses a non-finite init; the kernel must cope
        runs.append(_fit_outcome(m, X, epochs=2, shuffle=False))
    assert runs[1][2:] == runs[0][2:] == (2 * X.shape[0], None)
    np.testing.assert_array_equal(np.isfinite(runs[1][0]), np.isfinite(runs[0][0]))
    for a, b in zip(runs[1][:2], runs[0][:2]):  # equal_nan: NaN where the other has NaN
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    assert np.isinf(runs[0][0][7, col])


_WILD = dict(lr=3e3, error_clip=None)


def _ramp(X, dtype):
    """X with frame t scaled by 10**(t E / n), up to near the dtype's largest value (E = 37 for
    float32, 300 for float64): a multiplicative update keeps nonnegative weights bounded, so
    it is the growing inputs that overflow the drive, the reconstruction or the weighted
    average's v * v, late in the epoch (steps 155-299 here) and inside a block."""
    E = 37 if dtype == "float32" else 300
    return X * 10.0 ** (np.arange(X.shape[0])[:, None] * E / X.shape[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["seed001_default", "trace", "normalized_learned_bounds", "weighted_average"])
def test_blocked_fit_stops_at_the_first_nonfinite_step(backend, block, case, dtype):
    """A fit that diverges stops before the first step whose update is not finite, with the
    state of the step before, whatever the block: the blocked drive (blocks of 1, 3, 16, 256
    frames, so the stop falls inside a block) stops at the same step as the dense pass and as
    the reference, with the same state (float64: the tests' tolerance; float32 sums the drive
    in another order, so there only the step is compared)."""
    X = _ramp(_frames("sparse", 300, D, 9), dtype)
    kw = _kw(case, dtype, backend=backend, **_WILD)
    runs = {}
    for b in BLOCKS:
        block(b)
        runs[b] = _fit_outcome(sdf.SparseDream(**kw), X, epochs=1, shuffle=False)
    W0, o0, n0, err0 = runs[0]
    assert err0 is not None and 0 < n0 < 300 and err0 == n0, (n0, err0)
    assert np.isfinite(W0).all() and np.isfinite(o0).all()
    for b in BLOCKS[1:]:
        W, o, n, err = runs[b]
        assert (n, err) == (n0, err0), f"block {b}"
        if dtype == "float32":
            continue
        rtol, atol = tol(dtype)
        np.testing.assert_allclose(W, W0, rtol=rtol, atol=atol, err_msg=f"block {b}")
        np.testing.assert_allclose(o, o0, rtol=rtol, atol=atol, err_msg=f"block {b}")
    if dtype == "float64":
        Wr, orr, nr, errr = _fit_outcome(sdf.SparseDream(**{**kw, "backend": "numpy"}), X, epochs=1, shuffle=False)
        assert (nr, errr) == (n0, err0)
        rtol, atol = tol(dtype)
        np.testing.assert_allclose(W0, Wr, rtol=rtol, atol=atol)


@needs_cpp
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cpp_dirty_rows_split_over_threads(dtype):
    """A 20 x 20 map with k = 8 and blocks of 128 frames: late in a block hundreds of rows are
    dirty, more than the 96 from which the C++ team recomputes them in parallel. Two threads
    give the bits of one, and float64 equals the reference."""
    from sparsedream_fast import _core
    from sparsedream_fast.data import digit_tapestry_frames
    from sparsedream_fast.sparsedream import _cpp
    X, _ = digit_tapestry_frames(n_frames=300, source="generated", seed=2)
    X = np.ascontiguousarray(X, dtype=dtype)
    kw = dict(n_inputs=400, grid=(20, 20), k=8, lr=0.1, lateral=sdf.lateral.box(2, 0.1), error_clip=1.0,
              init=(0.15, 0.16), dtype=dtype, seed=4)
    m = sdf.SparseDream(backend="cpp", **kw).fit(X[:1], epochs=1, shuffle=False)
    st = m._state
    W0, o0 = st.W.copy(), st.trace.copy()
    order = np.arange(1, X.shape[0], dtype=np.int64)[None, :]
    lat = _cpp._lateral_args(st.lateral, np.dtype(dtype), learn=False)

    def fit(order, nt):
        st.W[...] = W0
        st.trace[...] = o0
        _core.sparsedream_fit(st.W, st.trace, X, order, m.config_.native_dict(), n_threads=nt, block=128, **lat)
        return st.W.copy()

    out = [fit(order, nt) for nt in (1, 2)]
    np.testing.assert_array_equal(out[0], out[1])
    # the rows the threads split at the block's last frame: those its first 126 frames updated
    assert np.any(fit(order[:, :126], 1) != W0, axis=1).sum() > 96
    if dtype == "float64":
        ref = sdf.SparseDream(backend="numpy", **kw).fit(X, epochs=1, shuffle=False)
        rtol, atol = tol(dtype)
        np.testing.assert_allclose(out[1], ref.weights_, rtol=rtol, atol=atol)
