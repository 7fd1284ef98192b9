"""Low-level kernels of rule A, for users who write their own training loops.

Each function runs on the backend named by ``backend`` (``"auto"``: the fastest usable
here) and computes exactly what the numpy reference computes. Arguments are checked
here, once, before any kernel runs.

Example: one hand-written step, identical to ``SparseDream``'s own::

    p, c = ops.compete(W, v, competition="lateral", lateral=sdf.lateral.box(2, 0.1), grid=(80, 80))
    win = ops.topk(c, 5)
    r = ops.reconstruct(W, win, p[win])
    ops.update_rows(W, win, p[win], v, r, lr=0.1, error_clip=1.0)
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import lateral as _lateral
from ._backends import resolve_backend
from ._validation import as_host_array, cast_finite, check_choice, check_dtype, check_float, check_int
from .sparsedream.config import Competition, Output, SparseDreamConfig, TrainState
from .sparsedream.model import backend_module

__all__ = ["topk", "compete", "reconstruct", "update_rows", "step"]

_COMP = {c.name.lower(): c for c in Competition}
_OUT = {o.name.lower(): o for o in Output}


def _mod(backend):
    return backend_module(resolve_backend(backend))


def _vec(x, name, n=None, dtype=None):
    """A 1-D input read through the library's one converter, as ``dtype`` (default: its own
    float dtype, float64 for integers), checked finite after the cast."""
    a = as_host_array(x, name)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} must have length {n}, got {a.shape[0]}")
    return cast_finite(a, dtype or (a.dtype if a.dtype in (np.float32, np.float64) else np.float64), name)


def _weights(W, written: bool):
    """W for a kernel. ``written``: updated in place, so it must be the caller's own C-contiguous,
    writeable numpy array; otherwise any array-like (Fortran order, strided, DLPack, ...) is
    read through the one converter, copied to C order only when its layout needs it."""
    if written:
        if not isinstance(W, np.ndarray):
            raise TypeError(f"W must be a numpy array (updated in place), got {type(W).__name__}")
    else:
        W = as_host_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (N, D), got shape {W.shape}")
    check_dtype(W.dtype)
    if written and not W.flags.c_contiguous:
        raise ValueError("W must be C-contiguous (np.ascontiguousarray) so it can be updated in place")
    if written and not W.flags.writeable:
        raise ValueError("W must be writeable: it is updated in place")
    return W if written else np.ascontiguousarray(W)


def _rows(idx, vals, n, dtype):
    idx = as_host_array(idx, "idx")
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"idx must hold integers, got dtype {idx.dtype}")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError(f"idx must be 1-D, got shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"idx must lie in [0, {n}), got values from {idx.min()} to {idx.max()}")
    if np.unique(idx).size != idx.size:
        raise ValueError("idx must not repeat a row")
    vals = _vec(vals, "vals", idx.size, dtype)
    return idx, vals


def _config(W, k=1, competition="drive", output="drive", grid=None, lr=1.0, error_clip=None,
            trace=None, prec=1e-10):
    N, D = W.shape
    if grid is None:
        grid = (1, N)
    rows, cols = check_int(grid[0], "grid rows", 1), check_int(grid[1], "grid cols", 1)
    if rows * cols != N:
        raise ValueError(f"grid {grid} has {rows * cols} neurons but W has N={N} rows")
    k = check_int(k, "k", 1)
    if k > N:
        raise ValueError(f"k must be between 1 and the number of neurons N={N}, got k={k}")
    return SparseDreamConfig(
        n_neurons=N, n_inputs=D, grid=(rows, cols), k=k,
        lr=check_float(lr, "lr", positive=True),
        competition=_COMP[check_choice(competition, "competition", _COMP)],
        output=_OUT[check_choice(output, "output", _OUT)],
        error_clip=check_float(error_clip, "error_clip", positive=True, allow_none=True, allow_inf=True),
        trace=check_float(trace, "trace", positive=True, allow_none=True, upper=1.0),
        lateral_lr=1.0, prec=check_float(prec, "prec", positive=True), dtype=W.dtype)


def _lat(lateral, cfg):
    if isinstance(lateral, (_lateral.Stencil, _lateral.CSR)):
        if lateral.n != cfg.n_neurons:
            raise ValueError(f"lateral operator has N={lateral.n}, W has N={cfg.n_neurons}")
        return lateral.astype(cfg.dtype)
    if isinstance(lateral, _lateral.RandomLateral):
        raise ValueError("ops take a fixed lateral; resolve a random one with lateral.resolve(spec, grid, dtype, rng)")
    return _lateral.resolve(lateral, cfg.grid, cfg.dtype)


def topk(c: ArrayLike, k: int, backend: str = "auto") -> np.ndarray:
    """Indices of the k largest values, strongest first, ties to the lower index.

    Parameters
    ----------
    c : array-like of shape (N,), float
    k : int, 1 <= k <= N

    Returns
    -------
    ndarray of shape (k,), int64
    """
    c = _vec(c, "c")
    k = check_int(k, "k", 1, c.shape[0])
    if c.dtype not in (np.float32, np.float64):
        c = c.astype(np.float64)
    return _mod(backend).topk(c, k)


def compete(W: ArrayLike, v: ArrayLike, competition: str = "lateral", lateral: object = None,
            grid: tuple[int, int] | None = None, prec: float = 1e-10,
            backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Drive ``p = W v`` and competition value ``c`` (docs/rules/sparsedream.md, steps 1-2).

    Parameters
    ----------
    W : ndarray of shape (N, D), float32 or float64
    v : array-like of shape (D,)
    competition : {"drive", "lateral", "normalized_lateral", "mean_lateral", "weighted_average"}
    lateral : a lateral spec (``sdf.lateral.box(...)``), an operator, an (N, N) matrix, or None
    grid : (rows, cols) with rows * cols = N; default (1, N)

    Returns
    -------
    p, c : ndarrays of shape (N,), dtype of W
    """
    W = _weights(W, written=False)
    cfg = _config(W, competition=competition, grid=grid, prec=prec)
    v = _vec(v, "v", W.shape[1], W.dtype)
    return _mod(backend).competition(W, v, _lat(lateral, cfg), cfg)


