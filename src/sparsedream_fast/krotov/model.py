"""The ``KrotovHopfield`` feature learner: rule C behind a scikit-learn-style API."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._backends import rule_module
from ..checkpoint import CheckpointMixin
from .._estimator import record_names
from .._rng import batch_order, batches_left
from .._runtime import DivergenceError, StepBoundary, refuse_non_finite
from .._validation import check_data, check_dtype, check_float, check_int, init_array
from . import reference

__all__ = ["KrotovHopfield"]

#: backends implementing rule C, by preference of ``backend="auto"``
_IMPLEMENTED = {"cpp": "_cpp", "numba": "_numba", "numpy": "reference", "cuda": "_cuda"}


class KrotovHopfield(CheckpointMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Unsupervised competing hidden units (Krotov & Hopfield, PNAS 2019; rule C, seed 003).

    Parameters
    ----------
    n_inputs : int or None
        D (784 for MNIST); None: the width of X at fit (``n_features_in_``).
    n_hidden : int
        Hidden units (the paper's MNIST setting: 2,000).
    p : float
        Lebesgue norm of the weights (paper: 3).
    k : int
        Rank of the unit that is pushed away (anti-Hebbian), 2 <= k <= n_hidden (paper: 7).
    delta : float
        Strength of the anti-Hebbian term (0.4).
    lr : float
        eps0, the initial learning rate, annealed linearly to 0 over the epochs of ``fit``.
    batch_size : int
    init : (mu, sigma) or ndarray of shape (n_hidden, n_inputs)
        Normal initial weights N(mu, sigma), or the weights themselves.
    power : float or None
        ``transform`` returns ``max(I, 0) ** power`` when set (the paper's n = 4.5), else
        the raw currents I.
    prec : float
        Guard of the normalisation by the largest update (seed: 1e-30).
    dtype, seed : as in ``SparseDream``
    backend : {"auto", "cpp", "numba", "numpy", "cuda"}
        "auto": the first usable of cpp, numba, numpy; "cuda" only when asked for (see
        ``krotov/_cuda.py`` for its numerics).

    Attributes
    ----------
    weights_ : ndarray of shape (n_hidden, n_inputs), ``dtype``
    n_features_in_ : int
        D.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame fitted on.
    n_batches_ : int
        Minibatches the last ``fit`` completed: all of them, or, when Ctrl-C or a
        divergence ended it early, those before; ``weights_`` is then exactly the state
        after them (a fresh fit of that many batches of the same schedule gives the same
        bits).
    backend_ : str

    Examples
    --------
    The supervised readout of the paper, as a scikit-learn Pipeline::

        from sklearn.pipeline import make_pipeline
        from sklearn.linear_model import LogisticRegression
        clf = make_pipeline(sdf.KrotovHopfield(784, 2000, power=4.5), LogisticRegression(max_iter=500))
        clf.fit(X, y, krotovhopfield__epochs=20).score(X_test, y_test)
    """

    def __init__(self, n_inputs: int | None = None, n_hidden: int = 100, p: float = 3.0, k: int = 7,
                 delta: float = 0.4, lr: float = 0.02, batch_size: int = 100,
                 init: tuple[float, float] | ArrayLike = (0.0, 1.0), power: float | None = None,
                 prec: float = 1e-30, dtype: str = "float32", backend: str = "auto", seed: int | None = 0):
        self.n_inputs = n_inputs
        self.n_hidden = n_hidden
        self.p = p
        self.k = k
        self.delta = delta
        self.lr = lr
        self.batch_size = batch_size
        self.init = init
        self.power = power
        self.prec = prec
        self.dtype = dtype
        self.backend = backend
        self.seed = seed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            tags.transformer_tags.preserves_dtype = [check_dtype(self.dtype).name]  # results in the model dtype
        except ValueError:
            pass
        return tags

    @property
    def _n_features_out(self) -> int:
        """n_hidden, for ``get_feature_names_out`` (``krotovhopfield0`` ...)."""
        return self.weights_.shape[0]

    def fit(self, X: ArrayLike, y: object = None, epochs: int = 1, shuffle: bool = True) -> "KrotovHopfield":
        """Initialise and train for ``epochs`` epochs (lr annealed linearly to 0 over them).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : ignored
        epochs : int
            With lr = 0.02, 20 epochs suit Fashion-MNIST; 100 epochs collapse there (the rate
            stays high for tens of epochs and pushes nearly every unit off the data: 6 units
            end up the strongest for every image, and a readout drops from 86% to 71%; the
            float64 rule and the notebook's code do the same, BENCHMARKS.md). For long
            schedules, lower lr.
        shuffle : bool

        Returns
        -------
        self

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C, at the next batch boundary (noticed within about 20 ms of work on the
            native backends); the model holds the state after ``n_batches_`` batches.
        DivergenceError
            When a batch's update is not finite (a learning rate too large): training stops
            before it, the model holds the state after the ``n_batches_`` batches before it.
        """
        D = None if self.n_inputs is None else check_int(self.n_inputs, "n_inputs", 1)
        H = check_int(self.n_hidden, "n_hidden", 2)
        k = check_int(self.k, "k", 2, H)
        p = check_float(self.p, "p", positive=True)
        if p < 1:
            raise ValueError(f"p must be >= 1, got {p}")
        delta = check_float(self.delta, "delta", nonnegative=True)
        lr = check_float(self.lr, "lr", positive=True)
        B = check_int(self.batch_size, "batch_size", 1)
        prec = check_float(self.prec, "prec", positive=True)
        if self.power is not None:
            check_float(self.power, "power", positive=True)
        dtype = check_dtype(self.dtype)
        backend, mod = rule_module(self.backend, _IMPLEMENTED, __package__, "KrotovHopfield")
        epochs = check_int(epochs, "epochs", 1)
        Xc = check_data(X, D, dtype, owner=self)
        D = Xc.shape[1]
        if B > Xc.shape[0]:
            raise ValueError(f"batch_size={B} is larger than the number of samples (n_samples = {Xc.shape[0]})")
        record_names(self, X, Xc, reset=True)
        rng = np.random.default_rng(self.seed)
        W = self._init_weights(H, D, dtype, rng)
        batches = batch_order(rng, Xc.shape[0], epochs, B, bool(shuffle))
        self.weights_, self.backend_, self.n_batches_ = W, backend, 0
        E, nb = batches.shape[:2]
        with StepBoundary() as guard:  # Ctrl-C acts between batches, with n_batches_ current
            while self.n_batches_ < E * nb:
                e, part = batches_left(batches, self.n_batches_)
                ctl = guard.begin()
                try:
                    mod.fit(W, Xc, part, p, k, delta, lr, prec, epoch0=e, total_epochs=E, control=ctl)
                finally:  # also when a signal handler's exception comes out of the native loop
                    self.n_batches_ += ctl.done
                if ctl.diverged:
                    raise self._divergence(nb, lr, p)
                guard.check()  # a deferred Ctrl-C raises here; if its handler returns, go on
        return self

    def _divergence(self, per_epoch, lr, p) -> DivergenceError:
        n = self.n_batches_
        e, i = divmod(n, per_epoch)
        return DivergenceError(
            f"KrotovHopfield training diverged: the update of batch {n:,} (batch {i:,} of epoch {e}) is not "
            f"finite (NaN or inf), so training stopped before it; the model holds the weights after the {n:,} "
            f"batches before it (n_batches_). Likely cause: lr={lr:g} is too large: a batch moves a weight by up "
            f"to lr, and the currents sum |w|^{p - 1:g} x over the inputs, which overflow "
            f"{self.weights_.dtype} once the weights grow that far; lower lr (the paper's 0.02 suits inputs in "
            f"[0, 1]) or use dtype='float64'.", step=n)

    def _init_weights(self, H, D, dtype, rng):
        init = self.init
        if isinstance(init, (tuple, list)) and len(init) == 2 and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in init):
            mu = check_float(init[0], "init mu")
            sigma = check_float(init[1], "init sigma", nonnegative=True)
            return rng.normal(mu, sigma, (H, D)).astype(dtype)
        return init_array(init, (H, D), "(n_hidden, n_inputs)", dtype)

    def _inference_params(self):
        """``p`` and ``power`` as they are now, checked like ``fit`` checks them: set after fit,
        they apply to ``transform`` (``k``, ``delta`` and the rest apply at the next ``fit``,
        which starts afresh)."""
        p = check_float(self.p, "p", positive=True)
        if p < 1:
            raise ValueError(f"p must be >= 1, got {p}")
        power = None if self.power is None else check_float(self.power, "power", positive=True)
        return p, power

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Hidden currents ``I`` of every sample, or ``max(I, 0) ** power`` when ``power`` is set.

        ``p`` and ``power`` are read when called: set after fit, they apply here.

        Returns
        -------
        ndarray of shape (n_samples, n_hidden), model dtype
        """
        check_is_fitted(self)
        p, power = self._inference_params()
        Xc = check_data(X, self.weights_.shape[1], self.weights_.dtype, allow_1d=True, owner=self)
        record_names(self, X, Xc, reset=False)
        refuse_non_finite("weights_", self.weights_)
        I = reference.currents(self.weights_, Xc, p).T
        if power is not None:
            I = np.maximum(I, 0) ** power
        return np.ascontiguousarray(I)

