"""Numba kernels of rule B, DreamComp (backend ``"numba"``).

The same functions and signatures as the numpy reference (``reference.py``). Per minibatch
``V`` (B, D + C), one jitted kernel, numpy's gemm, one jitted kernel:

1. gather the batch's rows into a contiguous buffer and compute ``S = W V^T`` (N, B) with
   one BLAS gemm (``np.dot(..., out=)``: numpy's BLAS, as the reference. A gemm inside a
   kernel would call scipy's OpenBLAS, a second thread pool: right after numpy's BLAS ran,
   its threads still spin on the cores and a 2-thread gemm of the other pool was measured
   1.6x slower);
2. the winner of every sample, ``argmax_n S[n, b]`` (first maximum, a NaN wins as in
   ``np.argmax``), in one row-major pass over S;
3. the samples grouped by winner (a linked list per winner, samples ascending); for every
   neuron that won something: ``U = (sum of its samples) * (1 / count)``,
   ``s = sum_b S[n, b] * (1 / count)``, and ``W_n += (U - s * (W_n / zeta)) * eta``.

Neurons that won nothing are not touched (the reference adds exactly 0 to them: U = 0,
s = 0), so after the product the cost is O(N B) for the argmax and O(B (D + C)) for the
update, against the reference's second N x B x (D + C) product and five passes over W.

Screening (``SCREEN``, on by default): the gemm is nearly the whole cost, so steps 1-2
take a float32 product (in float64: half the time of the float64 one) and compute, in
float64 and in an order fixed by the compiled kernel (``_dot64``), only the dot products of
the neurons its rigorous error bound cannot rule out (one or two per sample); the winner is the argmax of those
(``_screened_winners``): the float64 argmax in float64, and in float32 the argmax of the
exact drives of the float32 weights (the reference's float32 gemm can differ from it where
two drives are within float32 rounding). So the winners, and with them the results, do
not depend on the BLAS library or its number of threads (OpenBLAS's gemm does: its sums
change with the thread count); on another CPU (vector width) they may differ in the last
bits, as any float code's. Batches where the bound cannot be trusted (non-finite or
huge weights or samples) or that have too many candidates (over 16 B in a batch) take the
winners from the product in W's dtype, as the reference (no float64 re-check there).

Numerics: elementwise operations are the reference's, in the same order and in the model
dtype (``fastmath=False``). A winner's drive (for ``s``) is its screened dot product
rounded to the dtype. A winner with one sample gets the reference's update up to that
drive; with several, ``U`` and ``s`` are summed in sample order where the reference lets
BLAS and numpy's pairwise sum choose: they agree to rounding.

Stopping: the loop is driven from Python batch by batch; it stops after a batch on a stop
request of its ``control`` (Ctrl-C, ``_runtime.StepBoundary``), and before a batch whose
update is not finite (a winner's new row, or any drive of the batch: the reference's s_n
takes S[n, b] * 0): the winners' old rows are kept aside and put back, so that batch writes
nothing (the reference's rule); a W that is not finite at the start diverges at the
first batch.

Threads: BLAS's (``BLAS_THREADS``: the process's setting by default). Measured on the
shared 2-core VM (KH 2,000 hidden, float64, s/epoch): idle, 2 threads 1.2, 1 thread 1.9;
with the other core busy, 2 threads 2.7-2.9 (OpenBLAS's workers spin between products
and stall on the busy core), 1 thread 2.0. A per-batch choice by measurement did not
beat the default there (the timings are bimodal under load). The results do not depend
on the thread count (screening). The kernels themselves are serial (``nogil``): after the
product they cost O(N B + B D).
"""
from __future__ import annotations

import numba
import numpy as np

from .._arrays import as_c as _c, float_dtype as _dtype
from .._numba_common import JIT as _JIT, typed as _typed
from .._rng import one_batch
from .._runtime import RUN_DIVERGED, RUN_DONE, RUN_STOPPED, DivergenceError, all_finite, loop_control

