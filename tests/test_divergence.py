"""Training that diverges stops at the first step whose update is not finite (every rule,
every backend), raises DivergenceError naming the step, and leaves the model as after the
last finite step; a model whose state was made non-finite from outside gets the same
ValueError on every backend; parameters set after fit apply to inference or raise."""
from __future__ import annotations

import numpy as np
import pytest

import sparsedream_fast as sdf
from sparsedream_fast import ops
from testing import rule_backends, tol


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------------ rule A
def _rule_a(backend, **kw):
    p = dict(n_inputs=16, grid=(4, 5), k=3, lr=2e3, error_clip=None, lateral=sdf.lateral.box(1, 0.1),
             dtype="float32", backend=backend, seed=0)
    p.update(kw)
    return sdf.SparseDream(**p)


#: Rule A's update keeps nonnegative weights bounded on nonnegative inputs (increments of at
#: most lr * v per step: tests/test_rule_a_numerics.py), so a huge lr alone no longer
#: diverges; inputs of 1e12 overflow the drive (float32) within a few steps.
HUGE = 1e12


def _a_data(n=300, scale=1.0):
    return np.random.default_rng(0).random((n, 16)) * scale


def _a_fresh(backend, n, scale=1.0, **kw):
    m = _rule_a(backend, **kw)
    m.fit(_a_data(scale=scale), epochs=1, steps_per_epoch=n)
    return m


# many winners share the reconstruction and stay finite even so: weights of both signs make
# the reconstruction r <= 0 somewhere, where max(r, prec) multiplies a weight by ~lr o / prec
_SIGNED = np.random.default_rng(3).uniform(-0.5, 1.0, (64, 16))


@pytest.mark.parametrize("backend", rule_backends("A"))
@pytest.mark.parametrize("kw", [dict(scale=HUGE), dict(trace=0.5, scale=HUGE),
                                dict(trace=0.5, w_max=5.0, clip_every=3, scale=HUGE),
                                dict(lateral=sdf.lateral.random(radius=1), learn_lateral=True,
                                     competition="normalized_lateral", lateral_lr=0.05, scale=HUGE),
                                dict(k=40, grid=(8, 8), init=_SIGNED)],
                         ids=["plain", "trace", "bounds", "learned_lateral", "blocked_update"])
def test_rule_a_stops_before_the_first_non_finite_step(backend, kw):
    kw = dict(kw)
    scale = kw.pop("scale", 1.0)
    m = _rule_a(backend, **kw)
    with pytest.raises(sdf.DivergenceError, match=r"diverged: the update of step (\d+)") as info:
        m.fit(_a_data(scale=scale), epochs=1)
    n = m.n_steps_
    assert isinstance(info.value, FloatingPointError) and info.value.step == n
    assert 0 < n < 300
    assert np.isfinite(m.weights_).all() and np.isfinite(m.trace_).all()
    # exactly the state of a fresh fit of the n steps before it, on the same backend
    ref = _a_fresh(backend, n, scale, **kw)
    _same(m.weights_, ref.weights_)
    _same(m.trace_, ref.trace_)
    if m.lateral_ is not None:
        _same(m.lateral_.toarray(), ref.lateral_.toarray())
    # and one more step diverges: the fresh fit of n + 1 steps raises at the same step
    with pytest.raises(sdf.DivergenceError):
        _a_fresh(backend, n + 1, scale, **kw)


