"""``TNNColumn``: one column of temporal neurons with k-WTA and STDP (rule D)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from .._estimator import not_fitted
from .._validation import check_int
from .config import STDP, check_T
from .encoding import check_spike_times
from .network import TNNNetwork

__all__ = ["TNNColumn"]


class TNNColumn(BaseEstimator):
    """A column of ``n_neurons`` temporal neurons on ``n_inputs`` lines (docs/rules/tnn.md).

    Ramp-no-leak integration: input ``i`` (integer weight ``w``, spike time ``x``) adds
    ``min(max(t - x + 1, 0), w)`` to the potential at step t; a neuron fires at the first step
    its potential reaches ``threshold``; the ``k`` earliest spikes survive (ties to the lower
    index). STDP after each wave with counter-based Philox draws (identical on every backend).
    Waves are independent here; recurrence and delays need :class:`TNNNetwork`.

    Parameters
    ----------
    n_inputs : int
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
    n_waves_learned_ : int
    """

    def __init__(self, n_inputs, n_neurons=50, threshold=32, k=2, T=16, w_max=16,
                 u_capture=20 / 128, u_minus=20 / 128, u_search=2 / 128, u_backoff=96 / 128,
                 u_min=4 / 128, init=(0, 2), dtype="int32", backend="auto", seed=0):
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

    def _make_net(self) -> TNNNetwork:
        stdp = STDP(self.u_capture, self.u_minus, self.u_search, self.u_backoff, self.u_min)
        net = TNNNetwork(T=self.T, dtype=self.dtype, backend=self.backend, seed=self.seed)
        net.add_input("in", check_int(self.n_inputs, "n_inputs", 1))
        net.add_column("column", self.n_neurons, self.threshold, self.k, self.w_max, stdp)
        net.connect("in", "column", init=self.init)
        net._backend()
        return net

    def _waves(self, S):
        one = np.ndim(S) == 1
        X = check_spike_times(S, check_T(self.T), check_int(self.n_inputs, "n_inputs", 1), "spike_times",
                              ndim=(1, 2))
        return X.reshape(-1, 1, X.shape[-1]), one

    def fit(self, X, y=None, epochs: int = 1, shuffle: bool = False) -> "TNNColumn":
        """Learn from waves, one after the other (weights are initialised on the first call).

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
        net = getattr(self, "_net", None)
        if net is None:
            net = self._make_net()
        S, _ = self._waves(X)
        net.fit(S, epochs=epochs, shuffle=shuffle)
        self._net = net
        self.backend_ = net.backend_
        return self

    def partial_fit(self, X, y=None) -> "TNNColumn":
        """Same as ``fit(X, epochs=1, shuffle=False)``; continues after earlier calls."""
        return self.fit(X)

    def forward(self, spike_times) -> np.ndarray:
        """Output spike times after k-WTA, without learning.

        Parameters
        ----------
        spike_times : array-like of shape (n_waves, n_inputs) or (n_inputs,)

        Returns
        -------
        ndarray of shape (n_waves, n_neurons) or (n_neurons,), uint8 (T = no spike)
        """
        net = getattr(self, "_net", None)
        if net is None:
            net = self._make_net()
            self._net = net
            net._build()
        X, one = self._waves(spike_times)
        Y = net.run(X, "column")["column"][:, 0, :]
        return Y[0] if one else Y

    def _built_net(self):
        net = self.__dict__.get("_net")
        if net is None or not net._built:
            raise not_fitted(self, "it has no weights yet: call fit or forward first")
        return net

    @property
    def weights_(self) -> np.ndarray:
        """The column's weights, shape (n_neurons, n_inputs), ``dtype`` (the array the kernels
        update; assigning an array replaces it after checking its shape and range)."""
        return self._built_net().weights_["column"]

    @weights_.setter
    def weights_(self, W):
        if self.__dict__.get("_net") is None:
            self._net = self._make_net()
        net = self._net
        net._build()
        old = net.weights_["column"]
        W = np.asarray(W)
        if W.shape != old.shape:
            raise ValueError(f"weights_ must have shape {old.shape}, got {W.shape}")
        if W.dtype.kind not in "iu" and not (W.dtype.kind == "f" and np.all(W == np.round(W))):
            raise ValueError("weights_ must hold integers")
        if W.size and (W.min() < 0 or W.max() > int(self.w_max)):
            raise ValueError(f"weights_ must lie in [0, w_max={self.w_max}]")
        net.weights_["column"] = np.ascontiguousarray(W, dtype=old.dtype).copy()

    @property
    def n_waves_learned_(self) -> int:
        """Learning waves made so far (the STDP counter of the next one)."""
        return self._built_net().n_waves_learned_

    def set_params(self, **params):
        """Set constructor parameters (scikit-learn); the column starts afresh."""
        super().set_params(**params)
        self.__dict__.pop("_net", None)  # a new setting starts a new column (weights_ goes too)
        return self
