"""Numba kernels of rule A (backend ``"numba"``).

The same functions and signatures as the numpy reference (``reference.py``), computed by
jitted kernels. The whole ``fit`` loop (every epoch, every step) runs inside one jitted
function; Python only prepares the arguments.

Numerics. Every elementwise operation is the reference's, in the same order and in the
model dtype (``fastmath=False``: no reassociation, no fused multiply-add), and the three
reductions are the reference's own:

* the drive ``W v`` (and ``W (v*v)``) and the reconstruction ``vals @ W[active]`` call BLAS
  gemv through ``np.dot`` (numba calls scipy's BLAS; in a pip install that is OpenBLAS
  with the same kernels as numpy's, so the results are usually bitwise equal to the
  reference's; elsewhere they agree to rounding). BLAS runs single-threaded inside the
  kernels by default (``BLAS_THREADS``);
* row sums use numpy's pairwise summation (``_pairwise_sum`` mirrors ``np.add.reduce``);
* lateral products sum in the order of ``Stencil.matvec`` (offsets row-major) and of
  scipy's CSR / CSC mat-vec (entries in storage order, rows ascending).

Compilation. Kernels are module-level ``@numba.njit(cache=True, fastmath=False,
nogil=True)`` functions, compiled lazily on first use and cached on disk (``__pycache__``).
Every option is a runtime argument and the lateral travels as plain arrays with a kind flag
(empty arrays for the kinds not in use), so one specialization per dtype serves every
configuration: float32 and float64 each compile once, ever. The step loop is serial: a
parallel drive pass (``prange`` or BLAS threads) needs a thread barrier per step, which on
a 2-core machine shared with anything else costs more than the pass itself.
"""
from __future__ import annotations

import contextlib
import time

import numba
import numpy as np

from .._arrays import as_c as _c, float_dtype as _dtype_of
from .._numba_common import JIT as _JIT, before as _before, typed as _typed
from .._runtime import RUN_DIVERGED, RUN_DONE, RUN_STOPPED, DivergenceError, loop_control, next_chunk
from .config import TRACE_DROP, Competition, Output, SparseDreamConfig, TrainState

__all__ = ["competition", "topk", "reconstruct", "update_rows", "step", "apply_bounds", "fit", "infer"]

_u64 = numba.uint64

# Enum values as plain ints (numba freezes module globals as compile-time constants).
_DRIVE = int(Competition.DRIVE)
_LATERAL = int(Competition.LATERAL)
_NORMALIZED = int(Competition.NORMALIZED_LATERAL)
_MEAN = int(Competition.MEAN_LATERAL)
_WEIGHTED = int(Competition.WEIGHTED_AVERAGE)
_OUT_DRIVE = int(Output.DRIVE)

# Lateral kinds of the kernels' ``lat_kind`` argument.
_LAT_NONE, _LAT_STENCIL, _LAT_CSR = 0, 1, 2

#: Up to this k the winners are kept by insertion into a sorted buffer; above, in a heap.
_TOPK_INSERTION_MAX = 32


# ================================================================== scalar helpers
@numba.njit(**_JIT)
def _max_prec(x, prec):
    """``np.maximum(x, prec)`` for one value (NaN propagates)."""
    if x > prec or x != x:
        return x
    return prec


@numba.njit(**_JIT)
def _clip_val(x, lo, hi):
    """``np.clip(x, lo, hi)`` for one value (NaN stays NaN)."""
    if x != x:
        return x
    y = x if x > lo else lo
    return y if y < hi else hi