@pytest.mark.parametrize("backend", [b for b in rule_backends("A") if b.values[0] != "numpy"])
def test_rule_a_backends_diverge_at_the_reference_step(backend):
    got, want = _rule_a(backend), _rule_a("numpy")
    for m in (got, want):
        with pytest.raises(sdf.DivergenceError):
            m.fit(_a_data(scale=HUGE), epochs=1)
    assert got.n_steps_ == want.n_steps_
    rtol, atol = tol("float32")
    np.testing.assert_allclose(got.weights_, want.weights_, rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", rule_backends("A"))
def test_rule_a_model_is_usable_after_divergence(backend):
    m = _rule_a(backend)
    with pytest.raises(sdf.DivergenceError):
        m.fit(_a_data(scale=HUGE), epochs=1)
    win, val = m.infer(_a_data(20))
    assert win.shape == (20, 3) and np.isfinite(m.weights_).all()


@pytest.mark.parametrize("backend", [b for b in rule_backends("A") if b.values[0] != "cuda"])
def test_ops_step_writes_nothing_when_its_update_is_not_finite(backend):
    rng = np.random.default_rng(1)
    W = rng.uniform(0.5, 1.0, (20, 16)).astype(np.float32)
    W[3] = 1e37  # its drive and its update overflow float32
    v = np.ones(16, np.float32)
    W0 = W.copy()
    with pytest.raises(sdf.DivergenceError):
        ops.step(W, v, k=3, lr=0.1, competition="drive", lateral=None, error_clip=None, backend=backend)
    _same(W, W0)


@pytest.mark.parametrize("backend", rule_backends("A"))
def test_rule_a_non_finite_state_is_refused_alike(backend):
    X = _a_data(50)
    m = _rule_a(backend, lr=0.01).fit(X, epochs=1)
    m.weights_[2, 5] = np.nan  # the model's own array, changed from outside
    W = m.weights_.copy()
    for call in (lambda: m.winners(X), lambda: m.transform(X), lambda: m.partial_fit(X),
                 lambda: m.set_params(warm_start=True).fit(X, epochs=1)):
        with pytest.raises(ValueError, match="weights_ holds NaN or inf"):
            call()
    _same(m.weights_, W)
    assert m.n_steps_ == 50


@pytest.mark.parametrize("backend", rule_backends("A"))
def test_rule_a_k_set_after_fit_applies_to_inference(backend):
    X = _a_data(60)
    m = _rule_a(backend, lr=0.01, k=4).fit(X, epochs=1)
    w4 = m.winners(X)
    m.set_params(k=2)
    w2 = m.winners(X)
    assert w2.shape == (60, 2)
    _same(w2, w4[:, :2])  # strongest first: the top 2 of the top 4
    assert m.transform(X).astype(bool).sum(axis=1).max() <= 2
    m.set_params(k=21)
    with pytest.raises(ValueError, match="k must be between 1"):
        m.winners(X)
    m.set_params(k=2, grid=(5, 4))
    with pytest.raises(ValueError, match="grid changed"):
        m.winners(X)


# ------------------------------------------------------------------ rules B and C
def _bc_data(n=300, d=16):
    rng = np.random.default_rng(0)
    return rng.random((n, d)).astype(np.float32), np.arange(n) % 3


def _bc_params(rule, backend):
    size = dict(n_neurons=12, lr=200.0) if rule == "B" else dict(n_hidden=12, k=3, lr=1e15)
    return dict(size, batch_size=10, backend=backend, seed=0)


def _bc_fit(rule, m, epochs=2):
    X, y = _bc_data()
    return m.fit(X, y, epochs=epochs) if rule == "B" else m.fit(X, epochs=epochs)


def _bc_params_list():
    return [pytest.param(rule, b.values[0], id=f"{rule}-{b.id}", marks=b.marks)
            for rule in "BC" for b in rule_backends(rule)]


@pytest.mark.parametrize("rule, backend", _bc_params_list())
def test_batch_rules_stop_before_the_first_non_finite_batch(rule, backend):
    """A huge lr: DivergenceError naming the batch and the likely cause; the model keeps the
    weights of a fresh fit of the n_batches_ batches before it, bit for bit, and stays usable."""
    from testing import fresh_batch_weights
    params = _bc_params(rule, backend)
    cls = sdf.DreamComp if rule == "B" else sdf.KrotovHopfield
    m = cls(**params)
    with pytest.raises(sdf.DivergenceError, match=r"training diverged: the update of batch (\d+) .*Likely cause: "
                                                  r"lr=") as info:
        _bc_fit(rule, m)
    n = m.n_batches_
    assert isinstance(info.value, FloatingPointError) and info.value.step == n
    assert 0 < n < 60
    assert np.isfinite(m.weights_).all()
    X, y = _bc_data()
    _same(m.weights_, fresh_batch_weights(rule, params, X, y, 2, n))
    out = m.predict(X[:5]) if rule == "B" else m.transform(X[:5])
    assert out.shape[0] == 5


@pytest.mark.parametrize("rule, backend", [p for p in _bc_params_list() if p.values[1] != "numpy"])
def test_batch_rule_backends_diverge_at_the_reference_batch(rule, backend):
    got, want = (sdf.DreamComp if rule == "B" else sdf.KrotovHopfield)(**_bc_params(rule, backend)), None
    want = type(got)(**_bc_params(rule, "numpy"))
    for m in (got, want):
        with pytest.raises(sdf.DivergenceError):
            _bc_fit(rule, m)
    assert got.n_batches_ == want.n_batches_
    rtol, atol = tol("float32")
    np.testing.assert_allclose(got.weights_, want.weights_, rtol=rtol, atol=atol)


@pytest.mark.parametrize("rule, backend", _bc_params_list())
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_batch_rules_refuse_a_non_finite_state_alike(rule, backend, bad):
    """Weights made non-finite from outside: inference raises the same ValueError on every
    backend; the module-level fits of every backend refuse the first batch (DivergenceError)
    and write nothing."""
    import importlib
    params = dict(_bc_params(rule, backend), lr=0.01)
    m = _bc_fit(rule, (sdf.DreamComp if rule == "B" else sdf.KrotovHopfield)(**params), epochs=1)
    m.weights_[2, 5] = bad
    W = m.weights_.copy()
    X, _ = _bc_data(20)
    with pytest.raises(ValueError, match="weights_ holds NaN or inf"):
        m.predict(X) if rule == "B" else m.transform(X)
    _same(m.weights_, W)
    pkg = "dreamcomp" if rule == "B" else "krotov"
    name = {"numpy": "reference", "cpp": "_cpp", "numba": "_numba", "cuda": "_cuda"}[backend]
    mod = importlib.import_module(f"sparsedream_fast.{pkg}.{name}")
    batches = np.arange(20).reshape(1, 2, 10)
    with pytest.raises(sdf.DivergenceError, match="step 0"):
        if rule == "B":
            from sparsedream_fast.dreamcomp import reference as dref
            zeta, eta = dref.synapse_vectors(16, 3, 10.0, 0.01, 0.01, np.float32)
            mod.fit(W, dref.extend(X, np.arange(20) % 3, 3, np.float32), batches, zeta, eta)
        else:
            mod.fit(W, X, batches, 3.0, 3, 0.4, 0.01, 1e-30)
    _same(W, m.weights_)


@pytest.mark.parametrize("backend", rule_backends("C"))
def test_classifier_feature_divergence_is_reported(backend):
    X, y = _bc_data()
    clf = sdf.KrotovHopfieldClassifier(features=sdf.KrotovHopfield(**_bc_params("C", backend)), feature_epochs=2,
                                       epochs=1)
    with pytest.raises(sdf.DivergenceError, match="unsupervised features of KrotovHopfieldClassifier: "
                                                  "KrotovHopfield training diverged"):
        clf.fit(X, y)
    assert not hasattr(clf, "weights_") and not hasattr(clf, "features_")
