"""``KrotovHopfieldClassifier``: the competing hidden units and the paper's supervised top layer."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._blas import SingleThreadedBlas
from ..checkpoint import CheckpointMixin
from .._rng import batch_order
from .._runtime import DivergenceError
from .._validation import check_dtype, check_float, check_int, init_array
from . import top_layer
from .model import KrotovHopfield

try:  # scikit-learn >= 1.6
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover - older scikit-learn: no frozen features
    FrozenEstimator = None

__all__ = ["KrotovHopfieldClassifier"]

#: the paper's number of hidden units for MNIST
PAPER_HIDDEN = 2000


def _hidden(W, X, n):
    """The hidden activity of X through W, or ValueError when it overflows W's dtype."""
    with np.errstate(over="ignore"):
        Hx = top_layer.hidden_activity(W, np.asarray(X, dtype=W.dtype), n)
    if not np.isfinite(Hx).all():
        raise ValueError(f"the hidden activity max(W x, 0)^n overflows {W.dtype} (n={n}); "
                         "lower n or use dtype='float64'")
    return Hx


class KrotovHopfieldClassifier(CheckpointMixin, ClassifierMixin, BaseEstimator):
    """Competing hidden units (``KrotovHopfield``) read out by the paper's supervised top layer.

    Krotov & Hopfield (PNAS 2019) train the hidden weights ``W`` without labels, freeze
    them, and train only a top layer on the hidden activity::

        h = max(W x, 0) ** n                 (n_hidden,)
        c = tanh(beta * S h)                 (n_classes,)
        loss = sum over samples of sum_a |c_a - t_a| ** m,   t = +1 for the class, -1 else

    ``S`` is trained by minibatch gradient descent with Adam, its rate annealed linearly
    to 0 over the epochs. ``predict`` returns the class of the largest ``c``.

    Parameters
    ----------
    features : KrotovHopfield, FrozenEstimator of a fitted KrotovHopfield, or None
        The unsupervised layer. ``fit`` trains a clone of it on X for ``feature_epochs``
        epochs (its ``n_inputs`` set to X's width); None stands for
        ``KrotovHopfield(n_hidden=2000)`` (the paper's MNIST settings: p = 3, k = 7,
        delta = 0.4, batch 100, eps0 = 0.02; the batch is cut to the number of samples
        when there are fewer). ``sklearn.frozen.FrozenEstimator(fitted)`` reuses trained
        weights as they are.
    feature_epochs : int
        Epochs of the unsupervised training (its rate anneals over them). 20 suits
        Fashion-MNIST with eps0 = 0.02 (100 collapse there, see ``KrotovHopfield.fit``).
    normalize : bool
        Read the hidden units out through ``W`` with every row scaled to unit p-norm (p of
        the features), the sphere the unsupervised rule drives every row to and where the
        paper reads them out. A training stopped early leaves other norms (Fashion-MNIST,
        2,000 units after 20 epochs: ``sum |W_mu|^3`` from 46 to 560 between the 5th and
        95th percentile), which scale ``h`` by up to 1e7 and saturate the tanh at the paper's
        beta (test accuracy 50% after 10 epochs, against 85% normalized). False: W as
        trained.
    n : float
        Power of the hidden activity (paper: 4.5).
    m : float
        Power of the loss, >= 1 (paper: 6).
    beta : float
        Gain of the output units (0.01, as in the public ports of the paper's classifier).
    epochs : int
        Epochs of the top layer.
    batch_size : int
        Minibatch of the top layer (100; cut to the number of samples when there are fewer).
    lr : float
        Adam's initial learning rate (1e-3, Adam's own default), annealed linearly to 0
        over the epochs (epoch e of E uses ``lr * (1 - e / E)``) unless ``anneal`` is False.
    adam_betas : (float, float)
        Adam's moment decay rates b1, b2 (0.9, 0.999).
    adam_eps : float
        Adam's denominator guard (1e-8).
    anneal : bool
    init : float or ndarray of shape (n_classes, n_hidden)
        Standard deviation of normal initial top weights (0: all zero, the default), or
        the weights themselves.
    dtype : {"float32", "float64"}
        Of the top layer and the hidden activity (the features keep their own dtype for
        their training).
    seed : int or None
        Seeds the top layer's initial weights and minibatch order, and the default
        features.

    Attributes
    ----------
    features_ : KrotovHopfield
        The fitted unsupervised layer.
    hidden_weights_ : ndarray of shape (n_hidden, n_features)
        W as the top layer reads it (``features_.weights_``, rows scaled to unit p-norm
        when ``normalize``), model dtype.
    weights_ : ndarray of shape (n_classes, n_hidden)
        S.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    loss_curve_ : list of float
        Mean loss per training sample of every epoch (each minibatch before its update).
    validation_scores_ : list of float
        Accuracy on ``fit``'s ``validation_data`` after every epoch (empty without it).

    Examples
    --------
    >>> clf = sdf.KrotovHopfieldClassifier(epochs=100).fit(X, y)   # doctest: +SKIP
    >>> clf.score(X_test, y_test)                                  # doctest: +SKIP
    """

    def __init__(self, features: KrotovHopfield | BaseEstimator | None = None, feature_epochs: int = 20,
                 normalize: bool = True, n: float = 4.5, m: float = 6.0, beta: float = 0.01, epochs: int = 100,
                 batch_size: int = 100, lr: float = 1e-3, adam_betas: tuple[float, float] = (0.9, 0.999),
                 adam_eps: float = 1e-8, anneal: bool = True, init: float | ArrayLike = 0.0,
                 dtype: str = "float32", seed: int | None = 0):
        self.features = features
        self.feature_epochs = feature_epochs
        self.normalize = normalize
        self.n = n
        self.m = m
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.adam_betas = adam_betas
        self.adam_eps = adam_eps
        self.anneal = anneal
        self.init = init
        self.dtype = dtype
        self.seed = seed

    # ------------------------------------------------------------------ checks
    def _settings(self) -> dict:
        """Every hyper-parameter of the top layer, checked."""
        n = check_float(self.n, "n", positive=True)
        m = check_float(self.m, "m", positive=True)
        if m < 1:
            raise ValueError(f"m must be >= 1 (the loss |c - t|^m), got {m}")
        beta = check_float(self.beta, "beta", positive=True)
        epochs = check_int(self.epochs, "epochs", 1)
        batch = check_int(self.batch_size, "batch_size", 1)
        lr = check_float(self.lr, "lr", positive=True)
        betas = self.adam_betas
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"adam_betas must be a pair (b1, b2), got {betas!r}")
        b1, b2 = (check_float(b, name, nonnegative=True) for b, name in zip(betas, ("adam b1", "adam b2")))
        if not (b1 < 1 and b2 < 1):
            raise ValueError(f"adam_betas must lie in [0, 1), got {betas!r}")
        eps = check_float(self.adam_eps, "adam_eps", positive=True)
        for name in ("anneal", "normalize"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        feature_epochs = check_int(self.feature_epochs, "feature_epochs", 1)
        return dict(n=n, m=m, beta=beta, epochs=epochs, batch=batch, lr=lr, b1=b1, b2=b2, eps=eps,
                    anneal=bool(self.anneal), normalize=bool(self.normalize), feature_epochs=feature_epochs,
                    dtype=check_dtype(self.dtype))

    def _features_to_fit(self, n_samples: int, n_inputs: int):
        """(the KrotovHopfield to use, whether it must be trained on X)."""
        f = self.features
        if FrozenEstimator is not None and isinstance(f, FrozenEstimator):
            kh = f.estimator
            if not isinstance(kh, KrotovHopfield):
                raise TypeError(f"features must wrap a KrotovHopfield, got {type(kh).__name__}")
            if not hasattr(kh, "weights_"):
                raise NotFittedError("the KrotovHopfield inside FrozenEstimator is not fitted: fit it first")
            if kh.weights_.shape[1] != n_inputs:
                raise ValueError(f"the frozen features take {kh.weights_.shape[1]} inputs, X has {n_inputs} features")
            return kh, False
        if f is None:
            return KrotovHopfield(n_inputs=n_inputs, n_hidden=PAPER_HIDDEN, batch_size=min(100, n_samples),
                                  seed=self.seed), True
        if not isinstance(f, KrotovHopfield):
            raise TypeError(f"features must be a KrotovHopfield, a FrozenEstimator of one, or None; "
                            f"got {type(f).__name__}")
        return clone(f).set_params(n_inputs=n_inputs), True

    def _initial_weights(self, C, H, dtype, rng):
        init = self.init
        if isinstance(init, numbers.Real) and not isinstance(init, bool):
            sigma = check_float(init, "init", nonnegative=True)
            if sigma == 0:
                return np.zeros((C, H), dtype)
            return rng.normal(0.0, sigma, (C, H)).astype(dtype)
        return init_array(init, (C, H), "(n_classes, n_hidden)", dtype)

    # --------------------------------------------------------------------- fit
    def fit(self, X: ArrayLike, y: ArrayLike,
            validation_data: tuple[ArrayLike, ArrayLike] | None = None) -> KrotovHopfieldClassifier:
        """Train the hidden units on X (unless frozen), then the top layer on (X, y).

        The draws, in order: the features' own (``KrotovHopfield.fit``, seeded by its
        ``seed``); then ``rng = np.random.default_rng(seed)`` gives the initial top weights
        (when ``init`` > 0) and every epoch's permutation of the samples
        (``n // batch_size`` minibatches, the partial one dropped).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), any labels (``classes_`` holds them sorted)
        validation_data : (X_val, y_val) or None
            Scored after every epoch into ``validation_scores_`` (a learning curve; it
            does not steer the training).

        Returns
        -------
        self
        """
        cfg = self._settings()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"KrotovHopfieldClassifier needs samples of at least 2 classes, got 1 class "
                             f"({classes[0]!r})")
        Xv = yv = None
        if validation_data is not None:
            Xv, yv = validation_data
            Xv = validate_data(self, Xv, reset=False, dtype=[np.float64, np.float32])
            yv = np.asarray(yv)
            if yv.shape != (Xv.shape[0],):
                raise ValueError(f"validation_data: y has shape {yv.shape}, X has {Xv.shape[0]} samples")
        n_samples, n_inputs = X.shape
        dtype = cfg["dtype"]
        kh, train = self._features_to_fit(n_samples, n_inputs)
        if train:  # Ctrl-C stops it at a batch boundary (KeyboardInterrupt; this classifier unchanged)
            try:
                kh.fit(X, epochs=cfg["feature_epochs"])
            except DivergenceError as exc:
                raise DivergenceError(f"the unsupervised features of KrotovHopfieldClassifier: {exc}",
                                      step=exc.step) from exc
        W = kh.weights_.astype(dtype, copy=False)
        if cfg["normalize"]:
            W = top_layer.unit_rows(W, float(kh.p))
        C, Hn = classes.size, W.shape[0]
        rng = np.random.default_rng(self.seed)
        S = self._initial_weights(C, Hn, dtype, rng)
        B = min(cfg["batch"], n_samples)
        batches = batch_order(rng, n_samples, cfg["epochs"], B, True)
        Hx = _hidden(W, X, cfg["n"])
        Hv = None if Xv is None else _hidden(W, Xv, cfg["n"])  # once: only S changes
        T = top_layer.targets(y_index, C, dtype)
        scores = []

        def after_epoch(e):
            if Hv is not None:
                pred = classes[np.argmax(Hv @ S.T, axis=1)]
                scores.append(float(np.mean(pred == yv)))

        # The minibatch products are small (B x H x C); BLAS threads cost more than they
        # save there (27 ms against 1.2 ms per 100 x 2,000 x 10 step on the 2-core VM).
        with SingleThreadedBlas():
            loss_curve = top_layer.fit(S, Hx, T, batches, cfg["beta"], cfg["m"], cfg["lr"], cfg["b1"], cfg["b2"],
                                       cfg["eps"], cfg["anneal"], after_epoch)
        # the fitted state in one go, once training is complete: a Ctrl-C or an error during
        # fit leaves the classifier as it was
        self.features_, self.hidden_weights_, self.weights_, self.classes_ = kh, W, S, classes
        self._read_out = dict(n=cfg["n"], beta=cfg["beta"])  # as trained: _trained refuses a later change
        self.validation_scores_ = scores
        self.loss_curve_ = loss_curve
        self.n_iter_ = cfg["epochs"]
        return self

    # -------------------------------------------------------------- inference
    def _trained(self, name: str) -> float:
        """The value of ``n`` or ``beta`` the top layer was trained with. The weights ``S``
        mean something only for those, so a different value set after fit (``set_params``)
        raises instead of being used, or silently ignored, at inference."""
        value = self._read_out[name]
        now = check_float(getattr(self, name), name, positive=True)
        if now != value:
            raise ValueError(f"{name} changed from {value:g} to {now:g} since fit; the top layer was trained with "
                             f"{name}={value:g}: set it back or fit again")
        return value

    def hidden_activity(self, X: ArrayLike) -> np.ndarray:
        """``max(W x, 0) ** n`` of every sample (W: ``hidden_weights_``), shape
        (n_samples, n_hidden), model dtype."""
        check_is_fitted(self, "weights_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return _hidden(self.hidden_weights_, X, self._trained("n"))

    def _currents(self, X) -> np.ndarray:
        """``S h`` of every sample, shape (n_samples, n_classes)."""
        return self.hidden_activity(X) @ self.weights_.T

    def _outputs(self, X) -> np.ndarray:
        u = self._currents(X)
        return np.tanh(self._trained("beta") * u)

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The output units ``c = tanh(beta * S h)``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), values in [-1, 1]; with two classes the
        shape is (n_samples,) and the value ``c[1] - c[0]`` (> 0 for ``classes_[1]``), as
        scikit-learn expects of binary classifiers.
        """
        c = self._outputs(X)
        return c[:, 1] - c[:, 0] if c.shape[1] == 2 else c

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The class of the largest output unit, shape (n_samples,), from ``classes_``.

        The units are compared before the tanh (``S h``; the same order, but outputs
        saturated to 1.0 in floating point still rank).
        """
        u = self._currents(X)
        return self.classes_[np.argmax(u, axis=1)]
