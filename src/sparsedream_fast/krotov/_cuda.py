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
and the normalizer are cast to the dtype as numpy 2 casts Python floats. A fit needs finite
weights (ValueError otherwise).
"""
from __future__ import annotations

import numpy as np

from .._arrays import as_c as _c, float_dtype as _dtype
from .._backends import cuda_module
from .._gpu_gemm import gemm_args
from .._rng import one_batch
from .reference import epoch_rate

__all__ = ["GEMM", "GRAPHS", "weight_powers", "ranks", "batch_update", "fit"]

#: The minibatch product: "auto" (cuBLAS when it loads, else the own kernel), "cublas", "kernel".
GEMM = "auto"
#: Replay each epoch after the first as a CUDA graph.
GRAPHS = True


def _fit_info(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None) -> dict:
    """``fit``; returns what it used: {"gemm": "cublas" | "kernel", "graph": bool}."""
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64).reshape(-1, *np.shape(batches)[-2:]), np.int64)
    total = batches.shape[0] if total_epochs is None else total_epochs
    eps = np.array([epoch_rate(eps0, epoch0 + e, total) for e in range(batches.shape[0])], np.float64)
    info = cuda_module().krotov_fit(Ww, _c(X, dt), batches, float(p), int(k), float(delta), eps, float(prec),
                                    **gemm_args(GEMM, GRAPHS))
    if Ww is not W:
        W[...] = Ww
    return info


def fit(W: np.ndarray, X: np.ndarray, batches: np.ndarray, p: float, k: int, delta: float,
        eps0: float, prec: float, epoch0: int = 0, total_epochs: int | None = None) -> None:
    """Train on ``X[batches[e, i]]``, annealing ``eps`` linearly over ``total_epochs``, in place.

    Parameters
    ----------
    W : ndarray of shape (hid, D), float32 or float64, finite, updated in place
    X : ndarray of shape (n, D)
    batches : ndarray of shape (E, n_batches, B), int64
    p, k, delta, eps0, prec : as in ``reference.fit`` (2 <= k <= hid)
    epoch0 : int
        Index of ``batches[0]`` among ``total_epochs`` (default: E epochs from 0).
    """
    _fit_info(W, X, batches, p, k, delta, eps0, prec, epoch0, total_epochs)


def batch_update(W: np.ndarray, X: np.ndarray, p: float, k: int, delta: float, eps: float,
                 prec: float) -> None:
    """One minibatch ``X`` (B, D) of rule C on ``W`` (hid, D), in place."""
    X = np.asarray(X)
    # eps0 * (1 - 0 / 1) == eps exactly
    fit(W, X, one_batch(X.shape[0]), p, k, delta, eps, prec)


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
