"""Property-based tests (hypothesis) over the public constructors and fit / transform arguments.

For any drawn input, a call either raises a clear exception (ValueError or TypeError, with
a message) or gives a finite result; the caller's arrays are never changed; and when a call
fails, the model's fitted state is what it was before. Parameters and data are drawn from
valid values mixed with wrong ones (zero, negative, NaN, inf, None, strings, bools, lists,
wrong shapes and dtypes). Each test draws a bounded number of examples on tiny models, so
the file runs in a few tens of seconds.

Left out for now: inputs with negative or huge (1e300) values, learning rates far above 1
and DreamComp reconstruction weights far below 1. The rules do not yet refuse them (issue 13, part 3: training can end in NaN
weights with only a warning); they belong here once that is fixed.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from testing import FAST_BACKENDS  # noqa: E402

import sparsedream_fast as sdf  # noqa: E402

BACKENDS = ["numpy"] + [b for b in FAST_BACKENDS if b == "cpp"]  # numba: minutes of JIT per dtype mix
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
CLEAR = (ValueError, TypeError)

#: wrong values of any parameter
NASTY = st.sampled_from([0, -1, -0.5, 2.5, math.nan, math.inf, -math.inf, None, "x", "", True, False, 10 ** 12,
                         [1, 2], (1,), {"a": 1}, b"\x00", np.float64(np.nan), np.int64(-3)])


def either(valid):
    """A valid value or a wrong one."""
    return st.one_of(valid, NASTY)


def params(**valid):
    """Keyword arguments: half the time all valid, else each maybe wrong (a subset of the
    names is given either way)."""
    return st.one_of(st.fixed_dictionaries({}, optional=valid),
                     st.fixed_dictionaries({}, optional={k: either(v) for k, v in valid.items()}))


@st.composite
def inputs(draw, d):
    """An input matrix of about (n, d): mostly valid values in [0, 1], sometimes NaN / inf, a
    wrong width, no rows, another dtype, or one dimension."""
    clean = draw(st.booleans())
    n = draw(st.integers(4 if clean else 0, 12))
    width = d if clean else draw(st.sampled_from([d, d + 1, max(1, d - 1)]))
    dtype = draw(st.sampled_from(["float64", "float32"] if clean else ["float64", "float32", "int64", "bool",
                                                                       "float16"]))
    X = np.random.default_rng(draw(st.integers(0, 2 ** 16))).random((n, width))
    if n and not clean and draw(st.booleans()):
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, width - 1))] = draw(st.sampled_from(
            [math.nan, math.inf, -math.inf]))
    if dtype == "int64":
        X = (X > 0.5).astype(np.int64) if np.isfinite(X).all() else X
    elif dtype == "bool":
        X = X > 0.5
    else:
        X = X.astype(dtype)
    shape = "2d" if clean else draw(st.sampled_from(["2d", "1d", "3d"]))
    if shape == "1d":
        X = X.ravel()
    elif shape == "3d":
        X = X[None]
    return X


def same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def state(m):
    """A fitted model's state as a dict of copied arrays and numbers."""
    out = {"W": np.array(m.weights_, copy=True)}
    for name in ("n_steps_", "neuron_classes_", "trace_"):
        try:
            v = getattr(m, name)
        except (AttributeError, ValueError):
            continue
        out[name] = np.array(v, copy=True)
    return out


def assert_state(m, before):
    after = state(m)
    assert after.keys() == before.keys()
    for k in before:
        assert same(after[k], before[k]), k


def check_call(fn, *arrays):
    """fn() raises a clear error or returns; the arrays are unchanged either way. Returns
    (result, error)."""
    copies = [np.array(a, copy=True) for a in arrays]
    try:
        result, error = fn(), None
    except CLEAR as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        result, error = None, exc
    event("refused" if error is not None else "ran")
    for a, c in zip(arrays, copies):
        assert same(a, c), "a caller's array was changed"
    return result, error


def finite(x):
    if hasattr(x, "toarray"):
        x = x.toarray()
    x = np.asarray(x)
    return x.dtype.kind not in "fc" or np.isfinite(x).all()


D = 6
TRAIN = np.random.default_rng(1).random((40, D))
LABELS = np.arange(40) % 3


def fitted(make):
    """One fitted model per (estimator, backend), copied for every example."""
    cache = {}

    def get(backend):
        if backend not in cache:
            cache[backend] = make(backend)
        return copy.deepcopy(cache[backend])
    return get


_sparsedream = fitted(lambda b: sdf.SparseDream(n_inputs=D, grid=(3, 3), k=2, lr=0.05, backend=b,
                                                lateral=sdf.lateral.box(1, 0.1)).fit(TRAIN, epochs=1))
_dreamcomp = fitted(lambda b: sdf.DreamComp(n_inputs=D, n_neurons=6, n_classes=3, batch_size=10,
                                            backend=b).fit(TRAIN, LABELS, epochs=1))
_krotov = fitted(lambda b: sdf.KrotovHopfield(n_inputs=D, n_hidden=6, k=2, batch_size=10,
                                              backend=b).fit(TRAIN, epochs=1))

