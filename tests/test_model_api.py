"""SparseDream's public API: scikit-learn conventions, training semantics, outputs, attributes.

Expected values are built here from the formulas and the numpy reference's step function
driven by hand (initial weights, lateral and epoch orders drawn as docs/design.md 11-13
says), so they do not go through the estimator under test.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedream_fast as sdf
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
D = 16
GRID = (4, 5)
N = GRID[0] * GRID[1]


def make(backend="numpy", **kw):
    base = dict(n_inputs=D, grid=GRID, k=3, lr=0.05, lateral=sdf.lateral.box(1, 0.1), error_clip=1.0,
                dtype="float64", backend=backend, seed=0)
    base.update(kw)
    return sdf.SparseDream(**base)


def data(n=40, seed=0):
    return np.random.default_rng(seed).random((n, D))


def close(backend, a, b):
    """Same backend twice, or numpy vs the hand-driven reference: exact. Another backend vs
    the reference: float64 to 1e-9 (see tests/testing.py for the reasoning)."""
    if backend == "numpy":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def loops_box(grid, radius, strength):
    rows, cols = grid
    n = rows * cols
    L = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j and abs(i // cols - j // cols) <= radius and abs(i % cols - j % cols) <= radius:
                L[i, j] = strength
    return L


def hand_run(X, order, *, seed=0, init=(0.15, 0.16), lateral=sdf.lateral.box(1, 0.1), learn_lateral=False,
             dtype="float64", w_max=None, clip_every=100, reset_trace=True, **cfg_kw):
    """Rule A driven step by step with the reference's ``step`` (docs/design.md 10-13)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if isinstance(init, tuple):
        W = rng.uniform(init[0], init[1], (N, D)).astype(dtype)
    else:
        W = np.array(init, dtype=dtype)
    lat = sdf.lateral.resolve(lateral, GRID, dtype, rng, learn=learn_lateral)
    base = dict(k=3, lr=0.05, competition=Competition.LATERAL, output=Output.DRIVE, error_clip=1.0)
    base.update(cfg_kw)
    cfg = SparseDreamConfig(n_neurons=N, n_inputs=D, grid=GRID, learn_lateral=learn_lateral,
                            clip_lateral=learn_lateral, lateral_lr=base["lr"], w_max=w_max,
                            clip_every=clip_every, dtype=dtype, **base)
    state = TrainState(W=W, lateral=lat, trace=np.zeros(N, dtype))
    order = order(rng) if callable(order) else order
    Xd = np.ascontiguousarray(X, dtype=dtype)
    for epoch in order:
        if reset_trace:
            state.trace[:] = 0
        for i, j in enumerate(epoch):
            ref.step(state, Xd[j], cfg)
            if w_max is not None and i % clip_every == 0:
                ref.apply_bounds(state, cfg)
    return state


def perms(n, epochs, steps=None):
    """The model's epoch orders: one permutation per epoch from its generator, after init."""
    return lambda rng: [rng.permutation(n)[:steps] for _ in range(epochs)]


# ---------------------------------------------------------------- params protocol
def test_get_params_round_trip():
    m = sdf.SparseDream(n_inputs=12, grid=(3, 4), k=2, lr=0.2, trace=0.5, w_max=np.inf, seed=7)
    params = m.get_params()
    names = [p for p in inspect.signature(sdf.SparseDream.__init__).parameters if p != "self"]
    assert sorted(params) == sorted(names)
    assert params["k"] == 2 and params["trace"] == 0.5 and params["seed"] == 7
    assert m.get_params(deep=False) == params
    again = sdf.SparseDream(**params)
    assert again.get_params() == params
    assert m.set_params(k=4, lr=0.3) is m
    assert m.get_params()["k"] == 4 and m.k == 4 and m.get_params()["lr"] == 0.3
    # unchanged others
    assert {k: v for k, v in m.get_params().items() if k not in ("k", "lr")} == \
        {k: v for k, v in params.items() if k not in ("k", "lr")}


def test_constructor_stores_arguments_unchanged():
    init = np.full((N, D), 0.1)
    lat = np.zeros((N, N))
    m = sdf.SparseDream(grid=GRID, init=init, lateral=lat, k=1.5, lr="x")   # validated at fit, not here
    assert m.init is init and m.lateral is lat and m.k == 1.5 and m.lr == "x"