__all__ = ["BLAS_THREADS", "SCREEN", "winners", "batch_update", "fit"]

#: reductions whose order is free (reassociation only: vectorized, no fused multiply-add)
_JIT_SUM = dict(cache=True, fastmath={"reassoc"}, nogil=True)

#: BLAS threads of the products: None (default) leaves the process's setting (threadpoolctl)
#: alone; an int holds BLAS to that many during a fit. The products are large (N x B x
#: (D + C), up to tens of ms): all cores pay on an idle machine (see the module's notes).
BLAS_THREADS = None

#: Winners by float32 screening and float64 dot products of the candidates (see above);
#: False: the argmax of the product in W's dtype, as the reference.
SCREEN = True


# ================================================================== kernels
# outcomes of _after_product32
_NEED_FULL, _UPDATED, _DIVERGED = 0, 1, 2

@numba.njit(**_JIT)
def _argmax_cols(S, win, best):
    """``win[b] = argmax_n S[n, b]`` for every column b (``np.argmax(S, axis=0)``).

    Row-major pass (columns in the inner, vectorizable loop): a later row replaces the
    best only when strictly larger, so ties go to the lower index; the first NaN of a
    column wins and stays (numpy's rule).

    Parameters
    ----------
    S : array of shape (N, B)
    win : int64 array of shape (B,), output
    best : array of shape (B,), scratch
    """
    N, B = S.shape
    for b in range(B):
        best[b] = S[0, b]
        win[b] = 0
    for n in range(1, N):
        for b in range(B):
            x = S[n, b]
            t = best[b]
            if x > t or (x != x and t == t):
                best[b] = x
                win[b] = n


@numba.njit(**_JIT)
def _update_winners(W, V, idx, sw, win, zeta, eta, head, nxt, U, old):
    """Step 3 for every neuron that won a sample of the batch, in place on W; False (W as
    before: the old rows put back) when a new row is not finite.

    Parameters
    ----------
    W : array of shape (N, D + C)
    V : array of shape (n, D + C), all samples; ``V[idx[b]]`` is sample b of the batch
    idx : int64 array of shape (B,)
    sw : array of shape (B,), the winner's drive ``S[win[b], b]``
    win : int64 array of shape (B,)
    zeta, eta : arrays of shape (D + C,)
    head : int64 array of shape (N,), all -1 on entry and on return
    nxt : int64 array of shape (B,), scratch
    U : array of shape (D + C,), scratch
    old : array of shape (B, D + C), scratch: the winners' rows before the update
    """
    B = win.shape[0]
    Dp = W.shape[1]
    one = _typed(W, 1.0)
    ok = True
    # linked list of each winner's samples, ascending (built from the back)
    for b in range(B - 1, -1, -1):
        n = win[b]
        nxt[b] = head[n]
        head[n] = b
    for b0 in range(B):
        n = win[b0]
        if head[n] != b0:  # not n's first sample: n is done already
            continue
        c = 0
        b = b0
        while b >= 0:
            c += 1
            b = nxt[b]
        m = one / _typed(W, c)  # the reference's row of M: 1 / max(1, count)
        # U = m * (sum of the samples), s = sum_b S[n, b] * m
        r0 = V[idx[b0]]
        for j in range(Dp):
            U[j] = r0[j]
        s = sw[b0] * m
        b = nxt[b0]
        while b >= 0:
            r = V[idx[b]]
            for j in range(Dp):
                U[j] += r[j]
            s += sw[b] * m
            b = nxt[b]
        if c > 1:
            for j in range(Dp):
                U[j] = U[j] * m
        w = W[n]
        o = old[b0]
        for j in range(Dp):
            o[j] = w[j]
            w[j] += (U[j] - s * (w[j] / zeta[j])) * eta[j]
            if not np.isfinite(w[j]):
                ok = False
    for b in range(B):
        n = win[b]
        if not ok and head[n] == b:  # the batch writes nothing: put the old rows back
            W[n, :] = old[b]
    for b in range(B):  # leave head all -1
        head[win[b]] = -1
    return ok


