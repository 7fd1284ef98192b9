"""CUDA backend of rule C, Krotov-Hopfield (backend ``"cuda"``): a thin wrapper over the CUDA module.

The same functions and signatures as the numpy reference (``reference.py``). A whole
``fit`` is one native call without the GIL (``csrc/cuda/krotov.cu``): ``Wp = sign(W)
|W|^(p-1)`` is computed once on the GPU and then only for the updated units; per minibatch
the currents ``I = X_b Wp^T`` run on cuBLAS (when it loads; ``GEMM``) or the module's own
GEMM kernel, then a kernel ranks every sample's units, one builds the selected units' ds
rows and one applies the normalised update; every epoch after the first is replayed as a
CUDA graph (``GRAPHS``), the annealed rate read from device memory.

Numerics: the ranking is that of the currents in W's dtype (as the reference's, without
the CPU backends' float64 screening); sums over a unit's samples run in sample order; eps
and the normalizer are cast to the dtype as numpy 2 casts Python floats.

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
from .reference import epoch_rate

__all__ = ["GEMM", "GRAPHS", "weight_powers", "ranks", "batch_update", "fit"]

#: The minibatch product: "auto" (cuBLAS when it loads, else the own kernel), "cublas", "kernel".
GEMM = "auto"
#: Replay each epoch after the first as a CUDA graph.
GRAPHS = True


def _call(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None, control=None):
    """The fit on the GPU; returns (what it used, the Control it reported to)."""
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64).reshape(-1, *np.shape(batches)[-2:]), np.int64)
    total = batches.shape[0] if total_epochs is None else total_epochs
    eps = np.array([epoch_rate(eps0, epoch0 + e, total) for e in range(batches.shape[0])], np.float64)
    ctl = loop_control(control)
    try:
        info = cuda_module().krotov_fit(Ww, _c(X, dt), batches, float(p), int(k), float(delta), eps, float(prec),
                                        control=ctl.array, **gemm_args(GEMM, GRAPHS))
    finally:  # also when a signal handler's exception comes out of the native loop
        if Ww is not W:
            W[...] = Ww
    return info, ctl


def _fit_info(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None) -> dict:
    """``fit``; returns what it used: {"gemm": "cublas" | "kernel", "graph": bool}."""
    info, ctl = _call(W, X, batches, p, k, delta, eps0, prec, epoch0, total_epochs)
    ctl.raise_if_diverged("KrotovHopfield fit (cuda)")
    return info


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
        ctl.raise_if_diverged("KrotovHopfield fit (cuda)")
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
    """``sign(W) |W|^(p-1)`` on the GPU, shape and dtype of W (numpy's bit for bit at
    p = 2, 3, 1.5; the general power in float64, within an ulp or two of numpy's)."""
    Wc = _c(W, _dtype(W))
    out = np.empty_like(Wc)
    cuda_module().krotov_weight_powers(Wc, float(p), out)
    return out


def ranks(I: np.ndarray, k: int):
    """First and k-th unit of every column of I (value descending, ties to the lower index,
    NaN last), on the GPU.

    Parameters
    ----------
    I : ndarray of shape (hid, B)
    k : int, 1 <= k <= hid

    Returns
    -------
    first, kth : ndarrays of shape (B,), int64
    """
    I = np.asarray(I)
    IB = np.ascontiguousarray(I.T, dtype=_dtype(I))  # a block per sample reads its row
    first = np.empty(IB.shape[0], np.int64)
    kth = np.empty(IB.shape[0], np.int64)
    cuda_module().krotov_ranks(IB, int(k), first, kth)
    return first, kth
