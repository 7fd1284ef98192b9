"""Numpy reference of rule C, Krotov & Hopfield's competing hidden units (seed 003).

Per minibatch ``X`` (B, D), with ``Wp = sign(W) |W|^(p-1)``:

1. ``I = Wp X^T`` (hid, B)
2. per sample rank the hidden units by I (value descending, ties to the lower index):
   ``g = 1`` for the first, ``g = -delta`` for the k-th, 0 for the rest
3. ``xx = sum_b g I``; ``ds = g X - xx[:, None] W``
4. ``W += eps * (ds / max(max|ds|, prec))``

Epoch ``ep`` of ``Nep`` uses ``eps = eps0 * (1 - ep / Nep)``.

A batch whose update is not finite (NaN or inf anywhere in the new W) writes nothing: the
fit stops before it (training diverged), with W as after the batch before.
"""
from __future__ import annotations

import numpy as np

from .._runtime import RUN_DIVERGED, RUN_DONE, RUN_STOPPED, Control, DivergenceError, loop_control

__all__ = ["currents", "ranks", "try_batch_update", "batch_update", "epoch_rate", "fit"]


def currents(W: np.ndarray, X: np.ndarray, p: float) -> np.ndarray:
    """Hidden currents ``I = (sign(W) |W|^(p-1)) X^T``, shape (hid, B)."""
    return (np.sign(W) * np.abs(W) ** (p - 1)) @ X.T


def ranks(I: np.ndarray, k: int):
    """First and k-th unit of every column of I (value descending, ties to the lower index).

    Returns
    -------
    first, kth : ndarrays of shape (B,), int64
    """
    hid, B = I.shape
    first = np.empty(B, np.int64)
    kth = np.empty(B, np.int64)
    idx = np.arange(hid)
    for b in range(B):
        order = np.lexsort((idx, -I[:, b]))
        first[b], kth[b] = order[0], order[k - 1]
    return first, kth


def try_batch_update(W: np.ndarray, X: np.ndarray, p: float, k: int, delta: float, eps: float,
                     prec: float) -> bool:
    """One minibatch ``X`` (B, D) of rule C on ``W`` (hid, D) in place, when the new W is
    finite; returns False (nothing written) when it is not."""
    B = X.shape[0]
    with np.errstate(all="ignore"):  # an update that overflows is reported by the result, not warned about
        I = currents(W, X, p)
        first, kth = ranks(I, k)
        g = np.zeros(I.shape, dtype=W.dtype)
        g[first, np.arange(B)] = 1.0
        g[kth, np.arange(B)] = -delta
        xx = np.sum(g * I, axis=1)
        ds = g @ X - xx[:, None] * W
        nc = max(float(np.max(np.abs(ds))), prec)
        new = W + eps * (ds / nc)
    if not np.isfinite(new).all():
        return False
    W[...] = new
    return True


def batch_update(W: np.ndarray, X: np.ndarray, p: float, k: int, delta: float, eps: float,
                 prec: float) -> None:
    """One minibatch ``X`` (B, D) of rule C on ``W`` (hid, D), in place.

    Raises DivergenceError, writing nothing, when the update is not finite.
    """
    if not try_batch_update(W, X, p, k, delta, eps, prec):
        raise DivergenceError("the update of this batch is not finite (NaN or inf); nothing was written")


def epoch_rate(eps0: float, epoch: int, total: int) -> float:
    """The learning rate of epoch ``epoch`` of ``total``: ``eps0 * (1 - epoch / total)``, in
    Python floats (every backend takes its rates from here)."""
    return eps0 * (1 - epoch / total)


def fit(W: np.ndarray, X: np.ndarray, batches: np.ndarray, p: float, k: int, delta: float,
        eps0: float, prec: float, epoch0: int = 0, total_epochs: int | None = None,
        control: Control | None = None) -> int:
    """Train on ``X[batches[e, i]]``, annealing ``eps`` linearly over ``total_epochs``, in place.

    The loop stops after a batch when ``control`` requests it, and before a batch whose
    update is not finite (``try_batch_update``).

    Parameters
    ----------
    W : ndarray of shape (hid, D)
    X : ndarray of shape (n, D)
    batches : ndarray of shape (E, n_batches, B), int64
    epoch0 : int
        Index of ``batches[0]`` among ``total_epochs`` (default: E epochs from 0).
    control : sparsedream_fast._runtime.Control or None
        Stop request in, batches done and status out. None: run to the end, and raise
        DivergenceError when a batch's update is not finite.

    Returns
    -------
    int : the batches completed
    """
    ctl = loop_control(control)
    total = batches.shape[0] if total_epochs is None else total_epochs
    E, nb = batches.shape[0], batches.shape[1]
    done, status = 0, RUN_DONE
    for e in range(E):
        eps = epoch_rate(eps0, epoch0 + e, total)
        for i in range(nb):
            if not try_batch_update(W, X[batches[e, i]], p, k, delta, eps, prec):
                status = RUN_DIVERGED
                break
            done += 1
            if ctl.stop_requested and done < E * nb:
                status = RUN_STOPPED
                break
        if status != RUN_DONE:
            break
    ctl.report(done, status)
    if control is None:
        ctl.raise_if_diverged("KrotovHopfield fit (numpy)")
    return done
