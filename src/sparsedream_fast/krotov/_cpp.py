"""C++ backend of rule C, Krotov-Hopfield (backend ``"cpp"``): a thin wrapper over ``_core``.

The same functions and signatures as the numpy reference (``reference.py``) and the numba
module. A whole ``fit`` is one native call without the GIL
(``csrc/sparsedream/krotov.hpp``): per minibatch, the first and k-th unit of every sample by
a float32 product screened with float64 currents of the candidates (``SCREEN``; the rows of
``Wp = sign(W) |W|^(p-1)`` in blocks over the threads, the float32 product by an own AVX-512
kernel where the CPU has it, else one single-threaded scipy sgemm per block; see
``csrc/sparsedream/batch_product.hpp``), then the update of the (at most 2B) selected units
on the threads, annealing ``eps`` per epoch.

Numerics: the ranking is that of the float64 currents in float64 (the reference's unless two
currents lie within float64 rounding), in float32 that of float64 sums of the exact
products of the float32 values (the exact ranking unless two currents lie within ~D 2^-53
relative); ties go to the lower index. It does not depend on the BLAS or the thread count.
Element-wise operations are the reference's, in its order and in W's dtype (``eps`` and the
normalizer cast to it as numpy 2 casts Python floats); the first and k-th currents are their
float64 values rounded to the dtype; sums over one unit's samples run in sample order (the
reference lets BLAS and numpy's pairwise sum choose). ``Wp`` is numpy's bit for bit at
p = 2, 3, 1.5.

A fit stops after a batch on a stop request of its ``control`` (polled about every 20 ms,
with Python's signal handlers run; ``csrc/bind_run.hpp``), and before a batch whose update
is not finite (that batch writes nothing), as the reference's.

Inputs are assumed valid (the model checks them); ``_core.krotov_fit`` checks dtypes,
shapes, k and sample indices itself and raises on bad ones.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._blas import SingleThreadedBlas, gemm_capsules
from .._rng import one_batch
from .._runtime import DivergenceError, loop_control
from ..dreamcomp._cpp import _c, _dtype

__all__ = ["SCREEN", "THREADS", "weight_powers", "ranks", "batch_update", "fit"]

#: Ranking by float32 screening and float64 currents of the candidates; False: the ranking
#: of the product in W's dtype (scipy's BLAS), as the reference.
SCREEN = True

#: Threads of a fit: None (OpenMP's count when a batch is big enough, else one) or an int.
THREADS = None


def _call(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None, control=None):
    """The native fit; returns (the number of batches ranked by the product in W's dtype,
    the Control it reported to)."""
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64).reshape(-1, *np.shape(batches)[-2:]), np.int64)
    total = batches.shape[0] if total_epochs is None else total_epochs
    sgemm, dgemm = gemm_capsules()
    threads = 0 if THREADS is None else int(THREADS)
    ctl = loop_control(control)
    try:
        with SingleThreadedBlas() as blas:
            if not blas.ok:
                threads = 1
            full = _core.krotov_fit(Ww, _c(X, dt), batches, float(p), int(k), float(delta), float(eps0),
                                    float(prec), int(epoch0), int(total), sgemm, dgemm, bool(SCREEN), threads,
                                    control=ctl.array)
    finally:  # also when a signal handler's exception comes out of the native loop
        if Ww is not W:
            W[...] = Ww
    return full, ctl


def _run(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None):
    """``fit``; returns the number of batches ranked by the product in W's dtype."""
    full, ctl = _call(W, X, batches, p, k, delta, eps0, prec, epoch0, total_epochs)
    ctl.raise_if_diverged("KrotovHopfield fit (cpp)")
    return full


def fit(W: np.ndarray, X: np.ndarray, batches: np.ndarray, p: float, k: int, delta: float,
        eps0: float, prec: float, epoch0: int = 0, total_epochs: int | None = None, control=None) -> int:
    """Train on ``X[batches[e, i]]``, annealing ``eps`` linearly over ``total_epochs``, in place.

    Parameters
    ----------
    W : ndarray of shape (hid, D), float32 or float64, updated in place
    X : ndarray of shape (n, D)
    batches : ndarray of shape (E, n_batches, B), int64
    p, k, delta, eps0, prec : as in ``reference.fit`` (2 <= k <= hid)
    epoch0 : int
        Index of ``batches[0]`` among ``total_epochs`` (default: E epochs from 0).
    control : sparsedream_fast._runtime.Control or None
        As ``reference.fit``'s (None: raise DivergenceError when a batch's update is not finite).

    Returns
    -------
    int : the batches completed
    """
    ctl = _call(W, X, batches, p, k, delta, eps0, prec, epoch0, total_epochs, control)[1]
    if control is None:
        ctl.raise_if_diverged("KrotovHopfield fit (cpp)")
    return ctl.done


def batch_update(W: np.ndarray, X: np.ndarray, p: float, k: int, delta: float, eps: float,
                 prec: float) -> None:
    """One minibatch ``X`` (B, D) of rule C on ``W`` (hid, D), in place.

    Raises DivergenceError, writing nothing, when the update is not finite.
    """
    X = np.asarray(X)
    # eps0 * (1 - 0 / 1) == eps exactly
    if _call(W, X, one_batch(X.shape[0]), p, k, delta, eps, prec)[1].diverged:
        raise DivergenceError("the update of this batch is not finite (NaN or inf); nothing was written")


def weight_powers(W: np.ndarray, p: float) -> np.ndarray:
    """``sign(W) |W|^(p-1)``, shape and dtype of W (``np.sign(W) * np.abs(W) ** (p - 1)``:
    bitwise at p = 2, 3, 1.5, to an ulp otherwise)."""
    Wc = _c(W, _dtype(W))
    out = np.empty_like(Wc)
    _core.krotov_weight_powers(Wc, float(p), out)
    return out


def ranks(I: np.ndarray, k: int):
    """First and k-th unit of every column of I (value descending, ties to the lower index,
    NaN last).

    Parameters
    ----------
    I : ndarray of shape (hid, B)
    k : int, 1 <= k <= hid

    Returns
    -------
    first, kth : ndarrays of shape (B,), int64
    """
    I = _c(I, _dtype(I))
    first = np.empty(I.shape[1], np.int64)
    kth = np.empty(I.shape[1], np.int64)
    _core.krotov_ranks(I, int(k), first, kth)
    return first, kth