SPARSEDREAM_PARAMS = params(
    k=st.integers(1, 9),
    lr=st.floats(1e-4, 1.0),
    competition=st.sampled_from(["drive", "lateral", "normalized_lateral", "mean_lateral",
                                           "weighted_average"]),
    output=st.sampled_from(["drive", "competition"]),
    error_clip=st.one_of(st.none(), st.floats(0.01, 10)),
    trace=st.one_of(st.none(), st.floats(0.01, 1.0)),
    w_max=st.one_of(st.none(), st.floats(0.1, 10), st.just(math.inf)),
    clip_every=st.integers(1, 50),
    prec=st.floats(1e-12, 1e-3),
    dtype=st.sampled_from(["float32", "float64"]),
    grid=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    init=st.tuples(st.floats(0.0, 0.5), st.floats(0.5, 1.0)),
    seed=st.integers(0, 2 ** 31),
)
FIT_KW = params(
    epochs=st.integers(1, 2),
    shuffle=st.booleans(),
)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(params=SPARSEDREAM_PARAMS, X=inputs(D), fit_kw=FIT_KW, warm=st.booleans())
def test_sparsedream_fit_and_transform(backend, params, X, fit_kw, warm):
    m = _sparsedream(backend)
    before = state(m)
    m.set_params(warm_start=warm, **params)
    _, error = check_call(lambda: m.fit(X, **fit_kw), X)
    if error is not None:
        assert_state(m, before)
        return
    assert np.isfinite(m.weights_).all()
    fitted_state = state(m)
    for method in ("transform", "winners", "reconstruct"):
        out, error = check_call(lambda: getattr(m, method)(X), X)
        assert error is not None or finite(out), method
        assert_state(m, fitted_state)


DREAMCOMP_PARAMS = params(
    n_neurons=st.integers(1, 8),
    n_classes=st.integers(3, 4),
    recon_weight=st.floats(0.5, 20.0),  # far below 1 the label synapses diverge (issue 13, part 3)
    lr=st.floats(1e-4, 0.5),
    label_lr=st.one_of(st.none(), st.floats(1e-4, 0.5)),
    batch_size=st.integers(1, 4),
    init=st.tuples(st.floats(0.0, 0.4), st.floats(0.5, 1.0)),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2 ** 31),
)


@st.composite
def labels(draw, X):
    n = X.shape[0] if X.ndim >= 1 else 0
    kind = draw(st.sampled_from(["ok"] * 8 + ["short", "float", "nan", "2d", "negative", "big"]))
    y = np.random.default_rng(draw(st.integers(0, 99))).integers(0, 3, n)
    if kind == "short":
        y = y[: max(0, n - 1)]
    elif kind == "float":
        y = y + 0.5
    elif kind == "nan":
        y = y.astype(float)
        if n:
            y[0] = math.nan
    elif kind == "2d":
        y = y[:, None]
    elif kind == "negative":
        y = y - 5
    elif kind == "big":
        y = y + 10 ** 6
    return y


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(params=DREAMCOMP_PARAMS, data=st.data(), fit_kw=FIT_KW)
def test_dreamcomp_fit_predict(backend, params, data, fit_kw):
    m = _dreamcomp(backend)
    X = data.draw(inputs(D))
    y = data.draw(labels(X))
    before = state(m)
    m.set_params(**params)
    _, error = check_call(lambda: m.fit(X, y, **fit_kw), X, y)
    if error is not None:
        assert_state(m, before)
        return
    assert np.isfinite(m.weights_).all()
    fitted_state = state(m)
    for method in ("predict", "transform"):
        if hasattr(m, method):
            out, error = check_call(lambda: getattr(m, method)(X), X)
            assert error is not None or finite(out), method
            assert_state(m, fitted_state)


KROTOV_PARAMS = params(
    n_hidden=st.integers(4, 8),
    p=st.floats(1.0, 5.0),
    k=st.integers(2, 4),
    delta=st.floats(0.0, 1.0),
    lr=st.floats(1e-4, 0.1),
    batch_size=st.integers(1, 4),
    power=st.one_of(st.none(), st.floats(1.0, 5.0)),
    prec=st.floats(1e-30, 1e-6),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2 ** 31),
)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(params=KROTOV_PARAMS, X=inputs(D), fit_kw=FIT_KW)
def test_krotov_fit_transform(backend, params, X, fit_kw):
    m = _krotov(backend)
    before = state(m)
    m.set_params(**params)
    _, error = check_call(lambda: m.fit(X, **fit_kw), X)
    if error is not None:
        assert_state(m, before)
        return
    assert np.isfinite(m.weights_).all()
    fitted_state = state(m)
    out, error = check_call(lambda: m.transform(X), X)
    assert error is not None or finite(out)
    assert_state(m, fitted_state)


@SETTINGS
@given(kw=params(
    n_inputs=st.integers(1, 8), grid=st.tuples(st.integers(1, 3), st.integers(1, 3)), k=st.integers(1, 9),
    lr=st.floats(1e-4, 1.0), backend=st.sampled_from(["auto", "numpy", "cpp", "numba", "cuda", "gpu"]),
    dtype=st.sampled_from(["float32", "float64"]),
))
def test_constructors_store_their_arguments(kw):
    """scikit-learn's contract: a constructor stores its arguments as given and checks
    nothing (fit checks them, as the tests above show)."""
    for cls in (sdf.SparseDream, sdf.DreamComp, sdf.KrotovHopfield):
        names = set(cls().get_params())
        mine = {k: v for k, v in kw.items() if k in names}
        m = cls(**mine)
        for k, v in mine.items():
            got = m.get_params()[k]
            assert got is v or (isinstance(v, float) and math.isnan(v) and math.isnan(got)), k


@pytest.mark.parametrize("backend", BACKENDS)
def test_dreamcomp_refuses_a_recon_weight_that_overflows_in_its_dtype(backend):
    """Found by test_dreamcomp_fit_predict: recon_weight=1.4e-45 passed the check (> 0 in
    float64) and, a subnormal in float32, turned the label synapses into -inf."""
    m = _dreamcomp(backend)
    before = state(m)
    m.set_params(recon_weight=1.401298464324817e-45, dtype="float32", n_neurons=1, batch_size=1)
    with pytest.raises(ValueError, match="recon_weight=1.4.*too small for float32"):
        m.fit(TRAIN, LABELS)
    assert_state(m, before)

