"""Spike-time encoding for the TNN: intensities to one spike time per line per wave.

Spike times are integers in [0, T]; ``T`` means "no spike in this wave". The encoder is a ramp
without leak: intensity ``x`` in (0, 1] spikes at ``min(floor((1 - x) T), T - 1)``, so x = 1
spikes at step 0, brighter is earlier, and x = 0 never spikes.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin

from .._estimator import record_names
from .._validation import as_host_array, check_data, check_not_empty
from .config import check_T

__all__ = ["encode", "image_rows", "WaveEncoder", "check_spike_times"]


def encode(X: ArrayLike, T: int = 16, scale: float | None = None) -> np.ndarray:
    """Intensities to spike times (ramp, no leak).

    Parameters
    ----------
    X : array_like of any shape, real
        Intensities in [0, 1]; uint8 images (0-255) are divided by 255. Other ranges: pass
        ``scale`` (X is divided by it).
    T : int
        Steps per wave, 1..255.
    scale : float, optional

    Returns
    -------
    ndarray of uint8, the shape of X
        ``min(floor((1 - x) T), T - 1)`` where x > 0, ``T`` (no spike) where x == 0.
    """
    T = check_T(T)
    X = as_host_array(X)
    if X.dtype == np.uint8 and scale is None:
        scale = 255.0
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.iscomplexobj(X):
        raise TypeError(f"X must hold real intensities, got dtype {X.dtype}")
    x = X.astype(np.float64)
    if scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        x = x / float(scale)
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("X contains NaN or infinite intensities")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"intensities must lie in [0, 1] (got [{x.min():g}, {x.max():g}]); "
                         "pass scale= to divide them, e.g. scale=255 for 0-255 pixels")
    t = np.minimum(np.floor((1.0 - x) * T), T - 1)
    return np.where(x > 0, t, T).astype(np.uint8)


def image_rows(X: ArrayLike, shape: tuple[int, int] | None = (28, 28), T: int = 16,
               scale: float | None = None) -> np.ndarray:
    """Flat images to sequences of waves, one image row per wave (sequential MNIST).

    Parameters
    ----------
    X : array_like of shape (n, rows * cols)
        Intensities (see :func:`encode`).
    shape : (int, int) or None
        (rows, cols) of an image: ``rows`` waves of ``cols`` input lines. None: one wave of
        all the features, (1, n_features).

    Returns
    -------
    ndarray of shape (n, rows, cols), uint8 spike times
    """
    X = as_host_array(X)
    if shape is None:
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n, n_features), got shape {X.shape}. Reshape your data")
        shape = (1, X.shape[1])
    rows, cols = (int(s) for s in shape)
    if X.ndim != 2 or X.shape[1] != rows * cols:
        raise ValueError(f"X must have shape (n, {rows * cols}) for images of shape {shape}, got {X.shape}")
    return encode(X, T, scale).reshape(len(X), rows, cols)


class WaveEncoder(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: flat images to row-wave spike times (:func:`image_rows`).

    Stateless: ``transform`` works without ``fit``; ``fit`` only records the input width
    (``n_features_in_``, and ``feature_names_in_`` for a DataFrame) and checks it against
    ``shape``.

    Parameters
    ----------
    shape : (int, int) or None
        (rows, cols) of an image: ``rows`` waves of ``cols`` lines; None: one wave of all the
        features.
    T : int
        Steps per wave, 1..255.
    scale : float or None
        Intensities are divided by it (None: 255 for uint8 images, else they must lie in
        [0, 1]).

    Attributes
    ----------
    n_features_in_ : int
        The input width seen at fit.
    feature_names_in_ : ndarray of str
        The column names of a DataFrame fitted on.
    """

    def __init__(self, shape: tuple[int, int] | None = (28, 28), T: int = 16, scale: float | None = None):
        self.shape = shape
        self.T = T
        self.scale = scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = []   # uint8 spike times whatever the input
        return tags

    def fit(self, X: ArrayLike, y: object = None) -> "WaveEncoder":
        """Check X and record its width; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, rows * cols), intensities
        y : ignored

        Returns
        -------
        self
        """
        A = check_data(X, None, np.float64, nonnegative=True)
        image_rows(A[:1], self.shape, self.T, self.scale)   # shape, T and scale fit the data
        record_names(self, X, A, reset=True)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Intensities to row-wave spike times.

        Parameters
        ----------
        X : array-like of shape (n_samples, rows * cols), intensities

        Returns
        -------
        ndarray of shape (n_samples, rows, cols), uint8 spike times (T = no spike)
        """
        A = as_host_array(X)
        if hasattr(self, "n_features_in_"):
            A = check_data(A, self.n_features_in_, A.dtype if A.dtype.kind in "uif" else np.float64,
                           nonnegative=True, owner=self)
            record_names(self, X, A, reset=False)
        else:
            check_not_empty(A)
        return image_rows(A, self.shape, self.T, self.scale)


def check_spike_times(S, T: int, n_lines: int | None, name: str = "spike_times", ndim=(3,)) -> np.ndarray:
    """Spike times as a C-contiguous uint8 array, checked to lie in [0, T] (T = no spike).

    Integers, or floats that all hold integers (an object array of such numbers too).
    Raises ValueError for a wrong rank, a wrong last dimension (``n_lines``; None: any),
    NaN or inf, complex data or times outside [0, T]; TypeError for other data (intensities:
    use :func:`encode`). The caller's array is never modified.
    """
    S = as_host_array(S, name)
    if S.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {S.shape}. "
                         "Reshape your data")
    if S.dtype == object:
        try:
            S = S.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold integer spike times in [0, T] (T = no spike), got dtype object "
                            f"({exc})") from None
    if S.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} must hold integer spike times in [0, T]")
    if S.dtype.kind == "f" and S.size:
        if not np.isfinite(S).all():
            raise ValueError(f"{name} contains NaN or inf; spike times are integers in [0, T] (T = no spike)")
        if not np.array_equal(S, np.round(S)):
            raise TypeError(f"{name} must hold integer spike times in [0, T] (T = no spike), got fractional "
                            f"{S.dtype} values; encode intensities with sparsedream_fast.tnn.encode")
    elif S.dtype == bool or not (np.issubdtype(S.dtype, np.integer) or S.dtype.kind == "f"):
        raise TypeError(f"{name} must hold integer spike times in [0, T] (T = no spike), got dtype "
                        f"{S.dtype}; encode intensities with sparsedream_fast.tnn.encode")
    if n_lines is not None and S.shape[-1] != n_lines:
        raise ValueError(f"{name} must have {n_lines} input lines in its last dimension, got {S.shape[-1]}")
    if S.size and S.min() < 0:
        raise ValueError(f"Negative values in data: {name} must lie in [0, T={T}] (T = no spike), got "
                         f"[{S.min()}, {S.max()}]")
    if S.size and S.max() > T:
        raise ValueError(f"{name} must lie in [0, T={T}] (T = no spike), got [{S.min()}, {S.max()}]")
    return np.ascontiguousarray(S, dtype=np.uint8)