@numba.njit(**_JIT)
def _gather(V, idx, Vb):
    """``Vb = V[idx]`` (the batch as one contiguous block for the gemm)."""
    for b in range(idx.shape[0]):
        Vb[b] = V[idx[b]]


# ------------------------------------------------------------ screening
@numba.njit(**_JIT_SUM)
def _dot64(a, b):
    """``sum_j a_j b_j`` in float64, in the order LLVM vectorizes it into (fixed for the
    compiled kernel: the same inputs give the same bits on this machine, whatever BLAS
    does; another vector width may round differently)."""
    s = 0.0
    for j in range(a.shape[0]):
        s += np.float64(a[j]) * np.float64(b[j])
    return s


@numba.njit(**_JIT)
def _row_norm(w):
    """``||w||_2`` in float64."""
    return np.sqrt(_dot64(w, w))


@numba.njit(**_JIT)
def _row_norms(W, out):
    for n in range(W.shape[0]):
        out[n] = _row_norm(W[n])


@numba.njit(**_JIT)
def _screen_margins(wnorm, Vb, Vb32, thr, cast):
    """Prepare the float32 product of a batch: ``Vb32 = fl32(Vb)`` (when ``cast``) and the
    margins ``thr[b] = 2 e_b``; False when the bound cannot be trusted.

    The float32 product ``S32 = fl32(W) fl32(V)^T`` differs from the exact ``W V^T`` by at
    most ``e_b = c max_n ||W_n|| ||v_b||``, ``c = 2 (D + 4) u32``, which covers the bound
    ``(gamma_D + 3 u32) sum_j |w_j v_j|`` of rounding both factors to float32 (nothing to
    round for float32 data) and summing in float32 in any order, fused or not, and the
    float64 re-check's own error, while D u32 < 1/2; plus a term for float32 underflow
    (IEEE gradual underflow assumed, no flush-to-zero).
    False (the caller then takes the product in W's dtype) when a row norm of W or of a
    sample is not finite or passes 1e30 (then an entry could be beyond float32's range:
    inf, and inf * 0 = NaN in the product), or a drive could pass 1e30 (no float32 overflow).

    Parameters
    ----------
    wnorm : float64 array of shape (N,), the row norms of W
    Vb : array of shape (B, D + C); Vb32 : float32 array of the same shape (output, when cast)
    thr : float64 array of shape (B,), output
    cast : bool
        False when Vb is float32 (Vb32 is Vb)
    """
    B, Dp = Vb.shape
    wmax = 0.0
    for n in range(wnorm.shape[0]):
        x = wnorm[n]
        if not (x <= 1e30):  # NaN, inf or huge: float32 is no use
            return False
        if x > wmax:
            wmax = x
    u = 2.0 ** -24
    c = 2.0 * (Dp + 4) * u
    tiny = Dp * 2.0 ** -140
    for b in range(B):
        vn = _row_norm(Vb[b])
        if not (vn <= 1e30 and wmax * vn <= 1e30):
            return False
        thr[b] = 2.0 * (c * wmax * vn + tiny * (2.0 + wmax + vn))
        if cast:
            for j in range(Dp):
                Vb32[b, j] = Vb[b, j]
    return True


@numba.njit(**_JIT)
def _collect_candidates(P32, thr, cand, ncol):
    """Entries (n, b) with ``P32[n, b] >= thr[b]`` (compared in float64) into ``cand`` rows
    (n, b), row by row ascending; ``ncol[b]`` counts column b's. Returns their number, or -1
    when ``cand`` cannot hold them."""
    nc = 0
    cap = cand.shape[0]
    for n in range(P32.shape[0]):
        hits = 0  # a vectorized count first: most rows hold no candidate
        for b in range(P32.shape[1]):
            hits += np.float64(P32[n, b]) >= thr[b]
        if hits == 0:
            continue
        if nc + hits > cap:
            return -1
        for b in range(P32.shape[1]):
            if np.float64(P32[n, b]) >= thr[b]:
                cand[nc, 0] = n
                cand[nc, 1] = b
                nc += 1
                ncol[b] += 1
    return nc


