"""``TNNColumn``: one column of temporal neurons with k-WTA and STDP (rule D)."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from .._estimator import not_fitted
from ..checkpoint import CheckpointMixin
from .._validation import as_host_array, check_int, check_not_empty, width_error
from .config import STDP, check_T
from .encoding import check_spike_times
from .network import TNNNetwork

__all__ = ["TNNColumn"]


class TNNColumn(CheckpointMixin, BaseEstimator):
    """A column of ``n_neurons`` temporal neurons on ``n_inputs`` lines (docs/rules/tnn.md).

    Ramp-no-leak integration: input ``i`` (integer weight ``w``, spike time ``x``) adds
    ``min(max(t - x + 1, 0), w)`` to the potential at step t; a neuron fires at the first step
    its potential reaches ``threshold``; the ``k`` earliest spikes survive (ties to the lower
    index). STDP after each wave with counter-based Philox draws (identical on every backend).
    Waves are independent here; recurrence and delays need :class:`TNNNetwork`.

    Parameters
    ----------
    n_inputs : int or None
        Input lines per wave; None: the data's width at fit (``n_features_in_``).
    n_neurons : int
        Seed 004: 50.
    threshold : int >= 1
        Seed 004: 32.
    k : int in [1, n_neurons]
        Seed 004: 2.
    T : int
        Steps per wave, 1..255 (seed 004: 16).
    w_max : int
        Weights stay integers in [0, w_max] (seed 004: 16).
    u_capture, u_minus, u_search, u_backoff, u_min : float in [0, 1]
        STDP probabilities; defaults are seed 004's 20/128, 20/128, 2/128, 96/128, 4/128.
    init : (int, int) or ndarray of shape (n_neurons, n_inputs)
        Initial weights drawn uniformly in [low, high] (inclusive), or the weights.
    dtype : {"int32", "uint8"}
    backend : {"auto", "numpy", "cpp", "cuda"}
    seed : int or None

    Attributes
    ----------
    weights_ : ndarray of shape (n_neurons, n_inputs), ``dtype``
    n_features_in_ : int
        Input lines per wave.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame fitted on.
    n_waves_learned_ : int
    backend_ : str
    """

    def __init__(self, n_inputs: int | None = None, n_neurons: int = 50, threshold: int = 32, k: int = 2,
                 T: int = 16, w_max: int = 16, u_capture: float = 20 / 128, u_minus: float = 20 / 128,
                 u_search: float = 2 / 128, u_backoff: float = 96 / 128, u_min: float = 4 / 128,
                 init: tuple[int, int] | ArrayLike = (0, 2), dtype: str = "int32", backend: str = "auto",
                 seed: int | None = 0):
        self.n_inputs = n_inputs
        self.n_neurons = n_neurons
        self.threshold = threshold
        self.k = k
        self.T = T
        self.w_max = w_max
        self.u_capture = u_capture
        self.u_minus = u_minus
        self.u_search = u_search
        self.u_backoff = u_backoff
        self.u_min = u_min
        self.init = init
        self.dtype = dtype
        self.backend = backend
        self.seed = seed

    def __sklearn_is_fitted__(self) -> bool:
        net = self.__dict__.get("_net")
        return net is not None and net._built

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True      # integer spike times in [0, T]
        tags.input_tags.positive_only = True
        return tags

    def _make_net(self) -> TNNNetwork:
        stdp = STDP(self.u_capture, self.u_minus, self.u_search, self.u_backoff, self.u_min)
        net = TNNNetwork(T=self.T, dtype=self.dtype, backend=self.backend, seed=self.seed)
        net.add_input("in", None if self.n_inputs is None else check_int(self.n_inputs, "n_inputs", 1))
        net.add_column("column", self.n_neurons, self.threshold, self.k, self.w_max, stdp)
        net.connect("in", "column", init=self.init)
        net._backend()
        return net

    def _waves(self, X, fitted: bool, ndim=(1, 2)):
        """X as (n_waves, 1, n_inputs) uint8 spike times, and whether it was one wave."""
        A = as_host_array(X, "X")
        if not fitted:
            check_not_empty(A)
        n = self._net.n_features_in_ if fitted else self.n_inputs
        S = check_spike_times(A, check_T(self.T), None, "X (spike times)", ndim=ndim)
        if n is not None and S.shape[-1] != check_int(n, "n_inputs", 1):
            raise width_error(self, S.shape[-1], n, "input lines")
        if fitted and S.ndim == 2:
            validate_data(self, X, skip_check_array=True, reset=False)   # feature names
        return S.reshape(-1, 1, S.shape[-1]), S.ndim == 1

    def fit(self, X: ArrayLike, y: object = None, epochs: int = 1, shuffle: bool = False) -> "TNNColumn":
        """Initialise the weights and learn from waves, one after the other.

        Parameters
        ----------
        X : array-like of shape (n_waves, n_inputs), integer spike times in [0, T] (T = none)
        y : ignored (unsupervised; present for scikit-learn)
        epochs : int
        shuffle : bool
            Present the waves in a fresh seeded order each epoch (default: in order).

        Returns
        -------
        self
        """
        epochs = check_int(epochs, "epochs", 1)
        net = self._make_net()
        S, _ = self._waves(X, fitted=False, ndim=(2,))
        if hasattr(X, "columns"):
            validate_data(self, X, skip_check_array=True, reset=True)
        else:
            self.__dict__.pop("feature_names_in_", None)
        try:
            net.fit(S, epochs=epochs, shuffle=shuffle)
        finally:  # a Ctrl-C stops training after a wave: the column then holds the waves learned
            if net._built:
                self._net, self.n_features_in_ = net, net.n_features_in_
                self.backend_ = getattr(net, "backend_", net._backend()[0])
        return self

    def partial_fit(self, X: ArrayLike, y: object = None) -> "TNNColumn":
        """One pass over the waves of X in order, continuing the weights and the STDP counter
        (the first call initialises them like ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_waves, n_inputs)
        y : ignored

        Returns
        -------
        self
        """
        if not self.__sklearn_is_fitted__():
            return self.fit(X)
        S, _ = self._waves(X, fitted=True, ndim=(2,))
        try:
            self._net.partial_fit(S)
        finally:
            self.backend_ = getattr(self._net, "backend_", self.backend_)
        return self

    def forward(self, X: ArrayLike) -> np.ndarray:
        """Output spike times after k-WTA, without learning.

        Parameters
        ----------
        X : array-like of shape (n_waves, n_inputs) or (n_inputs,)
            Integer spike times in [0, T].

        Returns
        -------
        ndarray of shape (n_waves, n_neurons) or (n_neurons,), uint8 (T = no spike)
        """
        check_is_fitted(self)
        S, one = self._waves(X, fitted=True)
        Y = self._net.run(S, "column")["column"][:, 0, :]
        return Y[0] if one else Y

    def _built_net(self):
        if not self.__sklearn_is_fitted__():
            raise not_fitted(self, "it has no weights yet: call fit, or assign weights_")
        return self._net

    @property
    def weights_(self) -> np.ndarray:
        """The column's weights, shape (n_neurons, n_inputs), ``dtype`` (the array the kernels
        update; assigning an array replaces it after checking its shape and range, and makes
        an unfitted column usable)."""
        return self._built_net().weights_["column"]

    @weights_.setter
    def weights_(self, W):
        W = np.asarray(W)
        net = self.__dict__.get("_net")
        if net is None or not net._built:
            net = self._make_net()
            net._build(W.shape[-1] if W.ndim == 2 and self.n_inputs is None else None)
        old = net.weights_["column"]
        if W.shape != old.shape:
            raise ValueError(f"weights_ must have shape {old.shape}, got {W.shape}")
        if W.dtype.kind not in "iu" and not (W.dtype.kind == "f" and np.all(W == np.round(W))):
            raise ValueError("weights_ must hold integers")
        if W.size and (W.min() < 0 or W.max() > int(self.w_max)):
            raise ValueError(f"weights_ must lie in [0, w_max={self.w_max}]")
        net.weights_["column"] = np.ascontiguousarray(W, dtype=old.dtype).copy()
        self._net, self.n_features_in_ = net, net.n_features_in_

    @property
    def n_waves_learned_(self) -> int:
        """Learning waves made so far (the STDP counter of the next one)."""
        return self._built_net().n_waves_learned_

    def set_params(self, **params) -> "TNNColumn":
        """Set constructor parameters (scikit-learn); the column starts afresh."""
        super().set_params(**params)
        for name in ("_net", "n_features_in_", "feature_names_in_", "backend_"):
            self.__dict__.pop(name, None)  # a new setting starts a new column (weights_ goes too)
        return self
