"""Every backend against the numpy reference, from identical states, for every option.

The reference (backend="numpy") is the specification. Same seed => same initial weights
and the same epoch orders on every backend, so a backend must reproduce the reference's
trajectory: float64 to 1e-9 relative over hundreds of steps, float32 to the stated
tolerance over short runs (see testing.py for why those tolerances).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedream_fast as sdf
from testing import ALL_BACKENDS, random_inputs, tol

D = 49  # 7 x 7 inputs keep the tests fast; D = 400 appears in the tapestry case


def _offbyone_box(rows, cols, ex, s):
    """The notebooks' lateral builder, off-by-one included (seed 001)."""
    out = []
    for y in range(rows):
        for x in range(cols):
            cur = np.zeros((rows, cols))
            cur[max(0, y - ex): min(rows - 1, y + ex + 1), max(0, x - ex): min(cols - 1, x + ex + 1)] = s
            out.append(cur.ravel())
    L = np.array(out)
    np.fill_diagonal(L, 0)
    return L


# name -> SparseDream keyword arguments (besides backend/dtype); each is one option set.
CASES = {
    "drive_noclip": dict(competition="drive", lateral=None, error_clip=None),
    "seed001_default": dict(competition="lateral", output="drive", lateral=sdf.lateral.box(2, 0.1), error_clip=1.0),
    "lateral_competition_out": dict(competition="lateral", output="competition", lateral=sdf.lateral.box(1, 0.05),
                                    error_clip=None, lr=0.01),
    "offbyone_dense": dict(competition="lateral", lateral=_offbyone_box(6, 6, 2, 0.1), error_clip=1.0),
    "offbyone_sparse": dict(competition="lateral", lateral=sp.csr_array(_offbyone_box(6, 6, 2, 0.1)), error_clip=1.0),
    "stencil_general": dict(competition="lateral", lateral=sdf.lateral.stencil(
        [[0.01, 0.02, 0.03], [0.04, 0.0, 0.06], [0.07, 0.08, 0.09]]), error_clip=1.0),
    "normalized_learned_bounds": dict(competition="normalized_lateral", output="competition",
                                      lateral=sdf.lateral.random(2, 0.0, 1.0), learn_lateral=True,
                                      w_max=0.5, clip_every=10, init=(0.0, 0.5), lr=0.01, error_clip=None),
    "normalized_fixed": dict(competition="normalized_lateral", lateral=sdf.lateral.box(2, 0.1), init=(0.0, 1.0),
                             lr=0.01),
    "mean_lateral_bounds_inf": dict(competition="mean_lateral", output="drive",
                                    lateral=sdf.lateral.normalized_box(1), w_max=np.inf, clip_every=7,
                                    init=(0.0, 0.5), lr=0.005, error_clip=None),
    # a fixed lateral with entries above w_max: the bounds clip it with W (docs/rules/sparsedream.md, step 10)
    "fixed_lateral_clipped": dict(competition="lateral", lateral=_offbyone_box(6, 6, 1, 0.8), w_max=0.5,
                                  clip_every=5, init=(0.0, 0.5), lr=0.01, error_clip=1.0),
    "weighted_average": dict(competition="weighted_average", output="competition", lateral=None,
                             init=(0.0, 1.0), lr=0.005, error_clip=None),
    "trace": dict(competition="lateral", lateral=sdf.lateral.box(2, 0.1), trace=0.5, error_clip=1.0, lr=0.03),
    "trace_learned_all_pairs": dict(competition="normalized_lateral", output="competition",
                                    lateral=sdf.lateral.random(None, 0.0, 0.5), learn_lateral=True,
                                    lateral_lr=0.02, trace=0.3, w_max=0.5, clip_every=25, init=(0.0, 0.5),
                                    lr=0.01, error_clip=None),
    "k1": dict(k=1, competition="lateral", lateral=sdf.lateral.box(2, 0.1)),
    "kN": dict(k=36, competition="drive", lateral=None, lr=0.002),
}


def _seed(case: str) -> int:
    """A stable seed per case (str hash() changes from one process to the next)."""
    return zlib.crc32(case.encode()) % 1000


def _pair(backend, dtype, seed=3, **kw):
    base = dict(n_inputs=D, grid=(6, 6), k=5, lr=0.05, dtype=dtype, seed=seed)
    base.update(kw)
    return (sdf.SparseDream(backend="numpy", **base), sdf.SparseDream(backend=backend, **base))


def _assert_same(ref, fast, dtype, steps):
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(fast.weights_, ref.weights_, rtol=rtol, atol=atol,
                               err_msg=f"weights differ after {steps} steps")
    np.testing.assert_allclose(fast.trace_, ref.trace_, rtol=rtol, atol=atol)
    if ref.lateral_ is not None:
        np.testing.assert_allclose(fast.lateral_.toarray(), ref.lateral_.toarray(), rtol=rtol, atol=atol)
    assert fast.n_steps_ == ref.n_steps_ == steps


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_fit_float64_matches_reference(backend, case):
    X = random_inputs(150, D, seed=_seed(case))
    ref, fast = _pair(backend, "float64", **CASES[case])
    shuffle = CASES[case].get("trace") is None  # the trace runs use the data in order
    ref.fit(X, epochs=2, shuffle=shuffle)
    fast.fit(X, epochs=2, shuffle=shuffle)
    _assert_same(ref, fast, "float64", 300)
    np.testing.assert_array_equal(fast.winners(X[:40]), ref.winners(X[:40]))


