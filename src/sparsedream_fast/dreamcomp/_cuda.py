"""CUDA backend of rule B, DreamComp (backend ``"cuda"``): a thin wrapper over the CUDA module.

The same functions and signatures as the numpy reference (``reference.py``). A whole
``fit`` is one native call without the GIL (``csrc/cuda/dreamcomp.cu``): W, the samples and
the batches go to the GPU once; per minibatch the product ``S = V_b W^T`` runs on cuBLAS
(when it loads; ``GEMM``) or the module's own GEMM kernel, then one kernel picks every
sample's winner and one updates the winners; every epoch after the first is replayed as a
CUDA graph (``GRAPHS``).

Numerics: in float32 with ``SCREEN`` (the default) the product runs on cuBLAS's tensor
cores in TF32 (float32 on the own kernel), and every neuron whose drive can still be the
largest given the product's error bound (``|S~ - S| <= c ||w|| ||v||``, see
``csrc/cuda/dreamcomp.cu``) is checked by a float64 dot product: the winners are the argmax
of the float64 drives, as on the CPU backends' screening (the reference's float32 argmax
unless two drives lie within float32 rounding of each other), and a winner's drive is its
float64 dot product rounded to float32. Without ``SCREEN``, and always in float64, the
winners are the argmax of the product in W's dtype, as the reference's. A winner's samples
are summed in sample order; the element-wise update is the reference's expression (nvcc
may fuse a multiply and an add into one rounding).

A fit stops after a batch on a stop request of its ``control`` (polled between launches,
about every 20 ms of GPU work; short epochs run whole as CUDA graphs, polled after each),
and before a batch whose update is not finite (that batch writes nothing), as the
reference's; weights that are not finite diverge at the first batch.
"""
from __future__ import annotations

import numpy as np

from .._arrays import as_c as _c, float_dtype as _dtype
from .._backends import cuda_module
from .._gpu_gemm import gemm_args
from .._rng import one_batch
from .._runtime import DivergenceError, loop_control

__all__ = ["GEMM", "GRAPHS", "SCREEN", "winners", "batch_update", "fit"]

#: The minibatch product: "auto" (cuBLAS when it loads, else the own kernel), "cublas", "kernel".
GEMM = "auto"
#: Replay each epoch after the first as a CUDA graph.
GRAPHS = True
#: float32: TF32 products on cuBLAS with the winners confirmed in float64 (see above);
#: False: the argmax of the float32 product.
SCREEN = True


def _call(W, V, batches, zeta, eta, update, control=None):
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64), np.int64)
    win = np.zeros(batches.shape[-1] if batches.ndim else 0, np.int64)
    # the screening needs finite weights: winners() of a W with NaN takes the plain argmax
    screen = bool(SCREEN) and (update or bool(np.isfinite(Ww).all()))
    ctl = loop_control(control)
    try:
        info = cuda_module().dreamcomp_fit(Ww, _c(V, dt), batches, _c(zeta, dt), _c(eta, dt), win, bool(update),
                                           screen=screen, control=ctl.array, **gemm_args(GEMM, GRAPHS))
    finally:  # also when a signal handler's exception comes out of the native loop
        if update and Ww is not W:
            W[...] = Ww
    return win, info, ctl


def _fit_info(W, V, batches, zeta, eta) -> dict:
    """``fit``; returns what it used: {"gemm": "cublas" | "kernel", "graph", "screened",
    "tf32": bool}."""
    _, info, ctl = _call(W, V, batches, zeta, eta, True)
    ctl.raise_if_diverged("DreamComp fit (cuda)")
    return info


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
        ctl.raise_if_diverged("DreamComp fit (cuda)")
    return ctl.done


def batch_update(W: np.ndarray, V: np.ndarray, zeta: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """One minibatch ``V`` (B, D + C) of rule B on ``W`` in place; returns the winners (B,) int64."""
    V = np.asarray(V)
    win, _, ctl = _call(W, V, one_batch(V.shape[0]), zeta, eta, True)
    if ctl.diverged:
        raise DivergenceError("the update of this batch is not finite (NaN or inf); nothing was written")
    return win


def winners(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """The winner of every row b of V, as ``fit`` picks it: ``argmax_n (W V^T)[n, b]`` (in
    float32 with ``SCREEN``, of the float64 drives; ties to the lower index), or, when W has
    a NaN, as ``np.argmax`` picks it in W's dtype (the first NaN).

    Parameters
    ----------
    W : ndarray of shape (N, D + C); V : ndarray of shape (B, D + C)

    Returns
    -------
    ndarray of shape (B,), int64
    """
    V = np.asarray(V)
    dt = _dtype(W)
    zero = np.zeros(np.shape(W)[1], dt)
    return _call(W, V, one_batch(V.shape[0]), zero + 1, zero, False)[0]
