"""Numpy reference of rule A (backend ``"numpy"``): the executable specification.

Every other backend is tested against these functions. They follow
``docs/rules/sparsedream.md`` and the choices of ``docs/design.md`` literally,
favouring clarity over speed (one dense drive pass per step, like the notebooks, but
with the lateral as a stencil or CSR and only active rows updated).
"""
from __future__ import annotations

import numpy as np

from .config import TRACE_DROP, Competition, Output, SparseDreamConfig, TrainState

__all__ = ["competition", "topk", "reconstruct", "update_rows", "step", "apply_bounds", "fit", "infer"]


def competition(W: np.ndarray, v: np.ndarray, lateral, cfg: SparseDreamConfig):
    """Drive and competition value of one input.

    Parameters
    ----------
    W : ndarray of shape (N, D)
    v : ndarray of shape (D,)
    lateral : Stencil, CSR or None
    cfg : SparseDreamConfig

    Returns
    -------
    p, c : ndarrays of shape (N,), dtype of W
    """
    prec = cfg.prec
    p = W @ v
    mode = cfg.competition
    if mode == Competition.DRIVE:
        c = p
    elif mode == Competition.LATERAL:
        c = p + lateral.matvec(p) if lateral is not None else p.copy()
    elif mode in (Competition.NORMALIZED_LATERAL, Competition.MEAN_LATERAL):
        q = p / np.maximum(W.sum(axis=1), prec)
        lq = lateral.matvec(q) if lateral is not None else np.zeros_like(q)
        c = p + lq if mode == Competition.NORMALIZED_LATERAL else (3 * q + lq) / 4
    elif mode == Competition.WEIGHTED_AVERAGE:
        c = (W @ (v * v)) / np.maximum(p, prec)
    else:  # pragma: no cover - validated before
        raise ValueError(f"unknown competition {mode!r}")
    return p, c


