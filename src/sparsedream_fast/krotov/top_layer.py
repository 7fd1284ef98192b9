"""Numpy reference of the supervised top layer of Krotov & Hopfield (PNAS 2019).

On frozen hidden weights ``W`` (H, D) of the competing hidden units:

1. hidden activity ``h = max(W x, 0) ** n`` (the rectified power; paper: n = 4.5),
2. outputs ``c = tanh(beta * S h)``, one per class, ``S`` of shape (C, H),
3. loss ``sum over samples and classes of |c - t| ** m`` with targets ``t = +1`` for the
   sample's class and ``-1`` for the others (paper: m = 6),
4. ``S`` trained by minibatch gradient descent with Adam, its rate annealed linearly over
   the epochs (``reference.epoch_rate``, the schedule of the unsupervised rule).

Only ``S`` learns, so ``h`` of the training set is computed once per fit. The gradient is
the chain rule through the three steps (``loss_and_gradient``); ``tests/test_krotov_classifier.py``
checks it against finite differences and the training loop against a transcription of the
equations written separately.
"""
from __future__ import annotations

import numpy as np

from .reference import epoch_rate

__all__ = ["unit_rows", "hidden_activity", "outputs", "targets", "loss_and_gradient", "Adam", "fit"]

#: rows of X per product when the hidden activity of many samples is computed
CHUNK = 4096


def unit_rows(W: np.ndarray, p: float) -> np.ndarray:
    """``W`` with every row scaled to unit Lebesgue p-norm (``sum |W_mu|^p = 1``); all-zero
    rows stay zero. A new array of W's dtype."""
    norm = np.sum(np.abs(W.astype(np.float64)) ** p, axis=1) ** (1.0 / p)
    scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    return (W * scale[:, None]).astype(W.dtype)


def hidden_activity(W: np.ndarray, X: np.ndarray, n: float, chunk: int = CHUNK) -> np.ndarray:
    """``max(X W^T, 0) ** n``, shape (n_samples, H), in the dtype of ``W``.

    Computed ``chunk`` rows at a time so that no temporary larger than the result is made.
    """
    out = np.empty((X.shape[0], W.shape[0]), dtype=W.dtype)
    for s in range(0, X.shape[0], chunk):
        block = out[s:s + chunk]
        np.matmul(X[s:s + chunk], W.T, out=block)
        np.maximum(block, 0, out=block)
        np.power(block, n, out=block)
    return out


def outputs(S: np.ndarray, Hb: np.ndarray, beta: float) -> np.ndarray:
    """``tanh(beta * Hb S^T)``: the output units of every sample, shape (B, C)."""
    return np.tanh(beta * (Hb @ S.T))


def targets(y_index: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """The paper's targets: +1 at each sample's class index, -1 elsewhere, shape (n, C)."""
    T = np.full((y_index.shape[0], n_classes), -1.0, dtype=dtype)
    T[np.arange(y_index.shape[0]), y_index] = 1.0
    return T


def loss_and_gradient(S: np.ndarray, Hb: np.ndarray, Tb: np.ndarray, beta: float, m: float):
    """The minibatch loss ``sum |c - t|^m`` and its gradient with respect to ``S``.

    With ``c = tanh(u)``, ``u = beta * Hb S^T``, ``d = c - t``:
    ``dL/dc = m |d|^(m-1) sign(d)``, ``dc/du = 1 - c^2``, ``du/dS[a] = beta * h``, so
    ``dL/dS = (m |d|^(m-1) sign(d) (1 - c^2) beta)^T Hb``.

    Parameters
    ----------
    S : ndarray of shape (C, H)
    Hb : ndarray of shape (B, H), hidden activity of the minibatch
    Tb : ndarray of shape (B, C), targets (+1 / -1)

    Returns
    -------
    loss : float
    grad : ndarray of shape (C, H), dtype of S
    c : ndarray of shape (B, C), the outputs
    """
    c = outputs(S, Hb, beta)
    d = c - Tb
    a = np.abs(d)
    loss = float(np.sum(a ** m))
    delta = (m * beta) * (a ** (m - 1) * np.sign(d)) * (1 - c * c)
    return loss, (delta.T @ Hb).astype(S.dtype, copy=False), c


class Adam:
    """Adam (Kingma & Ba 2015) on one array, with bias-corrected moments.

    ``step(P, g, lr)`` does ``t += 1``, ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``P -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``, in place.
    """

    def __init__(self, shape, dtype, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.b1, self.b2, self.eps = b1, b2, eps
        self.m = np.zeros(shape, dtype)
        self.v = np.zeros(shape, dtype)
        self.t = 0

    def step(self, P: np.ndarray, g: np.ndarray, lr: float) -> None:
        self.t += 1
        self.m *= self.b1
        self.m += (1 - self.b1) * g
        self.v *= self.b2
        self.v += (1 - self.b2) * (g * g)
        mhat = self.m / (1 - self.b1 ** self.t)
        vhat = self.v / (1 - self.b2 ** self.t)
        P -= lr * mhat / (np.sqrt(vhat) + self.eps)


def fit(S: np.ndarray, H: np.ndarray, T: np.ndarray, batches: np.ndarray, beta: float, m: float,
        lr0: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, anneal: bool = True,
        after_epoch=None) -> list:
    """Train ``S`` on ``H[batches[e, i]]`` with Adam, in place.

    Epoch ``e`` of ``E`` uses the rate ``lr0 * (1 - e / E)`` (``anneal``) or ``lr0``.

    Parameters
    ----------
    S : ndarray of shape (C, H)
    H : ndarray of shape (n, H), hidden activity of the training set
    T : ndarray of shape (n, C), targets
    batches : ndarray of shape (E, n_batches, B), int64
    after_epoch : callable or None
        ``after_epoch(e)`` after every epoch (the estimator records its learning curves
        there).

    Returns
    -------
    list of float
        The mean loss per sample of every epoch, each minibatch's loss taken before its
        update.
    """
    opt = Adam(S.shape, S.dtype, b1, b2, eps)
    E = batches.shape[0]
    curve = []
    for e in range(E):
        lr = epoch_rate(lr0, e, E) if anneal else lr0
        total = 0.0
        for idx in batches[e]:
            loss, g, _ = loss_and_gradient(S, H[idx], T[idx], beta, m)
            opt.step(S, g, lr)
            total += loss
        curve.append(total / batches[e].size)
        if after_epoch is not None:
            after_epoch(e)
    return curve
