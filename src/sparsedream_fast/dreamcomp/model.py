"""The ``DreamComp`` classifier: rule B behind a scikit-learn-style API."""
from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from .._backends import rule_module
from .._estimator import not_fitted
from .._rng import batch_order
from .._validation import as_host_array, check_data, check_dtype, check_float, check_int, init_array
from . import reference

__all__ = ["DreamComp"]

#: backends implementing rule B, by preference of ``backend="auto"``
_IMPLEMENTED = {"cpp": "_cpp", "numba": "_numba", "numpy": "reference", "cuda": "_cuda"}


class DreamComp(ClassifierMixin, BaseEstimator):
    """Batch 1-winner-take-all with reconstruction weights and label synapses (rule B, seed 002).

    Each neuron has D input synapses and C label synapses; samples are extended with their
    one-hot label. Per minibatch every sample's winner (largest ``W v``) moves towards the
    mean of the samples it won, with the label synapses reconstructed ``recon_weight`` times
    more strongly. A neuron's class is its largest label synapse; a test image takes the
    class of its best-matching neuron (largest ``W[:, :D] x``).

    Parameters
    ----------
    n_inputs : int
        D (784 for MNIST).
    n_neurons : int or None
        N; or give ``grid`` (rows, cols) instead (N = rows * cols, for pictures).
    n_classes : int
        C (10 for MNIST).
    recon_weight : float
        R, the reconstruction weight of the label synapses (seed 002: 10).
    lr : float
        Learning rate of the input synapses (seed 002: 0.003 to 0.008).
    label_lr : float or None
        Learning rate of the label synapses; None: ``lr`` (the notebook's first variant).
    batch_size : int
        B (seed 002: 100 or 500).
    init : (float, float) or ndarray of shape (N, D + C)
        Uniform range of the initial weights (seed 002: (0, 1)) or the weights themselves.
    grid : (int, int) or None
    dtype : {"float32", "float64"}
    backend : {"auto", "cpp", "numba", "numpy", "cuda"}
        "auto": the first usable of cpp, numba, numpy; "cuda" only when asked for (the GPU
        pays off from a few thousand neurons; see ``dreamcomp/_cuda.py`` for its numerics).
    seed : int or None

    Attributes
    ----------
    weights_ : ndarray of shape (N, D + C)
    neuron_classes_ : ndarray of shape (N,), int64
    """

    def __init__(self, n_inputs=784, n_neurons=None, n_classes=10, recon_weight=10.0, lr=0.006,
                 label_lr=None, batch_size=100, init=(0.0, 1.0), grid=None, dtype="float32",
                 backend="auto", seed=0):
        self.n_inputs = n_inputs
        self.n_neurons = n_neurons
        self.n_classes = n_classes
        self.recon_weight = recon_weight
        self.lr = lr
        self.label_lr = label_lr
        self.batch_size = batch_size
        self.init = init
        self.grid = grid
        self.dtype = dtype
        self.backend = backend
        self.seed = seed

    def _n_neurons(self) -> int:
        if self.grid is not None:
            rows, cols = self.grid
            n = check_int(rows, "grid rows", 1) * check_int(cols, "grid cols", 1)
            if self.n_neurons is not None and self.n_neurons != n:
                raise ValueError(f"n_neurons={self.n_neurons} disagrees with grid {self.grid}")
            return n
        if self.n_neurons is None:
            raise ValueError("give n_neurons or grid")
        return check_int(self.n_neurons, "n_neurons", 1)

    def _check_labels(self, y, n, C):
        y = as_host_array(y, "y")
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (n_samples,), got shape {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"X has {n} samples but y has {y.shape[0]} labels")
        if y.dtype.kind not in "iu":
            if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
                y = y.astype(np.int64)
            else:
                raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= C):
            raise ValueError(f"labels must lie in [0, n_classes={C}), got values from {y.min()} to {y.max()}")
        return y.astype(np.int64)

    def fit(self, X, y, epochs=1, shuffle=True):
        """Initialise and train for ``epochs`` epochs of ``n // batch_size`` minibatches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs), values in [0, 1]
        y : array-like of shape (n_samples,), integer labels in [0, n_classes)
        epochs : int
        shuffle : bool
            A fresh permutation every epoch; False: the data in order (a final partial
            batch is dropped, as in the notebook).

        Returns
        -------
        self
        """
        D = check_int(self.n_inputs, "n_inputs", 1)
        C = check_int(self.n_classes, "n_classes", 2)
        N = self._n_neurons()
        R = check_float(self.recon_weight, "recon_weight", positive=True)
        lr = check_float(self.lr, "lr", positive=True)
        llr = lr if self.label_lr is None else check_float(self.label_lr, "label_lr", positive=True)
        B = check_int(self.batch_size, "batch_size", 1)
        dtype = check_dtype(self.dtype)
        # the update divides W by R in the model dtype: a positive float64 R that is a subnormal
        # (or 0) there makes W / R overflow to inf at the first batch (found by
        # tests/test_properties.py: R = 1.4e-45 in float32). Below sqrt(tiny), 1 / R leaves
        # less than 1e19 of headroom before the products of the update overflow.
        if R < np.sqrt(np.finfo(dtype).tiny):
            raise ValueError(f"recon_weight={R!r} is too small for {np.dtype(dtype).name}: W / recon_weight "
                             f"overflows (use at least {np.sqrt(np.finfo(dtype).tiny):.3g})")
        backend, mod = rule_module(self.backend, _IMPLEMENTED, __package__, "DreamComp")
        epochs = check_int(epochs, "epochs", 1)
        Xc = check_data(X, D, dtype)
        if np.any(Xc < 0):
            raise ValueError("X must be non-negative (pixel intensities in [0, 1])")
        yc = self._check_labels(y, Xc.shape[0], C)
        if B > Xc.shape[0]:
            raise ValueError(f"batch_size={B} is larger than the number of samples ({Xc.shape[0]})")
        rng = np.random.default_rng(self.seed)
        W = self._init_weights(N, D + C, dtype, rng)
        zeta, eta = reference.synapse_vectors(D, C, R, lr, llr, dtype)
        V = reference.extend(Xc, yc, C, dtype)
        batches = batch_order(rng, Xc.shape[0], epochs, B, bool(shuffle))
        mod.fit(W, V, batches, zeta, eta)
        self.weights_, self.backend_, self.n_inputs_, self.n_classes_ = W, backend, D, C
        return self

    def _init_weights(self, N, width, dtype, rng):
        init = self.init
        if isinstance(init, (tuple, list)) and len(init) == 2 and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in init):
            lo, hi = check_float(init[0], "init low"), check_float(init[1], "init high")
            if hi < lo:
                raise ValueError(f"init range must have low <= high, got {init!r}")
            return rng.uniform(lo, hi, (N, width)).astype(dtype)
        return init_array(init, (N, width), "(N, D + C)", dtype)

    def _check_fitted(self):
        if not hasattr(self, "weights_"):
            raise not_fitted(self)

    @property
    def neuron_classes_(self) -> np.ndarray:
        """Class of every neuron: the argmax of its label synapses, shape (N,) int64."""
        self._check_fitted()
        return np.argmax(self.weights_[:, self.n_inputs_:], axis=1).astype(np.int64)

    def best_neurons(self, X) -> np.ndarray:
        """Best-matching neuron ``argmax_n W[n, :D] x`` of every sample, shape (n,) int64."""
        self._check_fitted()
        Xc = check_data(X, self.n_inputs_, self.weights_.dtype, allow_1d=True)
        return reference.predict_neurons(self.weights_, Xc, self.n_inputs_)

    def predict(self, X) -> np.ndarray:
        """Class of the best-matching neuron of every sample, shape (n,) int64."""
        return self.neuron_classes_[self.best_neurons(X)]

    def score(self, X, y) -> float:
        """Accuracy of ``predict(X)`` against labels ``y``."""
        pred = self.predict(X)
        yc = self._check_labels(y, pred.shape[0], self.n_classes_)
        return float(np.mean(pred == yc))
