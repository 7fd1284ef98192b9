"""Numba kernels of rule B, DreamComp (backend ``"numba"``).

The same functions and signatures as the numpy reference (``reference.py``). The whole
``fit`` loop runs inside one jitted function; per minibatch ``V`` (B, D + C):

1. gather the batch's rows into a contiguous buffer and compute ``S = W V^T`` (N, B) with
   one BLAS gemm (``np.dot`` inside the kernel: scipy's OpenBLAS);
2. the winner of every sample, ``argmax_n S[n, b]`` (first maximum, a NaN wins as in
   ``np.argmax``), in one row-major pass over S;
3. the samples grouped by winner (a linked list per winner, samples ascending); for every
   neuron that won something: ``U = (sum of its samples) * (1 / count)``,
   ``s = sum_b S[n, b] * (1 / count)``, and ``W_n += (U - s * (W_n / zeta)) * eta``.

Neurons that won nothing are not touched (the reference adds exactly 0 to them: U = 0,
s = 0), so after the product the cost is O(N B) for the argmax and O(B (D + C)) for the
update, against the reference's second N x B x (D + C) product and five passes over W.

float64 screening (``SCREEN_FLOAT64``, on by default): the float64 gemm is the whole cost,
so in float64 step 1-2 take a float32 product instead (half the time) and compute in
float64 only the dot products of the neurons that its rigorous error bound cannot rule out
(one or two per sample); the winner is the float64 argmax all the same
(``_screened_winners``). Batches where the bound cannot be trusted (non-finite or huge
weights) or that have too many candidates take the float64 product.

Numerics: elementwise operations are the reference's, in the same order and in the model
dtype (``fastmath=False``). The gemm is the reference's gemm (same BLAS kernels, same
transposition), so without screening S is usually bitwise the reference's; with it, a
winner's drive is a float64 dot product (rounding-level differences). A winner with one
sample gets bitwise the reference's update (given the same drive); with several, ``U`` and
``s`` are summed in sample order where the reference lets BLAS and numpy's pairwise sum
choose: they agree to rounding.

Threads: BLAS's (``BLAS_THREADS``, default the process's setting). On a machine whose
other cores are busy, OpenBLAS's threads wait for each other at every product (measured
on the shared 2-core VM: the KH product of one batch 2.7 ms on one thread, 7 ms on two);
``threadpoolctl.threadpool_limits(1)`` around ``fit``, or ``BLAS_THREADS = 1``, then helps.
"""
from __future__ import annotations

import contextlib

import numba
import numpy as np

__all__ = ["BLAS_THREADS", "SCREEN_FLOAT64", "winners", "batch_update", "fit"]

_JIT = dict(cache=True, fastmath=False, nogil=True)

#: BLAS threads of the gemm; None leaves the process's setting (threadpoolctl) alone. The
#: products here are large (N x B x (D + C), tens of ms), so unlike rule A's per-step gemv
#: they are worth BLAS's threads on an idle machine.
BLAS_THREADS = None

#: float64: find the winners from a float32 product (half the time of the float64 gemm)
#: and float64 dot products of the few candidates within its rigorous error bound, instead
#: of the float64 gemm. The winners are the float64 argmax all the same (see
#: ``_screened_winners``); False computes the float64 product.
SCREEN_FLOAT64 = True


# ================================================================== kernels
@numba.njit(**_JIT)
def _typed(like, x):
    """``x`` as a scalar of ``like``'s dtype (literals would promote float32 to float64)."""
    t = np.empty(1, like.dtype)
    t[0] = x
    return t[0]


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
def _update_winners(W, V, idx, sw, win, zeta, eta, head, nxt, U):
    """Step 3 for every neuron that won a sample of the batch, in place on W.

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
    """
    B = win.shape[0]
    Dp = W.shape[1]
    one = _typed(W, 1.0)
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
        for j in range(Dp):
            w[j] += (U[j] - s * (w[j] / zeta[j])) * eta[j]
    for b in range(B):  # leave head all -1
        head[win[b]] = -1


@numba.njit(**_JIT)
def _gather(V, idx, Vb):
    """``Vb = V[idx]`` (the batch as one contiguous block for the gemm)."""
    for b in range(idx.shape[0]):
        Vb[b] = V[idx[b]]