@numba.njit(**_JIT)
def _screened_winners(W, Vb, S32, mx, thr, cand, win, sw, swd):
    """The winners of a batch from its float32 product; False if too many candidates.

    The argmax of the exact drives of sample b is among the neurons with
    ``S32[n, b] >= max_n S32[., b] - thr[b]`` (``_screen_margins``); those candidates (one
    or two per sample on random data) get their drive in float64 (``_dot64``) and the
    largest wins (ties to the lower index). Returns False (the caller then takes the
    product in W's dtype) when more than ``cand.shape[0]`` candidates turn up.

    Parameters
    ----------
    W : array of shape (N, D + C); Vb : array of shape (B, D + C), the batch
    S32 : float32 array of shape (N, B), ``fl32(W) fl32(Vb)^T``
    mx : float32 array of shape (B,), scratch; thr : float64 array of shape (B,), the margins
        (overwritten)
    cand : int64 array of shape (cap, 2), scratch
    win : int64 array of shape (B,), output
    sw : array of shape (B,), output: the winner's drive, rounded to W's dtype
    swd : float64 array of shape (B,), scratch
    """
    N, B = S32.shape
    for b in range(B):
        mx[b] = S32[0, b]
    for n in range(1, N):
        for b in range(B):
            x = S32[n, b]
            if x > mx[b]:
                mx[b] = x
    for b in range(B):
        thr[b] = np.float64(mx[b]) - thr[b]
    nc = _collect_candidates(S32, thr, cand, np.zeros(B, np.int64))
    if nc < 0:
        return False
    for b in range(B):
        win[b] = -1
    for i in range(nc):  # candidates come by neuron ascending: strict > keeps the lower index
        n = cand[i, 0]
        b = cand[i, 1]
        d = _dot64(W[n], Vb[b])
        if win[b] < 0 or d > swd[b]:
            win[b] = n
            swd[b] = d
    for b in range(B):
        sw[b] = swd[b]
    return True


@numba.njit(**_JIT)
def _refresh(W, W32, wnorm, win, mark, cast):
    """Row norms (and, when ``cast``, the float32 copy) of the rows that just changed (the
    winners); ``mark`` all 0 on entry and on return."""
    for b in range(win.shape[0]):
        n = win[b]
        if mark[n] == 0:
            mark[n] = 1
            if cast:
                for j in range(W.shape[1]):
                    W32[n, j] = W[n, j]
            wnorm[n] = _row_norm(W[n])
    for b in range(win.shape[0]):
        mark[win[b]] = 0


# ------------------------------------------------------------ one batch: before and after the gemm
@numba.njit(**_JIT)
def _before_product(V, idx, Vb, wnorm, Vb32, thr, screen, cast):
    """Gather the batch; with ``screen``, prepare its float32 product (True when usable)."""
    _gather(V, idx, Vb)
    if not screen:
        return False
    return _screen_margins(wnorm, Vb, Vb32, thr, cast)


@numba.njit(**_JIT)
def _after_product32(W, V, idx, Vb, S32, mx, thr, cand, win, best, bestd, zeta, eta, head, nxt, U, old,
                     W32, wnorm, mark, cast):
    """Winners from the float32 product, the update and the refresh: _NEED_FULL (nothing
    done) when the screening needs the product in W's dtype, _DIVERGED (nothing written)
    when the update is not finite, else _UPDATED."""
    if not _screened_winners(W, Vb, S32, mx, thr, cand, win, best, bestd):
        return _NEED_FULL
    if not _update_winners(W, V, idx, best, win, zeta, eta, head, nxt, U, old):
        return _DIVERGED
    _refresh(W, W32, wnorm, win, mark, cast)
    return _UPDATED


