"""Numba kernels of rule C, Krotov-Hopfield competing hidden units (backend ``"numba"``).

The same functions and signatures as the numpy reference (``reference.py``). Per minibatch
``X`` (B, D), one jitted kernel, numpy's gemm, one jitted kernel (as in DreamComp's module,
which says why the gemm is numpy's):

1. ``I = Wp X^T`` (hid, B) with one BLAS gemm (``np.dot(..., out=)``), where
   ``Wp = sign(W) |W|^(p-1)`` is kept between batches and recomputed only for the rows the
   previous batch changed (p = 2: ``W``; p = 3: ``W |W|``; p = 1.5: ``sign(W) sqrt|W|``;
   else ``pow``);
2. per sample the first and k-th unit by I (value descending, ties to the lower index, NaN
   last: the reference's lexsort), by one row-major pass over I that keeps the k best of
   every column in a sorted buffer (a row is rarely better than a column's k-th best);
3. g has two non-zeros per column, so only the units that are first or k-th for some sample
   (at most 2B of them) have a non-zero row of ``ds``: for those,
   ``xx_n = sum_b g I``, ``ds_n = sum_b g X_b - xx_n W_n`` (a scatter of rows of X, not a
   dense g X product);
4. ``W_n += eps (ds_n / max(max|ds|, prec))`` on those rows only (the reference adds exactly
   0 to the others).

Screening (``SCREEN``, on by default), as in DreamComp's module: the ranking comes from a
float32 product plus float64 currents (``_dot64``) of the units its rigorous
error bound cannot rule out (``_screened_ranks``): the float64 ranking in float64, the
ranking of the exact currents of the float32 weights in float32, independent of the BLAS
library and its threads. Batches where the bound cannot be trusted, or with more than
16 k candidates per sample, rank by the product in W's dtype, as the reference.

Numerics: elementwise operations are the reference's, in the same order and in the model
dtype (``fastmath=False``; scalars cast to the dtype as numpy 2 does with Python floats).
The currents of a sample's first and k-th units (for ``xx``) are their screened values
rounded to the dtype (without screening: the gemm's, usually bitwise the reference's,
same BLAS call). Sums over the samples of one unit run in sample order
where the reference lets BLAS (``g X``) and numpy's pairwise sum (``xx``) choose: they
agree to rounding, and exactly for a unit that one sample selected. ``Wp`` is numpy's bit
for bit at p = 2, 3 and 1.5 (numpy's ``**`` fast paths); otherwise ``pow`` agrees with
numpy's to an ulp or so.
"""
from __future__ import annotations

import numba
import numpy as np

from .._numba_common import JIT as _JIT, before as _before, typed as _typed
from .._rng import one_batch
from .._runtime import RUN_DIVERGED, RUN_DONE, RUN_STOPPED, DivergenceError, all_finite, loop_control
from ..dreamcomp._numba import (_DIVERGED, _NEED_FULL, _UPDATED, BlasThreads, _c, _collect_candidates, _dot64,
                                _dtype, _gather, _row_norm, _row_norms, _screen_margins)
from .reference import epoch_rate

__all__ = ["BLAS_THREADS", "SCREEN", "weight_powers", "ranks", "batch_update", "fit"]


#: BLAS threads of the products: None (the process's setting) or an int, as DreamComp's.
BLAS_THREADS = None

#: Ranking by float32 screening and float64 currents of the candidates (see above); False:
#: the ranking of the product in W's dtype, as the reference.
SCREEN = True


# ================================================================== kernels
@numba.njit(**_JIT)
def _power_row(w, wp, p):
    """``wp = sign(w) |w|^(p-1)`` for one row (numpy's ``**`` fast paths at p = 2, 3, 1.5)."""
    D = w.shape[0]
    if p == 2.0:
        for j in range(D):
            wp[j] = w[j]
    elif p == 3.0:
        for j in range(D):
            wp[j] = w[j] * abs(w[j])
    elif p == 1.5:
        for j in range(D):
            wp[j] = np.sign(w[j]) * np.sqrt(abs(w[j]))
    else:
        e = _typed(w, p - 1.0)
        for j in range(D):
            wp[j] = np.sign(w[j]) * abs(w[j]) ** e


