"""sdf.ops on every usable backend: against the numpy reference and against hand-written numpy.

Tolerances: float64 rtol 1e-12 (one step, a few roundings of size eps = 1.1e-16 each).
float32 rtol 1e-5: a drive ``W v`` is a dot product over D = 400 terms; a backend that sums
in a different order (SIMD lanes, blocking) differs from numpy's order by a few ulp times
sqrt(D) = 20, i.e. about 6e-8 * 20 * a few ~ 5e-6 relative, and the update multiplies
a handful of such quantities once.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedream_fast as sdf
from sparsedream_fast import ops
from sparsedream_fast.sparsedream import reference as ref
from sparsedream_fast.sparsedream.config import Competition, Output, SparseDreamConfig, TrainState
from sparsedream_fast.sparsedream.model import backend_module


def _backend_params():
    """Usable backends (cuda excluded); one whose rule A module is missing is skipped, saying so."""
    out = []
    for name, info in sdf.backends().items():
        if not info.available or name == "cuda":
            continue
        try:
            backend_module(name)
            marks = ()
        except ImportError as exc:
            marks = pytest.mark.skip(reason=f"{name}: backends() reports it available but its rule A "
                                     f"module does not import ({exc})")
        out.append(pytest.param(name, marks=marks))
    return out


BACKENDS = _backend_params()
DTYPES = ["float64", "float32"]
RTOL = {"float64": 1e-12, "float32": 1e-5}
ATOL = {"float64": 1e-14, "float32": 1e-6}
D = 400
GRID = (6, 7)
N = GRID[0] * GRID[1]
MODES = ["drive", "lateral", "normalized_lateral", "mean_lateral", "weighted_average"]


def _close(actual, expected, dtype, **kw):
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=ATOL[dtype], **kw)


def _inputs(seed, dtype, n=N, d=D, lo=0.0, hi=1.0):
    rng = np.random.default_rng(seed)
    W = rng.uniform(lo, hi, (n, d)).astype(dtype)
    v = rng.random(d).astype(dtype)
    return W, v


def loops_box(grid, radius, strength):
    rows, cols = grid
    n = rows * cols
    L = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j and abs(i // cols - j // cols) <= radius and abs(i % cols - j % cols) <= radius:
                L[i, j] = strength
    return L


def _laterals():
    """name -> (lateral argument for ops, dense float64 matrix built independently)."""
    box = loops_box(GRID, 2, 0.1)
    nbox = loops_box(GRID, 1, 1.0)
    nbox = nbox / nbox.sum(axis=1, keepdims=True) * 0.8
    rng = np.random.default_rng(5)
    dense = rng.uniform(0, 0.2, (N, N)) * (rng.random((N, N)) < 0.15)
    np.fill_diagonal(dense, 0)
    return {
        "box": (sdf.lateral.box(2, 0.1), box),
        "normalized": (sdf.lateral.normalized_box(1, 0.8), nbox),
        "csr_dense_input": (dense, dense),
        "scipy_sparse": (sp.csr_array(dense), dense),
        "none": (None, np.zeros((N, N))),
    }


LATERALS = _laterals()


def hand_compete(W, v, mode, L, prec=1e-10):
    """docs/rules/sparsedream.md, steps 1-2 in float64, from the formulas."""
    W = W.astype(np.float64)
    v = v.astype(np.float64)
    p = W @ v
    q = p / np.maximum(W.sum(axis=1), prec)
    c = {"drive": p, "lateral": p + L @ p, "normalized_lateral": p + L @ q,
         "mean_lateral": (3 * q + L @ q) / 4,
         "weighted_average": (W @ (v * v)) / np.maximum(p, prec)}[mode]
    return p, c


def lexsort_topk(c, k):
    """Independent top-k: sort by (-c, index)."""
    c = np.asarray(c, dtype=np.float64)
    return np.lexsort((np.arange(c.size), -c))[:k]


# ---------------------------------------------------------------------------- topk
TIE_CASES = [
    ([1, 3, 3, 2, 3], 2, [1, 2]),
    ([1, 3, 3, 2, 3], 3, [1, 2, 4]),
    ([1, 3, 3, 2, 3], 5, [1, 2, 4, 3, 0]),        # k = N
    ([1, 3, 3, 2, 3], 1, [1]),                    # k = 1
    ([7, 7, 7, 7, 7, 7], 3, [0, 1, 2]),           # all equal
    ([7, 7, 7, 7, 7, 7], 6, [0, 1, 2, 3, 4, 5]),
    ([-1.0, -0.5, -0.5, -3.0], 2, [1, 2]),        # negatives
    ([0.0, -0.0, 0.0], 2, [0, 1]),                # signed zeros compare equal
    ([2.0, 1.0, 5.0, 5.0, 1.0, 2.0], 4, [2, 3, 0, 5]),
    ([1.0], 1, [0]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c,k,expected", TIE_CASES)
def test_topk_ties_to_lower_index(backend, dtype, c, k, expected):
    out = ops.topk(np.array(c, dtype=dtype), k, backend=backend)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_accepts_lists_and_ints(backend):
    np.testing.assert_array_equal(ops.topk([1, 3, 3, 2, 3], 2, backend=backend), [1, 2])
    np.testing.assert_array_equal(ops.topk(np.array([4, 9, 9, 0], np.int32), 3, backend=backend), [1, 2, 0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k", [(50, 1), (50, 7), (6400, 5), (300, 300), (1000, 999)])
def test_topk_random_with_many_ties(backend, dtype, n, k):
    rng = np.random.default_rng(n + k)
    for c in (rng.integers(0, 5, n).astype(dtype), rng.standard_normal(n).astype(dtype)):
        expected = lexsort_topk(c, k)
        np.testing.assert_array_equal(ops.topk(c, k, backend=backend), expected)
        np.testing.assert_array_equal(ref.topk(c, k), expected)


@pytest.mark.parametrize("c,k,expected", [([np.nan, 1.0, np.nan, 3.0, 2.0], 4, [3, 4, 1, 0]),
                                            ([np.nan] * 5, 3, [0, 1, 2]),
                                            ([1.0, np.nan, 3.0, 2.0, 5.0], 2, [4, 2])])
def test_reference_topk_ranks_nan_last_and_keeps_k(c, k, expected):
    """The reference always picks k winners, NaN after every number: a competition that
    overflowed to NaN (weighted average of inputs whose squares overflow) must not make a
    step with no winners, which trained on silently where the C++ and Numba fits stopped
    (tests/test_drive_block.py, the weighted-average divergence). ops.topk refuses NaN."""
    np.testing.assert_array_equal(ref.topk(np.array(c), k), expected)
    with pytest.raises(ValueError, match="NaN"):
        ops.topk(np.array(c), k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_does_not_modify_input(backend):
    c = np.random.default_rng(0).random(100)
    c0 = c.copy()
    ops.topk(c, 10, backend=backend)
    np.testing.assert_array_equal(c, c0)


# ------------------------------------------------------------------------- compete
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lat_name", list(LATERALS))
@pytest.mark.parametrize("mode", MODES)
def test_compete_matches_reference_and_formula(backend, dtype, lat_name, mode):
    W, v = _inputs(zlib.crc32(f"{lat_name}/{mode}".encode()), dtype)
    spec, dense = LATERALS[lat_name]
    W0 = W.copy()
    p, c = ops.compete(W, v, competition=mode, lateral=spec, grid=GRID, backend=backend)
    assert p.dtype == c.dtype == np.dtype(dtype)
    assert p.shape == c.shape == (N,)
    np.testing.assert_array_equal(W, W0)  # compete does not learn
    # the reference, from the same operator
    cfg = SparseDreamConfig(n_neurons=N, n_inputs=D, grid=GRID, k=1, lr=1.0,
                            competition=Competition[mode.upper()], dtype=np.dtype(dtype))
    op = sdf.lateral.resolve(spec, GRID, np.dtype(dtype))
    rp, rc = ref.competition(W, v, op, cfg)
    _close(p, rp, dtype)
    _close(c, rc, dtype)
    # and the formulas with the independently built dense matrix
    hp, hc = hand_compete(W, v, mode, dense)
    _close(p, hp, dtype)
    _close(c, hc, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["normalized_lateral", "mean_lateral"])
def test_compete_zero_row_gives_finite_values(backend, mode):
    """rowsum is guarded by prec: a zero row gives q = 0, not NaN (docs/design.md 2)."""
    W, v = _inputs(1, "float64")
    W[3] = 0.0
    p, c = ops.compete(W, v, competition=mode, lateral=sdf.lateral.box(1, 0.1), grid=GRID, backend=backend)
    assert np.isfinite(c).all()
    hp, hc = hand_compete(W, v, mode, loops_box(GRID, 1, 0.1))
    _close(c, hc, "float64")


@pytest.mark.parametrize("backend", BACKENDS)
def test_compete_accepts_operators(backend):
    W, v = _inputs(2, "float64")
    st = sdf.lateral.resolve(sdf.lateral.box(2, 0.1), GRID, np.float64)
    csr = st.to_csr()
    _, c1 = ops.compete(W, v, "lateral", lateral=st, grid=GRID, backend=backend)
    _, c2 = ops.compete(W, v, "lateral", lateral=csr, grid=GRID, backend=backend)
    _, c3 = ops.compete(W, v, "lateral", lateral=st.astype(np.float32), grid=GRID, backend=backend)
    _close(c1, hand_compete(W, v, "lateral", loops_box(GRID, 2, 0.1))[1], "float64")
    _close(c2, c1, "float64")
    _close(c3, c1, "float32")    # a float32 operator is cast to W's dtype (kernel 0.1 rounded)


# --------------------------------------------------------------------- reconstruct
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [0, 1, 5, N])
def test_reconstruct_matches_hand(backend, dtype, m):
    rng = np.random.default_rng(m)
    W, _ = _inputs(m + 10, dtype)
    idx = rng.permutation(N)[:m]
    vals = rng.uniform(0.1, 2.0, m).astype(dtype)
    W0 = W.copy()
    r = ops.reconstruct(W, idx, vals, backend=backend)
    assert r.dtype == np.dtype(dtype) and r.shape == (D,)
    expected = (vals.astype(np.float64)[:, None] * W[idx].astype(np.float64)).sum(axis=0)
    _close(r, expected, dtype)
    _close(r, ref.reconstruct(W, idx, vals), dtype)
    np.testing.assert_array_equal(W, W0)


# ---------------------------------------------------------------------- update_rows
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("error_clip", [None, 0.05])
def test_update_rows_touches_only_given_rows(backend, dtype, error_clip):
    rng = np.random.default_rng(3)
    W, v = _inputs(4, dtype, lo=0.1, hi=0.2)
    idx = np.array([17, 3, 40, 8])
    vals = rng.uniform(0.5, 1.5, 4).astype(dtype)
    r = ops.reconstruct(W, idx, vals, backend="numpy")
    W_before = W.copy()
    v0, r0, vals0 = v.copy(), r.copy(), vals.copy()
    e = ops.update_rows(W, idx, vals, v, r, lr=0.05, error_clip=error_clip, backend=backend)
    others = np.setdiff1d(np.arange(N), idx)
    np.testing.assert_array_equal(W[others], W_before[others])   # bit-identical
    # hand formula in float64
    e_hand = v.astype(np.float64) - r.astype(np.float64)
    if error_clip is not None:
        e_hand = np.clip(e_hand, -error_clip, error_clip)
        assert np.abs(e_hand).max() == error_clip                # the clip is active in this case
    g = e_hand / np.maximum(r.astype(np.float64), 1e-10)
    Wh = W_before.astype(np.float64)
    Wh[idx] += (0.05 * vals.astype(np.float64))[:, None] * Wh[idx] * g
    _close(e, e_hand, dtype)
    _close(W[idx], Wh[idx], dtype)
    assert not np.array_equal(W[idx], W_before[idx])
    # the reference gives the same
    Wr = W_before.copy()
    ref.update_rows(Wr, idx, vals, v, r, 0.05, error_clip, 1e-10)
    _close(W, Wr, dtype)
    # inputs other than W are not written
    np.testing.assert_array_equal(v, v0)
    np.testing.assert_array_equal(r, r0)
    np.testing.assert_array_equal(vals, vals0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_rows_zero_reconstruction_guarded(backend):
    """r = 0 somewhere: the division uses max(r, prec), so results stay finite."""
    W, v = _inputs(6, "float64", lo=0.1, hi=0.2)
    r = np.zeros(D)
    ops.update_rows(W, [0], [1e-12], v, r, lr=1e-3, error_clip=1.0, backend=backend)
    assert np.isfinite(W).all()


# ----------------------------------------------------------------------------- step
STEP_CASES = {
    "drive_none": dict(competition="drive", lateral=None),
    "lateral_box_clip": dict(competition="lateral", lateral=sdf.lateral.box(2, 0.1), error_clip=1.0),
    "lateral_out_competition": dict(competition="lateral", output="competition", lateral=sdf.lateral.box(1, 0.05)),
    "normalized_csr": dict(competition="normalized_lateral", lateral="dense"),
    "mean_normalized_box": dict(competition="mean_lateral", lateral=sdf.lateral.normalized_box(1)),
    "weighted_average": dict(competition="weighted_average", output="competition", lateral=None),
}


def _step_args(case):
    kw = dict(STEP_CASES[case])
    if isinstance(kw.get("lateral"), str):
        kw["lateral"] = LATERALS["csr_dense_input"][0]
    return kw


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trace", [None, 0.5])
@pytest.mark.parametrize("case", list(STEP_CASES))
def test_step_matches_reference_step(backend, dtype, trace, case):
    kw = _step_args(case)
    rng = np.random.default_rng(8)
    W, _ = _inputs(9, dtype, lo=0.15, hi=0.16)
    vs = rng.random((4, D)).astype(dtype)
    Wr = W.copy()
    cfg = SparseDreamConfig(
        n_neurons=N, n_inputs=D, grid=GRID, k=4, lr=0.05,
        competition=Competition[kw["competition"].upper()],
        output=Output[kw.get("output", "drive").upper()],
        error_clip=kw.get("error_clip"), trace=trace, dtype=np.dtype(dtype))
    state = TrainState(W=Wr, lateral=sdf.lateral.resolve(kw.get("lateral"), GRID, np.dtype(dtype)),
                       trace=np.zeros(N, dtype))
    o = np.zeros(N, dtype)
    for v in vs:   # a few steps, so the trace carries earlier winners
        win = ops.step(W, v, k=4, lr=0.05, grid=GRID, trace=trace, trace_state=o if trace else None,
                       backend=backend, **kw)
        rwin = ref.step(state, v, cfg)
        np.testing.assert_array_equal(win, rwin)
        _close(W, Wr, dtype)
        if trace is not None:
            _close(o, state.trace, dtype)
    assert not np.array_equal(W, _inputs(9, dtype, lo=0.15, hi=0.16)[0])
    if trace is not None:
        assert np.count_nonzero(o) > 4     # earlier winners still decaying in the trace


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_step_equals_composed_ops(backend, dtype):
    """The module docstring's hand-written step is the fused step."""
    W, v = _inputs(12, dtype, lo=0.15, hi=0.16)
    W2 = W.copy()
    W_init = W.copy()
    box = sdf.lateral.box(2, 0.1)
    win = ops.step(W, v, k=5, lr=0.1, competition="lateral", lateral=box, grid=GRID, error_clip=1.0, backend=backend)
    p, c = ops.compete(W2, v, competition="lateral", lateral=box, grid=GRID, backend=backend)
    w2 = ops.topk(c, 5, backend=backend)
    r = ops.reconstruct(W2, w2, p[w2], backend=backend)
    ops.update_rows(W2, w2, p[w2], v, r, lr=0.1, error_clip=1.0, backend=backend)
    np.testing.assert_array_equal(win, w2)
    # the winners of the formula on the weights before the step (no near-ties at these sizes)
    np.testing.assert_array_equal(win, lexsort_topk(hand_compete(W_init, v, "lateral", loops_box(GRID, 2, 0.1))[1], 5))
    _close(W, W2, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_trace_state_in_place_and_drop(backend):
    """Trace entries below 1e-12 of the largest become exactly 0 (docs/design.md 5)."""
    W, v = _inputs(13, "float64", lo=0.15, hi=0.16)
    o = np.zeros(N)
    o[0] = 1.0
    o[1] = 1e-13          # below 1e-12 * max|o| after the decay: dropped
    ops.step(W, v, k=3, lr=0.01, competition="drive", trace=0.5, trace_state=o, backend=backend)
    assert o[1] == 0.0
    assert o[0] != 0.0 and np.count_nonzero(o) >= 3


# ------------------------------------------------------------------------ bad input
@pytest.fixture
def Wv():
    return _inputs(0, "float64")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_raise_clearly(backend, Wv):
    W, v = Wv
    W0 = W.copy()
    b = dict(backend=backend)
    # wrong lengths
    with pytest.raises(ValueError, match=f"v must have length {D}, got {D + 1}"):
        ops.compete(W, np.zeros(D + 1), **b)
    with pytest.raises(ValueError, match="vals must have length 2, got 3"):
        ops.reconstruct(W, [0, 1], [1.0, 2.0, 3.0], **b)
    with pytest.raises(ValueError, match=f"r must have length {D}"):
        ops.update_rows(W, [0], [1.0], v, np.zeros(D - 1), lr=0.1, **b)
    with pytest.raises(ValueError, match=f"v must have length {D}"):
        ops.step(W, v[:10], k=2, lr=0.1, **b)
    with pytest.raises(ValueError, match="v must be 1-D"):
        ops.compete(W, v[None, :], **b)
    # repeated idx / out of range
    with pytest.raises(ValueError, match="must not repeat"):
        ops.reconstruct(W, [3, 1, 3], [1.0, 1.0, 1.0], **b)
    with pytest.raises(ValueError, match="must not repeat"):
        ops.update_rows(W, [2, 2], [1.0, 1.0], v, v, lr=0.1, **b)
    for bad in ([N], [-1], [0, N + 5]):
        with pytest.raises(ValueError, match=rf"idx must lie in \[0, {N}\)"):
            ops.reconstruct(W, bad, np.ones(len(bad)), **b)
        with pytest.raises(ValueError, match=rf"idx must lie in \[0, {N}\)"):
            ops.update_rows(W, bad, np.ones(len(bad)), v, v, lr=0.1, **b)
    with pytest.raises(ValueError, match="idx must be 1-D"):
        ops.reconstruct(W, [[0, 1]], [1.0, 1.0], **b)
    # NaN / inf
    vn = v.copy()
    vn[5] = np.nan
    with pytest.raises(ValueError, match=r"v contains 1 NaN or inf"):
        ops.compete(W, vn, **b)
    with pytest.raises(ValueError, match=r"v contains 1 NaN or inf"):
        ops.step(W, vn, k=2, lr=0.1, **b)
    with pytest.raises(ValueError, match=r"c contains 1 NaN or inf"):
        ops.topk([1.0, np.inf, 0.0], 1, **b)
    with pytest.raises(ValueError, match=r"vals contains 1 NaN or inf"):
        ops.reconstruct(W, [0], [np.nan], **b)
    with pytest.raises(ValueError, match=r"r contains 1 NaN or inf"):
        ops.update_rows(W, [0], [1.0], v, vn, lr=0.1, **b)
    # finite in W's dtype: 1e300 is a finite float64 and an inf float32 (checked after the cast)
    W32 = W.astype(np.float32)
    big = v.astype(np.float64)
    big[3] = 1e300
    with pytest.raises(ValueError, match=r"v contains 1 NaN or inf value\(s\) as float32"):
        ops.compete(W32, big, **b)
    with pytest.raises(ValueError, match=r"vals contains 1 NaN or inf value\(s\) as float32"):
        ops.reconstruct(W32, [0], np.array([1e300]), **b)
    ops.compete(W, big, **b)      # (finite as float64)
    # non-numeric
    with pytest.raises(TypeError, match="c must hold real numbers"):
        ops.topk(["a", "b"], 1, **b)
    with pytest.raises(TypeError, match="v must hold real numbers"):
        ops.compete(W, v.astype(complex), **b)
    # k
    with pytest.raises(ValueError, match="k must be <= 5"):
        ops.topk(np.arange(5.0), 6, **b)
    with pytest.raises(ValueError, match="k must be >= 1"):
        ops.topk(np.arange(5.0), 0, **b)
    with pytest.raises(TypeError, match="k must be an integer"):
        ops.topk(np.arange(5.0), 2.0, **b)
    with pytest.raises(ValueError, match=f"k must be between 1 and the number of neurons N={N}"):
        ops.step(W, v, k=N + 1, lr=0.1, **b)
    # scalars and choices
    with pytest.raises(ValueError, match="lr must be > 0"):
        ops.update_rows(W, [0], [1.0], v, v, lr=0.0, **b)
    with pytest.raises(ValueError, match="lr must be > 0"):
        ops.step(W, v, k=2, lr=-0.1, **b)
    with pytest.raises(ValueError, match="error_clip must be > 0"):
        ops.update_rows(W, [0], [1.0], v, v, lr=0.1, error_clip=0.0, **b)
    with pytest.raises(ValueError, match="prec must be > 0"):
        ops.compete(W, v, prec=0.0, **b)
    with pytest.raises(ValueError, match="trace must be <= 1"):
        ops.step(W, v, k=2, lr=0.1, trace=1.5, trace_state=np.zeros(N), **b)
    with pytest.raises(ValueError, match="unknown competition 'best'"):
        ops.compete(W, v, competition="best", **b)
    with pytest.raises(ValueError, match="unknown output 'both'"):
        ops.step(W, v, k=2, lr=0.1, output="both", **b)
    # grid / lateral
    with pytest.raises(ValueError, match=f"has 40 neurons but W has N={N}"):
        ops.compete(W, v, lateral=sdf.lateral.box(1), grid=(5, 8), **b)
    with pytest.raises(ValueError, match="grid rows must be >= 1"):
        ops.compete(W, v, grid=(-6, -7), **b)
    with pytest.raises(ValueError, match=f"lateral operator has N=9, W has N={N}"):
        ops.compete(W, v, lateral=sdf.lateral.resolve(sdf.lateral.box(1), (3, 3), np.float64), grid=GRID, **b)
    with pytest.raises(ValueError, match=r"shape \(N, N\)"):
        ops.compete(W, v, lateral=np.zeros((N - 1, N - 1)), grid=GRID, **b)
    with pytest.raises(ValueError, match="fixed lateral"):
        ops.compete(W, v, lateral=sdf.lateral.random(1), grid=GRID, **b)
    # trace_state
    with pytest.raises(ValueError, match="trace_state must be"):
        ops.step(W, v, k=2, lr=0.1, trace=0.5, **b)
    with pytest.raises(ValueError, match="trace_state must be"):
        ops.step(W, v, k=2, lr=0.1, trace=0.5, trace_state=np.zeros(N, np.float32), **b)
    with pytest.raises(ValueError, match="trace_state must be"):
        ops.step(W, v, k=2, lr=0.1, trace=0.5, trace_state=np.zeros(N + 1), **b)
    # nothing above touched W
    np.testing.assert_array_equal(W, W0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_weights_raise(backend, Wv):
    W, v = Wv
    Wt = np.asfortranarray(W)
    strided = np.zeros((N, 2 * D), W.dtype)[:, ::2]
    strided[:] = W
    readers = (lambda W: ops.compete(W, v, backend=backend),
               lambda W: ops.reconstruct(W, [0], [1.0], backend=backend))
    writers = (lambda W: ops.update_rows(W, [0], [1.0], v, v, lr=0.1, backend=backend),
               lambda W: ops.step(W, v, k=2, lr=0.1, backend=backend))
    for f in readers:        # W only read: any layout, any array-like, same results
        want = f(W)
        for other in (Wt, strided, W.tolist() if W.dtype == np.float64 else Wt, memoryview(W)):
            got = f(other)
            for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
                np.testing.assert_array_equal(a, b)
    for f in writers:        # W updated in place: the caller's own C-contiguous numpy array
        with pytest.raises(ValueError, match="W must be C-contiguous"):
            f(Wt)
        with pytest.raises(ValueError, match="W must be C-contiguous"):
            f(strided)
        with pytest.raises(TypeError, match="W must be a numpy array"):
            f(W.tolist())
        ro = W.copy()
        ro.setflags(write=False)
        with pytest.raises(ValueError, match="W must be writeable"):
            f(ro)
    for f in readers + writers:
        with pytest.raises(ValueError, match="W must be 2-D"):
            f(W[0])
        with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
            f(W.astype(np.float16))
        with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
            f((W * 10).astype(np.int64))


def test_bad_backend_raises(Wv):
    W, v = Wv
    with pytest.raises(ValueError, match="unknown backend 'fortran'"):
        ops.compete(W, v, backend="fortran")
    with pytest.raises(TypeError, match="backend must be a string"):
        ops.topk([1.0, 2.0], 1, backend=None)
    for name, info in sdf.backends().items():
        if not info.available:
            with pytest.raises(ValueError, match=f"backend '{name}' is not available here"):
                ops.topk([1.0, 2.0], 1, backend=name)


def test_fractional_idx_rejected(Wv):
    W, _ = Wv
    with pytest.raises((TypeError, ValueError), match="idx"):
        ops.reconstruct(W, [0.7, 2.2], [1.0, 1.0], backend="numpy")