@numba.njit(**_JIT)
def _after_product(W, V, idx, S, win, best, zeta, eta, head, nxt, U, old, W32, wnorm, mark, screen, cast):
    """Winners from the product S in W's dtype and the update (and, with ``screen``, the
    refresh); False (nothing written) when the update is not finite."""
    _argmax_cols(S, win, best)
    if not _update_winners(W, V, idx, best, win, zeta, eta, head, nxt, U, old):
        return False
    if screen:
        _refresh(W, W32, wnorm, win, mark, cast)
    return True


# ================================================================== Python side
_controller = None


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded here, or None without it."""
    global _controller
    if _controller is None:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  (numba's BLAS, for its ddot: control it too)
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController().select(user_api="blas")
    return _controller or None


class BlasThreads:
    """Context holding the BLAS libraries to ``threads`` threads (None: leave them alone);
    restores their settings on exit."""

    def __init__(self, threads):
        self.libs, self.orig = [], []
        ctl = _blas_controller() if threads is not None else None
        if ctl is not None:
            self.libs = list(ctl.lib_controllers)
            self.orig = [lc.num_threads for lc in self.libs]
            for lc in self.libs:
                lc.set_num_threads(int(threads))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for lc, n in zip(self.libs, self.orig):
            lc.set_num_threads(n)
        return False


class _Screen:
    """The screening's buffers for W (N, D + C) and batches of B (placeholders when off)."""

    def __init__(self, W, B, screen):
        N, Dp = W.shape
        self.on = screen
        self.cast = W.dtype != np.float32
        self.thr = np.empty(B)
        if not screen:  # typed placeholders: one compiled specialization per dtype
            self.W32, self.wnorm = np.empty((0, 0), np.float32), np.empty(0)
            self.Vb32, self.mark = np.empty((0, 0), np.float32), np.zeros(0, np.int8)
            return
        if self.cast:
            with np.errstate(over="ignore"):  # huge rows: inf here, and their norm turns screening off
                self.W32 = W.astype(np.float32)
            self.Vb32 = np.empty((B, Dp), np.float32)
        else:
            self.W32 = W
        self.wnorm = np.empty(N)
        _row_norms(W, self.wnorm)
        self.S32 = np.empty((N, B), np.float32)
        self.mx = np.empty(B, np.float32)
        self.bestd = np.empty(B)
        self.cand = np.empty((16 * B, 2), np.int64)
        self.mark = np.zeros(N, np.int8)


def _loop(W, V, batches, zeta, eta, screen, win, control):
    """The fit loop: per batch one kernel, numpy's gemm, one kernel. Returns (the number of
    batches whose winners came from the product in W's dtype (all of them without
    screening), the batches completed, the status)."""
    N, Dp = W.shape
    E, nb, B = batches.shape
    if not all_finite(W):  # its update is not finite either: the first batch diverges
        return 0, 0, RUN_DIVERGED
    dt = W.dtype
    Vb = np.empty((B, Dp), dt)
    best = np.empty(B, dt)
    head = np.full(N, -1, np.int64)
    nxt = np.empty(B, np.int64)
    U = np.empty(Dp, dt)
    old = np.empty((B, Dp), dt)
    sc = _Screen(W, B, screen)
    if screen and not sc.cast:
        sc.Vb32 = Vb
    S = None
    full = done = 0
    status = RUN_DONE
    with BlasThreads(BLAS_THREADS):
        for e in range(E):
            for i in range(nb):
                idx = batches[e, i]
                outcome = _NEED_FULL
                use32 = _before_product(V, idx, Vb, sc.wnorm, sc.Vb32, sc.thr, screen, sc.cast)
                if use32:
                    np.dot(sc.W32, sc.Vb32.T, out=sc.S32)
                    outcome = _after_product32(W, V, idx, Vb, sc.S32, sc.mx, sc.thr, sc.cand, win, best,
                                               sc.bestd, zeta, eta, head, nxt, U, old, sc.W32, sc.wnorm, sc.mark,
                                               sc.cast)
                if outcome == _NEED_FULL:
                    full += 1
                    if use32 and not sc.cast:  # float32: S32 is the product in W's dtype
                        S = sc.S32
                    else:
                        if S is None or S.dtype != dt:
                            S = np.empty((N, B), dt)
                        with np.errstate(all="ignore"):  # reported as the batch's divergence
                            np.dot(W, Vb.T, out=S)
                    # a drive that is not finite makes the reference's s_n NaN (S[n, b] * 0); the
                    # screened products are bounded by 1e30 (_screen_margins)
                    ok = all_finite(S) and _after_product(W, V, idx, S, win, best, zeta, eta, head, nxt, U, old,
                                                          sc.W32, sc.wnorm, sc.mark, screen, sc.cast)
                    outcome = _UPDATED if ok else _DIVERGED
                if outcome == _DIVERGED:
                    return full, done, RUN_DIVERGED
                done += 1
                if control is not None and control.stop_requested and done < E * nb:
                    return full, done, RUN_STOPPED
    return full, done, status