@numba.njit(**_JIT)
def _powers_kernel(W, Wp, p):
    for n in range(W.shape[0]):
        _power_row(W[n], Wp[n], p)


@numba.njit(**_JIT)
def _insert(bv, bi, b, j, x, n):
    """Put (value x, unit n) into row b of the ranking at slot j or earlier: the entries it
    precedes move one slot back (the one at slot j is overwritten)."""
    while j > 0 and _before(x, n, bv[b, j - 1], bi[b, j - 1]):
        bv[b, j] = bv[b, j - 1]
        bi[b, j] = bi[b, j - 1]
        j -= 1
    bv[b, j] = x
    bi[b, j] = n


@numba.njit(**_JIT)
def _rank_cols(I, k, bv, bi):
    """The k first units of every column of I, in order (-I, index): ``bi[b, :k]``.

    Rows are scanned in order, so a row enters a column's buffer only when it strictly
    precedes the buffer's k-th entry; equal values keep the earlier (lower) index.

    Parameters
    ----------
    I : array of shape (hid, B)
    k : int, 1 <= k <= hid
    bv : array of shape (B, k), scratch (the values)
    bi : int64 array of shape (B, k), output (the units)
    """
    hid, B = I.shape
    for n in range(k):  # fill: row n goes behind every earlier entry it does not precede
        for b in range(B):
            _insert(bv, bi, b, n, I[n, b], n)
    for n in range(k, hid):
        for b in range(B):
            x = I[n, b]
            t = bv[b, k - 1]
            if x > t or (t != t and x == x):
                _insert(bv, bi, b, k - 1, x, n)


