"""Rule A's multiplicative update never changes a weight's sign (docs/rules/sparsedream.md,
"Numerics"): nonnegative weights on nonnegative inputs stay nonnegative, finite and bounded,
on every backend, equal to the reference.

Before the fix, the factor ``1 + lr * o_j * g_d`` went negative whenever a winner's drive
exceeded ``1 / lr`` at a pixel its reconstruction overshot, pushing the weight below 0; a
later step with ``r_d <= 0`` there took ``max(r_d, prec) = prec`` and multiplied that weight
by about ``lr * o_j / prec`` (1e9) per win, up to inf and NaN: the float32 40 x 40 demo's NaN.
"""
from __future__ import annotations

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast.sparsedream import reference
from testing import DTYPES, rule_backends, tol


def _model(backend, dtype, **kw):
    # drives of ~10-20 (D = 64 pixels near 0.3 times inputs in [0, 1]) against 1 / lr = 2
    p = dict(n_inputs=64, grid=(4, 4), k=3, lr=0.5, competition="lateral", output="drive",
             lateral=sdf.lateral.box(1, 0.1), error_clip=1.0, init=(0.25, 0.35), dtype=dtype,
             backend=backend, seed=0)
    p.update(kw)
    return sdf.SparseDream(**p)


def _data(n=400):
    rng = np.random.default_rng(5)
    X = rng.random((n, 64))
    X[X < 0.6] = 0   # sparse frames, like digits: many pixels a winner's reconstruction overshoots
    return X


CASES = [{}, dict(trace=0.5), dict(k=40, grid=(8, 8)),
         dict(lateral=sdf.lateral.random(radius=1), learn_lateral=True, competition="normalized_lateral")]
IDS = ["plain", "trace", "blocked_update", "learned_lateral"]


def test_sign_kept():
    w = np.array([0.5, 0.5, -0.5, -0.5, 0.0, 0.5, np.nan])
    x = np.array([-0.1, 0.2, 0.1, -0.2, 0.0, np.nan, 1.0])
    np.testing.assert_array_equal(reference.sign_kept(w, x.copy()), [0.0, 0.2, 0.0, -0.2, 0.0, np.nan, 1.0])


@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_the_reference_keeps_weights_nonnegative_where_the_update_overshoots(kw):
    m = _model("numpy", "float64", **kw)
    m.fit(_data(), epochs=1)   # diverged (DivergenceError) or went negative before the fix
    W = m.weights_
    assert np.isfinite(W).all() and W.min() >= 0
    if kw.get("k", 3) == 3:  # the overshoot happened: weights the factor would have flipped are 0
        assert (W == 0).sum() > 0
    if kw.get("learn_lateral"):
        assert m.lateral_.data.min() >= 0


@pytest.mark.parametrize("backend", [b for b in rule_backends("A") if b.values[0] != "numpy"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_backends_keep_the_sign_like_the_reference(backend, dtype, kw):
    X = _data(150)
    got = _model(backend, dtype, **kw).fit(X, epochs=1)
    want = _model("numpy", dtype, **kw).fit(X, epochs=1)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got.weights_, want.weights_, rtol=rtol, atol=atol)
    np.testing.assert_array_equal(got.weights_ == 0, want.weights_ == 0)
    assert got.weights_.min() >= 0


@pytest.mark.parametrize("backend", [b for b in rule_backends("A") if b.values[0] != "cuda"])
def test_ops_update_rows_keeps_the_sign(backend):
    # one row with drive 12 > 1 / lr = 10; pixel 0: v = 0, r = 0.6, e = -0.6, factor 1 - 1.2
    # (0.05 became -0.01 before the fix); pixel 1: r = 6, e = -1 (clipped), factor 1 - 0.2
    W = np.array([[0.05, 0.5]])
    o = np.array([12.0])
    Wb = W.copy()
    sdf.ops.update_rows(Wb, np.array([0]), o, np.array([0.0, 1.0]), o[0] * W[0], lr=0.1, error_clip=1.0,
                        backend=backend)
    assert Wb[0, 0] == 0.0
    assert Wb[0, 1] == pytest.approx(0.4, rel=1e-12)