def reconstruct(W: ArrayLike, idx: ArrayLike, vals: ArrayLike, backend: str = "auto") -> np.ndarray:
    """Masked reconstruction ``r = sum_j vals[j] W[idx[j]]`` over the given rows only.

    Parameters
    ----------
    W : ndarray of shape (N, D)
    idx : array-like of shape (m,), distinct row indices
    vals : array-like of shape (m,)

    Returns
    -------
    ndarray of shape (D,), dtype of W
    """
    W = _weights(W, written=False)
    idx, vals = _rows(idx, vals, W.shape[0], W.dtype)
    return _mod(backend).reconstruct(W, idx, vals)


def update_rows(W: np.ndarray, idx: ArrayLike, vals: ArrayLike, v: ArrayLike, r: ArrayLike, lr: float,
                error_clip: float | None = None, prec: float = 1e-10,
                backend: str = "auto") -> np.ndarray:
    """Multiplicative update of rows ``idx`` of W, in place: ``W_j += lr vals_j W_j e / max(r, prec)``.

    ``e = v - r`` clipped to ``[-error_clip, error_clip]`` when error_clip is given.
    Only rows ``idx`` are read and written.

    Parameters
    ----------
    W : ndarray of shape (N, D), C-contiguous, updated in place
    idx, vals : array-like of shape (m,)
    v, r : array-like of shape (D,)

    Returns
    -------
    e : ndarray of shape (D,), the (clipped) error
    """
    W = _weights(W, written=True)
    cfg = _config(W, lr=lr, error_clip=error_clip, prec=prec)
    idx, vals = _rows(idx, vals, W.shape[0], W.dtype)
    v = _vec(v, "v", W.shape[1], W.dtype)
    r = _vec(r, "r", W.shape[1], W.dtype)
    return _mod(backend).update_rows(W, idx, vals, v, r, cfg.lr, cfg.error_clip, cfg.prec)


def step(W: np.ndarray, v: ArrayLike, k: int, lr: float, competition: str = "lateral", output: str = "drive",
         lateral: object = None, grid: tuple[int, int] | None = None, error_clip: float | None = None,
         trace: float | None = None, trace_state: np.ndarray | None = None,
         prec: float = 1e-10, backend: str = "auto") -> np.ndarray:
    """One fused step of rule A (drive, competition, top-k, trace, reconstruction, update), in place.

    Parameters
    ----------
    W : ndarray of shape (N, D), C-contiguous, updated in place
    v : array-like of shape (D,)
    k, lr, competition, output, lateral, grid, error_clip, prec : as in ``SparseDream``
    trace : float or None
        Trace rate; then ``trace_state`` (shape (N,), dtype of W) is read and updated in place.

    Returns
    -------
    ndarray of shape (k,), int64: the winners, strongest first.
    """
    W = _weights(W, written=True)
    cfg = _config(W, k=k, competition=competition, output=output, grid=grid, lr=lr,
                  error_clip=error_clip, trace=trace, prec=prec)
    v = _vec(v, "v", W.shape[1], W.dtype)
    if trace is not None:
        if not isinstance(trace_state, np.ndarray) or trace_state.shape != (W.shape[0],) \
                or trace_state.dtype != W.dtype or not trace_state.flags.c_contiguous:
            raise ValueError("with trace=alpha, trace_state must be a C-contiguous array of shape (N,) and W's dtype")
        o = trace_state
    else:
        o = np.zeros(W.shape[0], W.dtype)
    state = TrainState(W=W, lateral=_lat(lateral, cfg), trace=o)
    return _mod(backend).step(state, v, cfg)