def _assert_winners_agree_f32(fast, ref, X):
    """float32 winners agree, except where two competition values lie within float32
    rounding of each other (a different summation order of the drive may then pick either):
    every neuron in one winner set and not the other must sit at the k-th value to 1e-5."""
    from sparsedream_fast.sparsedream import reference
    wf, wr = fast.winners(X), ref.winners(X)
    k = wr.shape[1]
    same = np.ones(X.shape[0], bool)
    for i in range(X.shape[0]):
        diff = set(wf[i]) ^ set(wr[i])
        if not diff:
            continue
        same[i] = False
        v = X[i].astype(np.float32)
        _, c = reference.competition(ref.weights_, v, ref._state.lateral, ref.config_)
        kth = np.sort(c)[::-1][k - 1]
        assert all(abs(c[j] - kth) <= 1e-5 * abs(kth) for j in diff), \
            f"sample {i}: winners {sorted(wf[i])} vs reference {sorted(wr[i])} differ beyond near-ties"
    assert same.mean() >= 0.9, "near-ties are rare on random data; this many means a real difference"
    return same


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_fit_float32_short_run_matches_reference(backend, case):
    X = random_inputs(40, D, seed=1 + _seed(case))
    ref, fast = _pair(backend, "float32", **CASES[case])
    ref.fit(X, epochs=1)
    fast.fit(X, epochs=1)
    _assert_same(ref, fast, "float32", 40)
    same = _assert_winners_agree_f32(fast, ref, X)
    rtol, atol = tol("float32")
    np.testing.assert_allclose(fast.transform(X)[same], ref.transform(X)[same], rtol=rtol, atol=atol)
    np.testing.assert_allclose(fast.reconstruct(X)[same], ref.reconstruct(X)[same], rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tapestry_frames_match_reference(backend, dtype):
    """Seed 001's setting (D = 400 tapestry frames) on a 10 x 10 map."""
    from sparsedream_fast.data import digit_tapestry_frames
    X, _ = digit_tapestry_frames(n_frames=120 if dtype == "float64" else 40, source="generated", seed=5)
    kw = dict(n_inputs=400, grid=(10, 10), k=5, lr=0.1, lateral=sdf.lateral.box(2, 0.1), error_clip=1.0,
              init=(0.15, 0.16), dtype=dtype, seed=11)
    ref = sdf.SparseDream(backend="numpy", **kw).fit(X, epochs=2)
    fast = sdf.SparseDream(backend=backend, **kw).fit(X, epochs=2)
    _assert_same(ref, fast, dtype, 2 * X.shape[0])


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_partial_fit_continues_like_reference(backend):
    """partial_fit keeps the trace across calls on every backend, as the reference does."""
    X = random_inputs(60, D, seed=9)
    ref, fast = _pair(backend, "float64", trace=0.5, lateral=sdf.lateral.box(1, 0.1),
                      w_max=np.inf, clip_every=9)
    for part in (X[:25], X[25:]):
        ref.partial_fit(part)
        fast.partial_fit(part)
    _assert_same(ref, fast, "float64", 60)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_callback_chunks_do_not_change_result(backend):
    """Running an epoch in chunks (progress bar, callbacks) gives the one-call result."""
    X = random_inputs(90, D, seed=4)
    kw = dict(trace=0.5, w_max=np.inf, clip_every=7, lateral=sdf.lateral.box(2, 0.1))
    _, whole = _pair(backend, "float64", **kw)
    _, chunked = _pair(backend, "float64", **kw)
    whole.fit(X, epochs=2)
    calls = []
    chunked.fit(X, epochs=2, callback=lambda m, e, s: calls.append((e, s)), callback_every=20)
    assert calls == [(e, s) for e in range(2) for s in (20, 40, 60, 80, 90)]
    np.testing.assert_allclose(chunked.weights_, whole.weights_, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_nonsquare_grid_and_large_radius(backend):
    X = random_inputs(80, D, seed=21)
    ref, fast = _pair(backend, "float64", grid=(3, 7), k=4, lateral=sdf.lateral.box(5, 0.05))
    ref.fit(X, epochs=1)
    fast.fit(X, epochs=1)
    _assert_same(ref, fast, "float64", 80)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_ties_go_to_lower_index(backend):
    """Identical rows tie exactly; the lower indices must win on every backend."""
    W0 = np.tile(np.random.default_rng(0).uniform(0.1, 0.2, D), (36, 1))
    X = random_inputs(5, D, seed=2)
    m = sdf.SparseDream(n_inputs=D, grid=(6, 6), k=3, lateral=sdf.lateral.box(1, 0.1), competition="drive",
                        init=W0, dtype="float64", backend=backend, seed=0)
    # lr so small that the single learning step leaves W bit-identical: all rows still tie.
    m.set_params(lr=1e-300).partial_fit(X[:1])
    np.testing.assert_array_equal(m.weights_, W0)
    np.testing.assert_array_equal(m.winners(X), np.tile([0, 1, 2], (5, 1)))
    # with the lateral in the competition, the interior neurons (8 neighbours) beat the edges,
    # and among the tied interior neurons the lower indices win: 7, 8, 9.
    m.set_params(competition="lateral")
    m2 = sdf.SparseDream(**{**m.get_params(), "competition": "lateral"}).partial_fit(X[:1])
    np.testing.assert_array_equal(m2.winners(X), np.tile([7, 8, 9], (5, 1)))
