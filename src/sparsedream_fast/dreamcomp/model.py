"""The ``DreamComp`` classifier: rule B behind a scikit-learn-style API."""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._backends import rule_module
from ..checkpoint import CheckpointMixin
from .._estimator import record_names
from .._rng import batch_order, batches_left
from .._runtime import DivergenceError, StepBoundary, refuse_non_finite
from .._validation import as_host_array, check_data, check_dtype, check_float, check_int, init_array
from . import reference

__all__ = ["DreamComp"]

#: backends implementing rule B, by preference of ``backend="auto"``
_IMPLEMENTED = {"cpp": "_cpp", "numba": "_numba", "numpy": "reference", "cuda": "_cuda"}


class DreamComp(CheckpointMixin, ClassifierMixin, BaseEstimator):
    """Batch 1-winner-take-all with reconstruction weights and label synapses (rule B, seed 002).

    Each neuron has D input synapses and C label synapses; samples are extended with their
    one-hot label. Per minibatch every sample's winner (largest ``W v``) moves towards the
    mean of the samples it won, with the label synapses reconstructed ``recon_weight`` times
    more strongly. A neuron's class is its largest label synapse; a test image takes the
    class of its best-matching neuron (largest ``W[:, :D] x``).

    Parameters
    ----------
    n_inputs : int or None
        D (784 for MNIST); None: the width of X at fit (``n_features_in_``).
    n_neurons : int or None
        N; or give ``grid`` (rows, cols) instead (N = rows * cols, for pictures). None
        without a grid: 100.
    n_classes : int or None
        C. None (default): the distinct labels of y at fit, any hashable labels (strings,
        {3, 7}, ...) through a label encoder (``classes_``). An int: y must hold the integers
        0 .. C - 1 (classes missing from y still get their label synapses).
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
    weights_ : ndarray of shape (N, D + C), ``dtype``
        Input synapses ``[:, :D]``, then one label synapse per class.
    classes_ : ndarray of shape (C,)
        The class labels, in the order of the label synapses.
    neuron_classes_ : ndarray of shape (N,), dtype of ``classes_``
        Each neuron's class: the label of its largest label synapse.
    n_features_in_ : int
        D.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame fitted on.
    n_classes_ : int
        C.
    n_batches_ : int
        Minibatches the last ``fit`` completed: all of them, or, when Ctrl-C or a
        divergence ended it early, those before; ``weights_`` is then exactly the state
        after them (a fresh fit of that many batches gives the same bits).
    backend_ : str

    Notes
    -----
    ``predict_proba`` is the natural score of the rule: the label synapses of the
    best-matching neuron, clipped at 0 and normalised to sum 1. Each update moves them
    towards the mean one-hot label of the samples the neuron wins, so they estimate the class
    proportions among the training samples that neuron wins. They are not calibrated
    probabilities: a sample gets its neuron's proportions, however near or far it lies.
    """

    def __init__(self, n_inputs: int | None = None, n_neurons: int | None = None, n_classes: int | None = None,
                 recon_weight: float = 10.0, lr: float = 0.006, label_lr: float | None = None,
                 batch_size: int = 100, init: tuple[float, float] | ArrayLike = (0.0, 1.0),
                 grid: tuple[int, int] | None = None, dtype: str = "float32", backend: str = "auto",
                 seed: int | None = 0):
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True   # the rule needs non-negative inputs
        # the best-matching neuron by dot product W x: on the checks' 2-feature blobs that is a poor
        # matcher (large-norm prototypes win), on images it is the notebook's 80-93% classifier
        tags.classifier_tags.poor_score = True
        return tags

    def _n_neurons(self) -> int:
        if self.grid is not None:
            rows, cols = self.grid
            n = check_int(rows, "grid rows", 1) * check_int(cols, "grid cols", 1)
            if self.n_neurons is not None and self.n_neurons != n:
                raise ValueError(f"n_neurons={self.n_neurons} disagrees with grid {self.grid}")
            return n
        if self.n_neurons is None:
            return 100
        return check_int(self.n_neurons, "n_neurons", 1)

    def _encode_labels(self, y, n: int):
        """(classes_, labels as 0 .. C-1 int64) from y; ValueError/TypeError naming the problem."""
        if y is None:
            raise ValueError("DreamComp requires y to be passed, but the target y is None")
        y = as_host_array(y, "y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (n_samples,), got shape {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"X has {n} samples but y has {y.shape[0]} labels")
        if self.n_classes is None:
            check_classification_targets(y)
            enc = LabelEncoder().fit(y)
            if len(enc.classes_) < 2:
                raise ValueError(f"DreamComp needs at least 2 classes, but y holds one class only "
                                 f"({enc.classes_[0]!r})")
            return enc.classes_, enc.transform(y).astype(np.int64)
        C = check_int(self.n_classes, "n_classes", 2)
        if y.dtype.kind not in "iu":
            if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
                y = y.astype(np.int64)
            else:
                raise TypeError(f"with n_classes={C}, y must hold integer class labels in [0, {C}), got dtype "
                                f"{y.dtype} (n_classes=None takes any labels)")
        if y.size and (y.min() < 0 or y.max() >= C):
            raise ValueError(f"labels must lie in [0, n_classes={C}), got values from {y.min()} to {y.max()} "
                             "(n_classes=None takes any labels)")
        if np.unique(y).size < 2:
            raise ValueError(f"DreamComp needs at least 2 classes, but y holds one class only ({y[0]!r})")
        return np.arange(C), y.astype(np.int64)

    def fit(self, X: ArrayLike, y: ArrayLike, epochs: int = 1, shuffle: bool = True) -> "DreamComp":
        """Initialise and train for ``epochs`` epochs of ``n // batch_size`` minibatches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs), non-negative (pixel intensities in [0, 1])
        y : array-like of shape (n_samples,)
            Class labels: any labels with ``n_classes=None``, else the integers 0 .. C - 1.
        epochs : int
        shuffle : bool
            A fresh permutation every epoch; False: the data in order (a final partial
            batch is dropped, as in the notebook).

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
        if self.n_classes is not None:
            check_int(self.n_classes, "n_classes", 2)
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
        Xc = check_data(X, D, dtype, nonnegative=True, owner=self)
        D = Xc.shape[1]
        classes, yc = self._encode_labels(y, Xc.shape[0])
        C = len(classes)
        if B > Xc.shape[0]:
            raise ValueError(f"batch_size={B} is larger than the number of samples (n_samples = {Xc.shape[0]})")
        record_names(self, X, Xc, reset=True)
        rng = np.random.default_rng(self.seed)
        W = self._init_weights(N, D + C, dtype, rng)
        zeta, eta = reference.synapse_vectors(D, C, R, lr, llr, dtype)
        V = reference.extend(Xc, yc, C, dtype)
        batches = batch_order(rng, Xc.shape[0], epochs, B, bool(shuffle))
        self.weights_, self.backend_, self.n_inputs_, self.n_classes_ = W, backend, D, C
        self.classes_, self.n_batches_ = classes, 0
        E, nb = batches.shape[:2]
        with StepBoundary() as guard:  # Ctrl-C acts between batches, with n_batches_ current
            while self.n_batches_ < E * nb:
                # by epochs although the rule has none: one run of every batch as a single
                # "epoch" made the GPU fit gather all epochs' samples at once
                _, part = batches_left(batches, self.n_batches_)
                ctl = guard.begin()
                try:
                    mod.fit(W, V, part, zeta, eta, control=ctl)
                finally:  # also when a signal handler's exception comes out of the native loop
                    self.n_batches_ += ctl.done
                if ctl.diverged:
                    raise self._divergence(batches.shape[1], R, lr, llr)
                guard.check()  # a deferred Ctrl-C raises here; if its handler returns, go on
        return self

    def _divergence(self, per_epoch, R, lr, llr) -> DivergenceError:
        n = self.n_batches_
        e, i = divmod(n, per_epoch)
        return DivergenceError(
            f"DreamComp training diverged: the update of batch {n:,} (batch {i:,} of epoch {e}) is not finite "
            f"(NaN or inf), so training stopped before it; the model holds the weights after the {n:,} batches "
            f"before it (n_batches_). Likely cause: lr={lr:g} (label_lr={llr:g}) is too large: a winner's weights "
            f"move by lr * (mean sample - drive * w / recon_weight), which overshoots and grows them once lr * "
            f"drive / recon_weight passes 2 (recon_weight={R:g}); lower lr or label_lr, or raise recon_weight.",
            step=n)

    def _init_weights(self, N, width, dtype, rng):
        init = self.init
        if isinstance(init, (tuple, list)) and len(init) == 2 and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in init):
            lo, hi = check_float(init[0], "init low"), check_float(init[1], "init high")
            if hi < lo:
                raise ValueError(f"init range must have low <= high, got {init!r}")
            return rng.uniform(lo, hi, (N, width)).astype(dtype)
        return init_array(init, (N, width), "(N, D + C)", dtype)

    @property
    def neuron_classes_(self) -> np.ndarray:
        """Class label of every neuron: that of its largest label synapse, shape (N,)."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.weights_[:, self.n_inputs_:], axis=1)]

    def best_neurons(self, X: ArrayLike) -> np.ndarray:
        """Best-matching neuron ``argmax_n W[n, :D] x`` of every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs), or (n_inputs,) for one sample

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        check_is_fitted(self)
        Xc = check_data(X, self.n_inputs_, self.weights_.dtype, allow_1d=True, owner=self)
        record_names(self, X, Xc, reset=False)
        refuse_non_finite("weights_", self.weights_)
        return reference.predict_neurons(self.weights_, Xc, self.n_inputs_)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Class of the best-matching neuron of every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs), or (n_inputs,) for one sample

        Returns
        -------
        ndarray of shape (n_samples,), dtype of ``classes_``
        """
        return self.neuron_classes_[self.best_neurons(X)]

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class proportions of the best-matching neuron (see Notes of the class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs), or (n_inputs,) for one sample

        Returns
        -------
        ndarray of shape (n_samples, C), float64 (C = ``n_classes_``)
            The neuron's label synapses clipped at 0 and divided by their sum (rows sum to 1;
            a neuron without a positive label synapse gives 1 to its class); the argmax of a
            row is ``predict``'s class.
        """
        best = self.best_neurons(X)
        L = np.maximum(self.weights_[best, self.n_inputs_:].astype(np.float64), 0.0)
        total = L.sum(axis=1, keepdims=True)
        P = np.divide(L, total, out=np.zeros_like(L), where=total > 0)
        empty = total[:, 0] <= 0
        P[empty, np.argmax(self.weights_[best[empty], self.n_inputs_:], axis=1)] = 1.0
        return P