# ================================================================== reductions
@numba.njit(**_JIT)
def _pairwise_block(a, lo, n):
    """numpy's pairwise-sum leaf (n <= 128): 8 accumulators, combined as a tree, then the tail."""
    if n < 8:
        res = _typed(a, 0.0)
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(**_JIT)
def _pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo+n]`` by numpy's pairwise summation (``np.add.reduce``), bit for bit.

    numpy recurses: ranges longer than 128 split at ``n2 = n // 2 - (n // 2) % 8`` and add
    the two halves. The recursion is unrolled here with an explicit stack (a recursive
    jitted function breaks numba's on-disk cache).

    Parameters
    ----------
    a : array of shape (D,)
    lo, n : int
        Start and length of the range summed.
    """
    if n <= 128:
        return _pairwise_block(a, lo, n)
    # post-order walk of the split tree; depth <= 64
    slo = np.empty(64, np.int64)
    sn = np.empty(64, np.int64)
    sst = np.empty(64, np.int64)
    vals = np.empty(64, a.dtype)
    top = 0
    slo[0] = lo
    sn[0] = n
    sst[0] = 0
    nv = 0
    while top >= 0:
        l = slo[top]
        m = sn[top]
        if m <= 128:
            vals[nv] = _pairwise_block(a, l, m)
            nv += 1
            top -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if sst[top] == 0:
            sst[top] = 1
            top += 1
            slo[top] = l
            sn[top] = n2
            sst[top] = 0
        elif sst[top] == 1:
            sst[top] = 2
            top += 1
            slo[top] = l + n2
            sn[top] = m - n2
            sst[top] = 0
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            top -= 1
    return vals[0]


@numba.njit(**_JIT)
def _row_sums(W, out):
    """``out[n] = W[n].sum()`` (numpy's pairwise order) for every row."""
    D = W.shape[1]
    for n in range(W.shape[0]):
        out[n] = _pairwise_sum(W[n], 0, D)


# ================================================================== lateral products
@numba.njit(**_JIT)
def _stencil_apply(x, out, kern, row_scale, rows, cols):
    """``out = L x`` for a stencil: 2D correlation with zero padding, then the row scale.

    The offsets are summed in the order of ``Stencil.matvec`` (kernel row-major, zero
    kernel entries skipped), so the result is bitwise the reference's.

    Parameters
    ----------
    x, out : arrays of shape (N,), N = rows * cols
    kern : array of shape (2r+1, 2r+1)
    row_scale : array of shape (N,), or of shape (0,) for no scale
    """
    zero = _typed(out, 0.0)
    for n in range(out.shape[0]):
        out[n] = zero
    R = kern.shape[0] // 2
    for a in range(2 * R + 1):
        dy = a - R
        y0 = max(0, -dy)
        y1 = min(rows, rows - dy)
        for b in range(2 * R + 1):
            w = kern[a, b]
            if w == 0:
                continue
            dx = b - R
            x0 = max(0, -dx)
            x1 = min(cols, cols - dx)
            for y in range(y0, y1):
                # unsigned indices: no negative-index wraparound, so LLVM vectorizes the row
                ob = _u64(y * cols)
                ib = _u64((y + dy) * cols + dx)
                for xx in range(_u64(x0), _u64(x1)):
                    out[ob + xx] += w * x[ib + xx]
    if row_scale.shape[0] > 0:
        for n in range(out.shape[0]):
            out[n] = out[n] * row_scale[n]


@numba.njit(**_JIT)
def _csr_apply(x, out, indptr, indices, data):
    """``out = L x`` for a CSR matrix, summing each row in storage order (scipy's csr_matvec)."""
    for i in range(out.shape[0]):
        s = _typed(out, 0.0)
        for jj in range(indptr[i], indptr[i + 1]):
            s += data[jj] * x[indices[jj]]
        out[i] = s


@numba.njit(**_JIT)
def _lateral_apply(x, out, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata):
    """``out = L x`` for the lateral of kind ``lat_kind`` (0 none: out = 0)."""
    if lat_kind == _LAT_STENCIL:
        _stencil_apply(x, out, kern, row_scale, rows, cols)
    elif lat_kind == _LAT_CSR:
        _csr_apply(x, out, indptr, indices, ldata)
    else:
        zero = _typed(out, 0.0)
        for n in range(out.shape[0]):
            out[n] = zero


# ================================================================== competition
@numba.njit(**_JIT)
def _compete(W, v, rowsum, mode, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata,
             prec, p, c, q, lq, vv):
    """Drive ``p = W v`` and competition value ``c`` into preallocated buffers.

    Parameters
    ----------
    W : array of shape (N, D); v : array of shape (D,)
    rowsum : array of shape (N,), the current row sums of W (used by the normalized modes)
    mode : int, a ``Competition`` value
    p, c, q, lq : arrays of shape (N,), outputs and scratch
    vv : array of shape (D,), scratch
    """
    np.dot(W, v, p)
    if mode == _WEIGHTED:
        for d in range(v.shape[0]):
            vv[d] = v[d] * v[d]
        np.dot(W, vv, lq)
    _compete_post(p, lq, rowsum, mode, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata,
                  prec, c, q, lq)


@numba.njit(**_JIT)
def _compete_post(p, p2, rowsum, mode, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata,
                  prec, c, q, lq):
    """The competition value ``c`` from the drives ``p`` (and ``p2 = W (v*v)``, weighted average).

    Parameters
    ----------
    p, p2 : arrays of shape (N,); p2 is read by the weighted average only (it may be ``lq``)
    c, q, lq : arrays of shape (N,), output and scratch
    """
    N = p.shape[0]
    if mode == _DRIVE:
        for n in range(N):
            c[n] = p[n]
    elif mode == _LATERAL:
        if lat_kind == _LAT_NONE:
            for n in range(N):
                c[n] = p[n]
        else:
            _lateral_apply(p, lq, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata)
            for n in range(N):
                c[n] = p[n] + lq[n]
    elif mode == _NORMALIZED or mode == _MEAN:
        for n in range(N):
            q[n] = p[n] / _max_prec(rowsum[n], prec)
        _lateral_apply(q, lq, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata)
        if mode == _NORMALIZED:
            for n in range(N):
                c[n] = p[n] + lq[n]
        else:
            three = _typed(c, 3.0)
            four = _typed(c, 4.0)
            for n in range(N):
                c[n] = (three * q[n] + lq[n]) / four
    else:  # weighted average: c = W (v*v) / max(p, prec)
        for n in range(N):
            c[n] = p2[n] / _max_prec(p[n], prec)


# ================================================================== blocked drive
#: Neurons per tile of the blocked drive (the C++ backend's design, docs/design.md "The drive
#: in fit"): a tile's D x TW weights are copied input-major so that a frame's nonzero inputs
#: each read TW contiguous weights.
_TILE = 32


@numba.njit(**_JIT)
def _nonzeros(X, flat, g0, nb, two, idx, val, val2, off):
    """Index lists of the nonzero inputs (ascending) of frames ``X[flat[g0 + b]]``, b < nb.

    Frame b's inputs are ``idx[off[b]:off[b+1]]`` with values ``val`` (and ``val2 = v*v``).
    NaN counts as nonzero.
    """
    D = X.shape[1]
    m = 0
    for b in range(nb):
        v = X[flat[g0 + b]]
        off[b] = m
        for d in range(D):
            x = v[d]
            if x != 0:
                idx[m] = d
                val[m] = x
                if two:
                    val2[m] = x * x
                m += 1
    off[nb] = m


@numba.njit(**_JIT)
def _frame_inputs(b, finite, idx, val, val2, off, X, flat, g0, allidx, vvd, two):
    """(indices, values, squares, start, stop) frame b of the block is summed over: its nonzeros,
    or every input when the weights are not finite (inf * 0 must give NaN, as in the reference)."""
    if finite:
        return idx, val, val2, off[b], off[b + 1]
    v = X[flat[g0 + b]]
    if two:
        for d in range(v.shape[0]):
            vvd[d] = v[d] * v[d]
    return allidx, v, vvd, 0, v.shape[0]


@numba.njit(**_JIT)
def _block_product(W, P, P2, two, nb, idx, val, val2, off, X, flat, g0, allidx, vvd, tile, acc, acc2):
    """Drives ``P[b] = W x_b`` (and ``P2[b] = W (x_b * x_b)``) of the block's nb frames, one pass over W.

    Tiles of ``_TILE`` rows are copied input-major into ``tile``; lane j sums
    ``P[b, n0 + j] += tile[d, j] * x_d`` over the frame's nonzero inputs d ascending, from 0:
    the order of ``_rows_drive``, so a dirty row recomputed there gets the same bits.
    """
    N, D = W.shape
    TW = tile.shape[1]
    zero = _typed(W, 0.0)
    for t0 in range(0, N, TW):
        rows = min(TW, N - t0)
        for j in range(TW):
            if j < rows:
                w = W[t0 + j]
                for d in range(D):
                    tile[d, j] = w[d]
            else:
                for d in range(D):
                    tile[d, j] = zero
        for j in range(TW):
            acc[j] = zero
        for d in range(D):  # lane-wise x - x: 0, or NaN where a weight is not finite
            row = tile[d]
            for j in range(TW):
                acc[j] += row[j] - row[j]
        finite = True
        for j in range(TW):
            if acc[j] != 0:
                finite = False
        for b in range(nb):
            ii, vals, vals2, lo, hi = _frame_inputs(b, finite, idx, val, val2, off, X, flat, g0, allidx, vvd, two)
            _tile_chain(tile, ii, vals, lo, hi, acc)
            pr = P[b]
            for j in range(rows):
                pr[t0 + j] = acc[j]
            if two:
                _tile_chain(tile, ii, vals2, lo, hi, acc)
                pr = P2[b]
                for j in range(rows):
                    pr[t0 + j] = acc[j]


@numba.njit(**_JIT)
def _tile_chain(tile, ii, vals, lo, hi, acc):
    """``acc[j] = sum over t in [lo, hi) of tile[ii[t], j] * vals[t]``, t ascending, from 0."""
    TW = tile.shape[1]
    for j in range(TW):
        acc[j] = 0
    for t in range(lo, hi):
        row = tile[ii[t]]
        x = vals[t]
        for j in range(TW):
            acc[j] += row[j] * x


@numba.njit(**_JIT)
def _rows_drive(W, rows, nr, b, P, P2, two, idx, val, val2, off):
    """``P[b, n]`` (and ``P2[b, n]``) for the rows ``rows[:nr]`` updated since the block began:
    the chain of ``_block_product`` over frame b's nonzero inputs. Those rows are finite (a
    step writes only finite values), so skipping the zero inputs is exact. Four rows at a
    time, so that four chains are in flight."""
    lo = off[b]
    hi = off[b + 1]
    pb = P[b]
    r = 0
    while r + 4 <= nr:
        _chain4(W, rows, r, idx, val, lo, hi, pb)
        if two:
            _chain4(W, rows, r, idx, val2, lo, hi, P2[b])
        r += 4
    while r < nr:
        n = rows[r]
        w = W[n]
        a = _typed(W, 0.0)
        for t in range(lo, hi):
            a += w[idx[t]] * val[t]
        pb[n] = a
        if two:
            a = _typed(W, 0.0)
            for t in range(lo, hi):
                a += w[idx[t]] * val2[t]
            P2[b, n] = a
        r += 1


@numba.njit(**_JIT)
def _chain4(W, rows, r, ii, vals, lo, hi, out):
    """The chains of rows ``rows[r:r+4]`` over (ii, vals)[lo:hi] into ``out[row]``."""
    w0 = W[rows[r]]
    w1 = W[rows[r + 1]]
    w2 = W[rows[r + 2]]
    w3 = W[rows[r + 3]]
    a0 = _typed(W, 0.0)
    a1 = a0
    a2 = a0
    a3 = a0
    for t in range(lo, hi):
        d = ii[t]
        x = vals[t]
        a0 += w0[d] * x
        a1 += w1[d] * x
        a2 += w2[d] * x
        a3 += w3[d] * x
    out[rows[r]] = a0
    out[rows[r + 1]] = a1
    out[rows[r + 2]] = a2
    out[rows[r + 3]] = a3


@numba.njit(**_JIT)
def _clip_row(w, hi):
    """Clip one row to [0, hi] in place; True when a value changed (or is NaN)."""
    zero = _typed(w, 0.0)
    changed = False
    for d in range(w.shape[0]):
        x = w[d]
        y = _clip_val(x, zero, hi)
        if not (y == x):
            changed = True
        w[d] = y
    return changed


# ================================================================== top-k
@numba.njit(**_JIT)
def _sift_down(hv, hi, m, pos):
    """Restore the heap (root = the entry that comes last) below ``pos``; size m."""
    while True:
        last = pos
        left = 2 * pos + 1
        right = left + 1
        if left < m and _before(hv[last], hi[last], hv[left], hi[left]):
            last = left
        if right < m and _before(hv[last], hi[last], hv[right], hi[right]):
            last = right
        if last == pos:
            return
        tv = hv[pos]
        ti = hi[pos]
        hv[pos] = hv[last]
        hi[pos] = hi[last]
        hv[last] = tv
        hi[last] = ti
        pos = last


@numba.njit(**_JIT)
def _topk_into(c, k, win, bv):
    """The k largest entries of c into ``win`` (order (-c, index): ties to the lower index).

    k <= 32: one pass with insertion into a sorted buffer (``bv`` values, ``win`` indices);
    larger k: a heap of the k best so far, then heap-sorted. NaN counts as the smallest value.
    """
    N = c.shape[0]
    if k > _TOPK_INSERTION_MAX:
        for j in range(k):
            bv[j] = c[j]
            win[j] = j
        for j in range(k // 2 - 1, -1, -1):
            _sift_down(bv, win, k, j)
        for n in range(k, N):
            if _before(c[n], n, bv[0], win[0]):
                bv[0] = c[n]
                win[0] = n
                _sift_down(bv, win, k, 0)
        for m in range(k - 1, 0, -1):  # pop the last-ordered entry to the back
            tv = bv[0]
            ti = win[0]
            bv[0] = bv[m]
            win[0] = win[m]
            bv[m] = tv
            win[m] = ti
            _sift_down(bv, win, m, 0)
        return
    m = 0
    for n in range(N):
        x = c[n]
        if m == k:
            t = bv[k - 1]
            if not (x > t):
                if not (t != t and x == x):
                    continue
            j = k - 1
        else:
            j = m
            m += 1
        while j > 0:
            t = bv[j - 1]
            if x > t or (t != t and x == x):
                bv[j] = t
                win[j] = win[j - 1]
                j -= 1
            else:
                break
        bv[j] = x
        win[j] = n


@numba.njit(**_JIT)
def _sort_small(src, n, dst):
    """``dst[:n] = sorted(src[:n])`` by insertion (n small)."""
    for j in range(n):
        x = src[j]
        i = j
        while i > 0 and dst[i - 1] > x:
            dst[i] = dst[i - 1]
            i -= 1
        dst[i] = x


# ================================================================== step pieces
@numba.njit(**_JIT)
def _trace_update(o, act, nact, win, s, k, alpha, drop, ws, cand, a_dense, ov, undo):
    """``o += alpha (a - o)`` over the active set and the winners, then the 1e-12 drop.

    ``act[:nact]`` holds the sorted indices of the non-zero trace entries; on return it
    holds the new ones (sorted) and ``ov`` their values. The entries changed are
    ``cand[:m]``, their old values ``undo[:m]``. Returns (the new count, m).
    """
    _sort_small(win, k, ws)
    for j in range(k):
        a_dense[win[j]] = s[win[j]]
    # sorted union of act[:nact] and ws[:k]
    i1 = 0
    i2 = 0
    m = 0
    while i1 < nact or i2 < k:
        if i2 >= k or (i1 < nact and act[i1] < ws[i2]):
            x = act[i1]
            i1 += 1
        elif i1 >= nact or ws[i2] < act[i1]:
            x = ws[i2]
            i2 += 1
        else:
            x = act[i1]
            i1 += 1
            i2 += 1
        cand[m] = x
        m += 1
    big = _typed(o, 0.0)
    for j in range(m):
        n = cand[j]
        on = o[n]
        undo[j] = on
        on = on + alpha * (a_dense[n] - on)
        o[n] = on
        an = abs(on)
        if an > big or an != an:
            big = an
    zero = _typed(o, 0.0)
    for j in range(k):
        a_dense[win[j]] = zero
    thr = drop * big
    nn = 0
    for j in range(m):
        n = cand[j]
        on = o[n]
        if abs(on) < thr:
            o[n] = zero
        elif on != 0:
            act[nn] = n
            ov[nn] = on
            nn += 1
    return nn, m


@numba.njit(**_JIT)
def _reconstruct_into(W, act, ov, nact, buf, r):
    """``r = ov[:nact] @ W[act[:nact]]`` (rows gathered into ``buf``, then BLAS gemv)."""
    if nact == 0:
        zero = _typed(r, 0.0)
        for d in range(r.shape[0]):
            r[d] = zero
        return
    D = W.shape[1]
    for j in range(nact):
        n = act[j]
        for d in range(D):
            buf[j, d] = W[n, d]
    np.dot(ov[:nact], buf[:nact], r)


@numba.njit(**_JIT)
def _gain_into(v, r, g, e, use_clip, clip, prec):
    """The (clipped) error ``e = clip(v - r)`` and the gain ``g = e / max(r, prec)``."""
    for d in range(v.shape[0]):
        ed = v[d] - r[d]
        if use_clip:
            ed = _clip_val(ed, -clip, clip)
        e[d] = ed
        g[d] = ed / _max_prec(r[d], prec)


@numba.njit(**_JIT)
def _updated(w, t, gd):
    """One weight after the multiplicative update (t = lr * o_j); 0 where it would change
    sign (reference.sign_kept)."""
    x = w + (t * w) * gd
    if (w > 0 and x < 0) or (w < 0 and x > 0):
        return x - x  # 0 of x's type
    return x


@numba.njit(**_JIT)
def _rows_finite(W, act, ov, nact, g, lr):
    """True when the update of the active rows would write only finite values."""
    D = W.shape[1]
    for j in range(nact):
        n = act[j]
        t = lr * ov[j]
        for d in range(D):
            x = _updated(W[n, d], t, g[d])
            if not (x - x == 0):
                return False
    return True


@numba.njit(**_JIT)
def _apply_rows(W, act, ov, nact, g, lr):
    """``W[j] += ((lr * o_j) * W[j]) * g`` for the active rows."""
    D = W.shape[1]
    for j in range(nact):
        n = act[j]
        t = lr * ov[j]
        for d in range(D):
            W[n, d] = _updated(W[n, d], t, g[d])


@numba.njit(**_JIT)
def _update_into(W, act, ov, nact, v, r, g, e, lr, use_clip, clip, prec):
    """Multiplicative update of the active rows; the (clipped) error into ``e``.

    ``e = clip(v - r)``, ``g = e / max(r, prec)``, ``W[j] += ((lr * o_j) * W[j]) * g``.
    """
    _gain_into(v, r, g, e, use_clip, clip, prec)
    _apply_rows(W, act, ov, nact, g, lr)


@numba.njit(**_JIT)
def _lateral_u(o, srt, nsrt, indptr, indices, ldata, u):
    """``u = L^T o`` summed over the non-zero rows ``srt[:nsrt]`` in ascending order (scipy's
    CSC mat-vec order); ``u`` (N,) is all zeros on entry."""
    for j in range(nsrt):
        i = srt[j]
        oi = o[i]
        for jj in range(indptr[i], indptr[i + 1]):
            m = indices[jj]
            u[m] += ldata[jj] * oi


@numba.njit(**_JIT)
def _lateral_clear(srt, nsrt, indptr, indices, u):
    """``u`` back to zeros after ``_lateral_u``."""
    zero = _typed(u, 0.0)
    for j in range(nsrt):
        i = srt[j]
        for jj in range(indptr[i], indptr[i + 1]):
            u[indices[jj]] = zero


@numba.njit(**_JIT)
def _lateral_apply_update(o, act, nact, indptr, indices, ldata, u, lat_lr, prec, write):
    """For each active row i and stored entry (i, m):
    ``L[i, m] += ((lat_lr * o_i) * L[i, m]) * ((o_m - u_m) / max(u_m, prec))`` (0 where it
    would change sign, ``_updated``) when ``write``; without it only checks. Returns True
    when every new value is finite."""
    for j in range(nact):
        i = act[j]
        t = lat_lr * o[i]
        for jj in range(indptr[i], indptr[i + 1]):
            m = indices[jj]
            um = u[m]
            ratio = (o[m] - um) / _max_prec(um, prec)
            y = _updated(ldata[jj], t, ratio)
            if write:
                ldata[jj] = y
            elif not (y - y == 0):
                return False
    return True


@numba.njit(**_JIT)
def _learn_lateral(o, srt, nsrt, act, nact, indptr, indices, ldata, u, lat_lr, prec):
    """Learned-lateral update (rule A.9) on the CSR data in place, when every new value is
    finite (returns False and writes nothing otherwise).

    ``u = L^T o`` over the non-zero rows ``srt[:nsrt]``, then for each active row i and
    stored entry (i, m) the multiplicative update. ``u`` is all zeros on entry and on return.
    """
    _lateral_u(o, srt, nsrt, indptr, indices, ldata, u)
    ok = _lateral_apply_update(o, act, nact, indptr, indices, ldata, u, lat_lr, prec, False)
    if ok:
        _lateral_apply_update(o, act, nact, indptr, indices, ldata, u, lat_lr, prec, True)
    _lateral_clear(srt, nsrt, indptr, indices, u)
    return ok


@numba.njit(**_JIT)
def _clip_array(a, hi):
    """``np.clip(a, 0, hi, out=a)`` for an array of any shape (C-contiguous)."""
    flat = a.reshape(a.size)
    zero = _typed(flat, 0.0)
    for i in range(flat.shape[0]):
        flat[i] = _clip_val(flat[i], zero, hi)


# ================================================================== fused loops
@numba.njit(**_JIT)
def _fit_kernel(W, X, order, o, last_win, g0, g1,
                lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata,
                k, mode, output, use_clip, clip, use_trace, alpha, learn_lat, lat_lr,
                use_bounds, w_max, clip_every, clip_lat, step0, reset_trace, lr, prec, drop, block):
    """Steps ``g0 .. g1 - 1`` of the flattened ``order`` of rule A (see ``reference.fit``),
    in place, stopping before a step whose update is not finite (``reference.try_step``).

    The state is read afresh at ``g0`` (the active set from the trace, the row sums from
    W), so a fit may run in any chunks with the same result. Returns the steps done
    (``g1 - g0`` unless a step diverged: then the state is that after the step before).

    With ``block`` > 0 the drives come from the blocked drive (``_block_product``: ``block``
    frames per pass over W, nonzero inputs only, rows updated since the block began
    recomputed by ``_rows_drive``; the same bits wherever a block begins), and the bounds
    clip all of W at the call's first clip, then only the rows updated since the clip before
    (the others are inside the bounds). ``block`` = 0: a BLAS pass per step and every clip
    over all of W.

    Parameters
    ----------
    W : array of shape (N, D), updated in place
    X : array of shape (n, D)
    order : int64 array of shape (E, S)
    o : array of shape (N,), the trace, updated in place
    last_win : int64 array of shape (k,), receives the winners of the last step
    g0, g1 : int, the flattened step range (epoch ``g // S``, index ``g % S``)
    lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata
        The lateral (``_lateral_args``); a learned or clipped CSR has ``ldata`` updated in place.
    Remaining scalars: the configuration (``_config_args``); floats in W's dtype.
    """
    N, D = W.shape
    S = order.shape[1]
    zero = _typed(W, 0.0)
    uses_rowsum = mode == _NORMALIZED or mode == _MEAN
    rowsum = np.empty(N if uses_rowsum else 0, W.dtype)
    if uses_rowsum:
        _row_sums(W, rowsum)
    p = np.empty(N, W.dtype)
    c = np.empty(N, W.dtype)
    q = np.empty(N, W.dtype)
    lq = np.empty(N, W.dtype)
    vv = np.empty(D, W.dtype)
    r = np.empty(D, W.dtype)
    g = np.empty(D, W.dtype)
    e = np.empty(D, W.dtype)
    win = np.zeros(k, np.int64)
    bv = np.empty(k, W.dtype)
    ws = np.empty(k, np.int64)
    cap = N if use_trace else k
    act = np.empty(cap, np.int64)
    ov = np.empty(cap, W.dtype)
    cand = np.empty(N if use_trace else 0, np.int64)
    a_dense = np.zeros(N if use_trace else 0, W.dtype)
    u = np.zeros(N if learn_lat else 0, W.dtype)
    buf = np.empty((min(cap, 4 * k), D), W.dtype)
    undo_i = np.empty(N + 2 * k, np.int64)   # a step that stops before its update: the trace
    undo_v = np.empty(N + 2 * k, W.dtype)    # entries it changed and their old values
    two = mode == _WEIGHTED
    # blocked drive (block > 0); empty arrays otherwise
    nbk = max(block, 0)
    flat = order.reshape(order.size)
    P = np.empty((nbk, N), W.dtype)
    P2 = np.empty((nbk if two else 0, N), W.dtype)
    tile = np.empty((D if nbk else 0, _TILE), W.dtype)
    acc = np.empty(_TILE, W.dtype)
    acc2 = np.empty(_TILE, W.dtype)
    idx = np.empty(nbk * D, np.int64)
    val = np.empty(nbk * D, W.dtype)
    val2 = np.empty(nbk * D if two else 0, W.dtype)
    off = np.zeros(nbk + 1, np.int64)
    allidx = np.arange(D)
    vvd = np.empty(D, W.dtype)
    dstamp = np.full(N if nbk else 0, -1, np.int64)
    dirty = np.empty(N if nbk else 0, np.int64)
    tstamp = np.full(N if nbk and use_bounds else 0, -1, np.int64)
    touched = np.empty(N if nbk and use_bounds else 0, np.int64)
    nd = 0
    ntouch = 0
    tserial = 0
    serial = 0
    blk_start = g0
    blk_end = g0
    clipped_all = False

    # act[:nact]: rows of the active set (trace: the sorted non-zero entries of o; no
    # trace: the last winners, whose o entries the next step zeroes again).
    nact = 0
    if use_trace:
        for n in range(N):
            if o[n] != 0:
                act[nact] = n
                ov[nact] = o[n]
                nact += 1
    fresh = not use_trace  # without a trace the first step zeroes all of o (reference.step)

    o_saved = np.empty(N if reset_trace else 0, W.dtype)
    for gi in range(g0, g1):
        i = gi % S
        reset = reset_trace and i == 0
        if reset:  # the reset is part of the epoch's first step
            for n in range(N):
                o_saved[n] = o[n]
                o[n] = zero
            nact = 0
        v = X[order[gi // S, i]]
        if nbk > 0:
            if gi == blk_end:  # a new block: its frames' drives in one pass over W
                nb = min(nbk, g1 - gi)
                if use_bounds and not clipped_all:  # the first clip ends the block
                    for j in range(nb):
                        if (step0 + (gi + j) % S) % clip_every == 0:
                            nb = j + 1
                            break
                _nonzeros(X, flat, gi, nb, two, idx, val, val2, off)
                _block_product(W, P, P2, two, nb, idx, val, val2, off, X, flat, gi, allidx, vvd,
                               tile, acc, acc2)
                blk_start = gi
                blk_end = gi + nb
                serial += 1
                nd = 0
            b = gi - blk_start
            _rows_drive(W, dirty, nd, b, P, P2, two, idx, val, val2, off)
            pb = P[b]
            _compete_post(pb, P2[b] if two else lq, rowsum, mode, lat_kind, kern, row_scale, rows, cols,
                          indptr, indices, ldata, prec, c, q, lq)
        else:
            pb = p
            _compete(W, v, rowsum, mode, lat_kind, kern, row_scale, rows, cols,
                     indptr, indices, ldata, prec, p, c, q, lq, vv)
        _topk_into(c, k, win, bv)
        s = pb if output == _OUT_DRIVE else c
        nundo = 0
        if use_trace:
            nact, m = _trace_update(o, act, nact, win, s, k, alpha, drop, ws, cand, a_dense, ov, undo_v)
            for j in range(m):
                undo_i[j] = cand[j]
            nundo = m
        else:
            if fresh:
                for n in range(N):
                    undo_i[nundo] = n
                    undo_v[nundo] = o[n]
                    nundo += 1
                    o[n] = zero
                fresh = False
            for j in range(nact):
                undo_i[nundo] = act[j]
                undo_v[nundo] = o[act[j]]
                nundo += 1
                o[act[j]] = zero
            for j in range(k):
                n = win[j]
                act[j] = n
                ov[j] = s[n]
                undo_i[nundo] = n
                undo_v[nundo] = o[n]
                nundo += 1
                o[n] = s[n]
            nact = k
        if buf.shape[0] < nact:
            buf = np.empty((min(cap, max(nact, 2 * buf.shape[0])), D), W.dtype)
        _reconstruct_into(W, act, ov, nact, buf, r)
        _gain_into(v, r, g, e, use_clip, clip, prec)
        # a non-finite activity makes its row's update non-finite too: the rows cover the trace
        ok = _rows_finite(W, act, ov, nact, g, lr)
        if ok and learn_lat:
            if use_trace:
                ok = _learn_lateral(o, act, nact, act, nact, indptr, indices, ldata, u, lat_lr, prec)
            else:
                _sort_small(win, k, ws)
                ok = _learn_lateral(o, ws, k, act, nact, indptr, indices, ldata, u, lat_lr, prec)
        if not ok:
            for j in range(nundo - 1, -1, -1):
                o[undo_i[j]] = undo_v[j]
            if reset:
                for n in range(N):
                    o[n] = o_saved[n]
            return gi - g0
        _apply_rows(W, act, ov, nact, g, lr)
        if uses_rowsum:
            for j in range(nact):
                n = act[j]
                rowsum[n] = _pairwise_sum(W[n], 0, D)
        if nbk > 0:
            for j in range(nact):  # dirty for the rest of the block, touched for the next clip
                n = act[j]
                if dstamp[n] != serial:
                    dstamp[n] = serial
                    dirty[nd] = n
                    nd += 1
                if use_bounds and tstamp[n] != tserial:
                    tstamp[n] = tserial
                    touched[ntouch] = n
                    ntouch += 1
        if use_bounds and (step0 + i) % clip_every == 0:
            if nbk == 0 or not clipped_all:
                _clip_array(W, w_max)
                if uses_rowsum:
                    _row_sums(W, rowsum)
                clipped_all = True
                blk_end = gi + 1  # the block's drives may all have changed
            else:
                for j in range(ntouch):
                    n = touched[j]
                    if _clip_row(W[n], w_max):
                        if uses_rowsum:
                            rowsum[n] = _pairwise_sum(W[n], 0, D)
                        if dstamp[n] != serial:
                            dstamp[n] = serial
                            dirty[nd] = n
                            nd += 1
            ntouch = 0
            tserial += 1
            if clip_lat:
                _clip_array(ldata, w_max)
        for j in range(k):
            last_win[j] = win[j]
    return g1 - g0


@numba.njit(**_JIT)
def _infer_kernel(W, X, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata,
                  k, mode, output, prec, win_out, val_out):
    """Winners and activity of every row of X (no learning, no trace) into ``win_out`` / ``val_out``."""
    N, D = W.shape
    uses_rowsum = mode == _NORMALIZED or mode == _MEAN
    rowsum = np.empty(N if uses_rowsum else 0, W.dtype)
    if uses_rowsum:
        _row_sums(W, rowsum)
    p = np.empty(N, W.dtype)
    c = np.empty(N, W.dtype)
    q = np.empty(N, W.dtype)
    lq = np.empty(N, W.dtype)
    vv = np.empty(D, W.dtype)
    win = np.empty(k, np.int64)
    bv = np.empty(k, W.dtype)
    for i in range(X.shape[0]):
        _compete(W, X[i], rowsum, mode, lat_kind, kern, row_scale, rows, cols,
                 indptr, indices, ldata, prec, p, c, q, lq, vv)
        _topk_into(c, k, win, bv)
        s = p if output == _OUT_DRIVE else c
        for j in range(k):
            win_out[i, j] = win[j]
            val_out[i, j] = s[win[j]]


@numba.njit(**_JIT)
def _competition_kernel(W, v, lat_kind, kern, row_scale, rows, cols, indptr, indices, ldata,
                        mode, prec, p, c):
    """``competition`` of one input into ``p`` and ``c`` (row sums computed here)."""
    N, D = W.shape
    uses_rowsum = mode == _NORMALIZED or mode == _MEAN
    rowsum = np.empty(N if uses_rowsum else 0, W.dtype)
    if uses_rowsum:
        _row_sums(W, rowsum)
    q = np.empty(N, W.dtype)
    lq = np.empty(N, W.dtype)
    vv = np.empty(D, W.dtype)
    _compete(W, v, rowsum, mode, lat_kind, kern, row_scale, rows, cols,
             indptr, indices, ldata, prec, p, c, q, lq, vv)


@numba.njit(**_JIT)
def _topk_kernel(c, k, win):
    """``topk`` into ``win`` (int64 (k,))."""
    bv = np.empty(k, c.dtype)
    _topk_into(c, k, win, bv)


@numba.njit(**_JIT)
def _update_kernel(W, idx, vals, v, r, e, lr, use_clip, clip, prec):
    """``update_rows`` in place; the (clipped) error into ``e``."""
    g = np.empty(W.shape[1], W.dtype)
    _update_into(W, idx, vals, idx.shape[0], v, r, g, e, lr, use_clip, clip, prec)


@numba.njit(**_JIT)
def _reconstruct_kernel(W, idx, vals, r):
    """``reconstruct`` into ``r``."""
    buf = np.empty((idx.shape[0], W.shape[1]), W.dtype)
    _reconstruct_into(W, idx, vals, idx.shape[0], buf, r)


# ================================================================== Python side
#: Frames per block of the blocked drive in ``fit`` (as the C++ backend's, docs/design.md
#: "The drive in fit"): None chooses from the sizes (``choose_block``), 0 runs a BLAS pass
#: over W every step, n > 0 forces n. For tests and measurements.
BLOCK = None

#: BLAS threads the kernels may use (the drive pass is one gemv per step). 1 by default:
#: OpenBLAS workers spin-wait between calls, and on a machine whose cores are shared (other
#: processes, or users running fits in threads) a 2-thread gemv per step was measured 60x
#: slower than a 1-thread one. None leaves the process's BLAS setting alone.
BLAS_THREADS = 1

_controller = None


def _blas_limit():
    """Context limiting BLAS to ``BLAS_THREADS`` (threadpoolctl; a no-op without it)."""
    global _controller
    if BLAS_THREADS is None:
        return contextlib.nullcontext()
    if _controller is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba calls: load it first)
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    if _controller is False:
        return contextlib.nullcontext()
    return _controller.limit(limits=BLAS_THREADS, user_api="blas")

class _InPlace:
    """A C-contiguous writeable working copy of ``arr`` when it is not one already (copied back by ``done``)."""

    def __init__(self, arr, dtype):
        self.orig = arr
        self.work = _c(arr, dtype)

    def done(self):
        if self.work is not self.orig:
            self.orig[...] = self.work


def _lateral_args(lateral, dtype, n, data=None):
    """The lateral as kernel arguments ``(kind, kern, row_scale, rows, cols, indptr, indices, data)``.

    Unused kinds get empty arrays of the same types, so every lateral (and none) shares
    one compiled specialization per dtype. ``data`` overrides a CSR's data (in-place work array).
    """
    empty_k = np.zeros((0, 0), dtype)
    empty_f = np.zeros(0, dtype)
    empty_p = np.zeros(0, np.int64)
    empty_i = np.zeros(0, np.int32)
    if lateral is None:
        return (_LAT_NONE, empty_k, empty_f, 1, max(n, 1), empty_p, empty_i, empty_f)
    if getattr(lateral, "kind", None) == "stencil":
        rs = empty_f if lateral.row_scale is None else _c(lateral.row_scale, dtype)
        return (_LAT_STENCIL, _c(lateral.kernel, dtype), rs, int(lateral.grid[0]),
                int(lateral.grid[1]), empty_p, empty_i, empty_f)
    if getattr(lateral, "kind", None) == "csr":
        d = _c(lateral.data, dtype) if data is None else data
        return (_LAT_CSR, empty_k, empty_f, 1, n, _c(lateral.indptr, np.int64),
                _c(lateral.indices, np.int32), d)
    raise TypeError(f"lateral must be a Stencil, a CSR or None, got {type(lateral).__name__}")


def _config_args(cfg: SparseDreamConfig, dtype):
    """The configuration as the kernels' scalar arguments (floats in ``dtype``)."""
    t = np.dtype(dtype).type
    return dict(
        k=int(cfg.k), mode=int(cfg.competition), output=int(cfg.output),
        use_clip=cfg.error_clip is not None,
        clip=t(cfg.error_clip if cfg.error_clip is not None else np.inf),
        use_trace=cfg.trace is not None,
        alpha=t(cfg.trace if cfg.trace is not None else 1.0),
        learn_lat=bool(cfg.learn_lateral), lat_lr=t(cfg.lateral_lr),
        use_bounds=cfg.w_max is not None,
        w_max=t(cfg.w_max if cfg.w_max is not None else np.inf),
        clip_every=int(cfg.clip_every),
        clip_lat=bool(cfg.clip_lateral) and cfg.w_max is not None,
        lr=t(cfg.lr), prec=t(cfg.prec), drop=t(TRACE_DROP),
    )


#: Below this many neurons the Numba fit takes a BLAS pass per step: at 20 x 20 (D = 400,
#: tapestry frames, one thread) the blocked drive measured 1.2-1.8x slower than it, at 40 x 40
#: 1.8x faster, at 80 x 80 1.9x faster (the loaded 2-core VM, CPU time per step).
BLOCK_MIN_NEURONS = 1024


def choose_block(N, D, k, itemsize, two, steps):
    """Frames per block of the blocked drive (0: a BLAS pass per step, below
    ``BLOCK_MIN_NEURONS``): the power of two nearest ``sqrt(10 N / k)`` in [8, 256] (the pass
    over W costs about N D / B per step, the rows updated since the block began about k B / 2
    nonzero-input sums), capped so that the block's drives take at most max(64 MB, W / 4),
    and by the steps of the call."""
    if N < BLOCK_MIN_NEURONS:
        return 0
    best = (10.0 * N / max(k, 1)) ** 0.5
    B = 8
    while B * 2 <= 256 and B * 1.41421356 < best:
        B *= 2
    budget = max(64 << 20, N * D * itemsize // 4)
    while B > 1 and B * N * itemsize * (2 if two else 1) > budget:
        B //= 2
    return max(1, min(B, steps))


#: Seconds of work per call of the jitted loop: between calls a stop request (Ctrl-C) is
#: acted on. The steps per call adapt to it (starting from one).
CHUNK_SECONDS = 0.05


def _run_fit(state, X, order, cfg, reset_trace, step0, use_bounds, control=None, block=None):
    """Run the flattened ``order`` in calls of about CHUNK_SECONDS; returns (steps done,
    status, winners of the last step)."""
    dtype = _dtype_of(state.W)
    W = _InPlace(state.W, dtype)
    o = _InPlace(state.trace, dtype)
    N = W.work.shape[0]
    lat = state.lateral
    a = _config_args(cfg, dtype)
    L = None
    if (a["learn_lat"] or a["clip_lat"]) and getattr(lat, "kind", None) == "csr":
        L = _InPlace(lat.data, dtype)
        largs = _lateral_args(lat, dtype, N, data=L.work)
    else:
        largs = _lateral_args(lat, dtype, N)
    last_win = np.zeros(a["k"], np.int64)
    Xc, order = _c(X, dtype), _c(order, np.int64)
    total = order.size
    if block is None:
        block = BLOCK
    if block is None:
        block = choose_block(N, W.work.shape[1], a["k"], np.dtype(dtype).itemsize, a["mode"] == _WEIGHTED,
                             total)
    pos, status, chunk = 0, RUN_DONE, 1
    try:
        with _blas_limit():
            while pos < total:
                # a call starts a fresh block (one pass over W for its frames): a call shorter
                # than the block would pay that pass for fewer frames, so calls are whole blocks
                n = min(chunk if block <= 0 else -(-max(chunk, block) // block) * block, total - pos)
                t0 = time.perf_counter()
                done = _fit_kernel(W.work, Xc, order, o.work, last_win, pos, pos + n, *largs,
                                   a["k"], a["mode"], a["output"], a["use_clip"], a["clip"], a["use_trace"],
                                   a["alpha"], a["learn_lat"], a["lat_lr"], bool(use_bounds), a["w_max"],
                                   a["clip_every"], a["clip_lat"] and largs[0] == _LAT_CSR, int(step0),
                                   bool(reset_trace), a["lr"], a["prec"], a["drop"], int(block))
                pos += done
                if done < n:
                    status = RUN_DIVERGED
                    break
                chunk = next_chunk(n, time.perf_counter() - t0, CHUNK_SECONDS)
                if pos < total and control is not None and control.stop_requested:
                    status = RUN_STOPPED
                    break
    finally:
        W.done()
        o.done()
        if L is not None:
            L.done()
    return pos, status, last_win


def fit(state: TrainState, X: np.ndarray, order: np.ndarray, cfg: SparseDreamConfig,
        reset_trace: bool = True, step0: int = 0, control=None) -> int:
    """Train on ``X[order[e, i]]`` for every epoch row e, in place on ``state`` (jitted loop).

    The loop runs in calls of about CHUNK_SECONDS of work; between them a stop request of
    ``control`` ends it. A step whose update is not finite is not taken (reference.fit).

    Parameters
    ----------
    state : TrainState
        ``W`` (N, D), ``trace`` (N,) and a learned lateral's ``data`` are updated in place.
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
    order = np.asarray(order, dtype=np.int64)
    if order.ndim != 2:
        order = order.reshape(1, -1)
    ctl = loop_control(control)
    done, status, _ = _run_fit(state, X, order, cfg, reset_trace, step0, cfg.w_max is not None, ctl)
    ctl.report(done, status)
    if control is None:
        ctl.raise_if_diverged("SparseDream fit (numba)")
    return done


def step(state: TrainState, v: np.ndarray, cfg: SparseDreamConfig) -> np.ndarray:
    """One learning step of rule A on input ``v`` (shape (D,)), in place on ``state``.

    Returns the winners (k,) int64 in competition order. No bounds (as ``reference.step``).
    Raises DivergenceError, writing nothing, when the step's update is not finite.
    """
    dtype = _dtype_of(state.W)
    X = _c(np.asarray(v).reshape(1, -1), dtype)
    done, _, win = _run_fit(state, X, np.zeros((1, 1), np.int64), cfg, False, 0, False)
    if not done:
        raise DivergenceError("the update of this step is not finite (NaN or inf); nothing was written")
    return win


def infer(W: np.ndarray, lateral, X: np.ndarray, cfg: SparseDreamConfig):
    """Winners and their activity for every row of X, without learning and without trace.

    Parameters
    ----------
    W : ndarray of shape (N, D)
    lateral : Stencil, CSR or None
    X : ndarray of shape (n, D)
    cfg : SparseDreamConfig

    Returns
    -------
    winners : ndarray of shape (n, k), int64, competition order
    values : ndarray of shape (n, k), dtype of W: the activity ``s`` of each winner
    """
    dtype = _dtype_of(W)
    Wc = _c(W, dtype)
    Xc = _c(np.asarray(X).reshape(-1, Wc.shape[1]), dtype)
    n = Xc.shape[0]
    win = np.empty((n, cfg.k), np.int64)
    val = np.empty((n, cfg.k), dtype)
    if n:
        a = _config_args(cfg, dtype)
        with _blas_limit():
            _infer_kernel(Wc, Xc, *_lateral_args(lateral, dtype, Wc.shape[0]),
                          a["k"], a["mode"], a["output"], a["prec"], win, val)
    return win, val


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
    dtype = _dtype_of(W)
    Wc = _c(W, dtype)
    N = Wc.shape[0]
    p = np.empty(N, dtype)
    c = np.empty(N, dtype)
    _competition_kernel(Wc, _c(v, dtype), *_lateral_args(lateral, dtype, N),
                        int(cfg.competition), np.dtype(dtype).type(cfg.prec), p, c)
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
    cc = _c(c, _dtype_of(c))
    win = np.empty(int(k), np.int64)
    _topk_kernel(cc, int(k), win)
    return win


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
    dtype = _dtype_of(W)
    Wc = _c(W, dtype)
    r = np.empty(Wc.shape[1], dtype)
    _reconstruct_kernel(Wc, _c(np.asarray(idx).ravel(), np.int64), _c(np.asarray(vals).ravel(), dtype), r)
    return r


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
    dtype = _dtype_of(W)
    t = np.dtype(dtype).type
    Wp = _InPlace(W, dtype)
    e = np.empty(Wp.work.shape[1], dtype)
    _update_kernel(Wp.work, _c(np.asarray(idx).ravel(), np.int64), _c(np.asarray(vals).ravel(), dtype),
                   _c(v, dtype), _c(r, dtype), e, t(lr), error_clip is not None,
                   t(error_clip if error_clip is not None else np.inf), t(prec))
    Wp.done()
    return e


def apply_bounds(state: TrainState, cfg: SparseDreamConfig) -> None:
    """Clip W (and the lateral when ``cfg.clip_lateral``) to [0, w_max] in place."""
    dtype = _dtype_of(state.W)
    hi = np.dtype(dtype).type(cfg.w_max if cfg.w_max is not None else np.inf)
    W = _InPlace(state.W, dtype)
    _clip_array(W.work, hi)
    W.done()
    if cfg.clip_lateral:
        L = _InPlace(state.lateral.data, dtype)
        _clip_array(L.work, hi)
        L.done()
