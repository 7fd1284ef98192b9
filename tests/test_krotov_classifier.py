"""KrotovHopfieldClassifier: the paper's top layer on the competing hidden units.

Exactness: the gradient against central finite differences; the whole training loop
against ``paper_top_layer`` below, a transcription of the paper's equations (per sample,
per output unit, Adam as Kingma & Ba write it) that shares no code with the library.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import sparsedream_fast as sdf
from sparsedream_fast.krotov import top_layer


# ============================================================ the paper, transcribed
def paper_top_layer(W, X, labels, n_classes, n, m, beta, epochs, B, lr0, b1, b2, eps, seed, S0, anneal=True):
    """Krotov & Hopfield's supervised layer, one sample and one output unit at a time.

    h_mu = max(sum_i W_mu,i x_i, 0)^n;  c_a = tanh(beta sum_mu S_a,mu h_mu);
    loss = sum_samples sum_a |c_a - t_a|^m, t_a = +1 for the label, -1 else; Adam on the
    minibatch sums, the rate lr0 (1 - epoch / epochs); each epoch a permutation from
    default_rng(seed), cut into n_samples // B minibatches.
    """
    rng = np.random.default_rng(seed)
    S = np.array(S0, dtype=np.float64)
    first = np.zeros_like(S)   # Adam's first moment
    second = np.zeros_like(S)  # and second
    t = 0
    N = X.shape[0]
    for ep in range(epochs):
        lr = lr0 * (1 - ep / epochs) if anneal else lr0
        perm = rng.permutation(N)
        for i in range(N // B):
            grad = np.zeros_like(S)
            for s in perm[i * B:(i + 1) * B]:
                h = np.array([max(float(np.dot(W[mu], X[s])), 0.0) ** n for mu in range(W.shape[0])])
                for a in range(n_classes):
                    target = 1.0 if a == labels[s] else -1.0
                    c = np.tanh(beta * float(np.dot(S[a], h)))
                    diff = c - target
                    # d/dS_a |c - t|^m = m |c - t|^(m-1) sign(c - t) * (1 - c^2) * beta * h
                    grad[a] += m * abs(diff) ** (m - 1) * np.sign(diff) * (1 - c * c) * beta * h
            t += 1
            first = b1 * first + (1 - b1) * grad
            second = b2 * second + (1 - b2) * grad ** 2
            S = S - lr * (first / (1 - b1 ** t)) / (np.sqrt(second / (1 - b2 ** t)) + eps)
    return S


def fitted_features(W):
    """A KrotovHopfield holding the weights W, frozen (the classifier does not retrain it)."""
    kh = sdf.KrotovHopfield(W.shape[1], W.shape[0], k=2, dtype="float64")
    kh.weights_, kh.backend_ = np.array(W, dtype=np.float64), "numpy"
    return FrozenEstimator(kh)


def problem(seed, n=60, d=12, hidden=9, classes=3):
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.3, (hidden, d))
    X = rng.random((n, d))
    y = rng.integers(0, classes, n)
    return W, X, y


# ================================================================ gradient
@pytest.mark.parametrize("m", [6.0, 3.0, 2.5, 1.5])
def test_gradient_matches_finite_differences(m):
    rng = np.random.default_rng(int(m * 10))
    C, H, B = 4, 7, 5
    S = rng.normal(0, 0.5, (C, H))
    Hb = rng.random((B, H)) * 3
    T = top_layer.targets(rng.integers(0, C, B), C, np.float64)
    beta = 0.3
    _, grad, _ = top_layer.loss_and_gradient(S, Hb, T, beta, m)
    num = np.empty_like(S)
    step = 1e-6
    for idx in np.ndindex(S.shape):
        Sp, Sm = S.copy(), S.copy()
        Sp[idx] += step
        Sm[idx] -= step
        num[idx] = (top_layer.loss_and_gradient(Sp, Hb, T, beta, m)[0]
                    - top_layer.loss_and_gradient(Sm, Hb, T, beta, m)[0]) / (2 * step)
    # central differences: error ~ step^2 * third derivative, far below 1e-6 here
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)
    assert np.abs(grad).max() > 1e-3  # not a vacuous comparison of zeros


def test_loss_is_the_papers():
    rng = np.random.default_rng(1)
    S, Hb = rng.normal(size=(3, 5)), rng.random((4, 5))
    y = np.array([0, 2, 1, 2])
    T = top_layer.targets(y, 3, np.float64)
    assert T.tolist() == [[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [-1, -1, 1]]
    loss, _, c = top_layer.loss_and_gradient(S, Hb, T, 0.7, 6.0)
    expected = sum(abs(np.tanh(0.7 * S[a] @ Hb[s]) - T[s, a]) ** 6 for s in range(4) for a in range(3))
    assert loss == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(c, np.tanh(0.7 * (Hb @ S.T)), rtol=1e-14)


# ============================================================ training loop
@pytest.mark.parametrize("anneal", [True, False])
@pytest.mark.parametrize("random_init", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_training_equals_the_transcription(anneal, random_init, normalize):
    W, X, y = problem(2)
    C = 3
    S0 = np.random.default_rng(5).normal(0, 0.05, (C, W.shape[0])) if random_init else np.zeros((C, W.shape[0]))
    kw = dict(n=4.5, m=6.0, beta=0.05, epochs=4, batch_size=16, lr=0.01, adam_betas=(0.85, 0.99), adam_eps=1e-7)
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), init=S0 if random_init else 0.0, anneal=anneal,
                                       normalize=normalize, dtype="float64", seed=7, **kw).fit(X, y)
    # normalize: every row on the unit sphere of the features' p-norm (p = 3)
    Wp = np.array([row / sum(abs(v) ** 3 for v in row) ** (1 / 3) for row in W]) if normalize else W
    S = paper_top_layer(Wp, X, y, C, kw["n"], kw["m"], kw["beta"], kw["epochs"], kw["batch_size"], kw["lr"], 0.85,
                        0.99, 1e-7, 7, S0, anneal)
    assert np.abs(S - S0).max() > 1e-3  # it did learn
    # float64 all along; the library sums the minibatch through BLAS in another order:
    # differences of a few ulp per step, Adam's division keeps them relative
    np.testing.assert_allclose(clf.weights_, S, rtol=1e-9, atol=1e-12)


def test_float32_follows_float64():
    W, X, y = problem(3, n=200)
    kw = dict(n=3.0, m=6.0, beta=0.05, epochs=5, batch_size=20, lr=0.01, seed=1)
    a = sdf.KrotovHopfieldClassifier(fitted_features(W), dtype="float64", **kw).fit(X, y)
    b = sdf.KrotovHopfieldClassifier(fitted_features(W), dtype="float32", **kw).fit(X, y)
    assert b.weights_.dtype == np.float32
    # Adam's steps are lr * m / sqrt(v): a float32 rounding of ~1e-7 in g changes a step by
    # about as much relative, and 50 steps of size <= 0.01 keep S within ~1e-5 of float64
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-3, atol=2e-5)
    assert np.mean(a.predict(X) == b.predict(X)) > 0.97


def test_fit_trains_the_features_as_KrotovHopfield_does():
    rng = np.random.default_rng(4)
    X, y = rng.random((120, 16)), rng.integers(0, 2, 120)
    kh = sdf.KrotovHopfield(16, 12, k=3, batch_size=20, seed=3)
    clf = sdf.KrotovHopfieldClassifier(kh, feature_epochs=3, epochs=2).fit(X, y)
    alone = clone(kh).fit(X, epochs=3)
    np.testing.assert_array_equal(clf.features_.weights_, alone.weights_)
    assert not hasattr(kh, "weights_")  # the given estimator is cloned, not fitted
    assert clf.weights_.shape == (2, 12)


def test_frozen_features_are_not_retrained():
    W, X, y = problem(5)
    frozen = fitted_features(W)
    clf = sdf.KrotovHopfieldClassifier(frozen, epochs=2, dtype="float64").fit(X, y)
    assert clf.features_ is frozen.estimator
    np.testing.assert_array_equal(clf.features_.weights_, W)
    np.testing.assert_allclose(np.sum(np.abs(clf.hidden_weights_) ** 3, axis=1), 1.0, rtol=1e-12)
    raw = sdf.KrotovHopfieldClassifier(frozen, epochs=2, normalize=False, dtype="float64").fit(X, y)
    np.testing.assert_array_equal(raw.hidden_weights_, W)


def test_zero_rows_stay_zero():
    W = np.array([[0.0, 0.0], [3.0, -4.0]])
    U = top_layer.unit_rows(W, 2.0)
    np.testing.assert_allclose(U, [[0, 0], [0.6, -0.8]], rtol=1e-15)


def test_set_params_after_fit_raises_instead_of_being_ignored():
    # issue 13.3: a parameter set after fit that changes what the fitted state means either
    # applies or raises; S was trained for its n and beta, so a change raises (it was ignored)
    W, X, y = problem(14)
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=2).fit(X, y)
    before = clf.decision_function(X)
    # predict ranks S h, which beta does not change
    for name, value, calls in (("n", 1.0, (clf.decision_function, clf.predict, clf.hidden_activity)),
                               ("beta", 5.0, (clf.decision_function,))):
        clf.set_params(**{name: value})
        for call in calls:
            with pytest.raises(ValueError, match=f"{name} changed from"):
                call(X)
        clf.set_params(n=4.5, beta=0.01)   # back as trained: the same model as before
    np.testing.assert_array_equal(clf.decision_function(X), before)


def test_learns_a_separable_problem():
    rng = np.random.default_rng(6)
    centres = rng.random((4, 30))
    y = rng.integers(0, 4, 400)
    X = np.clip(centres[y] + rng.normal(0, 0.1, (400, 30)), 0, 1)
    kh = sdf.KrotovHopfield(30, 40, k=3, batch_size=20, seed=0)
    clf = sdf.KrotovHopfieldClassifier(kh, feature_epochs=10, epochs=30, batch_size=20, lr=0.01).fit(X[:300], y[:300])
    assert clf.score(X[300:], y[300:]) > 0.95
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]


# ====================================================================== API
def test_any_labels_and_decision_function():
    W, X, _ = problem(7)
    rng = np.random.default_rng(7)
    names = np.array(["boot", "coat", "shirt"])
    y = names[rng.integers(0, 3, X.shape[0])]
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=3, dtype="float64").fit(X, y)
    assert clf.classes_.tolist() == ["boot", "coat", "shirt"]
    pred = clf.predict(X)
    assert set(pred) <= set(names)
    dec = clf.decision_function(X)
    assert dec.shape == (X.shape[0], 3) and np.all(np.abs(dec) <= 1)
    np.testing.assert_array_equal(names[np.argmax(dec, axis=1)], pred)
    assert clf.score(X, y) == pytest.approx(np.mean(pred == y))
    binary = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=3, dtype="float64").fit(X, y == "coat")
    d2 = binary.decision_function(X)
    assert d2.shape == (X.shape[0],)
    np.testing.assert_array_equal(binary.predict(X), d2 > 0)


def test_learning_curves():
    W, X, y = problem(8)
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=4, batch_size=10).fit(X, y, validation_data=(X, y))
    assert len(clf.loss_curve_) == 4 and len(clf.validation_scores_) == 4
    assert clf.validation_scores_[-1] == pytest.approx(clf.score(X, y))
    assert sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=2).fit(X, y).validation_scores_ == []


def test_pickle_and_clone():
    W, X, y = problem(9)
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=3).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.decision_function(X), clf.decision_function(X))
    fresh = clone(clf)
    assert not hasattr(fresh, "weights_") and fresh.get_params()["epochs"] == 3
    assert "features__estimator" in clf.get_params(deep=True)


def test_inputs_are_not_modified():
    W, X, y = problem(10)
    X0, y0 = X.copy(), y.copy()
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=2).fit(X, y)
    clf.predict(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# ============================================================ scikit-learn
@parametrize_with_checks([sdf.KrotovHopfieldClassifier(sdf.KrotovHopfield(n_hidden=20, k=2, batch_size=10),
                                                       feature_epochs=3, epochs=20, batch_size=20, lr=0.01,
                                                       dtype="float64")])
def test_scikit_learn_checks(estimator, check):
    # float64: the subset-invariance checks compare outputs to 1e-7, which float32's BLAS
    # blocking (a row's product differs with the number of rows) need not meet
    check(estimator)


# =================================================================== errors
@pytest.mark.parametrize("params, message", [
    (dict(m=0.5), "m must be >= 1"),
    (dict(n=0), "n must be > 0"),
    (dict(beta=-1.0), "beta must be > 0"),
    (dict(epochs=0), "epochs must be >= 1"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(lr=0.0), "lr must be > 0"),
    (dict(adam_betas=(0.9, 1.0)), "adam_betas must lie in"),
    (dict(adam_betas=0.9), "adam_betas must be a pair"),
    (dict(adam_eps=0), "adam_eps must be > 0"),
    (dict(feature_epochs=0), "feature_epochs must be >= 1"),
    (dict(init=np.zeros((2, 2))), "init array must have shape"),
    (dict(init=-0.1), "init must be >= 0"),
    (dict(dtype="float16"), "dtype must be"),
])
def test_bad_parameters_are_named(params, message):
    W, X, y = problem(11)
    with pytest.raises(ValueError, match=message):
        sdf.KrotovHopfieldClassifier(fitted_features(W), **params).fit(X, y)


def test_bad_features_and_data():
    W, X, y = problem(12)
    with pytest.raises(TypeError, match="features must be a KrotovHopfield"):
        sdf.KrotovHopfieldClassifier(features="krotov").fit(X, y)
    with pytest.raises(ValueError, match="not fitted|call 'fit'"):
        sdf.KrotovHopfieldClassifier(FrozenEstimator(sdf.KrotovHopfield(12, 9, k=2))).fit(X, y)
    with pytest.raises(ValueError, match="frozen features take 12 inputs"):
        sdf.KrotovHopfieldClassifier(fitted_features(W)).fit(X[:, :5], y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        sdf.KrotovHopfieldClassifier(fitted_features(W)).fit(X, np.zeros(X.shape[0]))
    with pytest.raises(ValueError, match="Unknown label type"):
        sdf.KrotovHopfieldClassifier(fitted_features(W)).fit(X, np.linspace(0, 1, X.shape[0]))
    with pytest.raises(ValueError, match="validation_data: y has shape"):
        sdf.KrotovHopfieldClassifier(fitted_features(W)).fit(X, y, validation_data=(X, y[:5]))
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN|infinity"):
        clf.predict(np.full_like(X, np.nan))


def test_overflowing_hidden_activity_is_refused():
    W, X, y = problem(13)
    clf = sdf.KrotovHopfieldClassifier(fitted_features(W), n=40.0, dtype="float32")
    with pytest.raises(ValueError, match="overflows float32"):
        clf.fit(X * 1e3, y)
    assert not hasattr(clf, "weights_")


def test_default_features_are_the_papers():
    _, X, y = problem(15)
    clf = sdf.KrotovHopfieldClassifier(epochs=2, feature_epochs=1).fit(X, y)
    kh = clf.features_
    assert (kh.n_hidden, kh.p, kh.k, kh.delta, kh.lr) == (2000, 3.0, 7, 0.4, 0.02)
    assert kh.n_inputs == X.shape[1] and kh.batch_size == X.shape[0]  # 100, cut to the 60 samples
    assert clf.weights_.shape == (3, 2000) and clf.weights_.dtype == np.float32
    defaults = sdf.KrotovHopfieldClassifier()
    assert (defaults.n, defaults.m, defaults.beta, defaults.lr, defaults.adam_betas) == (4.5, 6.0, 0.01, 1e-3, (0.9, 0.999))
