"""Numpy reference of rule A (backend ``"numpy"``): the executable specification.

Every other backend is tested against these functions. They follow
``docs/rules/sparsedream.md`` and the choices of ``docs/design.md`` literally,
favouring clarity over speed (one dense drive pass per step, like the notebooks, but
with the lateral as a stencil or CSR and only active rows updated).
"""
from __future__ import annotations

import numpy as np

from .config import TRACE_DROP, Competition, Output, SparseDreamConfig, TrainState

__all__ = ["competition", "topk", "reconstruct", "updated_rows", "sign_kept", "update_rows", "try_step", "step",
           "apply_bounds", "fit", "infer"]


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
    """Indices of the k largest entries of c, by value descending, ties to the lower index,
    NaN after every number.

    Parameters
    ----------
    c : ndarray of shape (N,)
    k : int, 1 <= k <= N

    Returns
    -------
    ndarray of shape (k,), int64
    """
    n = c.shape[0]
    if k < n and not np.isnan(c).any():
        kth = np.partition(c, n - k)[n - k]
        cand = np.flatnonzero(c >= kth)
    else:
        # NaN compares false with every k-th value, so the shortcut could keep fewer than k;
        # k winners are always chosen, NaN after every number (a NaN winner's activity then
        # makes the step's update non-finite: training stops there)
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


def updated_rows(W: np.ndarray, idx: np.ndarray, vals: np.ndarray, v: np.ndarray,
                 r: np.ndarray, lr: float, error_clip, prec: float):
    """The active rows after the multiplicative update, without writing them (docs/rules/sparsedream.md, steps 7-8).

    ``e = clip(v - r)``, ``g = e / max(r, prec)``, new row ``W[j] + ((lr * vals_j) * W[j]) * g``,
    except that a weight never changes sign: where the new value has the opposite sign of
    the old one (the factor ``1 + lr * vals_j * g`` is negative) it is 0 (``sign_kept``).

    Returns
    -------
    rows : ndarray of shape (m, D), the new values of ``W[idx]``
    e : ndarray of shape (D,), the (clipped) error
    """
    e = v - r
    if error_clip is not None:
        e = np.clip(e, -error_clip, error_clip)
    g = e / np.maximum(r, prec)
    Wa = W[idx]
    return sign_kept(Wa, Wa + ((lr * vals)[:, None] * Wa) * g[None, :]), e


