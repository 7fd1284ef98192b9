"""Spike-time encoding for the TNN: intensities to one spike time per line per wave.

Spike times are integers in [0, T]; ``T`` means "no spike in this wave". The encoder is a ramp
without leak: intensity ``x`` in (0, 1] spikes at ``min(floor((1 - x) T), T - 1)``, so x = 1
spikes at step 0, brighter is earlier, and x = 0 never spikes.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._validation import as_host_array
from .config import check_T

__all__ = ["encode", "image_rows", "WaveEncoder", "check_spike_times"]


def encode(X, T: int = 16, scale: float | None = None) -> np.ndarray:
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


def image_rows(X, shape=(28, 28), T: int = 16, scale: float | None = None) -> np.ndarray:
    """Flat images to sequences of waves, one image row per wave (sequential MNIST).

    Parameters
    ----------
    X : array_like of shape (n, rows * cols)
        Intensities (see :func:`encode`).
    shape : (int, int)
        (rows, cols) of an image: ``rows`` waves of ``cols`` input lines.

    Returns
    -------
    ndarray of shape (n, rows, cols), uint8 spike times
    """
    X = as_host_array(X)
    rows, cols = (int(s) for s in shape)
    if X.ndim != 2 or X.shape[1] != rows * cols:
        raise ValueError(f"X must have shape (n, {rows * cols}) for images of shape {shape}, got {X.shape}")
    return encode(X, T, scale).reshape(len(X), rows, cols)


class WaveEncoder(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: flat images to row-wave spike times (:func:`image_rows`).

    Parameters
    ----------
    shape : (int, int)
    T : int
    scale : float or None
    """

    def __init__(self, shape=(28, 28), T=16, scale=None):
        self.shape = shape
        self.T = T
        self.scale = scale

    def fit(self, X, y=None):
        """Nothing to learn; returns self."""
        return self

    def transform(self, X):
        """(n, rows * cols) intensities -> (n, rows, cols) uint8 spike times."""
        return image_rows(X, self.shape, self.T, self.scale)


def check_spike_times(S, T: int, n_lines: int | None, name: str = "spike_times", ndim=(3,)) -> np.ndarray:
    """Spike times as a C-contiguous uint8 array, checked to lie in [0, T] (T = no spike).

    Raises TypeError for non-integer data (use :func:`encode`), ValueError for a wrong last
    dimension (``n_lines``; None: any) or times outside [0, T]. The caller's array is never modified.
    """
    S = as_host_array(S, name)
    if S.dtype == bool or not np.issubdtype(S.dtype, np.integer):
        if np.issubdtype(S.dtype, np.floating) and S.size and np.isnan(S).any():
            raise ValueError(f"{name} contains NaN; spike times are integers in [0, T] (T = no spike)")
        raise TypeError(f"{name} must hold integer spike times in [0, T] (T = no spike), got dtype "
                        f"{S.dtype}; encode intensities with sparsedream_fast.tnn.encode")
    if S.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {S.shape}")
    if n_lines is not None and S.shape[-1] != n_lines:
        raise ValueError(f"{name} must have {n_lines} input lines in its last dimension, got {S.shape[-1]}")
    if S.size and (S.min() < 0 or S.max() > T):
        raise ValueError(f"{name} must lie in [0, T={T}] (T = no spike), got [{S.min()}, {S.max()}]")
    return np.ascontiguousarray(S, dtype=np.uint8)