def _call(W, V, batches, zeta, eta, control=None):
    """``fit``; returns (the last batch's winners, the number of batches whose winners came
    from the product in W's dtype, the Control reported to)."""
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64).reshape(-1, *np.shape(batches)[-2:]), np.int64)
    win = np.zeros(batches.shape[2], np.int64)
    ctl = loop_control(control)
    try:
        full, done, status = _loop(Ww, _c(V, dt), batches, _c(zeta, dt), _c(eta, dt), bool(SCREEN), win, ctl)
    finally:
        if Ww is not W:
            W[...] = Ww
    ctl.report(done, status)
    return win, full, ctl


def _run(W, V, batches, zeta, eta):
    """``fit``; returns (the last batch's winners, the number of batches whose winners came
    from the product in W's dtype)."""
    win, full, ctl = _call(W, V, batches, zeta, eta)
    ctl.raise_if_diverged("DreamComp fit (numba)")
    return win, full


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
    ctl = _call(W, V, batches, zeta, eta, control)[2]
    if control is None:
        ctl.raise_if_diverged("DreamComp fit (numba)")
    return ctl.done


def batch_update(W: np.ndarray, V: np.ndarray, zeta: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """One minibatch ``V`` (B, D + C) of rule B on ``W`` in place; returns the winners (B,) int64.

    Raises DivergenceError, writing nothing, when the update is not finite.
    """
    V = np.asarray(V)
    win, _, ctl = _call(W, V, one_batch(V.shape[0]), zeta, eta)
    if ctl.diverged:
        raise DivergenceError("the update of this batch is not finite (NaN or inf); nothing was written")
    return win


def winners(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """The winner of every row b of V, as ``fit`` picks it: ``argmax_n (W V^T)[n, b]``
    (ties to the lower index; with ``SCREEN``, of the exact drives, see the module's notes).

    Parameters
    ----------
    W : ndarray of shape (N, D + C); V : ndarray of shape (B, D + C)

    Returns
    -------
    ndarray of shape (B,), int64
    """
    dt = _dtype(W)
    W, V = _c(W, dt), _c(V, dt)
    B = V.shape[0]
    win = np.empty(B, np.int64)
    best = np.empty(B, dt)
    sc = _Screen(W, B, bool(SCREEN))
    if sc.on and not sc.cast:
        sc.Vb32 = V
    with BlasThreads(BLAS_THREADS):
        if sc.on and _screen_margins(sc.wnorm, V, sc.Vb32, sc.thr, sc.cast):
            np.dot(sc.W32, sc.Vb32.T, out=sc.S32)
            if _screened_winners(W, V, sc.S32, sc.mx, sc.thr, sc.cand, win, best, sc.bestd):
                return win
        S = np.dot(W, V.T)
    _argmax_cols(S, win, best)
    return win
