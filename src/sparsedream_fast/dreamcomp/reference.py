"""Numpy reference of rule B, DreamComp (seed 002): the executable specification.

Inputs are extended with their one-hot label, ``v = [x, onehot(y)]`` (D + C values). Per
minibatch ``V`` (B, D + C):

1. ``S = W V^T`` (N, B); the winner of sample b is ``argmax_n S[n, b]`` (ties: lower index)
2. ``M[n, b] = 1`` where n won b, each row divided by ``max(1, its count)``
3. ``U = M V``, ``s_n = sum_b S[n, b] M[n, b]``
4. ``W += eta * (U - s[:, None] * (W / zeta))``

written as the notebook writes it (dense M), so that it is its literal transcription.

A batch whose update is not finite (NaN or inf anywhere in the new W) writes nothing: the
fit stops before it (training diverged), with W as after the batch before.
"""
from __future__ import annotations

import numpy as np

from .._runtime import RUN_DIVERGED, RUN_DONE, RUN_STOPPED, Control, DivergenceError, loop_control

__all__ = ["synapse_vectors", "extend", "try_batch_update", "batch_update", "fit", "predict_neurons"]


def synapse_vectors(n_inputs: int, n_classes: int, recon_weight: float, lr: float, label_lr: float, dtype):
    """Per-synapse reconstruction weights ``zeta`` and learning rates ``eta``, shape (D + C,)."""
    zeta = np.ones(n_inputs + n_classes, dtype=dtype)
    zeta[n_inputs:] = recon_weight
    eta = np.full(n_inputs + n_classes, lr, dtype=dtype)
    eta[n_inputs:] = label_lr
    return zeta, eta


def extend(X: np.ndarray, y: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """``[x, onehot(y)]`` for every sample: shape (n, D + C)."""
    V = np.zeros((X.shape[0], X.shape[1] + n_classes), dtype=dtype)
    V[:, : X.shape[1]] = X
    V[np.arange(X.shape[0]), X.shape[1] + y] = 1
    return V


def try_batch_update(W: np.ndarray, V: np.ndarray, zeta: np.ndarray, eta: np.ndarray):
    """One minibatch of rule B on ``W`` (N, D + C) in place, when the new W is finite.

    Returns the winners (B,) int64, or None (nothing written) when the update is not finite.
    """
    N, B = W.shape[0], V.shape[0]
    with np.errstate(all="ignore"):  # an update that overflows is reported by the result, not warned about
        S = W @ V.T
        wins = np.argmax(S, axis=0)
        M = np.zeros((N, B), dtype=W.dtype)
        M[wins, np.arange(B)] = 1
        M /= np.maximum(1, np.sum(M, axis=1)).reshape(-1, 1)
        U = M @ V
        s = np.sum(S * M, axis=1).reshape(-1, 1)
        new = W + (U - (s * (W / zeta))) * eta
    if not np.isfinite(new).all():
        return None
    W[...] = new
    return wins.astype(np.int64)


def batch_update(W: np.ndarray, V: np.ndarray, zeta: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """One minibatch of rule B on ``W`` (N, D + C) in place; returns the winners (B,) int64.

    Raises DivergenceError, writing nothing, when the update is not finite.
    """
    wins = try_batch_update(W, V, zeta, eta)
    if wins is None:
        raise DivergenceError("the update of this batch is not finite (NaN or inf); nothing was written")
    return wins


def fit(W: np.ndarray, V: np.ndarray, batches: np.ndarray, zeta: np.ndarray, eta: np.ndarray,
        control: Control | None = None) -> int:
    """Train on ``V[batches[e, i]]`` for every epoch e and batch i, in place.

    The loop stops after a batch when ``control`` requests it, and before a batch whose
    update is not finite (``try_batch_update``).

    Parameters
    ----------
    W : ndarray of shape (N, D + C)
    V : ndarray of shape (n, D + C), the extended samples
    batches : ndarray of shape (E, n_batches, B), int64
    control : sparsedream_fast._runtime.Control or None
        Stop request in, batches done and status out. None: run to the end, and raise
        DivergenceError when a batch's update is not finite.

    Returns
    -------
    int : the batches completed
    """
    ctl = loop_control(control)
    flat = np.asarray(batches).reshape(-1, np.shape(batches)[-1])
    done, status = 0, RUN_DONE
    for t in range(flat.shape[0]):
        if try_batch_update(W, V[flat[t]], zeta, eta) is None:
            status = RUN_DIVERGED
            break
        done += 1
        if ctl.stop_requested and done < flat.shape[0]:
            status = RUN_STOPPED
            break
    ctl.report(done, status)
    if control is None:
        ctl.raise_if_diverged("DreamComp fit (numpy)")
    return done


def predict_neurons(W: np.ndarray, X: np.ndarray, n_inputs: int, chunk: int = 4096) -> np.ndarray:
    """The best-matching neuron ``argmax_n W[n, :D] x`` of every row of X, shape (n,) int64."""
    out = np.empty(X.shape[0], np.int64)
    Wx = W[:, :n_inputs]
    for s in range(0, X.shape[0], chunk):
        out[s:s + chunk] = np.argmax(X[s:s + chunk] @ Wx.T, axis=1)
    return out
