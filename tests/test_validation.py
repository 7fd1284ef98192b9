"""Bad input: a ValueError or TypeError naming the problem, raised before any kernel runs,
leaving the model untouched; and the caller's data never modified.

"Before any kernel runs" is checked by replacing the backend module's ``fit``/``infer``/``step``
with spies that fail the test when called; "untouched" by comparing the fitted model's
weights, trace, lateral, step count and config with a snapshot taken before the bad call.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

import sparsedream_fast as sdf
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
D, GRID, N = 9, (3, 3), 9


def make(backend, **kw):
    base = dict(n_inputs=D, grid=GRID, k=2, lr=0.05, lateral=sdf.lateral.box(1, 0.1), error_clip=1.0,
                dtype="float64", backend=backend, seed=0)
    base.update(kw)
    return sdf.SparseDream(**base)


def data(n=30, seed=0):
    return np.random.default_rng(seed).random((n, D))


class Snapshot:
    """Everything a failing call must leave as it was."""

    def __init__(self, m):
        self.W = m.weights_.copy()
        self.trace = m.trace_.copy()
        self.lat = None if m.lateral_ is None else m.lateral_.toarray()
        self.n_steps = m.n_steps_
        self.config = m.config_
        self.backend_ = m.backend_
        self.W_id = id(m.weights_)

    def check(self, m):
        np.testing.assert_array_equal(m.weights_, self.W)
        np.testing.assert_array_equal(m.trace_, self.trace)
        if self.lat is None:
            assert m.lateral_ is None
        else:
            np.testing.assert_array_equal(m.lateral_.toarray(), self.lat)
        assert m.n_steps_ == self.n_steps
        assert m.config_ == self.config
        assert m.backend_ == self.backend_
        assert id(m.weights_) == self.W_id


@pytest.fixture
def no_kernels(monkeypatch):
    """``arm(backend)``: from now on any kernel call of that backend fails the test."""
    def arm(backend):
        calls = []
        mod = backend_module(backend)
        for name in ("fit", "infer", "step"):
            if hasattr(mod, name):
                def spy(*args, _name=name, **kwargs):
                    calls.append(_name)
                    raise AssertionError(f"kernel {backend}.{_name} ran on bad input")
                monkeypatch.setattr(mod, name, spy)
        return calls
    return arm


# ------------------------------------------------------------------------ bad data
def _with(X, i, j, value):
    X = X.copy()
    X[i, j] = value
    return X


BAD_X = {
    "narrow": (lambda X: X[:, :-1], ValueError, r"X has 8 features, but SparseDream is expecting 9 features as input \(n_inputs=9\)"),
    "wide": (lambda X: np.hstack([X, X[:, :1]]), ValueError, r"X has 10 features, but SparseDream is expecting 9 features as input"),
    "rank3": (lambda X: X[None], ValueError, r"X must be 2-D \(n_samples, 9\), got shape \(1, 30, 9\)"),
    "rank0": (lambda X: np.float64(0.5), ValueError, r"X must be 2-D"),
    "nan": (lambda X: _with(X, 3, 4, np.nan), ValueError, r"X contains 1 NaN or inf value"),
    "inf": (lambda X: _with(X, 0, 0, np.inf), ValueError, r"X contains 1 NaN or inf value"),
    "neg_inf": (lambda X: _with(_with(X, 0, 0, -np.inf), 1, 1, np.nan), ValueError, r"X contains 2 NaN or inf"),
    "float32_nan": (lambda X: _with(X, 2, 2, np.nan).astype(np.float32), ValueError, r"NaN or inf"),
    "strings": (lambda X: X.astype(str), TypeError, r"X must hold real numbers, got dtype <U"),
    "objects": (lambda X: _with(X.astype(object), 0, 0, {"a": 1}), TypeError, r"X must hold real numbers, got dtype object"),
    "complex": (lambda X: X.astype(complex), ValueError, r"Complex data not supported: X must hold real numbers, got dtype complex"),
    "sparse": (lambda X: sp.csr_array(X), TypeError, r"X is a scipy.sparse matrix"),
    "empty": (lambda X: X[:0], ValueError, r"X has no samples"),
    "ragged": (lambda X: [list(X[0]), list(X[1, :5])], TypeError, r"X cannot be converted to an array"),
}
METHODS = ["fit", "partial_fit", "fit_transform", "transform", "winners", "reconstruct", "reconstruction_error"]


def call(m, method, X):
    if method in ("fit", "fit_transform"):
        return getattr(m, method)(X, epochs=1)
    return getattr(m, method)(X)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(BAD_X))
def test_bad_data_raises_before_kernels_and_leaves_model(backend, method, case, no_kernels):
    make_bad, exc, match = BAD_X[case]
    X = data()
    m = make(backend).fit(X, epochs=1)
    snap = Snapshot(m)
    calls = no_kernels(backend)
    with pytest.raises(exc, match=match):
        call(m, method, make_bad(X))
    assert calls == []
    snap.check(m)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_training_rejects_a_single_sample_vector(backend, method, no_kernels):
    X = data()
    m = make(backend).fit(X, epochs=1)
    snap = Snapshot(m)
    calls = no_kernels(backend)
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, 9\), got shape \(9,\)"):
        call(m, method, X[0])
    assert calls == []
    snap.check(m)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_accepts_a_single_sample_vector(backend):
    X = data()
    m = make(backend).fit(X, epochs=1)
    np.testing.assert_array_equal(m.winners(X[3]), m.winners(X[3:4]))
    assert m.transform(X[3]).shape == (1, N)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("case", ["narrow", "nan", "strings", "empty"])
def test_bad_data_on_fresh_model_leaves_it_unfitted(backend, method, case, no_kernels):
    make_bad, exc, match = BAD_X[case]
    m = make(backend)
    no_kernels(backend)
    with pytest.raises(exc, match=match):
        call(m, method, make_bad(data()))
    for attr in ("weights_", "trace_", "lateral_"):
        with pytest.raises(AttributeError, match="not fitted"):
            getattr(m, attr)
    assert not hasattr(m, "n_steps_")


@pytest.mark.parametrize("method", ["transform", "winners", "reconstruct", "reconstruction_error"])
def test_inference_before_fit_raises(method):
    with pytest.raises(AttributeError, match="not fitted yet"):
        getattr(make("numpy"), method)(data())


# ---------------------------------------------------------------- bad parameters
BAD_PARAMS = [
    (dict(k=0), ValueError, r"k must be between 1 and the number of neurons N=9, got k=0"),
    (dict(k=-3), ValueError, r"k must be between 1 and the number of neurons N=9, got k=-3"),
    (dict(k=10), ValueError, r"k must be between 1 and the number of neurons N=9, got k=10"),
    (dict(k=2.0), TypeError, r"k must be an integer"),
    (dict(k=None), TypeError, r"k must be an integer"),
    (dict(k=True), TypeError, r"k must be an integer"),
    (dict(lr=0.0), ValueError, r"lr must be > 0"),
    (dict(lr=-0.1), ValueError, r"lr must be > 0"),
    (dict(lr=np.nan), ValueError, r"lr must be finite"),
    (dict(lr=np.inf), ValueError, r"lr must be finite"),
    (dict(lr="0.1"), TypeError, r"lr must be a real number"),
    (dict(lr=None), TypeError, r"lr must be a number"),
    (dict(competition="lateal"), ValueError, r"unknown competition 'lateal'; choose one of .*'normalized_lateral'"),
    (dict(competition=1), ValueError, r"unknown competition 1"),
    (dict(output="activity"), ValueError, r"unknown output 'activity'; choose one of \('drive', 'competition'\)"),
    (dict(backend="gpu"), ValueError, r"unknown backend 'gpu'; choose one of \('auto', 'numpy'"),
    (dict(backend=None), TypeError, r"backend must be a string"),
    (dict(lateral=np.zeros((8, 8))), ValueError, r"lateral matrix must have shape \(N, N\) = \(9, 9\), got \(8, 8\)"),
    (dict(lateral=np.zeros((9, 10))), ValueError, r"lateral matrix must have shape \(N, N\) = \(9, 9\), got \(9, 10\)"),
    (dict(lateral=sp.csr_array((4, 4))), ValueError, r"lateral matrix must have shape \(N, N\) = \(9, 9\), got \(4, 4\)"),
    (dict(lateral=np.full((9, 9), np.nan)), ValueError, r"lateral matrix contains NaN or inf"),
    (dict(lateral=sp.csr_array(np.diag(np.full(9, np.inf)))), ValueError, r"lateral matrix contains NaN or inf"),
    (dict(lateral="box"), TypeError, r"lateral must be a spec"),
    (dict(lateral=np.full((9, 9), "x")), TypeError, r"lateral must be a spec"),
    (dict(init=np.full((8, 9), 0.1)), ValueError, r"init array must have shape \(N, D\) = \(9, 9\), got \(8, 9\)"),
    (dict(init=np.full((9, 8), 0.1)), ValueError, r"init array must have shape \(N, D\) = \(9, 9\), got \(9, 8\)"),
    (dict(init=np.full(81, 0.1)), ValueError, r"init array must have shape \(N, D\) = \(9, 9\), got \(81,\)"),
    (dict(init=np.where(np.eye(9) > 0, np.nan, 0.1)), ValueError, r"init array contains 9 NaN or inf value"),
    (dict(init=np.where(np.eye(9) > 0, np.inf, 0.1)), ValueError, r"init array contains 9 NaN or inf value"),
    (dict(init=(0.5, 0.1)), ValueError, r"init range must have low <= high"),
    (dict(init=(0.0, np.nan)), ValueError, r"init high must be finite"),
    (dict(init=np.full((9, 9), "a")), TypeError, r"init must be \(low, high\) or an \(N, D\) array of numbers"),
    (dict(trace=0.0), ValueError, r"trace must be > 0"),
    (dict(trace=-0.5), ValueError, r"trace must be > 0"),
    (dict(trace=1.5), ValueError, r"trace must be <= 1"),
    (dict(trace=np.nan), ValueError, r"trace must be finite"),
    (dict(error_clip=0.0), ValueError, r"error_clip must be > 0"),
    (dict(error_clip=-1.0), ValueError, r"error_clip must be > 0"),
    (dict(error_clip=np.nan), ValueError, r"error_clip must be finite"),
    (dict(clip_every=0), ValueError, r"clip_every must be >= 1"),
    (dict(clip_every=2.5), TypeError, r"clip_every must be an integer"),
    (dict(prec=0.0), ValueError, r"prec must be > 0"),
    (dict(prec=-1e-10), ValueError, r"prec must be > 0"),
    (dict(dtype="float16"), ValueError, r"dtype must be 'float32' or 'float64', got 'float16'"),
    (dict(dtype="int32"), ValueError, r"dtype must be 'float32' or 'float64'"),
    (dict(dtype="banana"), ValueError, r"dtype must be 'float32' or 'float64', got 'banana'"),
    (dict(grid=(3, -3)), ValueError, r"grid cols must be >= 1, got -3"),
    (dict(grid=(0, 9)), ValueError, r"grid rows must be >= 1, got 0"),
    (dict(grid=-9), ValueError, r"grid cols must be >= 1"),
    (dict(grid=(3,)), ValueError, r"grid must be \(rows, cols\) or an int"),
    (dict(grid=(3, 3, 1)), ValueError, r"grid must be \(rows, cols\) or an int"),
    (dict(grid=(3.0, 3)), TypeError, r"grid rows must be an integer"),
    (dict(grid=(3, 4)), ValueError, r"lateral matrix must have shape \(N, N\) = \(12, 12\), got \(9, 9\)"),
    (dict(learn_lateral=True, lateral=None), ValueError, r"learn_lateral=True needs a lateral matrix"),
    (dict(learn_lateral="yes"), TypeError, r"learn_lateral must be True or False"),
    (dict(lateral_lr=0.0), ValueError, r"lateral_lr must be > 0"),
    (dict(w_max=0.0), ValueError, r"w_max must be > 0"),
    (dict(w_max=-1.0), ValueError, r"w_max must be > 0"),
    (dict(n_inputs=0), ValueError, r"n_inputs must be >= 1"),
]
# grid=(3, 4) needs the explicit 9 x 9 lateral to show the mismatch
_EXPLICIT_LAT = sdf.lateral.box_matrix(GRID, 1, 0.1).toarray()


def _param_id(case):
    k, v = list(case[0].items())[-1]
    r = repr(v) if np.isscalar(v) or v is None else type(v).__name__ + str(getattr(v, "shape", ""))
    return f"{k}={r}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params,exc,match", BAD_PARAMS, ids=[_param_id(c) for c in BAD_PARAMS])
def test_bad_parameter_fit_raises_and_leaves_fitted_model(backend, params, exc, match, no_kernels):
    X = data()
    m = make(backend, lateral=_EXPLICIT_LAT).fit(X, epochs=1)
    snap = Snapshot(m)
    good = m.get_params()
    calls = no_kernels(backend)
    m.set_params(**params)
    with pytest.raises(exc, match=match):
        m.fit(X, epochs=1)
    assert calls == []
    snap.check(m)
    m.set_params(**good)
    assert m.get_params()["lr"] == 0.05


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params,exc,match", BAD_PARAMS, ids=[_param_id(c) for c in BAD_PARAMS])
def test_bad_parameter_on_fresh_model(backend, params, exc, match, no_kernels):
    m = make(**{"backend": backend, "lateral": _EXPLICIT_LAT, **params})
    no_kernels(backend)
    with pytest.raises(exc, match=match):
        m.partial_fit(data())
    assert not hasattr(m, "n_steps_")


BAD_FIT_ARGS = [
    (dict(epochs=0), ValueError, r"epochs must be >= 1, got 0"),
    (dict(epochs=-2), ValueError, r"epochs must be >= 1"),
    (dict(epochs=2.0), TypeError, r"epochs must be an integer"),
    (dict(steps_per_epoch=31), ValueError, r"steps_per_epoch must be <= 30, got 31"),
    (dict(steps_per_epoch=0), ValueError, r"steps_per_epoch must be >= 1"),
    (dict(callback="print"), TypeError, r"callback must be callable"),
    (dict(callback=print, callback_every=0), ValueError, r"callback_every must be >= 1"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kwargs,exc,match", BAD_FIT_ARGS, ids=[str(c[0])[:40] for c in BAD_FIT_ARGS])
def test_bad_fit_arguments(backend, kwargs, exc, match, no_kernels):
    X = data()
    m = make(backend).fit(X, epochs=1)
    snap = Snapshot(m)
    calls = no_kernels(backend)
    with pytest.raises(exc, match=match):
        m.fit(X, **{"epochs": 1, **kwargs})
    assert calls == []
    snap.check(m)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["partial_fit", "transform", "winners", "reconstruct"])
def test_unknown_backend_after_fit(backend, method, no_kernels):
    X = data()
    m = make(backend).fit(X, epochs=1)
    snap = Snapshot(m)
    calls = no_kernels(backend)
    m.set_params(backend="tpu")
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'"):
        call(m, method, X)
    assert calls == []
    snap.check(m)


# --------------------------------------------------------- backends not usable here
def _unavailable(name):
    info = sdf.backends()[name]
    if info.available:
        pytest.skip(f"backend {name} is available here")
    return info


@pytest.mark.parametrize("name", ["cuda", "cpp", "numba"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_unavailable_backend_says_why(name, method):
    info = _unavailable(name)
    assert info.reason
    m = make(name)
    with pytest.raises(ValueError, match=rf"backend '{name}' is not available here: " + re.escape(info.reason)):
        call(m, method, data())
    assert not hasattr(m, "n_steps_")


@pytest.mark.parametrize("name", ["cuda", "cpp", "numba"])
def test_unavailable_backend_after_fit_leaves_model(name):
    info = _unavailable(name)
    X = data()
    m = make("numpy").fit(X, epochs=1)
    snap = Snapshot(m)
    m.set_params(backend=name)
    for method in ("fit", "partial_fit", "transform"):
        with pytest.raises(ValueError, match=re.escape(info.reason)):
            call(m, method, X)
    snap.check(m)


def test_every_available_backend_has_rule_a_kernels():
    """What backends() calls usable must run: each has a module with the rule A interface
    (cuda's single-step ops other than step raise NotImplementedError, tested below)."""
    for name, info in sdf.backends().items():
        if info.available:
            mod = backend_module(name)
            for fn in ("fit", "infer", "step", "topk", "competition", "reconstruct", "update_rows"):
                assert callable(getattr(mod, fn, None)), f"{name} backend lacks {fn}"


@pytest.mark.parametrize("backend", ["cuda"])
def test_cuda_rule_a_refuses_bad_device_requests_before_any_change(backend):
    """On the GPU (or its emulator: the backend="cuda" parameter switches it on where there
    is no GPU): ops without a GPU kernel say so, and a refused fit leaves the model as it was."""
    if not sdf.backends()["cuda"].available:
        pytest.skip("no usable CUDA GPU: " + sdf.backends()["cuda"].reason)
    X = data()
    m = make("numpy").fit(X, epochs=1)
    snap = Snapshot(m)
    m.set_params(backend=backend)
    with pytest.raises(ValueError, match="NaN"):
        m.partial_fit(np.full_like(X, np.nan))
    snap.check(m)
    with pytest.raises(NotImplementedError, match="no CUDA kernel"):
        sdf.ops.topk(np.ones(5, np.float32), 2, backend=backend)


def test_auto_backend_runs():
    m = sdf.SparseDream(n_inputs=D, grid=GRID, k=2, lateral=sdf.lateral.box(1, 0.1), backend="auto", seed=0)
    m.fit(data(), epochs=1)
    assert m.backend_ in [n for n, i in sdf.backends().items() if i.available]


# -------------------------------------------------- partial_fit after set_params
@pytest.mark.parametrize("params", [dict(lr=-1.0), dict(k=0)])
@pytest.mark.parametrize("method", ["partial_fit", "warm_start_fit"])
def test_continuing_validates_parameters_changed_by_set_params(method, params):
    X = data()
    m = make("numpy", warm_start=method == "warm_start_fit").fit(X, epochs=1)
    snap = Snapshot(m)
    m.set_params(**params)
    with pytest.raises(ValueError, match="lr must be > 0|k must be between"):
        m.partial_fit(X) if method == "partial_fit" else m.fit(X, epochs=1)
    snap.check(m)


@pytest.mark.parametrize("method", ["partial_fit", "warm_start_fit"])
def test_continuing_uses_parameters_changed_by_set_params(method):
    """A valid change (lr) takes effect when training continues: equal to a model built with it."""
    X = data()
    a = make("numpy", warm_start=method == "warm_start_fit", trace=0.5).partial_fit(X)
    b = make("numpy", warm_start=method == "warm_start_fit", trace=0.5).partial_fit(X)
    a.set_params(lr=a.lr / 3)
    for m in (a, b):
        m.partial_fit(X) if method == "partial_fit" else m.fit(X, epochs=1, shuffle=False)
    ref = make("numpy", trace=0.5).partial_fit(X).set_params(lr=a.lr)
    ref.partial_fit(X) if method == "partial_fit" else None
    if method == "partial_fit":
        np.testing.assert_array_equal(a.weights_, ref.weights_)
    assert not np.array_equal(a.weights_, b.weights_)


def test_continuing_rejects_a_changed_grid():
    X = data()
    m = make("numpy").fit(X, epochs=1)
    snap = Snapshot(m)
    m.set_params(grid=(1, m.config_.n_neurons + 1))
    with pytest.raises(ValueError, match="grid changed"):
        m.partial_fit(X)
    snap.check(m)


# --------------------------------------------------------- the caller's X is safe
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_caller_X_never_modified(backend, dtype):
    X = data(40)
    X0 = X.copy()
    X.setflags(write=False)   # a backend writing into X would raise here, not corrupt it
    m = make(backend, dtype=dtype, trace=0.5, w_max=np.inf, clip_every=3)
    m.fit(X, epochs=2)
    m.partial_fit(X)
    m.transform(X)
    m.transform(X, sparse=True)
    m.winners(X)
    m.reconstruct(X)
    m.reconstruction_error(X)
    m.fit(X, epochs=1, callback=lambda *a: None, callback_every=7)
    np.testing.assert_array_equal(X, X0)
    assert not np.shares_memory(m.weights_, X)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_model_on_float64_X(backend):
    X = data(40)
    X0 = X.copy()
    m = make(backend, dtype="float32").fit(X, epochs=2)
    np.testing.assert_array_equal(X, X0)
    assert X.dtype == np.float64
    assert m.weights_.dtype == np.float32
    m32 = make(backend, dtype="float32").fit(X.astype(np.float32), epochs=2)
    np.testing.assert_array_equal(m.weights_, m32.weights_)


def _layouts():
    big = np.random.default_rng(5).random((40, 2 * D))
    C = np.ascontiguousarray(big[:, ::2])
    ints = np.random.default_rng(6).integers(0, 2, (40, D))
    return {
        "strided": (big[:, ::2], C),
        "fortran": (np.asfortranarray(C), C),
        "reversed_rows": (C[::-1][::-1], C),
        "int64": (ints, ints.astype(np.float64)),
        "int8": (ints.astype(np.int8), ints.astype(np.float64)),
        "bool": (ints.astype(bool), ints.astype(np.float64)),
        "list": (C.tolist(), C),
        "float32": (C.astype(np.float32), C.astype(np.float32).astype(np.float64)),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", list(_layouts()))
def test_any_layout_equals_c_contiguous_float(backend, layout):
    X, Xc = _layouts()[layout]
    X_before = np.array(X, copy=True)
    a = make(backend).fit(X, epochs=2)
    b = make(backend).fit(Xc, epochs=2)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.transform(X), b.transform(Xc))
    np.testing.assert_array_equal(np.asarray(X), X_before)