def topk(c: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of c, by value descending, ties to the lower index.

    Parameters
    ----------
    c : ndarray of shape (N,)
    k : int, 1 <= k <= N

    Returns
    -------
    ndarray of shape (k,), int64
    """
    n = c.shape[0]
    if k < n:
        kth = np.partition(c, n - k)[n - k]
        cand = np.flatnonzero(c >= kth)
    else:
        cand = np.arange(n)
    order = np.lexsort((cand, -c[cand]))
    return cand[order[:k]].astype(np.int64)


def reconstruct(W: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """Masked reconstruction ``r = sum_j vals[j] * W[idx[j]]`` over the active rows only.

    Parameters
    ----------
    W : ndarray of shape (N, D)
    idx : ndarray of shape (m,), int64, distinct row indices
    vals : ndarray of shape (m,), dtype of W

    Returns
    -------
    ndarray of shape (D,), dtype of W
    """
    return (vals @ W[idx]).astype(W.dtype, copy=False)


def update_rows(W: np.ndarray, idx: np.ndarray, vals: np.ndarray, v: np.ndarray,
                r: np.ndarray, lr: float, error_clip, prec: float) -> np.ndarray:
    """Multiplicative update of the active rows, in place (docs/rules/sparsedream.md, steps 7-8).

    ``e = clip(v - r)``, ``g = e / max(r, prec)``, ``W[j] += ((lr * vals_j) * W[j]) * g``.

    Parameters
    ----------
    W : ndarray of shape (N, D), updated in place (only rows ``idx``)
    idx, vals : ndarrays of shape (m,): active rows and their activity
    v, r : ndarrays of shape (D,): input and its reconstruction
    lr : float
    error_clip : float or None
    prec : float

    Returns
    -------
    e : ndarray of shape (D,), the (clipped) error
    """
    e = v - r
    if error_clip is not None:
        e = np.clip(e, -error_clip, error_clip)
    g = e / np.maximum(r, prec)
    W[idx] += ((lr * vals)[:, None] * W[idx]) * g[None, :]
    return e


def step(state: TrainState, v: np.ndarray, cfg: SparseDreamConfig) -> np.ndarray:
    """One learning step of rule A on input ``v`` (shape (D,)), in place on ``state``.

    Returns the winners (k,) int64 in competition order.
    """
    W, lateral, o = state.W, state.lateral, state.trace
    prec = cfg.prec
    p, c = competition(W, v, lateral, cfg)
    win = topk(c, cfg.k)
    s = p if cfg.output == Output.DRIVE else c
    if cfg.trace is None:
        active = win
        ov = s[win].astype(W.dtype, copy=True)
        o[:] = 0
        o[win] = ov
    else:
        a = np.zeros_like(o)
        a[win] = s[win]
        o += cfg.trace * (a - o)
        big = np.abs(o).max()
        o[np.abs(o) < TRACE_DROP * big] = 0
        active = np.flatnonzero(o)
        ov = o[active]
    r = reconstruct(W, active, ov)
    update_rows(W, active, ov, v, r, cfg.lr, cfg.error_clip, prec)
    if cfg.learn_lateral:
        _learn_lateral(lateral, o, active, cfg)
    return win


def _learn_lateral(L, o: np.ndarray, active: np.ndarray, cfg: SparseDreamConfig) -> None:
    """Multiplicative lateral update (docs/rules/sparsedream.md, step 9) on the CSR ``L`` in place."""
    u = L.rmatvec(o)
    ratio = (o - u) / np.maximum(u, cfg.prec)
    for i in active:
        lo, hi = L.indptr[i], L.indptr[i + 1]
        seg = L.data[lo:hi]
        seg += ((cfg.lateral_lr * o[i]) * seg) * ratio[L.indices[lo:hi]]


def apply_bounds(state: TrainState, cfg: SparseDreamConfig) -> None:
    """Clip W (and the lateral when ``cfg.clip_lateral``) to [0, w_max] in place."""
    np.clip(state.W, 0, cfg.w_max, out=state.W)
    if cfg.clip_lateral:
        np.clip(state.lateral.data, 0, cfg.w_max, out=state.lateral.data)


def fit(state: TrainState, X: np.ndarray, order: np.ndarray, cfg: SparseDreamConfig,
        reset_trace: bool = True, step0: int = 0) -> None:
    """Train on ``X[order[e, i]]`` for every epoch row e, in place on ``state``.

    Parameters
    ----------
    state : TrainState
    X : ndarray of shape (n, D), dtype of the model
    order : ndarray of shape (E, S), int64
        Row e is the sequence of sample indices of epoch e.
    cfg : SparseDreamConfig
    reset_trace : bool
        Zero the trace at the start of every row of ``order`` (``fit``); False continues it.
    step0 : int
        Index within its epoch of ``order[:, 0]`` (bounds fall on epoch indices
        0, clip_every, ...); used when an epoch is run in chunks.
    """
    for e in range(order.shape[0]):
        if reset_trace:
            state.trace[:] = 0
        for i in range(order.shape[1]):
            step(state, X[order[e, i]], cfg)
            if cfg.has_bounds and (step0 + i) % cfg.clip_every == 0:
                apply_bounds(state, cfg)


def infer(W: np.ndarray, lateral, X: np.ndarray, cfg: SparseDreamConfig):
    """Winners and their activity for every row of X, without learning and without trace.

    Returns
    -------
    winners : ndarray of shape (n, k), int64, competition order
    values : ndarray of shape (n, k), dtype of W: the activity ``s`` of each winner
    """
    n = X.shape[0]
    win = np.empty((n, cfg.k), np.int64)
    val = np.empty((n, cfg.k), W.dtype)
    for i in range(n):
        p, c = competition(W, X[i], lateral, cfg)
        w = topk(c, cfg.k)
        s = p if cfg.output == Output.DRIVE else c
        win[i], val[i] = w, s[w]
    return win, val
