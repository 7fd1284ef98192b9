"""The estimators are scikit-learn estimators: base classes, tags, clone, get/set_params."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import sparsedream_fast as sdf
from sparsedream_fast._estimator import deviations
from sparsedream_fast.tnn import WaveEncoder, presets

ESTIMATORS = {
    "SparseDream": (lambda: sdf.SparseDream(n_inputs=4, grid=(2, 3), k=2), TransformerMixin),
    "DreamComp": (lambda: sdf.DreamComp(n_inputs=4, n_neurons=6, n_classes=2), ClassifierMixin),
    "KrotovHopfield": (lambda: sdf.KrotovHopfield(n_inputs=4, n_hidden=6, k=2), TransformerMixin),
    "KrotovHopfieldClassifier": (lambda: sdf.KrotovHopfieldClassifier(sdf.KrotovHopfield(n_hidden=6, k=2)),
                                 ClassifierMixin),
    "TNNNetwork": (lambda: presets.v8_network(n_neurons=6, k=2, n_lines=5), TransformerMixin),
    "TNNColumn": (lambda: sdf.TNNColumn(5, n_neurons=6), BaseEstimator),
    "WaveEncoder": (lambda: WaveEncoder((2, 2)), TransformerMixin),
}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_every_estimator_derives_from_scikit_learn(name):
    make, mixin = ESTIMATORS[name]
    est = make()
    assert isinstance(est, BaseEstimator) and isinstance(est, mixin)
    tags = get_tags(est)                     # scikit-learn >= 1.6 needs __sklearn_tags__
    assert tags.requires_fit or name == "WaveEncoder"
    assert is_classifier(est) == (name in ("DreamComp", "KrotovHopfieldClassifier"))
    assert "<style>" in est._repr_html_()    # scikit-learn's HTML repr


@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_keeps_a_subclass_type(name):
    make, _ = ESTIMATORS[name]
    base = type(make())
    Sub = type("Sub" + base.__name__, (base,), {})
    est = make()
    sub = Sub(**est.get_params(deep=False))
    twin = clone(sub)
    assert type(twin) is Sub and twin is not sub
    assert twin.get_params(deep=False).keys() == est.get_params(deep=False).keys()


# ---------------------------------------------------------------- scikit-learn's own checks
def _checked():
    """Every estimator with small settings (KrotovHopfieldClassifier runs them in its own file)."""
    return [
        sdf.SparseDream(grid=(2, 4), k=2, lr=0.05, dtype="float64", backend="numpy"),
        sdf.SparseDream(grid=(2, 4), k=2, lr=0.05, lateral=None, competition="drive", backend="cpp"),
        sdf.DreamComp(n_neurons=8, batch_size=5, lr=0.05, dtype="float64", backend="numpy"),
        sdf.KrotovHopfield(n_hidden=8, k=2, batch_size=5, dtype="float64", backend="numpy"),
        sdf.TNNColumn(n_neurons=6, threshold=3, k=2, backend="numpy"),
        TNNNetwork_any_width(),
        WaveEncoder(shape=None, scale=100.0),
    ]


def TNNNetwork_any_width():
    """A network whose input takes its width from the data, as the checks vary it."""
    return sdf.TNNNetwork(seed=0, backend="numpy").add_input("x").add_column("c", 6, threshold=3, k=2) \
        .connect("x", "c", init=(0, 4))


# strict: a declared deviation that stops failing its check fails here (scikit-learn >= 1.7)
_STRICT = {"xfail_strict": True} if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters else {}


@parametrize_with_checks(_checked(), expected_failed_checks=deviations, **_STRICT)
def test_scikit_learn_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if name == "check_positive_only_tag_during_fit" and get_tags(estimator).input_tags.categorical \
            and sklearn.__version__.startswith("1.6."):
        pytest.skip("scikit-learn 1.6's own check subtracts a float from int32 data in place and fails "
                    "before it reaches the estimator (later versions cast first)")
    check(estimator)


def test_deviations_are_declared_with_reasons_in_one_place():
    from sparsedream_fast._estimator import DEVIATIONS
    for name, checks in DEVIATIONS.items():
        assert hasattr(sdf, name), name
        for check, reason in checks.items():
            assert check.startswith("check_") and len(reason) > 40


# ------------------------------------------------------------------------ model selection
def _two_class_images(n=120, d=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.uniform(0, 0.2, (n, d))
    X[y == 0, : d // 2] += 0.8
    X[y == 1, d // 2:] += 0.8
    p = rng.permutation(n)
    return X[p], y[p]


def test_grid_search_over_dreamcomp():
    X, y = _two_class_images()
    search = GridSearchCV(sdf.DreamComp(n_neurons=4, batch_size=10, backend="numpy"),
                          {"lr": [0.01, 0.05], "n_neurons": [2, 6]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
    assert search.best_estimator_.weights_.shape[0] == search.best_params_["n_neurons"]
    assert search.score(X, y) > 0.9


def test_grid_search_over_a_krotov_hopfield_pipeline():
    X, y = _two_class_images()
    pipe = Pipeline([("kh", sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=10, power=2.0, backend="numpy")),
                     ("clf", LogisticRegression(max_iter=300))])
    search = GridSearchCV(pipe, {"kh__n_hidden": [4, 8], "kh__delta": [0.0, 0.4]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
    assert search.best_estimator_.named_steps["kh"].weights_.shape == (search.best_params_["kh__n_hidden"], 16)


def test_cross_val_score_over_sparsedream():
    X, _ = _two_class_images()
    m = sdf.SparseDream(grid=(2, 3), k=1, lateral=None, competition="drive", backend="numpy")
    scores = cross_val_score(m, X, cv=3)
    assert scores.shape == (3,) and np.all(scores < 0) and np.all(np.isfinite(scores))
    # the score is the negative mean reconstruction error on the held-out part
    fitted = sdf.SparseDream(**m.get_params()).fit(X[40:])
    assert fitted.score(X[:40]) == -fitted.reconstruction_error(X[:40])
    # so a search prefers maps that reconstruct better: more winners reconstruct more
    search = GridSearchCV(m, {"k": [1, 3]}, cv=3).fit(X)
    assert search.best_params_ == {"k": 3}


# ------------------------------------------------------------------------ DreamComp's labels
@pytest.mark.parametrize("labels", [["cat", "dog"], [3, 7], [-1.0, 2.0], [False, True]])
def test_dreamcomp_takes_any_labels(labels):
    X, y01 = _two_class_images()
    y = np.asarray(labels)[y01]
    m = sdf.DreamComp(n_neurons=4, batch_size=10, lr=0.05, backend="numpy").fit(X, y)
    np.testing.assert_array_equal(m.classes_, np.sort(np.asarray(labels)))
    assert m.n_classes_ == 2 and m.weights_.shape == (4, 16 + 2)
    pred = m.predict(X)
    assert set(pred) <= set(labels) and m.score(X, y) > 0.9
    np.testing.assert_array_equal(pred, m.neuron_classes_[m.best_neurons(X)])
    same = sdf.DreamComp(n_neurons=4, batch_size=10, lr=0.05, backend="numpy").fit(X, y01)
    np.testing.assert_array_equal(m.weights_, same.weights_)       # labels only renamed


def test_dreamcomp_refuses_a_single_class_and_checks_n_classes():
    X, y = _two_class_images()
    kw = dict(n_neurons=4, batch_size=10, backend="numpy")
    with pytest.raises(ValueError, match="at least 2 classes, but y holds one class only"):
        sdf.DreamComp(**kw).fit(X, np.full(len(X), "cat"))
    with pytest.raises(ValueError, match="at least 2 classes"):
        sdf.DreamComp(n_classes=3, **kw).fit(X, np.zeros(len(X), int))
    with pytest.raises(ValueError, match="Unknown label type"):
        sdf.DreamComp(**kw).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="requires y"):
        sdf.DreamComp(**kw).fit(X, None)
    with pytest.raises(TypeError, match="n_classes=None takes any labels"):
        sdf.DreamComp(n_classes=2, **kw).fit(X, np.where(y, "a", "b"))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, n_classes=2\)"):
        sdf.DreamComp(n_classes=2, **kw).fit(X, y + 3)
    # an explicit n_classes keeps label synapses for classes missing from y
    m = sdf.DreamComp(n_classes=5, **kw).fit(X, y)
    np.testing.assert_array_equal(m.classes_, np.arange(5))
    assert m.weights_.shape == (4, 16 + 5) and m.predict_proba(X).shape == (len(X), 5)


def test_dreamcomp_predict_proba_is_the_winners_label_synapses():
    X, y = _two_class_images()
    m = sdf.DreamComp(n_neurons=4, batch_size=10, lr=0.05, backend="numpy").fit(X, np.where(y, "b", "a"))
    P = m.predict_proba(X)
    assert P.shape == (len(X), 2) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(1), 1.0)
    best = m.best_neurons(X)
    L = np.maximum(m.weights_[best, 16:], 0)
    np.testing.assert_allclose(P, L / L.sum(1, keepdims=True))
    np.testing.assert_array_equal(m.classes_[P.argmax(1)], m.predict(X))
    # a neuron without a positive label synapse gives all to its class
    m.weights_[:, 16:] = -np.arange(1, 3)
    np.testing.assert_array_equal(m.predict_proba(X[:3]), [[1.0, 0.0]] * 3)


# ------------------------------------------------------------------- shapes from the data
def test_shapes_come_from_the_data_and_explicit_ones_are_checked():
    X, y = _two_class_images()
    models = [sdf.SparseDream(grid=(2, 3), k=1, backend="numpy"),
              sdf.DreamComp(n_neurons=4, batch_size=10, backend="numpy"),
              sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=10, backend="numpy")]
    for m in models:
        assert m.n_inputs is None
        m.fit(X, y)
        assert m.n_features_in_ == 16 and m.n_inputs is None and not hasattr(m, "feature_names_in_")
        with pytest.raises(ValueError, match=f"X has 15 features, but {type(m).__name__} is expecting 16"):
            (m.predict if hasattr(m, "predict") else m.transform)(X[:, :15])
        wrong = clone(m).set_params(n_inputs=12)
        with pytest.raises(ValueError, match=f"X has 16 features, but {type(m).__name__} is expecting 12"):
            wrong.fit(X, y)
        assert clone(m).set_params(n_inputs=16).fit(X, y).n_features_in_ == 16


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = _two_class_images()
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(16)])
    for m in (sdf.SparseDream(grid=(2, 3), k=1, backend="numpy"), sdf.DreamComp(n_neurons=4, batch_size=10),
              sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=10), sdf.TNNColumn(n_neurons=4, threshold=3, k=2)):
        data = df if not isinstance(m, sdf.TNNColumn) else (df * 16).round().astype(int)
        m.fit(data, y)
        np.testing.assert_array_equal(m.feature_names_in_, df.columns)
        infer = m.forward if isinstance(m, sdf.TNNColumn) else m.predict if hasattr(m, "predict") else m.transform
        with pytest.raises(ValueError, match="feature names should match"):   # scikit-learn's check of names
            infer(data.rename(columns={"px0": "other"}))
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            infer(data.to_numpy())
    out = sdf.SparseDream(grid=(2, 3), k=1, backend="numpy").set_output(transform="pandas").fit(df).transform(df)
    assert list(out.columns) == [f"sparsedream{i}" for i in range(6)]


# -------------------------------------------------------------------------- before fit
@pytest.mark.parametrize("make, method", [
    (lambda: sdf.SparseDream(), "transform"), (lambda: sdf.SparseDream(), "score"),
    (lambda: sdf.DreamComp(), "predict"), (lambda: sdf.DreamComp(), "predict_proba"),
    (lambda: sdf.KrotovHopfield(), "transform"), (lambda: sdf.TNNColumn(4), "forward"),
    (lambda: presets.v8_network(n_lines=4), "transform"), (lambda: presets.v8_network(n_lines=4), "run"),
])
def test_not_fitted_error_before_fit(make, method):
    m = make()
    X = np.zeros((2, 4), np.uint8) if method in ("forward", "run") or "TNN" in type(m).__name__ else np.ones((2, 4))
    with pytest.raises(NotFittedError):
        getattr(m, method)(X[:, None] if method == "run" else X)


# --------------------------------------------- finite after the cast, non-negative inputs
def _big(X):
    X = X.copy()
    X[1, 2] = 1e300           # a finite float64, an inf float32
    return X


@pytest.mark.parametrize("make", [
    lambda **kw: sdf.SparseDream(grid=(2, 3), k=1, backend="numpy", **kw),
    lambda **kw: sdf.DreamComp(n_neurons=4, batch_size=10, backend="numpy", **kw),
    lambda **kw: sdf.KrotovHopfield(n_hidden=6, k=2, batch_size=10, backend="numpy", **kw),
])
def test_values_that_overflow_the_model_dtype_are_refused(make):
    X, y = _two_class_images()
    with pytest.raises(ValueError, match=r"X contains 1 NaN or inf value\(s\) as float32"):
        make(dtype="float32").fit(_big(X), y)
    m = make(dtype="float32").fit(X, y)
    W = m.weights_.copy()
    with pytest.raises(ValueError, match=r"as float32"):
        (m.predict if hasattr(m, "predict") else m.transform)(_big(X))
    np.testing.assert_array_equal(m.weights_, W)
    make(dtype="float64").fit(_big(X) / 1e300 * 1e-10 + X, y)   # (finite there)
    W0 = make(dtype="float64").fit(X, y).weights_.astype(np.float64)
    W0[0, 0] = 1e300
    with pytest.raises(ValueError, match=r"init array contains 1 NaN or inf value\(s\) as float32"):
        make(dtype="float32", init=W0).fit(X, y)


def test_sparsedream_refuses_negative_inputs():
    X, _ = _two_class_images()
    m = sdf.SparseDream(grid=(2, 3), k=1, backend="numpy").fit(X)
    W = m.weights_.copy()
    Xn = X.copy()
    Xn[3, 4] = -0.5
    for call in (m.fit, m.partial_fit):
        with pytest.raises(ValueError, match=r"Negative values in data: X must be non-negative; got 1 negative"):
            call(Xn)
    np.testing.assert_array_equal(m.weights_, W)
    with pytest.raises(ValueError, match="Negative values"):
        sdf.SparseDream(grid=(2, 3), k=1, backend="numpy").fit(Xn)
