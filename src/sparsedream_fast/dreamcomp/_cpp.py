"""C++ backend of rule B, DreamComp (backend ``"cpp"``): a thin wrapper over ``_core``.

The same functions and signatures as the numpy reference (``reference.py``) and the numba
module. A whole ``fit`` is one native call without the GIL
(``csrc/sparsedream/dreamcomp.hpp``): per minibatch, the winners by a float32 product
screened with float64 dot products of the candidates (``SCREEN``; the rows of W in blocks
over the threads; the float32 product by an own AVX-512 kernel where the CPU has it, else
one single-threaded scipy sgemm per block; see ``csrc/sparsedream/batch_product.hpp`` and
``blas.hpp``), then the winners' updates on the threads.

Numerics: the winners are the argmax of the float64 products in float64 (the reference's
unless two drives lie within float64 rounding of each other), in float32 of float64 sums of
the exact products of the float32 values (equal to the exact ranking unless two drives lie
within ~D 2^-53 relative); exact ties go to the lower neuron. They do not depend on
the BLAS or the thread count. Element-wise operations are the reference's, in its order
and in W's dtype; a winner's drive is its float64 dot product rounded to the dtype, and a
winner's samples are summed in sample order (the reference lets BLAS choose): float64
agrees with the reference to ~1e-15 relative per batch, float32 to a few ulp.

A fit stops after a batch on a stop request of its ``control`` (polled about every 20 ms,
with Python's signal handlers run; ``csrc/bind_run.hpp``), and before a batch whose update
is not finite (that batch writes nothing), as the reference's.

Inputs are assumed valid (the model checks them); this module only converts the arrays to
W's dtype and C order. ``_core.dreamcomp_fit`` checks dtypes, shapes and sample indices
itself and raises on bad ones.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._arrays import as_c as _c, float_dtype as _dtype
from .._blas import SingleThreadedBlas, gemm_capsules
from .._rng import one_batch
from .._runtime import DivergenceError, loop_control

__all__ = ["SCREEN", "THREADS", "winners", "batch_update", "fit"]

#: Winners by float32 screening and float64 dot products of the candidates; False: the
#: argmax of the product in W's dtype (scipy's BLAS), as the reference.
SCREEN = True

#: Threads of a fit: None (OpenMP's count when a batch is big enough, else one) or an int.
#: BLAS itself is held to one thread during the call (each thread runs its own gemm calls).
THREADS = None


def _call(W, V, batches, zeta, eta, update, control=None):
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64), np.int64)
    win = np.zeros(batches.shape[-1] if batches.ndim else 0, np.int64)
    sgemm, dgemm = gemm_capsules()
    threads = 0 if THREADS is None else int(THREADS)
    ctl = loop_control(control)
    try:
        with SingleThreadedBlas() as blas:
            if not blas.ok:  # the BLAS keeps its own threads: call it from one thread only
                threads = 1
            full = _core.dreamcomp_fit(Ww, _c(V, dt), batches, _c(zeta, dt), _c(eta, dt), win, sgemm, dgemm,
                                       bool(SCREEN), threads, update, control=ctl.array)
    finally:  # also when a signal handler's exception comes out of the native loop
        if update and Ww is not W:
            W[...] = Ww
    return win, full, ctl


def _run(W, V, batches, zeta, eta):
    """``fit``; returns (the last batch's winners, the number of batches whose winners came
    from the product in W's dtype instead of the screening)."""
    win, full, ctl = _call(W, V, batches, zeta, eta, True)
    ctl.raise_if_diverged("DreamComp fit (cpp)")
    return win, full


def fit(W: np.ndarray, V: np.ndarray, batches: np.ndarray, zeta: np.ndarray, eta: np.ndarray,
        control=None) -> int:
    """Train on ``V[batches[e, i]]`` for every epoch e and batch i, in place.

    Parameters
    ----------
    W : ndarray of shape (N, D + C), float32 or float64, updated in place
    V : ndarray of shape (n, D + C), the extended samples
    batches : ndarray of shape (E, n_batches, B), int64
    zeta, eta : ndarrays of shape (D + C,), reconstruction weights and learning rates
    control : sparsedream_fast._runtime.Control or None
        As ``reference.fit``'s (None: raise DivergenceError when a batch's update is not finite).

    Returns
    -------
    int : the batches completed
    """
    ctl = _call(W, V, batches, zeta, eta, True, control)[2]
    if control is None:
        ctl.raise_if_diverged("DreamComp fit (cpp)")
    return ctl.done


def batch_update(W: np.ndarray, V: np.ndarray, zeta: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """One minibatch ``V`` (B, D + C) of rule B on ``W`` in place; returns the winners (B,) int64."""
    V = np.asarray(V)
    win, _, ctl = _call(W, V, one_batch(V.shape[0]), zeta, eta, True)
    if ctl.diverged:
        raise DivergenceError("the update of this batch is not finite (NaN or inf); nothing was written")
    return win


def winners(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """The winner of every row b of V, as ``fit`` picks it: ``argmax_n (W V^T)[n, b]``
    (ties to the lower index; with ``SCREEN``, of the float64 drives, see the module's notes).

    Parameters
    ----------
    W : ndarray of shape (N, D + C); V : ndarray of shape (B, D + C)

    Returns
    -------
    ndarray of shape (B,), int64
    """
    V = np.asarray(V)
    Dp = np.shape(W)[1]
    zero = np.zeros(Dp, _dtype(W))
    return _call(W, V, one_batch(V.shape[0]), zero + 1, zero, False)[0]