def test_set_params_unknown_name_raises():
    m = make()
    with pytest.raises(ValueError, match=r"Invalid parameter .n_neurons. for estimator SparseDream"):
        m.set_params(n_neurons=5)
    with pytest.raises(ValueError, match="Invalid parameter"):
        m.set_params(k=2, bogus=1)


def test_repr_shows_changed_parameters():
    r = repr(sdf.SparseDream(k=7, trace=0.5))
    assert r.startswith("SparseDream(") and "k=7" in r and "trace=0.5" in r and "lr=" not in r


def test_sklearn_clone():
    base = pytest.importorskip("sklearn.base")
    m = make(trace=0.5).fit(data(), epochs=1)
    c = base.clone(m)
    assert c is not m
    assert c.get_params().keys() == m.get_params().keys()
    assert c.get_params()["trace"] == 0.5 and c.get_params()["lateral"] == m.lateral
    with pytest.raises(AttributeError, match="not fitted"):
        c.weights_
    c.fit(data(), epochs=1)
    np.testing.assert_array_equal(c.weights_, m.weights_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_and_partial_fit_return_self(backend):
    m = make(backend)
    assert m.fit(data(), epochs=1) is m
    assert m.partial_fit(data()) is m


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipeline_with_logistic_regression(backend):
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 40)
    X = rng.uniform(0, 0.2, (80, D))
    X[y == 0, : D // 2] += 0.8        # two well separated prototypes
    X[y == 1, D // 2:] += 0.8
    pipe = Pipeline([("sd", make(backend, k=2, lateral=None, competition="drive")),
                     ("clf", LogisticRegression(max_iter=500))])
    pipe.fit(X, y, sd__epochs=2)
    assert pipe.named_steps["sd"].n_steps_ == 2 * 80
    pred = pipe.predict(X)
    assert pred.shape == (80,) and set(np.unique(pred)) <= {0, 1}
    assert pipe.score(X, y) >= 0.9


# ----------------------------------------------------------------- determinism
@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_determines_the_run(backend):
    X = data()
    a = make(backend, seed=3).fit(X, epochs=2)
    b = make(backend, seed=3).fit(X, epochs=2)
    c = make(backend, seed=4).fit(X, epochs=2)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.winners(X), b.winners(X))
    assert not np.array_equal(a.weights_, c.weights_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_restarts(backend):
    X = data()
    m = make(backend, trace=0.5)
    m.fit(X, epochs=2)
    W1, t1 = m.weights_.copy(), m.trace_.copy()
    m.partial_fit(X)                     # move the state on ...
    m.fit(X, epochs=2)                   # ... and fit again: from init, not from there
    np.testing.assert_array_equal(m.weights_, W1)
    np.testing.assert_array_equal(m.trace_, t1)
    assert m.n_steps_ == 2 * X.shape[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("trace", [None, 0.5])
def test_partial_fit_continues(backend, trace):
    X = data(50)
    whole = make(backend, trace=trace).partial_fit(X)
    halves = make(backend, trace=trace).partial_fit(X[:23]).partial_fit(X[23:])
    assert halves.n_steps_ == whole.n_steps_ == 50
    close(backend, halves.weights_, whole.weights_)
    close(backend, halves.trace_, whole.trace_)
    if trace is not None:
        assert np.count_nonzero(halves.trace_) > 3       # the trace carried over, not reset


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_partial_fit_is_one_ordered_epoch(backend):
    X = data()
    a = make(backend, trace=0.5, w_max=np.inf, clip_every=6).partial_fit(X)
    b = make(backend, trace=0.5, w_max=np.inf, clip_every=6).fit(X, epochs=1, shuffle=False)
    close(backend, a.weights_, b.weights_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shuffle_false_runs_in_order(backend):
    X = data(30)
    kw = dict(trace=0.5, w_max=0.158, clip_every=4, lr=0.08)
    m = make(backend, **kw).fit(X, epochs=2, shuffle=False)
    state = hand_run(X, np.tile(np.arange(30), (2, 1)), trace=0.5, lr=0.08, w_max=0.158, clip_every=4)
    close(backend, m.weights_, state.W)
    close(backend, m.trace_, state.trace)
    # a different order gives a different result: the test can tell orders apart
    other = hand_run(X, np.tile(np.arange(30)[::-1], (2, 1)), trace=0.5, lr=0.08, w_max=0.158, clip_every=4)
    assert not np.allclose(other.W, state.W, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shuffle_true_orders_come_from_the_seed_after_init(backend):
    """W is drawn first, then the random lateral, then one permutation per epoch."""
    X = data(30)
    kw = dict(lateral=sdf.lateral.random(1, 0.0, 0.2), learn_lateral=True, competition="normalized_lateral",
              w_max=0.5, clip_every=9, init=(0.0, 0.5), lr=0.01, error_clip=None, seed=5)
    m = make(backend, **kw).fit(X, epochs=3)
    state = hand_run(X, perms(30, 3), lateral=kw["lateral"], learn_lateral=True,
                     competition=Competition.NORMALIZED_LATERAL, w_max=0.5, clip_every=9, init=(0.0, 0.5),
                     lr=0.01, error_clip=None, seed=5)
    close(backend, m.weights_, state.W)
    close(backend, m.lateral_.toarray(), state.lateral.to_scipy().toarray())


@pytest.mark.parametrize("backend", BACKENDS)
def test_steps_per_epoch(backend):
    X = data(30)
    m = make(backend).fit(X, epochs=3, steps_per_epoch=7)
    assert m.n_steps_ == 21
    close(backend, m.weights_, hand_run(X, perms(30, 3, 7)).W)
    # in order, the first 7 samples each epoch
    a = make(backend).fit(X, epochs=2, shuffle=False, steps_per_epoch=7)
    b = make(backend).fit(X[:7], epochs=2, shuffle=False)
    close(backend, a.weights_, b.weights_)


@pytest.mark.parametrize("backend", BACKENDS)
def test_init_array_used_exactly(backend):
    X = data(30)
    W0 = np.random.default_rng(9).uniform(0.1, 0.2, (N, D))
    W0_copy = W0.copy()
    m = make(backend, init=W0)
    m.partial_fit(X[:1])
    assert not np.shares_memory(m.weights_, W0)
    np.testing.assert_array_equal(W0, W0_copy)          # the caller's array is not trained in place
    m.fit(X, epochs=2)
    np.testing.assert_array_equal(W0, W0_copy)
    # no uniform draw with an explicit init: the first permutation is the generator's first draw
    close(backend, m.weights_, hand_run(X, perms(30, 2), init=W0).W)
    # float32 init on a float64 model is cast, and vice versa
    m32 = make(backend, init=W0.astype(np.float32), dtype="float64").partial_fit(X[:1])
    assert m32.weights_.dtype == np.float64


# ------------------------------------------------------------------------ outputs
def hand_competition(W, x, L, mode="lateral"):
    p = W @ x
    if mode == "drive" or L is None:
        return p, p
    return p, p + L @ p


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output", ["drive", "competition"])
def test_transform_winners_and_values(backend, output):
    X = data(25, seed=3)
    m = make(backend, output=output, lateral=sdf.lateral.box(1, 0.3)).fit(data(), epochs=2)
    W, L = m.weights_, loops_box(GRID, 1, 0.3)
    A = m.transform(X)
    S = m.transform(X, sparse=True)
    win = m.winners(X)
    assert A.shape == (25, N) and A.dtype == np.float64
    assert isinstance(S, sp.csr_array) and S.shape == (25, N) and S.dtype == np.float64
    np.testing.assert_array_equal(S.toarray(), A)
    np.testing.assert_array_equal(np.diff(S.indptr), 3)
    assert S.has_canonical_format                                     # columns sorted within rows
    np.testing.assert_array_equal(np.count_nonzero(A, axis=1), 3)    # positive drive: exactly k
    assert win.shape == (25, 3) and win.dtype == np.int64
    for i, x in enumerate(X):
        p, c = hand_competition(W, x, L)
        cw = c[win[i]]
        assert np.all(np.diff(cw) <= 0)                                  # strongest first
        others = np.setdiff1d(np.arange(N), win[i])
        assert cw.min() >= c[others].max()                               # the k largest
        np.testing.assert_array_equal(np.flatnonzero(A[i]), np.sort(win[i]))
        expected = (p if output == "drive" else c)[win[i]]
        np.testing.assert_allclose(A[i, win[i]], expected, rtol=1e-12)
    np.testing.assert_array_equal(m.fit_transform(data(), epochs=2), m.transform(data()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_transform_float32(backend):
    m = make(backend, dtype="float32").fit(data(), epochs=1)
    A = m.transform(data(5))
    assert A.dtype == np.float32 and m.transform(data(5), sparse=True).dtype == np.float32
    assert m.reconstruct(data(5)).dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
def test_reconstruct_and_error_by_hand(backend):
    X = data(12, seed=4)
    m = make(backend).fit(data(), epochs=2)
    W = m.weights_
    win = m.winners(X)
    A = m.transform(X)
    R = m.reconstruct(X)
    assert R.shape == X.shape
    for i in range(12):
        np.testing.assert_allclose(R[i], W[win[i]].T @ A[i, win[i]], rtol=1e-12)
    np.testing.assert_allclose(R, A @ W, rtol=1e-12)
    err = m.reconstruction_error(X)
    assert isinstance(err, float)
    np.testing.assert_allclose(err, np.mean((X - A @ W) ** 2), rtol=1e-12)
    assert err > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_does_not_learn(backend):
    m = make(backend, trace=0.5).fit(data(), epochs=1)
    W, t, n = m.weights_.copy(), m.trace_.copy(), m.n_steps_
    for method in ("transform", "winners", "reconstruct", "reconstruction_error"):
        getattr(m, method)(data(10, 2))
    np.testing.assert_array_equal(m.weights_, W)
    np.testing.assert_array_equal(m.trace_, t)
    assert m.n_steps_ == n


# --------------------------------------------------------------------- attributes
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fitted_attributes(backend, dtype):
    m = make(backend, dtype=dtype, n_inputs=None).fit(data(), epochs=2)   # D taken from X
    assert m.weights_.shape == (N, D) and m.weights_.dtype == np.dtype(dtype)
    assert m.weights_.flags.c_contiguous
    assert m.trace_.shape == (N,) and m.trace_.dtype == np.dtype(dtype)
    assert m.n_steps_ == 80
    assert m.backend_ == backend
    assert m.weights_ is m.weights_        # the model's own array, not a copy


def test_int_grid_is_one_row():
    m = sdf.SparseDream(n_inputs=D, grid=7, k=2, backend="numpy", lateral=sdf.lateral.box(1, 0.1)).fit(data(), epochs=1)
    assert m.config_.grid == (1, 7) and m.weights_.shape == (7, D)
    np.testing.assert_array_equal(m.lateral_.toarray(), loops_box((1, 7), 1, 0.1).astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lateral_attribute(backend):
    m = make(backend, grid=(4, 5), lateral=sdf.lateral.box(2, 0.1)).fit(data(), epochs=1)
    L = m.lateral_
    assert isinstance(L, sp.csr_array) and L.shape == (N, N)
    np.testing.assert_array_equal(L.toarray(), loops_box(GRID, 2, 0.1))
    L.data[:] = 5.0                                   # a copy: the model's lateral is untouched
    np.testing.assert_array_equal(m.lateral_.toarray(), loops_box(GRID, 2, 0.1))
    assert make(backend, lateral=None).fit(data(), epochs=1).lateral_ is None
    dense = loops_box(GRID, 1, 0.2)
    np.testing.assert_array_equal(make(backend, lateral=dense).fit(data(), epochs=1).lateral_.toarray(), dense)


@pytest.mark.parametrize("backend", BACKENDS)
def test_learned_lateral_keeps_pattern_and_zero_diagonal(backend):
    X = data(40)
    spec = sdf.lateral.random(1, 0.05, 0.3)
    kw = dict(lateral=spec, competition="normalized_lateral", output="competition", lr=0.02, lateral_lr=0.05,
              error_clip=None, init=(0.0, 0.5), seed=2)
    fixed = make(backend, **kw).fit(X, epochs=1)           # same draws, not learned: the initial L
    learned = make(backend, learn_lateral=True, **kw).fit(X, epochs=2)
    L0, L1 = fixed.lateral_, learned.lateral_
    np.testing.assert_array_equal((L0.toarray() != 0), loops_box(GRID, 1, 1.0) != 0)
    np.testing.assert_array_equal(L1.indptr, L0.indptr)
    np.testing.assert_array_equal(L1.indices, L0.indices)
    dense = L1.toarray()
    assert np.all(np.diag(dense) == 0)
    assert np.all(dense[loops_box(GRID, 1, 1.0) == 0] == 0)
    assert not np.allclose(L1.data, L0.data)                  # it did learn


# ------------------------------------------------------------------------- bounds
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("w_max", [0.155, np.inf])
def test_bounds_hold_after_clip_steps(backend, w_max):
    """Clip steps are epoch indices 0, clip_every, ...; check W after every step."""
    X = data(21)        # indices 0..20, clip_every 5: 20 is the last index and a clip step
    kw = dict(w_max=w_max, clip_every=5, lr=2.0 if np.isinf(w_max) else 0.3, error_clip=None)
    seen = {"clip": 0, "outside": 0}

    def cb(model, epoch, step):
        W = model.weights_
        inside = W.min() >= 0 and W.max() <= w_max
        if (step - 1) % 5 == 0:
            assert inside, f"bounds do not hold after clip step index {step - 1} of epoch {epoch}"
            seen["clip"] += 1
        elif not inside:
            seen["outside"] += 1

    m = make(backend, **kw).fit(X, epochs=2, callback=cb, callback_every=1)
    assert seen["clip"] == 2 * 5
    if np.isfinite(w_max):
        assert seen["outside"] > 0      # between clip steps the weights do leave the box
    else:                               # [0, inf): the update never takes a weight below 0
        assert seen["outside"] == 0     # (tests/test_rule_a_numerics.py)
    W = m.weights_
    assert W.min() >= 0 and W.max() <= w_max
    # the one-call fit (no callback) ends the same
    plain = make(backend, **kw).fit(X, epochs=2)
    close(backend, plain.weights_, W)
    if np.isfinite(w_max):
        assert np.any(W == w_max)       # the clip was active


# ----------------------------------------------------------- callbacks, progress
@pytest.mark.parametrize("backend", BACKENDS)
def test_callback_calls(backend):
    X = data(20)
    calls = []

    def cb(model, epoch, step):
        calls.append((model, epoch, step, model.n_steps_))

    m = make(backend)
    m.fit(X, epochs=3, callback=cb)
    assert [(e, s) for _, e, s, _ in calls] == [(0, 20), (1, 20), (2, 20)]
    assert all(c[0] is m for c in calls)
    assert [c[3] for c in calls] == [20, 40, 60]
    calls.clear()
    m.fit(X, epochs=2, callback=cb, callback_every=6)
    assert [(e, s) for _, e, s, _ in calls] == [(e, s) for e in range(2) for s in (6, 12, 18, 20)]
    assert [c[3] for c in calls] == [6, 12, 18, 20, 26, 32, 38, 40]
    calls.clear()
    m.partial_fit(X)
    assert calls == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_callback_sees_current_weights(backend):
    X = data(20)
    snaps = []
    m = make(backend).fit(X, epochs=1, shuffle=False, callback=lambda mod, e, s: snaps.append(mod.weights_.copy()),
                          callback_every=10)
    assert len(snaps) == 2
    np.testing.assert_array_equal(snaps[-1], m.weights_)
    # after 10 steps the callback sees the weights of a 10-step run
    close(backend, snaps[0], make(backend).fit(X[:10], epochs=1, shuffle=False).weights_)
    assert not np.array_equal(snaps[0], snaps[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_progress_bar_runs(backend, capsys):
    pytest.importorskip("tqdm")
    X = data(30)
    a = make(backend, trace=0.5).fit(X, epochs=2, progress=True)
    b = make(backend, trace=0.5).fit(X, epochs=2, progress=False)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert a.n_steps_ == 60
    err = capsys.readouterr().err
    assert "60" in err                   # tqdm's total went to stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_warning_on_a_sane_run(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(backend).fit(data(), epochs=1)