# ------------------------------------------------------------ float64: float32 screening
@numba.njit(**_JIT)
def _row_norm(w):
    """``||w||_2`` of a contiguous float64 row (BLAS ddot: a plain loop would be serial)."""
    return np.sqrt(np.dot(w, w))


@numba.njit(**_JIT)
def _screened_winners(W, W32, wnorm, Vb, Vb32, S32, mx, thr, cand, win, sw):
    """The float64 winners of a batch from a float32 product, exactly; False if it cannot.

    ``S32 = fl32(W) fl32(V)^T`` differs from the exact ``W V^T`` by at most
    ``e_b = c ||W_n|| ||v_b||`` with ``c = 2 (D + 4) u32`` (twice the classical bound
    ``(gamma_D + 3 u32)``: rounding of both factors to float32 and a float32 dot product in
    any order, fused or not), plus a term for float32 underflow. So the float64 winner of
    sample b is among the neurons with ``S32[n, b] >= max_n S32[., b] - 2 e_b``; those
    candidates (one or two per sample on random data) get their dot product in float64
    and the largest wins (ties to the lower index). Returns False (and the caller computes
    the float64 product) when the bounds cannot be trusted (non-finite or huge weights or
    inputs) or when more than ``cand.shape[0]`` candidates turn up.

    Parameters
    ----------
    W : float64 array of shape (N, D + C); W32 its float32 copy; wnorm its row norms
    Vb : float64 array of shape (B, D + C), the batch; Vb32, S32 (N, B), mx, thr: scratch
    cand : int64 array of shape (cap, 2), scratch
    win : int64 array of shape (B,), output; sw : float64 array of shape (B,), output
        (``S[win[b], b]`` in float64)
    """
    N, B = S32.shape
    Dp = W.shape[1]
    wmax = 0.0
    for n in range(N):
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
        if not (vn <= 1e30):
            return False
        thr[b] = 2.0 * (c * wmax * vn + tiny * (2.0 + wmax + vn))
        for j in range(Dp):
            Vb32[b, j] = Vb[b, j]
    np.dot(W32, Vb32.T, S32)
    for b in range(B):
        mx[b] = S32[0, b]
    for n in range(1, N):
        for b in range(B):
            x = S32[n, b]
            if x > mx[b]:
                mx[b] = x
    for b in range(B):
        thr[b] = np.float64(mx[b]) - thr[b]
    nc = 0
    cap = cand.shape[0]
    for n in range(N):
        for b in range(B):
            if np.float64(S32[n, b]) >= thr[b]:
                if nc == cap:
                    return False
                cand[nc, 0] = n
                cand[nc, 1] = b
                nc += 1
    for b in range(B):
        win[b] = -1
    for i in range(nc):  # candidates come by neuron ascending: strict > keeps the lower index
        n = cand[i, 0]
        b = cand[i, 1]
        d = np.dot(W[n], Vb[b])
        if win[b] < 0 or d > sw[b]:
            win[b] = n
            sw[b] = d
    return True


@numba.njit(**_JIT)
def _refresh(W, W32, wnorm, win, mark):
    """``W32`` and ``wnorm`` of the rows that just changed (the winners); mark all 0 on entry/exit."""
    for b in range(win.shape[0]):
        n = win[b]
        if mark[n] == 0:
            mark[n] = 1
            for j in range(W.shape[1]):
                W32[n, j] = W[n, j]
            wnorm[n] = _row_norm(W[n])
    for b in range(win.shape[0]):
        mark[win[b]] = 0