@numba.njit(**_JIT)
def _update(W, Wp, X, idx, bv, bi, k, delta, eps, prec, p, head, nxt, units, Ds, gx):
    """Steps 3-4 of one minibatch ``X[idx]`` on W (and Wp) in place, given its ranking.

    ``bi[b, 0]`` and ``bi[b, k-1]`` are sample b's first and k-th units, ``bv`` their
    currents. ``head`` (hid,) is all -1 on entry and on return. Entry ``2b`` of the
    per-unit lists is sample b's first unit (g = 1), ``2b + 1`` its k-th (g = -delta).
    Returns the number of rows changed, listed in ``units``, or -1 (nothing written) when
    the update is not finite (a NaN in ds, or a new weight that overflows).
    """
    B = bi.shape[0]
    D = W.shape[1]
    one = _typed(W, 1.0)
    mdelta = _typed(W, -delta)
    zero = _typed(W, 0.0)
    # lists of (sample, g) per unit, samples ascending (built from the back)
    for b in range(B - 1, -1, -1):
        for r in range(2):
            n = bi[b, 0] if r == 0 else bi[b, k - 1]
            e = 2 * b + r
            nxt[e] = head[n]
            head[n] = e
    nu = 0
    for e in range(2 * B):
        n = bi[e // 2, 0] if e % 2 == 0 else bi[e // 2, k - 1]
        if head[n] == e:  # first entry of unit n: n not seen yet
            units[nu] = n
            nu += 1
    # ds rows of the selected units: ds = g X - xx W, xx = sum_b g I
    amax = zero
    isnan = False
    for u in range(nu):
        n = units[u]
        e = head[n]
        xx = zero
        first = True
        while e >= 0:
            b = e // 2
            if e % 2 == 0:
                g = one
                xx += g * bv[b, 0]
            else:
                g = mdelta
                xx += g * bv[b, k - 1]
            xr = X[idx[b]]
            if first:
                for j in range(D):
                    gx[j] = g * xr[j]
                first = False
            else:
                for j in range(D):
                    gx[j] += g * xr[j]
            e = nxt[e]
        w = W[n]
        ds = Ds[u]
        for j in range(D):
            ds[j] = gx[j] - xx * w[j]
            a = abs(ds[j])
            if a > amax:
                amax = a
            elif a != a:
                isnan = True
    for u in range(nu):
        head[units[u]] = -1
    if isnan:  # the reference's W becomes NaN everywhere (0 / NaN)
        return -1
    # nc = max(max|ds|, prec) in Python floats, then cast as numpy 2 casts a Python float
    nc64 = float(amax) if float(amax) >= prec else prec
    nc = _typed(W, nc64)
    ep = _typed(W, eps)
    for u in range(nu):  # every new value finite before any is written
        w = W[units[u]]
        ds = Ds[u]
        for j in range(D):
            if not np.isfinite(w[j] + ep * (ds[j] / nc)):
                return -1
    for u in range(nu):
        n = units[u]
        w = W[n]
        ds = Ds[u]
        for j in range(D):
            w[j] += ep * (ds[j] / nc)
        _power_row(w, Wp[n], p)
    return nu


# ------------------------------------------------------------ screening
@numba.njit(**_JIT)
def _screened_ranks(Wp, Xb, I32, k, bv32, bi32, thr, cand, bv, bi, bvd):
    """The ranking of a batch from its float32 product; False if too many candidates.

    As DreamComp's screening (its ``_screen_margins`` gives ``thr[b] = 2 e_b``):
    ``I32 = fl32(Wp) fl32(X)^T`` is within ``e_b`` of the exact currents, so a sample's first
    k units by exact current are among the units with
    ``I32[n, b] >= (k-th largest I32[., b]) - 2 e_b``. When those are just the k float32
    first and both the first and the k-th stand more than ``2 e_b`` from their neighbours
    in I32, the float32 ranking is the exact one at the two places that matter, and only
    their two currents are computed in float64 (``_dot64``); otherwise every candidate's is,
    and they are ranked by it (value descending, ties to the lower index). Returns False
    (the caller then takes the product in W's dtype) when more than ``cand.shape[0]``
    candidates turn up.

    Outputs ``bi[b, 0]``, ``bi[b, k-1]`` (first and k-th units) and ``bv[b, 0]``,
    ``bv[b, k-1]`` (their currents, rounded to Wp's dtype); ``bvd`` (B, k) float64 is
    scratch. Needs 2 <= k <= hid.
    """
    hid, B = I32.shape
    _rank_cols(I32, k, bv32, bi32)
    gap = np.empty(B)
    for b in range(B):
        gap[b] = thr[b]
        thr[b] = np.float64(bv32[b, k - 1]) - thr[b]
    ncol = np.zeros(B, np.int64)
    nc = _collect_candidates(I32, thr, cand, ncol)
    if nc < 0:
        return False
    for b in range(B):  # ncol[b] = 0: settled from float32, else entries so far
        if (ncol[b] == k and np.float64(bv32[b, 0]) - np.float64(bv32[b, 1]) > gap[b]
                and np.float64(bv32[b, k - 2]) - np.float64(bv32[b, k - 1]) > gap[b]):
            ncol[b] = 0
            bi[b, 0] = bi32[b, 0]
            bi[b, k - 1] = bi32[b, k - 1]
            bv[b, 0] = _dot64(Wp[bi[b, 0]], Xb[b])
            bv[b, k - 1] = _dot64(Wp[bi[b, k - 1]], Xb[b])
        else:
            ncol[b] = -1
    for i in range(nc):  # candidates come by unit ascending
        b = cand[i, 1]
        m = ncol[b]
        if m == 0:
            continue
        if m < 0:
            m = 0
        n = cand[i, 0]
        x = _dot64(Wp[n], Xb[b])
        if m == k:
            if not _before(x, n, bvd[b, k - 1], bi[b, k - 1]):
                continue
            j = k - 1
        else:
            j = m
            ncol[b] = m + 1
        _insert(bvd, bi, b, j, x, n)
    for b in range(B):
        if ncol[b] != 0:
            bv[b, 0] = bvd[b, 0]
            bv[b, k - 1] = bvd[b, k - 1]
    return True


@numba.njit(**_JIT)
def _refresh(Wp, Wp32, wpnorm, units, nu, cast):
    """Row norms (and, when ``cast``, the float32 copy) of the rows ``units[:nu]`` of Wp that
    just changed (nu < 0: all)."""
    for u in range(Wp.shape[0] if nu < 0 else nu):
        n = u if nu < 0 else units[u]
        if cast:
            for j in range(Wp.shape[1]):
                Wp32[n, j] = Wp[n, j]
        wpnorm[n] = _row_norm(Wp[n])


# ------------------------------------------------------------ one batch: before and after the gemm
@numba.njit(**_JIT)
def _before_product(X, idx, Xb, wpnorm, Xb32, thr, screen, cast):
    """Gather the batch; with ``screen``, prepare its float32 product (True when usable)."""
    _gather(X, idx, Xb)
    if not screen:
        return False
    return _screen_margins(wpnorm, Xb, Xb32, thr, cast)


@numba.njit(**_JIT)
def _after_product32(W, Wp, X, idx, Xb, I32, k, delta, eps, prec, p, bv32, bi32, thr, cand, bv, bi,
                     bvd, head, nxt, units, Ds, gx, Wp32, wpnorm, cast):
    """Ranking from the float32 product, the update and the refresh: _NEED_FULL (nothing
    done) when the screening needs the product in W's dtype, _DIVERGED (nothing written)
    when the update is not finite, else _UPDATED."""
    if not _screened_ranks(Wp, Xb, I32, k, bv32, bi32, thr, cand, bv, bi, bvd):
        return _NEED_FULL
    nu = _update(W, Wp, X, idx, bv, bi, k, delta, eps, prec, p, head, nxt, units, Ds, gx)
    if nu < 0:
        return _DIVERGED
    _refresh(Wp, Wp32, wpnorm, units, nu, cast)
    return _UPDATED


@numba.njit(**_JIT)
def _after_product(W, Wp, X, idx, I, k, delta, eps, prec, p, bv, bi, head, nxt, units, Ds, gx,
                   Wp32, wpnorm, screen, cast):
    """Ranking from the product I in W's dtype and the update (and, with ``screen``, the
    refresh); False (nothing written) when the update is not finite."""
    _rank_cols(I, k, bv, bi)
    nu = _update(W, Wp, X, idx, bv, bi, k, delta, eps, prec, p, head, nxt, units, Ds, gx)
    if nu < 0:
        return False
    if screen:
        _refresh(Wp, Wp32, wpnorm, units, nu, cast)
    return True


@numba.njit(**_JIT)
def _ranks_kernel(I, k, first, kth):
    B = I.shape[1]
    bv = np.empty((B, k), I.dtype)
    bi = np.empty((B, k), np.int64)
    _rank_cols(I, k, bv, bi)
    for b in range(B):
        first[b] = bi[b, 0]
        kth[b] = bi[b, k - 1]


# ================================================================== Python side
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
        ctl.raise_if_diverged("KrotovHopfield fit (numba)")
    return ctl.done


def _loop(W, X, batches, p, k, delta, eps0, prec, epoch0, total, screen, control):
    """The fit loop: per batch one kernel, numpy's gemm, one kernel. Returns (the number of
    batches ranked by the product in W's dtype (all of them without screening), the batches
    completed, the status)."""
    hid, D = W.shape
    E, nb, B = batches.shape
    if not all_finite(W):  # its update is not finite either: the first batch diverges
        return 0, 0, RUN_DIVERGED
    dt = W.dtype
    cast = dt != np.float32
    Wp = np.empty_like(W)
    _powers_kernel(W, Wp, p)
    Xb = np.empty((B, D), dt)
    bv = np.empty((B, k), dt)
    bi = np.empty((B, k), np.int64)
    head = np.full(hid, -1, np.int64)
    nxt = np.empty(2 * B, np.int64)
    units = np.empty(2 * B, np.int64)
    Ds = np.empty((min(2 * B, hid), D), dt)
    gx = np.empty(D, dt)
    thr = np.empty(B)
    if screen:
        if cast:
            with np.errstate(over="ignore"):  # huge rows: inf here, and their norm turns screening off
                Wp32 = Wp.astype(np.float32)
            Xb32 = np.empty((B, D), np.float32)
        else:
            Wp32, Xb32 = Wp, Xb
        wpnorm = np.empty(hid)
        _row_norms(Wp, wpnorm)
        I32 = np.empty((hid, B), np.float32)
        bv32 = np.empty((B, k), np.float32)
        bi32 = np.empty((B, k), np.int64)
        bvd = np.empty((B, k))
        cand = np.empty((16 * k * B, 2), np.int64)
    else:  # typed placeholders: one compiled specialization per dtype serves both modes
        Wp32, wpnorm, Xb32 = np.empty((0, 0), np.float32), np.empty(0), np.empty((0, 0), np.float32)
    I = None
    full = done = 0
    with BlasThreads(BLAS_THREADS):
        for e in range(E):
            eps = epoch_rate(eps0, epoch0 + e, total)
            for i in range(nb):
                idx = batches[e, i]
                outcome = _NEED_FULL
                use32 = _before_product(X, idx, Xb, wpnorm, Xb32, thr, screen, cast)
                if use32:
                    np.dot(Wp32, Xb32.T, out=I32)
                    outcome = _after_product32(W, Wp, X, idx, Xb, I32, k, delta, eps, prec, p, bv32, bi32,
                                               thr, cand, bv, bi, bvd, head, nxt, units, Ds, gx, Wp32,
                                               wpnorm, cast)
                if outcome == _NEED_FULL:
                    full += 1
                    if use32 and not cast:  # float32: I32 is the product in W's dtype
                        I = I32
                    else:
                        if I is None or I.dtype != dt:
                            I = np.empty((hid, B), dt)
                        with np.errstate(all="ignore"):  # reported as the batch's divergence
                            np.dot(Wp, Xb.T, out=I)
                    # a current that is not finite makes the reference's xx_n NaN (I[n, b] * 0); the
                    # screened products are bounded by 1e30
                    ok = all_finite(I) and _after_product(W, Wp, X, idx, I, k, delta, eps, prec, p, bv, bi, head,
                                                          nxt, units, Ds, gx, Wp32, wpnorm, screen, cast)
                    outcome = _UPDATED if ok else _DIVERGED
                if outcome == _DIVERGED:
                    return full, done, RUN_DIVERGED
                done += 1
                if control is not None and control.stop_requested and done < E * nb:
                    return full, done, RUN_STOPPED
    return full, done, RUN_DONE


def _call(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None, control=None):
    """The fit; returns (the number of batches that took the product in W's dtype, the
    Control reported to)."""
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64).reshape(-1, *np.shape(batches)[-2:]), np.int64)
    total = batches.shape[0] if total_epochs is None else total_epochs
    screen = bool(SCREEN)
    ctl = loop_control(control)
    try:
        full, done, status = _loop(Ww, _c(X, dt), batches, float(p), int(k), float(delta), float(eps0),
                                   float(prec), int(epoch0), int(total), screen, ctl)
    finally:
        if Ww is not W:
            W[...] = Ww
    ctl.report(done, status)
    return full, ctl


def _run(W, X, batches, p, k, delta, eps0, prec, epoch0=0, total_epochs=None):
    """``fit``; returns the number of batches that took the product in W's dtype."""
    full, ctl = _call(W, X, batches, p, k, delta, eps0, prec, epoch0, total_epochs)
    ctl.raise_if_diverged("KrotovHopfield fit (numba)")
    return full


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
    """``sign(W) |W|^(p-1)``, shape of W (``np.sign(W) * np.abs(W) ** (p - 1)``: bitwise at
    p = 2, 3, 1.5, to an ulp otherwise)."""
    dt = _dtype(W)
    Wc = _c(W, dt)
    out = np.empty_like(Wc)
    _powers_kernel(Wc, out, float(p))
    return out


def ranks(I: np.ndarray, k: int):
    """First and k-th unit of every column of I (value descending, ties to the lower index).

    Returns
    -------
    first, kth : ndarrays of shape (B,), int64
    """
    I = _c(I, _dtype(I))
    first = np.empty(I.shape[1], np.int64)
    kth = np.empty(I.shape[1], np.int64)
    _ranks_kernel(I, int(k), first, kth)
    return first, kth