def sign_kept(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` where it has the sign of ``w`` (or either is 0 or NaN), else 0, in place on ``x``.

    The multiplicative update ``w (1 + lr o g)`` overshoots past 0 when ``lr o g < -1`` (a
    winner whose drive exceeds ``1 / lr`` at a pixel its reconstruction overshoots). A
    weight that changed sign is set to 0 instead: a negative weight would later make the
    reconstruction ``r <= 0``, where ``max(r, prec)`` turns the gain into ``e / prec`` and
    multiplies that weight by about ``lr o / prec`` per step (docs/rules/sparsedream.md,
    "Numerics"). NaN stays NaN, so a non-finite update is still detected.

    Parameters
    ----------
    w, x : ndarrays of the same shape and float dtype: old and new weights

    Returns
    -------
    x
    """
    x[((w > 0) & (x < 0)) | ((w < 0) & (x > 0))] = 0
    return x


def update_rows(W: np.ndarray, idx: np.ndarray, vals: np.ndarray, v: np.ndarray,
                r: np.ndarray, lr: float, error_clip, prec: float) -> np.ndarray:
    """Multiplicative update of the active rows, in place (docs/rules/sparsedream.md, steps 7-8).

    ``e = clip(v - r)``, ``g = e / max(r, prec)``, ``W[j] += ((lr * vals_j) * W[j]) * g``, a
    weight that would change sign becoming 0 (``updated_rows``).

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
    rows, e = updated_rows(W, idx, vals, v, r, lr, error_clip, prec)
    W[idx] = rows
    return e


def try_step(state: TrainState, v: np.ndarray, cfg: SparseDreamConfig):
    """One learning step of rule A on input ``v`` (shape (D,)), in place on ``state``, when
    every value it writes is finite.

    The step computes the new trace, the new rows of the active neurons and (when learned)
    the new lateral entries of the active rows first; when one of them is not finite (NaN
    or inf) it writes nothing and returns None (training diverged: the fits stop there).

    Returns the winners (k,) int64 in competition order, or None.
    """
    with np.errstate(all="ignore"):  # a step that overflows is reported by its result, not warned about
        return _try_step(state, v, cfg)


def _try_step(state, v, cfg):
    W, lateral, o = state.W, state.lateral, state.trace
    prec = cfg.prec
    p, c = competition(W, v, lateral, cfg)
    win = topk(c, cfg.k)
    s = p if cfg.output == Output.DRIVE else c
    if cfg.trace is None:
        active = win
        ov = s[win].astype(W.dtype, copy=True)
        o_new = np.zeros_like(o)
        o_new[win] = ov
    else:
        a = np.zeros_like(o)
        a[win] = s[win]
        o_new = o + cfg.trace * (a - o)
        big = np.abs(o_new).max()
        o_new[np.abs(o_new) < TRACE_DROP * big] = 0
        active = np.flatnonzero(o_new)
        ov = o_new[active]
    r = reconstruct(W, active, ov)
    rows, _ = updated_rows(W, active, ov, v, r, cfg.lr, cfg.error_clip, prec)
    # a non-finite activity makes its row's update non-finite too: the rows cover the trace
    if not np.isfinite(rows).all():
        return None
    if cfg.learn_lateral:
        lat_new = _learned_lateral(lateral, o_new, active, cfg)
        if not np.isfinite(lat_new).all():
            return None
        lateral.data[...] = lat_new
    o[...] = o_new
    W[active] = rows
    return win


def step(state: TrainState, v: np.ndarray, cfg: SparseDreamConfig) -> np.ndarray:
    """One learning step of rule A on input ``v`` (shape (D,)), in place on ``state``.

    Returns the winners (k,) int64 in competition order. Raises DivergenceError, writing
    nothing, when the step's update is not finite (``try_step``).
    """
    win = try_step(state, v, cfg)
    if win is None:
        from .._runtime import DivergenceError
        raise DivergenceError("the update of this step is not finite (NaN or inf); nothing was written")
    return win


def _learned_lateral(L, o: np.ndarray, active: np.ndarray, cfg: SparseDreamConfig) -> np.ndarray:
    """The CSR ``L``'s data after the multiplicative lateral update (docs/rules/sparsedream.md, step 9), not written;
    an entry that would change sign becomes 0 (``sign_kept``)."""
    u = L.rmatvec(o)
    ratio = (o - u) / np.maximum(u, cfg.prec)
    data = L.data.copy()
    for i in active:
        lo, hi = L.indptr[i], L.indptr[i + 1]
        seg = data[lo:hi]
        seg[...] = sign_kept(seg, seg + ((cfg.lateral_lr * o[i]) * seg) * ratio[L.indices[lo:hi]])
    return data


def apply_bounds(state: TrainState, cfg: SparseDreamConfig) -> None:
    """Clip W (and the lateral when ``cfg.clip_lateral``) to [0, w_max] in place."""
    np.clip(state.W, 0, cfg.w_max, out=state.W)
    if cfg.clip_lateral:
        np.clip(state.lateral.data, 0, cfg.w_max, out=state.lateral.data)


def fit(state: TrainState, X: np.ndarray, order: np.ndarray, cfg: SparseDreamConfig,
        reset_trace: bool = True, step0: int = 0, control=None) -> int:
    """Train on ``X[order[e, i]]`` for every epoch row e, in place on ``state``.

    The loop stops after a step when ``control`` requests it, and before a step whose update
    is not finite (``try_step``); the state is then exactly that after the last completed
    step, bounds included.

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
    control : sparsedream_fast._runtime.Control or None
        Stop request in, steps done and status out. None: run to the end, and raise
        DivergenceError when a step's update is not finite.

    Returns
    -------
    int : the steps completed
    """
    from .._runtime import RUN_DIVERGED, RUN_DONE, RUN_STOPPED, loop_control
    ctl = loop_control(control)
    E, S = order.shape
    done, status = 0, RUN_DONE
    for e in range(E):
        saved = None
        if reset_trace:
            saved = state.trace.copy()  # the reset is part of the epoch's first step
            state.trace[:] = 0
        for i in range(S):
            if try_step(state, X[order[e, i]], cfg) is None:
                if i == 0 and saved is not None:
                    state.trace[...] = saved
                status = RUN_DIVERGED
                break
            done += 1
            if cfg.has_bounds and (step0 + i) % cfg.clip_every == 0:
                apply_bounds(state, cfg)
            if ctl.stop_requested and done < E * S:
                status = RUN_STOPPED
                break
        if status != RUN_DONE:
            break
    ctl.report(done, status)
    if control is None:
        ctl.raise_if_diverged("SparseDream fit (numpy)")
    return done


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