@numba.njit(**_JIT)
def _fit_kernel(W, V, batches, zeta, eta, win, screen):
    """Every minibatch ``V[batches[e, i]]`` in order, in place on W; ``win`` ends with the
    last batch's winners. ``screen`` (float64 only): winners by float32 screening.
    Returns the number of batches that took the full product (all when not screening)."""
    N = W.shape[0]
    E, nb, B = batches.shape
    Vb = np.empty((B, W.shape[1]), W.dtype)
    best = np.empty(B, W.dtype)
    head = np.full(N, -1, np.int64)
    nxt = np.empty(B, np.int64)
    U = np.empty(W.shape[1], W.dtype)
    S = np.empty((N if not screen else 0, B), W.dtype)
    if screen:
        W32 = W.astype(np.float32)
        wnorm = np.empty(N)
        for n in range(N):
            wnorm[n] = _row_norm(W[n])
        Vb32 = np.empty((B, W.shape[1]), np.float32)
        S32 = np.empty((N, B), np.float32)
        mx = np.empty(B, np.float32)
        thr = np.empty(B)
        cand = np.empty((16 * B, 2), np.int64)
        mark = np.zeros(N, np.int8)
    full = 0
    for e in range(E):
        for i in range(nb):
            idx = batches[e, i]
            _gather(V, idx, Vb)
            if screen:
                if not _screened_winners(W, W32, wnorm, Vb, Vb32, S32, mx, thr, cand, win, best):
                    full += 1
                    if S.shape[0] == 0:
                        S = np.empty((N, B), W.dtype)
                    np.dot(W, Vb.T, S)
                    _argmax_cols(S, win, best)
            else:
                full += 1
                np.dot(W, Vb.T, S)
                _argmax_cols(S, win, best)
            _update_winners(W, V, idx, best, win, zeta, eta, head, nxt, U)
            if screen:
                _refresh(W, W32, wnorm, win, mark)
    return full


@numba.njit(**_JIT)
def _winners_kernel(W, V, win):
    S = np.dot(W, V.T)
    best = np.empty(V.shape[0], W.dtype)
    _argmax_cols(S, win, best)


# ================================================================== Python side
_controller = None


def _blas_limit(threads):
    """Context holding numba's BLAS to ``threads`` threads (a no-op for None)."""
    global _controller
    if threads is None:
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
    return _controller.limit(limits=threads, user_api="blas")


def _dtype(W):
    dt = np.asarray(W).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _c(a, dtype):
    """``a`` as a C-contiguous, writeable array of ``dtype`` (a copy only when needed)."""
    a = np.asarray(a)
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable and a.flags.aligned:
        return a
    return np.array(a, dtype=dtype, order="C", copy=True)


def _run(W, V, batches, zeta, eta):
    """``fit``; returns (the last batch's winners, the number of batches that took the
    full product)."""
    dt = _dtype(W)
    Ww = _c(W, dt)
    batches = _c(np.asarray(batches, np.int64).reshape(-1, *np.shape(batches)[-2:]), np.int64)
    win = np.zeros(batches.shape[2], np.int64)
    screen = bool(SCREEN_FLOAT64) and dt == np.float64
    with _blas_limit(BLAS_THREADS):
        full = _fit_kernel(Ww, _c(V, dt), batches, _c(zeta, dt), _c(eta, dt), win, screen)
    if Ww is not W:
        W[...] = Ww
    return win, full


def fit(W: np.ndarray, V: np.ndarray, batches: np.ndarray, zeta: np.ndarray, eta: np.ndarray) -> None:
    """Train on ``V[batches[e, i]]`` for every epoch e and batch i, in place (one jitted loop).

    Parameters
    ----------
    W : ndarray of shape (N, D + C), float32 or float64, updated in place
    V : ndarray of shape (n, D + C), the extended samples
    batches : ndarray of shape (E, n_batches, B), int64
    zeta, eta : ndarrays of shape (D + C,), reconstruction weights and learning rates
    """
    _run(W, V, batches, zeta, eta)


def batch_update(W: np.ndarray, V: np.ndarray, zeta: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """One minibatch ``V`` (B, D + C) of rule B on ``W`` in place; returns the winners (B,) int64."""
    V = np.asarray(V)
    return _run(W, V, np.arange(V.shape[0], dtype=np.int64).reshape(1, 1, -1), zeta, eta)[0]


def winners(W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``argmax_n (W V^T)[n, b]`` of every row b of V (ties to the lower index), shape (B,) int64."""
    dt = _dtype(W)
    V = _c(V, dt)
    win = np.empty(V.shape[0], np.int64)
    with _blas_limit(BLAS_THREADS):
        _winners_kernel(_c(W, dt), V, win)
    return win
